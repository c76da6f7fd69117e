/*
 * luamig_revs.h: src/revs/ as the folders above it see it: the revision graph,
 * loading the files, the sandbox, Alembic's reading of targets, checksums, the
 * config. Part of luamig.h (include that); what only src/revs/ uses is in
 * src/revs/revs.h, but for the header cache's own functions (cache.c reads
 * them here).
 */
#ifndef LUAMIG_REVS_H
#define LUAMIG_REVS_H

/* ---- graph.c: the revision DAG (pure: no connection) ---- */

typedef struct luamig_rev {
  char *id;
  char *message;                     /* may be NULL */
  char *path;                        /* file it came from */
  char **down; int ndown;            /* down_revision ids as written */
  char **depends; int ndepends;      /* depends_on ids as written */
  char **labels; int nlabels;        /* branch_labels */
  int *parents; int nparents;        /* resolved down_revision (indices) */
  int *deps; int ndeps;              /* resolved depends_on */
  int *children; int nchildren;      /* revisions whose down_revision names this one */
  int *dependents; int ndependents;  /* revisions whose depends_on names this one */
  int *normdeps; int nnormdeps;      /* deps less those a revision below already has */
  int topo;                          /* position in g->order */
  bool transactional;
  char sum[65];                      /* SHA-256 of the file as read ("": not taken) */
  bool checked;                      /* its body compiled and ran once: no syntax error */
} luamig_rev;

typedef struct luamig_graph {
  luamig_rev *revs; int n, cap;
  int *slots; size_t nslots;         /* open-addressing index: id -> rev + 1 */
  int *heads; int nheads;            /* no child (down_revision), in file order */
  int *realheads; int nrealheads;    /* no child and no dependent */
  int *bases; int nbases;
  int *order;                        /* topological: parents and dependencies first */
  bool linked;
} luamig_graph;
/* The graph userdata's user value 1 is an array: envs[i + 1] is the
 * environment table of revs[i] (its upgrade/downgrade functions). */

luamig_graph *luamig_graph_new(lua_State *L);                       /* pushes it */
luamig_graph *luamig_graph_check(lua_State *L, int idx);
/* Adds a revision; raises on a duplicate id. The pointer is valid until the next add. */
luamig_rev *luamig_graph_add(lua_State *L, luamig_graph *g, const char *id,
                             const char *path);
/* Copies the string or array of strings at idx (nil: empty) into *list / *n. */
void luamig_graph_strings(lua_State *L, int idx, const char *what,
                          char ***list, int *n);
char *luamig_graph_strdup(lua_State *L, const char *s);
/* Why id (len bytes) cannot be a revision id, or NULL when it can: ids are
 * [A-Za-z0-9_]{1,32} and none of the target words (head, heads, base, current). */
const char *luamig_rev_id_problem(const char *id, size_t len);
int luamig_graph_find(const luamig_graph *g, const char *id);       /* exact id, or -1 */
/* Resolves down_revision/depends_on, children, heads, bases; raises on a
 * missing parent or a cycle (naming it). */
void luamig_graph_link(lua_State *L, luamig_graph *g);
/* n + 1 zeroed ints, anchored on the stack: marks and lists over the revisions. */
int *luamig_scratch(lua_State *L, int n);

/* ---- loader.c: revision files -> graph entries, each in its own environment ---- */

/* Pushes a linked graph of every *.lua file in the config's version dirs.
 * A file whose top level is plain (literal assignments and function
 * definitions) is only scanned for its header: its envs[i + 1] stays nil until
 * luamig_load_body. Other files run at once, as before. With sums, each
 * rev's sum is the SHA-256 of the text read (for the audit log, without a
 * second read); pump, when not NULL, is a connection whose handshake moves on
 * between files. */
luamig_graph *luamig_load_revisions(lua_State *L, int cfg_idx, bool sums, luamig_conn *pump);
/* Makes sure envs[rev + 1] holds revs[rev]'s environment (the graph g is at
 * stack index gidx), compiling and running its file if it was only scanned.
 * Raises "path:line: message" on a syntax error. */
void luamig_load_body(lua_State *L, luamig_graph *g, int gidx, int rev);
/* Pushes revs[rev]'s environment: envs[rev + 1] when loaded, else a fresh
 * one from its file, not kept (the lint sees each revision once: 10,000 kept
 * bodies would not fit in 30 MB). */
void luamig_push_body(lua_State *L, luamig_graph *g, int gidx, int rev);
/* Compiles revs[rev]'s file if it was only scanned and not yet checked, keeping nothing; raises as
 * luamig_load_body would. For every step of a plan before the first runs, so a
 * syntax error stops the run before anything is applied. */
void luamig_check_body(lua_State *L, luamig_graph *g, int gidx, int rev);

/* ---- cache.c: the header cache of a versions directory (as git's index) ---- */

/* The caches' directory inside a versions directory. */
#define LUAMIG_CACHE_DIR ".luamig-cache"

struct stat;
typedef struct luamig_cache luamig_cache;
/* Pushes dir's cache (.luamig-cache/headers; a foreign or corrupt one counts as
 * none). luamig_cache_listed pushes the array of the *.lua names it lists and
 * returns their count when the directory's stat is the one cached (no file
 * added, removed or renamed since), else pushes nothing and returns -1.
 * luamig_cache_match (the cache at the top) matches it against the n sorted
 * names of the array at names: a file whose stat (size, mtime, ctime, inode,
 * device) is the one cached is a hit. */
luamig_cache *luamig_cache_open(lua_State *L, const char *dir);
int luamig_cache_listed(lua_State *L, luamig_cache *c);
void luamig_cache_match(lua_State *L, luamig_cache *c, int names, int n, luamig_conn *pump);
/* Whether the cache can be read and written at all (dir could be opened). */
bool luamig_cache_usable(const luamig_cache *c);
/* Whether file i (from 0) is a hit: then luamig_cache_load adds its revision
 * (header and SHA-256, as cached) to g without opening the file. */
bool luamig_cache_hit(const luamig_cache *c, int i);
void luamig_cache_load(lua_State *L, luamig_cache *c, int i, luamig_graph *g, const char *path);
/* Whether a file whose stat before a read was st may be cached, asked right
 * after the read: its ctime is before the clock tick file times come from, so
 * any later change moves it. */
bool luamig_cache_fresh(const struct stat *st);
/* File i was read and scanned (not run) as revision rev, with stat st. */
void luamig_cache_note(luamig_cache *c, int i, int rev, const struct stat *st);
/* Writes the cache again when it changed (names: as for luamig_cache_open). */
void luamig_cache_save(lua_State *L, luamig_cache *c, const luamig_graph *g, int names);
/* Replaces dir/name with data atomically: a temp file in dir, renamed over
 * it. Does nothing when dir cannot be written. */
void luamig_cache_replace(lua_State *L, const char *dir, const char *name, const char *data,
                          size_t len);
/* Other caches in a versions directory (the lint's): pushes the body of
 * dir/name when its checksum trailer holds (returns 1), else nil (0); writes
 * the string at idx as dir/name, with its trailer, atomically. */
int luamig_cache_read(lua_State *L, const char *dir, const char *name);
void luamig_cache_write(lua_State *L, const char *dir, const char *name, int idx);
/* "luamig VERSION BUILD": what a cache written by this build is marked with. */
const char *luamig_build_id(void);

/* Gives the userdata at the top the metatable mt (made once, close as its
 * __close and __gc) and makes its slot to-be-closed: the resource is released
 * on return or on any error. */
void luamig_toclose(lua_State *L, const char *mt, lua_CFunction close);

/* ---- sandbox.c: what a revision's code may do, and for how long ---- */

/* lua_pcall of the function below nargs arguments as revision code of path
 * (what: "upgrade()", "downgrade()", "the file"): under the time budget, any
 * error value rendered as "file:line: message" (a string on top on failure).
 * Returns the lua_pcall status. */
int luamig_revision_pcall(lua_State *L, int nargs, int nresults, const char *path,
                          const char *what);
/* The running revision spent ms waiting on the server: not its own time. */
void luamig_budget_pause(lua_State *L, double ms);
/* Silences (or not) print and io.write in revisions, as while the lint records
 * them; returns the previous setting. */
bool luamig_sandbox_quiet(lua_State *L, bool quiet);

/* ---- revmap.c: Alembic's rules for reading the graph (pure) ---- */

/* Sets mark[i] = 1 for every revision reachable from `from` (self included)
 * through parents and dependencies (toward_base) or children and dependents;
 * luamig_mark_line through parents or children only (down_revision). */
void luamig_mark_reach(lua_State *L, const luamig_graph *g, const int *from,
                       int nfrom, int *mark, bool toward_base);
/* What `current` shows: the applied revisions no applied revision builds on
 * by down_revision (file order); returns the count. */
int luamig_current_set(lua_State *L, const luamig_graph *g, const int *cur, int ncur, int *out);
/* Marks the revisions that show the branch labels of revision rev. */
void luamig_label_span(lua_State *L, const luamig_graph *g, int rev, int *mark);

/* ---- target.c: upgrade, downgrade and stamp targets (pure) ---- */

typedef struct luamig_step {
  int rev;                           /* index in the graph */
  bool up;                           /* upgrade or downgrade */
} luamig_step;

/* Resolves TARGET against the graph and the current heads (cur, ncur) and
 * pushes a plan userdata; returns its steps through *steps / *nsteps. */
int luamig_plan(lua_State *L, luamig_graph *g, const int *cur, int ncur,
                const char *target, bool up, luamig_step **steps);

/* The revisions one target names (history -r, show, revision --head, an
 * offline FROM) into out (room for g->n + 1 entries); returns how many; 0
 * means base. "-N" counts down from the current revision, "current" is it. */
int luamig_resolve(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                   const char *target, int *out);

/* The version rows after "stamp TARGET" from rows cur, into out (file order);
 * returns their count. Raises where Alembic's stamp would fail. */
int luamig_stamp(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                 const char *target, int *out);

/* ---- sha256.c: checksums of revision files for the audit log ---- */

void luamig_sha256_hex(const void *data, size_t n, char out[65]);

/* ---- config.c ---- */

/* Reads opts (table at opts_idx: config=, url=, ...), the config file and .env;
 * pushes the resolved config table: url, versions (array), version_table,
 * version_table_schema, dir (of the config). */
void luamig_config_load(lua_State *L, int opts_idx);
/* A duration as PostgreSQL writes them ("500ms", "5s", "10min", "2h", "1d"; a
 * bare number is milliseconds) into *ms; false unless it is one, from 0 to
 * 2^31 - 1 ms (about 24 days, PostgreSQL's own limit). */
bool luamig_parse_duration(const char *s, double *ms);
/* Pushes the KEY=value pairs of a .env file as a table (the first of a key
 * wins); returns their count, or -1 (empty table) when the file is unreadable.
 * Raises "path:N: expected KEY=value" on a malformed line. */
int luamig_dotenv_parse(lua_State *L, const char *path);

#endif

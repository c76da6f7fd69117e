/*
 * luamig_run.h: src/run/ as the folders above it see it: the version table,
 * the audit log and the lock, what every command shares, verify's findings,
 * --backup, one flush to disk per run. Part of luamig.h (include that);
 * src/run/ has no header of its own: the few declarations only it uses
 * (version_table.c's and lock.c's) are here too.
 */
#ifndef LUAMIG_RUN_H
#define LUAMIG_RUN_H

/* ---- version_table.c, lock.c ---- */

typedef struct luamig_vtable {
  const char *schema;                /* NULL: the connection's search path */
  const char *name;
  const char *log_name;              /* the audit log beside it */
  bool probed, present, log_present; /* whether they exist, once asked */
  long long lock_key;                /* set by luamig_lock_acquire */
  bool want_digest;                  /* read the log's digest with the rows (findings.c) */
  bool digested;                     /* log_digest and log_started were read */
  char log_digest[65];               /* see luamig_vtable_read */
  long log_started;
  bool printed;                      /* log_print was read (with the lock, or the digest) */
  char log_print[65];                /* the SHA-256 of the log's fingerprint */
  int ahead;                         /* stack slot of the rows read with the lock (0: none) */
} luamig_vtable;

/* CREATE TABLE IF NOT EXISTS, through the context (so --sql scripts get it too). */
void luamig_vtable_ensure(lua_State *L, luamig_opctx *ctx, luamig_vtable *vt);
/* Pushes an array of the version_num rows; returns their count, or -1 (and an
 * empty array) when the table does not exist yet. With want_digest and a log,
 * reads in the same round trip the log's digest: the SHA-256 of "id checksum"
 * lines (C order) of the revisions whose last row applies them, and how many
 * revisions' last row is a -started one. */
int luamig_vtable_read(lua_State *L, luamig_conn *c, luamig_vtable *vt);
/* Appends to st the query whether the version table and the log exist (its
 * SQL and parameters pushed), for a batch; luamig_vtable_probed reads its
 * rows (the array at idx). */
void luamig_vtable_probe_add(lua_State *L, const luamig_vtable *vt, luamig_stmt *st, int *n);
void luamig_vtable_probed(lua_State *L, luamig_vtable *vt, int idx);
/* The read ahead of a no-op run, for the tail of the lock's round trip
 * (luamig_batch_tail): appends the version rows' query and the log's
 * fingerprint's (what their SQL points into is pushed). luamig_vtable_ahead
 * takes their result at idx (nil when they failed: no table yet), replaces it
 * with the array of ids and sets vt->printed; returns whether it was read. */
void luamig_vtable_ahead_add(lua_State *L, const luamig_vtable *vt, luamig_stmt *st, int *n);
bool luamig_vtable_ahead(lua_State *L, luamig_vtable *vt, int idx);
/* Reads the log's digest and, of the same snapshot, its fingerprint into vt. */
void luamig_vtable_digest(lua_State *L, luamig_conn *c, luamig_vtable *vt);

/* A revision's row in the audit log: one per applied or reverted revision
 * (id, direction, file checksum, time, duration, user, luamig version). */
typedef struct luamig_logrow {
  const char *rev;
  bool up;
  const char *direction;             /* NULL: as up and started say */
  const char *checksum;              /* "" when not taken */
  bool started;                      /* the start row of a non-transactional revision */
  double ms;                         /* < 0: unknown (an offline script), NULL in the log */
  const char *expect;                /* not NULL: the guard (see luamig_log_add) */
  char dur[32], key[24];             /* the INSERT's parameters, set by luamig_log_add */
  const char *params[8];
} luamig_logrow;

/* A change of the head rows: `from` out, `to` in. */
typedef struct luamig_move {
  const char *const *from;
  int nfrom;
  const char *const *to;
  int nto;
  const char *update[2];             /* the UPDATE's parameters, set by luamig_vtable_move_add */
  const char *expect;                /* the rows after it, sorted, one per line (for the guard) */
} luamig_move;

/* Appends to st (from *n on; room for nfrom + nto) the statements of m: an
 * UPDATE when one head replaces one (as Alembic does), else DELETEs and
 * INSERTs. Their SQL is pushed: keep it on the stack until they are sent. */
void luamig_vtable_move_add(lua_State *L, const luamig_vtable *vt, luamig_move *m,
                            luamig_stmt *st, int *n);
/* Raises unless each of m's statements (counts, in order) touched one row. */
void luamig_vtable_move_check(lua_State *L, const luamig_move *m, const long *counts);
/* Appends the audit row's INSERT (its SQL pushed; row holds its parameters).
 * With row->expect, the row is a revision's last statement before its COMMIT
 * and guards it: the INSERT fails unless the version table holds exactly
 * expect (a luamig_move's) and the session the migration lock, so the
 * revision rolls back; luamig_guard_explain then says why. */
void luamig_log_add(lua_State *L, const luamig_vtable *vt, luamig_logrow *row,
                    luamig_stmt *st, int *n);
/* m and, when log is not NULL, its audit row, in one round trip, checked. */
void luamig_vtable_move(lua_State *L, luamig_opctx *ctx, const luamig_vtable *vt,
                        luamig_move *m, luamig_logrow *log);

/* Whether a revision's failure is its guard's: the server refused with one of
 * the guard's reasons (e: the failure's record, NULL when it is not the
 * server's), or (at_row: the audit row was the statement that failed) any
 * failure of the row, which reads the version table. */
bool luamig_guard_failed(const luamig_sqlerror *e, bool at_row);
/* Pushes what the failed guard (its error: msg, its record: e) found, for
 * "upgrade X failed: ..."; committed says whether the revision's statements
 * stay (a non-transactional one). */
const char *luamig_guard_explain(lua_State *L, const luamig_vtable *vt, const char *expect,
                                 const char *msg, const luamig_sqlerror *e, bool committed);

/* The audit log table, through the context. */
void luamig_log_ensure(lua_State *L, luamig_opctx *ctx, luamig_vtable *vt);
/* Pushes a holder of the log's rows (revision, direction, checksum), oldest
 * first, and returns them; NULL (nil pushed) when there is no log. */
const PGresult *luamig_log_rows(lua_State *L, luamig_conn *c, luamig_vtable *vt);

/* Session-level advisory lock keyed by the version table's qualified name
 * (its schema: the configured one, else the session's current_schema()): held
 * for a whole upgrade/downgrade/stamp so concurrent runs apply nothing twice.
 * Taken in both modes, exclusive then shared, so the guard can ask whether the
 * session still holds it by releasing and taking back one mode at a time
 * (the other keeps every other run out meanwhile), not through pg_locks.
 * Sets vt->lock_key. Waits up to wait_s seconds, then raises naming the holder
 * (pid, application). Pushes the version rows read with the lock (see
 * luamig_vtable_ahead_add), or nil. */
void luamig_lock_acquire(lua_State *L, luamig_conn *c, luamig_vtable *vt, double wait_s);
/* Prepares the lock's first try to go as soon as c's handshake is done (c
 * being connected, at once); pushes what it needs kept until
 * luamig_lock_acquire reads it, on the same connection, of the same vt. */
void luamig_lock_prepare(lua_State *L, luamig_conn *c, const luamig_vtable *vt);
void luamig_lock_release(lua_State *L, luamig_conn *c, const luamig_vtable *vt);
/* The lock key's halves as pg_locks shows them (classid, objid), as text. */
void luamig_lock_halves(const luamig_vtable *vt, char hi[16], char lo[16]);

/* ---- run.c: what every command shares (runner.c, stamp.c, report.c, lint.c, ...) ---- */

/* One command's state: its options, config, graph and connection live on
 * the Lua stack (slots below); the pointers stay valid while they do. */
typedef struct luamig_run {
  lua_State *L;
  int opts, cfg;                     /* stack slots */
  int graph;
  luamig_graph *g;
  luamig_conn *c;                    /* NULL until connecting */
  int conn;                          /* its stack slot */
  luamig_vtable vt;
  const char *lock_timeout;          /* per revision, e.g. "5s" (NULL: server default) */
  const char *statement_timeout;
  int lock_retries;
  int step, nsteps;                  /* progress: revision step of nsteps */
  double lock_wait;                  /* seconds to wait for the migration lock */
  int ops;                           /* slot of the op metatable (upgrade/downgrade) */
  bool direct;                       /* connected through the config's direct_url */
  bool relaxed;                      /* the session commits with synchronous_commit off (durable.c) */
} luamig_run;

/* What a command will need, for luamig_run_init. */
enum {
  LUAMIG_RUN_CONNECT = 1,            /* the database: start connecting before the files are read */
  LUAMIG_RUN_SUMS = 2,               /* the files' SHA-256 (audit log, changed-file warnings) */
  LUAMIG_RUN_MIGRATE = 4             /* a run that takes the lock: through direct_url when set */
};
/* The first versions directory, where the caches of its runs go (pushed; NULL: none). */
const char *luamig_run_cache_dir(luamig_run *r);
/* ---- logseen.c: the audit logs seen, by fingerprint ----
 * Whether a log whose fingerprint's SHA-256 is print was seen, with its
 * digest then; records that (dir NULL: no cache). */
bool luamig_logseen_find(lua_State *L, const char *dir, const char *print, char digest[65]);
void luamig_logseen_add(lua_State *L, const char *dir, const char *print, const char *digest);
/* Options (table at 1) -> config -> [connection under way] -> graph, all pushed. */
void luamig_run_init(lua_State *L, luamig_run *r, int flags);
/* Finishes connecting (starts, if init was not told to): r->c in slot r->conn,
 * to be closed on return or error. */
void luamig_run_connect(luamig_run *r);
/* Progress to opts.log(event, text, ms, step, nsteps); events: "start",
 * "done", "fail", "info", "warn", "sql" (offline script lines), "heads" (the
 * version rows before a live upgrade or downgrade and after each revision:
 * "a, b" or "a\nb"; "" for none), "progress" (op.backfill's, for a terminal). */
void luamig_run_log(luamig_run *r, const char *event, const char *text, double ms);
bool luamig_opt_flag(lua_State *L, int opts, const char *name);
/* The same before luamig_run_init: whether the options (argument 1, a table
 * or nil) set name to a true value. */
bool luamig_opt_preset(lua_State *L, const char *name);
/* Reads the version table into cur (indices); raises on an id no file has. */
int luamig_read_current(luamig_run *r, int *cur, bool *present);
/* Pushes { revision, down_revision, message, path, head, base, branchpoint, mergepoint }. */
void luamig_push_rev_info(lua_State *L, const luamig_graph *g, int i);
/* Pushes "a, b" of the ids in list ("" for none); returns it. */
const char *luamig_push_ids(lua_State *L, const luamig_graph *g, const int *list, int n);
/* Server WARNINGs held during the run go to the log as "warn" events. */
void luamig_run_warnings(luamig_run *r);
/* Connects and takes the lock, or (offline: opts.sql) prepares a script;
 * pushes the op context and returns its stack index. */
int luamig_run_open(luamig_run *r, bool offline);
/* Offline: hands the statements gathered in the context at ctxidx to the log
 * as "sql" events, and empties its script. */
void luamig_run_drain(luamig_run *r, int ctxidx);
/* backup.c: --backup FILE, pg_dump of the run's database; the password
 * reaches pg_dump in a passfile of its own, never on its command line. */
void luamig_backup(luamig_run *r, const char *file);

/* ---- findings.c: the audit log against the version table and the files ---- */

/* Pushes { changed = {rev info...}, missing = {id...}, ahead = {id...}, behind =
 * {id...}, stale = {id...}, interrupted = {rev info...}, log = message or nil } (see luamig verify) for the
 * version table's rows cur (those files have) and, when unknown is not 0, the
 * array of ids at that stack slot (those no file has); returns their count. */
int luamig_push_findings(luamig_run *r, const int *cur, int ncur, int unknown);
/* Logs the findings at the top as warnings; with opts.strict any is an error. */
void luamig_warn_findings(luamig_run *r, int nfound);
/* stamp: the audit rows ("stamp", "unstamp") that make the log agree with the
 * version table after move m from rows cur, through ctx (in stamp's transaction). */
void luamig_log_stamp(luamig_run *r, luamig_opctx *ctx, const int *cur, int ncur,
                      const luamig_move *m);

/* ---- durable.c: a transaction per revision, one flush to disk per run ---- */

/* Before the first of several steps: SET synchronous_commit = off, through
 * the context (so --sql scripts carry it too). */
void luamig_durable_relax(lua_State *L, luamig_run *r, luamig_opctx *ctx);
/* Appends to st the SET that gives the session its own setting back (before
 * a non-transactional revision, whose statements must each be flushed). */
void luamig_durable_restore(luamig_run *r, luamig_stmt *st, int *n);
/* Appends, in the last step's transaction before its COMMIT, the SET LOCAL
 * that makes that COMMIT flush every one before it. */
void luamig_durable_commit(const luamig_run *r, luamig_stmt *st, int *n);
/* Every step committed, the last one flushed. */
void luamig_durable_done(luamig_run *r);

#endif

/*
 * luamig_db.h: src/db/ as the folders above it see it: libpq connections,
 * statements and batches, errors with SQLSTATE, memory owned by Lua, password
 * masking, where a migration is about to run. Part of luamig.h (include that);
 * what only src/db/ uses is in src/db/db.h.
 */
#ifndef LUAMIG_DB_H
#define LUAMIG_DB_H

/* ---- conn.c, conn_exec.c: libpq connections, statements, errors with SQLSTATE ---- */

#define LUAMIG_HELD_WARNINGS 16
#define LUAMIG_PREPARED 8            /* statements a connection keeps prepared (luamig_stmt.prepare) */

typedef struct luamig_conn luamig_conn;
struct luamig_conn {
  PGconn *pg;                        /* NULL once closed */
  PostgresPollingStatusType polling; /* the handshake: OK once connected */
  double deadline;                   /* of the handshake (monotonic ms; 0: none) */
  bool hold_warnings;                /* keep server WARNINGs for luamig_conn_warnings */
  int failed_at;                     /* the statement of the last batch that failed (-1: none) */
  bool direct;                       /* reached through direct_url: trusted to keep one session */
  char *warnings[LUAMIG_HELD_WARNINGS];
  int nwarnings, dropped_warnings;
  char *prepared[LUAMIG_PREPARED];   /* the SQL prepared as luamig_G_0, luamig_G_1, ... */
  int prepared_gen;                  /* G: a new one after luamig_conn_forget_prepared */
  bool unflushed;                    /* commits made with synchronous_commit off (durable.c) */
  /* sends a batch as soon as the handshake is done (the lock's: lock.c), so the
   * server runs it while the client reads the revision files; then NULL */
  void (*ahead)(luamig_conn *c, void *arg);
  void *ahead_arg;
  int inflight_syncs;                /* of a batch sent and not read yet */
};

/* prepared.c: prepares again, under new names, what a batch prepares from now
 * on: after statements that may have dropped them (DISCARD ALL in a
 * non-transactional revision). */
void luamig_conn_forget_prepared(luamig_conn *c);

/* Pushes the server WARNINGs held since the last call (an array, with a last
 * "(N more warnings)" when some did not fit) and forgets them; returns the count. */
int luamig_conn_warnings(lua_State *L, luamig_conn *c);

/* A monotonic clock in milliseconds (timeouts, durations). */
double luamig_now_ms(void);

/* Pushes a connected handle. Raises "could not connect to <url>: <msg>"
 * with the password masked. */
luamig_conn *luamig_conn_connect(lua_State *L, const char *url);
/* The same in two halves, so the server starts the session while the client
 * works: start pushes a handle whose handshake is under way (it never raises
 * but for memory), pump moves it on without waiting, finish waits for it and
 * raises as luamig_conn_connect. */
luamig_conn *luamig_conn_start(lua_State *L, const char *url);
void luamig_conn_pump(luamig_conn *c);
void luamig_conn_finish(lua_State *L, luamig_conn *c, const char *url);
luamig_conn *luamig_conn_check(lua_State *L, int idx);
void luamig_conn_close(luamig_conn *c);

/* conn_exec.c: statements and their errors. */

/* Runs one statement with text parameters (NULL entries are SQL NULL).
 * Returns the number of rows it affected. Raises on a server error with
 * "SQLSTATE: message (DETAIL: ...; HINT: ...); SQL: <statement>". */
long luamig_exec(lua_State *L, luamig_conn *c, const char *sql,
                 int nparams, const char *const *params);

/* Like luamig_exec, but pushes the rows: an array of tables keyed by column
 * name, values converted (int2/4/8 -> integer, float/numeric -> number,
 * bool -> boolean, others -> string, NULL -> absent). Returns the row count. */
int luamig_query(lua_State *L, luamig_conn *c, const char *sql,
                 int nparams, const char *const *params);

/* Like luamig_query, but pushes the first column's values only, as an array
 * of strings (NULLs left out); returns its length. */
int luamig_query_column(lua_State *L, luamig_conn *c, const char *sql,
                        int nparams, const char *const *params);

/* Runs sql; pushes a holder of its successful result (cleared when the
 * holder is collected) and returns the result, for C code that reads many
 * rows without making Lua tables of them. */
const PGresult *luamig_query_result(lua_State *L, luamig_conn *c, const char *sql,
                                    int nparams, const char *const *params);

/* One statement of a batch: SQL and its text parameters. */
typedef struct luamig_stmt {
  const char *sql;
  int nparams;
  const char *const *params;
  bool prepare;                      /* luamig's own, sent often: parsed and planned once per connection */
} luamig_stmt;

/* Runs n statements in one round trip (libpq pipeline mode): in order, in one
 * implicit transaction unless one is open. counts[i] (counts may be NULL)
 * gets each one's affected rows; with rows, pushes each one's rows (n arrays,
 * as luamig_query). Raises the first failure as luamig_exec does, after
 * prefixes[i] when prefixes is not NULL (a revision's "file:line: op.x: ");
 * the statements after it do not run. */
void luamig_batch(lua_State *L, luamig_conn *c, int n, const luamig_stmt *st, long *counts,
                  bool rows, const char *const *prefixes);
/* luamig_batch_tail in two halves, the connection the batch's in between:
 * send (no Lua, never raises: what went wrong is kept in p), then recv, which
 * pushes and raises as luamig_batch_tail does. */
typedef struct luamig_pending {
  int n, m, sent, tsent, nparsed;
  int parsed[LUAMIG_PREPARED], parsed_at[LUAMIG_PREPARED];
  bool entered, ok;
} luamig_pending;
void luamig_batch_send(luamig_conn *c, luamig_pending *p, int n, const luamig_stmt *st, int m,
                       const luamig_stmt *tail);
void luamig_batch_recv(lua_State *L, luamig_conn *c, luamig_pending *p, const luamig_stmt *st,
                       long *counts, bool rows, const char *const *prefixes);
/* luamig_batch with rows, then in the same round trip, after its Sync (so
 * outside its transaction), the m statements of tail (not prepared): pushes
 * an array of their row arrays, or nil when one of them failed. Their failure
 * is never raised: they are a read ahead the caller can do without. */
void luamig_batch_tail(lua_State *L, luamig_conn *c, int n, const luamig_stmt *st, int m,
                       const luamig_stmt *tail);
/* A statement failure as data: what the server said, not words found in a message. */
typedef struct luamig_sqlerror {
  char sqlstate[6];                  /* "" when there is none (a client-side failure) */
  char primary[128];                 /* the server's primary message, cut at 127 bytes */
} luamig_sqlerror;
/* Whether the error text err is the last statement failure these functions
 * raised in L, or wraps it ("file:line: op.x: ...", "upgrade X failed: ...");
 * if so, fills *e. An error a revision raises of its own carries none, even
 * after it caught a server error. */
bool luamig_sqlerror_of(lua_State *L, const char *err, luamig_sqlerror *e);

/* owned.c: pushes a userdata owning C memory: set *slot to it, and release(*slot)
 * runs once, by luamig_owned_free or when the userdata is collected (after an
 * error too). For what libpq or malloc hands over while Lua may raise. */
void **luamig_push_owned(lua_State *L, void (*release)(void *));
void luamig_owned_free(void **slot);

/* redact.c: pushes url with every password replaced by "***" (URL and
 * key=value forms, as libpq reads them), or "(not shown)" when libpq cannot
 * read it or might find a part of a password outside the password; returns
 * whether it was shown. A NULL url pushes "". */
bool luamig_push_redacted(lua_State *L, const char *url);
/* Appends key='value' and a space: one setting of a key=value connection
 * string, the value quoted as libpq reads it (\ and ' escaped). */
void luamig_add_setting(luaL_Buffer *b, const char *key, const char *value);
/* Whether libpq reads s as settings (a URL, key=value pairs), not as a database name. */
bool luamig_is_conninfo(const char *s);

int luamig_open_conn(lua_State *L);  /* registers the metatable; pushes module functions */

/* ---- topology.c: where a migration is about to run ---- */

/* The condition, on a statement of the lock's batch whose parameter p is
 * luamig_topology_pid's, under which the migration may take its lock: the
 * primary, through a session of its own (not a standby, not a pooler). */
#define LUAMIG_TOPOLOGY_OK(p) \
  "NOT pg_is_in_recovery() AND (" p "::int IS NULL OR pg_backend_pid() = " p "::int)"
/* The statement that says why not (its rows go to luamig_topology_check); $1 as above. */
#define LUAMIG_TOPOLOGY_SQL \
  "SELECT pg_is_in_recovery() AS standby, pg_backend_pid() <> $1::int AS pooled"
/* The backend pid libpq was given at start-up, as text in buf (a pooler such
 * as PgBouncer gives its own), or NULL when direct_url vouches for the session. */
const char *luamig_topology_pid(const luamig_conn *c, char buf[16]);
/* Raises "the server is a read-only standby ..." or the pooler refusal when
 * the rows (at idx) of LUAMIG_TOPOLOGY_SQL say so. */
void luamig_topology_check(lua_State *L, luamig_conn *c, int idx);

#endif

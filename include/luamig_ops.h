/*
 * luamig_ops.h: src/ops/ as the folders above it see it: where statements go
 * (the context and its sink) and the op table given to revisions. Part of
 * luamig.h (include that); what only src/ops/ uses is in src/ops/ops.h.
 */
#ifndef LUAMIG_OPS_H
#define LUAMIG_OPS_H

/* ---- sink.c: where statements go (a connection, or the --sql script) ---- */

/* Where a revision's statements go: a live connection, or (conn == NULL)
 * the script table kept as the context's user value, for --sql output. */
typedef struct luamig_opctx {
  luamig_conn *conn;
  bool transactional;                /* false for revisions with transactional = false */
  bool defer;                        /* DDL waits for luamig_flush (a transactional revision) */
  int tail_at;                       /* where the last luamig_flush's tail began in its batch */
} luamig_opctx;

/* Pushes a new context (user value 1: script table, user value 2: the conn,
 * user value 3: the DDL waiting while defer is set, user value 4: the run it
 * serves, see luamig_opctx_bind_run). */
luamig_opctx *luamig_opctx_new(lua_State *L, int conn_idx);
/* Drops what waits in the context and stops deferring. */
void luamig_opctx_reset(lua_State *L, luamig_opctx *ctx);
/* Sends the DDL waiting in the context, then tail (counts gets the tail's
 * row counts), in one round trip; a failure of the DDL is raised as the op
 * call would have raised it ("file:line: op.x: ..."). */
void luamig_flush(lua_State *L, luamig_opctx *ctx, int ntail, const luamig_stmt *tail,
                  long *counts);
/* luamig_batch through the context (offline: each statement to the script;
 * counts are then 0). */
void luamig_emit_batch(lua_State *L, luamig_opctx *ctx, int n, const luamig_stmt *st,
                       long *counts);
/* Sends one statement to the context's sink; params as in luamig_exec. */
long luamig_emit(lua_State *L, luamig_opctx *ctx, const char *sql,
                 int nparams, const char *const *params);
int luamig_open_sink(lua_State *L);  /* new_context, script */

/* ---- ops.c: the op.* API given to revisions ---- */

/* Pushes a fresh op table whose functions are bound to the context at ctx_idx. */
void luamig_ops_push(lua_State *L, int ctx_idx);
int luamig_open_ops(lua_State *L);

/* ops_backfill.c: op.backfill (src/ops/ops.h). A run binds its context once
 * (the log function opts.log, the audit log of vt) and names each revision as
 * it starts it, for the backfill's progress and final count; an unbound
 * context (core.new_context) reports nowhere. */
void luamig_opctx_bind_run(lua_State *L, int ctxidx, int opts, const luamig_vtable *vt);
void luamig_opctx_bind_revision(lua_State *L, int ctxidx, const char *rev);

#endif

/*
 * ops.h: what only the files of src/ops/ share (what other folders use is in
 * include/luamig_ops.h).
 */
#ifndef LUAMIG_SRC_OPS_H
#define LUAMIG_SRC_OPS_H

#include "luamig.h"

/* ---- ops_registry.c: one description per op ---- */

/* The registry: every op.* a revision gets, in the order of docs/operations.md. */
extern const luamig_opspec luamig_opspecs[];
extern const int luamig_nopspecs;

/* core.op_specs() -> the registry as Lua tables. */
int luamig_op_specs(lua_State *L);

/* ---- sink.c: where statements go (a connection, or the --sql script) ---- */

#define LUAMIG_OPCTX_MT "luamig.opctx"
/* Queues sql while the context defers (what: the op, for its errors, with the
 * revision's position), to go with the next luamig_flush. */
void luamig_queue_add(lua_State *L, luamig_opctx *ctx, const char *sql, const char *what);
/* What an op sends for an answer (query: pushes the rows), after the DDL waiting
 * in the context; a failure is raised as "file:line: what: <error>". */
long luamig_op_send(lua_State *L, luamig_opctx *ctx, const char *what, const char *sql,
                    int nparams, const char *const *params, bool query);
/* Sends the statements of the string at the top (separated by NUL bytes, see
 * luamig_sql_next) one by one as luamig_op_send does, or queues them (may_wait,
 * in a deferring context); pops it and returns the rows they affected. */
long luamig_op_emit_all(lua_State *L, luamig_opctx *ctx, const char *what,
                        int nparams, const char *const *params, bool may_wait);

/* ---- ops.c: the op.* API given to revisions ---- */

/* ops_data.c: the ops that are not DDL (registry rows with a call); upvalue 1 is
 * the context, upvalue 2 the row. */
int luamig_op_execute(lua_State *L);
int luamig_op_query(lua_State *L);
int luamig_op_bulk_insert(lua_State *L);
int luamig_op_safe(lua_State *L);

/* ops_index.c: around a live op.create_index call with concurrently = true:
 * prepare drops an INVALID index of that name a failed build left, check
 * raises unless the index built is valid. */
void luamig_index_prepare(lua_State *L, luamig_opctx *ctx, const luamig_opcall *op);
void luamig_index_check(lua_State *L, luamig_opctx *ctx, const luamig_opcall *op);

/* ops_backfill.c: op.backfill (a data op: upvalue 1 is the context; how a run
 * binds it: luamig_opctx_bind_run). */
int luamig_op_backfill(lua_State *L);

#endif

/*
 * ops.c: the op.* API given to revisions, bound from C: one closure per row of
 * the op registry (ops_registry.c) over an op context (sink.c). A DDL op's
 * arguments are checked by its row (args.c) and read by its sql*.c builder,
 * which builds the statement(s) it emits one by one; the other ops are their
 * row's function (ops_data.c). Errors carry the revision's file:line and the
 * op's name, server errors included.
 */
#include <string.h>

#include "luamig.h"
#include "ops.h"

/* op.<ddl>(...): upvalues ctx, the op's row */
static int op_ddl(lua_State *L) {
  luamig_opctx *ctx = lua_touserdata(L, lua_upvalueindex(1));
  const luamig_opspec *spec = lua_touserdata(L, lua_upvalueindex(2));
  luamig_opcall op = { spec, spec->what, 1 };
  int nargs = luamig_op_nargs(spec);
  if (lua_gettop(L) > nargs)
    luamig_op_error(L, op.what, "takes at most %d arguments (got %d)", nargs, lua_gettop(L));
  lua_settop(L, nargs);
  luamig_op_check(L, &op);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  spec->build(L, &b, &op);
  luaL_pushresult(&b);
  /* CREATE INDEX CONCURRENTLY refuses to run in a transaction: say why before sending */
  bool concurrently = (spec->flags & LUAMIG_OP_CONCURRENT)
                      && luamig_opt_bool(L, op.what, luamig_arg(L, &op, "options"), "concurrently") == 1;
  if (concurrently && ctx->transactional)
    luamig_op_error(L, op.what, "concurrently = true needs a revision with transactional = false");
  bool build = concurrently && (spec->flags & LUAMIG_OP_BUILDS_INDEX) && ctx->conn != NULL;
  if (build) luamig_index_prepare(L, ctx, &op);
  luamig_op_emit_all(L, ctx, op.what, 0, NULL, true);   /* DDL: no answer needed, may wait */
  if (build) luamig_index_check(L, ctx, &op);
  return 0;
}

void luamig_ops_push(lua_State *L, int ctx_idx) {
  ctx_idx = lua_absindex(L, ctx_idx);
  luaL_checkudata(L, ctx_idx, LUAMIG_OPCTX_MT);
  lua_createtable(L, 0, luamig_nopspecs);
  for (int i = 0; i < luamig_nopspecs; i++) {
    const luamig_opspec *spec = &luamig_opspecs[i];
    lua_pushvalue(L, ctx_idx);
    lua_pushlightuserdata(L, (void *)spec);
    lua_pushcclosure(L, spec->build ? op_ddl : spec->call, 2);
    lua_setfield(L, -2, spec->name);
  }
}

/* ---- module functions (for the Lua API and the specs) ---- */

/* ops(ctx) -> a fresh op table bound to ctx */
static int mod_ops(lua_State *L) {
  luaL_checkudata(L, 1, LUAMIG_OPCTX_MT);
  luamig_ops_push(L, 1);
  return 1;
}

static const luaL_Reg opslib[] = {
  { "ops", mod_ops },
  { "op_specs", luamig_op_specs },
  { NULL, NULL }
};

int luamig_open_ops(lua_State *L) {
  luaL_newlib(L, opslib);
  return 1;
}

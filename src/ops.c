/*
 * ops.c: the op.* API given to revisions, bound from C.
 *
 * An op context is where statements go: a live connection (user value 2
 * keeps it alive) or, offline, its script table (user value 1) of statement
 * texts for --sql. Each op is a closure over its context: it checks its
 * arguments, has sql.c build the statement, and emits it. Errors carry the
 * revision's file:line and the op's name, server errors included.
 *
 * luamig_emit takes a bare context pointer (the runner and the version table
 * call it too); a weak registry map from pointer to userdata finds the
 * script table again.
 */
#include <string.h>

#include "luamig.h"

#define CTX_INDEX "luamig.opctx.index"   /* registry: ctx pointer -> ctx userdata (weak) */

/* ---- contexts ---- */

static int ctx_tostring(lua_State *L) {
  luamig_opctx *ctx = luaL_checkudata(L, 1, LUAMIG_OPCTX_MT);
  if (ctx->conn != NULL) {
    lua_pushliteral(L, "luamig.opctx (live)");
  } else {
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "luamig.opctx (offline, %d statements)", (int)lua_rawlen(L, -1));
  }
  return 1;
}

static const luaL_Reg ctx_metameth[] = {
  { "__tostring", ctx_tostring },
  { NULL, NULL }
};

static void pushmeta(lua_State *L) {
  if (luaL_newmetatable(L, LUAMIG_OPCTX_MT)) luaL_setfuncs(L, ctx_metameth, 0);
}

/* Pushes the weak pointer -> context map. */
static void push_index(lua_State *L) {
  if (!luaL_getsubtable(L, LUA_REGISTRYINDEX, CTX_INDEX)) {
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
}

luamig_opctx *luamig_opctx_new(lua_State *L, int conn_idx) {
  luamig_conn *c = NULL;
  if (conn_idx != 0 && !lua_isnoneornil(L, conn_idx)) {
    conn_idx = lua_absindex(L, conn_idx);
    c = luamig_conn_check(L, conn_idx);
  }
  luamig_opctx *ctx = lua_newuserdatauv(L, sizeof *ctx, 2);
  ctx->conn = c;
  ctx->transactional = true;
  pushmeta(L);
  lua_setmetatable(L, -2);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  if (c != NULL) {
    lua_pushvalue(L, conn_idx);
    lua_setiuservalue(L, -2, 2);
  }
  push_index(L);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, ctx);
  lua_pop(L, 1);
  return ctx;
}

/* Ends the offline statement in b with ";" (on its own line when the last line
 * has "--", which could be a comment swallowing it). */
static void terminate(luaL_Buffer *b) {
  while (luaL_bufflen(b) > 0 && strchr(" \t\r\n\f\v", luaL_buffaddr(b)[luaL_bufflen(b) - 1]))
    luaL_buffsub(b, 1);
  const char *s = luaL_buffaddr(b);
  size_t n = luaL_bufflen(b);
  if (n > 0 && s[n - 1] == ';') return;
  size_t line = n;
  while (line > 0 && s[line - 1] != '\n') line--;
  bool dashes = false;
  for (size_t i = line; i + 1 < n && !dashes; i++) dashes = s[i] == '-' && s[i + 1] == '-';
  luaL_addstring(b, dashes ? "\n;" : ";");
}

long luamig_emit(lua_State *L, luamig_opctx *ctx, const char *sql,
                 int nparams, const char *const *params) {
  if (ctx->conn != NULL) return luamig_exec(L, ctx->conn, sql, nparams, params);
  push_index(L);
  if (lua_rawgetp(L, -1, ctx) != LUA_TUSERDATA)
    luaL_error(L, "luamig_emit: unknown op context");
  lua_getiuservalue(L, -1, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_sql_inline(L, &b, sql, nparams, params);
  terminate(&b);
  luaL_pushresult(&b);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 3);
  return 0;
}

/* ---- emitting from an op: errors get the revision's position and the op ---- */

struct emit_call {
  luamig_opctx *ctx;
  const char *sql;
  int nparams;
  const char *const *params;
  long count;
};

static int emit_protected(lua_State *L) {
  struct emit_call *e = lua_touserdata(L, 1);
  e->count = luamig_emit(L, e->ctx, e->sql, e->nparams, e->params);
  return 0;
}

/* luamig_emit, re-raising a failure as "file:line: op.x: <error>". */
static long op_emit(lua_State *L, luamig_opctx *ctx, const char *what, const char *sql,
                    int nparams, const char *const *params) {
  struct emit_call e = { ctx, sql, nparams, params, 0 };
  lua_pushcfunction(L, emit_protected);
  lua_pushlightuserdata(L, &e);
  int status = lua_pcall(L, 1, 0, 0);
  if (status == LUA_OK) return e.count;
  if (status == LUA_ERRRUN && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);                /* we are the op again: level 1 is the revision */
    lua_pushfstring(L, "%s: ", what);
    lua_rotate(L, -3, -1);
    lua_concat(L, 3);
  }
  return lua_error(L);
}

/* ---- the ops ---- */

static const struct ddl_op {
  const char *name, *what;
  int nargs;
  luamig_sql_builder build;
} ddl_ops[] = {                      /* alphabetical; one sql.c builder each */
  { "add_column", "op.add_column", 3, luamig_sql_add_column },
  { "create_index", "op.create_index", 4, luamig_sql_create_index },
  { "create_table", "op.create_table", 3, luamig_sql_create_table },
  { "drop_column", "op.drop_column", 3, luamig_sql_drop_column },
  { "drop_index", "op.drop_index", 2, luamig_sql_drop_index },
  { "drop_table", "op.drop_table", 2, luamig_sql_drop_table },
};

#define NDDL ((int)(sizeof ddl_ops / sizeof ddl_ops[0]))

static luamig_opctx *upctx(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* op.<ddl>(...): upvalues ctx, index in ddl_ops */
static int op_ddl(lua_State *L) {
  luamig_opctx *ctx = upctx(L);
  const struct ddl_op *op = &ddl_ops[lua_tointeger(L, lua_upvalueindex(2))];
  if (lua_gettop(L) > op->nargs)
    luamig_op_error(L, op->what, "takes at most %d arguments (got %d)", op->nargs, lua_gettop(L));
  lua_settop(L, op->nargs);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  op->build(L, &b, op->what, 1);
  luaL_pushresult(&b);
  op_emit(L, ctx, op->what, lua_tostring(L, -1), 0, NULL);
  return 0;
}

/* op.execute(sql [, params]) -> affected rows (0 offline). params: an array,
 * with params.n when it has trailing or inner nils. */
static int op_execute(lua_State *L) {
  static const char what[] = "op.execute";
  luamig_opctx *ctx = upctx(L);
  if (lua_gettop(L) > 2)
    luamig_op_error(L, what, "takes at most 2 arguments (got %d); pass parameters as an "
                    "array: op.execute(sql, { a, b })", lua_gettop(L));
  lua_settop(L, 2);
  if (lua_type(L, 1) != LUA_TSTRING)
    luamig_op_error(L, what, "SQL must be a string (got %s)", luaL_typename(L, 1));
  size_t len;
  const char *sql = lua_tolstring(L, 1, &len);
  if (strlen(sql) < len) luamig_op_error(L, what, "SQL contains a NUL byte");
  if (strspn(sql, " \t\r\n\f\v") == len) luamig_op_error(L, what, "empty SQL");
  lua_Integer n = 0;
  if (lua_istable(L, 2)) {
    n = lua_getfield(L, 2, "n") == LUA_TNUMBER && lua_isinteger(L, -1)
      ? lua_tointeger(L, -1) : luaL_len(L, 2);
    lua_pop(L, 1);
    if (n < 0 || n > 65535)
      luamig_op_error(L, what, "bad parameter count %d (at most 65535)", (int)n);
    if (!lua_checkstack(L, (int)n + LUA_MINSTACK))
      luamig_op_error(L, what, "too many parameters");
    for (lua_Integer i = 1; i <= n; i++) lua_geti(L, 2, i);
  } else if (!lua_isnil(L, 2)) {
    luamig_op_error(L, what, "params must be an array (got %s)", luaL_typename(L, 2));
  }
  const char **params = luamig_params(L, 3, (int)n, what);
  lua_pushinteger(L, op_emit(L, ctx, what, sql, (int)n, params));
  return 1;
}

void luamig_ops_push(lua_State *L, int ctx_idx) {
  ctx_idx = lua_absindex(L, ctx_idx);
  luaL_checkudata(L, ctx_idx, LUAMIG_OPCTX_MT);
  lua_createtable(L, 0, NDDL + 1);
  for (int i = 0; i < NDDL; i++) {
    lua_pushvalue(L, ctx_idx);
    lua_pushinteger(L, i);
    lua_pushcclosure(L, op_ddl, 2);
    lua_setfield(L, -2, ddl_ops[i].name);
  }
  lua_pushvalue(L, ctx_idx);
  lua_pushcclosure(L, op_execute, 1);
  lua_setfield(L, -2, "execute");
}

/* ---- module functions (for the Lua API and the specs) ---- */

/* new_context([conn]) -> ctx: live on conn, offline without */
static int mod_new_context(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luamig_conn_check(L, 1);
  luamig_opctx_new(L, lua_isnoneornil(L, 1) ? 0 : 1);
  return 1;
}

/* ops(ctx) -> a fresh op table bound to ctx */
static int mod_ops(lua_State *L) {
  luaL_checkudata(L, 1, LUAMIG_OPCTX_MT);
  luamig_ops_push(L, 1);
  return 1;
}

/* script(ctx) -> a copy of the offline statements, each ending in ";" */
static int mod_script(lua_State *L) {
  luaL_checkudata(L, 1, LUAMIG_OPCTX_MT);
  lua_getiuservalue(L, 1, 1);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

static const luaL_Reg opslib[] = {
  { "new_context", mod_new_context },
  { "ops", mod_ops },
  { "script", mod_script },
  { NULL, NULL }
};

int luamig_open_ops(lua_State *L) {
  pushmeta(L);
  lua_pop(L, 1);
  luaL_newlib(L, opslib);
  return 1;
}

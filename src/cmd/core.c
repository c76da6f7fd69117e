/*
 * core.c: the luamig.core module. Opens each part in a visible order and
 * merges their functions into one table; lua/luamig/init.lua is the public face.
 */
#include "luamig.h"
#include "cmd.h"

/* Moves every field of the table at the top into the table at dst, pops it. */
static void merge(lua_State *L, int dst) {
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, dst);
  }
  lua_pop(L, 1);
}

int luaopen_luamig_core(lua_State *L) {
  static lua_CFunction const parts[] = {
    luamig_open_conn,                /* connect, sqlstate, redact */
    luamig_open_sqltext,             /* quote_ident, quote_literal, sql_tokens, ... */
    luamig_open_sink,                /* op contexts, for tests and offline scripts */
    luamig_open_ops,                 /* op tables bound to a context, op_specs */
    luamig_open_runner,              /* upgrade, downgrade */
    luamig_open_stamp,               /* stamp */
    luamig_open_report,              /* current, heads, history, show, branches, status, verify */
    luamig_open_scaffold,            /* init, revision */
    luamig_open_autogen,             /* autogenerate, check */
    luamig_open_lint,                /* lint */
    luamig_open_test,                /* test, scratch */
  };
  lua_newtable(L);
  int mod = lua_gettop(L);
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    parts[i](L);
    merge(L, mod);
  }
  lua_pushliteral(L, LUAMIG_VERSION);
  lua_setfield(L, mod, "version");
  return 1;
}

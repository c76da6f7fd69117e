/*
 * autogen.c: `revision --autogenerate` and `check`, the models against the
 * live schema. The comparison is Lua (luamig.autogen: the catalog queries,
 * the diff, the rendered op calls); this file gives it the run's config and
 * connection, refuses a database that is not at the head revision(s) (the
 * models describe the schema after every revision), and writes the revision
 * through core.revision, so the file comes from the same template as any other.
 */
#include "luamig.h"
#include "cmd.h"

/* Pushes luamig.core's field name (the merged module: revision). */
static void push_core(lua_State *L, const char *name) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "luamig.core") != LUA_TTABLE)
    luaL_error(L, "luamig.core is not loaded");
  lua_getfield(L, -1, name);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* Pushes luamig.autogen.run(conn, cfg, opts): { changes =, upgrade_body =,
 * downgrade_body =, models = }. Options at 1. */
static int push_comparison(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, LUAMIG_RUN_CONNECT);
  luamig_run_connect(&r);
  int conn = r.conn;
  int *cur = luamig_scratch(L, r.g->n);
  int ncur = luamig_read_current(&r, cur, NULL);
  luamig_step *steps;
  int pending = luamig_plan(L, r.g, cur, ncur, "heads", true, &steps);
  if (pending > 0)
    luaL_error(L, "Target database is not up to date: %d revision%s pending (see 'luamig "
               "status'); run 'luamig upgrade heads' first, the models are compared with the "
               "schema the revisions make", pending, pending == 1 ? " is" : "s are");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luamig.autogen");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "run");
  lua_pushvalue(L, conn);
  lua_pushvalue(L, r.cfg);
  lua_pushvalue(L, r.opts);
  lua_call(L, 3, 1);
  return lua_gettop(L);
}

/* autogenerate(opts) -> { changes = {...}, path =, revision = }: path is absent
 * when nothing changed and opts.allow_empty is not set. Takes revision's options
 * (message, rev_id, head, ...) and config, url, models. */
static int mod_autogenerate(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  int res = push_comparison(L);
  lua_getfield(L, res, "changes");
  bool empty = lua_rawlen(L, -1) == 0;
  lua_pop(L, 1);
  lua_getfield(L, 1, "allow_empty");
  bool allow_empty = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (empty && !allow_empty) {
    lua_pushvalue(L, res);
    return 1;
  }
  /* core.revision with a copy of the options and the bodies */
  push_core(L, "revision");
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, -4);
  }
  lua_getfield(L, res, "upgrade_body");
  lua_setfield(L, -2, "upgrade_body");
  lua_getfield(L, res, "downgrade_body");
  lua_setfield(L, -2, "downgrade_body");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "path");
  lua_setfield(L, res, "path");
  lua_getfield(L, -1, "revision");
  lua_setfield(L, res, "revision");
  lua_pushvalue(L, res);
  return 1;
}

/* check(opts) -> { changes = {...}, ... }: what autogenerate would write; empty
 * when the models and the database agree. */
static int mod_check(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  push_comparison(L);
  return 1;
}

static const luaL_Reg autogen_funcs[] = {
  { "autogenerate", mod_autogenerate },
  { "check", mod_check },
  { NULL, NULL }
};

int luamig_open_autogen(lua_State *L) {
  luaL_newlib(L, autogen_funcs);
  return 1;
}

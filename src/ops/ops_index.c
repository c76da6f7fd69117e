/*
 * ops_index.c: what a live op.create_index with concurrently = true does
 * around its CREATE INDEX CONCURRENTLY. A concurrent build that fails (a lock
 * timeout, a duplicate key) leaves an INVALID index: unused by queries, still
 * maintained on every write, and skipped by IF NOT EXISTS on the next try. So
 * the op first drops an invalid index of that name, and after the build
 * checks that the index is valid. Offline (--sql) there is no catalog to ask:
 * the script has the CREATE alone.
 */
#include <string.h>

#include "luamig.h"
#include "ops.h"

/* Pushes the rows { schema, valid } of the index the op names in the schema
 * of its table (its table, opts.schema). */
static void find_index(lua_State *L, luamig_opctx *ctx, const luamig_opcall *op) {
  const char *name = lua_tostring(L, luamig_arg(L, op, "name"));
  int opts = luamig_arg(L, op, "options");
  const char *schema = lua_istable(L, opts) && lua_getfield(L, opts, "schema") == LUA_TSTRING
                     ? lua_tostring(L, -1) : NULL;
  if (lua_istable(L, opts)) lua_pop(L, 1);       /* opts keeps it */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_quote_qualified(L, &b, schema, lua_tostring(L, luamig_arg(L, op, "table")));
  luaL_pushresult(&b);
  const char *params[2] = { name, lua_tostring(L, -1) };
  luamig_op_send(L, ctx, op->what,
    "SELECT n.nspname AS schema, i.indisvalid AS valid FROM pg_catalog.pg_index i "
    "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = $1 AND c.relnamespace = (SELECT relnamespace FROM pg_catalog.pg_class "
    "WHERE oid = pg_catalog.to_regclass($2))", 2, params, true);
  lua_remove(L, -2);
}

/* Whether the rows at the top name an index that is not valid (its schema
 * pushed then, else nothing). Pops the rows. */
static bool invalid(lua_State *L) {
  bool found = lua_geti(L, -1, 1) == LUA_TTABLE;
  bool bad = found && lua_getfield(L, -1, "valid") == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  if (bad) lua_getfield(L, -2, "schema");
  if (bad) lua_replace(L, -4);
  lua_pop(L, found ? (bad ? 2 : 3) : 2);
  return bad;
}

void luamig_index_prepare(lua_State *L, luamig_opctx *ctx, const luamig_opcall *op) {
  find_index(L, ctx, op);
  if (!invalid(L)) return;
  const char *schema = lua_tostring(L, -1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "DROP INDEX CONCURRENTLY IF EXISTS ");
  luamig_quote_qualified(L, &b, schema, lua_tostring(L, luamig_arg(L, op, "name")));
  luaL_pushresult(&b);
  luamig_op_send(L, ctx, op->what, lua_tostring(L, -1), 0, NULL, false);
  lua_pop(L, 2);
}

void luamig_index_check(lua_State *L, luamig_opctx *ctx, const luamig_opcall *op) {
  find_index(L, ctx, op);
  if (!invalid(L)) return;
  luamig_op_error(L, op->what, "index \"%s\" is INVALID after CREATE INDEX CONCURRENTLY (built by "
                  "another session at the same time?): queries do not use it; running again "
                  "drops and rebuilds it", lua_tostring(L, luamig_arg(L, op, "name")));
}

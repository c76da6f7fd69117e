/*
 * ops_data.c: the ops that are not DDL (rows of the op registry with a function):
 * op.execute and op.query, whose values go as parameters, op.bulk_insert, and
 * op.safe, which only the lint reads. Each is a closure over its op context
 * (upvalue 1) and its registry row (upvalue 2).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "luamig.h"
#include "ops.h"

static luamig_opctx *upctx(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* Refuses, before it runs, SQL that would end the revision's transaction
 * (luamig commits it with its version row) or drop the migration lock. */
static void check_txn_control(lua_State *L, const luamig_opctx *ctx, const char *what,
                              const char *sql) {
  char found[64];
  if (!ctx->transactional || !luamig_sql_txn_control(sql, found, sizeof found)) return;
  if (strncasecmp(found, "pg_advisory_unlock", 18) == 0 || found[0] == '"')
    luamig_op_error(L, what, "%s could release luamig's migration lock, which must hold until "
                    "the run ends (use pg_advisory_xact_lock, released at COMMIT, or a revision "
                    "with transactional = false for locks of your own)", found);
  luamig_op_error(L, what, "%s would end the revision's transaction, which luamig commits "
                  "itself with the version row; a revision that controls its transactions "
                  "must set transactional = false", found);
}

/* Checks sql (stack slot 1) and pushes the parameters of the array at slot 2
 * (params.n when it has trailing or inner nils) from slot 3 on; returns their
 * count and their text through *params. */
static int push_sql_params(lua_State *L, const luamig_opctx *ctx, const char *what,
                           const char ***params) {
  if (lua_gettop(L) > 2)
    luamig_op_error(L, what, "takes at most 2 arguments (got %d); pass parameters as an "
                    "array: %s(sql, { a, b })", lua_gettop(L), what);
  lua_settop(L, 2);
  if (lua_type(L, 1) != LUA_TSTRING)
    luamig_op_error(L, what, "SQL must be a string (got %s)", luaL_typename(L, 1));
  size_t len;
  const char *sql = lua_tolstring(L, 1, &len);
  if (strlen(sql) < len) luamig_op_error(L, what, "SQL contains a NUL byte");
  if (strspn(sql, " \t\r\n\f\v") == len) luamig_op_error(L, what, "empty SQL");
  check_txn_control(L, ctx, what, sql);
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
  /* the server takes one statement with parameters; --sql would write them all */
  if (n > 0 && luamig_sql_count_statements(sql) > 1)
    luamig_op_error(L, what, "SQL with parameters must be one statement (the server runs one; "
                    "split it into one %s call per statement)", what);
  *params = luamig_params(L, 3, (int)n, what);
  return (int)n;
}

/* op.execute(sql [, params]) -> affected rows (0 offline) */
int luamig_op_execute(lua_State *L) {
  static const char what[] = "op.execute";
  luamig_opctx *ctx = upctx(L);
  const char **params;
  int n = push_sql_params(L, ctx, what, &params);
  lua_pushinteger(L, luamig_op_send(L, ctx, what, lua_tostring(L, 1), n, params, false));
  return 1;
}

/* op.query(sql [, params]) -> rows: an array of tables keyed by column name,
 * values converted as luamig_query does. Live only. */
int luamig_op_query(lua_State *L) {
  static const char what[] = "op.query";
  luamig_opctx *ctx = upctx(L);
  const char **params;
  int n = push_sql_params(L, ctx, what, &params);
  if (ctx->conn == NULL) {
    luaL_where(L, 1);
    lua_pushliteral(L, "op.query needs a live database; offline --sql cannot run data queries");
    lua_concat(L, 2);
    return lua_error(L);
  }
  luamig_op_send(L, ctx, what, lua_tostring(L, 1), n, params, true);
  return 1;
}

/* op.safe(rule, why): for the safety lint, which reads it from the revision's
 * source (docs/safety-lint.md); running, it only checks its arguments. */
int luamig_op_safe(lua_State *L) {
  static const char what[] = "op.safe";
  if (lua_type(L, 1) != LUA_TSTRING || lua_type(L, 2) != LUA_TSTRING
      || strspn(lua_tostring(L, 2), " \t\r\n\f\v") == lua_rawlen(L, 2))
    luamig_op_error(L, what, "expects a rule id and a reason: op.safe(\"rule-id\", \"why\")");
  return 0;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define MAX_COLUMNS 1600             /* PostgreSQL's limit per table */
#define BULK_ROWS 500                /* rows per INSERT, fewer when 65535 parameters come first */

/* Pushes the set of the column names the n rows (the array at rows) use, checking
 * each value; returns how many there are. */
static int push_columns(lua_State *L, const char *what, int rows, lua_Integer n) {
  lua_newtable(L);
  int set = lua_gettop(L), ncols = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, rows, i) != LUA_TTABLE)
      luamig_op_error(L, what, "row %d must be a table keyed by column name (got %s)",
                      (int)i, luaL_typename(L, -1));
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING)
        luamig_op_error(L, what, "row %d: key %s is not a column name", (int)i,
                        luaL_tolstring(L, -2, NULL));
      int vt = lua_type(L, -1);
      if (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN)
        luamig_op_error(L, what, "row %d, column \"%s\": value must be a boolean, a number or "
                        "a string (got %s)", (int)i, lua_tostring(L, -2), luaL_typename(L, -1));
      if (vt == LUA_TSTRING && strlen(lua_tostring(L, -1)) < lua_rawlen(L, -1))
        luamig_op_error(L, what, "row %d, column \"%s\": value contains a NUL byte", (int)i,
                        lua_tostring(L, -2));
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      if (lua_rawget(L, set) == LUA_TNIL) {
        lua_pushvalue(L, -2);
        lua_pushboolean(L, 1);
        lua_rawset(L, set);
        ncols++;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return ncols;
}

/* op.bulk_insert(table, rows [, {schema=}]) -> affected rows (0 offline). rows:
 * an array of tables keyed by column name; the columns are the union of their
 * keys, sorted; a row without a key gets the column's DEFAULT. Values go as
 * parameters, BULK_ROWS rows per statement. */
int luamig_op_bulk_insert(lua_State *L) {
  static const char what[] = "op.bulk_insert";
  luamig_opctx *ctx = upctx(L);
  luamig_opcall op = { lua_touserdata(L, lua_upvalueindex(2)), what, 1 };
  if (lua_gettop(L) > 3)
    luamig_op_error(L, what, "takes at most 3 arguments (got %d)", lua_gettop(L));
  lua_settop(L, 3);
  const int table = 1, rows = 2, opts = 3;
  luamig_op_check(L, &op);
  lua_Integer n = luamig_check_array(L, what, rows, "rows");
  if (n > INT_MAX / 2) luamig_op_error(L, what, "too many rows");
  const int set = 4;
  int ncols = push_columns(L, what, rows, n);   /* 4: set of column names */
  if (n == 0) { lua_pushinteger(L, 0); return 1; }
  if (ncols > MAX_COLUMNS)           /* and more than a statement's 65535 parameters per row */
    luamig_op_error(L, what, "%d columns, more than a table can have (%d)", ncols, MAX_COLUMNS);

  /* 5: the column names, sorted (strcmp: byte order, whatever the locale) */
  const char **names = lua_newuserdatauv(L, (size_t)(ncols > 0 ? ncols : 1) * sizeof *names, 0);
  int k = 0;
  lua_pushnil(L);
  while (lua_next(L, set) != 0) {
    lua_pop(L, 1);
    names[k++] = lua_tostring(L, -1);  /* anchored as keys of the set */
  }
  qsort(names, (size_t)ncols, sizeof *names, compare_names);
  lua_createtable(L, ncols, 0);      /* 6 */
  const int cols = 6;
  for (int c = 0; c < ncols; c++) {
    lua_pushstring(L, names[c]);
    lua_rawseti(L, cols, c + 1);
  }

  int per = ncols > 0 && 65535 / ncols < BULK_ROWS ? 65535 / ncols : BULK_ROWS;
  if (!lua_checkstack(L, per * (ncols > 0 ? ncols : 1) + LUA_MINSTACK))
    luamig_op_error(L, what, "too many values");
  int base = lua_gettop(L);
  long count = 0;
  for (int first = 1; first <= (int)n; first += per) {
    int m = (int)n - first + 1 < per ? (int)n - first + 1 : per;
    for (int r = first; r < first + m; r++) {  /* the order of luamig_sql_insert's $n */
      lua_rawgeti(L, rows, r);
      int row = lua_gettop(L);
      for (int c = 1; c <= ncols; c++) {
        lua_rawgeti(L, cols, c);
        if (lua_rawget(L, row) == LUA_TNIL) lua_pop(L, 1);
      }
      lua_remove(L, row);
    }
    int nparams = lua_gettop(L) - base;
    const char **params = luamig_params(L, base + 1, nparams, what);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luamig_sql_insert(L, &b, what, table, opts, cols, ncols, rows, first, m);
    luaL_pushresult(&b);
    if (ncols == 0) {
      count += luamig_op_emit_all(L, ctx, what, 0, NULL, false);
    } else {
      count += luamig_op_send(L, ctx, what, lua_tostring(L, -1), nparams, params, false);
    }
    lua_settop(L, base);
  }
  lua_pushinteger(L, count);
  return 1;
}


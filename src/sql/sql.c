/*
 * sql.c: the helpers the statement builders share (sql_table.c,
 * sql_constraint.c, sql_object.c), all pure (no connection), so the live run
 * and the offline --sql script are built by the same code. Quoting is
 * quote.c's; reading the op's arguments, args.c's.
 *
 * Types, defaults, index expressions, WHERE clauses and table constraints are
 * SQL text and pass through verbatim, one expression each (no ';').
 *
 * The builders append to a luaL_Buffer at the top of the stack, so every Lua
 * value they read goes through the top: pushed, turned into text there (an
 * inner buffer for quoting), then added with luaL_addvalue.
 */
#include <string.h>

#include "luamig.h"
#include "sql.h"

void luamig_sql_next(luaL_Buffer *b) {
  luaL_addchar(b, '\0');
}

void luamig_add_top_ident(lua_State *L, luaL_Buffer *b, const char *what, const char *label) {
  if (lua_type(L, -1) != LUA_TSTRING)
    luamig_op_error(L, what, "%s must be a string (got %s)", label, luaL_typename(L, -1));
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  luaL_Buffer q;
  luaL_buffinit(L, &q);
  luamig_add_ident(L, &q, what, label, s, len);
  luaL_pushresult(&q);
  lua_remove(L, -2);
  luaL_addvalue(b);
}

void luamig_add_top_text(lua_State *L, luaL_Buffer *b, const char *what, const char *label,
                         const char *prefix) {
  /* one expression: a ';' would make the --sql script run more than the live
   * statement (which the server refuses) */
  const char *why = luamig_sql_fragment_problem(luamig_top_string(L, what, label));
  if (why) luamig_op_error(L, what, "%s: %s", label, why);
  lua_pushstring(L, prefix);
  lua_rotate(L, -2, 1);
  lua_concat(L, 2);
  luaL_addvalue(b);
}

void luamig_add_top_literal(lua_State *L, luaL_Buffer *b, const char *what, const char *label,
                            const char *prefix) {
  const char *s = luamig_top_string(L, what, label);
  luaL_Buffer q;
  luaL_buffinit(L, &q);
  luaL_addstring(&q, prefix);
  luamig_quote_literal(&q, s);
  luaL_pushresult(&q);
  lua_remove(L, -2);
  luaL_addvalue(b);
}

void luamig_add_drop(lua_State *L, luaL_Buffer *b, const luamig_opcall *op, const char *kind) {
  const char *label = op->spec->params[0].label;
  int name = luamig_arg(L, op, "name"), opts = luamig_arg(L, op, "options");
  bool qualified = false;
  for (const luamig_option *o = op->spec->options; o->name; o++)
    qualified = qualified || o->kind == LUAMIG_SCHEMA;
  int if_exists = luamig_opt_bool(L, op->what, opts, "if_exists");
  int cascade = luamig_opt_bool(L, op->what, opts, "cascade");
  luaL_addstring(b, "DROP ");
  luaL_addstring(b, kind);
  luaL_addstring(b, if_exists == 1 ? " IF EXISTS " : " ");
  if (qualified) luamig_add_relation(L, b, op->what, name, opts, label);
  else luamig_add_ident(L, b, op->what, label, lua_tostring(L, name), lua_rawlen(L, name));
  if (cascade == 1) luaL_addstring(b, " CASCADE");
}

void luamig_add_relation(lua_State *L, luaL_Buffer *b, const char *what, int name_idx,
                         int opts, const char *label) {
  const char *name = luamig_arg_ident(L, what, name_idx, label);
  if (luamig_push_opt(L, opts, "schema") == LUA_TNIL) {
    lua_pop(L, 1);
  } else {
    luamig_add_top_ident(L, b, what, "schema");
    luaL_addchar(b, '.');
  }
  luamig_add_ident(L, b, what, label, name, strlen(name));
}

void luamig_add_ident_list(lua_State *L, luaL_Buffer *b, const char *what, int idx,
                           const char *label) {
  lua_Integer n = luamig_check_array(L, what, idx, label);
  if (n == 0) luamig_op_error(L, what, "%s: needs at least one column", label);
  luaL_addchar(b, '(');
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1) luaL_addstring(b, ", ");
    lua_geti(L, idx, i);
    luamig_add_top_ident(L, b, what, label);
  }
  luaL_addchar(b, ')');
}

/*
 * sqltext.c: the SQL vocabulary of the C core given to Lua (lua/luamig/sqltext.lua
 * and luamig/types.lua are thin faces over it), so that the Lua modules quote,
 * scan and read SQL exactly as the op builders do: one quoting function, one
 * lexer, one list of foreign-key actions, one reader of "table(column)".
 */
#include <string.h>

#include "luamig.h"
#include "sql.h"

/* The string argument arg, refused when it holds a NUL byte. */
static const char *check_text(lua_State *L, int arg) {
  size_t len;
  const char *s = luaL_checklstring(L, arg, &len);
  luaL_argcheck(L, strlen(s) == len, arg, "contains a NUL byte");
  return s;
}

/* quote_ident(name [, plain]) -> "name"; with plain, a name PostgreSQL reads back
 * unchanged stays bare (users, not "users"). Raises on an empty name, a NUL byte
 * or more than 63 bytes. */
static int mod_quote_ident(lua_State *L) {
  const char *name = check_text(L, 1);
  if (lua_toboolean(L, 2) && luamig_ident_is_plain(name, lua_rawlen(L, 1))) {
    lua_settop(L, 1);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_quote_ident(L, &b, name);
  luaL_pushresult(&b);
  return 1;
}

/* quote_literal(s) -> 's' ('' doubled; E'...' when s has a backslash) */
static int mod_quote_literal(lua_State *L) {
  const char *s = check_text(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_quote_literal(&b, s);
  luaL_pushresult(&b);
  return 1;
}

/* sql_tokens(sql) -> the tokens of sql (see luamig_push_sql_tokens) */
static int mod_sql_tokens(lua_State *L) {
  luamig_push_sql_tokens(L, check_text(L, 1));
  return 1;
}

/* fk_action(name) -> its SQL ("set null" -> "SET NULL", any case), or nil */
static int mod_fk_action(lua_State *L) {
  const char *sql = luamig_fk_action(luaL_checkstring(L, 1));
  if (sql) lua_pushstring(L, sql);
  else lua_pushnil(L);
  return 1;
}

/* parse_reference(ref) -> schema|nil, table, { columns }|nil; or nil, nil, nil, why */
static int mod_parse_reference(lua_State *L) {
  const char *why = luamig_push_reference(L, luaL_checkstring(L, 1));
  if (why == NULL) return 3;
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushstring(L, why);
  return 4;
}

static const luaL_Reg sqltextlib[] = {
  { "quote_ident", mod_quote_ident },
  { "quote_literal", mod_quote_literal },
  { "sql_tokens", mod_sql_tokens },
  { "fk_action", mod_fk_action },
  { "parse_reference", mod_parse_reference },
  { NULL, NULL }
};

int luamig_open_sqltext(lua_State *L) {
  luaL_newlib(L, sqltextlib);
  lua_pushinteger(L, LUAMIG_MAX_IDENT);
  lua_setfield(L, -2, "max_ident");
  lua_pushliteral(L, LUAMIG_FK_ACTIONS);
  lua_setfield(L, -2, "fk_actions");
  return 1;
}

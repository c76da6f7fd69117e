/*
 * sql.c: identifier quoting, literals and the helpers the statement builders
 * share (sql_table.c, sql_object.c), all pure (no connection), so the live run
 * and the offline --sql script are built by the same code.
 *
 * Identifiers are always quoted ("users", not users), by luamig_add_ident and
 * nothing else: a name reaches the catalog exactly as written (case, spaces,
 * keywords, unicode), no keyword list has to track the server's grammar, and a
 * name over 63 bytes is an error instead of the server's silent truncation.
 * Types, defaults, index expressions, WHERE clauses and table constraints are
 * SQL text and pass through verbatim, one expression each (no ';').
 *
 * The builders append to a luaL_Buffer at the top of the stack, so every Lua
 * value they read goes through the top: pushed, turned into text there (an
 * inner buffer for quoting), then added with luaL_addvalue.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"

int luamig_op_error(lua_State *L, const char *what, const char *fmt, ...) {
  va_list ap;
  luaL_where(L, 1);
  lua_pushstring(L, what);
  lua_pushliteral(L, ": ");
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 4);
  return lua_error(L);
}

/* luamig_op_error, or a plain luaL_error when there is no op (what == NULL). */
static int fail(lua_State *L, const char *what, const char *fmt, const char *a, int n) {
  if (what != NULL) return luamig_op_error(L, what, fmt, a, n);
  return luaL_error(L, fmt, a, n);
}

/* ---- quoting ---- */

static void add_quoted(luaL_Buffer *b, const char *s, size_t len, char q) {
  luaL_addchar(b, q);
  for (size_t i = 0; i < len; i++) {
    if (s[i] == q) luaL_addchar(b, q);
    luaL_addchar(b, s[i]);
  }
  luaL_addchar(b, q);
}

void luamig_add_ident(lua_State *L, luaL_Buffer *b, const char *what, const char *label,
                      const char *s, size_t len) {
  if (len == 0)
    fail(L, what, what ? "empty identifier (%s)" : "empty identifier", label, 0);
  if (strlen(s) < len)
    fail(L, what, "%s contains a NUL byte", label, 0);
  if (len > LUAMIG_MAX_IDENT)
    fail(L, what, "identifier \"%s\" is longer than %d bytes",
         lua_pushlstring(L, s, len), LUAMIG_MAX_IDENT);
  add_quoted(b, s, len, '"');
}

/* PostgreSQL's reserved words and those that cannot name a column: a name that is
 * one needs quotes even where a plain name may go bare. Sorted, for bsearch. */
static const char *const reserved[] = {
  "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
  "authorization", "binary", "both", "case", "cast", "check", "collate", "collation", "column",
  "concurrently", "constraint", "create", "cross", "current_catalog", "current_date",
  "current_role", "current_schema", "current_time", "current_timestamp", "current_user",
  "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false", "fetch",
  "for", "foreign", "freeze", "from", "full", "grant", "group", "having", "ilike", "in",
  "initially", "inner", "intersect", "into", "is", "isnull", "join", "lateral", "leading", "left",
  "like", "limit", "localtime", "localtimestamp", "natural", "not", "notnull", "null", "offset",
  "on", "only", "or", "order", "outer", "overlaps", "placing", "primary", "references",
  "returning", "right", "select", "session_user", "similar", "some", "symmetric", "system_user",
  "table", "tablesample", "then", "to", "trailing", "true", "union", "unique", "user", "using",
  "variadic", "verbose", "when", "where", "window", "with"
};

static int compare_word(const void *key, const void *elem) {
  return strcmp(key, *(const char *const *)elem);
}

bool luamig_ident_is_plain(const char *s, size_t len) {
  if (len == 0 || len > LUAMIG_MAX_IDENT || !((*s >= 'a' && *s <= 'z') || *s == '_')) return false;
  for (size_t i = 1; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$')) return false;
  }
  char word[LUAMIG_MAX_IDENT + 1];
  memcpy(word, s, len);
  word[len] = '\0';
  return bsearch(word, reserved, sizeof reserved / sizeof reserved[0], sizeof reserved[0],
                 compare_word) == NULL;
}

void luamig_quote_ident(lua_State *L, luaL_Buffer *b, const char *name) {
  luamig_add_ident(L, b, NULL, "identifier", name, strlen(name));
}

void luamig_quote_qualified(lua_State *L, luaL_Buffer *b, const char *schema,
                            const char *name) {
  if (schema != NULL) {
    luamig_quote_ident(L, b, schema);
    luaL_addchar(b, '.');
  }
  luamig_quote_ident(L, b, name);
}

/* '...' with ' doubled; a string with a backslash is written E'...' with \
 * doubled too, so it reads the same whatever standard_conforming_strings is. */
void luamig_quote_literal(luaL_Buffer *b, const char *s) {
  if (strchr(s, '\\') == NULL) {
    add_quoted(b, s, strlen(s), '\'');
    return;
  }
  luaL_addstring(b, "E'");
  for (; *s; s++) {
    if (*s == '\'' || *s == '\\') luaL_addchar(b, *s);
    luaL_addchar(b, *s);
  }
  luaL_addchar(b, '\'');
}

void luamig_sql_next(luaL_Buffer *b) {
  luaL_addchar(b, '\0');
}

/* ---- reading Lua values for the builders ---- */

/* The string at the top, checked to be a string without NUL bytes. */
static const char *top_string(lua_State *L, const char *what, const char *label) {
  if (lua_type(L, -1) != LUA_TSTRING)
    luamig_op_error(L, what, "%s must be a string (got %s)", label, luaL_typename(L, -1));
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (strlen(s) < len) luamig_op_error(L, what, "%s contains a NUL byte", label);
  return s;
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
  const char *why = luamig_sql_fragment_problem(top_string(L, what, label));
  if (why) luamig_op_error(L, what, "%s: %s", label, why);
  lua_pushstring(L, prefix);
  lua_rotate(L, -2, 1);
  lua_concat(L, 2);
  luaL_addvalue(b);
}

void luamig_add_top_literal(lua_State *L, luaL_Buffer *b, const char *what, const char *label,
                            const char *prefix) {
  const char *s = top_string(L, what, label);
  luaL_Buffer q;
  luaL_buffinit(L, &q);
  luaL_addstring(&q, prefix);
  luamig_quote_literal(&q, s);
  luaL_pushresult(&q);
  lua_remove(L, -2);
  luaL_addvalue(b);
}

const char *luamig_arg_ident(lua_State *L, const char *what, int idx, const char *label) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luamig_op_error(L, what, "%s must be a string (got %s)", label, luaL_typename(L, idx));
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (len == 0) luamig_op_error(L, what, "empty identifier (%s)", label);
  if (strlen(s) < len) luamig_op_error(L, what, "%s contains a NUL byte", label);
  if (len > LUAMIG_MAX_IDENT)
    luamig_op_error(L, what, "identifier \"%s\" is longer than %d bytes", s, LUAMIG_MAX_IDENT);
  return s;
}

int luamig_push_opt(lua_State *L, int opts, const char *key) {
  if (!lua_istable(L, opts)) { lua_pushnil(L); return LUA_TNIL; }
  return lua_getfield(L, opts, key);
}

int luamig_opt_bool(lua_State *L, const char *what, int opts, const char *key) {
  int type = luamig_push_opt(L, opts, key);
  int v = type == LUA_TNIL ? -1 : lua_toboolean(L, -1);
  if (type != LUA_TNIL && type != LUA_TBOOLEAN)
    luamig_op_error(L, what, "%s must be a boolean (got %s)", key, lua_typename(L, type));
  lua_pop(L, 1);
  return v;
}

bool luamig_push_opt_string(lua_State *L, const char *what, int opts, const char *key,
                            const char *expected) {
  int type = luamig_push_opt(L, opts, key);
  if (type == LUA_TNIL) { lua_pop(L, 1); return false; }
  if (type != LUA_TSTRING)
    luamig_op_error(L, what, "%s must be %s (got %s)", key, expected, lua_typename(L, type));
  top_string(L, what, key);
  return true;
}

lua_Integer luamig_check_array(lua_State *L, const char *what, int idx, const char *label) {
  if (!lua_istable(L, idx))
    luamig_op_error(L, what, "%s must be a table (an array) (got %s)", label, luaL_typename(L, idx));
  /* raw: a proxy's __len or __index could make the list endless */
  if (luaL_getmetafield(L, idx, "__index") != LUA_TNIL || luaL_getmetafield(L, idx, "__len") != LUA_TNIL)
    luamig_op_error(L, what, "%s must be a plain array (a table without __index or __len)", label);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n)
      luamig_op_error(L, what, "%s must be an array (found key %s)", label, luaL_tolstring(L, -1, NULL));
  }
  return n;
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

const char *luamig_push_oneline(lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, len);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    p[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
  }
  luaL_pushresultsize(&b, len);
  return lua_tostring(L, -1);
}

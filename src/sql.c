/*
 * sql.c: identifier quoting and statement text, pure (no connection), so the
 * live run and the offline --sql script are built by the same code.
 *
 * Identifiers are always quoted ("users", not users): a name reaches the
 * catalog exactly as written (case, spaces, keywords, unicode), and no keyword
 * list has to track the server's grammar. Types, defaults, index expressions,
 * WHERE clauses and table constraints are SQL text and pass through verbatim.
 *
 * The builders append to a luaL_Buffer at the top of the stack, so every Lua
 * value they read goes through the top: pushed, turned into text there (an
 * inner buffer for quoting), then added with luaL_addvalue.
 */
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "luamig.h"

#define INDENT "\n    "

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

/* ---- quoting ---- */

/* Raises unless s (len bytes) can be an identifier; label says which one. */
static void check_ident(lua_State *L, const char *what, const char *label,
                        const char *s, size_t len) {
  if (len == 0)
    luamig_op_error(L, what, "empty identifier (%s)", label);
  if (strlen(s) < len)
    luamig_op_error(L, what, "%s contains a NUL byte", label);
  if (len > LUAMIG_MAX_IDENT)
    luamig_op_error(L, what, "identifier \"%s\" is longer than %d bytes",
                    lua_pushlstring(L, s, len), LUAMIG_MAX_IDENT);
}

static void add_quoted(luaL_Buffer *b, const char *s, size_t len, char q) {
  luaL_addchar(b, q);
  for (size_t i = 0; i < len; i++) {
    if (s[i] == q) luaL_addchar(b, q);
    luaL_addchar(b, s[i]);
  }
  luaL_addchar(b, q);
}

void luamig_quote_ident(lua_State *L, luaL_Buffer *b, const char *name) {
  size_t len = strlen(name);
  if (len == 0) luaL_error(L, "empty identifier");
  if (len > LUAMIG_MAX_IDENT)
    luaL_error(L, "identifier \"%s\" is longer than %d bytes", name, LUAMIG_MAX_IDENT);
  add_quoted(b, name, len, '"');
}

void luamig_quote_qualified(lua_State *L, luaL_Buffer *b, const char *schema,
                            const char *name) {
  if (schema != NULL) {
    luamig_quote_ident(L, b, schema);
    luaL_addchar(b, '.');
  }
  luamig_quote_ident(L, b, name);
}

/* Standard-conforming strings (the default since 9.1): only ' is special. */
void luamig_quote_literal(luaL_Buffer *b, const char *s) {
  add_quoted(b, s, strlen(s), '\'');
}

/* ---- reading Lua values through the top of the stack ---- */

/* The string at the top (raises otherwise), as an identifier: replaces it with its quoted form and adds that to b. */
static void add_top_ident(lua_State *L, luaL_Buffer *b, const char *what, const char *label) {
  if (lua_type(L, -1) != LUA_TSTRING)
    luamig_op_error(L, what, "%s must be a string (got %s)", label, luaL_typename(L, -1));
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  check_ident(L, what, label, s, len);
  luaL_Buffer q;
  luaL_buffinit(L, &q);
  add_quoted(&q, s, len, '"');
  luaL_pushresult(&q);
  lua_remove(L, -2);
  luaL_addvalue(b);
}

/* Adds prefix and then the string at the top (popped) to b. */
static void add_top_prefixed(lua_State *L, luaL_Buffer *b, const char *prefix) {
  lua_pushstring(L, prefix);
  lua_rotate(L, -2, 1);
  lua_concat(L, 2);
  luaL_addvalue(b);
}

/* The string at stack slot idx, checked as an identifier (not on the top: slots below the buffer stay put). */
static const char *arg_ident(lua_State *L, const char *what, int idx, const char *label) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luamig_op_error(L, what, "%s must be a string (got %s)", label, luaL_typename(L, idx));
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  check_ident(L, what, label, s, len);
  return s;
}

/* Raises unless the string at idx has no NUL byte (C strings end there). */
static void check_text(lua_State *L, const char *what, int idx, const char *label) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (strlen(s) < len) luamig_op_error(L, what, "%s contains a NUL byte", label);
}

/* Checks the options table at idx (absent, nil or a table) has only allowed keys. */
static void check_opts(lua_State *L, const char *what, int idx, const char *const *allowed) {
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx))
    luamig_op_error(L, what, "options must be a table (got %s)", luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    bool ok = false;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; allowed[i] && !ok; i++) ok = strcmp(lua_tostring(L, -1), allowed[i]) == 0;
    if (!ok) luamig_op_error(L, what, "unknown option '%s'", luaL_tolstring(L, -1, NULL));
  }
}

/* Pushes opts[key] (nil when opts is absent). */
static int push_opt(lua_State *L, int opts, const char *key) {
  if (!lua_istable(L, opts)) { lua_pushnil(L); return LUA_TNIL; }
  return lua_getfield(L, opts, key);
}

/* A boolean option: -1 when absent, else 0 or 1; raises for other types. */
static int opt_bool(lua_State *L, const char *what, int opts, const char *key) {
  int type = push_opt(L, opts, key);
  int v = type == LUA_TNIL ? -1 : lua_toboolean(L, -1);
  if (type != LUA_TNIL && type != LUA_TBOOLEAN)
    luamig_op_error(L, what, "%s must be a boolean (got %s)", key, lua_typename(L, type));
  lua_pop(L, 1);
  return v;
}

/* Raises unless the array at idx holds only keys 1..n; returns n. */
static lua_Integer check_array(lua_State *L, const char *what, int idx, const char *label) {
  if (!lua_istable(L, idx))
    luamig_op_error(L, what, "%s must be a table (an array) (got %s)", label, luaL_typename(L, idx));
  lua_Integer n = luaL_len(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n)
      luamig_op_error(L, what, "%s must be an array (found key %s)", label, luaL_tolstring(L, -1, NULL));
  }
  return n;
}

/* schema.name of a table (or index) named at stack slot name_idx, schema from opts. */
static void add_relation(lua_State *L, luaL_Buffer *b, const char *what, int name_idx,
                         int opts, const char *label) {
  const char *name = arg_ident(L, what, name_idx, label);
  if (push_opt(L, opts, "schema") == LUA_TNIL) {
    lua_pop(L, 1);
  } else {
    add_top_ident(L, b, what, "schema");
    luaL_addchar(b, '.');
  }
  add_quoted(b, name, strlen(name), '"');
}

/* ---- columns ---- */

static const char *const column_fields[] = {
  "nullable", "default", "primary_key", "unique", "references", "on_delete", "on_update", NULL
};

static const char *const fk_actions[] = {
  "cascade", "restrict", "set null", "set default", "no action", NULL
};

/* Pushes a label for column k (0: the only one) of the table at col, for messages. */
static const char *col_label(lua_State *L, int col, lua_Integer k) {
  if (lua_geti(L, col, 1) == LUA_TSTRING)
    return lua_pushfstring(L, "column \"%s\": ", lua_tostring(L, -1));
  return k > 0 ? lua_pushfstring(L, "column #%d: ", (int)k) : lua_pushliteral(L, "column: ");
}

/* Raises "what: column "x": <message>". */
static int col_error(lua_State *L, const char *what, int col, lua_Integer k,
                     const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  const char *label = col_label(L, col, k);
  return luamig_op_error(L, what, "%s%s", label, msg);
}

/* col[key] as a boolean: -1 when absent, else 0 or 1; raises for other types. */
static int col_bool(lua_State *L, const char *what, int col, lua_Integer k, const char *key) {
  int type = lua_getfield(L, col, key);
  if (type != LUA_TNIL && type != LUA_TBOOLEAN)
    col_error(L, what, col, k, "%s must be a boolean (got %s)", key, lua_typename(L, type));
  int v = type == LUA_TNIL ? -1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static void check_column_fields(lua_State *L, const char *what, int col, lua_Integer k) {
  lua_pushnil(L);
  while (lua_next(L, col) != 0) {
    lua_pop(L, 1);
    bool ok = lua_isinteger(L, -1) && (lua_tointeger(L, -1) == 1 || lua_tointeger(L, -1) == 2);
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; column_fields[i] && !ok; i++) ok = strcmp(lua_tostring(L, -1), column_fields[i]) == 0;
    if (!ok) col_error(L, what, col, k, "unknown field '%s'", luaL_tolstring(L, -1, NULL));
  }
}

/* " ON DELETE CASCADE" for col[key], or NULL when absent. */
static const char *fk_action(lua_State *L, const char *what, int col, lua_Integer k,
                             const char *key) {
  static const char *const sql[] = { "CASCADE", "RESTRICT", "SET NULL", "SET DEFAULT", "NO ACTION" };
  int type = lua_getfield(L, col, key);
  if (type == LUA_TNIL) { lua_pop(L, 1); return NULL; }
  if (type == LUA_TSTRING) {
    const char *v = lua_tostring(L, -1);
    for (int i = 0; fk_actions[i]; i++)
      if (strcasecmp(v, fk_actions[i]) == 0) { lua_pop(L, 1); return sql[i]; }
  }
  col_error(L, what, col, k, "%s must be one of 'cascade', 'restrict', 'set null', "
            "'set default', 'no action' (got %s)", key, luaL_tolstring(L, -1, NULL));
  return NULL;
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Appends `"a" ("b")` for "a(b)", `"s"."a" ("b")` for "s.a(b)", `"a"` for "a". The
 * string sits at the top with an inner buffer above it. */
static void add_reference(lua_State *L, luaL_Buffer *b, const char *what, int col,
                          lua_Integer k, const char *ref) {
  const char *whole = ref;
  const char *open = strchr(ref, '(');
  const char *end = open ? open : ref + strlen(ref);
  while (end > ref && is_space(end[-1])) end--;
  while (ref < end && is_space(*ref)) ref++;
  const char *dot = memchr(ref, '.', (size_t)(end - ref));
  if (dot != NULL) {
    check_ident(L, what, "referenced schema", ref, (size_t)(dot - ref));
    add_quoted(b, ref, (size_t)(dot - ref), '"');
    luaL_addchar(b, '.');
    ref = dot + 1;
  }
  check_ident(L, what, "referenced table", ref, (size_t)(end - ref));
  add_quoted(b, ref, (size_t)(end - ref), '"');
  if (open == NULL) return;
  const char *close = strrchr(open, ')');
  if (close == NULL || close[1 + strspn(close + 1, " \t\r\n")] != '\0')
    col_error(L, what, col, k, "references must look like \"table(column)\" or "
              "\"schema.table(column)\" (got \"%s\")", whole);
  const char *c = open + 1;
  while (c < close && is_space(*c)) c++;
  const char *ce = close;
  while (ce > c && is_space(ce[-1])) ce--;
  check_ident(L, what, "referenced column", c, (size_t)(ce - c));
  luaL_addstring(b, " (");
  add_quoted(b, c, (size_t)(ce - c), '"');
  luaL_addchar(b, ')');
}

static bool column_is_pk(lua_State *L, const char *what, int col, lua_Integer k) {
  return col_bool(L, what, col, k, "primary_key") == 1;
}

/* Appends the column definition of the column table at col (absolute index):
 * "name" type [NOT NULL] [DEFAULT expr] [PRIMARY KEY] [UNIQUE] [REFERENCES ...].
 * k is its position for messages (0: a lone column); inline_pk false leaves a
 * primary key to a table constraint. */
static void add_column_def(lua_State *L, luaL_Buffer *b, const char *what, int col,
                           lua_Integer k, bool inline_pk) {
  check_column_fields(L, what, col, k);
  if (lua_geti(L, col, 1) != LUA_TSTRING) {
    if (k > 0) luamig_op_error(L, what, "column #%d needs a name", (int)k);
    luamig_op_error(L, what, "column needs a name");
  }
  add_top_ident(L, b, what, "column name");
  luaL_addchar(b, ' ');

  if (lua_geti(L, col, 2) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
    col_error(L, what, col, k, "needs a type (a string such as \"text\")");
  const char *type = lua_tostring(L, -1);
  check_text(L, what, -1, "type");
  if (strchr(type, ';') || strstr(type, "--") || strstr(type, "/*"))
    col_error(L, what, col, k, "type \"%s\" contains ';' or a comment", type);
  luaL_addvalue(b);

  int nullable = col_bool(L, what, col, k, "nullable");
  bool pk = column_is_pk(L, what, col, k);
  int unique = col_bool(L, what, col, k, "unique");
  if (pk && nullable == 1) col_error(L, what, col, k, "a primary key cannot be nullable");
  if (nullable == 0) luaL_addstring(b, " NOT NULL");

  switch (lua_getfield(L, col, "default")) {
  case LUA_TNIL:
    lua_pop(L, 1);
    break;
  case LUA_TBOOLEAN:
    lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
    lua_remove(L, -2);
    add_top_prefixed(L, b, " DEFAULT ");
    break;
  case LUA_TNUMBER:
    lua_tostring(L, -1);             /* converts the slot, never the table */
    add_top_prefixed(L, b, " DEFAULT ");
    break;
  case LUA_TSTRING:
    check_text(L, what, -1, "default");
    add_top_prefixed(L, b, " DEFAULT ");
    break;
  default:
    col_error(L, what, col, k, "default must be a SQL expression string, a number or a "
              "boolean (got %s)", luaL_typename(L, -1));
  }
  if (pk && inline_pk) luaL_addstring(b, " PRIMARY KEY");
  if (unique == 1) luaL_addstring(b, " UNIQUE");

  const char *on_delete = fk_action(L, what, col, k, "on_delete");
  const char *on_update = fk_action(L, what, col, k, "on_update");
  int rtype = lua_getfield(L, col, "references");
  if (rtype == LUA_TNIL) {
    lua_pop(L, 1);
    if (on_delete || on_update) col_error(L, what, col, k, "on_delete/on_update need references");
    return;
  }
  if (rtype != LUA_TSTRING)
    col_error(L, what, col, k, "references must be a string such as \"users(id)\" (got %s)",
              lua_typename(L, rtype));
  check_text(L, what, -1, "references");
  luaL_Buffer r;
  luaL_buffinit(L, &r);
  luaL_addstring(&r, " REFERENCES ");
  add_reference(L, &r, what, col, k, lua_tostring(L, -2));
  if (on_delete) { luaL_addstring(&r, " ON DELETE "); luaL_addstring(&r, on_delete); }
  if (on_update) { luaL_addstring(&r, " ON UPDATE "); luaL_addstring(&r, on_update); }
  luaL_pushresult(&r);
  lua_remove(L, -2);
  luaL_addvalue(b);
}

/* ---- one builder per op ---- */

static const char *const schema_opt[] = { "schema", NULL };

/* op.create_table(name, columns [, {schema=}]) */
void luamig_sql_create_table(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  int name = arg, cols = arg + 1, opts = arg + 2;
  arg_ident(L, what, name, "table name");
  lua_Integer n = check_array(L, what, cols, "columns");
  check_opts(L, what, opts, schema_opt);
  int npk = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    int type = lua_geti(L, cols, i);
    if (type == LUA_TTABLE)
      npk += column_is_pk(L, what, lua_gettop(L), i);
    else if (type != LUA_TSTRING)
      luamig_op_error(L, what, "column #%d must be a table (a column) or a string "
                      "(a table constraint) (got %s)", (int)i, lua_typename(L, type));
    lua_pop(L, 1);
  }

  luaL_addstring(b, "CREATE TABLE ");
  add_relation(L, b, what, name, opts, "table name");
  luaL_addstring(b, " (");
  for (lua_Integer i = 1; i <= n; i++) {
    luaL_addstring(b, i > 1 ? "," INDENT : INDENT);
    if (lua_geti(L, cols, i) == LUA_TSTRING) {  /* a table constraint, verbatim */
      check_text(L, what, -1, "table constraint");
      luaL_addvalue(b);
      continue;
    }
    luaL_Buffer c;                   /* the column table sits above b: build in c */
    luaL_buffinit(L, &c);
    add_column_def(L, &c, what, lua_gettop(L) - 1, i, npk == 1);
    luaL_pushresult(&c);
    lua_remove(L, -2);
    luaL_addvalue(b);
  }
  if (npk > 1) {
    luaL_addstring(b, "," INDENT "PRIMARY KEY (");
    int seen = 0;
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_geti(L, cols, i) != LUA_TTABLE || !column_is_pk(L, what, lua_gettop(L), i)) {
        lua_pop(L, 1);
        continue;
      }
      lua_geti(L, -1, 1);
      lua_remove(L, -2);
      if (seen++) luaL_addstring(b, ", ");
      add_top_ident(L, b, what, "column name");
    }
    luaL_addchar(b, ')');
  }
  luaL_addstring(b, n > 0 ? "\n)" : ")");
}

/* op.drop_table(name [, {schema=}]) */
void luamig_sql_drop_table(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  arg_ident(L, what, arg, "table name");
  check_opts(L, what, arg + 1, schema_opt);
  luaL_addstring(b, "DROP TABLE ");
  add_relation(L, b, what, arg, arg + 1, "table name");
}

/* op.add_column(table, column [, {schema=}]) */
void luamig_sql_add_column(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  arg_ident(L, what, arg, "table name");
  if (!lua_istable(L, arg + 1))
    luamig_op_error(L, what, "column must be a table such as { \"name\", \"text\" } (got %s)",
                    luaL_typename(L, arg + 1));
  check_opts(L, what, arg + 2, schema_opt);
  luaL_addstring(b, "ALTER TABLE ");
  add_relation(L, b, what, arg, arg + 2, "table name");
  luaL_addstring(b, " ADD COLUMN ");
  add_column_def(L, b, what, arg + 1, 0, true);
}

/* op.drop_column(table, name [, {schema=}]) */
void luamig_sql_drop_column(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  arg_ident(L, what, arg, "table name");
  const char *col = arg_ident(L, what, arg + 1, "column name");
  check_opts(L, what, arg + 2, schema_opt);
  luaL_addstring(b, "ALTER TABLE ");
  add_relation(L, b, what, arg, arg + 2, "table name");
  luaL_addstring(b, " DROP COLUMN ");
  add_quoted(b, col, strlen(col), '"');
}

/* op.create_index(name, table, columns [, {unique=, where=, schema=}]): an element
 * with "(" is an expression, passed through ("lower(email)", "(a) DESC"). */
void luamig_sql_create_index(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  static const char *const allowed[] = { "unique", "where", "schema", NULL };
  int name = arg, table = arg + 1, cols = arg + 2, opts = arg + 3;
  const char *iname = arg_ident(L, what, name, "index name");
  arg_ident(L, what, table, "table name");
  lua_Integer n = check_array(L, what, cols, "columns");
  if (n == 0) luamig_op_error(L, what, "an index needs at least one column");
  check_opts(L, what, opts, allowed);
  int unique = opt_bool(L, what, opts, "unique");
  int wtype = push_opt(L, opts, "where");
  if (wtype != LUA_TNIL && wtype != LUA_TSTRING)
    luamig_op_error(L, what, "where must be a SQL expression string (got %s)", lua_typename(L, wtype));
  lua_pop(L, 1);

  luaL_addstring(b, unique == 1 ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
  add_quoted(b, iname, strlen(iname), '"');
  luaL_addstring(b, " ON ");
  add_relation(L, b, what, table, opts, "table name");
  luaL_addstring(b, " (");
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1) luaL_addstring(b, ", ");
    if (lua_geti(L, cols, i) == LUA_TSTRING && strchr(lua_tostring(L, -1), '(')) {
      check_text(L, what, -1, "index expression");
      luaL_addvalue(b);
    } else {
      add_top_ident(L, b, what, "index column");
    }
  }
  luaL_addchar(b, ')');
  if (push_opt(L, opts, "where") == LUA_TSTRING) {
    check_text(L, what, -1, "where");
    add_top_prefixed(L, b, " WHERE ");
  } else {
    lua_pop(L, 1);
  }
}

/* op.drop_index(name [, {schema=}]) */
void luamig_sql_drop_index(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  arg_ident(L, what, arg, "index name");
  check_opts(L, what, arg + 1, schema_opt);
  luaL_addstring(b, "DROP INDEX ");
  add_relation(L, b, what, arg, arg + 1, "index name");
}

/* ---- offline parameters ---- */

static bool ident_char(unsigned char c) {
  return c == '_' || c == '$' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
      || (c >= '0' && c <= '9');
}

/* Past the quoted text starting at p (at the opening q); backslash escapes when esc. */
static const char *skip_quoted(const char *p, char q, bool esc) {
  for (p++; *p; p++) {
    if (esc && *p == '\\' && p[1]) p++;
    else if (*p == q) {
      if (p[1] != q) return p + 1;
      p++;
    }
  }
  return p;
}

/* Past a dollar-quoted string at p ("$tag$...$tag$"), or NULL when p starts no tag. */
static const char *skip_dollar(const char *p) {
  const char *t = p + 1;
  if (*t >= '0' && *t <= '9') return NULL;
  while (*t != '$' && *t && ident_char((unsigned char)*t)) t++;
  if (*t != '$') return NULL;
  size_t taglen = (size_t)(t - p) + 1;
  for (const char *q = t + 1; *q; q++)
    if (*q == '$' && strncmp(q, p, taglen) == 0) return q + taglen;
  return p + strlen(p);
}

void luamig_sql_inline(lua_State *L, luaL_Buffer *b, const char *sql, int nparams,
                       const char *const *params) {
  const char *p = sql, *copied = sql;
  while (*p) {
    unsigned char c = (unsigned char)*p;
    if (c == '\'') {
      p = skip_quoted(p, '\'', false);
    } else if (c == '"') {
      p = skip_quoted(p, '"', false);
    } else if (c == '-' && p[1] == '-') {
      p += strcspn(p, "\n");
    } else if (c == '/' && p[1] == '*') {   /* comments nest in PostgreSQL */
      int depth = 0;
      do {
        if (p[0] == '/' && p[1] == '*') { depth++; p += 2; }
        else if (p[0] == '*' && p[1] == '/') { depth--; p += 2; }
        else p++;
      } while (*p && depth > 0);
    } else if (c == '$' && p[1] >= '0' && p[1] <= '9') {
      const char *d = p + 1;
      long k = 0;
      while (*d >= '0' && *d <= '9') {
        if (k < 100000) k = k * 10 + (*d - '0');
        d++;
      }
      if (k < 1 || k > nparams)
        luaL_error(L, "SQL refers to $%d but %d parameter(s) were given", (int)k, nparams);
      luaL_addlstring(b, copied, (size_t)(p - copied));
      if (params[k - 1] == NULL) luaL_addstring(b, "NULL");
      else luamig_quote_literal(b, params[k - 1]);
      p = copied = d;
    } else if (c == '$') {
      const char *end = skip_dollar(p);
      p = end ? end : p + 1;
    } else if (ident_char(c)) {       /* a word: "a$1" is a name, E'..' has escapes */
      const char *w = p;
      while (ident_char((unsigned char)*p)) p++;
      if (p - w == 1 && (*w == 'E' || *w == 'e') && *p == '\'')
        p = skip_quoted(p, '\'', true);
    } else {
      p++;
    }
  }
  luaL_addlstring(b, copied, (size_t)(p - copied));
}

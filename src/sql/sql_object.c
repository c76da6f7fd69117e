/*
 * sql_object.c: the statements of the ops on indexes, sequences, enum types,
 * schemas and extensions, and the INSERTs of op.bulk_insert. Pure, like sql.c.
 */
#include <stdio.h>
#include <string.h>

#include "luamig.h"
#include "sql.h"

#define INDENT "\n    "

/* ---- indexes ---- */

/* op.create_index(name, table, columns [, {unique=, using=, where=, include=,
 * concurrently=, if_not_exists=, schema=}]): an element with "(" is an
 * expression, passed through ("lower(email)", "(a) DESC"). */
void luamig_sql_create_index(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  const char *what = op->what;
  int table = luamig_arg(L, op, "table"), cols = luamig_arg(L, op, "columns");
  int opts = luamig_arg(L, op, "options");
  const char *iname = lua_tostring(L, luamig_arg(L, op, "name"));
  lua_Integer n = luamig_check_array(L, what, cols, "columns");
  if (n == 0) luamig_op_error(L, what, "an index needs at least one column");
  int unique = luamig_opt_bool(L, what, opts, "unique");
  int concurrently = luamig_opt_bool(L, what, opts, "concurrently");
  int if_not_exists = luamig_opt_bool(L, what, opts, "if_not_exists");
  if (luamig_push_opt_string(L, what, opts, "where", "a SQL expression string")) lua_pop(L, 1);
  if (luamig_push_opt_string(L, what, opts, "using", "an index method such as \"gin\""))
    lua_pop(L, 1);

  luaL_addstring(b, unique == 1 ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
  if (concurrently == 1) luaL_addstring(b, "CONCURRENTLY ");
  if (if_not_exists == 1) luaL_addstring(b, "IF NOT EXISTS ");
  luamig_add_ident(L, b, what, "index name", iname, strlen(iname));
  luaL_addstring(b, " ON ");
  luamig_add_relation(L, b, what, table, opts, "table name");
  if (luamig_push_opt_string(L, what, opts, "using", "")) {
    lua_pop(L, 1);
    luaL_addstring(b, " USING ");
    luamig_push_opt(L, opts, "using");
    luamig_add_top_ident(L, b, what, "using");
  }
  luaL_addstring(b, " (");
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1) luaL_addstring(b, ", ");
    if (lua_geti(L, cols, i) == LUA_TSTRING && strchr(lua_tostring(L, -1), '('))
      luamig_add_top_text(L, b, what, "index expression", "");
    else
      luamig_add_top_ident(L, b, what, "index column");
  }
  luaL_addchar(b, ')');
  if (luamig_push_opt(L, opts, "include") != LUA_TNIL) {
    lua_pop(L, 1);
    luaL_addstring(b, " INCLUDE ");
    luamig_push_opt(L, opts, "include");
    luaL_Buffer c;                   /* the list sits above b: build in c */
    luaL_buffinit(L, &c);
    luamig_add_ident_list(L, &c, what, lua_gettop(L) - 1, "include");
    luaL_pushresult(&c);
    lua_remove(L, -2);
    luaL_addvalue(b);
  } else {
    lua_pop(L, 1);
  }
  if (luamig_push_opt_string(L, what, opts, "where", ""))
    luamig_add_top_text(L, b, what, "where", " WHERE ");
}

/* op.drop_index(name [, {concurrently=, if_exists=, schema=}]) */
void luamig_sql_drop_index(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  int opts = luamig_arg(L, op, "options");
  int concurrently = luamig_opt_bool(L, op->what, opts, "concurrently");
  int if_exists = luamig_opt_bool(L, op->what, opts, "if_exists");
  luaL_addstring(b, "DROP INDEX ");
  if (concurrently == 1) luaL_addstring(b, "CONCURRENTLY ");
  if (if_exists == 1) luaL_addstring(b, "IF EXISTS ");
  luamig_add_relation(L, b, op->what, luamig_arg(L, op, "name"), opts, "index name");
}

/* ---- sequences ---- */

/* " <sql> <n>" for the integer option key, when it is given. */
static void add_seq_number(lua_State *L, luaL_Buffer *b, const char *what, int opts,
                           const char *key, const char *sql) {
  int type = luamig_push_opt(L, opts, key), exact = 0;
  lua_Integer n = lua_tointegerx(L, -1, &exact);
  if (type != LUA_TNIL && (type != LUA_TNUMBER || !exact))
    luamig_op_error(L, what, "%s must be an integer (got %s)", key, luaL_tolstring(L, -1, NULL));
  lua_pop(L, 1);
  if (type == LUA_TNIL) return;
  lua_pushfstring(L, " %s %I", sql, (LUAI_UACINT)n);
  luaL_addvalue(b);
}

/* " OWNED BY [schema.]table.column" for owned_by = "table.column" (a sequence and
 * its owner share a schema). */
static void add_owned_by(lua_State *L, luaL_Buffer *b, const char *what, int opts) {
  if (!luamig_push_opt_string(L, what, opts, "owned_by", "a string \"table.column\"")) return;
  const char *s = lua_tostring(L, -1), *dot = strrchr(s, '.');
  if (dot == NULL || dot == s || dot[1] == '\0')
    luamig_op_error(L, what, "owned_by must be \"table.column\" (got \"%s\")", s);
  luaL_Buffer c;                     /* owned_by sits above b: build in c */
  luaL_buffinit(L, &c);
  luaL_addstring(&c, " OWNED BY ");
  if (luamig_push_opt(L, opts, "schema") == LUA_TNIL) {
    lua_pop(L, 1);
  } else {
    luamig_add_top_ident(L, &c, what, "schema");
    luaL_addchar(&c, '.');
  }
  luamig_add_ident(L, &c, what, "owned_by table", s, (size_t)(dot - s));
  luaL_addchar(&c, '.');
  luamig_add_ident(L, &c, what, "owned_by column", dot + 1, strlen(dot + 1));
  luaL_pushresult(&c);
  lua_remove(L, -2);
  luaL_addvalue(b);
}

/* op.create_sequence(name [, {start=, increment=, minvalue=, maxvalue=, cache=,
 * cycle=, owned_by=, if_not_exists=, schema=}]) */
void luamig_sql_create_sequence(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  static const char *const numbers[][2] = {
    { "increment", "INCREMENT BY" }, { "minvalue", "MINVALUE" }, { "maxvalue", "MAXVALUE" },
    { "start", "START WITH" }, { "cache", "CACHE" }
  };
  int opts = luamig_arg(L, op, "options");
  int cycle = luamig_opt_bool(L, op->what, opts, "cycle");
  bool if_not_exists = luamig_opt_bool(L, op->what, opts, "if_not_exists") == 1;
  luaL_addstring(b, if_not_exists ? "CREATE SEQUENCE IF NOT EXISTS " : "CREATE SEQUENCE ");
  luamig_add_relation(L, b, op->what, luamig_arg(L, op, "name"), opts, "sequence name");
  for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
    add_seq_number(L, b, op->what, opts, numbers[i][0], numbers[i][1]);
  if (cycle >= 0) luaL_addstring(b, cycle ? " CYCLE" : " NO CYCLE");
  add_owned_by(L, b, op->what, opts);
}

/* op.drop_sequence(name [, {if_exists=, cascade=, schema=}]) */
void luamig_sql_drop_sequence(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  luamig_add_drop(L, b, op, "SEQUENCE");
}

/* ---- enum types ---- */

/* The string at the top as an enum label (1..63 bytes, as PostgreSQL wants), as a literal. */
static void add_top_label(lua_State *L, luaL_Buffer *b, const char *what, const char *label,
                          const char *prefix) {
  if (lua_type(L, -1) != LUA_TSTRING)
    luamig_op_error(L, what, "%s must be a string (got %s)", label, luaL_typename(L, -1));
  if (lua_rawlen(L, -1) > LUAMIG_MAX_IDENT)
    luamig_op_error(L, what, "%s \"%s\" is longer than %d bytes", label, lua_tostring(L, -1),
                    LUAMIG_MAX_IDENT);
  luamig_add_top_literal(L, b, what, label, prefix);
}

/* CREATE TYPE [schema.]name AS ENUM (...) into b, for the op's n values. */
static void add_create_enum(lua_State *L, luaL_Buffer *b, const luamig_opcall *op,
                            lua_Integer n) {
  luaL_addstring(b, "CREATE TYPE ");
  luamig_add_relation(L, b, op->what, luamig_arg(L, op, "name"), luamig_arg(L, op, "options"),
                      "type name");
  luaL_addstring(b, " AS ENUM (");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, luamig_arg(L, op, "values"), i);
    add_top_label(L, b, op->what, "enum value", i > 1 ? ", " : "");
  }
  luaL_addchar(b, ')');
}

/* PostgreSQL has no CREATE TYPE IF NOT EXISTS: a DO block creates the type
 * unless pg_type has one of that name in the schema it would go to (the
 * given one, else current_schema(), where CREATE TYPE puts it; a type of the
 * name further down the search_path does not count). The dollar tag is one
 * the body does not contain. */
static void add_guarded_enum(lua_State *L, luaL_Buffer *b, const luamig_opcall *op,
                             lua_Integer n) {
  const char *what = op->what;
  luaL_Buffer c;
  luaL_buffinit(L, &c);
  luaL_addstring(&c, "\nBEGIN\n  IF NOT EXISTS (SELECT FROM pg_type t JOIN pg_namespace n ON "
                 "n.oid = t.typnamespace\n                 WHERE t.typname = ");
  lua_pushvalue(L, luamig_arg(L, op, "name"));
  luamig_add_top_literal(L, &c, what, "type name", "");
  if (luamig_push_opt(L, luamig_arg(L, op, "options"), "schema") == LUA_TNIL) {
    lua_pop(L, 1);
    luaL_addstring(&c, " AND n.nspname = current_schema()");
  } else {
    luamig_add_top_literal(L, &c, what, "schema", " AND n.nspname = ");
  }
  luaL_addstring(&c, ") THEN\n    ");
  add_create_enum(L, &c, op, n);
  luaL_addstring(&c, ";\n  END IF;\nEND\n");
  luaL_pushresult(&c);
  const char *body = lua_tostring(L, -1);
  char tag[32] = "$luamig$";
  for (int k = 1; strstr(body, tag) != NULL; k++) snprintf(tag, sizeof tag, "$luamig%d$", k);
  lua_pushfstring(L, "DO %s%s%s", tag, body, tag);
  lua_remove(L, -2);
  luaL_addvalue(b);
}

/* op.create_enum(name, values [, {if_not_exists=, schema=}]) */
void luamig_sql_create_enum(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  lua_Integer n = luamig_check_array(L, op->what, luamig_arg(L, op, "values"), "values");
  if (luamig_opt_bool(L, op->what, luamig_arg(L, op, "options"), "if_not_exists") == 1)
    add_guarded_enum(L, b, op, n);
  else
    add_create_enum(L, b, op, n);
}

/* op.drop_enum(name [, {if_exists=, cascade=, schema=}]) */
void luamig_sql_drop_enum(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  luamig_add_drop(L, b, op, "TYPE");
}

/* op.add_enum_value(name, value [, {before=, after=, if_not_exists=, schema=}]) */
void luamig_sql_add_enum_value(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  const char *what = op->what;
  int opts = luamig_arg(L, op, "options");
  int if_not_exists = luamig_opt_bool(L, what, opts, "if_not_exists");
  int before = luamig_push_opt(L, opts, "before");
  int after = luamig_push_opt(L, opts, "after");
  lua_pop(L, 2);
  if (before != LUA_TNIL && after != LUA_TNIL)
    luamig_op_error(L, what, "give before or after, not both");
  luaL_addstring(b, "ALTER TYPE ");
  luamig_add_relation(L, b, what, luamig_arg(L, op, "name"), opts, "type name");
  luaL_addstring(b, if_not_exists == 1 ? " ADD VALUE IF NOT EXISTS " : " ADD VALUE ");
  lua_pushvalue(L, luamig_arg(L, op, "value"));
  add_top_label(L, b, what, "enum value", "");
  if (before != LUA_TNIL) {
    luamig_push_opt(L, opts, "before");
    add_top_label(L, b, what, "before", " BEFORE ");
  } else if (after != LUA_TNIL) {
    luamig_push_opt(L, opts, "after");
    add_top_label(L, b, what, "after", " AFTER ");
  }
}

/* ---- schemas and extensions ---- */

/* op.create_schema(name [, {if_not_exists=, authorization=}]) */
void luamig_sql_create_schema(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  const char *what = op->what;
  int opts = luamig_arg(L, op, "options");
  const char *name = lua_tostring(L, luamig_arg(L, op, "name"));
  int if_not_exists = luamig_opt_bool(L, what, opts, "if_not_exists");
  luaL_addstring(b, if_not_exists == 1 ? "CREATE SCHEMA IF NOT EXISTS " : "CREATE SCHEMA ");
  luamig_add_ident(L, b, what, "schema name", name, strlen(name));
  if (luamig_push_opt_string(L, what, opts, "authorization", "a role name")) {
    lua_pop(L, 1);
    luaL_addstring(b, " AUTHORIZATION ");
    luamig_push_opt(L, opts, "authorization");
    luamig_add_top_ident(L, b, what, "authorization");
  }
}

/* op.drop_schema(name [, {if_exists=, cascade=}]) */
void luamig_sql_drop_schema(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  luamig_add_drop(L, b, op, "SCHEMA");
}

/* op.create_extension(name [, {schema=, if_not_exists=, version=, cascade=}]) */
void luamig_sql_create_extension(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  const char *what = op->what;
  int opts = luamig_arg(L, op, "options");
  const char *name = lua_tostring(L, luamig_arg(L, op, "name"));
  int if_not_exists = luamig_opt_bool(L, what, opts, "if_not_exists");
  int cascade = luamig_opt_bool(L, what, opts, "cascade");
  if (luamig_push_opt_string(L, what, opts, "version", "a string such as \"1.6\""))
    lua_pop(L, 1);
  luaL_addstring(b, if_not_exists == 1 ? "CREATE EXTENSION IF NOT EXISTS " : "CREATE EXTENSION ");
  luamig_add_ident(L, b, what, "extension name", name, strlen(name));
  if (luamig_push_opt(L, opts, "schema") != LUA_TNIL) {
    lua_pop(L, 1);
    luaL_addstring(b, " SCHEMA ");
    luamig_push_opt(L, opts, "schema");
    luamig_add_top_ident(L, b, what, "schema");
  } else {
    lua_pop(L, 1);
  }
  if (luamig_push_opt_string(L, what, opts, "version", ""))
    luamig_add_top_literal(L, b, what, "version", " VERSION ");
  if (cascade == 1) luaL_addstring(b, " CASCADE");
}

/* op.drop_extension(name [, {if_exists=, cascade=}]) */
void luamig_sql_drop_extension(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  luamig_add_drop(L, b, op, "EXTENSION");
}

/* ---- rows ---- */

void luamig_sql_insert(lua_State *L, luaL_Buffer *b, const char *what, int table, int opts,
                       int cols, int ncols, int rows, int first, int count) {
  luaL_addstring(b, "INSERT INTO ");
  luamig_add_relation(L, b, what, table, opts, "table name");
  if (ncols == 0) {                  /* rows without values: each its own statement */
    luaL_addstring(b, " DEFAULT VALUES");
    for (int i = 1; i < count; i++) {
      luamig_sql_next(b);
      luaL_addstring(b, "INSERT INTO ");
      luamig_add_relation(L, b, what, table, opts, "table name");
      luaL_addstring(b, " DEFAULT VALUES");
    }
    return;
  }
  luaL_addstring(b, " (");
  for (int c = 1; c <= ncols; c++) {
    if (c > 1) luaL_addstring(b, ", ");
    lua_rawgeti(L, cols, c);
    luamig_add_top_ident(L, b, what, "column name");
  }
  luaL_addstring(b, ") VALUES");
  int param = 0;
  for (int r = first; r < first + count; r++) {
    luaL_addstring(b, r > first ? "," INDENT "(" : INDENT "(");
    for (int c = 1; c <= ncols; c++) {
      if (c > 1) luaL_addstring(b, ", ");
      lua_rawgeti(L, rows, r);       /* the row, then its value: popped before adding */
      lua_rawgeti(L, cols, c);
      bool present = lua_rawget(L, -2) != LUA_TNIL;
      lua_pop(L, 2);
      if (!present) {
        luaL_addstring(b, "DEFAULT");
        continue;
      }
      lua_pushfstring(L, "$%d", ++param);
      luaL_addvalue(b);
    }
    luaL_addchar(b, ')');
  }
}

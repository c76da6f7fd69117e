/*
 * sql_table.c: the statements of the table and column ops, comments included.
 * Pure, like the helpers it builds on: args.c reads the arguments, quote.c quotes them.
 *
 * An op that needs several statements (a table and its comments) separates
 * them with luamig_sql_next; sink.c sends them one by one, so an error names
 * the statement that failed and the offline script lists each on its own.
 */
#include <stdarg.h>
#include <string.h>

#include "luamig.h"
#include "sql.h"

#define INDENT "\n    "

/* ---- shared pieces ---- */

/* A type is SQL text, but one place cannot hold a second statement or a comment. */
static bool type_ok(const char *type) {
  return !strchr(type, ';') && !strstr(type, "--") && !strstr(type, "/*");
}

/* Turns the expression at the top (SQL text, a number or a boolean) into its
 * text in place; false when it is of another type. */
static bool top_expr(lua_State *L) {
  switch (lua_type(L, -1)) {
  case LUA_TBOOLEAN:
    lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
    lua_remove(L, -2);
    return true;
  case LUA_TNUMBER:
    lua_tostring(L, -1);             /* converts the slot, never the table */
    return true;
  case LUA_TSTRING:
    return true;
  default:
    return false;
  }
}

/* " IS '...'" for the comment at the top (a string; false: " IS NULL"), added to b. */
static void add_top_comment(lua_State *L, luaL_Buffer *b, const char *what) {
  if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addstring(b, " IS NULL");
    return;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    luamig_op_error(L, what, "comment must be a string, or false to remove it (got %s)",
                    luaL_typename(L, -1));
  luamig_add_top_literal(L, b, what, "comment", " IS ");
}

/* Appends a further statement, COMMENT ON TABLE <table> IS ..., for the comment
 * at the top (popped). */
static void add_table_comment(lua_State *L, luaL_Buffer *b, const char *what, int name,
                              int opts) {
  luaL_Buffer c;                     /* the comment sits above b: build in c */
  luaL_buffinit(L, &c);
  luamig_sql_next(&c);
  luaL_addstring(&c, "COMMENT ON TABLE ");
  luamig_add_relation(L, &c, what, name, opts, "table name");
  lua_pushvalue(L, -2);
  add_top_comment(L, &c, what);
  luaL_pushresult(&c);
  lua_remove(L, -2);
  luaL_addvalue(b);
}

/* Appends a further statement, COMMENT ON COLUMN <table>."<col[1]>" IS ..., when
 * the column table at the top (popped) has a comment. */
static void add_column_comment(lua_State *L, luaL_Buffer *b, const char *what, int name,
                               int opts) {
  int col = lua_gettop(L);
  if (lua_getfield(L, col, "comment") == LUA_TNIL) { lua_pop(L, 2); return; }
  lua_geti(L, col, 1);
  luaL_Buffer c;                     /* the column sits above b: build in c */
  luaL_buffinit(L, &c);
  luamig_sql_next(&c);
  luaL_addstring(&c, "COMMENT ON COLUMN ");
  luamig_add_relation(L, &c, what, name, opts, "table name");
  luaL_addchar(&c, '.');
  lua_pushvalue(L, col + 2);
  luamig_add_top_ident(L, &c, what, "column name");
  lua_pushvalue(L, col + 1);
  add_top_comment(L, &c, what);
  luaL_pushresult(&c);
  lua_replace(L, col);
  lua_settop(L, col);
  luaL_addvalue(b);
}

/* ---- column definitions ---- */

static const char *const column_fields[] = {
  "nullable", "default", "primary_key", "unique", "references", "on_delete", "on_update",
  "comment", NULL
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
  int type = lua_getfield(L, col, key);
  if (type == LUA_TNIL) { lua_pop(L, 1); return NULL; }
  const char *action = type == LUA_TSTRING ? luamig_fk_action(lua_tostring(L, -1)) : NULL;
  if (action == NULL)
    col_error(L, what, col, k, "%s must be one of " LUAMIG_FK_ACTIONS " (got %s)", key,
              luaL_tolstring(L, -1, NULL));
  lua_pop(L, 1);
  return action;
}

/* Appends `"s"."t" ("c")` for the reference read by luamig_push_reference, its
 * schema, table and columns at stack slots at, at + 1, at + 2. */
static void add_reference(lua_State *L, luaL_Buffer *b, const char *what, int at) {
  size_t len;
  const char *s;
  if (!lua_isnil(L, at)) {
    s = lua_tolstring(L, at, &len);
    luamig_add_ident(L, b, what, "referenced schema", s, len);
    luaL_addchar(b, '.');
  }
  s = lua_tolstring(L, at + 1, &len);
  luamig_add_ident(L, b, what, "referenced table", s, len);
  if (lua_isnil(L, at + 2)) return;
  luaL_addstring(b, " (");
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, at + 2); i++) {
    if (i > 1) luaL_addstring(b, ", ");
    lua_rawgeti(L, at + 2, i);
    luamig_add_top_ident(L, b, what, "referenced column");
  }
  luaL_addchar(b, ')');
}

static bool column_is_pk(lua_State *L, const char *what, int col, lua_Integer k) {
  return col_bool(L, what, col, k, "primary_key") == 1;
}

/* Appends the column definition of the column table at col (absolute index):
 * "name" type [NOT NULL] [DEFAULT expr] [PRIMARY KEY] [UNIQUE] [REFERENCES ...].
 * k is its position for messages (0: a lone column); inline_pk false leaves a
 * primary key to a table constraint. Its comment is the caller's. */
static void add_column_def(lua_State *L, luaL_Buffer *b, const char *what, int col,
                           lua_Integer k, bool inline_pk) {
  check_column_fields(L, what, col, k);
  if (lua_geti(L, col, 1) != LUA_TSTRING) {
    if (k > 0) luamig_op_error(L, what, "column #%d needs a name", (int)k);
    luamig_op_error(L, what, "column needs a name");
  }
  luamig_add_top_ident(L, b, what, "column name");
  luaL_addchar(b, ' ');

  if (lua_geti(L, col, 2) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
    col_error(L, what, col, k, "needs a type (a string such as \"text\")");
  const char *type = lua_tostring(L, -1);
  if (!type_ok(type))
    col_error(L, what, col, k, "type \"%s\" contains ';' or a comment", type);
  luamig_add_top_text(L, b, what, "type", "");

  int nullable = col_bool(L, what, col, k, "nullable");
  bool pk = column_is_pk(L, what, col, k);
  int unique = col_bool(L, what, col, k, "unique");
  if (pk && nullable == 1) col_error(L, what, col, k, "a primary key cannot be nullable");
  if (nullable == 0) luaL_addstring(b, " NOT NULL");

  if (lua_getfield(L, col, "default") == LUA_TNIL) {
    lua_pop(L, 1);
  } else if (top_expr(L)) {
    luamig_add_top_text(L, b, what, "default", " DEFAULT ");
  } else {
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
  size_t rlen;
  const char *ref = lua_tolstring(L, -1, &rlen);
  if (strlen(ref) < rlen) col_error(L, what, col, k, "references contains a NUL byte");
  int top = lua_gettop(L);
  const char *why = luamig_push_reference(L, ref);
  if (why) col_error(L, what, col, k, "references %s (got \"%s\")", why, ref);
  luaL_Buffer r;
  luaL_buffinit(L, &r);
  luaL_addstring(&r, " REFERENCES ");
  add_reference(L, &r, what, top + 1);
  if (on_delete) { luaL_addstring(&r, " ON DELETE "); luaL_addstring(&r, on_delete); }
  if (on_update) { luaL_addstring(&r, " ON UPDATE "); luaL_addstring(&r, on_update); }
  luaL_pushresult(&r);
  lua_replace(L, top);
  lua_settop(L, top);
  luaL_addvalue(b);
}

/* ---- tables ---- */

/* op.create_table(name, columns [, {comment=, if_not_exists=, schema=}]) */
void luamig_sql_create_table(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  const char *what = op->what;
  int name = luamig_arg(L, op, "name"), cols = luamig_arg(L, op, "columns");
  int opts = luamig_arg(L, op, "options");
  lua_Integer n = luamig_check_array(L, what, cols, "columns");
  int if_not_exists = luamig_opt_bool(L, what, opts, "if_not_exists");
  int npk = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    int type = lua_geti(L, cols, i);
    if (type == LUA_TTABLE && !luamig_is_constraint(L, lua_gettop(L)))
      npk += column_is_pk(L, what, lua_gettop(L), i);
    else if (type != LUA_TSTRING && type != LUA_TTABLE)
      luamig_op_error(L, what, "column #%d must be a table (a column or a constraint) or a "
                      "string (a table constraint) (got %s)", (int)i, lua_typename(L, type));
    lua_pop(L, 1);
  }

  luaL_addstring(b, if_not_exists == 1 ? "CREATE TABLE IF NOT EXISTS " : "CREATE TABLE ");
  luamig_add_relation(L, b, what, name, opts, "table name");
  luaL_addstring(b, " (");
  for (lua_Integer i = 1; i <= n; i++) {
    luaL_addstring(b, i > 1 ? "," INDENT : INDENT);
    if (lua_geti(L, cols, i) == LUA_TSTRING) {  /* a table constraint, verbatim */
      luamig_add_top_text(L, b, what, "table constraint", "");
      continue;
    }
    int t = lua_gettop(L);
    if (luamig_is_constraint(L, t)) {
      luamig_push_table_constraint(L, what, t, i);
    } else {
      luaL_Buffer c;                 /* the column table sits above b: build in c */
      luaL_buffinit(L, &c);
      add_column_def(L, &c, what, t, i, npk == 1);
      luaL_pushresult(&c);
    }
    lua_remove(L, t);
    luaL_addvalue(b);
  }
  if (npk > 1) {
    luaL_addstring(b, "," INDENT "PRIMARY KEY (");
    int seen = 0;
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_geti(L, cols, i) != LUA_TTABLE || luamig_is_constraint(L, lua_gettop(L))
          || !column_is_pk(L, what, lua_gettop(L), i)) {
        lua_pop(L, 1);
        continue;
      }
      lua_pop(L, 1);
      if (seen++) luaL_addstring(b, ", ");   /* b must be at the top to grow */
      lua_geti(L, cols, i);
      lua_geti(L, -1, 1);
      lua_remove(L, -2);
      luamig_add_top_ident(L, b, what, "column name");
    }
    luaL_addchar(b, ')');
  }
  luaL_addstring(b, n > 0 ? "\n)" : ")");

  if (luamig_push_opt(L, opts, "comment") == LUA_TNIL) lua_pop(L, 1);
  else add_table_comment(L, b, what, name, opts);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, cols, i) == LUA_TTABLE && !luamig_is_constraint(L, lua_gettop(L)))
      add_column_comment(L, b, what, name, opts);
    else
      lua_pop(L, 1);
  }
}

/* op.drop_table(name [, {if_exists=, cascade=, schema=}]) */
void luamig_sql_drop_table(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  luamig_add_drop(L, b, op, "TABLE");
}

/* op.rename_table(old_name, new_name [, {schema=}]) */
void luamig_sql_rename_table(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  const char *to = lua_tostring(L, luamig_arg(L, op, "new_name"));
  luaL_addstring(b, "ALTER TABLE ");
  luamig_add_relation(L, b, op->what, luamig_arg(L, op, "old_name"), luamig_arg(L, op, "options"),
                      "table name");
  luaL_addstring(b, " RENAME TO ");
  luamig_add_ident(L, b, op->what, "new table name", to, strlen(to));
}

/* COMMENT ON TABLE <table> (the op's table and schema). */
static void add_comment_on_table(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  luaL_addstring(b, "COMMENT ON TABLE ");
  luamig_add_relation(L, b, op->what, luamig_arg(L, op, "table"), luamig_arg(L, op, "options"),
                      "table name");
}

/* op.create_table_comment(table, comment [, {schema=}]) */
void luamig_sql_create_table_comment(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  add_comment_on_table(L, b, op);
  lua_pushvalue(L, luamig_arg(L, op, "comment"));
  add_top_comment(L, b, op->what);
}

/* op.drop_table_comment(table [, {schema=}]) */
void luamig_sql_drop_table_comment(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  add_comment_on_table(L, b, op);
  luaL_addstring(b, " IS NULL");
}

/* ---- columns ---- */

/* op.add_column(table, column [, {if_not_exists=, schema=}]) */
void luamig_sql_add_column(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  const char *what = op->what;
  int table = luamig_arg(L, op, "table"), column = luamig_arg(L, op, "column");
  int opts = luamig_arg(L, op, "options");
  int if_not_exists = luamig_opt_bool(L, what, opts, "if_not_exists");
  luaL_addstring(b, "ALTER TABLE ");
  luamig_add_relation(L, b, what, table, opts, "table name");
  luaL_addstring(b, if_not_exists == 1 ? " ADD COLUMN IF NOT EXISTS " : " ADD COLUMN ");
  add_column_def(L, b, what, column, 0, true);
  lua_pushvalue(L, column);
  add_column_comment(L, b, what, table, opts);
}

/* op.drop_column(table, column [, {if_exists=, cascade=, schema=}]) */
void luamig_sql_drop_column(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  const char *what = op->what;
  int opts = luamig_arg(L, op, "options");
  const char *col = lua_tostring(L, luamig_arg(L, op, "column"));
  int if_exists = luamig_opt_bool(L, what, opts, "if_exists");
  int cascade = luamig_opt_bool(L, what, opts, "cascade");
  luaL_addstring(b, "ALTER TABLE ");
  luamig_add_relation(L, b, what, luamig_arg(L, op, "table"), opts, "table name");
  luaL_addstring(b, if_exists == 1 ? " DROP COLUMN IF EXISTS " : " DROP COLUMN ");
  luamig_add_ident(L, b, what, "column name", col, strlen(col));
  if (cascade == 1) luaL_addstring(b, " CASCADE");
}

/* What an op.alter_column call changes, read and checked from its options. */
typedef struct alter {
  int nullable;                      /* -1: unchanged */
  bool has_type, has_using, has_comment, has_rename;
  bool drop_first;                   /* DROP DEFAULT before the type changes */
  bool set_default;
  int nactions;                      /* of the one ALTER TABLE */
} alter;

static void read_alter(lua_State *L, const char *what, int opts, alter *a) {
  a->nullable = luamig_opt_bool(L, what, opts, "nullable");
  a->has_type = luamig_push_opt_string(L, what, opts, "type", "a string such as \"bigint\"");
  if (a->has_type && lua_rawlen(L, -1) == 0) luamig_op_error(L, what, "type is empty");
  if (a->has_type && !type_ok(lua_tostring(L, -1)))
    luamig_op_error(L, what, "type \"%s\" contains ';' or a comment", lua_tostring(L, -1));
  if (a->has_type) lua_pop(L, 1);
  a->has_using = luamig_push_opt_string(L, what, opts, "using", "a SQL expression string");
  if (a->has_using && !a->has_type) luamig_op_error(L, what, "using needs type");
  if (a->has_using) lua_pop(L, 1);
  int dtype = luamig_push_opt(L, opts, "server_default");
  bool drop_default = dtype == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  if (dtype != LUA_TNIL && !drop_default && (dtype == LUA_TBOOLEAN || !top_expr(L)))
    luamig_op_error(L, what, "server_default must be a SQL expression string or a number, "
                    "or false to drop the default (got %s; for a boolean default write \"%s\")",
                    luaL_typename(L, -1), lua_toboolean(L, -1) ? "true" : "false");
  lua_pop(L, 1);
  a->has_comment = luamig_push_opt(L, opts, "comment") != LUA_TNIL;
  lua_pop(L, 1);
  a->has_rename = luamig_push_opt_string(L, what, opts, "new_name", "a string");
  if (a->has_rename) lua_pop(L, 1);
  if (!a->has_type && a->nullable < 0 && dtype == LUA_TNIL && !a->has_comment && !a->has_rename)
    luamig_op_error(L, what, "nothing to alter: give type, nullable, server_default, "
                    "new_name or comment");
  /* a new type with a new default: the old default goes first, or the server
   * would try to cast it to the new type */
  a->drop_first = drop_default || (a->has_type && dtype != LUA_TNIL);
  a->set_default = dtype != LUA_TNIL && !drop_default;
  a->nactions = a->drop_first + a->has_type + (a->nullable >= 0) + a->set_default;
}

/* The one ALTER TABLE of a's type, nullability and default changes, when there are any. */
static void add_alter_actions(lua_State *L, luaL_Buffer *b, const char *what, int table,
                              int opts, const char *col, const alter *a) {
  if (a->nactions > 0) {
    luaL_addstring(b, "ALTER TABLE ");
    luamig_add_relation(L, b, what, table, opts, "table name");
  }
  const char *sep = a->nactions > 1 ? INDENT : " ";
  for (int step = 0; step < 4; step++) {
    if (!(step == 0 ? a->drop_first : step == 1 ? a->has_type : step == 2 ? a->nullable >= 0
          : a->set_default))
      continue;
    luaL_addstring(b, sep);
    sep = "," INDENT;
    luaL_addstring(b, "ALTER COLUMN ");
    luamig_add_ident(L, b, what, "column name", col, strlen(col));
    if (step == 0) {
      luaL_addstring(b, " DROP DEFAULT");
    } else if (step == 1) {
      luamig_push_opt(L, opts, "type");
      luamig_add_top_text(L, b, what, "type", " TYPE ");
      if (a->has_using) {
        luamig_push_opt(L, opts, "using");
        luamig_add_top_text(L, b, what, "using", " USING ");
      }
    } else if (step == 2) {
      luaL_addstring(b, a->nullable ? " DROP NOT NULL" : " SET NOT NULL");
    } else {
      luamig_push_opt(L, opts, "server_default");
      top_expr(L);
      luamig_add_top_text(L, b, what, "server_default", " SET DEFAULT ");
    }
  }
}

/* op.alter_column(table, column, {type=, using=, nullable=, server_default=,
 * new_name=, comment=, schema=}): one ALTER TABLE for the type, nullability and
 * default (one table rewrite at most), then the comment, then the rename. */
void luamig_sql_alter_column(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  const char *what = op->what;
  int table = luamig_arg(L, op, "table"), opts = luamig_arg(L, op, "options");
  const char *col = lua_tostring(L, luamig_arg(L, op, "column"));
  if (!lua_istable(L, opts))
    luamig_op_error(L, what, "options must be a table such as { nullable = false } (got %s)",
                    luaL_typename(L, opts));
  alter a;
  read_alter(L, what, opts, &a);
  add_alter_actions(L, b, what, table, opts, col, &a);
  if (a.has_comment) {
    if (a.nactions > 0) luamig_sql_next(b);
    luaL_addstring(b, "COMMENT ON COLUMN ");
    luamig_add_relation(L, b, what, table, opts, "table name");
    luaL_addchar(b, '.');
    luamig_add_ident(L, b, what, "column name", col, strlen(col));
    luamig_push_opt(L, opts, "comment");
    luaL_Buffer c;                   /* the comment sits above b: build in c */
    luaL_buffinit(L, &c);
    lua_pushvalue(L, -2);
    add_top_comment(L, &c, what);
    luaL_pushresult(&c);
    lua_remove(L, -2);
    luaL_addvalue(b);
  }
  if (a.has_rename) {
    if (a.nactions > 0 || a.has_comment) luamig_sql_next(b);
    luaL_addstring(b, "ALTER TABLE ");
    luamig_add_relation(L, b, what, table, opts, "table name");
    luaL_addstring(b, " RENAME COLUMN ");
    luamig_add_ident(L, b, what, "column name", col, strlen(col));
    luaL_addstring(b, " TO ");
    luamig_push_opt(L, opts, "new_name");
    luamig_add_top_ident(L, b, what, "new_name");
  }
}

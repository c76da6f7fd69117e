/*
 * sql_constraint.c: the statements of the constraint ops, and the constraint
 * tables op.create_table takes ({ unique = { "a", "b" }, name = "uq" }). Pure,
 * like the helpers it builds on: args.c reads the arguments, quote.c quotes them.
 */
#include <string.h>
#include <strings.h>

#include "luamig.h"

static const char *const schema_opt[] = { "schema", NULL };

static const char *const fk_actions[] = {
  "cascade", "restrict", "set null", "set default", "no action", NULL
};
static const char *const fk_actions_sql[] = {
  "CASCADE", "RESTRICT", "SET NULL", "SET DEFAULT", "NO ACTION"
};

const char *luamig_fk_action(const char *v) {
  for (int i = 0; fk_actions[i]; i++)
    if (strcasecmp(v, fk_actions[i]) == 0) return fk_actions_sql[i];
  return NULL;
}

/* " DEFERRABLE INITIALLY DEFERRED" from opts.deferrable / opts.initially. */
static void add_deferrable(lua_State *L, luaL_Buffer *b, const char *what, int opts) {
  int deferrable = luamig_opt_bool(L, what, opts, "deferrable");
  if (deferrable == 1) luaL_addstring(b, " DEFERRABLE");
  if (deferrable == 0) luaL_addstring(b, " NOT DEFERRABLE");
  if (luamig_push_opt(L, opts, "initially") == LUA_TNIL) { lua_pop(L, 1); return; }
  const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
  const char *sql = strcasecmp(v, "deferred") == 0 ? " INITIALLY DEFERRED"
                  : strcasecmp(v, "immediate") == 0 ? " INITIALLY IMMEDIATE" : NULL;
  if (sql == NULL)
    luamig_op_error(L, what, "initially must be 'deferred' or 'immediate' (got %s)",
                    luaL_tolstring(L, -1, NULL));
  lua_pop(L, 1);                     /* b must be at the top to grow */
  luaL_addstring(b, sql);
}

/* FOREIGN KEY (<local>) REFERENCES [<referent_schema>.]<referent> (<remote>) [MATCH ...]
 * [ON DELETE ...] [ON UPDATE ...] [DEFERRABLE ...], the options read from opts. */
static void add_fk_body(lua_State *L, luaL_Buffer *b, const char *what, int local,
                        int referent, int remote, int opts) {
  const char *ref = luamig_arg_ident(L, what, referent, "referent table");
  lua_Integer nl = luamig_check_array(L, what, local, "local_cols");
  lua_Integer nr = luamig_check_array(L, what, remote, "remote_cols");
  if (nl != nr)
    luamig_op_error(L, what, "local_cols has %d columns but remote_cols has %d", (int)nl, (int)nr);
  luaL_addstring(b, "FOREIGN KEY ");
  luamig_add_ident_list(L, b, what, local, "local_cols");
  luaL_addstring(b, " REFERENCES ");
  if (luamig_push_opt(L, opts, "referent_schema") == LUA_TNIL) {
    lua_pop(L, 1);
  } else {
    luamig_add_top_ident(L, b, what, "referent_schema");
    luaL_addchar(b, '.');
  }
  luamig_add_ident(L, b, what, "referent table", ref, strlen(ref));
  luaL_addchar(b, ' ');
  luamig_add_ident_list(L, b, what, remote, "remote_cols");
  const char *match = NULL;
  if (luamig_push_opt(L, opts, "match") != LUA_TNIL) {
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    match = strcasecmp(m, "full") == 0 ? " MATCH FULL"
          : strcasecmp(m, "simple") == 0 ? " MATCH SIMPLE" : NULL;
    if (match == NULL)
      luamig_op_error(L, what, "match must be 'full' or 'simple' (got %s)", luaL_tolstring(L, -1, NULL));
  }
  lua_pop(L, 1);
  if (match) luaL_addstring(b, match);
  static const char *const keys[] = { "ondelete", "onupdate" };
  static const char *const sql[] = { " ON DELETE ", " ON UPDATE " };
  for (int i = 0; i < 2; i++) {
    if (luamig_push_opt(L, opts, keys[i]) == LUA_TNIL) { lua_pop(L, 1); continue; }
    const char *action = lua_type(L, -1) == LUA_TSTRING ? luamig_fk_action(lua_tostring(L, -1)) : NULL;
    if (action == NULL)
      luamig_op_error(L, what, "%s must be one of 'cascade', 'restrict', 'set null', "
                      "'set default', 'no action' (got %s)", keys[i], luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    luaL_addstring(b, sql[i]);
    luaL_addstring(b, action);
  }
  add_deferrable(L, b, what, opts);
}

static const char *const constraint_fields[] = {
  "name", "primary_key", "unique", "check", "foreign_key", "referent", "remote_cols",
  "referent_schema", "ondelete", "onupdate", "deferrable", "initially", "match", NULL
};

bool luamig_is_constraint(lua_State *L, int t) {
  bool named = lua_geti(L, t, 1) != LUA_TNIL;
  bool kind = lua_getfield(L, t, "primary_key") == LUA_TTABLE;
  kind = (lua_getfield(L, t, "unique") == LUA_TTABLE) || kind;
  kind = (lua_getfield(L, t, "check") != LUA_TNIL) || kind;
  kind = (lua_getfield(L, t, "foreign_key") != LUA_TNIL) || kind;
  lua_pop(L, 5);
  return !named && kind;
}

void luamig_push_table_constraint(lua_State *L, const char *what, int t, lua_Integer k) {
  static const char *const kinds[] = { "primary_key", "unique", "check", "foreign_key" };
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pop(L, 1);
    bool ok = false;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; constraint_fields[i] && !ok; i++)
        ok = strcmp(lua_tostring(L, -1), constraint_fields[i]) == 0;
    if (!ok) luamig_op_error(L, what, "constraint #%d: unknown field '%s'", (int)k,
                             luaL_tolstring(L, -1, NULL));
  }
  int kind = -1;
  for (int i = 0; i < 4; i++) {
    if (lua_getfield(L, t, kinds[i]) != LUA_TNIL) {
      if (kind >= 0)
        luamig_op_error(L, what, "constraint #%d has both %s and %s", (int)k, kinds[kind], kinds[i]);
      kind = i;
    }
    lua_pop(L, 1);
  }
  int base = lua_gettop(L);
  lua_getfield(L, t, kinds[kind]);   /* base + 1 */
  lua_getfield(L, t, "referent");    /* base + 2 */
  lua_getfield(L, t, "remote_cols"); /* base + 3 */
  if (kind != 3 && (!lua_isnil(L, base + 2) || !lua_isnil(L, base + 3)))
    luamig_op_error(L, what, "constraint #%d: referent and remote_cols are for foreign_key", (int)k);
  luaL_Buffer c;
  luaL_buffinit(L, &c);
  if (lua_getfield(L, t, "name") == LUA_TNIL) {
    lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
    luaL_addstring(&c, "CONSTRAINT ");
    lua_getfield(L, t, "name");
    luamig_add_top_ident(L, &c, what, "constraint name");
    luaL_addchar(&c, ' ');
  }
  switch (kind) {
  case 0:
  case 1:
    luaL_addstring(&c, kind == 0 ? "PRIMARY KEY " : "UNIQUE ");
    luamig_add_ident_list(L, &c, what, base + 1, kinds[kind]);
    if (kind == 1) add_deferrable(L, &c, what, t);
    break;
  case 2:
    lua_pushvalue(L, base + 1);
    luamig_add_top_text(L, &c, what, "check", "CHECK (");
    luaL_addchar(&c, ')');
    break;
  default:
    if (lua_isnil(L, base + 2))
      luamig_op_error(L, what, "constraint #%d: foreign_key needs referent (the table)", (int)k);
    add_fk_body(L, &c, what, base + 1, base + 2, base + 3, t);
  }
  luaL_pushresult(&c);
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
}

/* ---- constraints ---- */

/* The constraint name at arg: NULL when it is nil (Alembic's None: the server
 * picks it), else checked as an identifier. */
static const char *opt_constraint_name(lua_State *L, const char *what, int arg) {
  if (lua_isnil(L, arg)) return NULL;
  return luamig_arg_ident(L, what, arg, "constraint name");
}

/* The name of the constraint an op changes: it must be given. */
static const char *needed_constraint_name(lua_State *L, const char *what, int arg) {
  if (lua_isnil(L, arg))
    luamig_op_error(L, what, "Constraint must have a name: PostgreSQL named it when it was "
                    "created (<table>_<columns>_key, _fkey, _check, <table>_pkey); find it "
                    "with \\d <table> and pass it");
  return luamig_arg_ident(L, what, arg, "constraint name");
}

/* ALTER TABLE <table> ADD [CONSTRAINT "<name>"] (the name at arg, nil for one the
 * server picks; the table at arg + 1). */
static void add_constraint_head(lua_State *L, luaL_Buffer *b, const char *what, int arg,
                                int opts) {
  const char *name = opt_constraint_name(L, what, arg);
  luaL_addstring(b, "ALTER TABLE ");
  luamig_add_relation(L, b, what, arg + 1, opts, "table name");
  luaL_addstring(b, " ADD ");
  if (name == NULL) return;
  luaL_addstring(b, "CONSTRAINT ");
  luamig_add_ident(L, b, what, "constraint name", name, strlen(name));
  luaL_addchar(b, ' ');
}

/* op.create_primary_key(name|nil, table, columns [, {schema=}]) */
void luamig_sql_create_primary_key(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  opt_constraint_name(L, what, arg);
  luamig_arg_ident(L, what, arg + 1, "table name");
  luamig_check_opts(L, what, arg + 3, schema_opt);
  add_constraint_head(L, b, what, arg, arg + 3);
  luaL_addstring(b, "PRIMARY KEY ");
  luamig_add_ident_list(L, b, what, arg + 2, "columns");
}

/* op.create_unique_constraint(name|nil, table, columns [, {schema=, deferrable=, initially=}]) */
void luamig_sql_create_unique_constraint(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  static const char *const allowed[] = { "schema", "deferrable", "initially", NULL };
  opt_constraint_name(L, what, arg);
  luamig_arg_ident(L, what, arg + 1, "table name");
  luamig_check_opts(L, what, arg + 3, allowed);
  add_constraint_head(L, b, what, arg, arg + 3);
  luaL_addstring(b, "UNIQUE ");
  luamig_add_ident_list(L, b, what, arg + 2, "columns");
  add_deferrable(L, b, what, arg + 3);
}

/* op.create_check_constraint(name|nil, table, condition [, {schema=, not_valid=}]) */
void luamig_sql_create_check_constraint(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  static const char *const allowed[] = { "schema", "not_valid", NULL };
  opt_constraint_name(L, what, arg);
  luamig_arg_ident(L, what, arg + 1, "table name");
  if (lua_type(L, arg + 2) != LUA_TSTRING)
    luamig_op_error(L, what, "condition must be a SQL expression string (got %s)",
                    luaL_typename(L, arg + 2));
  luamig_check_opts(L, what, arg + 3, allowed);
  int not_valid = luamig_opt_bool(L, what, arg + 3, "not_valid");
  add_constraint_head(L, b, what, arg, arg + 3);
  lua_pushvalue(L, arg + 2);
  luamig_add_top_text(L, b, what, "condition", "CHECK (");
  luaL_addchar(b, ')');
  if (not_valid == 1) luaL_addstring(b, " NOT VALID");
}

/* op.create_foreign_key(name|nil, source, referent, local_cols, remote_cols [, {schema=,
 * referent_schema=, ondelete=, onupdate=, deferrable=, initially=, match=, not_valid=}]) */
void luamig_sql_create_foreign_key(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  static const char *const allowed[] = {
    "schema", "referent_schema", "ondelete", "onupdate", "deferrable", "initially", "match",
    "not_valid", NULL
  };
  opt_constraint_name(L, what, arg);
  luamig_arg_ident(L, what, arg + 1, "source table");
  luamig_arg_ident(L, what, arg + 2, "referent table");
  luamig_check_opts(L, what, arg + 5, allowed);
  int not_valid = luamig_opt_bool(L, what, arg + 5, "not_valid");
  add_constraint_head(L, b, what, arg, arg + 5);
  add_fk_body(L, b, what, arg + 3, arg + 2, arg + 4, arg + 5);
  if (not_valid == 1) luaL_addstring(b, " NOT VALID");
}

/* op.validate_constraint(name, table [, {schema=}]): checks the rows of a NOT VALID
 * constraint, holding only SHARE UPDATE EXCLUSIVE on the table. */
void luamig_sql_validate_constraint(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  const char *name = needed_constraint_name(L, what, arg);
  luamig_arg_ident(L, what, arg + 1, "table name");
  luamig_check_opts(L, what, arg + 2, schema_opt);
  luaL_addstring(b, "ALTER TABLE ");
  luamig_add_relation(L, b, what, arg + 1, arg + 2, "table name");
  luaL_addstring(b, " VALIDATE CONSTRAINT ");
  luamig_add_ident(L, b, what, "constraint name", name, strlen(name));
}

/* op.drop_constraint(name, table [, {schema=, if_exists=, cascade=, type_=}]); type_
 * (Alembic's) is checked and not needed: PostgreSQL drops any kind by name. */
void luamig_sql_drop_constraint(lua_State *L, luaL_Buffer *b, const char *what, int arg) {
  static const char *const allowed[] = { "schema", "if_exists", "cascade", "type_", NULL };
  static const char *const types[] = { "foreignkey", "primary", "unique", "check", NULL };
  const char *name = needed_constraint_name(L, what, arg);
  luamig_arg_ident(L, what, arg + 1, "table name");
  luamig_check_opts(L, what, arg + 2, allowed);
  if (luamig_push_opt(L, arg + 2, "type_") != LUA_TNIL) {
    bool ok = false;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; types[i] && !ok; i++) ok = strcmp(lua_tostring(L, -1), types[i]) == 0;
    if (!ok) luamig_op_error(L, what, "type_ must be 'foreignkey', 'primary', 'unique' or "
                             "'check' (got %s)", luaL_tolstring(L, -1, NULL));
  }
  lua_pop(L, 1);
  int if_exists = luamig_opt_bool(L, what, arg + 2, "if_exists");
  int cascade = luamig_opt_bool(L, what, arg + 2, "cascade");
  luaL_addstring(b, "ALTER TABLE ");
  luamig_add_relation(L, b, what, arg + 1, arg + 2, "table name");
  luaL_addstring(b, if_exists == 1 ? " DROP CONSTRAINT IF EXISTS " : " DROP CONSTRAINT ");
  luamig_add_ident(L, b, what, "constraint name", name, strlen(name));
  if (cascade == 1) luaL_addstring(b, " CASCADE");
}

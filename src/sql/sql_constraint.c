/*
 * sql_constraint.c: the statements of the constraint ops, and the constraint
 * tables op.create_table takes ({ unique = { "a", "b" }, name = "uq" }). Pure,
 * like the helpers it builds on: args.c reads the arguments, quote.c quotes them.
 */
#include <string.h>
#include <strings.h>

#include "luamig.h"
#include "sql.h"

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

/* ---- references: "table(column)", "schema.table (a, b)" ---- */

static const char *skip_space(const char *p, const char *end) {
  while (p < end && luamig_is_space(*p)) p++;
  return p;
}

static const char *trim_end(const char *p, const char *end) {
  while (end > p && luamig_is_space(end[-1])) end--;
  return end;
}

/* Pushes the name in [p, end), spaces around it left out and, when it is quoted,
 * its quotes off and "" made one; NULL when a quote is left open. */
static const char *push_ref_name(lua_State *L, const char *p, const char *end) {
  p = skip_space(p, end);
  end = trim_end(p, end);
  if (p == end || *p != '"') {
    lua_pushlstring(L, p, (size_t)(end - p));
    return p;
  }
  if (end - p < 2 || end[-1] != '"') return NULL;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *q = p + 1; q < end - 1; q++) {
    luaL_addchar(&b, *q);
    if (*q == '"' && q[1] == '"') q++;
  }
  luaL_pushresult(&b);
  return p;
}

/* Past the name part at p (a quoted name, or text up to one of stop), or NULL
 * when a quote is left open. */
static const char *skip_ref_part(const char *p, const char *end, const char *stop) {
  p = skip_space(p, end);
  if (p < end && *p == '"') {
    for (p++; p < end; p++) {
      if (*p != '"') continue;
      if (p + 1 < end && p[1] == '"') { p++; continue; }
      return p + 1;
    }
    return NULL;
  }
  while (p < end && !strchr(stop, *p)) p++;
  return p;
}

const char *luamig_push_reference(lua_State *L, const char *ref) {
  static const char bad[] = "must look like \"table(column)\" or \"schema.table(column)\"";
  int top = lua_gettop(L);
  const char *end = ref + strlen(ref), *open = ref;
  while (open < end && *open != '(') {        /* the table part ends at a "(" outside quotes */
    open = skip_ref_part(open, end, "(\"");
    if (open == NULL) return bad;
  }
  const char *dot = skip_ref_part(ref, open, ".(");
  if (dot != NULL) dot = skip_space(dot, open);
  if (dot == NULL || (dot < open && *dot != '.')) return bad;
  if (dot < open) {
    if (!push_ref_name(L, ref, dot) || !push_ref_name(L, dot + 1, open)) {
      lua_settop(L, top);
      return bad;
    }
  } else {
    lua_pushnil(L);
    if (!push_ref_name(L, ref, open)) { lua_settop(L, top); return bad; }
  }
  if (open == end) { lua_pushnil(L); return NULL; }
  const char *close = trim_end(open, end);
  if (close - open < 2 || close[-1] != ')') { lua_settop(L, top); return bad; }
  lua_newtable(L);
  const char *stop = close - 1;              /* the columns: between the parentheses */
  for (const char *p = open + 1; ; p++) {
    const char *q = p;
    while (q != NULL && q < stop && *q != ',') q = skip_ref_part(q, stop, ",\"");
    if (q == NULL || !push_ref_name(L, p, q)) { lua_settop(L, top); return bad; }
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    if (q == stop) return NULL;
    p = q;
  }
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
      luamig_op_error(L, what, "%s must be one of " LUAMIG_FK_ACTIONS " (got %s)", keys[i],
                      luaL_tolstring(L, -1, NULL));
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

/* ALTER TABLE <table> ADD [CONSTRAINT "<name>"]: the op's name (nil for one the
 * server picks) and table (its "source" for a foreign key). */
static void add_constraint_head(lua_State *L, luaL_Buffer *b, const luamig_opcall *op,
                                const char *table) {
  const char *name = lua_tostring(L, luamig_arg(L, op, "name"));
  luaL_addstring(b, "ALTER TABLE ");
  luamig_add_relation(L, b, op->what, luamig_arg(L, op, table), luamig_arg(L, op, "options"),
                      "table name");
  luaL_addstring(b, " ADD ");
  if (name == NULL) return;
  luaL_addstring(b, "CONSTRAINT ");
  luamig_add_ident(L, b, op->what, "constraint name", name, strlen(name));
  luaL_addchar(b, ' ');
}

/* op.create_primary_key(name|nil, table, columns [, {schema=}]) */
void luamig_sql_create_primary_key(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  add_constraint_head(L, b, op, "table");
  luaL_addstring(b, "PRIMARY KEY ");
  luamig_add_ident_list(L, b, op->what, luamig_arg(L, op, "columns"), "columns");
}

/* op.create_unique_constraint(name|nil, table, columns [, {deferrable=, initially=, schema=}]) */
void luamig_sql_create_unique_constraint(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  add_constraint_head(L, b, op, "table");
  luaL_addstring(b, "UNIQUE ");
  luamig_add_ident_list(L, b, op->what, luamig_arg(L, op, "columns"), "columns");
  add_deferrable(L, b, op->what, luamig_arg(L, op, "options"));
}

/* op.create_check_constraint(name|nil, table, condition [, {not_valid=, schema=}]) */
void luamig_sql_create_check_constraint(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  int condition = luamig_arg(L, op, "condition");
  int not_valid = luamig_opt_bool(L, op->what, luamig_arg(L, op, "options"), "not_valid");
  add_constraint_head(L, b, op, "table");
  lua_pushvalue(L, condition);
  luamig_add_top_text(L, b, op->what, "condition", "CHECK (");
  luaL_addchar(b, ')');
  if (not_valid == 1) luaL_addstring(b, " NOT VALID");
}

/* op.create_foreign_key(name|nil, source, referent, local_cols, remote_cols [,
 * {referent_schema=, ondelete=, onupdate=, deferrable=, initially=, match=,
 * not_valid=, schema=}]) */
void luamig_sql_create_foreign_key(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  int opts = luamig_arg(L, op, "options");
  int not_valid = luamig_opt_bool(L, op->what, opts, "not_valid");
  add_constraint_head(L, b, op, "source");
  add_fk_body(L, b, op->what, luamig_arg(L, op, "local_cols"), luamig_arg(L, op, "referent"),
              luamig_arg(L, op, "remote_cols"), opts);
  if (not_valid == 1) luaL_addstring(b, " NOT VALID");
}

/* ALTER TABLE <table> <action> "<name>": the op's table and constraint name. */
static void add_named_action(lua_State *L, luaL_Buffer *b, const luamig_opcall *op,
                             const char *action) {
  const char *name = lua_tostring(L, luamig_arg(L, op, "name"));
  luaL_addstring(b, "ALTER TABLE ");
  luamig_add_relation(L, b, op->what, luamig_arg(L, op, "table"), luamig_arg(L, op, "options"),
                      "table name");
  luaL_addstring(b, action);
  luamig_add_ident(L, b, op->what, "constraint name", name, strlen(name));
}

/* op.validate_constraint(name, table [, {schema=}]): checks the rows of a NOT VALID
 * constraint, holding only SHARE UPDATE EXCLUSIVE on the table. */
void luamig_sql_validate_constraint(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  add_named_action(L, b, op, " VALIDATE CONSTRAINT ");
}

/* op.drop_constraint(name, table [, {if_exists=, cascade=, type_=, schema=}]); type_
 * (Alembic's) is checked and not needed: PostgreSQL drops any kind by name. */
void luamig_sql_drop_constraint(lua_State *L, luaL_Buffer *b, const luamig_opcall *op) {
  static const char *const types[] = { "foreignkey", "primary", "unique", "check", NULL };
  const char *what = op->what;
  int opts = luamig_arg(L, op, "options");
  if (luamig_push_opt(L, opts, "type_") != LUA_TNIL) {
    bool ok = false;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; types[i] && !ok; i++) ok = strcmp(lua_tostring(L, -1), types[i]) == 0;
    if (!ok) luamig_op_error(L, what, "type_ must be 'foreignkey', 'primary', 'unique' or "
                             "'check' (got %s)", luaL_tolstring(L, -1, NULL));
  }
  lua_pop(L, 1);
  int if_exists = luamig_opt_bool(L, what, opts, "if_exists");
  int cascade = luamig_opt_bool(L, what, opts, "cascade");
  add_named_action(L, b, op, if_exists == 1 ? " DROP CONSTRAINT IF EXISTS " : " DROP CONSTRAINT ");
  if (cascade == 1) luaL_addstring(b, " CASCADE");
}

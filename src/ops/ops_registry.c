/*
 * ops_registry.c: the op registry, one row per op.* a revision gets. A row is
 * everything there is to know about an op outside its builder: its arguments
 * (names, kinds, the labels its messages use), the keys of its options table,
 * its flags, what the safety lint makes of it, the op that undoes it, and its
 * documentation. ops.c binds the op table from it, args.c checks each call's
 * arguments by it and the builders (sql_*.c) read them by name (luamig_arg);
 * core.op_specs() gives it to the lint (lua/luamig/lint_actions.lua), to
 * autogenerate's renderer (lua/luamig/render.lua) and to scripts/opdocs.lua,
 * which writes docs/operations.md. A new op is its builder and its row here.
 */
#include "luamig.h"
#include "ops.h"

#define OP(n) .name = n, .what = "op." n
#define P(...) .params = (const luamig_param[]){ __VA_ARGS__, { NULL, 0, NULL } }
#define O(...) .options = (const luamig_option[]){ __VA_ARGS__, { NULL, 0 } }

#define SCHEMA { "schema", LUAMIG_SCHEMA }
#define IF_EXISTS { "if_exists", LUAMIG_BOOL }
#define IF_NOT_EXISTS { "if_not_exists", LUAMIG_BOOL }
#define CASCADE { "cascade", LUAMIG_BOOL }
#define TABLE { "table", LUAMIG_IDENT, "table name" }
#define CONSTRAINT { "name", LUAMIG_NAME, "constraint name" }
#define NEEDED_CONSTRAINT { "name", LUAMIG_NAMED, "constraint name" }

#define TABLES "Tables"
#define COLUMNS "Columns"
#define CONSTRAINTS "Constraints"
#define INDEXES "Indexes"
#define TYPES "Types, schemas and extensions"
#define DATA "Data"
#define LINT "The safety lint"

const luamig_opspec luamig_opspecs[] = {
  { OP("create_table"), .section = TABLES, .build = luamig_sql_create_table,
    P({ "name", LUAMIG_IDENT, "table name" }, { "columns", LUAMIG_COLUMNS, NULL }),
    O({ "comment", LUAMIG_STRING }, IF_NOT_EXISTS, SCHEMA),
    .lint = "create_table", .inverse = "drop_table",
    .doc =
      "Each element of `columns` is a column, a table constraint as SQL text, or a constraint table.\n"
      "\n"
      "A column is `{ \"name\", \"type\", ... }` with the fields `nullable` (default `true`), `default`\n"
      "(SQL), `primary_key`, `unique`, `references = \"table(column)\"` (or `\"schema.table(column)\"`,\n"
      "a name in double quotes where it needs them: `'\"My Table\"(id)'`),\n"
      "`on_delete`, `on_update` (`\"cascade\"`, `\"restrict\"`, `\"set null\"`, `\"set default\"`,\n"
      "`\"no action\"`) and `comment`. Several `primary_key` columns make one composite key.\n"
      "\n"
      "A constraint table has `name =` (optional) and one of `primary_key = { cols }`,\n"
      "`unique = { cols }` (with `deferrable =`, `initially =`), `check = \"SQL condition\"`, or\n"
      "`foreign_key = { cols }` with `referent =`, `remote_cols =` and the options of\n"
      "`op.create_foreign_key`.",
    .example =
      "op.create_table(\"orders\", {\n"
      "  { \"id\", \"bigserial\", primary_key = true },\n"
      "  { \"user_id\", \"bigint\", nullable = false, references = \"users(id)\", on_delete = \"cascade\" },\n"
      "  { \"status\", \"text\", nullable = false, default = \"'new'\", comment = \"new, paid or shipped\" },\n"
      "  { \"total\", \"numeric(10,2)\", nullable = false, default = 0 },\n"
      "  \"CHECK (total >= 0)\",\n"
      "  { unique = { \"user_id\", \"status\" }, name = \"uq_orders_user_status\" },\n"
      "}, { comment = \"One row per order\" })" },
  { OP("drop_table"), .section = TABLES, .build = luamig_sql_drop_table,
    P({ "name", LUAMIG_IDENT, "table name" }), O(IF_EXISTS, CASCADE, SCHEMA),
    .lint = "drop_table", .inverse = "create_table",
    .example = "op.drop_table(\"orders\", { if_exists = true })" },
  { OP("rename_table"), .section = TABLES, .build = luamig_sql_rename_table,
    P({ "old_name", LUAMIG_IDENT, "table name" }, { "new_name", LUAMIG_IDENT, "new table name" }),
    O(SCHEMA), .lint = "rename_table", .inverse = "rename_table",
    .example = "op.rename_table(\"orders\", \"purchases\", { schema = \"shop\" })" },
  { OP("create_table_comment"), .section = TABLES, .build = luamig_sql_create_table_comment,
    P(TABLE, { "comment", LUAMIG_STRING, NULL }), O(SCHEMA),
    .lint = "create_comment", .inverse = "drop_table_comment",
    .example = "op.create_table_comment(\"orders\", \"One row per order; see the billing docs\")" },
  { OP("drop_table_comment"), .section = TABLES, .build = luamig_sql_drop_table_comment,
    P(TABLE), O(SCHEMA), .lint = "drop_comment", .inverse = "create_table_comment",
    .example = "op.drop_table_comment(\"orders\")" },

  { OP("add_column"), .section = COLUMNS, .build = luamig_sql_add_column,
    P(TABLE, { "column", LUAMIG_COLUMN, NULL }), O(IF_NOT_EXISTS, SCHEMA),
    .lint = "add_column", .inverse = "drop_column",
    .doc = "`column` is a column table as in `op.create_table`.",
    .example = "op.add_column(\"users\", { \"last_login\", \"timestamptz\", comment = \"UTC\" })" },
  { OP("drop_column"), .section = COLUMNS, .build = luamig_sql_drop_column,
    P(TABLE, { "column", LUAMIG_IDENT, "column name" }), O(IF_EXISTS, CASCADE, SCHEMA),
    .lint = "drop_column", .inverse = "add_column",
    .example = "op.drop_column(\"users\", \"last_login\")" },
  { OP("alter_column"), .section = COLUMNS, .build = luamig_sql_alter_column,
    .flags = LUAMIG_OP_OPTS_NEEDED,
    P(TABLE, { "column", LUAMIG_IDENT, "column name" }),
    O({ "type", LUAMIG_TEXT }, { "using", LUAMIG_TEXT }, { "nullable", LUAMIG_BOOL },
      { "server_default", LUAMIG_DEFAULT }, { "new_name", LUAMIG_IDENT },
      { "comment", LUAMIG_COMMENT }, SCHEMA),
    .lint = "alter_column", .inverse = "alter_column",
    .doc =
      "Changes what is given, in one `ALTER TABLE` (one table rewrite at most), then the comment, then\n"
      "the name. `server_default` is SQL; `server_default = false` drops the default, and a new type\n"
      "with a new default drops the old default first (the server would try to cast it).\n"
      "`comment = false` removes the comment.",
    .example =
      "op.alter_column(\"users\", \"age\", {\n"
      "  type = \"integer\", using = \"age::integer\", nullable = false, server_default = \"0\",\n"
      "})\n"
      "op.alter_column(\"users\", \"nick\", { server_default = false, nullable = true, new_name = \"nickname\" })" },

  { OP("create_primary_key"), .section = CONSTRAINTS, .build = luamig_sql_create_primary_key,
    P(CONSTRAINT, TABLE, { "columns", LUAMIG_IDENTS, NULL }), O(SCHEMA),
    .lint = "add_constraint primary", .inverse = "drop_constraint",
    .doc =
      "The four `create_*` constraint ops take `nil` for the name, as Alembic takes `None`: the\n"
      "statement has no `CONSTRAINT` clause and PostgreSQL picks the name: `<table>_pkey`,\n"
      "`<table>_<columns>_key`, `<table>_<columns>_fkey`, `<table>_<column>_check` (`<table>_check`\n"
      "when the condition names several columns), with a digit added when that name is taken.\n"
      "`op.drop_constraint(nil, ...)` and `op.validate_constraint(nil, ...)` are errors, as in Alembic\n"
      "(\"Constraint must have a name\"): write the name PostgreSQL chose (`\\d table` shows it). The\n"
      "lint and autogenerate know these names ([safety-lint.md](safety-lint.md),\n"
      "[autogenerate.md](autogenerate.md)).",
    .example =
      "op.create_primary_key(\"pk_memberships\", \"memberships\", { \"user_id\", \"team_id\" })\n"
      "op.create_primary_key(nil, \"teams\", { \"id\" })   -- teams_pkey" },
  { OP("create_unique_constraint"), .section = CONSTRAINTS,
    .build = luamig_sql_create_unique_constraint,
    P(CONSTRAINT, TABLE, { "columns", LUAMIG_IDENTS, NULL }),
    O({ "deferrable", LUAMIG_BOOL }, { "initially", LUAMIG_WORD }, SCHEMA),
    .lint = "add_constraint unique", .inverse = "drop_constraint",
    .example =
      "op.create_unique_constraint(\"uq_users_email\", \"users\", { \"email\" })\n"
      "op.create_unique_constraint(nil, \"users\", { \"nick\" })   -- users_nick_key" },
  { OP("create_foreign_key"), .section = CONSTRAINTS, .build = luamig_sql_create_foreign_key,
    P(CONSTRAINT, { "source", LUAMIG_IDENT, "source table" },
      { "referent", LUAMIG_IDENT, "referent table" }, { "local_cols", LUAMIG_IDENTS, NULL },
      { "remote_cols", LUAMIG_IDENTS, NULL }),
    O({ "referent_schema", LUAMIG_IDENT }, { "ondelete", LUAMIG_WORD }, { "onupdate", LUAMIG_WORD },
      { "deferrable", LUAMIG_BOOL }, { "initially", LUAMIG_WORD }, { "match", LUAMIG_WORD },
      { "not_valid", LUAMIG_BOOL }, SCHEMA),
    .lint = "add_constraint foreign", .inverse = "drop_constraint",
    .doc =
      "`schema` is the source table's; the referent is unqualified (found on the search path) unless\n"
      "`referent_schema` is given. `initially` is `\"deferred\"` or `\"immediate\"`, `match` is `\"full\"` or\n"
      "`\"simple\"`. `not_valid = true` adds the constraint without checking the existing rows (a brief\n"
      "lock); `op.validate_constraint` checks them later.",
    .example =
      "op.create_foreign_key(\"fk_orders_user\", \"orders\", \"users\", { \"user_id\" }, { \"id\" },\n"
      "                      { ondelete = \"cascade\", deferrable = true, initially = \"deferred\" })" },
  { OP("create_check_constraint"), .section = CONSTRAINTS,
    .build = luamig_sql_create_check_constraint,
    P(CONSTRAINT, TABLE, { "condition", LUAMIG_TEXT, NULL }), O({ "not_valid", LUAMIG_BOOL }, SCHEMA),
    .lint = "add_constraint check", .inverse = "drop_constraint",
    .example = "op.create_check_constraint(\"ck_orders_total\", \"orders\", \"total >= 0\")" },
  { OP("validate_constraint"), .section = CONSTRAINTS, .build = luamig_sql_validate_constraint,
    P(NEEDED_CONSTRAINT, TABLE), O(SCHEMA), .lint = "validate_constraint",
    .doc =
      "Checks the existing rows against a constraint added with `not_valid = true`, holding only a\n"
      "SHARE UPDATE EXCLUSIVE lock (writes go on); best in a later revision than the one that added it.",
    .example =
      "op.create_check_constraint(\"ck_users_email\", \"users\", \"email IS NOT NULL\", { not_valid = true })\n"
      "op.validate_constraint(\"ck_users_email\", \"users\")" },
  { OP("drop_constraint"), .section = CONSTRAINTS, .build = luamig_sql_drop_constraint,
    P(NEEDED_CONSTRAINT, TABLE), O(IF_EXISTS, CASCADE, { "type_", LUAMIG_WORD }, SCHEMA),
    .lint = "drop_constraint",
    .doc =
      "`type_` (`\"foreignkey\"`, `\"primary\"`, `\"unique\"`, `\"check\"`) is accepted for Alembic's "
      "sake; PostgreSQL drops any kind of constraint by name.",
    .example = "op.drop_constraint(\"fk_orders_user\", \"orders\")" },

  { OP("create_index"), .section = INDEXES, .build = luamig_sql_create_index,
    .flags = LUAMIG_OP_CONCURRENT | LUAMIG_OP_BUILDS_INDEX,
    P({ "name", LUAMIG_IDENT, "index name" }, TABLE, { "columns", LUAMIG_ELEMENTS, NULL }),
    O({ "unique", LUAMIG_BOOL }, { "using", LUAMIG_IDENT }, { "where", LUAMIG_TEXT },
      { "include", LUAMIG_IDENTS }, { "concurrently", LUAMIG_BOOL }, IF_NOT_EXISTS, SCHEMA),
    .lint = "create_index", .inverse = "drop_index",
    .doc =
      "An element of `columns` containing `(` is an expression, passed through: `\"lower(email)\"`,\n"
      "`\"(created_at) DESC\"`. `using` is the index method (`\"gin\"`, `\"gist\"`, `\"brin\"`, ...),\n"
      "`include` a list of covering columns. `concurrently = true` needs a revision with\n"
      "`transactional = false`.",
    .example =
      "op.create_index(\"ix_users_email\", \"users\", { \"lower(email)\" }, { unique = true, where = \"deleted_at IS NULL\" })\n"
      "op.create_index(\"ix_posts_tags\", \"posts\", { \"tags\" }, { using = \"gin\" })\n"
      "op.create_index(\"ix_orders_user\", \"orders\", { \"user_id\" }, { include = { \"total\" }, concurrently = true })" },
  { OP("drop_index"), .section = INDEXES, .build = luamig_sql_drop_index,
    .flags = LUAMIG_OP_CONCURRENT,
    P({ "name", LUAMIG_IDENT, "index name" }), O({ "concurrently", LUAMIG_BOOL }, IF_EXISTS, SCHEMA),
    .lint = "drop_index", .inverse = "create_index",
    .example = "op.drop_index(\"ix_orders_user\", { concurrently = true, if_exists = true })" },

  { OP("create_sequence"), .section = "Sequences", .build = luamig_sql_create_sequence,
    P({ "name", LUAMIG_IDENT, "sequence name" }),
    O({ "start", LUAMIG_INTEGER }, { "increment", LUAMIG_INTEGER }, { "minvalue", LUAMIG_INTEGER },
      { "maxvalue", LUAMIG_INTEGER }, { "cache", LUAMIG_INTEGER }, { "cycle", LUAMIG_BOOL },
      { "owned_by", LUAMIG_STRING }, IF_NOT_EXISTS, SCHEMA),
    .lint = "create sequence", .inverse = "drop_sequence",
    .doc =
      "`owned_by = \"table.column\"` ties the sequence to a column of a table in its schema: dropping\n"
      "the column or the table drops the sequence. `cycle = false` writes `NO CYCLE`.",
    .example =
      "op.create_sequence(\"invoice_numbers\", { start = 1000, increment = 1, cache = 20 })\n"
      "op.create_sequence(\"orders_ref_seq\", { owned_by = \"orders.ref\", if_not_exists = true })" },
  { OP("drop_sequence"), .section = "Sequences", .build = luamig_sql_drop_sequence,
    P({ "name", LUAMIG_IDENT, "sequence name" }), O(IF_EXISTS, CASCADE, SCHEMA),
    .lint = "drop sequence", .inverse = "create_sequence",
    .example = "op.drop_sequence(\"invoice_numbers\", { if_exists = true })" },

  { OP("create_enum"), .section = TYPES, .build = luamig_sql_create_enum,
    P({ "name", LUAMIG_IDENT, "type name" }, { "values", LUAMIG_STRINGS, NULL }), O(IF_NOT_EXISTS, SCHEMA),
    .lint = "create type", .inverse = "drop_enum",
    .doc =
      "PostgreSQL has no `CREATE TYPE IF NOT EXISTS`; with `if_not_exists = true` (what SQLAlchemy's\n"
      "`ENUM.create` does by default, and histories written with it rely on) the same statement runs\n"
      "in a `DO` block, live and in `--sql`, unless `pg_type` already has a type of that name in the\n"
      "schema it would go to (`schema`, else `current_schema()`; a type of the same name in another\n"
      "schema of the `search_path` does not count). An existing type is left as it is, labels\n"
      "included. The dollar tag is `$luamig$`, or `$luamig1$`, ... when a name or label contains it.",
    .example =
      "op.create_enum(\"order_status\", { \"new\", \"paid\", \"shipped\" })\n"
      "op.create_enum(\"order_status\", { \"new\", \"paid\", \"shipped\" }, { if_not_exists = true })" },
  { OP("drop_enum"), .section = TYPES, .build = luamig_sql_drop_enum,
    P({ "name", LUAMIG_IDENT, "type name" }), O(IF_EXISTS, CASCADE, SCHEMA),
    .lint = "drop type", .inverse = "create_enum",
    .example = "op.drop_enum(\"order_status\")" },
  { OP("add_enum_value"), .section = TYPES, .build = luamig_sql_add_enum_value,
    P({ "name", LUAMIG_IDENT, "type name" }, { "value", LUAMIG_STRING, "enum value" }),
    O({ "before", LUAMIG_STRING }, { "after", LUAMIG_STRING }, IF_NOT_EXISTS, SCHEMA),
    .lint = "add_enum_value",
    .doc =
      "Before PostgreSQL 12, `ALTER TYPE ... ADD VALUE` cannot run inside a transaction: put it in a\n"
      "revision with `transactional = false` there. On any version, the new value cannot be used in the\n"
      "same transaction that adds it.",
    .example = "op.add_enum_value(\"order_status\", \"refunded\", { after = \"paid\", if_not_exists = true })" },
  { OP("create_schema"), .section = TYPES, .build = luamig_sql_create_schema,
    P({ "name", LUAMIG_IDENT, "schema name" }), O(IF_NOT_EXISTS, { "authorization", LUAMIG_IDENT }),
    .lint = "create schema", .inverse = "drop_schema",
    .example = "op.create_schema(\"billing\", { if_not_exists = true })" },
  { OP("drop_schema"), .section = TYPES, .build = luamig_sql_drop_schema,
    P({ "name", LUAMIG_IDENT, "schema name" }), O(IF_EXISTS, CASCADE),
    .lint = "drop schema", .inverse = "create_schema",
    .example = "op.drop_schema(\"billing\", { cascade = true })" },
  { OP("create_extension"), .section = TYPES, .build = luamig_sql_create_extension,
    P({ "name", LUAMIG_IDENT, "extension name" }),   /* its schema is where its objects go */
    O({ "schema", LUAMIG_IDENT }, IF_NOT_EXISTS, { "version", LUAMIG_STRING }, CASCADE),
    .lint = "create extension", .inverse = "drop_extension",
    .example = "op.create_extension(\"pg_trgm\", { if_not_exists = true })" },
  { OP("drop_extension"), .section = TYPES, .build = luamig_sql_drop_extension,
    P({ "name", LUAMIG_IDENT, "extension name" }), O(IF_EXISTS, CASCADE),
    .lint = "drop extension", .inverse = "create_extension",
    .example = "op.drop_extension(\"pg_trgm\")" },

  { OP("execute"), .section = DATA, .call = luamig_op_execute, .returns = "affected rows",
    P({ "sql", LUAMIG_TEXT, NULL }, { "params", LUAMIG_PARAMS | LUAMIG_OPTIONAL, NULL }), .lint = "sql",
    .doc =
      "Any SQL; `params` is an array sent as `$1, $2, ...` (use `params.n` when it has `nil`s). Without\n"
      "parameters the SQL may hold several statements. Returns the rows affected (0 offline).",
    .example = "op.execute(\"UPDATE users SET status = $1 WHERE status IS NULL\", { \"active\" })" },
  { OP("query"), .section = DATA, .call = luamig_op_query, .returns = "rows",
    .flags = LUAMIG_OP_LIVE,
    P({ "sql", LUAMIG_TEXT, NULL }, { "params", LUAMIG_PARAMS | LUAMIG_OPTIONAL, NULL }), .lint = "sql",
    .doc =
      "For data migrations: returns the rows as an array of tables keyed by column name, values\n"
      "converted (`int2/4/8` to integers, `float`/`numeric` to numbers, `bool` to booleans, others to\n"
      "strings, `NULL` to an absent field).",
    .example =
      "for _, row in ipairs(op.query(\"SELECT id, email FROM users WHERE email <> lower(email)\")) do\n"
      "  op.execute(\"UPDATE users SET email = $1 WHERE id = $2\", { row.email:lower(), row.id })\n"
      "end" },
  { OP("bulk_insert"), .section = DATA, .call = luamig_op_bulk_insert, .returns = "affected rows",
    P({ "table", LUAMIG_IDENT, "table name" }, { "rows", LUAMIG_ROWS, NULL }), O(SCHEMA), .lint = "dml",
    .doc =
      "`rows` is an array of tables keyed by column name. The columns are the union of the rows' keys\n"
      "(sorted); a row without one of them gets the column's `DEFAULT`. Values are sent as parameters,\n"
      "500 rows per `INSERT` (fewer for wide rows: at most 65535 parameters per statement).",
    .example =
      "op.bulk_insert(\"order_statuses\", {\n"
      "  { code = \"new\", label = \"New\", position = 1 },\n"
      "  { code = \"paid\", label = \"Paid\", position = 2 },\n"
      "  { code = \"shipped\", position = 3 },\n"
      "})" },

  { OP("backfill"), .section = DATA, .call = luamig_op_backfill, .returns = "rows updated",
    P(TABLE), O({ "set", LUAMIG_TEXT }, { "where", LUAMIG_TEXT }, { "key", LUAMIG_IDENT },
                { "batch", LUAMIG_INTEGER }, { "sleep", LUAMIG_STRING }, SCHEMA),
    .flags = LUAMIG_OP_OPTS_NEEDED, .lint = "dml",
    .doc =
      "An `UPDATE` of a big table that never holds the application up, in a `transactional = false`\n"
      "revision (refused in any other). `set` is the SET list (`\"col = expr\"`), `where` the rows still to\n"
      "do (the filter that makes a rerun resume), `key` a unique column (default `id`, the primary key),\n"
      "`batch` the rows per batch (default 1000), `sleep` a pause between batches (`\"50ms\"`). It walks the\n"
      "table in key order, each batch one statement and one short transaction under `lock_timeout`; a\n"
      "batch that times out on a row lock, or loses a deadlock, is tried again after a pause (up to 10\n"
      "times). A run that is killed resumes where `where` still matches. On a terminal it shows rows done\n"
      "of the estimate (`pg_class.reltuples`), the rate and the ETA; the count goes to the audit log as\n"
      "`backfill TABLE: N rows`. Offline, the same batch statement runs in a `DO` block that commits after\n"
      "each batch (run the script outside a transaction block, as `psql -f` does). Returns the rows updated\n"
      "(0 offline).",
    .example =
      "op.backfill(\"users\", { set = \"full_name = first_name || ' ' || last_name\",\n"
      "                       where = \"full_name IS NULL\", batch = 5000, sleep = \"50ms\" })" },

  { OP("safe"), .section = LINT, .call = luamig_op_safe,
    P({ "rule", LUAMIG_STRING, NULL }, { "why", LUAMIG_STRING, NULL }), .lint = "safe",
    .doc =
      "Tells `luamig lint` that the next operation is fine despite `rule`, for the reason given (see\n"
      "[the safety lint](safety-lint.md)). Running, it only checks that both are strings and the reason\n"
      "is not blank.",
    .example =
      "op.safe(\"set-not-null\", \"users has 40 rows; it never grows\")\n"
      "op.alter_column(\"users\", \"admin\", { nullable = false })" },
};

const int luamig_nopspecs = (int)(sizeof luamig_opspecs / sizeof luamig_opspecs[0]);

/* ---- core.op_specs() ---- */

static const char *const kind_names[] = {
  NULL, "ident", "name?", "name", "boolean", "schema", "idents", "elements", "text", "string",
  "strings", "word", "default", "comment", "integer", "column", "columns", "rows", "params"
};

static void set_string(lua_State *L, const char *key, const char *value) {
  if (value == NULL) return;
  lua_pushstring(L, value);
  lua_setfield(L, -2, key);
}

static void push_kinded(lua_State *L, const char *name, int kind, const char *label) {
  lua_createtable(L, 0, 4);
  set_string(L, "name", name);
  set_string(L, "kind", kind_names[kind & 0xff]);
  set_string(L, "label", label ? label : name);
  if (kind & LUAMIG_OPTIONAL) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "optional");
  }
}

static void push_flags(lua_State *L, int flags) {
  static const char *const names[] = { "concurrent", "builds_index", "options_needed", "live" };
  lua_createtable(L, 0, 4);
  for (int i = 0; i < 4; i++) {
    if (!(flags & (1 << i))) continue;
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, names[i]);
  }
}

/* op_specs() -> { { name, params = { { name, kind, label, optional } }, options =
 * { { name, kind } } (nil: takes none), ddl, flags = { name = true }, lint,
 * inverse, section, returns, doc, example }, ... }, in the registry's order. */
int luamig_op_specs(lua_State *L) {
  lua_createtable(L, luamig_nopspecs, 0);
  for (int i = 0; i < luamig_nopspecs; i++) {
    const luamig_opspec *s = &luamig_opspecs[i];
    luaL_checkstack(L, 6, "op_specs");
    lua_createtable(L, 0, 12);
    set_string(L, "name", s->name);
    lua_newtable(L);
    for (int k = 0; s->params[k].name; k++) {
      push_kinded(L, s->params[k].name, s->params[k].kind, s->params[k].label);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "params");
    if (s->options) {
      lua_newtable(L);
      for (int k = 0; s->options[k].name; k++) {
        push_kinded(L, s->options[k].name, s->options[k].kind, NULL);
        lua_rawseti(L, -2, k + 1);
      }
      lua_setfield(L, -2, "options");
    }
    lua_pushboolean(L, s->build != NULL);
    lua_setfield(L, -2, "ddl");
    push_flags(L, s->flags);
    lua_setfield(L, -2, "flags");
    set_string(L, "lint", s->lint);
    set_string(L, "inverse", s->inverse);
    set_string(L, "section", s->section);
    set_string(L, "returns", s->returns);
    set_string(L, "doc", s->doc);
    set_string(L, "example", s->example);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

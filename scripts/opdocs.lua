-- scripts/opdocs.lua: renders docs/operations.md, the op API reference. Each
-- example runs against an offline op context, so the SQL shown is exactly what
-- `luamig upgrade --sql` prints and what a live run sends (spec/ops_full_spec.lua
-- fails when the file is stale). Regenerate after changing an op:
--   LUA_CPATH='build/lib/?.so;;' lua5.4 scripts/opdocs.lua > docs/operations.md
local core = require "luamig.core"

local INTRO = [[
# Operations

A revision's `upgrade()` and `downgrade()` change the schema through `op`, the operations
below. Names and arguments follow Alembic's `op.*`; options are a Lua table as the last argument.
Every example here was run through luamig's offline renderer: the SQL after it is exactly what
`luamig upgrade --sql` prints and what a live run sends.

The rules every operation follows:

- **Identifiers are always quoted** (`"users"`, `"we""ird"`), by one function: a name reaches the
  catalog exactly as written (case, spaces, reserved words, unicode). A name longer than 63 bytes
  (PostgreSQL's limit, which the server would silently truncate) is an error before anything is sent.
- **`schema =`** qualifies the object (`"app"."users"`) on every operation that names a table,
  index, type or constraint; `create_schema`/`drop_schema` name the schema itself, and
  `create_extension`'s `schema =` is where the extension's objects go.
- **SQL text passes through verbatim**: column types, defaults (`default = "now()"`), check
  conditions, index expressions and `where =` clauses are SQL, as you would write them in
  `CREATE TABLE`. A number or boolean default is written as SQL too (`default = 0`).
- **Values are parameters**: `op.execute`, `op.query` and `op.bulk_insert` send values as
  `$1, $2, ...`, never pasted into SQL; the offline script shows them inlined as literals.
- **Several statements**: an operation that needs more than one (a table and its comments)
  sends them one by one, and `--sql` lists each.
- **Errors** name the revision's file and line, the operation, and for server errors the SQLSTATE,
  message and statement: `versions/x.lua:12: op.add_column: 42701: column "email" of relation
  "users" already exists; SQL: ALTER TABLE "users" ADD COLUMN "email" text`.
- **Outside a transaction**: every revision runs in its own transaction unless it sets
  `transactional = false` at the top of the file. Then each statement commits on its own, the
  version table is updated right after the revision's last statement, and the progress line ends in
  `(non-transactional)`. `CREATE INDEX CONCURRENTLY` (`concurrently = true`) needs this, and
  refuses to run in a transactional revision:
  `op.create_index: concurrently = true needs a revision with transactional = false`.

```lua
-- Index orders by user
revision = "5d1f0c2a9e3b"
down_revision = "3f2a9c1b7e4d"
message = "Index orders by user"
transactional = false          -- each statement commits on its own

function upgrade()
  op.create_index("ix_orders_user", "orders", { "user_id" }, { concurrently = true })
end

function downgrade()
  op.drop_index("ix_orders_user", { concurrently = true })
end
```
]]

-- Sections and their operations. example: Lua run with `op` bound to an offline
-- context; live: what to show instead of SQL for an operation with no offline form.
local SECTIONS = {
  { title = "Tables", ops = {
    { sig = "op.create_table(name, columns [, { schema =, comment =, if_not_exists = }])",
      doc = [[
Each element of `columns` is a column, a table constraint as SQL text, or a constraint table.

A column is `{ "name", "type", ... }` with the fields `nullable` (default `true`), `default`
(SQL), `primary_key`, `unique`, `references = "table(column)"` (or `"schema.table(column)"`),
`on_delete`, `on_update` (`"cascade"`, `"restrict"`, `"set null"`, `"set default"`,
`"no action"`) and `comment`. Several `primary_key` columns make one composite key.

A constraint table has `name =` (optional) and one of `primary_key = { cols }`,
`unique = { cols }` (with `deferrable =`, `initially =`), `check = "SQL condition"`, or
`foreign_key = { cols }` with `referent =`, `remote_cols =` and the options of
`op.create_foreign_key`.]],
      example = [[
op.create_table("orders", {
  { "id", "bigserial", primary_key = true },
  { "user_id", "bigint", nullable = false, references = "users(id)", on_delete = "cascade" },
  { "status", "text", nullable = false, default = "'new'", comment = "new, paid or shipped" },
  { "total", "numeric(10,2)", nullable = false, default = 0 },
  "CHECK (total >= 0)",
  { unique = { "user_id", "status" }, name = "uq_orders_user_status" },
}, { comment = "One row per order" })]] },
    { sig = "op.drop_table(name [, { schema =, if_exists =, cascade = }])",
      example = [[op.drop_table("orders", { if_exists = true })]] },
    { sig = "op.rename_table(old_name, new_name [, { schema = }])",
      example = [[op.rename_table("orders", "purchases", { schema = "shop" })]] },
    { sig = "op.create_table_comment(table, comment [, { schema = }])",
      example = [[op.create_table_comment("orders", "One row per order; see the billing docs")]] },
    { sig = "op.drop_table_comment(table [, { schema = }])",
      example = [[op.drop_table_comment("orders")]] },
  } },
  { title = "Columns", ops = {
    { sig = "op.add_column(table, column [, { schema =, if_not_exists = }])",
      doc = "`column` is a column table as in `op.create_table`.",
      example = [[op.add_column("users", { "last_login", "timestamptz", comment = "UTC" })]] },
    { sig = "op.drop_column(table, column [, { schema =, if_exists =, cascade = }])",
      example = [[op.drop_column("users", "last_login")]] },
    { sig = "op.alter_column(table, column, { type =, using =, nullable =, server_default =, "
            .. "new_name =, comment =, schema = })",
      doc = [[
Changes what is given, in one `ALTER TABLE` (one table rewrite at most), then the comment, then
the name. `server_default` is SQL; `server_default = false` drops the default, and a new type
with a new default drops the old default first (the server would try to cast it).
`comment = false` removes the comment.]],
      example = [[
op.alter_column("users", "age", {
  type = "integer", using = "age::integer", nullable = false, server_default = "0",
})
op.alter_column("users", "nick", { server_default = false, nullable = true, new_name = "nickname" })]] },
  } },
  { title = "Constraints", ops = {
    { sig = "op.create_primary_key(name, table, columns [, { schema = }])",
      doc = [[
The four `create_*` constraint ops take `nil` for the name, as Alembic takes `None`: the
statement has no `CONSTRAINT` clause and PostgreSQL picks the name: `<table>_pkey`,
`<table>_<columns>_key`, `<table>_<columns>_fkey`, `<table>_<column>_check` (`<table>_check`
when the condition names several columns), with a digit added when that name is taken.
`op.drop_constraint(nil, ...)` and `op.validate_constraint(nil, ...)` are errors, as in Alembic
("Constraint must have a name"): write the name PostgreSQL chose (`\d table` shows it). The
lint and autogenerate know these names ([safety-lint.md](safety-lint.md),
[autogenerate.md](autogenerate.md)).]],
      example = [[
op.create_primary_key("pk_memberships", "memberships", { "user_id", "team_id" })
op.create_primary_key(nil, "teams", { "id" })   -- teams_pkey]] },
    { sig = "op.create_unique_constraint(name, table, columns [, { schema =, deferrable =, initially = }])",
      example = [[
op.create_unique_constraint("uq_users_email", "users", { "email" })
op.create_unique_constraint(nil, "users", { "nick" })   -- users_nick_key]] },
    { sig = "op.create_foreign_key(name, source, referent, local_cols, remote_cols [, { schema =, "
            .. "referent_schema =, ondelete =, onupdate =, deferrable =, initially =, match =, not_valid = }])",
      doc = [[
`schema` is the source table's; the referent is unqualified (found on the search path) unless
`referent_schema` is given. `initially` is `"deferred"` or `"immediate"`, `match` is `"full"` or
`"simple"`. `not_valid = true` adds the constraint without checking the existing rows (a brief
lock); `op.validate_constraint` checks them later.]],
      example = [[
op.create_foreign_key("fk_orders_user", "orders", "users", { "user_id" }, { "id" },
                      { ondelete = "cascade", deferrable = true, initially = "deferred" })]] },
    { sig = "op.create_check_constraint(name, table, condition [, { schema =, not_valid = }])",
      example = [[op.create_check_constraint("ck_orders_total", "orders", "total >= 0")]] },
    { sig = "op.validate_constraint(name, table [, { schema = }])",
      doc = [[
Checks the existing rows against a constraint added with `not_valid = true`, holding only a
SHARE UPDATE EXCLUSIVE lock (writes go on); best in a later revision than the one that added it.]],
      example = [[
op.create_check_constraint("ck_users_email", "users", "email IS NOT NULL", { not_valid = true })
op.validate_constraint("ck_users_email", "users")]] },
    { sig = "op.drop_constraint(name, table [, { schema =, if_exists =, cascade =, type_ = }])",
      doc = "`type_` (`\"foreignkey\"`, `\"primary\"`, `\"unique\"`, `\"check\"`) is accepted for "
            .. "Alembic's sake; PostgreSQL drops any kind of constraint by name.",
      example = [[op.drop_constraint("fk_orders_user", "orders")]] },
  } },
  { title = "Indexes", ops = {
    { sig = "op.create_index(name, table, columns [, { unique =, where =, using =, include =, "
            .. "concurrently =, if_not_exists =, schema = }])",
      doc = [[
An element of `columns` containing `(` is an expression, passed through: `"lower(email)"`,
`"(created_at) DESC"`. `using` is the index method (`"gin"`, `"gist"`, `"brin"`, ...),
`include` a list of covering columns. `concurrently = true` needs a revision with
`transactional = false`.]],
      example = [[
op.create_index("ix_users_email", "users", { "lower(email)" }, { unique = true, where = "deleted_at IS NULL" })
op.create_index("ix_posts_tags", "posts", { "tags" }, { using = "gin" })
op.create_index("ix_orders_user", "orders", { "user_id" }, { include = { "total" }, concurrently = true })]] },
    { sig = "op.drop_index(name [, { schema =, concurrently =, if_exists = }])",
      example = [[op.drop_index("ix_orders_user", { concurrently = true, if_exists = true })]] },
  } },
  { title = "Types, schemas and extensions", ops = {
    { sig = "op.create_enum(name, values [, { schema =, if_not_exists = }])",
      doc = [[
PostgreSQL has no `CREATE TYPE IF NOT EXISTS`; with `if_not_exists = true` (what SQLAlchemy's
`ENUM.create` does by default, and histories written with it rely on) the same statement runs
in a `DO` block, live and in `--sql`, unless `pg_type` already has a type of that name in the
schema it would go to (`schema`, else `current_schema()`; a type of the same name in another
schema of the `search_path` does not count). An existing type is left as it is, labels
included. The dollar tag is `$luamig$`, or `$luamig1$`, ... when a name or label contains it.]],
      example = [[
op.create_enum("order_status", { "new", "paid", "shipped" })
op.create_enum("order_status", { "new", "paid", "shipped" }, { if_not_exists = true })]] },
    { sig = "op.drop_enum(name [, { schema =, if_exists =, cascade = }])",
      example = [[op.drop_enum("order_status")]] },
    { sig = "op.add_enum_value(name, value [, { schema =, before =, after =, if_not_exists = }])",
      doc = [[
Before PostgreSQL 12, `ALTER TYPE ... ADD VALUE` cannot run inside a transaction: put it in a
revision with `transactional = false` there. On any version, the new value cannot be used in the
same transaction that adds it.]],
      example = [[op.add_enum_value("order_status", "refunded", { after = "paid", if_not_exists = true })]] },
    { sig = "op.create_schema(name [, { if_not_exists =, authorization = }])",
      example = [[op.create_schema("billing", { if_not_exists = true })]] },
    { sig = "op.drop_schema(name [, { if_exists =, cascade = }])",
      example = [[op.drop_schema("billing", { cascade = true })]] },
    { sig = "op.create_extension(name [, { schema =, if_not_exists =, version =, cascade = }])",
      example = [[op.create_extension("pg_trgm", { if_not_exists = true })]] },
    { sig = "op.drop_extension(name [, { if_exists =, cascade = }])",
      example = [[op.drop_extension("pg_trgm")]] },
  } },
  { title = "Data", ops = {
    { sig = "op.execute(sql [, params]) -> affected rows",
      doc = [[
Any SQL; `params` is an array sent as `$1, $2, ...` (use `params.n` when it has `nil`s). Without
parameters the SQL may hold several statements. Returns the rows affected (0 offline).]],
      example = [[op.execute("UPDATE users SET status = $1 WHERE status IS NULL", { "active" })]] },
    { sig = "op.query(sql [, params]) -> rows",
      doc = [[
For data migrations: returns the rows as an array of tables keyed by column name, values
converted (`int2/4/8` to integers, `float`/`numeric` to numbers, `bool` to booleans, others to
strings, `NULL` to an absent field).]],
      example = [[
for _, row in ipairs(op.query("SELECT id, email FROM users WHERE email <> lower(email)")) do
  op.execute("UPDATE users SET email = $1 WHERE id = $2", { row.email:lower(), row.id })
end]],
      live = [[
op.query needs a live database; offline --sql cannot run data queries]] },
    { sig = "op.bulk_insert(table, rows [, { schema = }]) -> affected rows",
      doc = [[
`rows` is an array of tables keyed by column name. The columns are the union of the rows' keys
(sorted); a row without one of them gets the column's `DEFAULT`. Values are sent as parameters,
500 rows per `INSERT` (fewer for wide rows: at most 65535 parameters per statement).]],
      example = [[
op.bulk_insert("order_statuses", {
  { code = "new", label = "New", position = 1 },
  { code = "paid", label = "Paid", position = 2 },
  { code = "shipped", position = 3 },
})]] },
    { sig = "op.backfill(table, { set =, where =, key =, batch =, sleep =, schema = }) -> rows updated",
      doc = [[
An `UPDATE` of a big table that never holds the application up, in a `transactional = false`
revision (refused in any other). `set` is the SET list (`"col = expr"`), `where` the rows still to
do (the filter that makes a rerun resume), `key` a unique column (default `id`, the primary key),
`batch` the rows per batch (default 1000), `sleep` a pause between batches (`"50ms"`). It walks the
table in key order, each batch one statement and one short transaction under `lock_timeout`; a
batch that times out on a row lock, or loses a deadlock, is tried again after a pause (up to 10
times). A run that is killed resumes where `where` still matches. On a terminal it shows rows done
of the estimate (`pg_class.reltuples`), the rate and the ETA; the count goes to the audit log as
`backfill TABLE: N rows`. Offline, the same batch statement runs in a `DO` block that commits after
each batch (run the script outside a transaction block, as `psql -f` does). Returns the rows updated
(0 offline).]],
      example = [[
op.backfill("users", { set = "full_name = first_name || ' ' || last_name",
                       where = "full_name IS NULL", batch = 5000, sleep = "50ms" })]] },
  } },
  { title = "The safety lint", ops = {
    { sig = "op.safe(rule, why)",
      doc = [[
Tells `luamig lint` that the next operation is fine despite `rule`, for the reason given (see
[the safety lint](safety-lint.md)). Running, it only checks that both are strings and the reason
is not blank.]],
      example = [[
op.safe("set-not-null", "users has 40 rows; it never grows")
op.alter_column("users", "admin", { nullable = false })]] },
  } },
}

-- The SQL of one example: its statements, as the offline script has them.
local function render_sql(example)
  local ctx = core.new_context(nil, { transactional = false })
  local chunk = assert(load(example, "=example", "t", { op = core.ops(ctx), ipairs = ipairs }))
  chunk()
  return table.concat(core.script(ctx), "\n")
end

local function anchor(sig)
  return sig:match("^op%.([%w_]+)")
end

local function render()
  local out = { INTRO, "\n## Contents\n\n" }
  for _, section in ipairs(SECTIONS) do
    local names = {}
    for _, o in ipairs(section.ops) do
      names[#names + 1] = ("[`%s`](#op%s)"):format(anchor(o.sig), anchor(o.sig))
    end
    out[#out + 1] = ("- %s: %s\n"):format(section.title, table.concat(names, ", "))
  end
  for _, section in ipairs(SECTIONS) do
    out[#out + 1] = ("\n## %s\n"):format(section.title)
    for _, o in ipairs(section.ops) do
      out[#out + 1] = ("\n### `op.%s`\n\n`%s`\n"):format(anchor(o.sig), o.sig)
      if o.doc then out[#out + 1] = "\n" .. o.doc .. "\n" end
      out[#out + 1] = "\n```lua\n" .. o.example .. "\n```\n"
      if o.live then
        out[#out + 1] = "\nLive only; in an offline script (`--sql`) it raises: `" .. o.live:gsub("\n$", "") .. "`.\n"
      else
        out[#out + 1] = "\n```sql\n" .. render_sql(o.example) .. "\n```\n"
      end
    end
  end
  return table.concat(out)
end

if arg and arg[0] and arg[0]:match("opdocs%.lua$") then io.write(render()) end
return render

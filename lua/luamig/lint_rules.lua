-- luamig.lint_rules: the safety lint's rules. Each rule's lock, effect and
-- recipe (rules.texts); a small model of the schema that the actions are
-- replayed over (which tables are new in this run, column types, valid CHECK
-- constraints); and the checks run on each action of a linted revision. The
-- comparison of downgrade() with upgrade() is luamig.lint_inverse.
local schema_names = require "luamig.schema"
local S = require "luamig.sqltext"
local types = require "luamig.types"

local rules = {}

local AE = "ACCESS EXCLUSIVE (blocks every read and write of the table)"

-- Every rule: the lock it takes, what PostgreSQL does, and the safe recipe.
rules.texts = {
  ["add-column-not-null"] = {
    lock = AE,
    effect = "every existing row would hold NULL: PostgreSQL scans the table under the lock and "
      .. "the statement fails on a non-empty table (23502); the running release, which does not "
      .. "set the column, then fails its INSERTs",
    recipe = "give the column a constant default (default = \"0\": PostgreSQL 11+ keeps it in the "
      .. "catalog, no rewrite and no scan), or add it nullable, fill it with op.backfill from a "
      .. "transactional = false revision and make it NOT NULL with the set-not-null recipe",
  },
  ["add-column-volatile-default"] = {
    lock = AE,
    effect = "a volatile default (random(), gen_random_uuid(), clock_timestamp(), nextval() of "
      .. "serial and identity columns) is computed per row: PostgreSQL rewrites the whole "
      .. "table and every index while it holds the lock",
    recipe = "add the column without a default, set the default for new rows with "
      .. "op.alter_column(t, c, { server_default = ... }) or ALTER COLUMN ... SET DEFAULT (catalog "
      .. "only), fill existing rows with op.backfill from a transactional = false revision, then "
      .. "add NOT NULL with the set-not-null recipe if needed",
  },
  ["alter-type-rewrite"] = {
    lock = AE,
    effect = "the type change rewrites the table and rebuilds its indexes under the lock (only "
      .. "widening varchar(n) or numeric(p,s), and varchar to text, are catalog-only)",
    recipe = "expand and contract: add a column of the new type, keep it in step with a trigger "
      .. "(or have the app write both), fill it with op.backfill from a transactional = false "
      .. "revision, deploy the release that reads it, then drop the old column and rename the "
      .. "new one in a later revision",
  },
  ["set-not-null"] = {
    lock = AE,
    effect = "SET NOT NULL reads the whole table under the lock to prove there is no NULL",
    recipe = "op.create_check_constraint(name, t, \"col IS NOT NULL\", { not_valid = true }); "
      .. "op.validate_constraint(name, t) in a later revision (SHARE UPDATE EXCLUSIVE: reads and "
      .. "writes go on); then SET NOT NULL, which PostgreSQL 12+ proves from the valid constraint "
      .. "without a scan; then drop the check",
  },
  ["index-not-concurrent"] = {
    lock = "SHARE (blocks INSERT, UPDATE and DELETE for the whole build)",
    effect = "the index is built from a full read of the table while every write waits",
    recipe = "op.create_index(name, t, cols, { concurrently = true }) in a revision with "
      .. "transactional = false (a unique constraint: CREATE UNIQUE INDEX CONCURRENTLY, then "
      .. "ALTER TABLE ... ADD CONSTRAINT c UNIQUE USING INDEX i; REINDEX ... CONCURRENTLY)",
  },
  ["concurrently-in-transaction"] = {
    lock = "none: the statement is refused",
    effect = "CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY and VACUUM cannot run inside a "
      .. "transaction block (25001): the revision fails",
    recipe = "set transactional = false in the revision and keep only that statement in it (a "
      .. "failed concurrent build leaves an INVALID index: drop it and rerun)",
  },
  ["constraint-not-valid"] = {
    lock = "SHARE ROW EXCLUSIVE on both tables for a foreign key (blocks writes), ACCESS "
      .. "EXCLUSIVE for a CHECK",
    effect = "adding the constraint checks every existing row while it holds the lock",
    recipe = "add it with { not_valid = true } (NOT VALID in SQL): only new rows are checked and "
      .. "the lock is brief; then op.validate_constraint(name, t) in a later transaction (a later "
      .. "revision, or a transactional = false one), which takes only SHARE UPDATE EXCLUSIVE",
  },
  ["rename-or-drop"] = {
    lock = AE .. ", briefly",
    effect = "the previous release keeps running during the deploy and still uses the old name: "
      .. "its queries fail (42703 undefined column, 42P01 undefined table) until every instance "
      .. "is replaced",
    recipe = "expand, deploy, contract: add the new column or table, write both and backfill, "
      .. "deploy the release that uses only the new one, then rename or drop the old one in a "
      .. "later revision, marked op.safe(\"rename-or-drop\", \"release N no longer uses it\")",
  },
  ["execute-lock"] = {
    lock = AE,
    effect = "the statement takes a table lock that blocks the application until the "
      .. "transaction ends (VACUUM FULL and CLUSTER rewrite the whole table under it)",
    recipe = "VACUUM FULL or CLUSTER: plain VACUUM (SHARE UPDATE EXCLUSIVE) from a "
      .. "transactional = false revision, or pg_repack online; LOCK TABLE: take no explicit "
      .. "table lock, rely on row locks (SELECT ... FOR UPDATE) in short batches",
  },
  ["drop-database"] = {
    lock = "none in a transaction: PostgreSQL refuses it there (25001); outside one, no other "
      .. "session may be connected to that database",
    effect = "every table and row of that database is gone, and no downgrade brings them back; "
      .. "in a transactional revision the statement fails, and the revision with it",
    recipe = "do not drop databases from a migration: drop it by hand, after a backup, outside "
      .. "the deploy",
  },
  ["truncate"] = {
    lock = AE .. " on the table and, with CASCADE, on every table whose foreign keys reference it",
    effect = "every row is deleted and no downgrade brings them back; CASCADE also empties the "
      .. "tables that reference it, which the statement does not name",
    recipe = "delete the rows you mean in batches (DELETE FROM t WHERE id IN (SELECT id FROM t "
      .. "WHERE ... LIMIT 1000), repeated) from a transactional = false revision; name each table "
      .. "to empty instead of CASCADE; TRUNCATE only a table created in the same run",
  },
  ["transaction-control"] = {
    lock = "none: the harm is to the revision's atomicity",
    effect = "the revision already runs in luamig's transaction, opened with its version-table "
      .. "move: COMMIT commits that move and the statements so far, so a later failure leaves "
      .. "the revision half applied while the version table says it is applied; ROLLBACK undoes "
      .. "the move and the statements after it commit one by one; BEGIN only warns (25001)",
    recipe = "leave transactions to luamig: one revision is one transaction. For statements "
      .. "that must commit on their own (batches, CONCURRENTLY), set transactional = false: "
      .. "each op.execute then commits by itself, and BEGIN ... COMMIT is yours to use",
  },
  ["unbatched-backfill"] = {
    lock = "ROW EXCLUSIVE on the table, and a lock on every row it changes, held until the "
      .. "transaction commits",
    effect = "one statement changes every row: writers of any row (UPDATE, DELETE, SELECT ... "
      .. "FOR UPDATE) wait until it commits, and the whole table's WAL and dead rows come at "
      .. "once; in a transactional revision the row locks last until the revision commits",
    recipe = "op.backfill(t, { set = \"c = ...\", where = \"<not done yet>\" }) from a "
      .. "transactional = false revision: key-ordered batches, each its own short transaction, "
      .. "resumed by a rerun",
  },
  ["table-rewrite"] = {
    lock = AE,
    effect = "PostgreSQL writes a new copy of the table and its indexes (SET LOGGED/UNLOGGED, "
      .. "SET ACCESS METHOD, a stored generated column: computed for every row) or copies its "
      .. "files (SET TABLESPACE) while every read and write of the table waits",
    recipe = "a stored generated column: add a plain column kept by a BEFORE INSERT OR UPDATE "
      .. "trigger and backfill it in batches from a transactional = false revision; SET "
      .. "TABLESPACE or SET ACCESS METHOD: pg_repack online; SET LOGGED/UNLOGGED: a new table "
      .. "filled in batches, swapped in by renames; else a maintenance window",
  },
  ["downgrade-missing"] = {
    lock = "none",
    effect = "luamig downgrade moves the version table back but undoes nothing, so the schema "
      .. "no longer matches the revision the database claims to be at",
    recipe = "write downgrade() as the inverse of upgrade(), or mark an irreversible revision "
      .. "with op.safe(\"downgrade-missing\", \"why\") in downgrade()",
  },
  ["downgrade-not-inverse"] = {
    lock = "none",
    effect = "after a downgrade the schema is not what the previous revision left, or the "
      .. "downgrade destroys data the previous revision still had",
    recipe = "undo each operation of upgrade() in reverse order: create_table/drop_table, "
      .. "add_column/drop_column, create_index/drop_index, rename back, create_*_constraint/"
      .. "drop_constraint, alter_column back to the old type",
  },
  ["lint"] = {
    lock = "unknown",
    effect = "the lint could not analyse all of this revision",
    recipe = "make upgrade() and downgrade() run without the database (op.query returns no rows "
      .. "during the lint), and name only the rules of docs/safety-lint.md in op.safe",
  },
}

-- ---- the schema model ----

function rules.new_schema() return { tables = {}, indexes = {} } end

local function entry(s, t)
  local e = s.tables[t]
  if not e then
    e = { new = false, columns = {}, constraints = {} }
    s.tables[t] = e
  end
  return e
end

-- The columns the model knows of table t: name -> { type = }.
function rules.columns(s, t) return entry(s, t).columns end

local function is_new(s, t) return t ~= nil and s.tables[t] ~= nil and s.tables[t].new end

local apply = {}
function apply.create_table(s, a, linting)
  local e = { new = linting, columns = {}, constraints = {} }
  for _, c in ipairs(a.columns or {}) do
    if c.name then e.columns[c.name] = { type = c.def and c.def.type } end
  end
  s.tables[a.table] = e
end
function apply.drop_table(s, a) s.tables[a.table] = nil end
function apply.rename_table(s, a) s.tables[a.to], s.tables[a.table] = entry(s, a.table), nil end
function apply.add_column(s, a) entry(s, a.table).columns[a.column] = { type = a.type } end
function apply.drop_column(s, a) entry(s, a.table).columns[a.column] = nil end
function apply.rename_column(s, a)
  local cols = entry(s, a.table).columns
  cols[a.to], cols[a.column] = cols[a.column], nil
end
function apply.alter_type(s, a) entry(s, a.table).columns[a.column] = { type = a.type } end
function apply.add_constraint(s, a)
  if a.name then
    entry(s, a.table).constraints[a.name] = { ctype = a.ctype, expr = a.expr, valid = not a.not_valid }
  end
end
function apply.validate_constraint(s, a)
  local c = entry(s, a.table).constraints[a.name]
  if c then c.valid = true end
end
function apply.drop_constraint(s, a) entry(s, a.table).constraints[a.name or ""] = nil end
function apply.create_index(s, a) if a.name then s.indexes[a.name] = a.table end end
function apply.drop_index(s, a) s.indexes[a.name or ""] = nil end

-- ---- types ----

-- "character varying(20)" -> "character varying", { 20 }, array? (luamig.types)
rules.parse_type = types.parse
local parse_type = types.parse

-- Whether changing a column from old to new leaves the table as it is (PostgreSQL 15).
local function catalog_only(old, new)
  local ob, oa, oarr = parse_type(old)
  local nb, na, narr = parse_type(new)
  if not ob or not nb or oarr ~= narr then return false end
  if ob == nb and #oa == #na then
    local same = true
    for i = 1, #oa do same = same and oa[i] == na[i] end
    if same then return true end
  end
  if ob == "character varying" and nb == "text" then return true end
  if ob == "text" and nb == "character varying" and #na == 0 then return true end
  if (ob == "character varying" and nb == "character varying")
      or (ob == "bit varying" and nb == "bit varying") then
    return #na == 0 or (#oa == 1 and na[1] >= oa[1])
  end
  if ob == "numeric" and nb == "numeric" then
    return #na == 0 or (#oa >= 1 and na[1] >= oa[1] and (na[2] or 0) == (oa[2] or 0))
  end
  return ob == "cidr" and nb == "inet"
end

local VOLATILE = {}
for f in ([[random gen_random_uuid uuid_generate_v1 uuid_generate_v1mc uuid_generate_v4
  clock_timestamp timeofday nextval txid_current pg_current_xact_id gen_random_bytes
  random_normal]]):gmatch("%S+") do VOLATILE[f] = true end

-- The volatile function a default calls (nil when it is a constant or stable).
local function volatile_call(default)
  if type(default) ~= "string" then return nil end
  local toks = S.tokens(default)
  for i, t in ipairs(toks) do
    local call = t.k == "word" and VOLATILE[t.v] and toks[i + 1] and toks[i + 1].k == "("
    if call then return t.v .. "()" end
  end
end

-- ---- the rules ----

local q = S.said
local function col(a) return S.said(a.table, a.column) end

-- Does a valid CHECK on the table prove column IS NOT NULL?
local function proven_not_null(e, column)
  for _, c in pairs(e.constraints) do
    if c.ctype == "check" and c.valid and type(c.expr) == "string" then
      local x = c.expr:lower():gsub("[()%s\"]+", " "):gsub("^ ", ""):gsub(" $", "")
      if x == column:lower() .. " is not null" then return true end
    end
  end
  return false
end

-- The name PostgreSQL gives a constraint added without one (a CHECK is named for its
-- column when it mentions only one the lint knows of).
local function server_name(s, a)
  local relname = a.table:match("%.([^.]*)$") or a.table
  if a.ctype == "primary" then return schema_names.default_name(relname, "pkey") end
  if a.ctype == "check" then
    local cols = schema_names.columns_in(a.expr or "", entry(s, a.table).columns)
    return schema_names.default_name(relname, "check", #cols == 1 and cols[1] or nil)
  end
  local label = a.ctype == "foreign" and "fkey" or a.ctype == "unique" and "key" or nil
  if label and type(a.columns) == "table" and #a.columns > 0 then
    return schema_names.default_name(relname, label, a.columns)
  end
end

local check = {}

function check.add_column(s, a, find)
  if is_new(s, a.table) then return end
  local volatile = volatile_call(a.default)
  if a.generated then
    find("table-rewrite", ("adds stored generated column %s to existing table %s: computed for "
      .. "every row"):format(q(a.column), q(a.table)))
  elseif volatile or types.serial_base(a.type) or a.identity then
    find("add-column-volatile-default", ("adds column %s to existing table %s with %s"):format(
      q(a.column), q(a.table), volatile and "the volatile default " .. volatile
        or a.identity and "an identity (nextval() for every row)"
        or "type " .. a.type .. " (a nextval() default)"))
  elseif a.not_null and not a.default then
    find("add-column-not-null", ("adds NOT NULL column %s without a default to existing table %s")
      :format(q(a.column), q(a.table)))
  end
  if a.primary_key or a.unique then
    find("index-not-concurrent", ("adds column %s with a %s index to existing table %s"):format(
      q(a.column), a.primary_key and "primary key" or "unique", q(a.table)), { lock = AE })
  end
  if a.references and a.default then   -- without a default every row holds NULL: no scan
    find("constraint-not-valid", ("adds column %s with a default and a foreign key to existing "
      .. "table %s: every row is checked"):format(q(a.column), q(a.table)),
      { lock = AE .. ", and SHARE ROW EXCLUSIVE on the referenced table" })
  end
  if a.check then
    find("constraint-not-valid", ("adds column %s with a CHECK to existing table %s")
      :format(q(a.column), q(a.table)), { lock = AE })
  end
end

function check.alter_type(s, a, find)
  if is_new(s, a.table) then return end
  local old = a.old_type
  if old and catalog_only(old, a.type) then return end
  find("alter-type-rewrite", old
    and ("changes the type of %s from %s to %s"):format(col(a), old, a.type)
    or ("changes the type of %s to %s; its current type is unknown to the lint (no revision it "
      .. "read created the column): if the change is catalog-only, say so with op.safe")
      :format(col(a), tostring(a.type)))
end

function check.set_not_null(s, a, find)
  if is_new(s, a.table) then return end
  if proven_not_null(entry(s, a.table), a.column) then return end
  find("set-not-null", ("sets NOT NULL on %s of an existing table with no valid CHECK (%s IS NOT "
    .. "NULL)"):format(col(a), a.column))
end

local function concurrent_in_tx(ctx, what, find)
  if ctx.tx then
    find("concurrently-in-transaction", what .. " in a transactional revision")
  end
end

function check.create_index(s, a, find, ctx)
  if a.concurrently then
    concurrent_in_tx(ctx, ("CREATE INDEX CONCURRENTLY %s"):format(q(a.name or "")), find)
  elseif not is_new(s, a.table) then
    find("index-not-concurrent", ("creates index %s on existing table %s without CONCURRENTLY")
      :format(q(a.name or "(unnamed)"), q(a.table)))
  end
end

function check.drop_index(_, a, find, ctx)
  if a.concurrently then concurrent_in_tx(ctx, ("DROP INDEX CONCURRENTLY %s"):format(q(a.name)), find) end
end

function check.reindex(s, a, find, ctx)
  if a.concurrently then
    concurrent_in_tx(ctx, "REINDEX CONCURRENTLY", find)
  elseif not is_new(s, a.table or s.indexes[a.name or ""]) then
    find("index-not-concurrent", ("REINDEX %s %s without CONCURRENTLY"):format(
      (a.target or ""):upper(), q(a.name or "")),
      { lock = "ACCESS EXCLUSIVE on the index and SHARE on the table (blocks writes)" })
  end
end

function check.vacuum(_, a, find, ctx)
  concurrent_in_tx(ctx, "VACUUM" .. (a.tables[1] and " " .. q(a.tables[1]) or ""), find)
end

function check.add_constraint(s, a, find)
  if is_new(s, a.table) then return end
  local name = a.name and " " .. q(a.name) .. (a.unnamed and " (named by PostgreSQL)" or "") or ""
  if (a.ctype == "foreign" or a.ctype == "check") and not a.not_valid then
    find("constraint-not-valid", ("adds %s%s to existing table %s without NOT VALID"):format(
      a.ctype == "foreign" and "foreign key" or "CHECK constraint", name, q(a.table)),
      a.ctype == "check" and { lock = AE } or
        { lock = "SHARE ROW EXCLUSIVE on both tables (blocks writes to both)" })
  elseif (a.ctype == "unique" or a.ctype == "primary" or a.ctype == "exclude") and not a.using_index then
    find("index-not-concurrent", ("adds %s constraint%s to existing table %s, building its "
      .. "index under the lock"):format(a.ctype == "primary" and "PRIMARY KEY" or a.ctype:upper(),
      name, q(a.table)), { lock = AE })
  end
end

function check.validate_constraint(_, a, find, ctx)
  local added = ctx.tx and ctx.not_valid_here[a.name or ""]
  if not added then return end
  local lock = added.ctype == "foreign" and "SHARE ROW EXCLUSIVE lock of the ADD on both tables"
    or "ACCESS EXCLUSIVE lock of the ADD"
  find("constraint-not-valid", ("validates %s in the same transaction that added it NOT VALID: "
    .. "the %s is held through the whole check"):format(q(a.name), lock),
    { lock = added.ctype == "foreign" and "SHARE ROW EXCLUSIVE on both tables (blocks writes to both)"
      or AE })
end

function check.rename_table(s, a, find)
  if is_new(s, a.table) then return end
  find("rename-or-drop", ("renames table %s to %s"):format(q(a.table), q(a.to)))
end
function check.drop_table(s, a, find)
  if is_new(s, a.table) then return end
  find("rename-or-drop", ("drops table %s"):format(q(a.table)))
end
function check.rename_column(s, a, find)
  if is_new(s, a.table) then return end
  find("rename-or-drop", ("renames column %s to %s"):format(col(a), q(a.to)))
end
function check.drop_column(s, a, find)
  if is_new(s, a.table) then return end
  find("rename-or-drop", ("drops column %s"):format(col(a)))
end

local BLOCKING_MODES = { share = true, ["share row exclusive"] = true, exclusive = true,
  ["access exclusive"] = true }

local function all_new(s, tables)
  if #tables == 0 then return false end
  for _, t in ipairs(tables) do if not is_new(s, t) then return false end end
  return true
end

function check.lock(s, a, find)
  if not BLOCKING_MODES[a.mode] or all_new(s, a.tables) then return end
  find("execute-lock", ("LOCK TABLE %s IN %s MODE, held until the revision commits"):format(
    table.concat(a.tables, ", "), a.mode:upper()), { lock = a.mode:upper() })
end
function check.vacuum_full(s, a, find, ctx)
  concurrent_in_tx(ctx, "VACUUM FULL", find)
  if all_new(s, a.tables) then return end
  find("execute-lock", ("VACUUM FULL %s rewrites the table"):format(
    #a.tables > 0 and table.concat(a.tables, ", ") or "(every table)"))
end
function check.drop_database(_, a, find)
  find("drop-database", ("DROP DATABASE %s"):format(q(a.name)))
end
function check.truncate(s, a, find)
  if a.cascade then
    find("truncate", ("TRUNCATE %s CASCADE also empties every table that references it")
      :format(table.concat(a.tables, ", ")))
  elseif not all_new(s, a.tables) then
    find("truncate", ("TRUNCATE %s deletes every row of an existing table")
      :format(table.concat(a.tables, ", ")))
  end
end
function check.transaction(_, a, find, ctx)
  if not ctx.tx then return end
  find("transaction-control", ("%s in op.execute of a transactional revision: luamig's "
    .. "transaction is already open"):format(a.statement))
end
local function whole_table(s, a, find)
  if a.where or is_new(s, a.table) then return end
  find("unbatched-backfill", ("%s of every row of existing table %s in one statement (no WHERE)")
    :format(a.kind:upper(), q(a.table)))
end
check.update, check.delete = whole_table, whole_table
function check.table_rewrite(s, a, find)
  if a.table and is_new(s, a.table) then return end
  find("table-rewrite", a.table and ("ALTER TABLE %s %s %s the table"):format(q(a.table), a.what,
    a.copy and "copies" or "rewrites") or ("ALTER TABLE %s copies every table in it"):format(a.what))
end
function check.cluster(s, a, find)
  if all_new(s, a.tables) then return end
  find("execute-lock", ("CLUSTER %s rewrites the table"):format(table.concat(a.tables, ", ")))
end

-- One action of upgrade(), in order: with ctx (a linted revision: { tx = whether it
-- runs in a transaction }), the checks report through find(rule, message, over);
-- then the action updates the model (a table it creates is new only when linted).
function rules.step(schema, a, ctx, find)
  if a.kind == "alter_type" and not a.old_type then   -- what downgrade() must change it back to
    local e = schema.tables[a.table]
    a.old_type = e and e.columns[a.column] and e.columns[a.column].type
  end
  if a.kind == "add_constraint" and a.unnamed then a.name = server_name(schema, a) end
  if ctx then
    ctx.not_valid_here = ctx.not_valid_here or {}
    if a.kind == "other" and a.ddl then ctx.opaque_ddl = true end
    if check[a.kind] then check[a.kind](schema, a, find, ctx) end
    if a.kind == "add_constraint" and a.not_valid and a.name then ctx.not_valid_here[a.name] = a end
  end
  if apply[a.kind] then apply[a.kind](schema, a, ctx ~= nil) end
end

return rules

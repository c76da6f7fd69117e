-- bench/gen.lua: writes one benchmark workload (see bench/run.sh).
--   lua5.4 bench/gen.lua DIR N [BRANCHES]
--
-- DIR/luamig.lua and DIR/versions/: N luamig revisions. The first 10 create the
-- tables t01..t10; every later one adds one column (c00011, ...) to one of them.
-- With BRANCHES > 0 the history has that many diamonds, evenly spaced: a revision
-- with two children, an arm of 3 revisions on each, and a merge revision naming
-- both arm tips (so N revisions, BRANCHES branch points, BRANCHES merges).
--
-- The same history for the peers: DIR/alembic (alembic.ini, env.py, versions/*.py)
-- and, when linear, DIR/dbmate/*.sql. For a linear history, the plain SQL for the
-- psql floors: the DDL and the version-table row of each revision, as luamig sends
-- them (without luamig's own extras, such as its audit-log row):
--   DIR/sql/up_1tx.sql       everything, no BEGIN/COMMIT (run with psql -1)
--   DIR/sql/up_perrev.sql    BEGIN; DDL; version row; COMMIT; per revision
--   DIR/sql/down_1tx.sql     downgrade base, newest first, no BEGIN/COMMIT (psql -1)
--   DIR/sql/down_perrev.sql  the same, a transaction per revision
local dir, n, branches = arg[1], tonumber(arg[2]), tonumber(arg[3] or "0")
if not dir or not n or n < 11 or not branches then
  io.stderr:write("usage: lua5.4 bench/gen.lua DIR N [BRANCHES]   (N > 10)\n")
  os.exit(2)
end
local ARM = 3                         -- revisions on each side of a diamond
if branches > 0 and (n - 10) // branches < 2 * ARM + 2 then
  io.stderr:write("gen.lua: too many branches for N\n")
  os.exit(2)
end

local function sh(cmd)
  local ok = os.execute(cmd)
  if not ok then error("failed: " .. cmd) end
end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- Twelve hex digits that look random but are the same on every run.
local seen = {}
local function make_id(i)
  local x = (i * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
  x = x ~ (x >> 29)
  local id = ("%012x"):format((x >> 16) & 0xFFFFFFFFFFFF)
  assert(not seen[id], "id collision")
  seen[id] = true
  return id
end

-- The revisions, in creation order (parents always first).
local revs = {}
local function add(down)
  local i = #revs + 1
  local r = { i = i, id = make_id(i), down = down }
  if i <= 10 then
    r.table = ("t%02d"):format(i)
    r.message = "Create table " .. r.table
    r.slug = "create_table_" .. r.table
  else
    r.table = ("t%02d"):format((i - 1) % 10 + 1)
    r.column = ("c%05d"):format(i)
    r.message = ("Add %s to %s"):format(r.column, r.table)
    r.slug = ("add_%s_to_%s"):format(r.column, r.table)
  end
  revs[i] = r
  return r
end

local tip = add(nil)
for _ = 2, 10 do tip = add(tip.id) end
local span = branches > 0 and (n - 10) // branches or 0
local made = 0                        -- diamonds so far
while #revs < n do
  local left = n - #revs
  if branches > 0 and made < branches and (#revs - 10) % span == 0 and left >= 2 * ARM + 1 then
    local fork = tip.id
    local a, b = fork, fork
    for _ = 1, ARM do a = add(a).id end
    for _ = 1, ARM do b = add(b).id end
    tip = add({ a, b })
    tip.message = "Merge " .. a .. " and " .. b .. ", " .. tip.message
    made = made + 1
  else
    tip = add(tip.id)
  end
end

sh("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir .. "/versions") .. " "
  .. q(dir .. "/alembic/versions"))

-- luamig ----------------------------------------------------------------------
write(dir .. "/luamig.lua", 'return { versions = "versions" }\n')

local function lua_down(down)
  if down == nil then return "nil" end
  if type(down) == "string" then return ("%q"):format(down) end
  return ('{ "%s" }'):format(table.concat(down, '", "'))
end

local function down_text(down)
  if down == nil then return "" end
  if type(down) == "string" then return down end
  return table.concat(down, ", ")
end

local DATE = "2026-01-01 00:00:00"

-- The calls that create a table or add a column, in luamig's Lua and Alembic's Python;
-- the calls that undo them read the same in both.
local MAKE = {
  lua = { table = 'op.create_table("%s", {\n    { "id", "bigint", primary_key = true },\n  })',
          column = 'op.add_column("%s", { "%s", "integer" })' },
  python = { table = 'op.create_table("%s", sa.Column("id", sa.BigInteger(), primary_key=True))',
             column = 'op.add_column("%s", sa.Column("%s", sa.Integer()))' },
}

-- r's upgrade and downgrade op calls in lang ("lua" or "python").
local function op_calls(r, lang)
  if r.column then
    return MAKE[lang].column:format(r.table, r.column),
      ('op.drop_column("%s", "%s")'):format(r.table, r.column)
  end
  return MAKE[lang].table:format(r.table), ('op.drop_table("%s")'):format(r.table)
end

for _, r in ipairs(revs) do
  local up, down = op_calls(r, "lua")
  write(("%s/versions/%s_%s.lua"):format(dir, r.id, r.slug), table.concat({
    "-- " .. r.message,
    "--",
    "-- Revision ID: " .. r.id,
    "-- Revises: " .. down_text(r.down),
    "-- Create Date: " .. DATE,
    ('revision = "%s"'):format(r.id),
    "down_revision = " .. lua_down(r.down),
    ('message = "%s"'):format(r.message),
    "",
    "function upgrade()",
    "  " .. up,
    "end",
    "",
    "function downgrade()",
    "  " .. down,
    "end",
    "",
  }, "\n"))
end

-- Alembic ---------------------------------------------------------------------
write(dir .. "/alembic.ini", [[
[alembic]
script_location = %(here)s/alembic
]])
write(dir .. "/alembic/env.py", [[
import os

from alembic import context
from sqlalchemy import create_engine, pool

url = os.environ.get("BENCH_ALEMBIC_URL", "postgresql+psycopg2://")

if context.is_offline_mode():
    context.configure(url=url, literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
]])

local function py_down(down)
  if down == nil then return "None" end
  if type(down) == "string" then return ('"%s"'):format(down) end
  return ('("%s")'):format(table.concat(down, '", "'))
end

for _, r in ipairs(revs) do
  local up, down = op_calls(r, "python")
  write(("%s/alembic/versions/%s_%s.py"):format(dir, r.id, r.slug), table.concat({
    '"""' .. r.message,
    "",
    "Revision ID: " .. r.id,
    "Revises: " .. down_text(r.down),
    "Create Date: " .. DATE,
    "",
    '"""',
    "from alembic import op",
    "import sqlalchemy as sa",
    "",
    ('revision = "%s"'):format(r.id),
    "down_revision = " .. py_down(r.down),
    "branch_labels = None",
    "depends_on = None",
    "",
    "",
    "def upgrade():",
    "    " .. up,
    "",
    "",
    "def downgrade():",
    "    " .. down,
    "",
  }, "\n"))
end

if branches > 0 then return end

-- Linear only: dbmate (no merges there) and the psql floors ---------------------
sh("mkdir -p " .. q(dir .. "/sql") .. " " .. q(dir .. "/dbmate"))
local function ddl(r, up)
  if r.column then
    return up and ('ALTER TABLE "%s" ADD COLUMN "%s" integer;'):format(r.table, r.column)
      or ('ALTER TABLE "%s" DROP COLUMN "%s";'):format(r.table, r.column)
  end
  return up and ('CREATE TABLE "%s" (\n    "id" bigint PRIMARY KEY\n);'):format(r.table)
    or ('DROP TABLE "%s";'):format(r.table)
end

for _, r in ipairs(revs) do
  write(("%s/dbmate/%d_%s.sql"):format(dir, 20260101000000 + r.i, r.slug),
    "-- migrate:up\n" .. ddl(r, true) .. "\n\n-- migrate:down\n" .. ddl(r, false) .. "\n")
end

local VT = '"luamig_version"'
local create_vt = 'CREATE TABLE IF NOT EXISTS ' .. VT .. ' (version_num varchar(32) NOT NULL, '
  .. 'CONSTRAINT "luamig_version_pkc" PRIMARY KEY (version_num));'
local function move(from, to)
  if from == nil then return ("INSERT INTO %s (version_num) VALUES ('%s');"):format(VT, to) end
  if to == nil then return ("DELETE FROM %s WHERE version_num = '%s';"):format(VT, from) end
  return ("UPDATE %s SET version_num = '%s' WHERE version_num = '%s';"):format(VT, to, from)
end

local one, per, back, back1 = { create_vt }, { create_vt }, {}, {}
for _, r in ipairs(revs) do
  local stmts = ddl(r, true) .. "\n" .. move(r.down, r.id)
  one[#one + 1] = stmts
  per[#per + 1] = "BEGIN;\n" .. stmts .. "\nCOMMIT;"
end
for k = #revs, 1, -1 do
  local r = revs[k]
  local stmts = ddl(r, false) .. "\n" .. move(r.id, r.down)
  back1[#back1 + 1] = stmts
  back[#back + 1] = "BEGIN;\n" .. stmts .. "\nCOMMIT;"
end
write(dir .. "/sql/up_1tx.sql", table.concat(one, "\n") .. "\n")
write(dir .. "/sql/up_perrev.sql", table.concat(per, "\n") .. "\n")
write(dir .. "/sql/down_1tx.sql", table.concat(back1, "\n") .. "\n")
write(dir .. "/sql/down_perrev.sql", table.concat(back, "\n") .. "\n")

-- luamig.lint_actions: what an op call does, for the safety lint, as a list of
-- actions: { kind = "add_column", table =, column =, type =, not_null =,
-- default = }, { kind = "set_not_null", ... }, { kind = "create_index",
-- concurrently = }, ...; the SQL of op.execute goes through luamig.lint_sql,
-- which makes the same actions of statements.
local sql = require "luamig.lint_sql"

local M = { key = sql.key, actions = sql.actions }

-- ---- op calls ----

-- The array part of t (raw reads up to its raw length): a proxy table whose __index
-- or __len never ends cannot make the lint loop; the op itself refuses it.
local function items(t)
  local out = {}
  if type(t) == "table" then
    for i = 1, rawlen(t) do out[i] = rawget(t, i) end
  end
  return out
end

local function opts_at(args, i)
  local o = args[i]
  return type(o) == "table" and o or {}
end

-- A column table { "name", "type", nullable =, default =, ... } as an add_column action.
local function column_action(table_key, c)
  local def = { kind = "add_column", table = table_key, column = c[1], type = c[2],
                default = c.default, unique = c.unique, primary_key = c.primary_key,
                references = c.references ~= nil }
  def.not_null = c.nullable == false or c.primary_key == true
  if type(def.default) ~= "string" or def.default:upper() == "NULL" then def.default = nil end
  local t = type(def.type) == "string" and def.type:lower() or ""
  if t:find("generated", 1, true) then         -- an identity, or a stored generated column
    if t:find("identity", 1, true) then def.identity = true else def.generated = true end
  end
  return def
end

local function sql_actions(args)
  if type(args[1]) ~= "string" then return { { kind = "other", ddl = true } } end
  return sql.actions(args[1])
end

local from_op = {}
local key = sql.key

function from_op.create_table(a)
  local o = opts_at(a, 3)
  local t = key(o.schema, a[1])
  local cols, keys = {}, {}
  for _, c in ipairs(items(a[2])) do
    if type(c) == "table" and rawget(c, 1) ~= nil then
      local col = column_action(t, c)
      cols[#cols + 1] = { name = col.column, def = col }
    elseif type(c) == "table" then      -- a constraint: { primary_key = { ... } }, { foreign_key = ... }
      for _, k in ipairs { "primary_key", "foreign_key" } do
        for _, name in ipairs(items(rawget(c, k))) do keys[name] = true end
      end
    end
  end
  return { { kind = "create_table", table = t, columns = cols, keys = keys,
             if_not_exists = o.if_not_exists == true } }
end
function from_op.drop_table(a)
  return { { kind = "drop_table", table = key(opts_at(a, 2).schema, a[1]) } }
end
function from_op.rename_table(a)
  local s = opts_at(a, 3).schema
  return { { kind = "rename_table", table = key(s, a[1]), to = key(s, a[2]) } }
end
function from_op.add_column(a)
  return { column_action(key(opts_at(a, 3).schema, a[1]), opts_at(a, 2)) }
end
function from_op.drop_column(a)
  return { { kind = "drop_column", table = key(opts_at(a, 3).schema, a[1]), column = a[2] } }
end
function from_op.create_index(a)
  local o = opts_at(a, 4)
  local cols = {}
  for _, c in ipairs(items(a[3])) do cols[#cols + 1] = c end
  return { { kind = "create_index", name = key(o.schema, a[1]), table = key(o.schema, a[2]),
             columns = cols, unique = o.unique, if_not_exists = o.if_not_exists == true,
             concurrently = o.concurrently == true } }
end
function from_op.drop_index(a)
  local o = opts_at(a, 2)
  return { { kind = "drop_index", name = key(o.schema, a[1]), concurrently = o.concurrently == true } }
end
function from_op.alter_column(a)
  local o = opts_at(a, 3)
  local t, c, out = key(o.schema, a[1]), a[2], {}
  local function add(act) act.table, act.column = t, c; out[#out + 1] = act end
  if o.type ~= nil then     -- existing_type (Alembic's) when the op takes it; else the model's
    add { kind = "alter_type", type = o.type, old_type = o.existing_type, using = o.using }
  end
  if o.nullable == false then add { kind = "set_not_null" } end
  if o.nullable == true then add { kind = "drop_not_null" } end
  local d = o.server_default
  if type(d) == "string" or type(d) == "number" then add { kind = "set_default", default = tostring(d) }
  elseif d == false then add { kind = "drop_default" } end
  if o.new_name ~= nil then add { kind = "rename_column", to = o.new_name } end
  return out
end
-- Constraint ops: (name or nil, table, ...) with the options table last and, but for a
-- check, the columns at cols_index.
local function constraint(ctype, opts_index, cols_index)
  return function(a)
    local o = opts_at(a, opts_index)
    return { { kind = "add_constraint", ctype = ctype, name = a[1], table = key(o.schema, a[2]),
               unnamed = a[1] == nil, columns = cols_index and opts_at(a, cols_index) or nil,
               expr = ctype == "check" and type(a[3]) == "string" and a[3] or nil,
               not_valid = o.not_valid == true,
               ref_table = ctype == "foreign" and key(o.referent_schema, a[3]) or nil } }
  end
end
from_op.create_foreign_key = constraint("foreign", 6, 4)
from_op.create_check_constraint = constraint("check", 4)
from_op.create_unique_constraint = constraint("unique", 4, 3)
from_op.create_primary_key = constraint("primary", 4, 3)
function from_op.drop_constraint(a)
  return { { kind = "drop_constraint", name = a[1], table = key(opts_at(a, 3).schema, a[2]) } }
end
function from_op.validate_constraint(a)
  return { { kind = "validate_constraint", name = a[1], table = key(opts_at(a, 3).schema, a[2]) } }
end
-- Objects outside tables: (name [, ..., opts]) -> { kind, name, if_not_exists }.
local function object(kind, opts_index, schema_opt)
  return function(a)
    local o = opts_at(a, opts_index)
    return { { kind = kind, name = key(schema_opt and o.schema, a[1]),
               if_not_exists = o.if_not_exists == true } }
  end
end
from_op.create_enum = object("create_type", 3, true)
from_op.drop_enum = object("drop_type", 2, true)
from_op.create_schema = object("create_schema", 2)
from_op.drop_schema = object("drop_schema", 2)
from_op.create_extension = object("create_extension", 2)
from_op.drop_extension = object("drop_extension", 2)
function from_op.create_table_comment(a)
  return { { kind = "create_comment", name = key(opts_at(a, 3).schema, a[1]) } }
end
function from_op.drop_table_comment(a)
  return { { kind = "drop_comment", name = key(opts_at(a, 2).schema, a[1]) } }
end
-- PostgreSQL cannot drop an enum value: nothing for downgrade() to undo.
function from_op.add_enum_value() return { { kind = "add_enum_value" } } end
function from_op.bulk_insert() return { { kind = "other", dml = true } } end
-- op.backfill: rows in batches, each its own transaction; a data change with nothing to undo
function from_op.backfill() return { { kind = "other", dml = true } } end
from_op.execute = sql_actions
from_op.query = sql_actions

-- The actions of op.<name>(table.unpack(args)); an op the lint does not know is
-- opaque DDL.
function M.from_call(name, args)
  local f = from_op[name]
  if not f then return { { kind = "other", ddl = true } } end
  local ok, acts = pcall(f, args)
  if not ok or type(acts) ~= "table" then return { { kind = "other", ddl = true } } end
  for i, a in ipairs(acts) do acts[i] = sql.complete(a) end
  return acts
end

return M

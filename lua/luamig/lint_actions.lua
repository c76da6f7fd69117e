-- luamig.lint_actions: what an op call does, for the safety lint, as a list of
-- actions: { kind = "add_column", table =, column =, type =, not_null =,
-- default = }, { kind = "set_not_null", ... }, { kind = "create_index",
-- concurrently = }, ...; the SQL of op.execute goes through luamig.lint_sql,
-- which makes the same actions of statements.
local sql = require "luamig.lint_sql"
local specs = require "luamig.opspec"

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

-- What each lint kind (a registry row's `lint`: "kind" or "kind word") makes of a
-- call: a holds the call's arguments by name, o its options, k(name) the key of a
-- relation the op names (schema-qualified when the op's options qualify it), word
-- the kind's word ("primary" of "add_constraint primary").
local kinds = {}
local key = sql.key

function kinds.create_table(a, o, k)
  local t = k(a.name)
  local cols, keys = {}, {}
  for _, c in ipairs(items(a.columns)) do
    if type(c) == "table" and rawget(c, 1) ~= nil then
      local col = column_action(t, c)
      cols[#cols + 1] = { name = col.column, def = col }
    elseif type(c) == "table" then      -- a constraint: { primary_key = { ... } }, { foreign_key = ... }
      for _, kk in ipairs { "primary_key", "foreign_key" } do
        for _, name in ipairs(items(rawget(c, kk))) do keys[name] = true end
      end
    end
  end
  return { { kind = "create_table", table = t, columns = cols, keys = keys,
             if_not_exists = o.if_not_exists == true } }
end
function kinds.drop_table(a, _, k) return { { kind = "drop_table", table = k(a.name) } } end
function kinds.rename_table(a, _, k)
  return { { kind = "rename_table", table = k(a.old_name), to = k(a.new_name) } }
end
function kinds.add_column(a, _, k)
  return { column_action(k(a.table), type(a.column) == "table" and a.column or {}) }
end
function kinds.drop_column(a, _, k)
  return { { kind = "drop_column", table = k(a.table), column = a.column } }
end
function kinds.create_index(a, o, k)
  local cols = {}
  for _, c in ipairs(items(a.columns)) do cols[#cols + 1] = c end
  return { { kind = "create_index", name = k(a.name), table = k(a.table), columns = cols,
             unique = o.unique, if_not_exists = o.if_not_exists == true,
             concurrently = o.concurrently == true } }
end
function kinds.drop_index(a, o, k)
  return { { kind = "drop_index", name = k(a.name), concurrently = o.concurrently == true } }
end
function kinds.alter_column(a, o, k)
  local t, c, out = k(a.table), a.column, {}
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
-- The create_*_constraint ops: (name or nil, table or source, ...), ctype the word.
function kinds.add_constraint(a, o, k, ctype)
  local cols = a.local_cols or a.columns
  return { { kind = "add_constraint", ctype = ctype, name = a.name, table = k(a.source or a.table),
             unnamed = a.name == nil, columns = ctype ~= "check" and (type(cols) == "table" and cols or {}) or nil,
             expr = ctype == "check" and type(a.condition) == "string" and a.condition or nil,
             not_valid = o.not_valid == true,
             ref_table = ctype == "foreign" and key(o.referent_schema, a.referent) or nil } }
end
function kinds.drop_constraint(a, _, k)
  return { { kind = "drop_constraint", name = a.name, table = k(a.table) } }
end
function kinds.validate_constraint(a, _, k)
  return { { kind = "validate_constraint", name = a.name, table = k(a.table) } }
end
-- Objects outside tables, by the kind's word: create type, drop schema, ...
function kinds.create(a, o, k, object)
  return { { kind = "create_" .. object, object = object, name = k(a.name),
             if_not_exists = o.if_not_exists == true } }
end
function kinds.drop(a, o, k, object)
  return { { kind = "drop_" .. object, object = object, name = k(a.name),
             if_not_exists = o.if_not_exists == true } }
end
function kinds.create_comment(a, _, k) return { { kind = "create_comment", name = k(a.table) } } end
function kinds.drop_comment(a, _, k) return { { kind = "drop_comment", name = k(a.table) } } end
-- PostgreSQL cannot drop an enum value: nothing for downgrade() to undo.
function kinds.add_enum_value() return { { kind = "add_enum_value" } } end
function kinds.dml() return { { kind = "other", dml = true } } end
function kinds.sql(a)
  if type(a.sql) ~= "string" then return { { kind = "other", ddl = true } } end
  return sql.actions(a.sql)
end
function kinds.safe() return {} end    -- the recording op notes op.safe itself
M.kinds = kinds

-- The lint kind of a registry row split into the function and its word.
function M.kind_of(spec)
  local name, word = (spec.lint or ""):match("^(%S+)%s*(%S*)$")
  return kinds[name], word ~= "" and word or nil, name
end

-- The kind of the action a registry row's calls make ("create_type" for "create
-- type"), for the pairs of ops that undo each other.
function M.action_kind(spec)
  local _, word, name = M.kind_of(spec)
  if name == "create" or name == "drop" then return name .. "_" .. word end
  return name
end

-- The actions of op.<name>(table.unpack(args)). An op the registry does not have is
-- opaque DDL, and so are arguments the op would refuse; one it has without a lint
-- kind is an error, never a silent opaque statement.
function M.from_call(name, args)
  local spec = specs.by_name[name]
  if not spec then return { { kind = "other", ddl = true } } end
  local f, word = M.kind_of(spec)
  if not f then
    error(("op.%s has no lint kind the lint knows (%s): see src/ops/ops_registry.c"):format(
      name, tostring(spec.lint)), 0)
  end
  local a, o = specs.bind(spec, args)
  local q = specs.qualifier(spec)
  local function k(n) return key(q and o[q], n) end
  local ok, acts = pcall(f, a, o, k, word)
  if not ok or type(acts) ~= "table" then return { { kind = "other", ddl = true } } end
  for i, act in ipairs(acts) do acts[i] = sql.complete(act) end
  return acts
end

return M

-- luamig.types: the facts about SQL types and foreign keys that the models,
-- autogenerate and the lint share, written once: the spellings of each built-in
-- type (format_type()'s is the canonical one), the serial types, the foreign-key
-- actions (the C core's list) and the reading of "schema.table(column)" (the C
-- core's reader, the one op.create_table uses).
local core = require "luamig.core"
local S = require "luamig.sqltext"

local T = {}

-- Each spelling of a built-in type -> format_type()'s.
T.NAMES = {
  int = "integer", int4 = "integer", integer = "integer",
  int2 = "smallint", smallint = "smallint",
  int8 = "bigint", bigint = "bigint",
  serial = "integer", serial4 = "integer",
  bigserial = "bigint", serial8 = "bigint",
  smallserial = "smallint", serial2 = "smallint",
  float8 = "double precision", ["double precision"] = "double precision",
  float4 = "real", real = "real",
  bool = "boolean", boolean = "boolean",
  varchar = "character varying", ["char varying"] = "character varying",
  ["character varying"] = "character varying",
  char = "character", character = "character", bpchar = "character",
  decimal = "numeric", numeric = "numeric",
  timestamptz = "timestamp with time zone",
  timestamp = "timestamp without time zone",
  ["timestamp with time zone"] = "timestamp with time zone",
  ["timestamp without time zone"] = "timestamp without time zone",
  timetz = "time with time zone", time = "time without time zone",
  ["time with time zone"] = "time with time zone",
  ["time without time zone"] = "time without time zone",
  varbit = "bit varying", ["bit varying"] = "bit varying",
}

-- The serial types -> the integer type behind them; and the serial type of each.
T.SERIAL = { serial = "integer", serial4 = "integer", bigserial = "bigint", serial8 = "bigint",
             smallserial = "smallint", serial2 = "smallint" }
T.SERIAL_OF = { integer = "serial", bigint = "bigserial", smallint = "smallserial" }

-- t as format_type() would print it, in three parts: the base name (lower case
-- outside quoted names, default_schema and pg_catalog left off), its modifier
-- ("(10,2)", or nil) and whether it is an array.
function T.split(t, default_schema)
  local s = t:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  local parts, pos = {}, 1
  for a, q, b in s:gmatch('()"([^"]*)"()') do
    parts[#parts + 1] = s:sub(pos, a - 1):lower()
    parts[#parts + 1] = S.name_key(q)
    pos = b
  end
  parts[#parts + 1] = s:sub(pos):lower()
  s = table.concat(parts)
  local array = false
  while true do
    local base = s:match("^(.-)%s*%[%s*%d*%s*%]$")
    if not base then base = s:match("^(.-)%s+array$") end
    if not base then break end
    s, array = base, true
  end
  s = s:gsub("^pg_catalog%.", "")
  if default_schema then
    local prefix = default_schema .. "."
    if s:sub(1, #prefix) == prefix then s = s:sub(#prefix + 1) end
  end
  local head, mod, tail = s:match("^(.-)%s*(%b())%s*(.*)$")
  if head then
    s = tail ~= "" and (head .. " " .. tail) or head
    mod = mod:gsub("%s+", "")
  end
  if s == "float" or s == "double" then
    local p = mod and tonumber(mod:match("%d+"))
    s, mod = (p and p <= 24) and "real" or "double precision", nil
  end
  s = T.NAMES[s] or s
  if (s == "character" or s == "bit") and not mod then mod = "(1)" end
  return s, mod, array
end

-- The canonical name of a type: format_type()'s spelling, without the default schema.
function T.canonical(t, default_schema)
  local s, mod, array = T.split(t, default_schema)
  if mod then
    local first, rest = s:match("^(time%a*)( with.*)$")
    if first then s = first .. mod .. rest else s = s .. mod end
  end
  return array and (s .. "[]") or s
end

-- "character varying(20)" -> "character varying", { 20 }, false: a type's base, the
-- numbers of its modifier and whether it is an array (nil for a non-string).
function T.parse(t)
  if type(t) ~= "string" then return nil end
  local s, mod, array = T.split(t)
  local args = {}
  for n in (mod or ""):gmatch("%d+") do args[#args + 1] = tonumber(n) end
  return s, args, array
end

-- The integer type behind serial/bigserial/smallserial (any case, spaces around), or nil.
function T.serial_base(t)
  return type(t) == "string" and T.SERIAL[(t:lower():gsub("^%s+", ""):gsub("%s+$", ""))] or nil
end

-- ---- foreign keys ----

-- pg_constraint's action codes.
T.FK_CODES = { a = "no action", r = "restrict", c = "cascade", n = "set null", d = "set default" }

-- A foreign-key action as the models keep it ("SET  Null" -> "set null"), or nil when v is none.
function T.fk_action(v)
  if type(v) ~= "string" then return nil end
  local sql = core.fk_action((v:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")))
  return sql and sql:lower()
end

-- The foreign-key actions, as messages list them.
T.FK_ACTIONS = core.fk_actions

-- The SQL of a foreign-key action ("set null" -> "SET NULL"), or nil.
T.fk_sql = core.fk_action

-- "audit.users (id, org)" -> "audit", "users", { "id", "org" } (schema and columns nil
-- when not given); nil, nil, nil, why when it is not a reference.
T.parse_reference = core.parse_reference

return T

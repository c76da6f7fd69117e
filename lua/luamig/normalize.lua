-- luamig.normalize: canonical forms of SQL types and expressions, so that what a
-- model says and what PostgreSQL reports back compare equal when they mean the same:
-- varchar(500) and character varying(500), int and integer, timestamptz and timestamp
-- with time zone; 'x' and 'x'::character varying, price > 0 and (price > (0)::numeric),
-- status IN ('a', 'b') and ((status)::text = ANY ((ARRAY['a'::character varying, ...]))).
--
-- These are comparison keys, never SQL to run. Writing a default or a check in the form
-- PostgreSQL prints (pg_get_expr) always compares equal, whatever the rules below miss.
local N = {}

-- ---- types ----

local TYPE_NAMES = {
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

local SERIAL = { serial = "integer", serial4 = "integer", bigserial = "bigint", serial8 = "bigint",
                 smallserial = "smallint", serial2 = "smallint" }

-- The results of N.type and N.expr, by argument: a schema of a thousand tables
-- repeats a few dozen types and defaults ten thousand times.
local function memo(fn)
  local caches, size = {}, 0         -- caches[extra or ""][s]
  return function(s, extra)
    if s == nil then return nil end
    local cache = caches[extra or ""]
    if not cache then cache = {}; caches[extra or ""] = cache end
    local v = cache[s]
    if v == nil then
      if size >= 20000 then caches, size = {}, 0 end
      v = fn(s, extra)
      cache[s], size = v, size + 1
    end
    return v
  end
end

-- The canonical name of a type: format_type()'s spelling, without the default schema.
local function canonical_type(t, default_schema)
  local s = t:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  -- lowercase outside quoted names; quotes kept only where they matter
  local parts, pos = {}, 1
  for a, q, b in s:gmatch('()"([^"]*)"()') do
    parts[#parts + 1] = s:sub(pos, a - 1):lower()
    parts[#parts + 1] = q:match("^[a-z_][a-z0-9_$]*$") and q or ('"' .. q .. '"')
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
  s = TYPE_NAMES[s] or s
  if (s == "character" or s == "bit") and not mod then mod = "(1)" end
  if mod then
    local first, rest = s:match("^(time%a*)( with.*)$")
    if first then s = first .. mod .. rest else s = s .. mod end
  end
  return array and (s .. "[]") or s
end
N.type = memo(canonical_type)

-- The integer type behind serial/bigserial/smallserial, or nil.
local serial_base = memo(function(t)
  return SERIAL[(t:lower():gsub("^%s+", ""):gsub("%s+$", ""))] or false
end)
function N.serial_base(t) return serial_base(t) or nil end

-- ---- expressions ----

local OPCHARS = "[%+%-%*/<>=~!@#%%%^&|`%?]"

local function tokenize(s)
  local toks, i, n = {}, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif c == "'" or ((c == "E" or c == "e") and s:sub(i + 1, i + 1) == "'") then
      local start = c == "'" and i or i + 1
      local j = start + 1
      while j <= n do
        local ch = s:sub(j, j)
        if ch == "\\" and start ~= i then j = j + 2
        elseif ch == "'" then
          if s:sub(j + 1, j + 1) == "'" then j = j + 2 else break end
        else j = j + 1 end
      end
      toks[#toks + 1] = { k = "str", v = s:sub(i, j) }
      i = j + 1
    elseif c == '"' then
      local j = i + 1
      while j <= n do
        if s:sub(j, j) == '"' then
          if s:sub(j + 1, j + 1) == '"' then j = j + 2 else break end
        else j = j + 1 end
      end
      local name = s:sub(i + 1, j - 1):gsub('""', '"')
      toks[#toks + 1] = { k = "id", v = name:match("^[a-z_][a-z0-9_$]*$") and name
                                        or ('"' .. name:gsub('"', '""') .. '"'), quoted = true }
      i = j + 1
    elseif c:match("[%a_\128-\255]") then
      local w = s:match("^[%w_$\128-\255]+", i)
      toks[#toks + 1] = { k = "id", v = w:lower() }
      i = i + #w
    elseif c:match("%d") or (c == "." and s:sub(i + 1, i + 1):match("%d")) then
      local w = s:match("^%d*%.?%d*[eE][%+%-]?%d+", i) or s:match("^%d*%.?%d*", i)
      toks[#toks + 1] = { k = "num", v = w }
      i = i + #w
    elseif s:sub(i, i + 1) == "::" then
      toks[#toks + 1] = { k = "::" }
      i = i + 2
    elseif c:match(OPCHARS) then
      local w = s:match("^" .. OPCHARS .. "+", i)
      -- PostgreSQL's lexer: a multi-character operator ends in + or - only if it
      -- also contains one of ~ ! @ # % ^ & | ` ? ("=-1" is "=" then "-1")
      while #w > 1 and w:sub(-1):match("[%+%-]") and not w:find("[~!@#%%%^&|`%?]") do
        w = w:sub(1, -2)
      end
      if w == "!=" then w = "<>" end
      toks[#toks + 1] = { k = "op", v = w }
      i = i + #w
    else
      toks[#toks + 1] = { k = c }
      i = i + 1
    end
  end
  return toks
end

-- Words that can follow a type name inside it: character varying, double precision,
-- timestamp with time zone.
local TYPE_WORDS = { varying = true, precision = true, with = true, without = true, time = true,
                     zone = true }

-- Index just past the group opened at toks[i] (a "(" or "[").
local function skip_group(toks, i)
  local open = toks[i].k
  local close = open == "(" and ")" or "]"
  local depth = 0
  repeat
    local k = toks[i].k
    if k == open then depth = depth + 1 elseif k == close then depth = depth - 1 end
    i = i + 1
  until depth == 0 or i > #toks
  return i
end

-- Appends toks[first..last], passed through pass (a rewrite of a token list), to out
-- between an open and a close token.
local function append_through(out, toks, first, last, pass, open, close)
  local inner = {}
  for j = first, last do inner[#inner + 1] = toks[j] end
  out[#out + 1] = { k = open }
  for _, x in ipairs(pass(inner)) do out[#out + 1] = x end
  out[#out + 1] = { k = close }
end

-- Removes casts: x::type, and CAST(x AS type) -> (x).
local function drop_casts(toks)
  local out, i = {}, 1
  while i <= #toks do
    local t = toks[i]
    if t.k == "::" then
      i = i + 1
      if toks[i] and toks[i].k == "id" then
        i = i + 1
        while toks[i] do
          local k = toks[i].k
          if k == "." and toks[i + 1] and toks[i + 1].k == "id" then i = i + 2
          elseif k == "id" and TYPE_WORDS[toks[i].v] then i = i + 1
          elseif k == "(" or k == "[" then i = skip_group(toks, i)
          else break end
        end
      end
    elseif t.k == "id" and t.v == "cast" and not t.quoted and toks[i + 1] and toks[i + 1].k == "(" then
      local stop = skip_group(toks, i + 1) - 1      -- the closing ")"
      local depth, as = 0, nil
      for j = i + 2, stop - 1 do
        local k = toks[j].k
        if k == "(" or k == "[" then depth = depth + 1
        elseif k == ")" or k == "]" then depth = depth - 1
        elseif depth == 0 and k == "id" and toks[j].v == "as" and not toks[j].quoted then as = j end
      end
      if as then
        append_through(out, toks, i + 2, as - 1, drop_casts, "(", ")")
        i = stop + 1
      else
        out[#out + 1] = t
        i = i + 1
      end
    else
      out[#out + 1] = t
      i = i + 1
    end
  end
  return out
end

-- Words after which "(" opens a group, not a function's arguments.
local NOT_CALL = { ["and"] = true, ["or"] = true, ["not"] = true, ["in"] = true, any = true,
                   all = true, some = true, is = true, when = true, ["then"] = true,
                   ["else"] = true, case = true, between = true, like = true, ilike = true,
                   similar = true, as = true, on = true, where = true, select = true,
                   from = true, exists = true, array = true, values = true, distinct = true,
                   by = true, using = true, with = true, to = true }

local function is_value(t)
  return t and (t.k == "id" and not NOT_CALL[t.v] or t.k == "num" or t.k == "str" or t.k == ")"
                or t.k == "]")
end

-- Numbers in quotes ('-1'::integer) become numbers; a unary minus joins its number.
local function fold_numbers(toks)
  local out = {}
  for _, t in ipairs(toks) do
    if t.k == "str" then
      local inner = t.v:match("^'(.*)'$")
      if inner and inner:match("^%-?%d+%.?%d*$") then t = { k = "num", v = inner } end
    end
    local prev = out[#out]
    if t.k == "num" and prev and prev.k == "op" and prev.v == "-" and not is_value(out[#out - 1])
        and t.v:sub(1, 1) ~= "-" then
      out[#out] = { k = "num", v = "-" .. t.v }
    else
      out[#out + 1] = t
    end
  end
  return out
end

-- x IN (a, b) -> x = ANY (ARRAY[a, b]); x NOT IN (...) -> x <> ALL (ARRAY[...]):
-- PostgreSQL stores the list form as the array form.
local function rewrite_in(toks)
  local out, i = {}, 1
  while i <= #toks do
    local t = toks[i]
    local nt = toks[i + 1]
    local negated = t.k == "id" and t.v == "not" and nt and nt.k == "id" and nt.v == "in"
    local plain = t.k == "id" and t.v == "in"
    local at = negated and i + 1 or i
    if (negated or plain) and toks[at + 1] and toks[at + 1].k == "(" then
      local stop = skip_group(toks, at + 1) - 1
      out[#out + 1] = { k = "op", v = negated and "<>" or "=" }
      out[#out + 1] = { k = "id", v = negated and "all" or "any" }
      out[#out + 1] = { k = "id", v = "array" }
      append_through(out, toks, at + 2, stop - 1, rewrite_in, "[", "]")
      i = stop + 1
    else
      out[#out + 1] = t
      i = i + 1
    end
  end
  return out
end

-- Drops parentheses that only group (PostgreSQL adds them around every operator);
-- a function's argument list keeps its own. now() reads as CURRENT_TIMESTAMP.
local function drop_groups(toks)
  local out, stack = {}, {}
  for _, t in ipairs(toks) do
    if t.k == "(" then
      local prev = out[#out]
      local call = prev ~= nil and prev.k == "id" and not NOT_CALL[prev.v]
      stack[#stack + 1] = call
      if call then out[#out + 1] = t end
    elseif t.k == ")" then
      local call = table.remove(stack)
      if call then
        local prev = out[#out]
        if prev.k == "(" and out[#out - 1] and out[#out - 1].v == "now" then
          out[#out] = nil
          out[#out] = { k = "id", v = "current_timestamp" }
        else
          out[#out + 1] = t
        end
      end
    else
      out[#out + 1] = t
    end
  end
  return out
end

-- The canonical text of a SQL expression (a default, a check, an index element or
-- predicate), or nil for nil.
N.expr = memo(function(s)
  local toks = drop_groups(rewrite_in(fold_numbers(drop_casts(tokenize(s)))))
  local words = {}
  for i, t in ipairs(toks) do words[i] = t.v or t.k end
  return table.concat(words, " ")
end)

-- An index element: the expression, with the default ordering (ASC NULLS LAST,
-- DESC NULLS FIRST) left out.
N.index_element = memo(function(s)
  local e = N.expr(s)
  e = e:gsub(" asc nulls last$", ""):gsub(" asc$", ""):gsub(" desc nulls first$", " desc")
  if not e:find(" desc") then e = e:gsub(" nulls last$", "") end
  return e
end)

-- ---- a catalog snapshot, flat ----

-- Privileges: the aclitems sorted ("{b=r/o,a=arw/o}" -> "a=arw/o, b=r/o"), "none" when
-- empty. The reader gives an object without a GRANT of its own its default privileges,
-- so GRANT then REVOKE compares equal to never granting.
local function privileges(acl)
  if acl == nil then return nil end
  local I = require "luamig.introspect"
  local items = I.parse_array(acl)
  table.sort(items)
  return #items > 0 and table.concat(items, ", ") or "none"
end

local CONSTRAINT_KINDS = { { "pk", "primary key" }, { "uniques", "unique constraint" },
  { "checks", "check constraint" }, { "fks", "foreign key" }, { "excludes", "exclusion constraint" } }
local VIEW_KINDS = { v = "view", m = "materialized view" }
local FUNCTION_KINDS = { f = "function", p = "procedure", a = "aggregate", w = "window function" }
local TYPE_KINDS = { d = "domain", c = "composite type" }

-- A table's entries; what it holds names it as parent, so a diff can leave them out
-- when the whole table is missing.
local function table_entries(add, t, name)
  local parent = "table " .. name
  add("table", name, { comment = t.comment, privileges = privileges(t.acl),
                       unlogged = t.persistence == "u" and "yes" or nil, options = t.options })
  for _, c in ipairs(t.columns) do
    add("column", name .. "." .. c.name, {
      type = c.type, ["not null"] = c.nullable and "no" or "yes",
      default = c.autoinc and ("nextval('" .. c.sequence .. "'::regclass)") or c.default,
      identity = c.identity, generated = c.generated, comment = c.comment,
      privileges = c.acl and c.acl ~= "{}" and privileges(c.acl) or nil, collation = c.collation },
      parent)
  end
  for _, kind in ipairs(CONSTRAINT_KINDS) do
    local set = kind[1] == "pk" and { t.pk } or t[kind[1]]
    for _, con in pairs(set) do
      add(kind[2], con.name .. " on " .. name, { definition = con.def, comment = con.comment }, parent)
    end
  end
  for _, ix in pairs(t.indexes) do
    add("index", ix.name .. " on " .. name, { definition = ix.def, comment = ix.comment }, parent)
  end
  for _, tg in pairs(t.triggers or {}) do
    add("trigger", tg.name .. " on " .. name, { definition = tg.def, comment = tg.comment,
                                               enabled = tg.enabled ~= "O" and tg.enabled or nil }, parent)
  end
end

-- Every object of a snapshot (luamig.introspect's read with full = true) as
-- { ["column sessions.description"] = { kind =, name =, fields = { type = ..., ... },
-- parent = "table sessions" } }: names without the current schema, every property as
-- text (nil: none); parent: the table a column, constraint, index, trigger or owned
-- sequence belongs to. Two reads of the same schema give equal entries, whatever order
-- the catalog returned rows in.
function N.catalog(db)
  local out = {}
  local function add(kind, name, fields, parent)
    out[kind .. " " .. name] = { kind = kind, name = name, fields = fields, parent = parent }
  end
  local function shown(schema, name)
    return schema == db.current_schema and name or (schema .. "." .. name)
  end
  for s, info in pairs(db.schema_info or {}) do
    add("schema", s, { privileges = privileges(info.acl), comment = info.comment })
  end
  for name, e in pairs(db.extensions or {}) do
    add("extension", name, { schema = e.schema, version = e.version })
  end
  for _, t in pairs(db.tables) do table_entries(add, t, shown(t.schema, t.name)) end
  for _, e in pairs(db.enums) do
    local quoted = {}
    for i, v in ipairs(e.values) do quoted[i] = "'" .. v:gsub("'", "''") .. "'" end
    add("enum", shown(e.schema, e.name), { values = table.concat(quoted, ", "),
                                           privileges = privileges(e.acl), comment = e.comment })
  end
  for _, s in pairs(db.sequences or {}) do
    local owner = s.owner_table and shown(s.owner_schema, s.owner_table)
    add("sequence", shown(s.schema, s.name), {
      type = s.type, start = tostring(s.start), increment = tostring(s.increment),
      minimum = tostring(s.min), maximum = tostring(s.max), cache = tostring(s.cache),
      cycle = s.cycle and "yes" or "no", privileges = privileges(s.acl), comment = s.comment,
      ["owned by"] = owner and (owner .. "." .. s.owner_column) }, owner and ("table " .. owner))
  end
  for _, v in pairs(db.views or {}) do
    add(VIEW_KINDS[v.kind], shown(v.schema, v.name), { definition = v.def, options = v.options,
                                                       privileges = privileges(v.acl), comment = v.comment })
  end
  for _, f in pairs(db.functions or {}) do
    add(FUNCTION_KINDS[f.kind] or "function", shown(f.schema, f.name) .. "(" .. f.args .. ")",
        { definition = f.def, privileges = privileges(f.acl), comment = f.comment })
  end
  for _, ty in pairs(db.types or {}) do
    add(TYPE_KINDS[ty.kind] or "type", shown(ty.schema, ty.name), {
      ["base type"] = ty.base, ["not null"] = ty.kind == "d" and (ty.notnull and "yes" or "no") or nil,
      default = ty.default_expr, checks = ty.checks, attributes = ty.attributes,
      privileges = privileges(ty.acl), comment = ty.comment })
  end
  return out
end

return N

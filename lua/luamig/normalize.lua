-- luamig.normalize: canonical forms of SQL types and expressions, so that what a
-- model says and what PostgreSQL reports back compare equal when they mean the same:
-- varchar(500) and character varying(500), int and integer, timestamptz and timestamp
-- with time zone; 'x' and 'x'::character varying, price > 0 and (price > (0)::numeric),
-- status IN ('a', 'b') and ((status)::text = ANY ((ARRAY['a'::character varying, ...]))).
--
-- These are comparison keys, never SQL to run. Writing a default or a check in the form
-- PostgreSQL prints (pg_get_expr) always compares equal, whatever the rules below miss.
local N = {}

local S = require "luamig.sqltext"
local types = require "luamig.types"

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
N.type = memo(types.canonical)

-- The integer type behind serial/bigserial/smallserial, or nil.
local serial_base = memo(function(t) return types.serial_base(t) or false end)
function N.serial_base(t) return serial_base(t) or nil end

-- ---- expressions ----

-- The tokens of s (luamig.sqltext's) as the rewrites below read them: names as "id"
-- (quoted ones marked quoted), != as <>.
local function tokenize(s)
  local toks = {}
  for i, t in ipairs(S.tokens(s)) do
    if t.k == "word" then t.k = "id"
    elseif t.k == "ident" then t.k, t.v, t.quoted = "id", S.name_key(t.v), true
    elseif t.k == "op" and t.v == "!=" then t.v = "<>" end
    toks[i] = t
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

-- Rewrites toks: at each token, step(toks, i, out) appends what it makes of the
-- tokens from i on and returns the index after them, or returns nil to keep toks[i].
local function rewrite(toks, step)
  local out, i = {}, 1
  while i <= #toks do
    local after = step(toks, i, out)
    if after then
      i = after
    else
      out[#out + 1] = toks[i]
      i = i + 1
    end
  end
  return out
end

local drop_casts

-- A cast at toks[i]: x::type (the type left out), or CAST(x AS type) -> (x).
local function cast_step(toks, i, out)
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
    return i
  end
  if not (t.k == "id" and t.v == "cast" and not t.quoted and toks[i + 1] and toks[i + 1].k == "(") then
    return nil
  end
  local stop = skip_group(toks, i + 1) - 1      -- the closing ")"
  local depth, as = 0, nil
  for j = i + 2, stop - 1 do
    local k = toks[j].k
    if k == "(" or k == "[" then depth = depth + 1
    elseif k == ")" or k == "]" then depth = depth - 1
    elseif depth == 0 and k == "id" and toks[j].v == "as" and not toks[j].quoted then as = j end
  end
  if not as then return nil end
  append_through(out, toks, i + 2, as - 1, drop_casts, "(", ")")
  return stop + 1
end

-- Removes casts: x::type, and CAST(x AS type) -> (x).
function drop_casts(toks) return rewrite(toks, cast_step) end

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
local rewrite_in

local function in_step(toks, i, out)
  local t, nt = toks[i], toks[i + 1]
  local negated = t.k == "id" and t.v == "not" and nt and nt.k == "id" and nt.v == "in"
  local plain = t.k == "id" and t.v == "in"
  local at = negated and i + 1 or i
  if not ((negated or plain) and toks[at + 1] and toks[at + 1].k == "(") then return nil end
  local stop = skip_group(toks, at + 1) - 1
  out[#out + 1] = { k = "op", v = negated and "<>" or "=" }
  out[#out + 1] = { k = "id", v = negated and "all" or "any" }
  out[#out + 1] = { k = "id", v = "array" }
  append_through(out, toks, at + 2, stop - 1, rewrite_in, "[", "]")
  return stop + 1
end

function rewrite_in(toks) return rewrite(toks, in_step) end

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
    add("enum", shown(e.schema, e.name), { values = S.list(e.values, S.literal),
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

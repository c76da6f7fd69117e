-- luamig.schema: the models, a description of the schema the database should have.
-- `luamig revision --autogenerate` compares it with the live database and writes
-- the revision that takes one to the other; `luamig check` tells whether they agree.
--
--   local schema = require "luamig.schema"
--   local m = schema.new()
--   m:enum("participant_role", { "candidate", "interviewer" })
--   m:table("users", {
--     { "id", "bigserial", primary_key = true },
--     { "email", "varchar(255)", nullable = false, unique = true },
--     comment = "People who sign in",
--   })
--   m:table("participants", {
--     { "id", "bigserial", primary_key = true },
--     { "user_id", "bigint", nullable = false, references = "users(id)", on_delete = "cascade" },
--     { "role", "participant_role", nullable = false, default = "'candidate'" },
--     schema.unique { "session_id", "user_id" },           -- or "UNIQUE (session_id, user_id)"
--     schema.index("ix_participants_role", { "role" }, { where = "role <> 'candidate'" }),
--   })
--   return m
--
-- Columns are written as for op.create_table (types, defaults and expressions are SQL
-- text). Constraints and indexes left unnamed get the name PostgreSQL would give them
-- (users_email_key, sessions_user_id_fkey, users_pkey, ...), so a model and the
-- database it describes compare equal whoever created the objects; they are marked
-- unnamed, so autogenerate also takes one the server named otherwise (users_email_key1).
local S = require "luamig.sqltext"
local types = require "luamig.types"

local M = {}

local NAMEDATALEN = S.MAX_IDENT + 1

local SOURCE = debug.getinfo(1, "S").source

-- Raises "luamig.schema: <message>" at the models' own line: the first caller
-- outside this file.
local function fail(fmt, ...)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info or info.source ~= SOURCE then break end
    level = level + 1
  end
  error(("luamig.schema: " .. fmt):format(...), level)
end

-- At most n bytes of s, never cutting a UTF-8 sequence (PostgreSQL's pg_mbcliplen).
local function clip(s, n)
  if #s <= n then return s end
  while n > 0 and (s:byte(n + 1) & 0xC0) == 0x80 do n = n - 1 end
  return s:sub(1, n)
end

-- PostgreSQL's makeObjectName: name1_name2_label within 63 bytes, shortening the
-- longer of name1 and name2 first.
function M.object_name(name1, name2, label)
  local n1, n2, overhead = #name1, name2 and #name2 or 0, 0
  if name2 then overhead = overhead + 1 end
  if label then overhead = overhead + #label + 1 end
  local avail = NAMEDATALEN - 1 - overhead
  while n1 + n2 > avail do
    if n1 > n2 then n1 = n1 - 1 else n2 = n2 - 1 end
  end
  local s = clip(name1, n1)
  if name2 then s = s .. "_" .. clip(name2, n2) end
  if label then s = s .. "_" .. label end
  return s
end

-- The column part of a default name: names joined by "_" (ChooseIndexNameAddition).
local function name_addition(cols)
  local buf = ""
  for _, c in ipairs(cols) do
    if #buf > 0 then buf = buf .. "_" end
    buf = buf .. c:sub(1, NAMEDATALEN - 1)
    if #buf >= NAMEDATALEN then break end
  end
  return buf
end

-- What PostgreSQL calls an index element when it names the index: the column, the
-- function of an expression such as lower(email), else "expr".
local function element_name(e)
  local col = e:match('^%s*"([^"]+)"%s*$') or e:match("^%s*([%a_][%w_$]*)%s*$")
    or e:match("^%s*([%a_][%w_$]*)%s+[AaDdNn][%a%s]*$")
  if col then return col end
  return e:match("^%s*([%a_][%w_$]*)%s*%(") or "expr"
end

function M.default_name(table_name, kind, cols)
  if kind == "pkey" then return M.object_name(table_name, nil, "pkey") end
  if kind == "check" then return M.object_name(table_name, cols, "check") end
  local names = {}
  for i, c in ipairs(cols) do names[i] = kind == "idx" and element_name(c) or c end
  return M.object_name(table_name, name_addition(names), kind)
end

-- ---- values ----

local function fk_action(v, what, key)
  if v == nil then return nil end
  local s = types.fk_action(v)
  if not s then
    fail("%s: %s must be one of %s (got %s)", what, key, types.FK_ACTIONS, tostring(v))
  end
  return s
end

-- A default as SQL text: numbers and booleans as their literals.
local function default_sql(v, what)
  if v == nil or type(v) == "string" then return v end
  if type(v) == "boolean" then return tostring(v) end
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "number" then
    if v == math.floor(v) and v > -2^53 and v < 2^53 then return ("%d"):format(v) end
    for prec = 15, 17 do
      local s = ("%." .. prec .. "g"):format(v)
      if tonumber(s) == v then return s end
    end
  end
  fail("%s: default must be a SQL expression string, a number or a boolean (got %s)",
       what, type(v))
end

local function check_string(v, what, label)
  if type(v) ~= "string" or v == "" then
    fail("%s: %s must be a non-empty string (got %s)", what, label, type(v))
  end
  if v:find("\0", 1, true) then fail("%s: %s contains a NUL byte", what, label) end
  return v
end

local function check_name(v, what, label)
  check_string(v, what, label)
  if S.too_long(v) then
    fail("%s: %s \"%s\" is longer than %d bytes", what, label, v, S.MAX_IDENT)
  end
  return v
end

local function string_list(v, what, label)
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" or #v == 0 then
    fail("%s: %s must be a non-empty list of strings", what, label)
  end
  local out = {}
  for i, s in ipairs(v) do out[i] = check_string(s, what, label) end
  return out
end

local function check_keys(t, allowed, what)
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= #t) and not allowed[k] then
      fail("%s: unknown field '%s'", what, tostring(k))
    end
  end
end

-- "users(id)", "audit.users (id, org)", "users" -> schema, table, columns (nil: its primary key).
local function parse_reference(ref, what)
  check_string(ref, what, "references")
  local schema_name, table_name, list, why = types.parse_reference(ref)
  if why then fail("%s: references %s (got \"%s\")", what, why, ref) end
  if table_name == "" or schema_name == "" then
    fail("%s: references \"%s\" names no table", what, ref)
  end
  for _, c in ipairs(list or {}) do
    if c == "" then fail("%s: references \"%s\" names no column", what, ref) end
  end
  return schema_name, table_name, list
end

-- ---- constraint and index objects ----

local Item = {}                       -- metatable marking constraint objects

local function item(kind, fields)
  fields.kind = kind
  return setmetatable(fields, Item)
end

-- schema.index([name,] columns [, { unique =, where =, using =, name = }])
function M.index(name, columns, opts)
  if type(name) == "table" then name, columns, opts = nil, name, columns end
  opts = opts or {}
  check_keys(opts, { unique = true, where = true, using = true, name = true }, "schema.index")
  name = name or opts.name
  if name ~= nil then check_name(name, "schema.index", "name") end
  return item("index", {
    name = name,
    columns = string_list(columns, "schema.index", "columns"),
    unique = opts.unique == true,
    where = opts.where ~= nil and check_string(opts.where, "schema.index", "where") or nil,
    using = opts.using ~= nil and check_string(opts.using, "schema.index", "using"):lower() or nil,
  })
end

-- A key of the columns: kind "unique" or "pk", what the function for messages.
local function key_item(kind, what, columns, opts)
  opts = opts or {}
  check_keys(opts, { name = true }, what)
  return item(kind, { name = opts.name, columns = string_list(columns, what, "columns") })
end

-- schema.unique(columns [, { name = }])
function M.unique(columns, opts) return key_item("unique", "schema.unique", columns, opts) end

-- schema.primary_key(columns [, { name = }])
function M.primary_key(columns, opts) return key_item("pk", "schema.primary_key", columns, opts) end

-- schema.check(expression [, { name = }])
function M.check(expr, opts)
  opts = opts or {}
  check_keys(opts, { name = true }, "schema.check")
  return item("check", { name = opts.name, expr = check_string(expr, "schema.check", "expression") })
end

-- schema.foreign_key(columns, "table(columns)" [, { name =, on_delete =, on_update = }])
function M.foreign_key(columns, references, opts)
  opts = opts or {}
  check_keys(opts, { name = true, on_delete = true, on_update = true }, "schema.foreign_key")
  local rs, rt, rc = parse_reference(references, "schema.foreign_key")
  return item("fk", {
    name = opts.name,
    columns = string_list(columns, "schema.foreign_key", "columns"),
    ref_schema = rs, ref_table = rt, ref_columns = rc,
    on_delete = fk_action(opts.on_delete, "schema.foreign_key", "on_delete"),
    on_update = fk_action(opts.on_update, "schema.foreign_key", "on_update"),
  })
end

-- ---- table constraints written as SQL ("UNIQUE (a, b)", as op.create_table takes) ----

-- A reader of one table constraint's tokens (luamig.sqltext's); bad() when it cannot.
local function constraint_reader(sql, bad)
  local toks = S.tokens(sql)
  for _, t in ipairs(toks) do if t.open then bad() end end
  local r = { i = 1, toks = toks }
  function r.kw(k)                    -- consumes the bare word k when it comes next
    local t = toks[r.i]
    if t and t.k == "word" and t.v == k then r.i = r.i + 1 return true end
    return false
  end
  -- A name, as written (a quoted one without its quotes), from tokens a to b.
  local function name_of(a, b)
    if a == b and toks[a].k == "ident" then return toks[a].v end
    return a <= b and sql:sub(toks[a].s, toks[b].e) or ""
  end
  function r.name()                   -- the name next, consumed (nil when none)
    local t = toks[r.i]
    if not t or (t.k ~= "word" and t.k ~= "ident") then return nil end
    r.i = r.i + 1
    return name_of(r.i - 1, r.i - 1)
  end
  -- The "(...)" next, consumed: its text inside and the names it lists.
  function r.group()
    local open, depth = r.i, 0
    if not toks[open] or toks[open].k ~= "(" then bad() end
    repeat
      local k = toks[r.i] and toks[r.i].k
      if k == "(" then depth = depth + 1 elseif k == ")" then depth = depth - 1 end
      r.i = r.i + 1
    until depth == 0 or not toks[r.i]
    if depth ~= 0 then bad() end
    local close, names, first, nested = r.i - 1, {}, open + 1, 0
    for j = open + 1, close do
      local k = toks[j].k
      if k == "(" then nested = nested + 1 elseif k == ")" and j < close then nested = nested - 1 end
      if (k == "," and nested == 0) or j == close then
        names[#names + 1] = name_of(first, j - 1)
        first = j + 1
      end
    end
    return sql:sub(toks[open].e + 1, toks[close].s - 1), names
  end
  -- The reference next ("audit.users (id)"), consumed, as written.
  function r.reference()
    local first = r.i
    while toks[r.i] and (toks[r.i].k == "word" or toks[r.i].k == "ident" or toks[r.i].k == ".") do
      r.i = r.i + 1
    end
    if r.i == first then bad() end
    if toks[r.i] and toks[r.i].k == "(" then r.group() end
    return sql:sub(toks[first].s, toks[r.i - 1].e)
  end
  return r
end

-- ON DELETE/ON UPDATE actions after a foreign key's reference, into obj.
local function fk_actions(r, obj, what, bad)
  while r.toks[r.i] do
    if not r.kw("on") then bad() end
    local key = r.kw("delete") and "on_delete" or r.kw("update") and "on_update" or bad()
    local words = {}
    while r.toks[r.i] and r.toks[r.i].k == "word" and r.toks[r.i].v ~= "on" do
      words[#words + 1] = r.toks[r.i].v
      r.i = r.i + 1
    end
    obj[key] = fk_action(table.concat(words, " "), what, key)
  end
end

local function parse_constraint(sql, what)
  local function bad()
    fail("%s: cannot read the table constraint \"%s\": write PRIMARY KEY (...), UNIQUE (...), "
         .. "CHECK (...) or FOREIGN KEY (...) REFERENCES t (...), optionally after CONSTRAINT name, "
         .. "or use schema.unique/check/foreign_key/primary_key", what, sql)
  end
  local r = constraint_reader(sql, bad)
  if #r.toks == 0 then bad() end
  local name
  if r.kw("constraint") then name = r.name() or bad() end
  local obj
  if r.kw("primary") then
    if not r.kw("key") then bad() end
    obj = item("pk", { columns = select(2, r.group()) })
  elseif r.kw("unique") then
    obj = item("unique", { columns = select(2, r.group()) })
  elseif r.kw("check") then
    obj = item("check", { expr = (r.group()) })
  elseif r.kw("foreign") then
    if not r.kw("key") then bad() end
    local cols = select(2, r.group())
    if not r.kw("references") then bad() end
    local rs, rt, rc = parse_reference(r.reference(), what)
    obj = item("fk", { columns = cols, ref_schema = rs, ref_table = rt, ref_columns = rc })
    fk_actions(r, obj, what, bad)
  else
    bad()
  end
  if r.toks[r.i] then bad() end
  obj.name = name
  return obj
end

-- ---- the model ----

local Model = {}
Model.__index = Model

local COLUMN_FIELDS = {
  nullable = true, default = true, primary_key = true, unique = true, index = true,
  references = true, on_delete = true, on_update = true, comment = true, check = true,
  identity = true, generated = true,
}

local TABLE_FIELDS = { schema = true, comment = true }

-- The distinct column names (keys of colset) an expression mentions, in order.
function M.columns_in(expr, colset)
  local seen, list, toks = {}, {}, S.tokens(expr)
  for i, t in ipairs(toks) do
    local name = t.k == "ident" and t.v or t.k == "word" and expr:sub(t.s, t.e)
    local qualified = i > 1 and toks[i - 1].k == "."
    if name and not qualified and colset[name] and not seen[name] then
      seen[name] = true
      list[#list + 1] = name
    end
  end
  return list
end

function M.new()
  return setmetatable({ tables = {}, enums = {}, schemas = {}, by_key = {}, enum_by_key = {} }, Model)
end

local function key_of(schema_name, name) return (schema_name or "") .. "." .. name end

function Model:schema(name)
  check_name(name, "schema", "schema name")
  for _, s in ipairs(self.schemas) do if s == name then return self end end
  self.schemas[#self.schemas + 1] = name
  return self
end

-- m:enum(name, values [, { schema = }])
function Model:enum(name, values, opts)
  local what = ("enum %s"):format(tostring(name))
  check_name(name, what, "enum name")
  opts = opts or {}
  check_keys(opts, { schema = true }, what)
  if type(values) ~= "table" or #values == 0 then fail("%s: needs a list of values", what) end
  local seen, list = {}, {}
  for i, v in ipairs(values) do
    check_string(v, what, "value")
    if seen[v] then fail("%s: value '%s' appears twice", what, v) end
    seen[v] = true
    list[i] = v
  end
  if opts.schema then self:schema(opts.schema) end
  local key = key_of(opts.schema, name)
  if self.enum_by_key[key] then fail("%s: defined twice", what) end
  local e = { name = name, schema = opts.schema, values = list }
  self.enums[#self.enums + 1] = e
  self.enum_by_key[key] = e
  return e
end

local function check_column(it, i, t, what)
  local cname = it[1]
  if type(cname) ~= "string" then fail("%s: column #%d needs a name", what, i) end
  local cwhat = ("%s: column %s"):format(what, cname)
  check_name(cname, cwhat, "column name")
  check_keys(it, COLUMN_FIELDS, cwhat)
  if type(it[2]) ~= "string" or it[2] == "" then
    fail("%s: needs a type (a string such as \"text\")", cwhat)
  end
  if t.col[cname] then fail("%s: defined twice", cwhat) end
  for _, k in ipairs { "nullable", "primary_key", "unique", "index" } do
    if it[k] ~= nil and type(it[k]) ~= "boolean" then
      fail("%s: %s must be a boolean (got %s)", cwhat, k, type(it[k]))
    end
  end
  if it.primary_key and it.nullable == true then
    fail("%s: a primary key cannot be nullable", cwhat)
  end
  return cname, cwhat
end

-- The column table it (item i of table t) into t; the keys it declares into pending
-- (its primary key column into pk_cols).
local function add_column(t, it, i, what, pending, pk_cols)
  local cname, cwhat = check_column(it, i, t, what)
  local identity = it.identity
  if identity == true then identity = "by default" end
  if identity ~= nil and identity ~= "always" and identity ~= "by default" then
    fail("%s: identity must be true, \"by default\" or \"always\"", cwhat)
  end
  local c = {
    name = cname, type = it[2], nullable = it.nullable, default = default_sql(it.default, cwhat),
    identity = identity, comment = it.comment,
    generated = it.generated ~= nil and check_string(it.generated, cwhat, "generated") or nil,
  }
  if c.comment ~= nil then check_string(c.comment, cwhat, "comment") end
  t.columns[#t.columns + 1] = c
  t.col[cname] = c
  if it.primary_key then pk_cols[#pk_cols + 1] = cname end
  if it.unique then pending[#pending + 1] = item("unique", { columns = { cname } }) end
  if it.index then pending[#pending + 1] = item("index", { columns = { cname } }) end
  if it.check then
    pending[#pending + 1] = item("check", { expr = check_string(it.check, cwhat, "check") })
  end
  if it.references then
    local rs, rt, rc = parse_reference(it.references, cwhat)
    pending[#pending + 1] = item("fk", {
      columns = { cname }, ref_schema = rs, ref_table = rt, ref_columns = rc,
      on_delete = fk_action(it.on_delete, cwhat, "on_delete"),
      on_update = fk_action(it.on_update, cwhat, "on_update"),
    })
  elseif it.on_delete or it.on_update then
    fail("%s: on_delete/on_update need references", cwhat)
  end
end

-- t's primary key: the columns marked primary_key, or a primary key constraint.
local function add_primary_key(t, pending, pk_cols, what, claim, known)
  if #pk_cols > 0 then t.pk = { columns = pk_cols } end
  for _, obj in ipairs(pending) do
    if obj.kind == "pk" then
      if t.pk and t.pk.name == nil and #pk_cols > 0 then
        fail("%s: two primary keys (primary_key = true on columns and a primary key constraint)", what)
      end
      known(obj.columns, "primary key")
      t.pk = { name = obj.name, columns = obj.columns }
    end
  end
  if t.pk then
    t.pk.unnamed = t.pk.name == nil or nil
    t.pk.name = t.pk.name or M.default_name(t.name, "pkey")
    claim(t.pk, "pk")
    for _, c in ipairs(t.pk.columns) do t.col[c].primary_key = true end
  end
end

-- The constraints and indexes of table t (pending: those its items declare), each
-- named: the name PostgreSQL would give it when the model gives none.
local function add_constraints(t, pending, pk_cols, what)
  local name, colset, names = t.name, t.col, {}
  local function claim(obj, kind)
    if names[obj.name] then fail("%s: two constraints or indexes are named %s", what, obj.name) end
    names[obj.name] = kind
  end
  local function known(cols, label)
    for _, c in ipairs(cols) do
      if not colset[c] then fail("%s: %s names no column '%s'", what, label, c) end
    end
  end
  add_primary_key(t, pending, pk_cols, what, claim, known)
  for _, obj in ipairs(pending) do
    local kind = obj.kind
    local unnamed = obj.name == nil or nil
    if kind == "unique" then
      known(obj.columns, "unique constraint")
      local u = { name = obj.name or M.default_name(name, "key", obj.columns), columns = obj.columns,
                  unnamed = unnamed }
      claim(u, kind)
      t.uniques[#t.uniques + 1] = u
    elseif kind == "check" then
      local cols = M.columns_in(obj.expr, colset)
      local ck = { name = obj.name or M.default_name(name, "check", #cols == 1 and cols[1] or nil),
                   expr = obj.expr, unnamed = unnamed }
      claim(ck, kind)
      t.checks[#t.checks + 1] = ck
    elseif kind == "fk" then
      known(obj.columns, "foreign key")
      if obj.ref_columns and #obj.ref_columns ~= #obj.columns then
        fail("%s: foreign key (%s) names %d referenced columns", what,
             table.concat(obj.columns, ", "), #obj.ref_columns)
      end
      local fk = { name = obj.name or M.default_name(name, "fkey", obj.columns), columns = obj.columns,
                   ref_schema = obj.ref_schema, ref_table = obj.ref_table,
                   ref_columns = obj.ref_columns,
                   on_delete = obj.on_delete, on_update = obj.on_update, unnamed = unnamed }
      claim(fk, kind)
      t.fks[#t.fks + 1] = fk
    elseif kind == "index" then
      local ix = { name = obj.name or M.default_name(name, "idx", obj.columns), columns = obj.columns,
                   unique = obj.unique, where = obj.where, using = obj.using, unnamed = unnamed }
      claim(ix, kind)
      t.indexes[#t.indexes + 1] = ix
    end
  end
end

-- m:table(name, { columns..., constraints..., schema =, comment = } [, { schema =, comment = }])
function Model:table(name, items, opts)
  local what = ("table %s"):format(tostring(name))
  check_name(name, what, "table name")
  if type(items) ~= "table" then fail("%s: needs a list of columns", what) end
  check_keys(items, TABLE_FIELDS, what)
  opts = opts or {}
  check_keys(opts, TABLE_FIELDS, what)
  local schema_name = opts.schema or items.schema
  local comment = opts.comment or items.comment
  if schema_name ~= nil then check_name(schema_name, what, "schema"); self:schema(schema_name) end
  if comment ~= nil then check_string(comment, what, "comment") end
  local key = key_of(schema_name, name)
  if self.by_key[key] then fail("%s: defined twice", what) end

  local t = { name = name, schema = schema_name, comment = comment, columns = {}, col = {},
              uniques = {}, checks = {}, fks = {}, indexes = {} }
  local pending, pk_cols = {}, {}
  for i, it in ipairs(items) do
    if type(it) == "string" then
      pending[#pending + 1] = parse_constraint(it, what)
    elseif getmetatable(it) == Item then
      pending[#pending + 1] = it
    elseif type(it) == "table" then
      add_column(t, it, i, what, pending, pk_cols)
    else
      fail("%s: item #%d must be a column table, a constraint or a SQL string (got %s)",
           what, i, type(it))
    end
  end
  if #t.columns == 0 then fail("%s: needs at least one column", what) end
  add_constraints(t, pending, pk_cols, what)
  self.tables[#self.tables + 1] = t
  self.by_key[key] = t
  return t
end

-- m:index(name, table, columns [, { unique =, where =, using =, schema = }]), as op.create_index.
function Model:index(name, table_name, columns, opts)
  opts = opts or {}
  local schema_name = opts.schema
  local t = self.by_key[key_of(schema_name, table_name)]
  if not t then fail("index %s: no table %s in the models (define the table first)",
                     tostring(name), tostring(table_name)) end
  local o = {}
  for k, v in pairs(opts) do if k ~= "schema" then o[k] = v end end
  local obj = M.index(name, columns, o)
  for _, ix in ipairs(t.indexes) do
    if ix.name == obj.name then fail("index %s: defined twice", obj.name) end
  end
  for _, c in ipairs(obj.columns) do
    if not t.col[c] and not c:find("[%(%s]") then
      fail("index %s: table %s has no column '%s'", obj.name, table_name, c)
    end
  end
  t.indexes[#t.indexes + 1] = { name = obj.name, columns = obj.columns, unique = obj.unique,
                                where = obj.where, using = obj.using }
  return self
end

-- true when v is a model built by schema.new() (what a models module must return).
function M.is_model(v)
  return getmetatable(v) == Model
end

return M

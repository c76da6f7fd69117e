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
local M = {}

local NAMEDATALEN = 64

local function fail(level, fmt, ...)
  error(("luamig.schema: " .. fmt):format(...), level + 1)
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

local FK_ACTIONS = { cascade = true, restrict = true, ["set null"] = true,
                     ["set default"] = true, ["no action"] = true }

local function fk_action(v, what, key)
  if v == nil then return nil end
  local s = type(v) == "string" and v:lower():gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if not s or not FK_ACTIONS[s] then
    fail(4, "%s: %s must be one of 'cascade', 'restrict', 'set null', 'set default', "
         .. "'no action' (got %s)", what, key, tostring(v))
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
  fail(4, "%s: default must be a SQL expression string, a number or a boolean (got %s)",
       what, type(v))
end

local function check_string(v, what, label)
  if type(v) ~= "string" or v == "" then
    fail(4, "%s: %s must be a non-empty string (got %s)", what, label, type(v))
  end
  if v:find("\0", 1, true) then fail(4, "%s: %s contains a NUL byte", what, label) end
  return v
end

local function check_name(v, what, label)
  check_string(v, what, label)
  if #v > NAMEDATALEN - 1 then
    fail(4, "%s: %s \"%s\" is longer than 63 bytes", what, label, v)
  end
  return v
end

local function string_list(v, what, label)
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" or #v == 0 then
    fail(4, "%s: %s must be a non-empty list of strings", what, label)
  end
  local out = {}
  for i, s in ipairs(v) do out[i] = check_string(s, what, label) end
  return out
end

local function check_keys(t, allowed, what)
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= #t) and not allowed[k] then
      fail(4, "%s: unknown field '%s'", what, tostring(k))
    end
  end
end

-- "users(id)", "audit.users (id, org)", "users" -> schema, table, columns (nil: its primary key).
local function parse_reference(ref, what)
  check_string(ref, what, "references")
  local head, cols = ref:match("^%s*(.-)%s*%((.*)%)%s*$")
  head = head or ref:match("^%s*(.-)%s*$")
  local function unquote(s)
    s = s:match("^%s*(.-)%s*$")
    return s:match('^"(.*)"$') or s
  end
  local schema_name, table_name = head:match('^("[^"]+")%.(.+)$')
  if not schema_name then schema_name, table_name = head:match("^([^.\"]+)%.(.+)$") end
  if not schema_name then table_name = head end
  if table_name == "" then fail(4, "%s: references \"%s\" names no table", what, ref) end
  local list
  if cols then
    list = {}
    for c in cols:gmatch("[^,]+") do list[#list + 1] = unquote(c) end
    if #list == 0 then fail(4, "%s: references \"%s\" names no column", what, ref) end
  end
  return schema_name and unquote(schema_name), unquote(table_name), list
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

-- schema.unique(columns [, { name = }])
function M.unique(columns, opts)
  opts = opts or {}
  check_keys(opts, { name = true }, "schema.unique")
  return item("unique", { name = opts.name, columns = string_list(columns, "schema.unique", "columns") })
end

-- schema.primary_key(columns [, { name = }])
function M.primary_key(columns, opts)
  opts = opts or {}
  check_keys(opts, { name = true }, "schema.primary_key")
  return item("pk", { name = opts.name, columns = string_list(columns, "schema.primary_key", "columns") })
end

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

-- A tiny scanner: words, quoted names and parenthesised groups.
local function scan(s)
  local pos, out = 1, {}
  while true do
    pos = s:find("%S", pos)
    if not pos then break end
    local c = s:sub(pos, pos)
    if c == '"' then
      local e = pos + 1
      while true do
        local q = s:find('"', e, true)
        if not q then return nil end
        if s:sub(q + 1, q + 1) == '"' then e = q + 2 else e = q break end
      end
      out[#out + 1] = { word = s:sub(pos + 1, e - 1):gsub('""', '"'), quoted = true }
      pos = e + 1
    elseif c == "(" then
      local depth, e, quote = 0, pos, nil
      while e <= #s do
        local ch = s:sub(e, e)
        if quote then
          if ch == quote then quote = nil end
        elseif ch == "'" or ch == '"' then quote = ch
        elseif ch == "(" then depth = depth + 1
        elseif ch == ")" then depth = depth - 1; if depth == 0 then break end
        end
        e = e + 1
      end
      if depth ~= 0 then return nil end
      out[#out + 1] = { group = s:sub(pos + 1, e - 1) }
      pos = e + 1
    else
      local w = s:match("^[^%s%(]+", pos)
      out[#out + 1] = { word = w }
      pos = pos + #w
    end
  end
  return out
end

local function names_in(group)
  local list = {}
  for part in (group .. ","):gmatch("%s*(.-)%s*,") do
    list[#list + 1] = part:match('^"(.*)"$') and part:sub(2, -2):gsub('""', '"') or part
  end
  return list
end

local function parse_constraint(sql, what)
  local toks = scan(sql)
  local function bad()
    fail(5, "%s: cannot read the table constraint \"%s\": write PRIMARY KEY (...), UNIQUE (...), "
         .. "CHECK (...) or FOREIGN KEY (...) REFERENCES t (...), optionally after CONSTRAINT name, "
         .. "or use schema.unique/check/foreign_key/primary_key", what, sql)
  end
  if not toks or #toks == 0 then bad() end
  local i, name = 1, nil
  local function kw(k)
    local t = toks[i]
    if t and t.word and not t.quoted and t.word:lower() == k then i = i + 1 return true end
    return false
  end
  if kw("constraint") then
    name = toks[i] and toks[i].word
    if not name then bad() end
    i = i + 1
  end
  local function group()
    local t = toks[i]
    if not (t and t.group) then bad() end
    i = i + 1
    return t.group
  end
  local obj
  if kw("primary") then
    if not kw("key") then bad() end
    obj = item("pk", { columns = names_in(group()) })
  elseif kw("unique") then
    obj = item("unique", { columns = names_in(group()) })
  elseif kw("check") then
    obj = item("check", { expr = group() })
  elseif kw("foreign") then
    if not kw("key") then bad() end
    local cols = names_in(group())
    if not kw("references") then bad() end
    local ref = toks[i] and toks[i].word
    if not ref then bad() end
    if toks[i].quoted then ref = '"' .. ref .. '"' end
    i = i + 1
    if toks[i] and toks[i].group then ref = ref .. "(" .. group() .. ")" end
    local rs, rt, rc = parse_reference(ref, what)
    obj = item("fk", { columns = cols, ref_schema = rs, ref_table = rt, ref_columns = rc })
    while toks[i] do
      if not kw("on") then bad() end
      local key = kw("delete") and "on_delete" or kw("update") and "on_update" or bad()
      local words = {}
      while toks[i] and toks[i].word and not (toks[i].word:lower() == "on") do
        words[#words + 1] = toks[i].word
        i = i + 1
      end
      obj[key] = fk_action(table.concat(words, " "), what, key)
    end
  else
    bad()
  end
  if toks[i] then bad() end
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
  local seen, list = {}, {}
  local s = expr:gsub("'[^']*'", " ")
  for q, w in s:gmatch('()([%a_][%w_$]*)') do
    local prev = q > 1 and s:sub(q - 1, q - 1) or ""
    if prev ~= "." and colset[w] and not seen[w] then seen[w] = true; list[#list + 1] = w end
  end
  for w in s:gmatch('"([^"]+)"') do
    if colset[w] and not seen[w] then seen[w] = true; list[#list + 1] = w end
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
  if type(values) ~= "table" or #values == 0 then fail(2, "%s: needs a list of values", what) end
  local seen, list = {}, {}
  for i, v in ipairs(values) do
    check_string(v, what, "value")
    if seen[v] then fail(2, "%s: value '%s' appears twice", what, v) end
    seen[v] = true
    list[i] = v
  end
  if opts.schema then self:schema(opts.schema) end
  local key = key_of(opts.schema, name)
  if self.enum_by_key[key] then fail(2, "%s: defined twice", what) end
  local e = { name = name, schema = opts.schema, values = list }
  self.enums[#self.enums + 1] = e
  self.enum_by_key[key] = e
  return e
end

-- m:table(name, { columns..., constraints..., schema =, comment = } [, { schema =, comment = }])
function Model:table(name, items, opts)
  local what = ("table %s"):format(tostring(name))
  check_name(name, what, "table name")
  if type(items) ~= "table" then fail(2, "%s: needs a list of columns", what) end
  check_keys(items, TABLE_FIELDS, what)
  opts = opts or {}
  check_keys(opts, TABLE_FIELDS, what)
  local schema_name = opts.schema or items.schema
  local comment = opts.comment or items.comment
  if schema_name ~= nil then check_name(schema_name, what, "schema"); self:schema(schema_name) end
  if comment ~= nil then check_string(comment, what, "comment") end
  local key = key_of(schema_name, name)
  if self.by_key[key] then fail(2, "%s: defined twice", what) end

  local t = { name = name, schema = schema_name, comment = comment, columns = {}, col = {},
              uniques = {}, checks = {}, fks = {}, indexes = {} }
  local pending, pk_cols = {}, {}
  for i, it in ipairs(items) do
    if type(it) == "string" then
      pending[#pending + 1] = parse_constraint(it, what)
    elseif getmetatable(it) == Item then
      pending[#pending + 1] = it
    elseif type(it) == "table" then
      local cname = it[1]
      if type(cname) ~= "string" then fail(2, "%s: column #%d needs a name", what, i) end
      local cwhat = ("%s: column %s"):format(what, cname)
      check_name(cname, cwhat, "column name")
      check_keys(it, COLUMN_FIELDS, cwhat)
      if type(it[2]) ~= "string" or it[2] == "" then
        fail(2, "%s: needs a type (a string such as \"text\")", cwhat)
      end
      if t.col[cname] then fail(2, "%s: defined twice", cwhat) end
      for _, k in ipairs { "nullable", "primary_key", "unique", "index" } do
        if it[k] ~= nil and type(it[k]) ~= "boolean" then
          fail(2, "%s: %s must be a boolean (got %s)", cwhat, k, type(it[k]))
        end
      end
      local identity = it.identity
      if identity == true then identity = "by default" end
      if identity ~= nil and identity ~= "always" and identity ~= "by default" then
        fail(2, "%s: identity must be true, \"by default\" or \"always\"", cwhat)
      end
      if it.primary_key and it.nullable == true then
        fail(2, "%s: a primary key cannot be nullable", cwhat)
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
        fail(2, "%s: on_delete/on_update need references", cwhat)
      end
    else
      fail(2, "%s: item #%d must be a column table, a constraint or a SQL string (got %s)",
           what, i, type(it))
    end
  end
  if #t.columns == 0 then fail(2, "%s: needs at least one column", what) end

  if #pk_cols > 0 then t.pk = { columns = pk_cols } end
  local colset = t.col
  local names = {}
  local function claim(obj, kind)
    if names[obj.name] then fail(3, "%s: two constraints or indexes are named %s", what, obj.name) end
    names[obj.name] = kind
  end
  local function known(cols, label)
    for _, c in ipairs(cols) do
      if not colset[c] then fail(3, "%s: %s names no column '%s'", what, label, c) end
    end
  end
  for _, obj in ipairs(pending) do
    if obj.kind == "pk" then
      if t.pk and t.pk.name == nil and #pk_cols > 0 then
        fail(2, "%s: two primary keys (primary_key = true on columns and a primary key constraint)", what)
      end
      known(obj.columns, "primary key")
      t.pk = { name = obj.name, columns = obj.columns }
    end
  end
  if t.pk then
    t.pk.unnamed = t.pk.name == nil or nil
    t.pk.name = t.pk.name or M.default_name(name, "pkey")
    claim(t.pk, "pk")
    for _, c in ipairs(t.pk.columns) do t.col[c].primary_key = true end
  end
  for _, obj in ipairs(pending) do
    local kind = obj.kind
    if kind == "unique" then
      known(obj.columns, "unique constraint")
      local u = { name = obj.name or M.default_name(name, "key", obj.columns), columns = obj.columns,
                  unnamed = obj.name == nil or nil }
      claim(u, kind)
      t.uniques[#t.uniques + 1] = u
    elseif kind == "check" then
      local cols = M.columns_in(obj.expr, colset)
      local ck = { name = obj.name or M.default_name(name, "check", #cols == 1 and cols[1] or nil),
                   expr = obj.expr, unnamed = obj.name == nil or nil }
      claim(ck, kind)
      t.checks[#t.checks + 1] = ck
    elseif kind == "fk" then
      known(obj.columns, "foreign key")
      if obj.ref_columns and #obj.ref_columns ~= #obj.columns then
        fail(2, "%s: foreign key (%s) names %d referenced columns", what,
             table.concat(obj.columns, ", "), #obj.ref_columns)
      end
      local fk = { name = obj.name or M.default_name(name, "fkey", obj.columns), columns = obj.columns,
                   ref_schema = obj.ref_schema, ref_table = obj.ref_table,
                   ref_columns = obj.ref_columns,
                   on_delete = obj.on_delete, on_update = obj.on_update,
                   unnamed = obj.name == nil or nil }
      claim(fk, kind)
      t.fks[#t.fks + 1] = fk
    elseif kind == "index" then
      local ix = { name = obj.name or M.default_name(name, "idx", obj.columns), columns = obj.columns,
                   unique = obj.unique, where = obj.where, using = obj.using,
                   unnamed = obj.name == nil or nil }
      claim(ix, kind)
      t.indexes[#t.indexes + 1] = ix
    end
  end
  self.tables[#self.tables + 1] = t
  self.by_key[key] = t
  return t
end

-- m:index(name, table, columns [, { unique =, where =, using =, schema = }]), as op.create_index.
function Model:index(name, table_name, columns, opts)
  opts = opts or {}
  local schema_name = opts.schema
  local t = self.by_key[key_of(schema_name, table_name)]
  if not t then fail(2, "index %s: no table %s in the models (define the table first)",
                     tostring(name), tostring(table_name)) end
  local o = {}
  for k, v in pairs(opts) do if k ~= "schema" then o[k] = v end end
  local obj = M.index(name, columns, o)
  for _, ix in ipairs(t.indexes) do
    if ix.name == obj.name then fail(2, "index %s: defined twice", obj.name) end
  end
  for _, c in ipairs(obj.columns) do
    if not t.col[c] and not c:find("[%(%s]") then
      fail(2, "index %s: table %s has no column '%s'", obj.name, table_name, c)
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

-- luamig.lint_actions: what an op call or a SQL statement does, for the
-- safety lint, as a list of actions: { kind = "add_column", table =, column =,
-- type =, not_null =, default = }, { kind = "set_not_null", ... },
-- { kind = "create_index", concurrently = }, ... (see `statement` and `from_op`).
--
-- SQL given to op.execute is split into statements (comments, quoted strings
-- and dollar quotes respected); the kinds the lint has rules for become the
-- same actions as the op calls: CREATE/DROP TABLE, the ALTER TABLE actions,
-- CREATE/DROP INDEX, REINDEX, LOCK, VACUUM, CLUSTER, CREATE/DROP TYPE.
-- Anything else is { kind = "other", ddl = true|false }.
local M = {}

local function lower(s) return s:lower() end

-- Tokens: { k = "word"|"ident"|"str"|"num"|"param"|"op", v = value, s = start, e = end }.
-- Bare words are folded to lower case, as PostgreSQL does; quoted identifiers keep theirs.
local function tokenize(sql)
  local toks, i, n = {}, 1, #sql
  local function push(k, v, s, e) toks[#toks + 1] = { k = k, v = v, s = s, e = e } end
  while i <= n do
    local c, c2 = sql:sub(i, i), sql:sub(i, i + 1)
    if c:match("%s") then
      i = i + 1
    elseif c2 == "--" then
      i = (sql:find("\n", i, true) or n) + 1
    elseif c2 == "/*" then            -- comments nest in PostgreSQL
      local depth, j = 1, i + 2
      while j <= n and depth > 0 do
        local d = sql:sub(j, j + 1)
        if d == "/*" then depth, j = depth + 1, j + 2
        elseif d == "*/" then depth, j = depth - 1, j + 2
        else j = j + 1 end
      end
      i = j
    elseif c == "'" or (c:match("[eE]") and sql:sub(i + 1, i + 1) == "'") then
      local esc = c ~= "'"
      local j = esc and i + 2 or i + 1
      while j <= n do
        local d = sql:sub(j, j)
        if esc and d == "\\" then j = j + 2
        elseif d == "'" and sql:sub(j + 1, j + 1) == "'" then j = j + 2
        elseif d == "'" then break
        else j = j + 1 end
      end
      push("str", sql:sub(i, j), i, j)
      i = j + 1
    elseif c == '"' then
      local j = i + 1
      while j <= n do
        if sql:sub(j, j) == '"' then
          if sql:sub(j + 1, j + 1) ~= '"' then break end
          j = j + 1
        end
        j = j + 1
      end
      push("ident", sql:sub(i + 1, j - 1):gsub('""', '"'), i, j)
      i = j + 1
    elseif c == "$" and (sql:match("^%$[%a_][%w_]*%$", i) or c2 == "$$") then
      local tag = sql:match("^%$[%a_]*[%w_]*%$", i)
      local close = sql:find(tag, i + #tag, true)
      local j = close and close + #tag - 1 or n
      push("str", sql:sub(i, j), i, j)
      i = j + 1
    elseif sql:match("^%$%d", i) then
      local j = select(2, sql:find("^%$%d+", i))
      push("param", sql:sub(i, j), i, j)
      i = j + 1
    elseif c:match("[%a_\128-\255]") then
      local j = select(2, sql:find("^[%w_$\128-\255]+", i))
      push("word", lower(sql:sub(i, j)), i, j)
      i = j + 1
    elseif c:match("%d") then
      local j = select(2, sql:find("^[%d%.eE]+", i))
      push("num", sql:sub(i, j), i, j)
      i = j + 1
    else
      push("op", c, i, i)
      i = i + 1
    end
  end
  return toks
end

-- A cursor over one statement's tokens.
local Cursor = {}
Cursor.__index = Cursor

local function cursor(sql, toks) return setmetatable({ sql = sql, t = toks, i = 1 }, Cursor) end

function Cursor:peek(k) local t = self.t[self.i + (k or 0)]; return t and t.v, t end
function Cursor:done() return self.i > #self.t end
function Cursor:next() local t = self.t[self.i]; self.i = self.i + 1; return t and t.v, t end
-- Is the next token the bare word w (or, with more words, the sequence)?
function Cursor:is(...)
  for k, w in ipairs { ... } do
    local t = self.t[self.i + k - 1]
    if not t or t.k ~= "word" or t.v ~= w then return false end
  end
  return true
end
-- Consumes the words when they come next; returns whether they did.
function Cursor:accept(...)
  if not self:is(...) then return false end
  self.i = self.i + select("#", ...)
  return true
end
-- Skips tokens up to the matching ")" when at "(".
function Cursor:skip_parens()
  if self:peek() ~= "(" then return end
  local depth = 0
  repeat
    local v = self:next()
    if v == "(" then depth = depth + 1 elseif v == ")" then depth = depth - 1 end
  until depth == 0 or self:done()
end
-- A possibly qualified name: returns its parts (schema, name) or nil.
function Cursor:name()
  local parts = {}
  repeat
    local _, t = self:peek()
    if not t or (t.k ~= "word" and t.k ~= "ident") then break end
    self.i = self.i + 1
    parts[#parts + 1] = t.v
  until not (self:peek() == "." and self:next())
  if #parts == 0 then return nil end
  return parts[#parts - 1], parts[#parts]
end
-- The source text from the current token up to (not including) the first token,
-- at parenthesis depth 0, that is "," or one of the words in stop; advances past it.
function Cursor:text_until(stop)
  local first, last, depth = self.i, nil, 0
  while not self:done() do
    local v, t = self:peek()
    if depth == 0 and (v == "," or (t.k == "word" and stop[v])) then break end
    if v == "(" then depth = depth + 1 elseif v == ")" then depth = depth - 1 end
    if depth < 0 then break end
    last = self.i
    self.i = self.i + 1
  end
  if not last then return nil end
  return self.sql:sub(self.t[first].s, self.t[last].e)
end
-- Skips to the "," ending this ALTER TABLE action (depth 0) or the end.
function Cursor:skip_action()
  self:text_until({})
end

-- The key the lint uses for a relation: "name", or "schema.name" outside public.
function M.key(schema, name)
  if name == nil then return nil end
  if schema and schema ~= "public" and schema ~= "" then return schema .. "." .. name end
  return name
end

local COLUMN_STOP = { ["not"] = true, null = true, default = true, primary = true, unique = true,
  references = true, check = true, constraint = true, collate = true, generated = true }

-- A column definition after its name: { type =, not_null =, default =, ... }.
local function column_def(c)
  local col = { type = c:text_until(COLUMN_STOP) }
  while not c:done() and c:peek() ~= "," and c:peek() ~= ")" do
    if c:accept("not", "null") then col.not_null = true
    elseif c:accept("null") then col.not_null = false
    elseif c:accept("default") then col.default = c:text_until(COLUMN_STOP)
    elseif c:accept("primary", "key") then col.primary_key = true
    elseif c:accept("unique") then col.unique = true
    elseif c:accept("references") then col.references = true; c:text_until(COLUMN_STOP)
    elseif c:accept("check") then col.check = c:text_until(COLUMN_STOP)
    elseif c:accept("generated") then col.generated = true; c:text_until(COLUMN_STOP)
    elseif c:accept("constraint") then c:name()
    else c:next() end
  end
  return col
end

local CONSTRAINT_START = { constraint = true, check = true, foreign = true, unique = true,
  primary = true, exclude = true }

-- "(a, b)" as { "a", "b" } (nil when not at "(").
function Cursor:name_list()
  if self:peek() ~= "(" then return nil end
  self:next()
  local list = {}
  while not self:done() and self:peek() ~= ")" do
    local _, n = self:name()
    if n then list[#list + 1] = n else self:next() end
    if self:peek() == "," then self:next() end
  end
  self:next()
  return list
end

-- ADD [CONSTRAINT name] CHECK|FOREIGN KEY|UNIQUE|PRIMARY KEY|EXCLUDE ...
local function table_constraint(c, table)
  local a = { kind = "add_constraint", table = table }
  if c:accept("constraint") then a.name = select(2, c:name()) end
  a.unnamed = a.name == nil
  if c:accept("check") then a.ctype = "check"
  elseif c:accept("foreign", "key") then a.ctype = "foreign"
  elseif c:accept("unique") then a.ctype = "unique"
  elseif c:accept("primary", "key") then a.ctype = "primary"
  elseif c:accept("exclude") then a.ctype = "exclude" end
  if a.ctype == "foreign" or a.ctype == "unique" or a.ctype == "primary" then
    c:accept("nulls", "not", "distinct")
    c:accept("nulls", "distinct")
    a.columns = c:name_list()
  end
  if a.ctype == "check" then
    local _, open = c:peek()
    c:skip_parens()
    local close = c.t[c.i - 1]
    if open and close then a.expr = c.sql:sub(open.s + 1, close.e - 1) end
  end
  while not c:done() and c:peek() ~= "," do
    if c:accept("not", "valid") then a.not_valid = true
    elseif c:accept("using", "index") then a.using_index = true
    elseif c:accept("references") then a.ref_table = M.key(c:name())
    elseif c:peek() == "(" then c:skip_parens()
    else c:next() end
  end
  return a
end

-- One ALTER TABLE action (after the table name), appended to out.
local function alter_action(c, table, out)
  local function add(a) a.table = a.table or table; out[#out + 1] = a end
  if c:accept("add") then
    local v, t = c:peek()
    if t and t.k == "word" and CONSTRAINT_START[v] then
      add(table_constraint(c, table))
      return
    end
    c:accept("column")
    c:accept("if", "not", "exists")
    local _, col = c:name()
    local def = column_def(c)
    def.kind, def.column = "add_column", col
    add(def)
  elseif c:accept("drop") then
    if c:accept("constraint") then
      c:accept("if", "exists")
      add { kind = "drop_constraint", name = select(2, c:name()) }
    else
      c:accept("column")
      c:accept("if", "exists")
      add { kind = "drop_column", column = select(2, c:name()) }
    end
  elseif c:accept("alter") then
    c:accept("column")
    local _, col = c:name()
    if c:accept("set", "data", "type") or c:accept("type") then
      local a = { kind = "alter_type", column = col,
                  type = c:text_until({ collate = true, using = true }) }
      if c:accept("collate") then c:name() end
      if c:accept("using") then a.using = c:text_until({}) end
      add(a)
    elseif c:accept("set", "not", "null") then add { kind = "set_not_null", column = col }
    elseif c:accept("drop", "not", "null") then add { kind = "drop_not_null", column = col }
    elseif c:accept("set", "default") then
      add { kind = "set_default", column = col, default = c:text_until({}) }
    elseif c:accept("drop", "default") then add { kind = "drop_default", column = col }
    else add { kind = "other", ddl = true } end
  elseif c:accept("validate", "constraint") then
    add { kind = "validate_constraint", name = select(2, c:name()) }
  elseif c:accept("rename") then
    if c:accept("to") then
      local schema = table and table:match("^(.*)%.")
      add { kind = "rename_table", to = M.key(schema, select(2, c:name())) }
    elseif c:accept("constraint") then
      add { kind = "other", ddl = true }
    else
      c:accept("column")
      local _, from = c:name()
      c:accept("to")
      add { kind = "rename_column", column = from, to = select(2, c:name()) }
    end
  else
    add { kind = "other", ddl = true }
  end
  c:skip_action()
end

local LOCK_MODES = { "access share", "row share", "row exclusive", "share update exclusive",
  "share row exclusive", "share", "exclusive", "access exclusive" }

-- One statement's actions, appended to out.
local function statement(c, out)
  local function add(a) out[#out + 1] = a end
  local first = c:peek()
  if c:accept("alter", "table") then
    c:accept("if", "exists")
    c:accept("only")
    local table = M.key(c:name())
    if c:peek() == "*" then c:next() end
    repeat alter_action(c, table, out) until not (c:peek() == "," and c:next())
  elseif c:is("create") then
    c:next()
    local unique = c:accept("unique")
    if c:accept("index") then
      local a = { kind = "create_index", unique = unique, concurrently = c:accept("concurrently") }
      c:accept("if", "not", "exists")
      if not c:is("on") then a.name = select(2, c:name()) end
      c:accept("on")
      c:accept("only")
      local schema, name = c:name()
      a.table = M.key(schema, name)
      if a.name then a.name = M.key(schema, a.name) end
      add(a)
      return
    end
    while c:accept("global") or c:accept("local") or c:accept("temporary") or c:accept("temp")
      or c:accept("unlogged") do end
    if c:accept("table") then
      c:accept("if", "not", "exists")
      local a = { kind = "create_table", table = M.key(c:name()), columns = {} }
      if c:peek() == "(" then
        c:next()
        while not c:done() and c:peek() ~= ")" do
          if CONSTRAINT_START[c:peek()] or c:is("like") then
            c:text_until({})
          else
            local _, col = c:name()
            if col then a.columns[#a.columns + 1] = { name = col, def = column_def(c) } end
          end
          if c:peek() == "," then c:next() end
        end
      end
      add(a)
    elseif c:accept("type") then
      local name = M.key(c:name())
      add { kind = "create_type", name = name }
    else
      add { kind = "other", ddl = true }
    end
  elseif c:accept("drop", "table") then
    c:accept("if", "exists")
    repeat add { kind = "drop_table", table = M.key(c:name()) } until not (c:peek() == "," and c:next())
  elseif c:accept("drop", "index") then
    local concurrently = c:accept("concurrently")
    c:accept("if", "exists")
    repeat add { kind = "drop_index", name = M.key(c:name()), concurrently = concurrently }
    until not (c:peek() == "," and c:next())
  elseif c:accept("drop", "type") then
    c:accept("if", "exists")
    add { kind = "drop_type", name = M.key(c:name()) }
  elseif c:accept("reindex") then
    c:skip_parens()
    local target = c:next()
    local a = { kind = "reindex", target = target, concurrently = c:accept("concurrently") }
    a.name = M.key(c:name())
    if target == "table" then a.table = a.name end
    add(a)
  elseif c:accept("lock") then
    c:accept("table")
    c:accept("only")
    local a = { kind = "lock", tables = {}, mode = "access exclusive" }
    repeat
      a.tables[#a.tables + 1] = M.key(c:name())
      if c:peek() == "*" then c:next() end
    until not (c:peek() == "," and c:next())
    if c:accept("in") then
      for _, mode in ipairs(LOCK_MODES) do
        local words = {}
        for w in mode:gmatch("%S+") do words[#words + 1] = w end
        if c:accept(table.unpack(words)) then a.mode = mode end
      end
    end
    add(a)
  elseif c:accept("vacuum") then
    local full = false
    if c:peek() == "(" then
      c:next()
      while not c:done() and c:peek() ~= ")" do
        if c:accept("full") then
          full = not (c:accept("false") or c:accept("off") or c:peek() == "0")
        else
          c:next()
        end
      end
      c:next()
    else
      while c:is("full") or c:is("freeze") or c:is("verbose") or c:is("analyze") or c:is("analyse") do
        if c:next() == "full" then full = true end
      end
    end
    local tables = {}
    while not c:done() do
      local key = M.key(c:name())
      if not key then break end
      tables[#tables + 1] = key
      c:skip_parens()
      if c:peek() == "," then c:next() end
    end
    add { kind = full and "vacuum_full" or "vacuum", tables = tables }
  elseif c:accept("cluster") then
    c:accept("verbose")
    add { kind = "cluster", tables = { M.key(c:name()) } }
  else
    local ddl = first == "create" or first == "alter" or first == "drop" or first == "comment"
      or first == "grant" or first == "revoke" or first == "do"
    add { kind = "other", ddl = ddl, dml = not ddl }
  end
end

-- The actions of every statement in sql, in order.
function M.actions(sql)
  local toks = tokenize(sql)
  local out, stmt = {}, {}
  local function flush()
    if #stmt > 0 then
      local c = cursor(sql, stmt)
      local ok = pcall(statement, c, out)
      if not ok then out[#out + 1] = { kind = "other", ddl = true } end
    end
    stmt = {}
  end
  for _, t in ipairs(toks) do
    if t.k == "op" and t.v == ";" then flush() else stmt[#stmt + 1] = t end
  end
  flush()
  return out
end

-- ---- op calls ----

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
  if type(def.type) == "string" and def.type:lower():find("generated", 1, true) then
    def.generated = true
  end
  return def
end

local function sql_actions(args)
  if type(args[1]) ~= "string" then return { { kind = "other", ddl = true } } end
  return M.actions(args[1])
end

local from_op = {}
local key = M.key

function from_op.create_table(a)
  local o = opts_at(a, 3)
  local t = key(o.schema, a[1])
  local cols = {}
  for _, c in ipairs(type(a[2]) == "table" and a[2] or {}) do
    if type(c) == "table" then
      local col = column_action(t, c)
      cols[#cols + 1] = { name = col.column, def = col }
    end
  end
  return { { kind = "create_table", table = t, columns = cols } }
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
  for _, c in ipairs(opts_at(a, 3)) do cols[#cols + 1] = c end
  return { { kind = "create_index", name = key(o.schema, a[1]), table = key(o.schema, a[2]),
             columns = cols, unique = o.unique,
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
-- Objects outside tables: (name [, ..., opts]) -> { kind, name }.
local function object(kind, opts_index, schema_opt)
  return function(a)
    return { { kind = kind, name = key(schema_opt and opts_at(a, opts_index).schema, a[1]) } }
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
from_op.execute = sql_actions
from_op.query = sql_actions

-- The actions of op.<name>(table.unpack(args)); an op the lint does not know is
-- opaque DDL.
function M.from_call(name, args)
  local f = from_op[name]
  if not f then return { { kind = "other", ddl = true } } end
  local ok, acts = pcall(f, args)
  if not ok or type(acts) ~= "table" then return { { kind = "other", ddl = true } } end
  return acts
end

return M

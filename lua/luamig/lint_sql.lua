-- luamig.lint_sql: what the SQL given to op.execute does, for the safety lint,
-- as the same actions luamig.lint_actions makes of op calls: { kind =
-- "add_column", table =, column =, type =, not_null =, default = }, ...
--
-- The SQL is split into statements (comments, quoted strings, dollar quotes and
-- BEGIN ATOMIC bodies respected); the kinds the lint has rules for become
-- actions: CREATE/DROP TABLE, the ALTER TABLE actions, CREATE/DROP INDEX,
-- REINDEX, LOCK, VACUUM, CLUSTER, CREATE/DROP/ALTER TYPE, TRUNCATE, UPDATE,
-- DELETE, DROP DATABASE and transaction control. Anything else is { kind =
-- "other", ddl = true|false }.
local M = {}

local S = require "luamig.sqltext"

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
    elseif c:accept("generated") then   -- an identity, or a stored generated column
      local g = (c:text_until(COLUMN_STOP) or ""):lower()
      if g:find("identity", 1, true) then col.identity = true else col.generated = true end
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
  elseif c:accept("set") then
    if c:accept("logged") or c:accept("unlogged") then
      add { kind = "table_rewrite", what = "SET " .. c.t[c.i - 1].v:upper() }
    elseif c:accept("tablespace") then
      add { kind = "table_rewrite", what = "SET TABLESPACE", copy = true }
    elseif c:accept("access", "method") then
      add { kind = "table_rewrite", what = "SET ACCESS METHOD" }
    else
      add { kind = "other", ddl = true }
    end
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

-- UPDATE [ONLY] t ... / DELETE FROM [ONLY] t ...: { kind = "update"|"delete", table,
-- where = whether a WHERE (at the statement's own level) limits it }.
local function whole_table_dml(c)
  local a = { kind = c:next() }
  c:accept("from")
  c:accept("only")
  a.table = M.key(c:name())
  local depth = 0
  while not c:done() do
    local v, t = c:next()
    if v == "(" then depth = depth + 1 elseif v == ")" then depth = depth - 1
    elseif depth == 0 and t.k == "word" and v == "where" then a.where = true end
  end
  return a
end

-- The transaction control statement at c ("COMMIT", "ROLLBACK PREPARED", ...), or nil.
-- SAVEPOINT, RELEASE and ROLLBACK TO stay inside the transaction: not these.
local function transaction_control(c)
  local v = c:peek()
  if v == "begin" or v == "commit" or v == "end" or v == "abort" or c:is("start", "transaction")
      or c:is("prepare", "transaction") or (v == "rollback" and not c:is("rollback", "to")) then
    local words = {}
    for k = 0, 1 do
      local w, t = c:peek(k)
      if t and t.k == "word" then words[#words + 1] = w:upper() end
    end
    if words[2] ~= "PREPARED" and words[2] ~= "TRANSACTION" then words[2] = nil end
    return table.concat(words, " ")
  end
end

-- CREATE [UNIQUE] INDEX / [TEMP|UNLOGGED] TABLE / TYPE ..., after CREATE.
local function create_statement(c, add)
  local unique = c:accept("unique")
  if c:accept("index") then
    local a = { kind = "create_index", unique = unique, concurrently = c:accept("concurrently") }
    a.if_not_exists = c:accept("if", "not", "exists")
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
    local if_not_exists = c:accept("if", "not", "exists")
    local a = { kind = "create_table", table = M.key(c:name()), columns = {}, keys = {},
                if_not_exists = if_not_exists }
    if c:peek() == "(" then
      c:next()
      while not c:done() and c:peek() ~= ")" do
        if CONSTRAINT_START[c:peek()] or c:is("like") then
          local k = table_constraint(c, a.table)      -- its key columns, for lint --style
          if k.ctype == "primary" or k.ctype == "foreign" then
            for _, n in ipairs(k.columns or {}) do a.keys[n] = true end
          end
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
end

-- LOCK [TABLE] ... [IN mode MODE] or VACUUM [(options)|FULL ...] tables: its action.
local function lock_or_vacuum(c)
  if c:accept("lock") then
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
    return a
  end
  c:accept("vacuum")
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
  return { kind = full and "vacuum_full" or "vacuum", tables = tables }
end

-- TRUNCATE [TABLE] [ONLY] t [*], ... [CASCADE], after TRUNCATE.
local function truncate_statement(c)
  c:accept("table")
  local a = { kind = "truncate", tables = {} }
  repeat
    c:accept("only")
    a.tables[#a.tables + 1] = M.key(c:name())
    if c:peek() == "*" then c:next() end
  until not (c:peek() == "," and c:next())
  while not c:done() do
    if c:next() == "cascade" then a.cascade = true end
  end
  return a
end

-- One statement's actions, appended to out.
local function statement(c, out)
  if c:accept("with") then            -- WITH ... UPDATE/DELETE: the statement after the CTEs
    c:accept("recursive")
    repeat
      c:name()
      c:skip_parens()
      c:accept("as")
      c:accept("not")
      c:accept("materialized")
      c:skip_parens()
    until not (c:peek() == "," and c:next())
  end
  local function add(a) out[#out + 1] = a end
  local first = c:peek()
  if c:accept("alter", "table", "all", "in", "tablespace") then
    add { kind = "table_rewrite", what = "ALL IN TABLESPACE ... SET TABLESPACE", copy = true,
          tables = {} }
  elseif c:accept("alter", "table") then
    c:accept("if", "exists")
    c:accept("only")
    local table = M.key(c:name())
    if c:peek() == "*" then c:next() end
    repeat alter_action(c, table, out) until not (c:peek() == "," and c:next())
  elseif c:accept("create") then
    create_statement(c, add)
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
  elseif c:is("alter", "type") or c:is("alter", "index") then
    local kind = c.t[c.i + 1].v == "type" and "rename_type" or "rename_index"
    c.i = c.i + 2
    c:accept("if", "exists")
    local schema, name = c:name()
    if c:accept("rename", "to") then
      add { kind = kind, name = M.key(schema, name), to = M.key(schema, select(2, c:name())) }
    else
      add { kind = "other", ddl = true }
    end
  elseif c:accept("drop", "database") then
    c:accept("if", "exists")
    add { kind = "drop_database", name = select(2, c:name()) }
  elseif c:accept("truncate") then
    add(truncate_statement(c))
  elseif c:is("update") or c:is("delete", "from") then
    add(whole_table_dml(c))
  elseif transaction_control(c) then
    add { kind = "transaction", statement = transaction_control(c) }
  elseif c:accept("reindex") then
    c:skip_parens()
    local target = c:next()
    local a = { kind = "reindex", target = target, concurrently = c:accept("concurrently") }
    a.name = M.key(c:name())
    if target == "table" then a.table = a.name end
    add(a)
  elseif c:is("lock") or c:is("vacuum") then
    add(lock_or_vacuum(c))
  elseif c:accept("cluster") then
    c:accept("verbose")
    add { kind = "cluster", tables = { M.key(c:name()) } }
  else
    local ddl = first == "create" or first == "alter" or first == "drop" or first == "comment"
      or first == "grant" or first == "revoke" or first == "do"
    add { kind = "other", ddl = ddl, dml = not ddl }
  end
end

-- The fields an action of each kind cannot do without; one the SQL (or an op's
-- arguments) left without them is opaque DDL, so no rule reads a nil name.
local REQUIRED = {
  create_table = { "table" }, drop_table = { "table" }, rename_table = { "table", "to" },
  add_column = { "table", "column" }, drop_column = { "table", "column" },
  rename_column = { "table", "column", "to" }, alter_type = { "table", "column" },
  set_not_null = { "table", "column" }, drop_not_null = { "table", "column" },
  set_default = { "table", "column" }, drop_default = { "table", "column" },
  add_constraint = { "table" }, drop_constraint = { "table" },
  validate_constraint = { "table", "name" }, create_index = { "table" }, drop_index = { "name" },
  create_type = { "name" }, drop_type = { "name" }, rename_type = { "name", "to" },
  rename_index = { "name", "to" }, update = { "table" }, delete = { "table" },
  truncate = { "tables" }, lock = { "tables" },
}

-- a, or opaque DDL when a field it needs is missing.
function M.complete(a)
  for _, field in ipairs(REQUIRED[a.kind] or {}) do
    local v = a[field]
    if v == nil or (type(v) == "table" and #v == 0) then return { kind = "other", ddl = true } end
  end
  return a
end

-- The actions of every statement in sql, in order. A BEGIN ATOMIC body (CREATE
-- FUNCTION ... BEGIN ATOMIC ...; ...; END) holds ";": the
-- statement goes on to its END (CASE ... END inside it counted).
function M.actions(sql)
  local toks = S.tokens(sql)
  local out, stmt, atomic = {}, {}, 0
  local function flush()
    if #stmt > 0 then
      local c, acts = cursor(sql, stmt), {}
      if not pcall(statement, c, acts) then acts = { { kind = "other", ddl = true } } end
      for _, a in ipairs(acts) do out[#out + 1] = M.complete(a) end
    end
    stmt = {}
  end
  for _, t in ipairs(toks) do
    if t.k == "word" and atomic > 0 then
      if t.v == "case" then atomic = atomic + 1 elseif t.v == "end" then atomic = atomic - 1 end
    elseif t.k == "word" and t.v == "atomic" and #stmt > 1 and stmt[#stmt].k == "word"
        and stmt[#stmt].v == "begin" then
      atomic = 1
    end
    if t.k == ";" and atomic == 0 then flush() else stmt[#stmt + 1] = t end
  end
  flush()
  return out
end

return M

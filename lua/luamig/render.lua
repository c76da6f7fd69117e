-- luamig.render: the Lua text of op.* calls for autogenerate, deterministic and meant
-- to be read: the same calls a person writes in a revision (op.create_table with
-- references = "users(id)", op.alter_column, op.create_foreign_key, ...), op.execute
-- only for what no op says (renaming an enum type, serial sequences, identity).
--
-- ctx.cur is the database's current schema: objects there are named bare, others get
-- { schema = "s" }. Tables and columns have the shape luamig.introspect describes.
local schema = require "luamig.schema"
local N = require "luamig.normalize"
local specs = require "luamig.opspec"
local S = require "luamig.sqltext"
local types = require "luamig.types"

local R = {}

-- ---- text ----

-- An identifier as SQL: bare when PostgreSQL reads it back unchanged, else quoted.
R.ident = S.ident
local ident = R.ident

R.literal = S.literal

-- A Lua string literal, in the plainest form that holds s.
function R.lua_str(s)
  if not s:find('[%c\\"]') then return '"' .. s .. '"' end
  if not s:find("[%c\\']") then return "'" .. s .. "'" end
  return (("%q"):format(s):gsub("\\\n", "\\n"))
end
local lua_str = R.lua_str

-- A long-bracket literal for SQL text: [[...]], [=[...]=] when the text holds "]]".
function R.long_str(s)
  if s:find("^[\r\n]") then return lua_str(s) end
  local eq = ""
  while (s .. "]"):find("]" .. eq .. "]", 1, true) do eq = eq .. "=" end
  return "[" .. eq .. "[" .. s .. "]" .. eq .. "]"
end

-- The keys of t, sorted: the order autogenerate writes objects in.
function R.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- ---- op calls, by the registry ----

local RAW = {}                         -- marks Lua text written already (R.raw)

-- text, to stand in an op call as it is.
function R.raw(text) return setmetatable({ text = text }, RAW) end

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%S+") do KEYWORDS[w] = true end

-- A value as Lua text: a table as its array items, then its other fields by name.
local function value_lua(v)
  if type(v) == "string" then return lua_str(v) end
  if type(v) ~= "table" then return tostring(v) end
  if getmetatable(v) == RAW then return v.text end
  local items, keys = {}, {}
  for i = 1, #v do items[i] = value_lua(v[i]) end
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= #v) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
  for _, k in ipairs(keys) do
    local bare = type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k]
    local name = bare and k or ("[" .. value_lua(k) .. "]")
    items[#items + 1] = name .. " = " .. value_lua(v[k])
  end
  return #items > 0 and ("{ " .. table.concat(items, ", ") .. " }") or "{}"
end

-- The text of op.<name>(...): args by the registry's argument names, opts written in
-- the registry's order of options (nil values left out).
function R.call(name, args, opts)
  local spec = assert(specs.by_name[name], name)
  local n = 0
  for i, p in ipairs(spec.params) do if args[p.name] ~= nil then n = i end end
  local parts = {}
  for i = 1, n do parts[i] = value_lua(args[spec.params[i].name]) end
  local items, used = {}, 0
  for _, o in ipairs(spec.options or {}) do
    local v = (opts or {})[o.name]
    if v ~= nil then items[#items + 1], used = o.name .. " = " .. value_lua(v), used + 1 end
  end
  for _ in pairs(opts or {}) do used = used - 1 end
  assert(used == 0, "R.call: an option op." .. name .. " does not take")
  if #items > 0 then parts[#parts + 1] = "{ " .. table.concat(items, ", ") .. " }" end
  return "op." .. name .. "(" .. table.concat(parts, ", ") .. ")"
end

-- The schema option of an object in schema s: nil in the current schema.
local function in_schema(ctx, s)
  if s and s ~= ctx.cur then return s end
end
R.in_schema = in_schema

local function qual(ctx, s, name)
  return (s ~= ctx.cur and (ident(s) .. ".") or "") .. ident(name)
end
R.qual = qual

local function qt(ctx, t) return qual(ctx, t.schema, t.name) end

function R.display(ctx, t)
  return t.schema ~= ctx.cur and (t.schema .. "." .. t.name) or t.name
end

function R.exec(sql) return "op.execute(" .. R.long_str(sql) .. ")" end
local exec = R.exec

-- ---- names and index elements ----

-- The name PostgreSQL gives an unnamed constraint of this kind on t.
function R.default_name(t, kind, c)
  if kind == "pk" then return schema.default_name(t.name, "pkey") end
  if kind == "unique" then return schema.default_name(t.name, "key", c.columns) end
  if kind == "fk" then return schema.default_name(t.name, "fkey", c.columns) end
end
local default_name = R.default_name

-- An index element read as a name and its ordering ("created_at DESC" -> "created_at",
-- "DESC"), or false when it is an expression; remembered by its text (a large schema
-- has the same few elements on every table).
local ORDER_WORDS = { asc = true, desc = true, nulls = true, first = true, last = true }
local parsed, nparsed = {}, 0

local function parse_element(e)
  local v = parsed[e]
  if v ~= nil then return v end
  local toks = S.tokens(e)
  local first = toks[1]
  local name = first and (first.k == "ident" and first.v or first.k == "word" and e:sub(first.s, first.e))
  for i = 2, #toks do
    if toks[i].k ~= "word" or not ORDER_WORDS[toks[i].v] then name = nil end
  end
  v = name and { name, #toks > 1 and e:sub(toks[2].s, toks[#toks].e):upper() or "" } or false
  if nparsed >= 20000 then parsed, nparsed = {}, 0 end
  parsed[e], nparsed = v, nparsed + 1
  return v
end

-- An index element split into a column of t and its ordering, or nil when it is an
-- expression.
function R.split_element(t, e)
  local v = parse_element(e)
  if v and t.col[v[1]] then return v[1], v[2] end
  return nil
end
local split_element = R.split_element

-- The SQL of an index element of table t.
function R.element_sql(t, e)
  local col, order = split_element(t, e)
  if not col then return e end
  return ident(col) .. (order ~= "" and (" " .. order) or "")
end

-- ---- columns ----

local function type_sql(c)
  local ty = c.type
  if c.autoinc then ty = types.SERIAL_OF[N.type(ty)] or ty end
  if c.identity then ty = ty .. " GENERATED " .. c.identity:upper() .. " AS IDENTITY" end
  if c.generated then ty = ty .. " GENERATED ALWAYS AS (" .. c.generated .. ") STORED" end
  return ty
end

-- Whether fk can be written as references = "t(c)" on its column.
function R.inline_fk(t, fk)
  if #fk.columns ~= 1 or fk.name ~= default_name(t, "fk", fk) then return false end
  for _, s in ipairs { fk.ref_schema, fk.ref_table, fk.ref_columns[1] } do
    if s:find('[%.%(%)"%s]') then return false end
  end
  return true
end

-- The column as op.create_table/op.add_column take it. inline: what the column carries
-- for the table (pk, unique, fk).
local function column_lua(ctx, c, inline)
  inline = inline or {}
  local parts = { lua_str(c.name), lua_str(type_sql(c)) }
  if not c.nullable and not (inline.pk or c.autoinc or c.identity) then
    parts[#parts + 1] = "nullable = false"
  end
  if c.default then parts[#parts + 1] = "default = " .. lua_str(c.default) end
  if inline.pk then parts[#parts + 1] = "primary_key = true" end
  if inline.unique then parts[#parts + 1] = "unique = true" end
  local fk = inline.fk
  if fk then
    local ref = (fk.ref_schema ~= ctx.cur and (fk.ref_schema .. ".") or "") .. fk.ref_table
      .. "(" .. fk.ref_columns[1] .. ")"
    parts[#parts + 1] = "references = " .. lua_str(ref)
    if fk.on_delete ~= "no action" then parts[#parts + 1] = "on_delete = " .. lua_str(fk.on_delete) end
    if fk.on_update ~= "no action" then parts[#parts + 1] = "on_update = " .. lua_str(fk.on_update) end
  end
  if c.comment then parts[#parts + 1] = "comment = " .. lua_str(c.comment) end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

function R.add_column(ctx, t, c, inline)
  return R.call("add_column", { table = t.name, column = R.raw(column_lua(ctx, c, inline)) },
    { schema = in_schema(ctx, t.schema) })
end

function R.drop_column(ctx, t, c)
  return R.call("drop_column", { table = t.name, column = c.name }, { schema = in_schema(ctx, t.schema) })
end

-- op.alter_column with ch = { type =, using =, nullable =, server_default = (false: drop),
-- comment = (false: remove) }.
function R.alter_column(ctx, t, name, ch)
  return R.call("alter_column", { table = t.name, column = name }, {
    type = ch.type, using = ch.using, nullable = ch.nullable, server_default = ch.server_default,
    comment = ch.comment, schema = in_schema(ctx, t.schema) })
end

-- ALTER TABLE t <rest>, for what op.alter_column does not say.
function R.alter_sql(ctx, t, rest) return exec("ALTER TABLE " .. qt(ctx, t) .. " " .. rest) end

-- ---- constraints ----

local function cols_sql(list) return S.list(list, ident) end

local function constraint_sql(ctx, kind, c)
  if kind == "pk" then return "PRIMARY KEY (" .. cols_sql(c.columns) .. ")" end
  if kind == "unique" then return "UNIQUE (" .. cols_sql(c.columns) .. ")" end
  if kind == "check" then return "CHECK (" .. c.expr .. ")" end
  local s = ("FOREIGN KEY (%s) REFERENCES %s (%s)"):format(cols_sql(c.columns),
    qual(ctx, c.ref_schema, c.ref_table), cols_sql(c.ref_columns))
  if c.on_delete ~= "no action" then s = s .. " ON DELETE " .. types.fk_sql(c.on_delete) end
  if c.on_update ~= "no action" then s = s .. " ON UPDATE " .. types.fk_sql(c.on_update) end
  return s
end

-- "CONSTRAINT name UNIQUE (a)" for op.create_table, without the name when PostgreSQL
-- would choose it.
local function table_constraint(ctx, t, kind, c)
  local body = constraint_sql(ctx, kind, c)
  if kind ~= "check" and c.name == default_name(t, kind, c) then return body end
  return "CONSTRAINT " .. ident(c.name) .. " " .. body
end

local CREATE_CONSTRAINT = { pk = "create_primary_key", unique = "create_unique_constraint",
  check = "create_check_constraint" }

function R.add_constraint(ctx, t, kind, c)
  local opts = { schema = in_schema(ctx, t.schema) }
  if kind ~= "fk" then
    return R.call(CREATE_CONSTRAINT[kind], { name = c.name, table = t.name, columns = c.columns,
      condition = c.expr }, opts)
  end
  opts.referent_schema = in_schema(ctx, c.ref_schema)
  if c.on_delete ~= "no action" then opts.ondelete = c.on_delete end
  if c.on_update ~= "no action" then opts.onupdate = c.on_update end
  return R.call("create_foreign_key", { name = c.name, source = t.name, referent = c.ref_table,
    local_cols = c.columns, remote_cols = c.ref_columns }, opts)
end

function R.drop_constraint(ctx, t, c)
  return R.call("drop_constraint", { name = c.name, table = t.name }, { schema = in_schema(ctx, t.schema) })
end

-- ---- indexes ----

function R.create_index(ctx, t, ix)
  -- what op.create_index cannot say (an operator class): the server's own definition
  if ix.def and ix.custom then return exec(ix.def) end
  local elems = {}
  for i, e in ipairs(ix.columns) do
    local col, order = split_element(t, e)
    if col and order == "" then elems[i] = col
    elseif col then elems[i] = "(" .. ident(col) .. ") " .. order
    else elems[i] = e:find("%(") and e or ("(" .. e .. ")") end
  end
  return R.call("create_index", { name = ix.name, table = t.name, columns = elems }, {
    unique = ix.unique or nil, using = ix.using ~= "btree" and ix.using or nil, where = ix.where,
    schema = in_schema(ctx, t.schema) })
end

function R.drop_index(ctx, t, ix)
  return R.call("drop_index", { name = ix.name }, { schema = in_schema(ctx, t.schema) })
end

-- ---- tables ----

-- op.create_table with the table's constraints (foreign keys in skip left out) and
-- comments, then its indexes.
function R.create_table(ctx, t, skip)
  skip = skip or {}
  local inline, items = {}, {}
  for _, c in ipairs(t.columns) do inline[c.name] = {} end
  local strings = {}
  if t.pk then
    if t.pk.name == default_name(t, "pk", t.pk) then
      for _, c in ipairs(t.pk.columns) do inline[c].pk = true end
    else
      strings[#strings + 1] = table_constraint(ctx, t, "pk", t.pk)
    end
  end
  for _, name in ipairs(R.sorted_keys(t.uniques)) do
    local u = t.uniques[name]
    local one = inline[u.columns[1]]
    if #u.columns == 1 and not one.unique and u.name == default_name(t, "unique", u) then
      one.unique = true
    else
      strings[#strings + 1] = table_constraint(ctx, t, "unique", u)
    end
  end
  for _, name in ipairs(R.sorted_keys(t.fks)) do
    local fk = t.fks[name]
    if not skip[fk] then
      local one = inline[fk.columns[1]]
      if R.inline_fk(t, fk) and not one.fk then one.fk = fk
      else strings[#strings + 1] = table_constraint(ctx, t, "fk", fk) end
    end
  end
  for _, name in ipairs(R.sorted_keys(t.checks)) do
    strings[#strings + 1] = table_constraint(ctx, t, "check", t.checks[name])
  end
  for _, c in ipairs(t.columns) do items[#items + 1] = column_lua(ctx, c, inline[c.name]) end
  for _, s in ipairs(strings) do items[#items + 1] = lua_str(s) end
  local out = { R.call("create_table", { name = t.name,
    columns = R.raw("{\n  " .. table.concat(items, ",\n  ") .. ",\n}") },
    { comment = t.comment, schema = in_schema(ctx, t.schema) }) }
  for _, name in ipairs(R.sorted_keys(t.indexes)) do
    out[#out + 1] = R.create_index(ctx, t, t.indexes[name])
  end
  return out
end

function R.drop_table(ctx, t)
  return { R.call("drop_table", { name = t.name }, { schema = in_schema(ctx, t.schema) }) }
end

function R.table_comment(ctx, t, text)
  return R.call(text and "create_table_comment" or "drop_table_comment",
    { table = t.name, comment = text }, { schema = in_schema(ctx, t.schema) })
end

-- ---- schemas and enum types ----

function R.create_schema(name) return R.call("create_schema", { name = name }) end
function R.drop_schema(name) return R.call("drop_schema", { name = name }) end

function R.create_enum(ctx, e, values)
  return R.call("create_enum", { name = e.name, values = values }, { schema = in_schema(ctx, e.schema) })
end

function R.drop_enum(ctx, e)
  return R.call("drop_enum", { name = e.name }, { schema = in_schema(ctx, e.schema) })
end

-- where: { after = v } or { before = v } or {}
function R.add_enum_value(ctx, e, value, where)
  return R.call("add_enum_value", { name = e.name, value = value }, { after = where.after,
    before = where.after == nil and where.before or nil, schema = in_schema(ctx, e.schema) })
end

-- Statements that rebuild enum e with `values` (PostgreSQL cannot drop a value):
-- rename the type, create it anew, move each column that uses it, drop the old one.
-- users: { table =, column = } with the column's current default.
function R.rebuild_enum(ctx, e, values, users)
  local q = qual(ctx, e.schema, e.name)
  local old = schema.object_name(e.name, nil, "old")
  local out = {
    exec(("ALTER TYPE %s RENAME TO %s"):format(q, ident(old))),
    R.create_enum(ctx, e, values),
  }
  for _, u in ipairs(users) do
    local c = u.column
    out[#out + 1] = R.alter_column(ctx, u.table, c.name, {
      type = q, using = ident(c.name) .. "::text::" .. q, server_default = c.default })
  end
  out[#out + 1] = exec("DROP TYPE " .. qual(ctx, e.schema, old))
  return out
end

-- ---- the revision text ----

local function indent(stmts, out)
  for _, s in ipairs(stmts) do
    for line in (s .. "\n"):gmatch("(.-)\n") do out[#out + 1] = "  " .. line end
  end
end

-- The bodies of upgrade() and downgrade() for ops ({ up = {...}, down = {...} } each):
-- indented lines without a final newline, for the template's ${upgrades} and
-- ${downgrades} ("" when there is nothing to do). The downgrade is each op's inverse,
-- in reverse order.
function R.bodies(ops)
  if #ops == 0 then return "", "" end
  local up, down = {}, {}
  local head = "  -- generated by luamig revision --autogenerate: review before applying"
  up[1], down[1] = head, head
  for _, op in ipairs(ops) do indent(op.up, up) end
  for i = #ops, 1, -1 do indent(ops[i].down, down) end
  return table.concat(up, "\n"), table.concat(down, "\n")
end

return R

-- luamig.autogen: compares the models (luamig.schema) with the live database
-- (luamig.introspect) and renders the op.* calls of a revision that takes the database
-- to the models: `luamig revision --autogenerate` and `luamig check`.
--
-- The comparison yields a list of operations, each with its upgrade statements and
-- their exact inverse, in an order that applies: schemas and enum types first; then
-- foreign keys, constraints and indexes that go away; tables dropped (those that
-- reference others first); tables created (referenced tables first, foreign keys that
-- close a cycle added afterwards); columns added, altered and dropped; constraints,
-- indexes and foreign keys added; comments; enum types dropped last. The downgrade is
-- the inverse of each operation, in reverse order.
local schema = require "luamig.schema"
local N = require "luamig.normalize"
local I = require "luamig.introspect"
local R = require "luamig.render"
local S = require "luamig.sqltext"
local D = require "luamig.autogen_table"

local A = {}

local display = R.display
local sorted_keys, same_list, add_op = D.sorted_keys, D.same_list, D.add_op

-- ---- the models in the database's terms ----

-- The model with every schema resolved against the database's current schema.
local function from_model(md, cur)
  local m = { schemas = {}, tables = {}, enums = {} }
  for _, s in ipairs(md.schemas) do m.schemas[s] = true end
  for _, e in ipairs(md.enums) do
    local s = e.schema or cur
    m.enums[s .. "." .. e.name] = { schema = s, name = e.name, key = s .. "." .. e.name,
                                    values = e.values }
  end
  for _, mt in ipairs(md.tables) do
    local s = mt.schema or cur
    local t = { schema = s, name = mt.name, key = s .. "." .. mt.name, comment = mt.comment,
                columns = {}, col = {}, uniques = {}, checks = {}, fks = {}, indexes = {},
                model = true }
    for _, c in ipairs(mt.columns) do
      local autoinc = N.serial_base(c.type) ~= nil
      local col = { name = c.name, type = c.type, default = c.default, comment = c.comment,
                    identity = c.identity, generated = c.generated, autoinc = autoinc,
                    nullable = c.nullable ~= false and not (c.primary_key or autoinc or c.identity) }
      t.columns[#t.columns + 1] = col
      t.col[c.name] = col
    end
    if mt.pk then t.pk = { name = mt.pk.name, columns = mt.pk.columns, unnamed = mt.pk.unnamed } end
    for _, u in ipairs(mt.uniques) do t.uniques[u.name] = u end
    for _, ck in ipairs(mt.checks) do t.checks[ck.name] = ck end
    for _, ix in ipairs(mt.indexes) do t.indexes[ix.name] = ix end
    for _, fk in ipairs(mt.fks) do
      t.fks[fk.name] = { name = fk.name, columns = fk.columns, ref_schema = fk.ref_schema or cur,
                         ref_table = fk.ref_table, ref_columns = fk.ref_columns, unnamed = fk.unnamed,
                         on_delete = fk.on_delete or "no action", on_update = fk.on_update or "no action" }
    end
    m.tables[t.key] = t
  end
  return m
end

-- Foreign keys that name no referenced columns reference the primary key.
local function resolve_references(m, db)
  local missing = {}
  for _, t in pairs(m.tables) do
    for name, fk in pairs(t.fks) do
      if not fk.ref_columns then
        local rt = m.tables[fk.ref_schema .. "." .. fk.ref_table] or db.tables[fk.ref_schema .. "." .. fk.ref_table]
        if rt and rt.pk then
          fk.ref_columns = rt.pk.columns
        else
          missing[#missing + 1] = ("models: foreign key %s of table %s references %s, which %s: name "
            .. "the columns, as in \"%s(id)\""):format(name, t.name, fk.ref_table,
            rt and "has no primary key" or "is not in the models", fk.ref_table)
        end
      end
    end
  end
  if #missing > 0 then
    table.sort(missing)
    error(missing[1], 0)
  end
end

-- ---- the comparison ----

local function new_ctx(cur, canonical)
  return { cur = cur, ops = {}, changes = {}, canonical = canonical or {}, suspects = {} }
end

-- Orders tables so that each follows the tables its foreign keys reference (among
-- `tables`); returns the order and the set of foreign keys left out to break cycles.
local function dependency_order(tables)
  local set, indeg, dependents = {}, {}, {}
  for _, t in ipairs(tables) do set[t.key] = t; indeg[t] = 0; dependents[t.key] = {} end
  local function edges(t, fn)
    for _, name in ipairs(sorted_keys(t.fks)) do
      local fk = t.fks[name]
      local rk = fk.ref_schema .. "." .. fk.ref_table
      if rk ~= t.key and set[rk] then fn(fk, rk) end
    end
  end
  for _, t in ipairs(tables) do
    edges(t, function(fk, rk)
      indeg[t] = indeg[t] + 1
      local d = dependents[rk]
      d[#d + 1] = { t = t, fk = fk }
    end)
  end
  local order, deferred, placed, ready = {}, {}, {}, {}
  local function insert_ready(t)      -- sorted by key, descending: the smallest is last
    local lo, hi = 1, #ready + 1
    while lo < hi do
      local mid = (lo + hi) // 2
      if ready[mid].key > t.key then lo = mid + 1 else hi = mid end
    end
    table.insert(ready, lo, t)
  end
  for _, t in ipairs(tables) do if indeg[t] == 0 then insert_ready(t) end end
  local next_unplaced = 1
  while #order < #tables do
    local t = table.remove(ready)
    if not t then                    -- a cycle: the first table left gives up its foreign keys
      while placed[tables[next_unplaced]] do next_unplaced = next_unplaced + 1 end
      local c = tables[next_unplaced]
      edges(c, function(fk, rk)
        if not placed[set[rk]] and not deferred[fk] then deferred[fk] = true; indeg[c] = indeg[c] - 1 end
      end)
      if indeg[c] == 0 then insert_ready(c) end
    else
      placed[t] = true
      order[#order + 1] = t
      for _, d in ipairs(dependents[t.key]) do
        if not placed[d.t] and not deferred[d.fk] then
          indeg[d.t] = indeg[d.t] - 1
          if indeg[d.t] == 0 then insert_ready(d.t) end
        end
      end
    end
  end
  return order, deferred
end

local function values_text(values) return S.list(values, S.literal) end

-- The columns of the database's tables whose type is enum e.
local function enum_users(ctx, db, e)
  local want = N.type(R.qual(ctx, e.schema, e.name), ctx.cur)
  local users = {}
  for _, key in ipairs(sorted_keys(db.tables)) do
    local t = db.tables[key]
    for _, c in ipairs(t.columns) do
      if N.type(c.type, ctx.cur) == want then users[#users + 1] = { table = t, column = c } end
    end
  end
  return users
end

-- The values of `want` missing from `have`, each with its place, when `have` keeps its
-- order inside `want`; nil when values were removed or reordered.
local function added_values(have, want)
  local j = 1
  for _, v in ipairs(want) do
    if have[j] == v then j = j + 1 end
  end
  if j <= #have then return nil end
  local present = {}
  for _, v in ipairs(have) do present[v] = true end
  local adds, prev = {}, nil
  for _, v in ipairs(want) do
    if not present[v] then
      adds[#adds + 1] = { value = v, where = prev and { after = prev } or { before = have[1] } }
      present[v] = true
    end
    prev = v
  end
  return adds
end

local function enums_step(ctx, m, db)
  for _, key in ipairs(sorted_keys(m.enums)) do
    local e, d = m.enums[key], db.enums[key]
    if not d then
      add_op(ctx, ("added enum '%s' (%s)"):format(display(ctx, e), values_text(e.values)),
        { R.create_enum(ctx, e, e.values) }, { R.drop_enum(ctx, e) })
    elseif not same_list(e.values, d.values) then
      local users = enum_users(ctx, db, d)
      local adds = added_values(d.values, e.values)
      if adds then
        for _, a in ipairs(adds) do
          add_op(ctx, ("added value '%s' to enum '%s'"):format(a.value, display(ctx, e)),
            { R.add_enum_value(ctx, e, a.value, a.where) }, {})
        end
        -- PostgreSQL cannot drop an enum value: the downgrade rebuilds the type
        ctx.ops[#ctx.ops].down = R.rebuild_enum(ctx, d, d.values, users)
      else
        add_op(ctx, ("changed values of enum '%s' (%s) -> (%s)"):format(display(ctx, e),
            values_text(d.values), values_text(e.values)),
          R.rebuild_enum(ctx, d, e.values, users), R.rebuild_enum(ctx, d, d.values, users))
      end
    end
  end
end

-- The constraints and indexes of the kept tables (parts, by key) in lists (the
-- tables: in `tables`): dropped, or (adding) created.
local function parts_step(ctx, tables, kept, parts, lists, adding)
  for _, list in ipairs(lists) do
    for _, key in ipairs(kept) do
      local t = tables[key]
      for _, part in ipairs(parts[key][list]) do
        local make, remove = D.create_part(ctx, t, part), D.remove_part(ctx, t, part)
        if adding then add_op(ctx, part.text, { make }, { remove })
        else add_op(ctx, part.text, { remove }, { make }) end
      end
    end
  end
end

-- The foreign keys of tables that dependency_order left out to break a cycle: added
-- after the tables (adding), or dropped before them.
local function deferred_fks(ctx, tables, deferred, adding)
  for _, t in ipairs(tables) do
    for _, name in ipairs(sorted_keys(t.fks)) do
      local fk = t.fks[name]
      if deferred[fk] then
        local make, remove = R.add_constraint(ctx, t, "fk", fk), R.drop_constraint(ctx, t, fk)
        if adding then add_op(ctx, nil, { make }, { remove })
        else add_op(ctx, nil, { remove }, { make }) end
      end
    end
  end
end

-- Tables dropped: referencing tables before the tables they reference.
local function drop_tables(ctx, removed)
  local order, deferred = dependency_order(removed)
  deferred_fks(ctx, removed, deferred, false)
  for i = #order, 1, -1 do
    local t = order[i]
    add_op(ctx, ("removed table '%s'"):format(display(ctx, t)), R.drop_table(ctx, t),
      R.create_table(ctx, t, deferred))
  end
end

-- Tables created: referenced tables first; returns the foreign keys left for later.
local function create_tables(ctx, added)
  local order, deferred = dependency_order(added)
  for _, t in ipairs(order) do
    add_op(ctx, ("added table '%s'"):format(display(ctx, t)), R.create_table(ctx, t, deferred),
      R.drop_table(ctx, t))
  end
  return deferred
end

-- The keys of the tables both sides have, and the tables only one side has.
local function split_tables(m, db)
  local kept, added, removed = {}, {}, {}
  for _, key in ipairs(sorted_keys(m.tables)) do
    if db.tables[key] then kept[#kept + 1] = key else added[#added + 1] = m.tables[key] end
  end
  for _, key in ipairs(sorted_keys(db.tables)) do
    if not m.tables[key] then removed[#removed + 1] = db.tables[key] end
  end
  return kept, added, removed
end

-- The operations that take db to m, in an order that applies. canonical: PostgreSQL's
-- text of expressions that differ as written (see probe).
function A.compare(md, db, canonical)
  local cur = db.current_schema
  local m = from_model(md, cur)
  resolve_references(m, db)
  local ctx = new_ctx(cur, canonical)
  for _, s in ipairs(sorted_keys(m.schemas)) do
    if not db.schemas[s] then
      add_op(ctx, ("added schema '%s'"):format(s), { R.create_schema(s) }, { R.drop_schema(s) })
    end
  end
  enums_step(ctx, m, db)
  local kept, added, removed = split_tables(m, db)
  local parts = {}
  for _, key in ipairs(kept) do parts[key] = D.table_parts(ctx, m.tables[key], db.tables[key]) end
  -- foreign keys that go away first (they may hold on to anything below), then
  -- constraints and indexes
  parts_step(ctx, db.tables, kept, parts, { "drop_fk", "drop" }, false)
  drop_tables(ctx, removed)
  local deferred = create_tables(ctx, added)
  for _, key in ipairs(kept) do D.columns_step(ctx, m.tables[key], db.tables[key], parts[key]) end
  -- constraints and indexes, then foreign keys: every table and column they name exists
  parts_step(ctx, m.tables, kept, parts, { "add", "add_fk" }, true)
  deferred_fks(ctx, added, deferred, true)
  for _, key in ipairs(kept) do
    local mt, dt = m.tables[key], db.tables[key]
    if mt.comment ~= dt.comment then
      add_op(ctx, ("changed comment on table '%s'"):format(display(ctx, mt)),
        { R.table_comment(ctx, mt, mt.comment) }, { R.table_comment(ctx, dt, dt.comment) })
    end
  end
  for _, key in ipairs(sorted_keys(db.enums)) do
    local e = db.enums[key]
    if not m.enums[key] then
      add_op(ctx, ("removed enum '%s'"):format(display(ctx, e)),
        { R.drop_enum(ctx, e) }, { R.create_enum(ctx, e, e.values) })
    end
  end
  return { changes = ctx.changes, ops = ctx.ops, suspects = ctx.suspects }
end

-- The bodies of upgrade() and downgrade() for the template's ${upgrades} and
-- ${downgrades} ("" when there is nothing to do).
A.render = R.bodies

-- ---- models and the live database ----

-- Loads the models: spec is a module name ("app.models", looked up with dir first on
-- package.path) or a file path (relative to dir). Returns the model and its file.
function A.load_models(spec, dir)
  if type(spec) ~= "string" or spec == "" then
    error("config: 'models' must be a module name (\"app.models\") or a file path", 0)
  end
  dir = dir or "."
  local prefix = dir == "." and "./?.lua;./?/init.lua;" or (dir .. "/?.lua;" .. dir .. "/?/init.lua;")
  local path
  if spec:find("/", 1, true) or spec:match("%.lua$") then
    path = (spec:sub(1, 1) == "/" or dir == ".") and spec or (dir .. "/" .. spec)
  else
    local found, err = package.searchpath(spec, prefix .. package.path)
    if not found then error(("models: module '%s' not found:%s"):format(spec, err), 0) end
    path = found
  end
  local chunk, err = loadfile(path, "t")
  if not chunk then error("models: " .. err, 0) end
  local saved = package.path
  package.path = prefix .. saved    -- the models may require their siblings
  local ok, res = pcall(chunk, spec, path)
  package.path = saved
  if not ok then error(("models: %s"):format(res), 0) end
  if not schema.is_model(res) then
    error(("models: %s must return a model (local m = require(\"luamig.schema\").new() ... "
           .. "return m), not %s"):format(path, type(res)), 0)
  end
  return res, path
end

-- The schemas the model names (its tables', enums' and declared schemas).
function A.model_schemas(md)
  local set, list = {}, {}
  for _, s in ipairs(md.schemas) do set[s] = true end
  for _, t in ipairs(md.tables) do if t.schema then set[t.schema] = true end end
  for _, e in ipairs(md.enums) do if e.schema then set[e.schema] = true end end
  for s in pairs(set) do list[#list + 1] = s end
  table.sort(list)
  return list
end

-- The comparison of model md with the database on conn. ignore: tables to leave out
-- ({ ["schema.table"] = true }, ".table" for the current schema).
function A.diff(conn, md, ignore)
  -- Everything the diff allocates (about 30 MB for 1,000 tables) is garbage once it
  -- returns: collecting as it goes would double its time, so the collector waits.
  local running = collectgarbage("isrunning")
  collectgarbage("stop")
  local ok, result, db = pcall(function()
    local db = I.read(conn, { schemas = A.model_schemas(md), ignore = ignore })
    local result = A.compare(md, db)
    if #result.suspects > 0 then
      result = A.compare(md, db, I.canonical(conn, db.current_schema, result.suspects))
    end
    return result, db
  end)
  if running then collectgarbage("restart") end
  if not ok then error(result, 0) end
  return result, db
end

-- A setting the C core does not resolve (models, heads): from the options, the
-- resolved config, else the config file.
function A.setting(cfg, opts, key)
  if opts[key] ~= nil then return opts[key] end
  if cfg[key] ~= nil then return cfg[key] end
  if cfg.config then
    local env = setmetatable({}, { __index = _G })
    local chunk = assert(loadfile(cfg.config, "t", env))
    local ok, t = pcall(chunk)
    if ok and type(t) == "table" then return t[key] end
  end
  return nil
end

-- For core.autogenerate and core.check: conn is open, cfg is the loaded config.
-- Returns { changes = { "added column 'sessions.description'", ... },
--           upgrade_body =, downgrade_body =, models = path }.
function A.run(conn, cfg, opts)
  local spec = A.setting(cfg, opts, "models")
  if not spec then
    error("no models to compare: set models = \"app.models\" (a Lua module beside luamig.lua, "
          .. "or a file path) in " .. (cfg.config or "luamig.lua"), 0)
  end
  local md, path = A.load_models(spec, cfg.dir)
  local vs = cfg.version_table_schema
  local ignore = {
    [(vs or "") .. "." .. (cfg.version_table or "luamig_version")] = true,
    [(vs or "") .. "." .. (cfg.log_table or "luamig_log")] = true,
  }
  local result = A.diff(conn, md, ignore)
  local up, down = A.render(result.ops)
  return { changes = result.changes, upgrade_body = up, downgrade_body = down, models = path }
end

return A

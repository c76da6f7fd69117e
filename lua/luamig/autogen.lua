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

local A = {}

local ident, display, exec = R.ident, R.display, R.exec
local element_sql, default_name = R.element_sql, R.default_name

local function literal(s) return R.literal(s) end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- ---- the models in the database's terms ----

local function index_key(t, ix)
  local cols = {}
  for i, e in ipairs(ix.columns) do cols[i] = N.index_element(element_sql(t, e)) end
  return table.concat(cols, ", ") .. "|" .. tostring(ix.unique == true) .. "|"
    .. (N.expr(ix.where) or "") .. "|" .. (ix.using or "btree")
end

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

-- One operation: its upgrade statements and their inverse; change is what it fixes
-- (a string, a list of them, or nil for a step of another change).
local function add_op(ctx, change, up, down)
  if type(change) == "string" then change = { change } end
  for _, c in ipairs(change or {}) do ctx.changes[#ctx.changes + 1] = c end
  ctx.ops[#ctx.ops + 1] = { up = up, down = down }
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

local function values_text(values)
  local out = {}
  for i, v in ipairs(values) do out[i] = literal(v) end
  return table.concat(out, ", ")
end

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

local function fk_equal(a, b)
  return same_list(a.columns, b.columns) and a.ref_schema == b.ref_schema
    and a.ref_table == b.ref_table and same_list(a.ref_columns, b.ref_columns)
    and a.on_delete == b.on_delete and a.on_update == b.on_update
end

local function fk_text(ctx, t, fk)
  return ("'%s' on '%s (%s)' -> %s (%s)"):format(fk.name, display(ctx, t),
    table.concat(fk.columns, ", "),
    fk.ref_schema ~= ctx.cur and (fk.ref_schema .. "." .. fk.ref_table) or fk.ref_table,
    table.concat(fk.ref_columns, ", "))
    .. (fk.on_delete ~= "no action" and (" on delete " .. fk.on_delete) or "")
    .. (fk.on_update ~= "no action" and (" on update " .. fk.on_update) or "")
end

-- Whether the model's expression (a default, a check) means the database's: the same
-- canonical text, or (once the probe ran) the same text as PostgreSQL parsed it.
-- A difference is noted as a suspect for the probe.
local function same_expr(ctx, kind, t, obj, mexpr, dexpr)
  if N.expr(mexpr) == N.expr(dexpr) then return true end
  if mexpr == nil or dexpr == nil then return false end
  local canon = ctx.canonical[kind .. "|" .. t.key .. "|" .. obj.name]
  if canon then return N.expr(canon) == N.expr(dexpr) end
  ctx.suspects[#ctx.suspects + 1] = { kind = kind, table = t, obj = obj, expr = mexpr }
  return false
end

-- An object the model leaves unnamed is the server's to name: one of the database with
-- the same definition (same(m, d)), under a name the model does not use, is that object
-- (PostgreSQL adds a digit when its first choice is taken: users_email_key1). Re-keys
-- such model objects in mset under the database's name.
local function adopt_names(mset, dset, same)
  for _, name in ipairs(sorted_keys(mset)) do
    local m = mset[name]
    if m.unnamed and not dset[name] then
      for _, dname in ipairs(sorted_keys(dset)) do
        if not mset[dname] and same(m, dset[dname]) then
          local copy = {}
          for k, v in pairs(m) do copy[k] = v end
          copy.name, mset[name], mset[dname] = dname, nil, copy
          break
        end
      end
    end
  end
end

-- Constraint and index differences of one table present on both sides: what to drop
-- (before tables and columns go) and what to add (after they come), foreign keys apart.
-- same: equal without noting suspects, for adopt_names (default: equal).
local function table_parts(ctx, mt, dt)
  local p = { drop = {}, add = {}, drop_fk = {}, add_fk = {} }
  local function both(kind, mset, dset, equal, what, same)
    adopt_names(mset, dset, same or equal)
    local differ = false             -- the common case, without sorting anything
    for name, d in pairs(dset) do
      local m = mset[name]
      if not m or not equal(m, d) then differ = true break end
    end
    if not differ then
      for name in pairs(mset) do
        if not dset[name] then differ = true break end
      end
    end
    if not differ then return end
    local drops = kind == "fk" and p.drop_fk or p.drop
    local adds = kind == "fk" and p.add_fk or p.add
    for _, name in ipairs(sorted_keys(dset)) do
      local d, m = dset[name], mset[name]
      if not m then
        drops[#drops + 1] = { kind = kind, obj = d, text = "removed " .. what(d) }
      elseif not equal(m, d) then
        drops[#drops + 1] = { kind = kind, obj = d, text = "changed " .. what(m) }
      end
    end
    for _, name in ipairs(sorted_keys(mset)) do
      local m, d = mset[name], dset[name]
      if not d then
        adds[#adds + 1] = { kind = kind, obj = m, text = "added " .. what(m) }
      elseif not equal(m, d) then
        adds[#adds + 1] = { kind = kind, obj = m }
      end
    end
  end
  local function cols(c) return table.concat(c.columns, ", ") end
  local where = display(ctx, mt)
  both("unique", mt.uniques, dt.uniques, function(a, b) return same_list(a.columns, b.columns) end,
    function(u) return ("unique constraint '%s' on '%s (%s)'"):format(u.name, where, cols(u)) end)
  both("check", mt.checks, dt.checks,
    function(a, b) return same_expr(ctx, "check", mt, a, a.expr, b.expr) end,
    function(c) return ("check constraint '%s' on '%s': %s"):format(c.name, where, c.expr) end,
    function(a, b) return N.expr(a.expr) == N.expr(b.expr) end)
  both("index", mt.indexes, dt.indexes,
    function(a, b)
      if index_key(mt, a) == index_key(dt, b) then return true end
      local canon = ctx.canonical["index|" .. mt.key .. "|" .. a.name]
      if canon then return index_key(dt, canon) == index_key(dt, b) end
      ctx.suspects[#ctx.suspects + 1] = { kind = "index", table = mt, obj = a }
      return false
    end,
    function(ix)
      return ("%sindex '%s' on '%s (%s)'"):format(ix.unique and "unique " or "", ix.name, where,
        table.concat(ix.columns, ", ")) .. (ix.where and (" where " .. ix.where) or "")
    end,
    function(a, b) return index_key(mt, a) == index_key(dt, b) end)
  both("fk", mt.fks, dt.fks, fk_equal, function(fk) return "foreign key " .. fk_text(ctx, mt, fk) end)
  local mpk = mt.pk and { [mt.pk.name] = mt.pk } or {}
  local dpk = dt.pk and { [dt.pk.name] = dt.pk } or {}
  both("pk", mpk, dpk, function(a, b) return same_list(a.columns, b.columns) end,
    function(pk) return ("primary key '%s' on '%s (%s)'"):format(pk.name, where, cols(pk)) end)
  return p
end

local function create_part(ctx, t, part)
  if part.kind == "index" then return R.create_index(ctx, t, part.obj) end
  return R.add_constraint(ctx, t, part.kind, part.obj)
end

local function remove_part(ctx, t, part)
  if part.kind == "index" then return R.drop_index(ctx, t, part.obj) end
  return R.drop_constraint(ctx, t, part.obj)
end

-- The serial sequence steps (CREATE SEQUENCE ... OWNED BY, its start, the default).
local function add_serial(ctx, t, col, seq)
  local q = R.qual(ctx, t.schema, t.name)
  return {
    exec(("CREATE SEQUENCE %s OWNED BY %s.%s"):format(seq, q, ident(col))),
    exec(("SELECT setval(%s, coalesce(max(%s), 0) + 1, false) FROM %s"):format(literal(seq),
      ident(col), q)),
    R.alter_column(ctx, t, col, { server_default = ("nextval(%s::regclass)"):format(literal(seq)) }),
  }
end

-- The differences of one column present on both sides: one op.alter_column for type,
-- nullability, default and comment (one table rewrite at most), then serial and
-- identity changes.
local function column_changes(ctx, t, mc, dc)
  local mtype, dtype = N.type(mc.type, ctx.cur), N.type(dc.type, ctx.cur)
  if mtype == dtype and mc.nullable == dc.nullable and mc.comment == dc.comment
      and mc.identity == dc.identity and mc.autoinc == dc.autoinc and mc.generated == dc.generated
      and N.expr(mc.default) == N.expr(dc.default) then
    return                           -- the common case, quickly
  end
  local where = ("'%s.%s'"):format(display(ctx, t), mc.name)
  if (mc.generated or dc.generated) and N.expr(mc.generated) ~= N.expr(dc.generated) then
    add_op(ctx, "changed generated expression on column " .. where,
      { R.drop_column(ctx, t, mc), R.add_column(ctx, t, mc) },
      { R.drop_column(ctx, t, dc), R.add_column(ctx, t, dc) })
    return
  end
  local up, down, changes = {}, {}, {}
  if mtype ~= dtype then
    up.type, down.type = mc.autoinc and mtype or mc.type, dc.type
    changes[#changes + 1] = ("type change from %s to %s on %s"):format(dc.type, mtype, where)
  end
  if mc.nullable ~= dc.nullable then
    up.nullable, down.nullable = mc.nullable, dc.nullable
    changes[#changes + 1] = (mc.nullable and "NULL on column " or "NOT NULL on column ") .. where
  end
  if not mc.autoinc and not dc.autoinc and not same_expr(ctx, "default", t, mc, mc.default, dc.default) then
    up.server_default, down.server_default = mc.default or false, dc.default or false
    changes[#changes + 1] = ("changed server default on column %s: %s -> %s"):format(where,
      dc.default or "none", mc.default or "none")
  end
  if mc.comment ~= dc.comment then
    up.comment, down.comment = mc.comment or false, dc.comment or false
    changes[#changes + 1] = "changed comment on column " .. where
  end
  if #changes > 0 then
    add_op(ctx, changes, { R.alter_column(ctx, t, mc.name, up) }, { R.alter_column(ctx, t, mc.name, down) })
  end
  if mc.autoinc and not dc.autoinc then
    local seq = R.qual(ctx, t.schema, schema.object_name(t.name, mc.name, "seq"))
    local down_steps = { R.alter_column(ctx, t, mc.name, { server_default = dc.default or false }),
                         exec("DROP SEQUENCE " .. seq) }
    add_op(ctx, ("changed server default on column %s: %s -> serial"):format(where,
      dc.default or "none"), add_serial(ctx, t, mc.name, seq), down_steps)
  elseif dc.autoinc and not mc.autoinc then
    add_op(ctx, ("changed server default on column %s: serial -> %s"):format(where,
        mc.default or "none"),
      { R.alter_column(ctx, t, mc.name, { server_default = mc.default or false }),
        exec("DROP SEQUENCE " .. dc.sequence) },
      add_serial(ctx, t, mc.name, dc.sequence))
  end
  if mc.identity ~= dc.identity then
    local function identity(from, to)
      local col = "ALTER COLUMN " .. ident(mc.name)
      if not to then return R.alter_sql(ctx, t, col .. " DROP IDENTITY") end
      if not from then return R.alter_sql(ctx, t, col .. " ADD GENERATED " .. to:upper() .. " AS IDENTITY") end
      return R.alter_sql(ctx, t, col .. " SET GENERATED " .. to:upper())
    end
    add_op(ctx, ("changed identity on column %s: %s -> %s"):format(where, dc.identity or "none",
        mc.identity or "none"),
      { identity(dc.identity, mc.identity) }, { identity(mc.identity, dc.identity) })
  end
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

  local kept, added, removed = {}, {}, {}
  for _, key in ipairs(sorted_keys(m.tables)) do
    if db.tables[key] then kept[#kept + 1] = key else added[#added + 1] = m.tables[key] end
  end
  for _, key in ipairs(sorted_keys(db.tables)) do
    if not m.tables[key] then removed[#removed + 1] = db.tables[key] end
  end

  local parts = {}
  for _, key in ipairs(kept) do parts[key] = table_parts(ctx, m.tables[key], db.tables[key]) end
  -- foreign keys that go away first (they may hold on to anything below), then
  -- constraints and indexes
  for _, list in ipairs { "drop_fk", "drop" } do
    for _, key in ipairs(kept) do
      local t = db.tables[key]
      for _, part in ipairs(parts[key][list]) do
        add_op(ctx, part.text, { remove_part(ctx, t, part) }, { create_part(ctx, t, part) })
      end
    end
  end

  -- tables dropped: referencing tables before the tables they reference
  local order, deferred = dependency_order(removed)
  for _, t in ipairs(removed) do
    for _, name in ipairs(sorted_keys(t.fks)) do
      local fk = t.fks[name]
      if deferred[fk] then
        add_op(ctx, nil, { R.drop_constraint(ctx, t, fk) }, { R.add_constraint(ctx, t, "fk", fk) })
      end
    end
  end
  for i = #order, 1, -1 do
    local t = order[i]
    add_op(ctx, ("removed table '%s'"):format(display(ctx, t)), R.drop_table(ctx, t),
      R.create_table(ctx, t, deferred))
  end

  -- tables created: referenced tables first
  order, deferred = dependency_order(added)
  for _, t in ipairs(order) do
    add_op(ctx, ("added table '%s'"):format(display(ctx, t)), R.create_table(ctx, t, deferred),
      R.drop_table(ctx, t))
  end

  -- columns of the tables on both sides
  for _, key in ipairs(kept) do
    local mt, dt = m.tables[key], db.tables[key]
    local p = parts[key]
    for _, c in ipairs(mt.columns) do
      if not dt.col[c.name] then
        -- a one-column unique constraint or foreign key of a new column goes with it
        local inline = {}
        for i = #p.add, 1, -1 do
          local part = p.add[i]
          if part.kind == "unique" and #part.obj.columns == 1 and part.obj.columns[1] == c.name
              and part.obj.name == default_name(mt, "unique", part.obj) and not inline.unique then
            inline.unique = true
            table.remove(p.add, i)
          end
        end
        for i = #p.add_fk, 1, -1 do
          local fk = p.add_fk[i].obj
          if fk.columns[1] == c.name and R.inline_fk(mt, fk) and not inline.fk then
            inline.fk = fk
            table.remove(p.add_fk, i)
          end
        end
        add_op(ctx, ("added column '%s.%s'"):format(display(ctx, mt), c.name),
          { R.add_column(ctx, mt, c, inline) }, { R.drop_column(ctx, mt, c) })
      end
    end
    for _, c in ipairs(mt.columns) do
      local dc = dt.col[c.name]
      if dc then column_changes(ctx, mt, c, dc) end
    end
    for _, c in ipairs(dt.columns) do
      if not mt.col[c.name] then
        add_op(ctx, ("removed column '%s.%s'"):format(display(ctx, dt), c.name),
          { R.drop_column(ctx, dt, c) }, { R.add_column(ctx, dt, c) })
      end
    end
  end

  -- constraints and indexes, then foreign keys: every table and column they name exists
  for _, list in ipairs { "add", "add_fk" } do
    for _, key in ipairs(kept) do
      local t = m.tables[key]
      for _, part in ipairs(parts[key][list]) do
        add_op(ctx, part.text, { create_part(ctx, t, part) }, { remove_part(ctx, t, part) })
      end
    end
  end
  for _, t in ipairs(added) do
    for _, name in ipairs(sorted_keys(t.fks)) do
      local fk = t.fks[name]
      if deferred[fk] then
        add_op(ctx, nil, { R.add_constraint(ctx, t, "fk", fk) }, { R.drop_constraint(ctx, t, fk) })
      end
    end
  end

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

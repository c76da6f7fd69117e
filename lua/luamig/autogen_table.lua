-- luamig.autogen_table: what differs in a table the models and the database both
-- have: its constraints and indexes (what to drop before tables and columns go, what
-- to add after they come) and its columns (one op.alter_column each, then serial and
-- identity changes). luamig.autogen orders the whole comparison.
local schema = require "luamig.schema"
local N = require "luamig.normalize"
local R = require "luamig.render"
local S = require "luamig.sqltext"

local D = {}

local ident, literal, display, exec = R.ident, S.literal, R.display, R.exec
local element_sql = R.element_sql

local sorted_keys = R.sorted_keys
D.sorted_keys = sorted_keys

function D.same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local same_list = D.same_list

-- One operation: its upgrade statements and their inverse; change is what it fixes
-- (a string, a list of them, or nil for a step of another change).
function D.add_op(ctx, change, up, down)
  if type(change) == "string" then change = { change } end
  for _, c in ipairs(change or {}) do ctx.changes[#ctx.changes + 1] = c end
  ctx.ops[#ctx.ops + 1] = { up = up, down = down }
end

local add_op = D.add_op

-- ---- constraints and indexes ----

local function index_key(t, ix)
  local cols = {}
  for i, e in ipairs(ix.columns) do cols[i] = N.index_element(element_sql(t, e)) end
  return table.concat(cols, ", ") .. "|" .. tostring(ix.unique == true) .. "|"
    .. (N.expr(ix.where) or "") .. "|" .. (ix.using or "btree")
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
function D.table_parts(ctx, mt, dt)
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

function D.create_part(ctx, t, part)
  if part.kind == "index" then return R.create_index(ctx, t, part.obj) end
  return R.add_constraint(ctx, t, part.kind, part.obj)
end

function D.remove_part(ctx, t, part)
  if part.kind == "index" then return R.drop_index(ctx, t, part.obj) end
  return R.drop_constraint(ctx, t, part.obj)
end

-- ---- columns ----

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
function D.column_changes(ctx, t, mc, dc)
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


-- The columns of table mt (models) and dt (database), both present: added (with a
-- one-column unique constraint or foreign key of parts p that can go with the new
-- column, taken out of p), changed, removed.
function D.columns_step(ctx, mt, dt, p)
  for _, c in ipairs(mt.columns) do
    if not dt.col[c.name] then
      local inline = {}
      for i = #p.add, 1, -1 do
        local part = p.add[i]
        if part.kind == "unique" and #part.obj.columns == 1 and part.obj.columns[1] == c.name
            and part.obj.name == R.default_name(mt, "unique", part.obj) and not inline.unique then
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
    if dc then D.column_changes(ctx, mt, c, dc) end
  end
  for _, c in ipairs(dt.columns) do
    if not mt.col[c.name] then
      add_op(ctx, ("removed column '%s.%s'"):format(display(ctx, dt), c.name),
        { R.drop_column(ctx, dt, c) }, { R.add_column(ctx, dt, c) })
    end
  end
end

return D

-- luamig.lint_inverse: does downgrade() undo upgrade()? The downgrade-missing
-- and downgrade-not-inverse rules.
--
-- Both action lists are replayed over the names they use, upgrade() then
-- downgrade(), so that each action knows which object it touches whatever it
-- was called at that moment: a table created, renamed and dropped, or an enum
-- renamed away and created again under its old name, are followed through
-- their renames. An object's key is the name it has where the two functions
-- meet: one that was there before upgrade() is known by its name then, one
-- upgrade() makes by its name after upgrade(), one downgrade() makes by its
-- name after downgrade(). An action of upgrade() is undone by the opposite
-- action of downgrade() on the same keys; a rename of an object that was there
-- before is undone when downgrade() leaves it with its old name again.
local rules = require "luamig.lint_rules"
local specs = require "luamig.opspec"
local S = require "luamig.sqltext"
local actions = require "luamig.lint_actions"

local inverse = {}

local q = S.said

-- The namespace of each kind of object followed through renames.
local SPACE = { create_table = "table", drop_table = "table", rename_table = "table",
  create_type = "type", drop_type = "type", rename_type = "type",
  create_index = "index", drop_index = "index", rename_index = "index" }

-- ---- replaying the names ----

-- The object named name in space (a string, or a table object for its columns);
-- one not seen yet was there before upgrade().
local function lookup(st, space, name)
  if name == nil then return nil end
  st[space] = st[space] or {}
  local o = st[space][name]
  if not o then
    o = { origin = name, name = name }
    st[space][name] = o
  end
  return o
end

local function make(st, space, name, dir)
  st[space] = st[space] or {}
  local o = { name = name, made = dir }
  st[space][name] = o
  return o
end

-- Renames o (in space) to `to`; the rename is o's last one in dir.
local function rename(st, space, o, to, a, dir)
  st[space][o.name] = nil
  o.name = to
  st[space][to] = o
  o.renamed = o.renamed or {}
  o.renamed[dir] = a
end

local COLUMN_KINDS = { add_column = true, drop_column = true, rename_column = true,
  set_not_null = true, drop_not_null = true, alter_type = true }

-- Gives each action of one function (dir: "up" or "down") the objects it touches:
-- a.obj (the table, type or index it names), a.tobj (the table of a column,
-- constraint, index or comment), a.cobj (the column), a.cobjs (an index's columns).
local function replay(st, actions, dir)
  for _, a in ipairs(actions) do
    local k, space = a.kind, SPACE[a.kind]
    local name = space == "table" and a.table or a.name
    if name == nil then space = nil end       -- CREATE INDEX ON t (...): the server names it
    if space and k:match("^create_") then
      if a.if_not_exists and st[space] and st[space][name] then a.noop = true
      else a.obj = make(st, space, name, dir) end
      if k == "create_table" then a.tobj = a.obj end
    elseif space and k:match("^drop_") then
      a.obj = lookup(st, space, name)
      if a.obj then st[space][name], a.obj.dropped = nil, dir end
    elseif space and name and a.to then
      a.obj = lookup(st, space, name)
      rename(st, space, a.obj, a.to, a, dir)
    end
    if k == "create_index" or k == "add_constraint" or k == "drop_constraint" or COLUMN_KINDS[k]
        or k == "create_comment" or k == "drop_comment" then
      a.tobj = lookup(st, "table", a.table or a.name)
    end
    if COLUMN_KINDS[k] and a.tobj then
      local cols = a.tobj
      if k == "add_column" then
        a.cobj = make(st, cols, a.column, dir)
        cols.added = cols.added or {}
        cols.added[#cols.added + 1] = a.cobj
      else
        a.cobj = lookup(st, cols, a.column)
      end
      if k == "drop_column" then st[cols][a.column], a.cobj.dropped = nil, dir end
      if k == "rename_column" and a.to then rename(st, cols, a.cobj, a.to, a, dir) end
    end
    if k == "create_index" and a.tobj then
      a.cobjs = {}
      for _, c in ipairs(a.columns or {}) do a.cobjs[#a.cobjs + 1] = st[a.tobj] and st[a.tobj][c] end
    end
  end
end

-- Where the two functions meet, each object still there gets its name then.
local function meet(st)
  for _, names in pairs(st) do
    for name, o in pairs(names) do o.upname = name end
  end
end

local function key(o)
  if o == nil then return "?" end
  return o.origin or o.upname or o.name
end

-- ---- signatures ----

local function sig(a)
  local k = a.kind
  if a.noop then return nil end
  if k == "create_table" or k == "drop_table" or k == "create_type" or k == "drop_type"
      or k == "create_index" or k == "drop_index" then
    return a.obj and k .. " " .. key(a.obj)
  end
  if a.object then return a.name and k .. " " .. a.name end      -- a schema, an extension, ...
  if k == "create_comment" or k == "drop_comment" then return k .. " " .. key(a.tobj) end
  if k == "add_column" or k == "drop_column" or k == "set_not_null" or k == "drop_not_null" then
    return k .. " " .. key(a.tobj) .. "." .. key(a.cobj)
  end
  if k == "add_constraint" or k == "drop_constraint" then
    return a.name and k .. " " .. key(a.tobj) .. "." .. a.name
  end
  if k == "alter_type" then
    local t = rules.parse_type(a.type)
    return t and k .. " " .. key(a.tobj) .. "." .. key(a.cobj) .. " " .. t
  end
end

-- The actions that undo each other: those of each op and its registry inverse (both
-- ways), and the two NOT NULL changes, which op.alter_column and SQL make.
local OPPOSITE = { set_not_null = "drop_not_null", drop_not_null = "set_not_null" }
for _, spec in ipairs(specs.list) do
  local back = spec.inverse and specs.by_name[spec.inverse]
  if back and back ~= spec then
    local k, inv = actions.action_kind(spec), actions.action_kind(back)
    OPPOSITE[k], OPPOSITE[inv] = inv, k
  end
end

local function inverse_sig(a)
  if OPPOSITE[a.kind] then
    local s = sig(a)
    return s and OPPOSITE[a.kind] .. s:sub(#a.kind + 1)
  end
  if a.kind == "alter_type" and a.old_type then
    local t = rules.parse_type(a.old_type)
    return t and "alter_type " .. key(a.tobj) .. "." .. key(a.cobj) .. " " .. t
  end
end

local DESCRIBE = {
  create_table = "creates table %s", drop_table = "drops table %s", add_column = "adds column %s",
  drop_column = "drops column %s", create_index = "creates index %s", drop_index = "drops index %s",
  set_not_null = "sets NOT NULL on %s", drop_not_null = "drops NOT NULL on %s",
  add_constraint = "adds constraint %s", drop_constraint = "drops constraint %s",
  create_type = "creates type %s", drop_type = "drops type %s", rename_table = "renames table %s",
  rename_type = "renames type %s", rename_index = "renames index %s",
  create_schema = "creates schema %s", drop_schema = "drops schema %s",
  create_extension = "creates extension %s", drop_extension = "drops extension %s",
  create_comment = "sets the comment of table %s", drop_comment = "drops the comment of table %s",
  rename_column = "renames column %s", alter_type = "changes the type of %s",
}

local function describe(a)
  local what = a.column and S.said(a.table, a.column) or q(a.name or a.table)
  if a.unnamed and a.name then what = what .. " (named by PostgreSQL)" end
  if a.to then what = what .. " to " .. q(a.to) end
  if a.kind == "alter_type" then what = what .. " to " .. tostring(a.type) end
  local verb = a.object and a.kind:match("^(%a+)_")          -- "creates sequence %s"
  local text = DESCRIBE[a.kind] or verb and (verb .. "s " .. a.object .. " %s") or a.kind
  return text:format(what)
end

-- ---- the check ----

-- Actions a downgrade has nothing to undo for.
local NEEDS_NO_UNDO = { other = true, vacuum = true, vacuum_full = true, cluster = true, lock = true,
  reindex = true, validate_constraint = true, add_enum_value = true, update = true, delete = true,
  truncate = true, transaction = true, drop_database = true, table_rewrite = true }

-- Does dropping a table or a column in downgrade() take a with it (PostgreSQL drops a
-- table's indexes and constraints, and a column's indexes)?
local function covered(a)
  local t = a.tobj
  if t and a.kind ~= "create_table" and t.made == "up" and t.dropped == "down" then return true end
  for _, c in ipairs(a.cobjs or {}) do
    if c.made == "up" and c.dropped == "down" then return true end
  end
  if (a.kind == "add_constraint" or a.kind == "set_not_null") and t then
    for _, c in ipairs(t.added or {}) do
      if c.made == "up" and c.dropped == "down" then return true end
    end
  end
  return false
end

-- The renames of upgrade() that downgrade() leaves in place: objects there before
-- upgrade() that do not end with their old name.
local function renames_left(st, find)
  for _, names in pairs(st) do
    for _, o in pairs(names) do
      local a = o.renamed and o.renamed.up
      if a and o.origin and o.name ~= o.origin then
        find("downgrade-not-inverse", ("upgrade() %s, which downgrade() does not undo")
          :format(describe(a)), nil, a.call.line, a.call.safes)
      end
    end
  end
end

-- Findings for a downgrade that is missing or does not undo the upgrade (up and down:
-- the recorded functions; ctx.opaque_ddl: upgrade() ran SQL the lint cannot read).
function inverse.check(up, down, ctx, find)
  local has_ddl = false
  for _, a in ipairs(up.actions) do has_ddl = has_ddl or not NEEDS_NO_UNDO[a.kind] or a.ddl end
  if not has_ddl then return end
  if down.error or #down.actions == 0 then
    find("downgrade-missing", down.error and ("downgrade() fails during the lint: %s"):format(down.error)
      or "downgrade() undoes nothing", nil, down.line, down.trailing)
    return
  end
  local st = {}
  replay(st, up.actions, "up")
  meet(st)
  replay(st, down.actions, "down")
  local available = {}
  for _, a in ipairs(down.actions) do
    local s = sig(a)
    if s then available[s] = (available[s] or 0) + 1 end
  end
  for _, a in ipairs(up.actions) do
    local inv = inverse_sig(a)
    if inv then
      if (available[inv] or 0) > 0 then
        available[inv] = available[inv] - 1
      elseif not covered(a) then
        find("downgrade-not-inverse", ("upgrade() %s, which downgrade() does not undo")
          :format(describe(a)), nil, a.call.line, a.call.safes)
      end
    end
  end
  renames_left(st, find)
  -- drops in downgrade of data upgrade did not make: lost on the way down
  if ctx.opaque_ddl then return end
  for _, a in ipairs(down.actions) do
    local lost = a.kind == "drop_table" and a.obj and not a.obj.made
      or a.kind == "drop_column" and a.cobj and not a.cobj.made and a.tobj.made ~= "up"
    if lost then
      find("downgrade-not-inverse", ("downgrade() %s, which upgrade() did not create: a "
        .. "downgrade would destroy data"):format(describe(a)), nil, a.call.line, a.call.safes)
    end
  end
end

return inverse

-- luamig.schemadiff: two snapshots of a database's schema and what differs between
-- them, as lines a person reads ("column sessions.description: missing before,
-- present after downgrade"), not a text diff of two dumps. A snapshot is one read of the
-- catalog by the reader autogenerate uses (luamig.introspect, full), flattened by
-- luamig.normalize.catalog; its queries go in two round trips.
local core = require "luamig.core"
local I = require "luamig.introspect"
local N = require "luamig.normalize"

local D = {}

-- The snapshot of the database on conn; ignore as luamig.introspect.read takes it (the
-- version table and its log, which every run writes).
function D.snapshot(conn, ignore)
  return N.catalog(I.read(conn, { full = true, ignore = ignore, batch = core.scratch.batch }))
end

-- Objects in the order a reader expects: containers before what they contain.
local RANK = { schema = 1, extension = 2, enum = 3, domain = 3, ["composite type"] = 3, type = 3,
               table = 4, column = 5, ["primary key"] = 6, ["unique constraint"] = 6,
               ["check constraint"] = 6, ["foreign key"] = 6, ["exclusion constraint"] = 6,
               index = 7, trigger = 8, sequence = 9, view = 10, ["materialized view"] = 10,
               ["function"] = 11, procedure = 11, aggregate = 11, ["window function"] = 11 }

local MAX_VALUE = 120

-- A property's value on one line, long ones (a function's body) cut short.
local function shown(v)
  if v == nil then return "none" end
  v = v:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if #v > MAX_VALUE then v = v:sub(1, MAX_VALUE - 3) .. "..." end
  return v
end

-- The differences from snapshot a to snapshot b, one line each, in a stable order;
-- labels = { "before", "after downgrade" } name the two sides. Empty when they agree.
-- What a missing table holds (its columns, indexes, ...) is not listed again.
function D.diff(a, b, labels)
  local before, after = labels[1], labels[2]
  local keys, seen = {}, {}
  for _, side in ipairs { a, b } do
    for k in pairs(side) do
      if not seen[k] then seen[k] = true; keys[#keys + 1] = k end
    end
  end
  table.sort(keys, function(x, y)
    local ex, ey = a[x] or b[x], a[y] or b[y]
    local rx, ry = RANK[ex.kind] or 99, RANK[ey.kind] or 99
    if rx ~= ry then return rx < ry end
    return x < y
  end)
  local lines = {}
  for _, k in ipairs(keys) do
    local ea, eb = a[k], b[k]
    local parent = (ea or eb).parent
    if parent and (ea and not b[parent] or eb and not a[parent]) then
      -- its table is missing on that side: the table's line says it all
    elseif not eb then
      lines[#lines + 1] = ("%s: present %s, missing %s"):format(k, before, after)
    elseif not ea then
      lines[#lines + 1] = ("%s: missing %s, present %s"):format(k, before, after)
    else
      local names = {}               -- the properties either side has
      for f in pairs(ea.fields) do names[#names + 1] = f end
      for f in pairs(eb.fields) do if ea.fields[f] == nil then names[#names + 1] = f end end
      table.sort(names)
      for _, f in ipairs(names) do
        local va, vb = ea.fields[f], eb.fields[f]
        if va ~= vb then
          lines[#lines + 1] = ("%s: %s %s %s, %s %s"):format(k, f, shown(va), before, shown(vb), after)
        end
      end
    end
  end
  return lines
end

return D

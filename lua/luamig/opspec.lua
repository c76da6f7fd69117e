-- luamig.opspec: the op registry (src/ops/ops_registry.c, core.op_specs()) on the Lua
-- side: each op's arguments by name and kind, its options, flags, lint kind,
-- inverse and docs. The lint, autogenerate's renderer and scripts/opdocs.lua read
-- ops through it, never by argument position.
--
--   local specs = require "luamig.opspec"
--   specs.by_name.create_index.params[2].name      --> "table"
--   specs.bind(spec, table.pack(...))               --> { name =, table =, ... }, options
local core = require "luamig.core"

local M = { list = core.op_specs(), by_name = {} }
for _, s in ipairs(M.list) do M.by_name[s.name] = s end

-- The arguments of a call of spec (packed: args.n) by their names, and its options
-- table ({} when absent or not a table: the op itself refuses that).
function M.bind(spec, args)
  local named = {}
  for i, p in ipairs(spec.params) do named[p.name] = args[i] end
  local opts = spec.options and args[#spec.params + 1]
  return named, type(opts) == "table" and opts or {}
end

-- The name of spec's option that qualifies its object with a schema, or nil.
function M.qualifier(spec)
  for _, o in ipairs(spec.options or {}) do
    if o.kind == "schema" then return o.name end
  end
end

-- "op.create_index(name, table, columns [, { unique =, ... }]) -> rows", as the docs
-- write an op.
function M.signature(spec)
  local args, optional = {}, ""
  for _, p in ipairs(spec.params) do
    if p.optional then optional = optional .. " [, " .. p.name .. "]"
    else args[#args + 1] = p.name end
  end
  local opts = ""
  if spec.options then
    local keys = {}
    for i, o in ipairs(spec.options) do keys[i] = o.name .. " =" end
    local list = "{ " .. table.concat(keys, ", ") .. " }"
    opts = spec.flags.options_needed and (", " .. list) or (" [, " .. list .. "]")
  end
  return ("op.%s(%s%s%s)%s"):format(spec.name, table.concat(args, ", "), optional, opts,
    spec.returns and (" -> " .. spec.returns) or "")
end

return M

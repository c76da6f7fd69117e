-- The op registry (src/ops/ops_registry.c, issue #17): one description per op, which
-- the op table, the lint, autogenerate's renderer and the docs all read. A row
-- that leaves out a part (its lint kind, its example) fails here, before it can
-- silently switch off a check.
local core = require "luamig.core"
local specs = require "luamig.opspec"
local actions = require "luamig.lint_actions"
local R = require "luamig.render"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local KINDS = {}
for k in ([[ident name? name boolean schema idents elements text string strings word default
  comment integer column columns rows params]]):gmatch("%S+") do KINDS[k] = true end

-- Runs example (Lua) with op bound to a fresh offline context; returns its script,
-- or nil and the error.
local function offline(example)
  local ctx = core.new_context(nil, { transactional = false })
  local chunk = assert(load(example, "=example", "t", { op = core.ops(ctx), ipairs = ipairs }))
  local ok, err = pcall(chunk)
  if not ok then return nil, err end
  return core.script(ctx)
end

-- The op calls example makes: { { name, args (packed) } }, recorded, not run.
local function calls(example)
  local list = {}
  local op = setmetatable({}, { __index = function(_, name)
    return function(...) list[#list + 1] = { name = name, args = table.pack(...) } return {} end
  end })
  assert(load(example, "=example", "t", { op = op, ipairs = ipairs }))()
  return list
end

describe("the op registry", function()
  it("is the op table: every op a revision gets has a row, and every row an op", function()
    local ops = core.ops(core.new_context())
    for name in pairs(ops) do assert.is_table(specs.by_name[name], "op." .. name .. " has no row") end
    for _, spec in ipairs(specs.list) do
      assert.is_function(ops[spec.name], "row " .. spec.name .. " is not bound")
    end
  end)

  it("describes each op whole: arguments, options, section, example", function()
    for _, spec in ipairs(specs.list) do
      local seen = {}
      for _, p in ipairs(spec.params) do
        assert.is_true(KINDS[p.kind], spec.name .. ": argument " .. p.name .. " has kind " .. tostring(p.kind))
        assert.is_nil(seen[p.name], spec.name .. ": two arguments named " .. p.name)
        seen[p.name] = true
      end
      for _, o in ipairs(spec.options or {}) do
        assert.is_true(KINDS[o.kind], spec.name .. ": option " .. o.name .. " has kind " .. tostring(o.kind))
        assert.is_nil(seen[o.name], spec.name .. ": " .. o.name .. " twice")
        seen[o.name] = true
      end
      assert.is_string(spec.section, spec.name .. " has no section")
      assert.is_string(spec.example, spec.name .. " has no example")
      if spec.inverse then assert.is_table(specs.by_name[spec.inverse], spec.name .. ": no op " .. spec.inverse) end
    end
  end)

  it("gives every op a lint kind the lint knows (or the data-loss check would go blind)", function()
    for _, spec in ipairs(specs.list) do
      assert.is_function(actions.kind_of(spec), ("op.%s: lint kind %s"):format(spec.name, tostring(spec.lint)))
    end
    local row = { name = "no_lint", params = {}, flags = {} }
    specs.by_name.no_lint = row
    local ok, err = pcall(actions.from_call, "no_lint", table.pack())
    specs.by_name.no_lint = nil
    assert.is_false(ok)
    assert.matches("op.no_lint has no lint kind the lint knows", err, 1, true)
  end)

  it("lints each DDL op's example as what it does, never as opaque SQL", function()
    for _, spec in ipairs(specs.list) do
      for _, call in ipairs(calls(spec.example)) do
        if specs.by_name[call.name].ddl then
          for _, a in ipairs(actions.from_call(call.name, call.args)) do
            assert.is_not_true(a.kind == "other" and a.ddl,
              ("op.%s in op.%s's example reads as opaque DDL"):format(call.name, spec.name))
          end
        end
      end
    end
  end)

  it("renders any op's call from its arguments by name, to the same statements", function()
    for _, spec in ipairs(specs.list) do
      local want, live = offline(spec.example)
      if not live then
        local text = {}
        for _, call in ipairs(calls(spec.example)) do
          local s = specs.by_name[call.name]
          text[#text + 1] = R.call(call.name, specs.bind(s, call.args), s.options and call.args[#s.params + 1])
        end
        assert.same(want, offline(table.concat(text, "\n")), "op." .. spec.name)
      end
    end
  end)

  it("writes the signature the docs show", function()
    assert.equal("op.create_foreign_key(name, source, referent, local_cols, remote_cols [, { "
      .. "referent_schema =, ondelete =, onupdate =, deferrable =, initially =, match =, not_valid =, "
      .. "schema = }])", specs.signature(specs.by_name.create_foreign_key))
    assert.equal("op.execute(sql [, params]) -> affected rows", specs.signature(specs.by_name.execute))
    assert.equal("op.alter_column(table, column, { type =, using =, nullable =, server_default =, "
      .. "new_name =, comment =, schema = })", specs.signature(specs.by_name.alter_column))
  end)
end)

-- op.create_sequence and op.drop_sequence (issue #17): the op added through the
-- registry alone (its builder and its row), with the lint and autogenerate's
-- renderer knowing it from the row.
local h = require "helpers"
local core = require "luamig.core"
local lint = require "luamig.lint"
local R = require "luamig.render"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local function failure(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("op.create_sequence (live)", function()
  local conn, op
  h.database_each(function(name)
    conn = core.connect(h.url(name))
    op = core.ops(core.new_context(conn))
  end, function() conn:close() end)

  local function seq(schema, name)
    return conn:query([[SELECT start_value, increment_by, min_value, max_value, cache_size, cycle
                          FROM pg_sequences WHERE schemaname = $1 AND sequencename = $2]],
                      schema, name)[1]
  end

  it("creates a sequence with its options, in its schema, owned by a column", function()
    op.create_schema("billing")
    op.create_table("invoices", { { "number", "bigint" } }, { schema = "billing" })
    op.create_sequence("invoice_numbers", { schema = "billing", start = 1000, increment = 5,
      minvalue = 10, maxvalue = 99999, cache = 20, cycle = true, owned_by = "invoices.number" })
    assert.same({ start_value = 1000, increment_by = 5, min_value = 10, max_value = 99999,
                  cache_size = 20, cycle = true }, seq("billing", "invoice_numbers"))
    assert.equal(1000, conn:query("SELECT nextval('billing.invoice_numbers') AS n")[1].n)
    op.create_sequence("invoice_numbers", { schema = "billing", if_not_exists = true })
    op.drop_column("invoices", "number", { schema = "billing" })   -- takes its owned sequence
    assert.is_nil(seq("billing", "invoice_numbers"))
  end)

  it("drops a sequence, if_exists and cascade as asked", function()
    op.create_sequence("s")
    op.create_table("t", { { "id", "bigint", default = "nextval('s')" } })
    local err = failure(op.drop_sequence, "s")
    assert.matches("op.drop_sequence: 2BP01: cannot drop sequence s because other objects depend on it", err, 1, true)
    op.drop_sequence("s", { cascade = true })
    op.drop_sequence("s", { if_exists = true })
    assert.is_nil(seq("public", "s"))
  end)
end)

describe("op.create_sequence (offline)", function()
  local ctx, op
  before_each(function()
    ctx = core.new_context()
    op = core.ops(ctx)
  end)

  it("writes CREATE SEQUENCE and DROP SEQUENCE, every name quoted", function()
    op.create_sequence("s", { start = 1, increment = -1, minvalue = -100, maxvalue = 1, cache = 1,
      cycle = false, owned_by = 'we"ird.id', if_not_exists = true, schema = "app" })
    op.create_sequence("plain")
    op.drop_sequence("s", { if_exists = true, cascade = true, schema = "app" })
    assert.same({
      'CREATE SEQUENCE IF NOT EXISTS "app"."s" INCREMENT BY -1 MINVALUE -100 MAXVALUE 1 START WITH 1 '
        .. 'CACHE 1 NO CYCLE OWNED BY "app"."we""ird"."id";',
      'CREATE SEQUENCE "plain";',
      'DROP SEQUENCE IF EXISTS "app"."s" CASCADE;',
    }, core.script(ctx))
  end)

  it("names the op and the problem for bad arguments", function()
    local cases = {
      { "create_sequence", { "s", { start = "1" } }, "start must be an integer (got 1)" },
      { "create_sequence", { "s", { cache = 1.5 } }, "cache must be an integer (got 1.5)" },
      { "create_sequence", { "s", { owned_by = "id" } }, 'owned_by must be "table.column" (got "id")' },
      { "create_sequence", { "s", { cycle = "yes" } }, "cycle must be a boolean" },
      { "create_sequence", { "s", { owner = "x" } }, "unknown option 'owner'" },
      { "create_sequence", { ("s"):rep(64) }, 'identifier "' .. ("s"):rep(64) .. '" is longer than 63 bytes' },
      { "drop_sequence", { "s", { start = 1 } }, "unknown option 'start'" },
    }
    for _, case in ipairs(cases) do
      assert.matches("op." .. case[1] .. ": " .. case[3], failure(op[case[1]], table.unpack(case[2])), 1, true)
    end
  end)
end)

describe("op.create_sequence in the lint and autogenerate", function()
  -- The findings of one revision whose upgrade() and downgrade() are up and down.
  local function lint_of(up, down)
    local path = "versions/seq.lua"
    local env = setmetatable({}, { __index = _G })
    assert(load(("function upgrade()\n  %s\nend\nfunction downgrade()\n  %s\nend\n"):format(up, down),
                "@" .. path, "t", env))()
    return lint.analyze({ { id = "seq", path = path, env = env } })
  end
  local function messages(findings)
    local out = {}
    for _, f in ipairs(findings) do out[#out + 1] = f.rule .. ": " .. f.message end
    return out
  end

  it("knows downgrade() must drop the sequence upgrade() creates", function()
    assert.same({}, messages(lint_of('op.create_sequence("s", { schema = "app" })',
                                     'op.drop_sequence("s", { schema = "app" })')))
    assert.same({ 'downgrade-not-inverse: upgrade() creates sequence "app.s", which downgrade() does not undo' },
      messages(lint_of('op.create_sequence("s", { schema = "app" })', 'op.drop_sequence("s")')))
    assert.same({ "downgrade-missing: downgrade() undoes nothing" },
      messages(lint_of('op.create_sequence("s")', "")))
  end)

  it("renders the op's call from the registry", function()
    assert.equal('op.create_sequence("s", { start = 5, cycle = true, owned_by = "t.id", schema = "app" })',
      R.call("create_sequence", { name = "s" }, { schema = "app", owned_by = "t.id", cycle = true, start = 5 }))
    assert.equal('op.drop_sequence("s")', R.call("drop_sequence", { name = "s" }))
  end)
end)

-- The Lua API an app calls at start-up: same core, Lua values back, nil, err on failure.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

describe("require 'luamig'", function()
  local luamig = require "luamig"
  local db, dir
  before_each(function()
    db = h.new_database()
    dir = h.project({
      ["versions/a1_users.lua"] = h.revision("a1", nil,
        [[op.create_table("users", { { "id", "bigint", primary_key = true }, { "email", "text", nullable = false } })]],
        [[op.drop_table("users")]], { message = "Create users" }),
      ["versions/b2_flag.lua"] = h.revision("b2", "a1",
        [[op.add_column("users", { "active", "boolean", default = "true" })]],
        [[op.drop_column("users", "active")]], { message = "Add active" }),
    })
  end)
  after_each(function() h.drop_database(db) end)

  it("upgrades, reports steps with durations, logs only when asked", function()
    local lines = {}
    local steps, err = luamig.upgrade { config = dir .. "/luamig.lua", url = h.url(db),
                                        log = function(l) lines[#lines + 1] = l end }
    assert.is_nil(err)
    assert.equal(2, #steps)
    assert.equal("a1", steps[1].revision)
    assert.equal("b2", steps[2].revision)
    assert.equal("upgrade", steps[2].direction)
    assert.equal("Add active", steps[2].message)
    assert.is_number(steps[2].ms)
    assert.matches("^Running upgrade a1 %-> b2, Add active %([%d.]+ ms%)$", lines[2])
    assert.equal("t", h.psql(db, [[SELECT column_default = 'true' FROM information_schema.columns
                                   WHERE table_name = 'users' AND column_name = 'active']]))
    local cur = assert(luamig.current { config = dir .. "/luamig.lua", url = h.url(db) })
    assert.equal("b2", cur[1].revision)
    assert.is_true(cur[1].head)
    local hist = assert(luamig.history { config = dir .. "/luamig.lua" })
    assert.equal("b2", hist[1].revision)
    assert.equal("a1", hist[2].revision)
    steps = assert(luamig.downgrade { config = dir .. "/luamig.lua", url = h.url(db), target = "base" })
    assert.equal("b2", steps[1].revision)
    assert.equal("a1", steps[2].revision)
    assert.equal("", h.psql(db, "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'luamig%'"))
  end)

  it("returns nil and a message on failure, and leaves the connection usable for a retry", function()
    local steps, err = luamig.upgrade { config = dir .. "/luamig.lua", url = h.url(db), target = "nope" }
    assert.is_nil(steps)
    assert.matches("Can't locate revision identified by 'nope'", err)
    -- the lock of the failed call is gone: a new run proceeds at once
    assert.truthy(luamig.upgrade { config = dir .. "/luamig.lua", url = h.url(db) })
    assert.equal("b2", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("gives server WARNINGs to the log, not to stderr", function()
    local noisy = h.project({
      ["versions/a1_noisy.lua"] = h.revision("a1", nil,
        [[op.execute("DO $$ BEGIN RAISE WARNING 'careful: %', 42; END $$")]], "",
        { message = "noisy" }),
    })
    local lines = {}
    assert(luamig.upgrade { config = noisy .. "/luamig.lua", url = h.url(db), lint = "off",
                            log = function(l) lines[#lines + 1] = l end })
    assert.same({ "Running upgrade  -> a1, noisy", "warning: server: careful: 42" },
      { (lines[1]:gsub(" %([%d.]+ ms%)$", "")), lines[2] })
    assert.equal(2, #lines)
  end)

  it("raises for a wrong call", function()
    assert.has_error(function() luamig.upgrade("head") end)
  end)

  it("keeps revision globals out of the host", function()
    local d2 = h.project({ ["versions/x.lua"] = h.revision("x", nil, "leaked = 1", "") })
    assert.truthy(luamig.upgrade { config = d2 .. "/luamig.lua", url = h.url(db) })
    assert.is_nil(rawget(_G, "leaked"))
    assert.is_nil(rawget(_G, "revision"))
  end)
end)

-- The server's SQLSTATE as data (#17): the Lua API gives it as the third
-- value (nil, message, sqlstate), and the run decides "lock timeout" and
-- "the guard refused" from the failed statement's record, not from words
-- found in whatever text a failure carries.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

describe("SQLSTATE as data", function()
  local luamig = require "luamig"
  local core = require "luamig.core"
  local db, holder
  h.database_each(function(name) db = name end, function()
    if holder then holder:close() end
    holder = nil
  end)

  -- Upgrades a project of one revision "a" (body: its upgrade); returns what
  -- luamig.upgrade returns, then the lines it logged.
  local function upgrade(body, config)
    local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, body, "") },
      config or 'return { versions = "versions" }')
    local lines = {}
    local steps, err, state = luamig.upgrade { config = dir .. "/luamig.lua", url = h.url(db),
      lint = "off", log = function(l) lines[#lines + 1] = l end }
    return steps, err, state, table.concat(lines, "\n")
  end

  -- Table t, held in ACCESS SHARE mode by another session until it closes.
  local function busy_table()
    h.psql(db, "CREATE TABLE t (id int)")
    holder = core.connect(h.url(db))
    holder:exec("BEGIN")
    holder:exec("LOCK TABLE t IN ACCESS SHARE MODE")
  end
  local function timeouts(retries)
    return ('return { versions = "versions", lock_timeout = "100ms", lock_retries = %d }')
      :format(retries)
  end

  it("gives a failing statement's SQLSTATE as the third value", function()
    local steps, err, state = upgrade('op.execute("SELECT 1/0")')
    assert.is_nil(steps)
    assert.matches("upgrade a failed: .*a%.lua:%d+: op%.execute: 22012: division by zero; "
      .. "SQL: SELECT 1/0", err)
    assert.equal("22012", state)
  end)

  it("gives 55P03 for a lock timeout", function()
    busy_table()
    local steps, err, state = upgrade('op.add_column("t", { "x", "int" })', timeouts(0))
    assert.is_nil(steps)
    assert.matches("55P03: canceling statement due to lock timeout", err)
    assert.matches("blocked by: pid %d+", err)
    assert.equal("55P03", state)
  end)

  it("gives none for an error that is not the server's", function()
    local steps, err, state = upgrade('error("boom")')
    assert.is_nil(steps)
    assert.matches("a%.lua:%d+: boom$", err)
    assert.is_nil(state)
    local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, "", "") })
    local _, err2, state2 = luamig.upgrade { config = dir .. "/luamig.lua", url = h.url(db),
                                             target = "nope" }
    assert.matches("Can't locate revision identified by 'nope'", err2)
    assert.is_nil(state2)
  end)

  it("gives none, and retries nothing, when a revision catches a lock timeout and raises "
    .. "its own error", function()
    busy_table()
    local steps, err, state, log = upgrade([[
      local ok = pcall(op.execute, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
      if not ok then error("t is busy: try at night", 0) end]], timeouts(2))
    assert.is_nil(steps)
    assert.matches("upgrade a failed: .*a%.lua:%d+: t is busy: try at night$", err)
    assert.is_nil(state)
    assert.not_matches("lock timeout in", log)
  end)

  it("retries a lock timeout a revision caught and raised again", function()
    busy_table()
    local steps, err, state, log = upgrade([[
      local ok, e = pcall(op.execute, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
      if not ok then error("while locking t: " .. e, 0) end]], timeouts(1))
    assert.is_nil(steps)
    assert.matches("lock timeout in a %(try 1 of 2%): retrying in 0%.5 s", log)
    assert.matches("while locking t: .*55P03.*blocked by: pid", err)
    assert.equal("55P03", state)
  end)

  it("takes no statement for a lock timeout because its text holds 55P03", function()
    local steps, err, state, log = upgrade('op.execute("SELECT 1/0 AS \\"55P03\\"")', timeouts(1))
    assert.is_nil(steps)
    assert.not_matches("lock timeout in", log)
    assert.not_matches("blocked by", err)
    assert.equal("22012", state)
  end)

  it("takes no error of the revision's own for the guard's", function()
    local steps, err = upgrade('error("the luamig:lock and luamig:rows words")')
    assert.is_nil(steps)
    assert.matches("a%.lua:%d+: the luamig:lock and luamig:rows words$", err)
    assert.not_matches("migration lock", err)
    assert.equal("", h.psql(db, "SELECT string_agg(version_num, ',') FROM luamig_version"))
  end)
end)

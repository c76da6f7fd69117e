-- A streaming standby of the test cluster (pg_basebackup -R): upgrade,
-- downgrade and stamp refuse it up front, in one line, while current,
-- history, heads and status read it; a multi-host URL with
-- target_session_attrs=read-write finds the primary behind it, and a dead
-- first server costs connect_timeout, not the run.
local h = require "helpers"
local topo = require "topology"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local STANDBY = "the server is a read-only standby"

describe("on a standby #cli", function()
  local standby
  lazy_setup(function()
    local ok, err = pcall(function()
      local p = topo.primary()
      standby = topo.start("standby", p.host, p.port)
    end)
    if not ok then topo.stop_all() error(err) end
  end)
  lazy_teardown(topo.stop_all)

  local db, dir
  h.database_each(function(name)
    db, dir = name, topo.chain(3)
    assert.equal(0, (h.run({ "upgrade", "r02" }, { cwd = dir, env = { DATABASE_URL = h.url(name) } })))
    topo.caught_up(standby)
  end)

  it("refuses upgrade, downgrade and stamp up front, in one line, and changes nothing", function()
    local env = { DATABASE_URL = topo.url(standby, db) }
    for _, args in ipairs({ { "upgrade", "head" }, { "downgrade", "-1" }, { "stamp", "r03" },
                            { "upgrade", "head", "--backup", dir .. "/b.sql" } }) do
      local code, out, err = h.run(args, { cwd = dir, env = env })
      assert.equal(1, code)
      assert.equal("", out)
      assert.equal(1, select(2, err:gsub("\n", "")), err)
      assert.matches("luamig: error: " .. STANDBY .. " (" .. standby.host .. ":" .. standby.port
        .. " is in recovery): upgrade, downgrade and stamp must run on the primary", err, 1, true)
    end
    assert.is_nil(io.open(dir .. "/b.sql"), "no backup taken before the refusal")
    assert.equal("r02", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("still answers current, history, heads and status", function()
    local env = { DATABASE_URL = topo.url(standby, db) }
    local code, out, err = h.run({ "current" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.equal("r02\n", out)
    code, out = h.run({ "history", "-i" }, { cwd = dir, env = env })
    assert.equal(0, code)
    assert.matches("r01 -> r02 (current), r02", out, 1, true)
    code, out = h.run({ "heads" }, { cwd = dir, env = env })
    assert.equal(0, code)
    assert.equal("r03 (head)\n", out)
    code, out = h.run({ "status" }, { cwd = dir, env = env })
    assert.equal(3, code)
    assert.matches("r03", out, 1, true)
  end)

  it("goes to the primary with target_session_attrs=read-write, the standby listed first", function()
    local url = topo.url({ standby, topo.primary() }, db, "target_session_attrs=read-write")
    local code, out, err = h.run({ "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(0, code, err)
    assert.matches("Running upgrade r02 -> r03", out, 1, true)
    assert.equal("r03", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("tries the next server after connect_timeout when the first never answers", function()
    local port, stop = h.silent_listener()
    local url = topo.url({ { host = "127.0.0.1", port = port }, topo.primary() }, db,
                         "connect_timeout=2&sslmode=disable")
    local t0 = os.time()
    local code, _, err = h.run({ "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = url } })
    local took = os.time() - t0
    stop()
    assert.equal(0, code, err)
    assert.equal("r03", h.psql(db, "SELECT version_num FROM luamig_version"))
    assert.truthy(took >= 1 and took <= 5, "took " .. took .. " s")
  end)
end)

-- A no-op deploy as cheap as `psql -c 'select 1'` (issue #18): what a run that finds
-- nothing to do asks the server, counted in round trips (strace) and bytes read.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local chain = h.chain

describe("a no-op run #cli", function()
  local db, url
  h.database_each(function(name) db, url = name, h.url(name) end)

  it("asks the server in as few round trips as it can, and reads a fingerprint of the log, not its rows", function()
    local dir = chain(300)
    local env = { DATABASE_URL = url }
    h.run_ok({ "-q", "upgrade", "head" }, { cwd = dir, env = env })
    assert.equal("300", h.psql(db, "SELECT count(*) FROM luamig_log"))   -- ~30 kB of rows
    -- current: the start-up, the version rows, the goodbye
    assert.equal(3, (h.round_trips(dir, { "current" }, env)))
    -- upgrade head: the start-up; the lock with whether the tables exist, then (after its
    -- transaction) the version rows and the log's fingerprint; the log's digest, as this
    -- directory has not seen that log (logseen_spec.lua); the unlock; the goodbye
    assert.equal(5, (h.round_trips(dir, { "upgrade", "head" }, env)))
    -- the next: the log as seen, no digest
    local trips, bytes = h.round_trips(dir, { "upgrade", "head" }, env)
    assert.equal(4, trips)
    assert.is_true(bytes < 4096, ("read %d bytes"):format(bytes))
    assert.equal("r300", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("reads the whole log as soon as the digest disagrees, and warns as before", function()
    local dir = chain(3)
    h.run_ok({ "-q", "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = url } })
    h.psql(db, "UPDATE luamig_log SET checksum = 'x' WHERE revision = 'r002'")
    local code, _, err = h.run({ "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(0, code, err)
    assert.matches("revision r002 %(versions/r002.lua%) was changed after it was applied", err)
    h.psql(db, "INSERT INTO luamig_log (revision, direction) VALUES ('r003', 'downgrade')")
    code, _, err = h.run({ "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(0, code, err)
    assert.matches("the version table says 1 revision is applied that the audit log never recorded", err)
  end)

  -- the lock's round trip goes as soon as the session is up, while the files are read
  it("leaves no lock and no half-read answer behind when reading the files then fails", function()
    local dir = chain(300)
    local env = { DATABASE_URL = url }
    h.run_ok({ "-q", "upgrade", "head" }, { cwd = dir, env = env })
    local copy = dir .. "/versions/zz_copy.lua"
    h.write_file(copy, h.read_file(dir .. "/versions/r150.lua"))   -- a second r150
    for _ = 1, 3 do
      local code, _, err = h.run({ "upgrade", "head" }, { cwd = dir, env = env })
      assert.equal(1, code)
      assert.matches("r150", err)
    end
    os.remove(copy)
    local code, _, err = h.run({ "--lock-wait", "0", "upgrade", "head" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.equal("0", h.psql(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
  end)
end)

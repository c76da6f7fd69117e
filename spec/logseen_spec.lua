-- The audit logs seen (.luamig-cache/logs, issue #18): a no-op upgrade reads the log's
-- fingerprint with the lock, and its digest only when this directory's runs have not
-- read one with that fingerprint. The cache must only ever cost time: each finding is
-- still reported with it in use, and a stale, foreign or broken one is not trusted.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local chain = h.chain

local function round_trips(dir, url, args)
  local trips, _, err = h.round_trips(dir, args, { DATABASE_URL = url })
  return trips, err
end

-- start-up; the lock with the version rows and the log's fingerprint; the unlock; goodbye
local SEEN = 4

describe("the audit logs seen #cli", function()
  local db, url, dir
  h.database_each(function(name) db, url = name, h.url(name) end)

  local function upgrade()
    local code, _, err = h.run({ "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(0, code, err)
    return err
  end

  -- a deployed project whose log a no-op run has seen
  local function deployed(n)
    dir = chain(n)
    upgrade()
    local trips = round_trips(dir, url, { "upgrade", "head" })
    assert.equal(SEEN + 1, trips)      -- not seen yet: its digest is read
    assert.truthy(io.open(dir .. "/versions/.luamig-cache/logs"), "no cache of the logs seen")
    assert.equal(SEEN, (round_trips(dir, url, { "upgrade", "head" })))
  end

  it("lets a no-op upgrade read the log's fingerprint, not its digest", function()
    deployed(3)
    assert.equal("", upgrade():gsub("Nothing to do[^\n]*\n", ""))
    assert.equal("r003", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("still warns about a file edited after it was applied (the log is the one seen)", function()
    deployed(3)
    local path = dir .. "/versions/r002.lua"
    h.write_file(path, h.read_file(path) .. "-- edited\n")
    local trips, err = round_trips(dir, url, { "upgrade", "head" })
    assert.equal(SEEN + 1, trips)      -- the seen digest disagrees: the log's rows are read
    assert.matches("revision r002 %(versions/r002.lua%) was changed after it was applied", err)
  end)

  it("reads the digest again when a row was changed, added or deleted by hand", function()
    deployed(3)
    h.psql(db, "UPDATE luamig_log SET checksum = 'x' WHERE revision = 'r002'")
    local trips, err = round_trips(dir, url, { "upgrade", "head" })
    assert.equal(SEEN + 2, trips)      -- the digest, then the log's rows
    assert.matches("revision r002 %(versions/r002.lua%) was changed after it was applied", err)
    -- that log now seen: its digest is not read again, and the warning stays
    trips, err = round_trips(dir, url, { "upgrade", "head" })
    assert.equal(SEEN + 1, trips)
    assert.matches("revision r002 %(versions/r002.lua%) was changed after it was applied", err)
    h.psql(db, "DELETE FROM luamig_log WHERE revision = 'r003'")
    assert.matches("the version table says 1 revision is applied that the audit log never recorded",
      upgrade())
  end)

  it("still warns about a run that stopped inside a revision (a -started row)", function()
    deployed(3)
    h.psql(db, "INSERT INTO luamig_log (revision, direction, checksum) SELECT revision, "
      .. "'upgrade-started', checksum FROM luamig_log WHERE revision = 'r003'")
    local err = upgrade()
    assert.matches("an earlier run stopped inside revision r003", err)
    -- every run says so again, seen or not
    assert.matches("an earlier run stopped inside revision r003", upgrade())
  end)

  it("does not trust a cache from another build, a broken one, or another database's", function()
    deployed(2)
    local cache = dir .. "/versions/.luamig-cache/logs"
    local text = h.read_file(cache)
    h.write_file(cache, text:gsub("^luamig [^\n]*", "luamig 0.0.0 other"))
    assert.equal(SEEN + 1, (round_trips(dir, url, { "upgrade", "head" })))
    h.write_file(cache, h.read_file(cache):sub(1, -10) .. "garbage\n")
    assert.equal(SEEN + 1, (round_trips(dir, url, { "upgrade", "head" })))
    assert.equal(SEEN, (round_trips(dir, url, { "upgrade", "head" })))
    -- a copy of the database with an edited log: its own fingerprint, not the one seen
    local copy = h.new_database()      -- its name, dropped after the spec if it fails
    h.psql("postgres", ('DROP DATABASE "%s"'):format(copy))
    h.psql("postgres", ('CREATE DATABASE "%s" TEMPLATE "%s"'):format(copy, db))
    h.psql(copy, "UPDATE luamig_log SET checksum = 'x' WHERE revision = 'r001'")
    local trips, err = round_trips(dir, h.url(copy), { "upgrade", "head" })
    h.drop_database(copy)
    assert.equal(SEEN + 2, trips)
    assert.matches("revision r001 %(versions/r001.lua%) was changed after it was applied", err)
  end)

  it("reads the version rows again when it had to wait for the lock", function()
    deployed(3)
    local key = "hashtextextended('luamig:public.luamig_version', 0)"
    -- another session holds the lock, moves the table back to r002 by hand, and lets go
    local holder = ("%s -X -q -d %s -c %s -c 'SELECT pg_sleep(1)' -c %s >/dev/null 2>&1 &"):format(
      "/usr/lib/postgresql/15/bin/psql", h.shell_quote(url),
      h.shell_quote("SELECT pg_advisory_lock(" .. key .. ")"),
      h.shell_quote("BEGIN; UPDATE luamig_version SET version_num = 'r002'; INSERT INTO luamig_log "
        .. "(revision, direction) VALUES ('r003', 'downgrade'); DROP TABLE t003; COMMIT"))
    assert.equal(0, (h.sh(holder)))
    h.eventually(function()
      return h.psql(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == "1"
    end, "the other session to take the lock")
    local code, out, err = h.run({ "--lock-wait", "20", "upgrade", "head" },
      { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(0, code, err)
    assert.matches("Running upgrade r002 %-> r003", out .. err)
    assert.equal("r003", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)
end)

-- A no-op deploy as cheap as `psql -c 'select 1'` (issue #18): what a run that finds
-- nothing to do asks the server, counted in messages sent (strace) and bytes read.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

-- n revisions r001..rNNN, each creating a table.
local function chain(n)
  local files = {}
  for i = 1, n do
    local id, down = ("r%03d"):format(i), i > 1 and ("r%03d"):format(i - 1) or nil
    files[("versions/%s.lua"):format(id)] = h.revision(id, down,
      ('op.create_table("t%03d", { { "id", "int" } })'):format(i), ('op.drop_table("t%03d")'):format(i))
  end
  return h.project(files)
end

-- The messages a run of luamig args in dir sent to the server (a send per round
-- trip, the start-up and the goodbye included) and the bytes it read, from strace.
local function traffic(dir, url, args)
  local sends, bytes = 0, 0
  local log, code = h.strace(dir, args, "sendto,recvfrom", { DATABASE_URL = url })
  assert.equal(0, code)
  for line in log:gmatch("[^\n]+") do
    if line:find("sendto(", 1, true) then sends = sends + 1 end
    local got = line:match("^%d+%s+recvfrom%(.*%) = (%d+)$")
    if got then bytes = bytes + tonumber(got) end
  end
  return sends, bytes
end

describe("a no-op run #cli", function()
  local db, url
  h.database_each(function(name) db, url = name, h.url(name) end)

  it("asks the server in as few round trips as it can, and reads a digest of the log, not its rows", function()
    local dir = chain(300)
    h.run_ok({ "-q", "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal("300", h.psql(db, "SELECT count(*) FROM luamig_log"))   -- ~30 kB of rows
    -- current: the start-up, the version rows, the goodbye
    assert.equal(3, (traffic(dir, url, { "current" })))
    -- upgrade head: the start-up; the lock with whether the tables exist; the version rows
    -- with the log's digest; the unlock; the goodbye
    local sends, bytes = traffic(dir, url, { "upgrade", "head" })
    assert.equal(5, sends)
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
end)

-- examples/app: an app that migrates at start-up through the Lua API. Eight copies
-- started at once on one database (several containers of one deploy) must all come
-- up, and each revision must run exactly once. #startup
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local APP = h.root .. "/examples/app/app.lua"
local HEAD = "9d2e7f1a4b33"
local REVISIONS = { "5b7e1d2c9a01", "c3f48a6b0e12", HEAD }

-- lua5.4 running the app with the luamig module of this tree (as .busted does).
local function app_job(db)
  local path = h.root .. "/lua/?.lua;" .. h.root .. "/lua/?/init.lua;;"
  local cpath = h.root .. "/build/lib/?.so;;"
  return { { APP }, {
    bin = "lua5.4",
    cwd = os.getenv("TMPDIR") or "/tmp",       -- anywhere: the app finds its own config
    env = { DATABASE_URL = h.url(db), LUA_PATH = path, LUA_PATH_5_4 = path,
            LUA_CPATH = cpath, LUA_CPATH_5_4 = cpath },
    timeout = 60,
  } }
end

describe("app start-up migrations #startup", function()
  local db
  before_each(function() db = h.new_database() end)
  after_each(function() h.drop_database(db) end)

  it("eight copies at once: all ready, every revision applied exactly once", function()
    local jobs = {}
    for i = 1, 8 do jobs[i] = app_job(db) end
    local results = h.run_all(jobs)
    local applied = 0
    for i, r in ipairs(results) do
      local what = ("copy %d (exit %s):\n%s%s"):format(i, tostring(r.code), r.stdout, r.stderr)
      assert.equal(0, r.code, what)
      assert.truthy(("\n" .. r.stdout):find("\napp ready\n$"), what)
      applied = applied + select(2, r.stdout:gsub("Running upgrade", ""))
    end
    -- one copy ran the three revisions; the seven others waited on the lock, then had nothing to do
    assert.equal(3, applied)
    local zero = 0
    for _, r in ipairs(results) do
      if r.stdout:find("app: 0 migrations applied", 1, true) then zero = zero + 1 end
    end
    assert.equal(7, zero)
    assert.equal(table.concat(REVISIONS, ",") .. "|3",
      h.psql(db, [[SELECT string_agg(revision, ',' ORDER BY id) || '|' || count(DISTINCT revision)
                   FROM app_migration_log]]))
    assert.equal("1", h.psql(db, [[SELECT count(DISTINCT backend_pid) FROM app_migration_log]]))
    assert.equal(HEAD, h.psql(db, "SELECT string_agg(version_num, ',') FROM luamig_version"))
    assert.equal("title", h.psql(db, [[SELECT column_name FROM information_schema.columns
                                       WHERE table_name = 'notes' AND column_name = 'title']]))
  end)

  it("a second start finds nothing to do", function()
    local r1 = h.run_all({ app_job(db) })[1]
    assert.equal(0, r1.code, r1.stderr)
    local r2 = h.run_all({ app_job(db) })[1]
    assert.equal(0, r2.code, r2.stderr)
    assert.matches("app: 0 migrations applied\napp ready\n", r2.stdout, nil, true)
    assert.equal("3", h.psql(db, "SELECT count(*) FROM app_migration_log"))
  end)

  it("exits 1 with the error when the database cannot be migrated", function()
    local job = app_job(db)
    job[2].env.DATABASE_URL = h.url(db .. "_missing")
    local r = h.run_all({ job })[1]
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("app: database migration failed: ", r.stderr, nil, true)
    assert.matches(db .. "_missing", r.stderr, nil, true)
    assert.not_matches("app ready", r.stdout, nil, true)
  end)
end)

-- Behind PgBouncer (Debian's package, on a Unix socket next to the test
-- cluster), in session and in transaction pooling: the read-only commands
-- work through either; upgrade, downgrade and stamp refuse a pool nobody
-- vouched for (the migration lock is unsafe in transaction pooling, and no
-- probe can tell the two modes apart) in the round trip that takes the lock,
-- and run through direct_url / --direct-url, many at once, exactly once.
local h = require "helpers"
local topo = require "topology"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local POOLER = "goes through a connection pooler such as PgBouncer"

describe("behind PgBouncer #cli", function()
  local session, transaction
  lazy_setup(function()
    local ok, err = pcall(function()
      local p = topo.primary()
      session = topo.start("pgbouncer", "session", p.host, p.port)
      transaction = topo.start("pgbouncer", "transaction", p.host, p.port)
    end)
    if not ok then topo.stop_all() error(err) end
  end)
  lazy_teardown(topo.stop_all)

  local db
  h.database_each(function(name) db = name end)

  -- Round trips through pool s to the spec's database so far (SHOW STATS on
  -- PgBouncer's console: a query ends at each ReadyForQuery).
  local function round_trips(s)
    local stats = h.psql(topo.url(s, "pgbouncer"), "SHOW STATS")
    for line in stats:gmatch("[^\n]+") do
      local name, _, queries = line:match("^([^|]*)|([^|]*)|([^|]*)")
      if name == db then return tonumber(queries) end
    end
    return 0
  end

  local function one_line(err)
    assert.equal(1, select(2, err:gsub("\n", "")), err)
  end

  -- r02 builds an index concurrently (non-transactional), r03 reads with op.query.
  local EXTRA = {
    [2] = { up = 'op.create_index("applied_rev", "applied", { "rev" }, { concurrently = true })',
            fields = { transactional = false } },
    [3] = { up = 'local row = op.query("SELECT count(*) AS n FROM applied")[1]\n'
              .. '  assert(row == nil or row.n == 3, "op.query")' },   -- nil: under the lint
  }

  it("works as direct in session pooling once direct_url vouches for the pool", function()
    local url = topo.url(session, db)
    local dir = topo.chain(3, ('return { versions = "versions", url = %q, direct_url = %q }')
      :format(url, url), EXTRA)
    local code, out, err = h.run({ "upgrade", "head" }, { cwd = dir })
    assert.equal(0, code, err)
    assert.matches("r01 -> r02, r02 (non-transactional) ...", out, 1, true)
    assert.matches("Upgraded: 3 revisions.", out, 1, true)
    code, out = h.run({ "current" }, { cwd = dir })
    assert.equal(0, code)
    assert.equal("r03 (head)\n", out)
    code, out = h.run({ "history", "-i" }, { cwd = dir })
    assert.equal(0, code)
    assert.matches("r02 -> r03 (head) (current), r03", out, 1, true)
    assert.equal(0, (h.run({ "status" }, { cwd = dir })))
    assert.equal(0, (h.run({ "verify" }, { cwd = dir })))
    code, _, err = h.run({ "downgrade", "-1" }, { cwd = dir })
    assert.equal(0, code, err)
    code, _, err = h.run({ "stamp", "head" }, { cwd = dir })
    assert.equal(0, code, err)
    assert.equal("r03", h.psql(db, "SELECT version_num FROM luamig_version"))
    assert.equal("r01,r02", h.psql(db, "SELECT string_agg(rev, ',' ORDER BY rev) FROM applied"))
    assert.equal(0, topo.advisory_locks())
  end)

  it("runs current, history, heads and status through either pool, no direct_url needed", function()
    local dir = topo.chain(2)
    assert.equal(0, (h.run({ "upgrade", "r01" }, { cwd = dir, env = { DATABASE_URL = h.url(db) } })))
    for _, pool in ipairs({ session, transaction }) do
      local env = { DATABASE_URL = topo.url(pool, db) }
      local code, out, err = h.run({ "current" }, { cwd = dir, env = env })
      assert.equal(0, code, err)
      assert.equal("r01\n", out)
      assert.equal(3, (h.run({ "status" }, { cwd = dir, env = env })))
      code, out = h.run({ "history", "-i" }, { cwd = dir, env = env })
      assert.equal(0, code)
      assert.matches("<base> -> r01 (current), r01", out, 1, true)
      assert.equal(0, (h.run({ "heads" }, { cwd = dir, env = env })))
    end
  end)

  it("refuses upgrade, downgrade and stamp behind a pool nobody vouched for, in the lock's round trip", function()
    local dir = topo.chain(2)
    for _, pool in ipairs({ transaction, session }) do
      local before = round_trips(pool)
      local code, out, err = h.run({ "upgrade", "head" }, { cwd = dir,
        env = { DATABASE_URL = topo.url(pool, db, "password=secret") } })
      assert.equal(1, code)
      assert.equal("", out)
      one_line(err)
      assert.matches(POOLER, err, 1, true)
      assert.matches("set direct_url in luamig.lua or --direct-url to the server itself", err, 1, true)
      assert.not_matches("secret", err, 1, true)
      assert.equal(1, round_trips(pool) - before, "the check rides in the lock's round trip")
      assert.equal("", h.psql(db, "SELECT to_regclass('luamig_version')"))
    end
    assert.equal(0, (h.run({ "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = h.url(db) } })))
    local env = { DATABASE_URL = topo.url(transaction, db) }
    for _, args in ipairs({ { "downgrade", "-1" }, { "stamp", "r01" } }) do
      local code, _, err = h.run(args, { cwd = dir, env = env })
      assert.equal(1, code)
      one_line(err)
      assert.matches(POOLER, err, 1, true)
    end
    assert.equal("r02", h.psql(db, "SELECT version_num FROM luamig_version"))
    assert.equal(0, topo.advisory_locks())
  end)

  it("16 upgrades at once through the transaction pool: refused without direct_url, "
     .. "each revision once with it, no lock left behind", function()
    local dir = topo.chain(5, nil, EXTRA)
    local env = { DATABASE_URL = topo.url(transaction, db) }
    local jobs = {}
    for i = 1, 16 do jobs[i] = { { "upgrade", "head" }, { cwd = dir, env = env } } end
    for _, r in ipairs(h.run_all(jobs)) do
      assert.equal(1, r.code, r.stderr)
      assert.matches(POOLER, r.stderr, 1, true)
    end
    assert.equal("", h.psql(db, "SELECT to_regclass('luamig_version')"))
    assert.equal(0, topo.advisory_locks())

    for i = 1, 16 do
      jobs[i] = { { "upgrade", "head", "--direct-url", topo.url(session, db) }, { cwd = dir, env = env } }
    end
    local ran = 0
    for _, r in ipairs(h.run_all(jobs)) do
      assert.equal(0, r.code, r.stderr)
      ran = ran + select(2, r.stdout:gsub("Running upgrade", ""))
    end
    assert.equal(5, ran)
    assert.equal("r01,r02,r03,r04,r05", h.psql(db, "SELECT string_agg(rev, ',' ORDER BY rev) FROM applied"))
    assert.equal("r05", h.psql(db, "SELECT string_agg(version_num, ',') FROM luamig_version"))
    assert.equal("5", h.psql(db, "SELECT count(*) FROM luamig_log WHERE direction = 'upgrade'"))
    assert.equal(0, topo.advisory_locks())
  end)
end)

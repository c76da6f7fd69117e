-- Safety under concurrency and faults, tested by force on the local server:
-- many runs at once, a bounded lock wait, lock timeouts with retries, the
-- audit log and verify, SIGKILL and a server restart in the middle of a run.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local PG_BIN = "/usr/lib/postgresql/15/bin"

-- n revisions r01..rNN, each appending its id to applied(rev); r01 creates it.
local function chain(n, config)
  local files = {}
  for i = 1, n do
    local id, down = ("r%02d"):format(i), i > 1 and ("r%02d"):format(i - 1) or nil
    local up = ('op.execute("INSERT INTO applied (rev) VALUES ($1)", { "%s" })'):format(id)
    if i == 1 then up = 'op.execute("CREATE TABLE applied (rev text NOT NULL)")\n  ' .. up end
    files[("versions/%s.lua"):format(id)] = h.revision(id, down, up,
      i == 1 and 'op.execute("DROP TABLE applied")' or
        ('op.execute("DELETE FROM applied WHERE rev = $1", { "%s" })'):format(id))
  end
  return h.project(files, config)
end

-- A revision that sleeps for $LUAMIG_TEST_SLEEP seconds (0 when unset) after creating t_slow.
local SLOW = [[op.execute("CREATE TABLE t_slow (id int)")
  op.execute("SELECT pg_sleep($1)", { tonumber(os.getenv("LUAMIG_TEST_SLEEP") or "0") })]]

local eventually = h.eventually

describe("safety #cli", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  local function run(dir, args, extra)
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    for k, v in pairs(extra or {}) do e[k] = v end
    return h.run(args, { cwd = dir, env = e })
  end

  it("16 runs at once over 50 revisions apply each revision exactly once", function()
    local dir = chain(50)
    local jobs = {}
    for i = 1, 16 do jobs[i] = { { "-q", "upgrade", "head" }, { cwd = dir, env = env } } end
    for _, r in ipairs(h.run_all(jobs)) do assert.equal(0, r.code, r.stderr) end
    assert.equal("50|50", h.psql(db, "SELECT count(*), count(DISTINCT rev) FROM applied"))
    assert.equal("50|50", h.psql(db, [[SELECT count(*), count(DISTINCT revision) FROM luamig_log
                                       WHERE direction = 'upgrade']]))
    assert.equal("r50", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("waits a bounded time for the migration lock, then names the holder", function()
    local dir = h.project({ ["versions/s.lua"] = h.revision("s", nil, SLOW, 'op.drop_table("t_slow")') })
    local slow = { cwd = dir, env = { DATABASE_URL = env.DATABASE_URL, LUAMIG_TEST_SLEEP = "3" } }
    local results = h.run_all({
      { { "--lock-wait", "1", "upgrade" }, slow },
      { { "--lock-wait", "1", "upgrade" }, slow },
    })
    table.sort(results, function(a, b) return a.code < b.code end)
    assert.equal(0, results[1].code, results[1].stderr)
    assert.equal(1, results[2].code)
    assert.matches("could not take the migration lock within 1 s: it is held by pid %d+ "
      .. "%(application 'luamig'", results[2].stderr)
    assert.equal("s", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  describe("lock_timeout on a busy table", function()
    local function hold_lock(seconds)
      -- another session keeps a read lock on t, as a long report query would
      return ("%s/psql -X -q -d %s -c 'BEGIN; LOCK TABLE t IN ACCESS SHARE MODE; "
        .. "SELECT pg_sleep(%s); COMMIT' >/dev/null 2>&1 &"):format(PG_BIN, h.shell_quote(db), seconds)
    end
    local config = 'return { versions = "versions", lock_timeout = "200ms", lock_retries = 2 }'
    local function project()
      return h.project({
        ["versions/a.lua"] = h.revision("a", nil, 'op.execute("CREATE TABLE t (id int)")', 'op.drop_table("t")'),
        ["versions/b.lua"] = h.revision("b", "a", 'op.add_column("t", { "x", "int" })',
          'op.drop_column("t", "x")'),
      }, config)
    end

    it("retries with back-off and names the blocking query when it gives up", function()
      local dir = project()
      local code, _, err = run(dir, { "upgrade", "a" })
      assert.equal(0, code, err)
      h.sh(hold_lock(6))
      eventually(function()
        return h.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(6)%' "
          .. "AND state = 'active' AND pid <> pg_backend_pid()") == "1"
      end, "the blocking session")
      local out
      code, out, err = run(dir, { "upgrade" })
      assert.equal(1, code)
      assert.matches("lock timeout in b %(try 1 of 3%): retrying in 0%.5 s", out)
      assert.matches("lock timeout in b %(try 2 of 3%): retrying in 1%.0 s", out)
      assert.matches("upgrade b failed: .*55P03.*lock timeout.*blocked by: pid %d+ %(application 'psql'", err)
      assert.matches("pg_sleep%(6%)", err)
      assert.equal("a", h.psql(db, "SELECT version_num FROM luamig_version"))
    end)

    it("succeeds once the blocker lets go within the retries", function()
      local dir = project()
      assert.equal(0, (run(dir, { "upgrade", "a" })))
      h.sh(hold_lock(1))
      eventually(function()
        return h.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(1)%' "
          .. "AND pid <> pg_backend_pid()") == "1"
      end, "the blocking session")
      local code, out, err = run(dir, { "upgrade" })
      assert.equal(0, code, err)
      assert.matches("retrying", out)
      assert.equal("b", h.psql(db, "SELECT version_num FROM luamig_version"))
    end)
  end)

  it("records every step in the audit log and verifies the files against it", function()
    local dir = chain(3)
    assert.equal(0, (run(dir, { "upgrade" })))
    assert.equal(0, (run(dir, { "downgrade", "-1" })))
    assert.equal("r01 upgrade|r02 upgrade|r03 upgrade|r03 downgrade", h.psql(db,
      "SELECT string_agg(revision || ' ' || direction, '|' ORDER BY id) FROM luamig_log"))
    local _, sum = h.sh("sha256sum " .. h.shell_quote(dir .. "/versions/r02.lua") .. " | cut -d' ' -f1")
    assert.equal(sum:gsub("%s+$", ""), h.psql(db, "SELECT checksum FROM luamig_log WHERE revision = 'r02'"))
    assert.equal("postgres|" .. "t|t", h.psql(db, [[SELECT db_user, duration_ms >= 0, luamig_version <> ''
                                                   FROM luamig_log WHERE revision = 'r02']]))
    local code, out = run(dir, { "verify" })
    assert.equal(0, code)
    assert.matches("OK: every applied revision matches its file", out)

    local f = assert(io.open(dir .. "/versions/r02.lua", "a"))
    f:write("-- edited after it ran\n")
    f:close()
    h.psql(db, "INSERT INTO luamig_log (revision, direction) VALUES ('gone1', 'upgrade')")
    code, out = run(dir, { "verify" })
    assert.equal(0, code)
    assert.matches("changed: r02 %(versions/r02.lua%)", out)
    assert.matches("missing: gone1", out)
    assert.not_matches("r01", out)
    code = run(dir, { "verify", "--strict" })
    assert.equal(1, code)
    local err
    code, _, err = run(dir, { "upgrade" })
    assert.equal(0, code, err)
    assert.matches("luamig: warning: revision r02 %(versions/r02.lua%) was changed after it was applied", err)
    code, _, err = run(dir, { "downgrade", "-1", "--strict" })
    assert.equal(1, code)
    assert.matches("%-%-strict refuses", err)
  end)

  it("a run killed with SIGKILL leaves nothing half-applied and frees the lock", function()
    local dir = h.project({
      ["versions/a.lua"] = h.revision("a", nil, 'op.execute("CREATE TABLE t_a (id int)")', 'op.drop_table("t_a")'),
      ["versions/s.lua"] = h.revision("s", "a", SLOW, 'op.drop_table("t_slow")'),
    })
    local pidfile = dir .. "/pid"
    h.sh(("cd %s && DATABASE_URL=%s LUAMIG_TEST_SLEEP=30 %s upgrade >/dev/null 2>&1 & echo $! > %s")
      :format(h.shell_quote(dir), h.shell_quote(env.DATABASE_URL), h.shell_quote(h.bin), h.shell_quote(pidfile)))
    eventually(function()
      return h.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'") == "1"
    end, "the slow revision")
    local f = assert(io.open(pidfile))
    local pid = f:read("l")
    f:close()
    assert.equal(0, (h.sh("kill -9 " .. pid)))
    -- the server notices the dead client (client_connection_check_interval) and rolls back
    eventually(function()
      return h.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'") == "0"
    end, "the server to drop the killed session")
    assert.equal("a", h.psql(db, "SELECT version_num FROM luamig_version"))
    assert.equal("", h.psql(db, "SELECT to_regclass('t_slow')"))
    assert.equal("0", h.psql(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
    local code, _, err = run(dir, { "upgrade" }, { LUAMIG_TEST_SLEEP = "0" })
    assert.equal(0, code, err)
    assert.equal("s", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("a server restart mid-run ends it with a clear error; the rerun completes", function()
    local dir = h.project({ ["versions/s.lua"] = h.revision("s", nil, SLOW, 'op.drop_table("t_slow")') })
    local outfile, errfile, codefile = dir .. "/out", dir .. "/err", dir .. "/code"
    h.sh(("cd %s && (DATABASE_URL=%s LUAMIG_TEST_SLEEP=30 %s upgrade >%s 2>%s; echo $? >%s) >/dev/null 2>&1 &")
      :format(h.shell_quote(dir), h.shell_quote(env.DATABASE_URL), h.shell_quote(h.bin),
        h.shell_quote(outfile), h.shell_quote(errfile), h.shell_quote(codefile)))
    eventually(function()
      return h.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'") == "1"
    end, "the slow revision")
    local data = os.getenv("PGHOST") .. "/data"
    local rc, out = h.sh(("runuser -u postgres -- %s/pg_ctl -D %s restart -m fast -w -l %s >/dev/null")
      :format(PG_BIN, h.shell_quote(data), h.shell_quote(os.getenv("PGHOST") .. "/server.log")))
    assert.equal(0, rc, out)
    eventually(function()
      local f = io.open(codefile)
      if not f then return false end
      local s = f:read("a")
      f:close()
      return s ~= ""
    end, "the interrupted run to end")
    local f = assert(io.open(codefile))
    assert.equal("1", f:read("l"))
    f:close()
    f = assert(io.open(errfile))
    local err = f:read("a")
    f:close()
    assert.matches("upgrade s failed: ", err)
    -- the server's reason: admin shutdown (57P01) or the connection dropping (08006)
    assert.truthy(err:find("57P01", 1, true) or err:find("connection to the server was lost", 1, true), err)
    assert.equal(1, select(2, err:gsub("\n", "")), err)
    assert.equal("", h.psql(db, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamig_version"))
    local code
    code, _, err = run(dir, { "upgrade" }, { LUAMIG_TEST_SLEEP = "0" })
    assert.equal(0, code, err)
    assert.equal("s", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("a revision that changes the version table behind luamig is rolled back before the next one", function()
    -- a moves the version to itself, then empties the table (as a hand edit would)
    local dir = h.project({
      ["versions/a.lua"] = h.revision("a", nil, [[op.create_table("t_a", { { "id", "integer" } })
  op.execute("DELETE FROM luamig_version WHERE version_num = 'a'")]], 'op.drop_table("t_a")'),
      ["versions/b.lua"] = h.revision("b", "a", 'op.create_table("t_b", { { "id", "integer" } })',
        'op.drop_table("t_b")'),
    })
    local code, _, err = run(dir, { "upgrade", "head" })
    assert.equal(1, code)
    assert.matches("upgrade a failed: versions/a.lua: it changed the version table luamig_version "
      .. "behind luamig (it must hold 'a' now", err, 1, true)
    assert.equal(1, select(2, err:gsub("\n", "")), err)
    -- a's guard failed before its COMMIT: nothing of a, and b never opened
    assert.equal("", h.psql(db, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamig_version"))
    assert.equal("|", h.psql(db, "SELECT to_regclass('t_a'), to_regclass('t_b')"))
    assert.equal("0", h.psql(db, "SELECT count(*) FROM luamig_log"))
  end)

  it("a failure of the next revision's opening, sent with this COMMIT, is the next one's", function()
    -- b's BEGIN and version move ride with a's COMMIT; a trigger a leaves refuses that move
    local dir = h.project({
      ["versions/a.lua"] = h.revision("a", nil, [[op.create_table("t_a", { { "id", "integer" } })
  op.execute("CREATE FUNCTION no_b() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'no b'; END$$")
  op.execute("CREATE TRIGGER no_b BEFORE UPDATE ON luamig_version FOR EACH ROW WHEN (NEW.version_num = 'b') EXECUTE FUNCTION no_b()")]],
        'op.drop_table("t_a")'),
      ["versions/b.lua"] = h.revision("b", "a", 'op.create_table("t_b", { { "id", "integer" } })',
        'op.drop_table("t_b")'),
    })
    local code, out, err = run(dir, { "upgrade", "head", "--lint", "off" })
    assert.equal(1, code)
    assert.matches('upgrade b failed: P0001: no b', err, 1, true)
    assert.matches('SQL: UPDATE', err, 1, true)
    assert.equal(1, select(2, err:gsub("\n", "")), err)
    assert.matches("Running upgrade  -> a, a ... ", out, 1, true)   -- a finished: it committed
    assert.equal("t_a|", h.psql(db, "SELECT to_regclass('t_a'), to_regclass('t_b')"))
    assert.equal("a", h.psql(db, "SELECT string_agg(revision, ',') FROM luamig_log"))
  end)

  it("sends a revision's DDL together, in order, and names the op that failed", function()
    -- the DDL waits for the next statement that needs an answer, or for COMMIT
    local dir = h.project({
      ["versions/a.lua"] = h.revision("a", nil, [[op.create_table("t_one", { { "id", "integer" } })
  op.execute("INSERT INTO t_one VALUES (1)")
  op.create_table("t_one", { { "id", "integer" } })
  op.create_table("t_two", { { "id", "integer" } })]], 'op.drop_table("t_one")'),
    })
    local code, _, err = run(dir, { "upgrade", "head", "--lint", "off" })
    assert.equal(1, code)
    assert.matches('upgrade a failed: versions/a.lua:8: op.create_table: 42P07: relation "t_one" '
      .. 'already exists; SQL: CREATE TABLE "t_one"', err, 1, true)
    assert.equal(1, select(2, err:gsub("\n", "")), err)
    assert.equal("|", h.psql(db, "SELECT to_regclass('t_one'), to_regclass('t_two')"))
    assert.equal("0|0", h.psql(db, "SELECT (SELECT count(*) FROM luamig_version), "
      .. "(SELECT count(*) FROM luamig_log)"))
  end)

  it("gives up connecting after connect_timeout while it reads the files", function()
    local port, stop = h.silent_listener()
    local dir = chain(3)
    local t0 = os.time()
    local code, _, err = h.run({ "current" }, { cwd = dir, env = {
      DATABASE_URL = ("host=127.0.0.1 port=%s connect_timeout=2 sslmode=disable dbname=x"):format(port) } })
    local took = os.time() - t0
    stop()
    assert.equal(1, code)
    assert.matches("could not connect to host=127.0.0.1 port=" .. port
      .. " connect_timeout=2 sslmode=disable dbname=x: timeout expired %(connect_timeout%)", err)
    assert.truthy(took >= 1 and took <= 4, "took " .. took .. " s")
  end)
end)

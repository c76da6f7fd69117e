-- A transaction per revision, one flush to disk per run (src/run/durable.c): several
-- revisions commit with synchronous_commit off and the last one with the session's
-- own setting. A crash may then lose whole trailing revisions, never part of one,
-- and the next run applies them again.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local PG_BIN = "/usr/lib/postgresql/15/bin"

-- n revisions r01..rNN, each adding its id to applied(rev) and a table t_rNN; then,
-- when slow, a revision s that sleeps $LUAMIG_TEST_SLEEP seconds.
local function chain(n, slow, extra)
  local files = {}
  for i = 1, n do
    local id, down = ("r%02d"):format(i), i > 1 and ("r%02d"):format(i - 1) or nil
    local up = ('op.create_table("t_%s", { { "id", "int" } })\n  '):format(id)
      .. ('op.execute("INSERT INTO applied (rev) VALUES ($1)", { "%s" })'):format(id)
    if i == 1 then up = 'op.execute("CREATE TABLE applied (rev text NOT NULL)")\n  ' .. up end
    files[("versions/%s.lua"):format(id)] = h.revision(id, down, up,
      ('op.drop_table("t_%s")'):format(id), (extra or {})[id])
  end
  if slow then
    files["versions/s.lua"] = h.revision("s", ("r%02d"):format(n),
      'op.execute("SELECT pg_sleep($1)", { tonumber(os.getenv("LUAMIG_TEST_SLEEP") or "0") })', "")
  end
  return h.project(files)
end


local function pg_ctl(args)
  local data = os.getenv("PGHOST") .. "/data"
  local rc, out = h.sh(("runuser -u postgres -- %s/pg_ctl -D %s %s -w -l %s >/dev/null"):format(
    PG_BIN, h.shell_quote(data), args, h.shell_quote(os.getenv("PGHOST") .. "/server.log")))
  assert.equal(0, rc, out)
end

local function reload() h.psql("postgres", "SELECT pg_reload_conf()") end

describe("durable runs #cli", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  it("writes the SETs into --sql as it sends them: off for the run, the session's own for the last COMMIT", function()
    local dir = chain(3)
    local script = h.run_ok({ "upgrade", "base:head", "--sql" }, { cwd = dir })
    local off = script:find("SET synchronous_commit = off;\n", 1, true)
    local first = script:find("BEGIN;", 1, true)
    assert.truthy(off and first and off < first, script)
    local last = script:match(".*()COMMIT;")
    assert.equal("SET LOCAL synchronous_commit TO DEFAULT;\nCOMMIT;",
      script:sub(last - #"SET LOCAL synchronous_commit TO DEFAULT;\n", last + 6))
    assert.equal(1, select(2, script:gsub("SET LOCAL synchronous_commit", "")))
    -- one revision: nothing to relax
    script = h.run_ok({ "upgrade", "base:r01", "--sql" }, { cwd = dir })
    assert.is_nil(script:find("synchronous_commit", 1, true), script)
  end)

  it("gives a non-transactional revision the session's setting, statement by statement", function()
    local dir = chain(3, false, { r02 = { transactional = false } })
    local script = h.run_ok({ "upgrade", "base:head", "--sql" }, { cwd = dir })
    local r02 = script:find("-- Running upgrade r01 -> r02", 1, true)
    local restore = script:find("SET synchronous_commit TO DEFAULT;\n", r02, true)
    local r02_create = script:find('CREATE TABLE "t_r02"', r02, true)
    local relax = script:find("SET synchronous_commit = off;\n", r02, true)
    local r03 = script:find("-- Running upgrade r02 -> r03", 1, true)
    assert.truthy(restore and r02_create and relax and r03, script)
    assert.truthy(restore < r02_create and r02_create < relax and relax < r03, script)
    -- and live, the run ends with every revision in
    local code, _, err = h.run({ "upgrade" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.equal("r03", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("loses only whole trailing revisions when the server crashes; the rerun applies them", function()
    local dir = chain(40, true)
    -- the WAL writer flushes the commits it holds every 10 s, not every 200 ms: a crash
    -- now likely takes some of the last ones with it (whether it does is not asserted)
    h.psql("postgres", "ALTER SYSTEM SET wal_writer_delay = '10s'")
    reload()
    finally(function()
      h.psql("postgres", "ALTER SYSTEM RESET wal_writer_delay")
      reload()
    end)
    local errfile = dir .. "/err"
    h.sh(("cd %s && DATABASE_URL=%s LUAMIG_TEST_SLEEP=60 %s upgrade >/dev/null 2>%s &")
      :format(h.shell_quote(dir), h.shell_quote(env.DATABASE_URL), h.shell_quote(h.bin),
        h.shell_quote(errfile)))
    h.eventually(function()
      return h.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'") == "1"
    end, "the slow revision", 150)
    pg_ctl("restart -m immediate")   -- a crash: no shutdown checkpoint, WAL buffers gone
    h.eventually(function()
      local f = io.open(errfile)
      local s = f and f:read("a") or ""
      if f then f:close() end
      return s:find("upgrade s failed", 1, true) ~= nil
    end, "the interrupted run to end", 150)

    -- whatever survived is whole revisions: each one's table, row, version and audit row
    local at = h.psql(db, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamig_version")
    local k = at == "" and 0 or tonumber(at:match("^r(%d+)$"))
    assert.truthy(k and k <= 40, "version table: " .. at)
    local tables = tonumber(h.psql(db, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't_r%'"))
    assert.equal(k, tables)
    if k > 0 then
      assert.equal(("%d|%d"):format(k, k), h.psql(db, "SELECT count(*), count(DISTINCT rev) FROM applied"))
      assert.equal(tostring(k), h.psql(db, [[SELECT count(*) FROM luamig_log WHERE direction = 'upgrade']]))
      assert.equal(("r%02d"):format(k), h.psql(db, "SELECT max(rev) FROM applied"))
    end
    local code, out, err = h.run({ "upgrade" }, { cwd = dir, env = { DATABASE_URL = env.DATABASE_URL,
                                                                   LUAMIG_TEST_SLEEP = "0" } })
    assert.equal(0, code, err)
    assert.matches(("Upgraded: %d revision"):format(41 - k), out, 1, true)
    assert.equal("s", h.psql(db, "SELECT version_num FROM luamig_version"))
    assert.equal("40|40", h.psql(db, "SELECT count(*), count(DISTINCT rev) FROM applied"))
    assert.equal("41", h.psql(db, [[SELECT count(DISTINCT revision) FROM luamig_log WHERE direction = 'upgrade']]))
  end)
end)

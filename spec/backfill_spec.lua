-- op.backfill (#20): an UPDATE of a big table in key-ordered batches, each its own
-- short transaction, from a transactional = false revision; resumable after a
-- kill; its count in the audit log; a DO block in --sql; the add NOT NULL column
-- recipe of docs/safety-lint.md end to end; 1,000,000 rows under a writer.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local PSQL = "/usr/lib/postgresql/15/bin/psql"
local q = h.shell_quote

-- A table t (id, a, v) of n rows, v NULL.
local function table_t(db, n)
  h.psql(db, ("CREATE TABLE t (id bigserial PRIMARY KEY, a int NOT NULL, v int); "
    .. "INSERT INTO t (a) SELECT g FROM generate_series(1, %d) g; ANALYZE t"):format(n))
end

-- A project whose only revision is b1, non-transactional unless tx, running body.
local function project(body, tx, config)
  return h.project({
    ["versions/b1.lua"] = h.revision("b1", nil, body, "", { transactional = tx or false }),
  }, config)
end

describe("op.backfill #cli", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  it("updates in key-ordered batches, each its own transaction; the count goes to the audit log", function()
    table_t(db, 10000)
    local dir = project([[local n = op.backfill("t", { set = "v = a * 2", where = "v IS NULL", batch = 1000 })
  print("rows: " .. n)]])
    local code, out, err = h.run({ "upgrade" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.matches("backfill t: 10000 rows in 10 batches", out)
    assert.matches("versions/b1.lua:%d+: rows: 10000", err)
    assert.equal("0|10000", h.psql(db, "SELECT count(*) FILTER (WHERE v IS DISTINCT FROM a * 2), count(*) FROM t"))
    -- one transaction per batch: ten of them wrote the rows
    assert.equal("10", h.psql(db, "SELECT count(DISTINCT xmin::text) FROM t"))
    assert.equal("upgrade-started,backfill t: 10000 rows,upgrade",
      h.psql(db, "SELECT string_agg(direction, ',' ORDER BY id) FROM luamig_log"))
    -- the count is a note: verify finds the log and the version table in agreement
    code, out = h.run({ "verify", "--strict" }, { cwd = dir, env = env })
    assert.equal(0, code, out)
    assert.matches("OK: every applied revision matches its file", out)
  end)

  it("shows its progress on a terminal, and only there", function()
    table_t(db, 50000)
    local dir = project('op.backfill("t", { set = "v = a", where = "v IS NULL", batch = 500, sleep = "5ms" })')
    local cmd = ("cd %s && DATABASE_URL=%s %s upgrade"):format(q(dir), q(env.DATABASE_URL), q(h.bin))
    local code, out = h.sh(("script -qec %s /dev/null </dev/null"):format(q("stty cols 200; " .. cmd)))
    assert.equal(0, code, out)
    assert.matches("\r\27%[KRunning upgrade  %-> b1, b1 %(non%-transactional%) %.%.%. backfill t: %d+ of "
      .. "~50000 rows, %d+ rows/s, ETA %d+ s", out)
    assert.matches("backfill t: 50000 rows in 100 batches", out)
    assert.matches("Upgraded: 1 revision%.", out)
    h.psql(db, "UPDATE t SET v = NULL")
    h.run_ok({ "downgrade", "base" }, { cwd = dir, env = env })
    code, out = h.run({ "upgrade" }, { cwd = dir, env = env })   -- not a terminal: whole lines
    assert.equal(0, code, out)
    assert.matches("backfill t: 50000 rows in 100 batches", out)
    assert.not_matches("\27", out)
  end)

  it("is refused in a transactional revision, before anything is applied", function()
    table_t(db, 10)
    local dir = project('op.backfill("t", { set = "v = 1" })', true)
    local code, _, err = h.run({ "upgrade" }, { cwd = dir, env = env })
    assert.equal(1, code)
    assert.matches("upgrade b1 failed: versions/b1.lua:%d+: op.backfill: needs a revision with "
      .. "transactional = false", err)
    assert.equal("", h.psql(db, "SELECT string_agg(version_num, ',') FROM luamig_version"))
    assert.equal("10", h.psql(db, "SELECT count(*) FROM t WHERE v IS NULL"))
  end)

  it("checks its options and its SQL text like the other ops", function()
    table_t(db, 10)
    h.psql(db, "CREATE TABLE nokey (id int, v int)")
    local cases = {
      { '"t", { set = "v = 1; DROP TABLE t" }', "op.backfill: set: " },
      { '"t", { set = "v = 1", where = "a = \'x" }', "op.backfill: where: " },
      { '"t", { set = "v = 1", colour = "red" }', "op.backfill: unknown option 'colour'" },
      { '"t", { where = "v IS NULL" }', "op.backfill: set is required" },
      { '"t", { set = "v = 1", batch = 0 }', "op.backfill: batch must be a whole number of rows from 1" },
      { '"t", { set = "v = 1", sleep = "soon" }', "op.backfill: sleep must be a duration" },
      { '"t", "v = 1"', "op.backfill: needs its options" },
      { '"nokey", { set = "v = 1" }', 'op.backfill: key "id" of nokey is not unique' },
      { '"t", { set = "v = 1", key = "a" }', 'op.backfill: key "a" of t is not unique' },
      { '"missing", { set = "v = 1" }', 'op.backfill: 42P01: relation "missing" does not exist' },
    }
    for _, c in ipairs(cases) do
      local dir = project("op.backfill(" .. c[1] .. ")")
      local code, _, err = h.run({ "upgrade" }, { cwd = dir, env = env })
      assert.equal(1, code, c[1])
      assert.matches("versions/b1.lua:%d+: " .. c[2]:gsub("[%(%)%.%-]", "%%%0"), err)
    end
    assert.equal("10", h.psql(db, "SELECT count(*) FROM t WHERE v IS NULL"))
  end)

  it("--sql writes a DO block that commits each batch and logs the count", function()
    local dir = h.project({
      ["versions/a0.lua"] = h.revision("a0", nil, [[op.execute("CREATE TABLE t (id bigserial PRIMARY KEY, a int NOT NULL, v int)")
  op.execute("INSERT INTO t (a) SELECT g FROM generate_series(1, 2500) g")]], 'op.drop_table("t")'),
      ["versions/b1.lua"] = h.revision("b1", "a0",
        'op.backfill("t", { set = "v = a * 2", where = "v IS NULL", batch = 1000, sleep = "10ms" })', "",
        { transactional = false }),
    })
    local code, script, err = h.run({ "upgrade", "--sql" }, { cwd = dir })
    assert.equal(0, code, err)
    assert.matches("DO %$luamig%$\nDECLARE\n  luamig_last \"t\".\"id\"%%TYPE;", script)
    assert.matches("COMMIT;", script)
    assert.matches("PERFORM pg_sleep%(0.010%);", script)
    local file = dir .. "/up.sql"
    local f = assert(io.open(file, "w"))
    f:write(script)
    f:close()
    local rc, out = h.sh(("%s -X -q -v ON_ERROR_STOP=1 -d %s -f %s"):format(PSQL, q(db), q(file)))
    assert.equal(0, rc, out)
    assert.equal("0|2500", h.psql(db, "SELECT count(*) FILTER (WHERE v IS DISTINCT FROM a * 2), count(*) FROM t"))
    assert.equal("3", h.psql(db, "SELECT count(DISTINCT xmin::text) FROM t"))
    assert.equal("backfill t: 2500 rows", h.psql(db, "SELECT direction FROM luamig_log WHERE direction LIKE 'backfill%'"))
    assert.equal("b1", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("runs the add NOT NULL column recipe end to end, lint-clean at every step", function()
    local revs = {
      { nil, [[op.create_table("users", { { "id", "bigint GENERATED ALWAYS AS IDENTITY", primary_key = true },
    { "first_name", "text", nullable = false }, { "last_name", "text", nullable = false } })
  op.execute("INSERT INTO users (first_name, last_name) SELECT 'f' || g, 'l' || g FROM generate_series(1, 3000) g")]],
        'op.drop_table("users")' },
      { nil, 'op.add_column("users", { "full_name", "text" })', 'op.drop_column("users", "full_name")' },
      { { transactional = false }, [[op.backfill("users", { set = "full_name = first_name || ' ' || last_name",
    where = "full_name IS NULL", batch = 500 })]], "" },
      { nil, [[op.create_check_constraint("users_full_name_not_null", "users", "full_name IS NOT NULL",
    { not_valid = true })]], 'op.drop_constraint("users_full_name_not_null", "users")' },
      { nil, 'op.validate_constraint("users_full_name_not_null", "users")', "" },
      { nil, [[op.alter_column("users", "full_name", { nullable = false })
  op.drop_constraint("users_full_name_not_null", "users")]], [[op.create_check_constraint("users_full_name_not_null", "users",
    "full_name IS NOT NULL", { not_valid = true })
  op.alter_column("users", "full_name", { nullable = true })]] },
    }
    local files = {}
    for i, r in ipairs(revs) do
      files[("versions/s%d.lua"):format(i)] = h.revision("s" .. i, i > 1 and "s" .. (i - 1) or nil, r[2], r[3], r[1])
    end
    local dir = h.project(files, 'return { versions = "versions", lock_timeout = "1s" }')
    -- users exists before the recipe: every rule about existing tables applies
    local code, out = h.run({ "lint", "s1:head" }, { cwd = dir })
    assert.equal(0, code, out)
    for i = 1, #revs do            -- each step on its own, refused if it had a finding
      local err
      code, out, err = h.run({ "upgrade", "+1", "--lint", "strict" }, { cwd = dir, env = env })
      assert.equal(0, code, "step " .. i .. ": " .. out .. err)
      assert.not_matches("warning", err)
    end
    assert.equal("t|0|3000", h.psql(db, [[SELECT attnotnull, (SELECT count(*) FROM pg_constraint
      WHERE conrelid = 'users'::regclass AND contype = 'c'), (SELECT count(*) FROM users WHERE full_name = first_name || ' ' || last_name)
      FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'full_name']]))
    code, out = h.run({ "downgrade", "base" }, { cwd = dir, env = env })
    assert.equal(0, code, out)
  end)
end)

-- A million rows under a concurrent writer (spec/lint_load.lua: reads, updates and
-- inserts rows, timing each statement), a SIGKILL half-way, then the rerun.
-- UNLOGGED with room on each page (fillfactor 50): the same row locks, a third
-- of the time on this shared machine.
describe("op.backfill on 1,000,000 rows", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  it("never blocks the writer longer than lock_timeout, and survives a SIGKILL", function()
    h.psql(db, "CREATE UNLOGGED TABLE big (id bigserial PRIMARY KEY, n int NOT NULL, v int) "
      .. "WITH (fillfactor = 50); INSERT INTO big (n) SELECT g FROM generate_series(1, 1000000) g; "
      .. "ALTER TABLE big ALTER v SET DEFAULT -1; ANALYZE big")   -- the new release writes v
    local dir = h.project({
      ["versions/b1.lua"] = h.revision("b1", nil,
        'op.backfill("big", { set = "v = n * 2", where = "v IS NULL", batch = 5000 })', "",
        { transactional = false }),
    }, 'return { versions = "versions", lock_timeout = "1s" }')
    local stop = h.start_load(db, "big")
    local pidfile = dir .. "/pid"
    h.sh(("cd %s && DATABASE_URL=%s %s -q upgrade >%s/out 2>&1 & echo $! >%s")
      :format(q(dir), q(env.DATABASE_URL), q(h.bin), q(dir), q(pidfile)))
    local f = assert(io.open(pidfile))
    local pid = f:read("l")
    f:close()
    local done = 0
    for _ = 1, 300 do
      done = tonumber(h.psql(db, "SELECT count(*) FROM big WHERE v IS NOT NULL AND v <> -1"))
      if done >= 150000 then break end
      h.sh("sleep 0.1")
    end
    assert.equal(0, (h.sh("kill -9 " .. pid)))
    for _ = 1, 100 do               -- the server drops the killed session
      if h.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'WITH luamig_batch AS%'") == "0" then break end
      h.sh("sleep 0.1")
    end
    local left = tonumber(h.psql(db, "SELECT count(*) FROM big WHERE v IS NULL"))
    assert.is_true(done >= 150000 and left > 0, ("killed too late (%d rows done, %d left)"):format(done, left))
    assert.equal("", h.psql(db, "SELECT string_agg(version_num, ',') FROM luamig_version"))
    -- the rerun picks up the rows WHERE still matches
    local code, out, err = h.run({ "upgrade" }, { cwd = dir, env = env, timeout = 120 })
    local load = stop()
    assert.equal(0, code, out .. err)
    assert.matches("luamig: warning: .*b1", err)   -- the run it finishes was interrupted
    assert.equal("0", h.psql(db, "SELECT count(*) FROM big WHERE v IS NULL"))
    assert.equal("b1", h.psql(db, "SELECT version_num FROM luamig_version"))
    assert.matches("^backfill big: %d+ rows$", h.psql(db, "SELECT direction FROM luamig_log WHERE direction LIKE 'backfill%'"))
    assert.equal(0, load.errors, load.first)
    assert.is_true(load.count > 100, "the writer ran " .. load.count .. " statements")
    assert.is_true(load.longest < 1.0, ("the writer waited %.2f s"):format(load.longest))
  end)
end)

-- Hardening (issue #14, items 6, 9-12, 15-18): state that must not drift, SQL that
-- must not say more in the script than in the live run, and secrets that must not
-- leave the process. Each describe names its item; docs/safety.md lists them.
local h = require "helpers"
local core = require "luamig.core"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

-- Runs f(op) with an offline op table (transactional unless told); returns pcall's pair.
local function offline(f, transactional)
  local op = core.ops(core.new_context(nil, { transactional = transactional ~= false }))
  return pcall(f, op)
end

describe("item 6: transaction control in a transactional revision", function()
  local refused = {
    "COMMIT", "commit;", "  End", "BEGIN", "begin transaction isolation level serializable",
    "START TRANSACTION", "ROLLBACK", "abort", "SAVEPOINT s1", "RELEASE s1", "release savepoint s1",
    "ROLLBACK TO s1", "rollback to savepoint s1", "PREPARE TRANSACTION 'x'",
    "COMMIT PREPARED 'x'", "ROLLBACK PREPARED 'x'", "SELECT pg_advisory_unlock_all()",
    "SELECT 1; SELECT pg_catalog.pg_advisory_unlock(42)", "select PG_ADVISORY_UNLOCK_SHARED(1)",
    "UPDATE t SET a = 1; COMMIT; SELECT 1", "/* c */ COMMIT", "-- c\nROLLBACK",
  }
  for _, sql in ipairs(refused) do
    it("refuses " .. sql:gsub("\n", "\\n") .. " before it runs, with file:line and the way out", function()
      local ok, err = offline(function(op) op.execute(sql) end)
      assert.is_false(ok)
      assert.matches("op%.execute: .*transactional = false", err)
      assert.is_nil(err:find("\n"), err)
      ok, err = offline(function(op) op.query(sql) end)
      assert.is_false(ok)
      assert.matches("op%.query: .*transactional = false", err)
    end)
  end

  local allowed = {
    "SELECT 'COMMIT'", "SELECT E'it\\'s; COMMIT'", "-- COMMIT\nSELECT 1", "/* ROLLBACK /* nested */ */ SELECT 1",
    "DO $$BEGIN PERFORM 1; END$$", "DO $body$ BEGIN PERFORM pg_advisory_unlock(1); END $body$",
    'SELECT 1 AS "commit"', "SELECT 1 AS commit_count", "UPDATE t SET ended = true WHERE kind = 'END'",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END",
    "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END",
    "SELECT my_pg_advisory_unlock_all_wrapper_is_fine FROM t",
  }
  for _, sql in ipairs(allowed) do
    it("lets " .. sql:gsub("\n", "\\n") .. " through", function()
      local ok, err = offline(function(op) op.execute(sql) end)
      assert.is_true(ok, err)
    end)
  end

  it("lets a non-transactional revision manage its own transactions", function()
    local ok, err = offline(function(op) op.execute("BEGIN"); op.execute("COMMIT") end, false)
    assert.is_true(ok, err)
  end)
end)

describe("item 6: transaction control in a revision #cli", function()
  local db, url
  h.database_each(function(name) db, url = name, h.url(name) end)

  it("COMMIT then an error records nothing, live and in --sql alike", function()
    local dir = h.project({
      ["versions/a.lua"] = h.revision("a", nil, [[op.create_table("t1", { { "id", "int" } })
  op.execute("COMMIT")
  op.execute("SELECT 1/0")]], 'op.drop_table("t1")'),
    })
    local code, out, err = h.run({ "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(1, code, out)
    assert.matches("upgrade a failed: versions/a.lua:7: op.execute: COMMIT would end the revision's "
      .. "transaction", err, 1, true)
    assert.matches("transactional = false", err, 1, true)
    -- one line for the error (the lint's transaction-control warnings come before it)
    local lines = 0
    for l in err:gmatch("[^\n]+") do
      if not l:find("^luamig: warning:") then lines = lines + 1 end
    end
    assert.equal(1, lines, err)
    assert.matches("transaction-control", err, 1, true)
    assert.equal("|0", h.psql(db, "SELECT to_regclass('t1'), (SELECT count(*) FROM luamig_version)"))
    code, out, err = h.run({ "upgrade", "head", "--sql" }, { cwd = dir })
    assert.equal(1, code, out)
    assert.matches("versions/a.lua:7: op.execute: COMMIT would end the revision's transaction", err, 1, true)
  end)

  it("ROLLBACK is refused instead of reporting Upgraded while the table disagrees", function()
    local dir = h.project({
      ["versions/a.lua"] = h.revision("a", nil, 'op.execute("CREATE TABLE t2 (id int); ROLLBACK")', ""),
    })
    local code, out, err = h.run({ "upgrade" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(1, code, out)
    assert.not_matches("Upgraded", out)
    assert.matches("ROLLBACK would end the revision's transaction", err, 1, true)
    assert.equal("|0", h.psql(db, "SELECT to_regclass('t2'), (SELECT count(*) FROM luamig_version)"))
  end)
end)

describe("item 12: one statement per SQL text option", function()
  local cases = {
    { "op.add_column", function(op) op.add_column("t", { "a", "int", default = "0; DROP TABLE precious" }) end },
    { "op.create_table", function(op) op.create_table("t", { { "a", "int", default = "1); DROP TABLE precious; --" } }) end },
    { "op.create_table", function(op) op.create_table("t", { { "a", "int" }, "CHECK (a > 0); DROP TABLE p" }) end },
    { "op.create_table", function(op) op.create_table("t", { { "a", "int; DROP TABLE p" } }) end },
    { "op.alter_column", function(op) op.alter_column("t", "a", { server_default = "0;DROP TABLE p" }) end },
    { "op.alter_column", function(op) op.alter_column("t", "a", { type = "bigint", using = "a::bigint; DROP TABLE p" }) end },
    { "op.create_check_constraint", function(op) op.create_check_constraint("ck", "t", "a > 0); DROP TABLE p; --") end },
    { "op.create_index", function(op) op.create_index("ix", "t", { "a" }, { where = "a > 0; DROP TABLE p" }) end },
    { "op.create_index", function(op) op.create_index("ix", "t", { "lower(a); DROP TABLE p" }) end },
    { "op.add_column", function(op) op.add_column("t", { "a", "text", default = "'unterminated" }) end },
    { "op.add_column", function(op) op.add_column("t", { "a", "int", default = "1 -- swallows the rest" }) end },
  }
  for i, case in ipairs(cases) do
    it(("refuses a statement terminator in %s (case %d)"):format(case[1], i), function()
      local ok, err = offline(case[2])
      assert.is_false(ok)
      assert.matches(case[1]:gsub("%.", "%%.") .. ": ", err)
      assert.is_nil(err:find("\n"), err)
      assert.is_nil(err:find("precious", 1, true), "the message quotes no SQL text: " .. err)
    end)
  end

  it("keeps ';' inside quotes, dollar quotes and comments", function()
    local ok, err = offline(function(op)
      op.add_column("t", { "a", "text", default = "';'" })
      op.add_column("t", { "b", "text", default = "$$a;b$$" })
      op.add_column("t", { "c", "text", default = "E'\\';'" })
      op.create_check_constraint("ck", "t", "a <> ';' /* ; */")
      op.create_index("ix", "t", { "a" }, { where = "a <> '--;'" })
      op.alter_column("t", "a", { server_default = "'x;y'" })
      op.add_column("t", { "d", "int", default = "1 -- one\n" })
    end)
    assert.is_true(ok, err)
  end)

  it("refuses several statements with parameters, offline as live", function()
    local ok, err = offline(function(op) op.execute("INSERT INTO t VALUES ($1); DROP TABLE precious", { 1 }) end)
    assert.is_false(ok)
    assert.matches("op.execute: SQL with parameters must be one statement", err, 1, true)
    ok, err = offline(function(op) op.execute("INSERT INTO t VALUES ($1);", { 1 }) end)
    assert.is_true(ok, err)
    ok, err = offline(function(op) op.execute("INSERT INTO t VALUES ($1); -- done", { 1 }) end)
    assert.is_true(ok, err)
    ok, err = offline(function(op) op.execute("CREATE TABLE a (id int); CREATE TABLE b (id int)") end)
    assert.is_true(ok, err)
  end)
end)

describe("item 12: live and --sql agree #cli", function()
  local db, url
  h.database_each(function(name) db, url = name, h.url(name) end)

  it("refuses a multi-statement op.execute with parameters in both", function()
    local dir = h.project({
      ["versions/a.lua"] = h.revision("a", nil, [[op.execute("CREATE TABLE precious (id int)")
  op.execute("INSERT INTO precious VALUES ($1); DROP TABLE precious", { 1 })]], ""),
    })
    local code, out, err = h.run({ "upgrade", "head", "--sql" }, { cwd = dir })
    assert.equal(1, code, out)
    local offline_err = err:match("op%.execute: [^\n]*")
    assert.matches("SQL with parameters must be one statement", offline_err, 1, true)
    code, out, err = h.run({ "upgrade" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(1, code, out)
    assert.equal(offline_err, err:match("op%.execute: [^\n]*"))
    assert.equal("", h.psql(db, "SELECT coalesce(to_regclass('precious')::text, '')"))
  end)

  it("refuses a ';' in default in both", function()
    local dir = h.project({
      ["versions/a.lua"] = h.revision("a", nil, [[op.create_table("precious", { { "id", "int" } })
  op.add_column("precious", { "a", "int", default = "0; DROP TABLE precious" })]], ""),
    })
    local code, out, err = h.run({ "upgrade", "head", "--sql" }, { cwd = dir })
    assert.equal(1, code, out)
    assert.matches("versions/a.lua:7: op.add_column: default", err, 1, true)
    code, out, err = h.run({ "upgrade" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(1, code, out)
    assert.matches("versions/a.lua:7: op.add_column: default", err, 1, true)
    assert.equal("", h.psql(db, "SELECT coalesce(to_regclass('precious')::text, '')"))
  end)
end)

-- A describe's CLI specs on a fresh database each: body(ctx) gets ctx.db, ctx.url and
-- ctx.run(dir, args [, env]) (DATABASE_URL set, env added).
local function with_database(name, body)
  describe(name, function()
    local ctx = {}
    h.database_each(function(db) ctx.db, ctx.url = db, h.url(db) end)
    function ctx.run(dir, args, extra)
      local env = { DATABASE_URL = ctx.url }
      for k, v in pairs(extra or {}) do env[k] = v end
      return h.run(args, { cwd = dir, env = env })
    end
    body(ctx)
  end)
end

-- The version table's rows, comma-separated ("" when empty or absent).
local function versions(db, table_name)
  return h.psql(db, ("SELECT coalesce((SELECT string_agg(version_num, ',' ORDER BY version_num) FROM %s), '')")
    :format(table_name or "luamig_version"))
end

with_database("item 6: the state after each revision #cli", function(t)
  local function one(body, extra)
    return h.project({ ["versions/a.lua"] = h.revision("a", nil, 'op.create_table("t_a", { { "id", "int" } })\n  '
      .. body, 'op.drop_table("t_a")', extra) })
  end
  local function rolled_back()
    assert.equal("||0", h.psql(t.db, "SELECT to_regclass('t_a'), (SELECT string_agg(version_num, ',') "
      .. "FROM luamig_version), (SELECT count(*) FROM luamig_log)"))
  end

  it("a revision that empties the version table fails and leaves nothing, even as the last one", function()
    local code, out, err = t.run(one('op.execute("DELETE FROM luamig_version")'), { "upgrade", "--lint", "off" })
    assert.equal(1, code, out)
    assert.matches("upgrade a failed: versions/a.lua: it changed the version table luamig_version behind luamig "
      .. "(it must hold 'a' now", err, 1, true)
    assert.matches("rolled back", err, 1, true)
    assert.equal(1, select(2, err:gsub("\n", "")), err)
    rolled_back()
  end)

  it("a revision that adds a version row fails", function()
    local code, _, err = t.run(one([[op.execute("INSERT INTO luamig_version VALUES ('zzz')")]]), { "upgrade", "--lint", "off" })
    assert.equal(1, code)
    assert.matches("changed the version table", err, 1, true)
    rolled_back()
  end)

  it("a revision that drops the version table fails and leaves nothing", function()
    local code, _, err = t.run(one('op.execute("DROP TABLE luamig_version")'), { "upgrade", "--lint", "off" })
    assert.equal(1, code)
    assert.matches("upgrade a failed: versions/a.lua: the version table luamig_version or the audit log "
      .. "luamig_log is gone or unreadable after it (42P01: ", err, 1, true)
    rolled_back()
  end)

  it("a revision that releases the migration lock through a function fails and leaves nothing", function()
    local dir = one([[op.execute("CREATE FUNCTION let_go() RETURNS boolean LANGUAGE sql AS 'SELECT pg_advisory_unlock_all() IS NULL'")
  op.execute("SELECT let_go()")]])
    local code, _, err = t.run(dir, { "upgrade", "--lint", "off" })
    assert.equal(1, code)
    assert.matches("upgrade a failed: versions/a.lua: it released luamig's migration lock", err, 1, true)
    assert.equal("", h.psql(t.db, "SELECT coalesce(to_regprocedure('let_go()')::text, '')"))
    rolled_back()
  end)

  it("a non-transactional revision that releases the lock fails loudly, saying what committed", function()
    local dir = one('op.execute("SELECT pg_advisory_unlock_all()")', { transactional = false })
    local code, _, err = t.run(dir, { "upgrade", "--lint", "off" })
    assert.equal(1, code)
    assert.matches("upgrade a failed: versions/a.lua: it released luamig's migration lock", err, 1, true)
    assert.matches("its statements have committed", err, 1, true)
  end)
end)

with_database("item 10: one lock per version table, however it is named #cli", function(t)
  it("a run with version_table_schema = 'public' and one without serialize", function()
    local files = { ["versions/s.lua"] = h.revision("s", nil, [[op.execute("CREATE TABLE t_slow (id int)")
  op.execute("SELECT pg_sleep(2)")]], 'op.drop_table("t_slow")') }
    local explicit = h.project(files, 'return { versions = "versions", version_table_schema = "public" }')
    local implicit = h.project(files)
    local env = { DATABASE_URL = t.url }
    local results = h.run_all({
      { { "--lock-wait", "20", "upgrade" }, { cwd = explicit, env = env } },
      { { "--lock-wait", "20", "upgrade" }, { cwd = implicit, env = env } },
    })
    for _, r in ipairs(results) do assert.equal(0, r.code, r.stderr) end
    assert.truthy(results[1].stdout:find("Nothing to do", 1, true) or results[2].stdout:find("Nothing to do", 1, true),
      results[1].stdout .. results[2].stdout)
    assert.equal("s", versions(t.db))
    assert.equal("1", h.psql(t.db, "SELECT count(*) FROM luamig_log"))
  end)
end)

-- n revisions r01..rNN creating tables PREFIX01..PREFIXNN (prefix "t" by default).
local function chain(n, config, prefix)
  local files = {}
  prefix = prefix or "t"
  for i = 1, n do
    local id = ("r%02d"):format(i)
    files["versions/" .. id .. ".lua"] = h.revision(id, i > 1 and ("r%02d"):format(i - 1) or nil,
      ('op.create_table("%s%02d", { { "id", "int" } })'):format(prefix, i),
      ('op.drop_table("%s%02d")'):format(prefix, i))
  end
  return h.project(files, config)
end

with_database("item 9: an audit log per version table #cli", function(t)
  it("keeps luamig_log for the default version table and names others' after them", function()
    assert.equal(0, (t.run(chain(1), { "upgrade" })))
    assert.equal(0, (t.run(chain(1, 'return { versions = "versions", version_table = "app_version" }', "app"),
      { "upgrade" })))
    assert.equal("1|1", h.psql(t.db, "SELECT (SELECT count(*) FROM luamig_log), (SELECT count(*) FROM app_version_log)"))
  end)

  it("two projects on one database, five first runs each at once: no error, verify finds nothing", function()
    local a = chain(2, 'return { versions = "versions", version_table = "proj_a_version" }', "a")
    local b = chain(2, 'return { versions = "versions", version_table = "proj_b_version" }', "b")
    -- b's files differ from a's under the same ids: a shared log would mix their checksums
    for i = 1, 2 do
      local f = assert(io.open(("%s/versions/r%02d.lua"):format(b, i), "a"))
      f:write("-- project b\n")
      f:close()
    end
    local env = { DATABASE_URL = t.url }
    local jobs = {}
    for i = 1, 10 do jobs[i] = { { "-q", "upgrade" }, { cwd = i % 2 == 0 and a or b, env = env } } end
    for _, r in ipairs(h.run_all(jobs)) do assert.equal(0, r.code, r.stderr) end
    for _, dir in ipairs { a, b } do
      local code, out = t.run(dir, { "verify", "--strict" })
      assert.equal(0, code, out)
      assert.matches("^OK: every applied revision matches its file", out)
    end
    assert.equal("2|2", h.psql(t.db, "SELECT (SELECT count(*) FROM proj_a_version_log), "
      .. "(SELECT count(*) FROM proj_b_version_log)"))
  end)

  it("an audit log two projects share on purpose is created without a race", function()
    local jobs = {}
    for i = 1, 10 do
      local dir = chain(1, ('return { versions = "versions", version_table = "v%d", log_table = "shared_log" }')
        :format(i), "p" .. i .. "_")
      jobs[i] = { { "-q", "upgrade" }, { cwd = dir, env = { DATABASE_URL = t.url } } }
    end
    for _, r in ipairs(h.run_all(jobs)) do assert.equal(0, r.code, r.stderr) end
    assert.equal("10", h.psql(t.db, "SELECT count(*) FROM shared_log"))
  end)
end)

with_database("item 11: verify compares the version table with the audit log #cli", function(t)
  local function verify(dir)
    local code, out, err = t.run(dir, { "verify" })
    assert.equal(0, code, err)
    local strict = t.run(dir, { "verify", "--strict" })
    return out, strict
  end

  it("reports a version row set ahead by hand; stamp records such a change", function()
    local dir = chain(3)
    assert.equal(0, (t.run(dir, { "upgrade", "r01" })))
    h.psql(t.db, "UPDATE luamig_version SET version_num = 'r03'")
    local code, out, err = t.run(dir, { "upgrade" })
    assert.equal(0, code, err)
    assert.matches("Nothing to do", out, 1, true)
    assert.matches("warning: the version table says 2 revisions are applied that the audit log never "
      .. "recorded (r02, r03)", err, 1, true)
    local strict
    out, strict = verify(dir)
    assert.matches("ahead: r02: ", out, 1, true)
    assert.matches("ahead: r03: ", out, 1, true)
    assert.not_matches("r01", out)
    assert.equal(1, strict)
    assert.equal(0, (t.run(dir, { "stamp", "r03" })))
    out, strict = verify(dir)
    assert.matches("^OK", out)
    assert.equal(0, strict)
    assert.equal("r02 stamp|r03 stamp", h.psql(t.db, "SELECT string_agg(revision || ' ' || direction, '|' "
      .. "ORDER BY id) FROM luamig_log WHERE direction LIKE '%stamp'"))
  end)

  local drifts = {
    { "a version row set back by hand", "UPDATE luamig_version SET version_num = 'r01'",
      { "behind: r02: ", "behind: r03: " } },
    { "a stale ancestor row", "INSERT INTO luamig_version VALUES ('r01')", { "stale: r01: " } },
    { "a dropped audit log", "DROP TABLE luamig_log", { "no log: the audit log luamig_log is missing" } },
  }
  for _, d in ipairs(drifts) do
    it("reports " .. d[1] .. "; upgrade --strict refuses to go on", function()
      local dir = chain(3)
      assert.equal(0, (t.run(dir, { "upgrade" })))
      h.psql(t.db, d[2])
      local out, strict = verify(dir)
      for _, finding in ipairs(d[3]) do assert.matches(finding, out, 1, true) end
      assert.equal(1, strict)
      local code, _, err = t.run(dir, { "upgrade", "--strict" })
      assert.equal(1, code)
      assert.matches("--strict refuses to go on", err, 1, true)
    end)
  end

  it("reports the deleted file of the applied head as missing", function()
    local dir = chain(2)
    assert.equal(0, (t.run(dir, { "upgrade" })))
    os.remove(dir .. "/versions/r02.lua")
    local out, strict = verify(dir)
    assert.matches("missing: r02: ", out, 1, true)
    assert.equal(1, strict)
  end)

  it("stays quiet after upgrades, downgrades and stamps", function()
    local dir = chain(3)
    assert.equal(0, (t.run(dir, { "stamp", "r01" })))
    assert.equal(0, (t.run(dir, { "upgrade" })))
    assert.equal(0, (t.run(dir, { "downgrade", "-1" })))
    assert.equal(0, (t.run(dir, { "stamp", "r01" })))
    local out, strict = verify(dir)
    assert.matches("^OK", out)
    assert.equal(0, strict)
    assert.equal(0, (t.run(dir, { "stamp", "--purge", "r03" })))
    out, strict = verify(dir)
    assert.matches("^OK", out)
    assert.equal(0, strict)
    assert.equal("r03", versions(t.db))
  end)
end)

with_database("item 15: CREATE INDEX CONCURRENTLY never leaves an invalid index behind #cli", function(t)
  local function project(opts)
    return h.project({
      ["versions/a.lua"] = h.revision("a", nil, [[op.execute("CREATE TABLE t (a int)")
  op.execute("INSERT INTO t VALUES (1), (1), (2)")]], 'op.drop_table("t")'),
      ["versions/b.lua"] = h.revision("b", "a", ('op.create_index("ux_t_a", "t", { "a" }, { %s })'):format(opts),
        'op.drop_index("ux_t_a", { concurrently = true, if_exists = true })', { transactional = false }),
    })
  end
  local function valid() return h.psql(t.db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ux_t_a'::regclass") end

  for _, opts in ipairs { "unique = true, concurrently = true, if_not_exists = true", "unique = true, concurrently = true" } do
    it("rebuilds the index a failed build left invalid (" .. opts .. ")", function()
      local dir = project(opts)
      local code, _, err = t.run(dir, { "upgrade", "--lint", "off" })
      assert.equal(1, code)
      assert.matches("23505", err, 1, true)
      assert.equal("f", valid())
      local out, strict
      code, out = t.run(dir, { "verify" })
      assert.equal(0, code)
      assert.matches('invalid index: public.ux_t_a: ', out, 1, true)
      strict = t.run(dir, { "verify", "--strict" })
      assert.equal(1, strict)
      h.psql(t.db, "DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t WHERE a = 1)")
      code, _, err = t.run(dir, { "upgrade", "--lint", "off" })
      assert.equal(0, code, err)
      assert.equal("t", valid())
      code, out = t.run(dir, { "verify", "--strict" })
      assert.equal(0, code, out)
    end)
  end

  it("leaves a valid index of that name alone", function()
    local dir = project("concurrently = true, if_not_exists = true")
    assert.equal(0, (t.run(dir, { "upgrade", "a", "--lint", "off" })))
    h.psql(t.db, "CREATE INDEX ux_t_a ON t (a)")
    local oid = h.psql(t.db, "SELECT 'ux_t_a'::regclass::oid")
    local code, _, err = t.run(dir, { "upgrade", "--lint", "off" })
    assert.equal(0, code, err)
    assert.equal(oid, h.psql(t.db, "SELECT 'ux_t_a'::regclass::oid"))
  end)
end)

-- Whether out shows any 4 bytes in a row of the password pw.
local function leaks(out, pw)
  for i = 1, #pw - 3 do
    if out:find(pw:sub(i, i + 3), 1, true) then return pw:sub(i, i + 3) end
  end
  return false
end

describe("item 16: masking by libpq's own reading of the string", function()
  local pw = "Xq7Zk9Wm"
  local hidden = {
    " postgresql://bob:" .. pw .. "@localhost/db",
    "POSTGRESQL://bob:" .. pw .. "@localhost/db",
    "Postgres://bob:" .. pw .. "@localhost/db?sslmode=disable",
    "host=localhost PASSWORD=" .. pw .. " dbname=db",
    "host=localhost Password = '" .. pw .. "'",
    "postgresql://bob:Xq7Z/k9Wm@localhost/db",
    "postgresql://bob:Xq7Z@k9Wm@localhost/db",
    "postgresql://bob:Xq7Z?k9Wm@localhost/db",
    "postgresql://bob@localhost/db?password=Xq7Z&k9Wm",
    "postgresql://bob@localhost/db?password=Xq7Z=k9Wm",
    "host=localhost password=Xq7Z k9Wm dbname=db",
    "postgresql://bob:" .. pw .. "@localhost/db?passwor%64=" .. pw,
    "postgresql://bob@localhost/db?sslpassword=" .. pw,
    "postgresql://bob:Xq7Z:k9Wm@localhost:5432/db",
  }
  for _, url in ipairs(hidden) do
    it("shows no part of the password of " .. url, function()
      local out = core.redact(url)
      assert.is_false(leaks(out, pw), out)
      local ok, err = pcall(core.connect, url)
      assert.is_false(ok)
      assert.is_false(leaks(err, pw), err)
    end)
  end

  it("keeps the usual forms as they were, password masked", function()
    assert.equal("postgresql://bob:***@localhost:5432/db?sslmode=require",
      core.redact("postgresql://bob:" .. pw .. "@localhost:5432/db?sslmode=require"))
    assert.equal("host=h port=5 password=*** dbname=d", core.redact("host=h port=5 password=" .. pw .. " dbname=d"))
    assert.equal("mydb", core.redact("mydb"))
    assert.equal("", core.redact(""))
  end)

  it("says a string it cannot read is not shown", function()
    assert.equal("(not shown)", core.redact("POSTGRESQL://bob:" .. pw .. "@localhost/db"))
    local ok, err = pcall(core.connect, "host=localhost PASSWORD=" .. pw)
    assert.is_false(ok)
    assert.matches("^could not connect: invalid connection string or URL %(not shown", err)
  end)
end)

describe("item 16: the command, --json and the Lua API #cli", function()
  local luamig = require "luamig"
  local url = "postgresql://bob:Xq7Z@k9Wm@127.0.0.1:1/db?connect_timeout=2"

  it("print no part of a password the masking could not place", function()
    local dir = h.project({ ["versions/.keep"] = "" })
    for _, args in ipairs { { "current" }, { "--json", "current" }, { "--json", "upgrade" } } do
      local _, out, err = h.run(args, { cwd = dir, env = { DATABASE_URL = url } })
      assert.is_false(leaks(out .. err, "Xq7Zk9Wm"), out .. err)
      assert.matches("could not connect", out .. err, 1, true)
    end
    local steps, err = luamig.upgrade { config = dir .. "/luamig.lua", url = url }
    assert.is_nil(steps)
    assert.is_false(leaks(err, "Xq7Zk9Wm"), err)
  end)
end)

describe("item 18: make db-* masks with luamig's own masking #cli", function()
  local cases = {
    "postgresql://bob:Xq7Z?k9Wm@localhost/db",
    "postgresql://bob@localhost/db?passwor%64=Xq7Zk9Wm",
    "postgresql://bob@localhost/db?sslpassword=Xq7Zk9Wm",
    "postgresql://bob:Xq7Z@k9Wm@localhost/db",
    "host=localhost PASSWORD=Xq7Zk9Wm",
  }
  for _, url in ipairs(cases) do
    it("Using DATABASE_URL=... hides the password of " .. url, function()
      local code, out = h.sh(("cd %s && LUAMIG=%s DATABASE_URL=%s bash -c 'source scripts/lib.sh; use_database'")
        :format(h.shell_quote(h.root), h.shell_quote(h.bin), h.shell_quote(url)))
      assert.equal(0, code, out)
      assert.matches("Using DATABASE_URL=", out, 1, true)
      assert.is_false(leaks(out, "Xq7Zk9Wm"), out)
    end)
  end

  it("shows what luamig shows for the usual forms", function()
    local _, out = h.sh(("cd %s && LUAMIG=%s bash -c 'source scripts/lib.sh; mask_url %s'")
      :format(h.shell_quote(h.root), h.shell_quote(h.bin), h.shell_quote("postgresql://bob:pw@h:5/db")))
    assert.equal("postgresql://bob:***@h:5/db\n", out)
  end)

  it("keeps config --print-url out of the help", function()
    local _, out = h.run({ "--help" })
    assert.not_matches("\n  config ", out)
    assert.matches("\n  current ", out)
    local code, out2 = h.run({ "--url", "postgresql://u:pw@h/d", "config", "--print-url" }, { cwd = h.project({}) })
    assert.equal(0, code)
    assert.equal("postgresql://u:***@h/d\n", out2)
  end)
end)

with_database("item 17: --backup keeps the password off pg_dump's command line #cli", function(t)
  local role = ("hb_pw_%x"):format(math.random(0, 0x7fffffff))
  local hba = os.getenv("PGHOST") .. "/data/pg_hba.conf"
  local saved
  before_each(function()
    h.psql("postgres", ("CREATE ROLE %s LOGIN PASSWORD 'Xq7Zk9Wm-secret'"):format(role))
    h.psql("postgres", ('ALTER DATABASE "%s" OWNER TO %s'):format(t.db, role))
    local f = assert(io.open(hba))
    saved = f:read("a")
    f:close()
    f = assert(io.open(hba, "w"))          -- this role only: a password over the socket
    f:write(("local all %s scram-sha-256\n"):format(role), saved)
    f:close()
    h.psql("postgres", "SELECT pg_reload_conf()")
  end)
  after_each(function()
    local f = assert(io.open(hba, "w"))
    f:write(saved)
    f:close()
    h.psql("postgres", "SELECT pg_reload_conf()")
    h.drop_database(t.db)                  -- the role owns it
    h.psql("postgres", "DROP ROLE IF EXISTS " .. role)
  end)

  it("hands pg_dump the password in a private passfile, removed afterwards", function()
    local dir = chain(1)
    local bin = dir .. "/bin"
    h.sh("mkdir -p " .. h.shell_quote(bin))
    -- a pg_dump in front of the real one that records what it was given
    local f = assert(io.open(bin .. "/pg_dump", "w"))
    f:write(([[#!/bin/sh
printf '%%s\n' "$@" > %s/argv
for a in "$@"; do
  case $a in *passfile=*) p=${a#*passfile=\'}; p=${p%%%%\'*}; stat -c %%a "$p" > %s/mode; cat "$p" > %s/passfile; echo "$p" > %s/passpath;; esac
done
exec /usr/lib/postgresql/15/bin/pg_dump "$@"
]]):format(dir, dir, dir, dir))
    f:close()
    h.sh("chmod +x " .. h.shell_quote(bin .. "/pg_dump"))
    local url = ("postgresql://%s:Xq7Zk9Wm-secret@/%s?host=%s&port=%s"):format(role, t.db,
      os.getenv("PGHOST"):gsub("/", "%%2F"), os.getenv("PGPORT"))
    local code, out, err = h.run({ "upgrade", "--backup", dir .. "/before.sql" },
      { cwd = dir, env = { DATABASE_URL = url, PATH = bin .. ":" .. os.getenv("PATH") } })
    assert.equal(0, code, out .. err)
    local function read(name)
      local g = assert(io.open(dir .. "/" .. name))
      local s = g:read("a")
      g:close()
      return s
    end
    assert.is_false(leaks(read("argv"), "Xq7Zk9Wm-secret"), read("argv"))
    assert.matches("Xq7Zk9Wm%-secret", read("passfile"))
    assert.equal("600\n", read("mode"))
    assert.is_nil(io.open((read("passpath"):gsub("\n$", ""))), "the passfile is gone")
    assert.matches("PostgreSQL database dump", read("before.sql"), 1, true)
  end)
end)

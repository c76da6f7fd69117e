-- The luamig command end to end against the test server: commands, target
-- forms, the version table, transactions, the lock and bad input. #cli: these
-- also run on the sanitizer build.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

-- A linear project a -> b -> c, each creating one table and logging into t_log.
local function linear(extra_files)
  local files = {
    ["versions/aaa111_log.lua"] = h.revision("aaa111", nil,
      [[op.execute("CREATE TABLE t_log (rev text)")]],
      [[op.execute("DROP TABLE t_log")]], { message = "Create log" }),
    ["versions/bbb222_one.lua"] = h.revision("bbb222", "aaa111",
      [[op.execute("CREATE TABLE t_one (id int)"); op.execute("INSERT INTO t_log VALUES ($1)", { "bbb222" })]],
      [[op.execute("DROP TABLE t_one")]], { message = "Create one" }),
    ["versions/ccc333_two.lua"] = h.revision("ccc333", "bbb222",
      [[op.execute("CREATE TABLE t_two (id int)"); op.execute("INSERT INTO t_log VALUES ($1)", { "ccc333" })]],
      [[op.execute("DROP TABLE t_two")]], { message = "Create two" }),
  }
  for k, v in pairs(extra_files or {}) do files[k] = v end
  return h.project(files)
end

local function tables(db)
  return h.psql(db, [[SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables
                      WHERE schemaname = 'public']])
end

local function versions(db)
  return h.psql(db, "SELECT string_agg(version_num, ',' ORDER BY version_num) FROM luamig_version")
end

describe("luamig #cli", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  local function run(dir, ...)
    return h.run({ ... }, { cwd = dir, env = env })
  end

  it("prints its version and help", function()
    local code, out = h.run({ "--version" })
    assert.equal(0, code)
    assert.matches("^luamig %d+%.%d+%.%d+", out)
    code, out = h.run({ "--help" })
    assert.equal(0, code)
    assert.matches("upgrade", out)
    assert.matches("downgrade", out)
    code, out = h.run({ "upgrade", "--help" })
    assert.equal(0, code)
    assert.matches("usage: luamig upgrade", out)
    assert.matches("Examples:\n  luamig upgrade", out)
    code, out = h.run({ "help", "downgrade" })
    assert.equal(0, code)
    assert.matches("luamig downgrade %-1", out)
  end)

  it("suggests the nearest command for a typo", function()
    local code, _, err = h.run({ "upgarde" })
    assert.equal(1, code)
    assert.matches("did you mean 'upgrade'", err)
  end)

  it("upgrades to head, one transaction and one version row per revision", function()
    local dir = linear()
    local code, out, err = run(dir, "upgrade", "head")
    assert.equal(0, code, err)
    assert.matches("Running upgrade  %-> aaa111, Create log %.%.%. [%d.]+ ms", out)
    assert.matches("Running upgrade aaa111 %-> bbb222, Create one", out)
    assert.matches("Running upgrade bbb222 %-> ccc333, Create two", out)
    assert.equal("luamig_log,luamig_version,t_log,t_one,t_two", tables(db))
    assert.equal("ccc333", versions(db))
    -- a second run finds nothing to do and changes nothing
    code, out = run(dir, "upgrade")
    assert.equal(0, code)
    assert.matches("Nothing to do", out)
    assert.equal("bbb222,ccc333", h.psql(db, "SELECT string_agg(rev, ',' ORDER BY rev) FROM t_log"))
  end)

  it("shows current, heads and history with marks", function()
    local dir = linear()
    assert.equal(0, (run(dir, "upgrade", "bbb222")))
    local code, out = run(dir, "current")
    assert.equal(0, code)
    assert.equal("bbb222\n", out)
    code, out = run(dir, "heads")
    assert.equal(0, code)
    assert.equal("ccc333 (head)\n", out)
    code, out = run(dir, "heads", "--verbose")
    assert.equal(0, code)
    assert.matches("^Rev: ccc333 %(head%)\nParent: bbb222\n", out)
    code, out = run(dir, "history")
    assert.equal(0, code)
    assert.equal("bbb222 -> ccc333 (head), Create two\n"
      .. "aaa111 -> bbb222 (current), Create one\n"
      .. "<base> -> aaa111, Create log\n", out)
    code, out = run(dir, "history", "-r", "aaa111:bbb222")
    assert.equal(0, code)
    assert.equal("aaa111 -> bbb222 (current), Create one\n<base> -> aaa111, Create log\n", out)
    code, out = run(dir, "history", "--verbose", "-r", "ccc333:")
    assert.equal(0, code)
    assert.matches("Rev: ccc333 %(head%)\nParent: bbb222\nPath: versions/ccc333_two.lua", out)
    code, out = run(dir, "current", "--verbose")
    assert.equal(0, code)
    assert.matches("Rev: bbb222\nParent: aaa111", out)
  end)

  it("takes every target form: +N, -N, ids, prefixes, REV+N, REV-N, base", function()
    local dir = linear()
    assert.equal(0, (run(dir, "upgrade", "+1")))
    assert.equal("aaa111", versions(db))
    assert.equal(0, (run(dir, "upgrade", "+2")))
    assert.equal("ccc333", versions(db))
    assert.equal(0, (run(dir, "downgrade", "-1")))
    assert.equal("bbb222", versions(db))
    assert.equal("luamig_log,luamig_version,t_log,t_one", tables(db))
    assert.equal(0, (run(dir, "downgrade", "aa")))          -- a unique prefix
    assert.equal("aaa111", versions(db))
    assert.equal(0, (run(dir, "upgrade", "aaa111+2")))
    assert.equal("ccc333", versions(db))
    assert.equal(0, (run(dir, "downgrade", "ccc333-2")))
    assert.equal("aaa111", versions(db))
    assert.equal(0, (run(dir, "upgrade", "ccc")))
    assert.equal("ccc333", versions(db))
    local code, out = run(dir, "downgrade", "base")
    assert.equal(0, code)
    assert.matches("Running downgrade aaa111 %-> , Create log", out)
    -- base deletes the rows but keeps the table, as Alembic does
    assert.equal("luamig_log,luamig_version", tables(db))
    assert.equal("0", h.psql(db, "SELECT count(*) FROM luamig_version"))
  end)

  it("refuses bad targets with Alembic's words and changes nothing", function()
    local dir = linear({ ["versions/ccc999_x.lua"] = h.revision("ccc999", "ccc333") })
    local code, _, err = run(dir, "upgrade", "cc")
    assert.equal(1, code)
    assert.matches("Multiple revisions start with 'cc': 'ccc333', 'ccc999'", err)
    code, _, err = run(dir, "upgrade", "zzz")
    assert.equal(1, code)
    assert.matches("Can't locate revision identified by 'zzz'", err)
    code, _, err = run(dir, "upgrade", "+9")
    assert.equal(1, code)
    assert.matches("Relative revision %+9 didn't produce 9 migrations", err)
    assert.equal("", versions(db))
    assert.equal(0, (run(dir, "upgrade", "bbb222")))
    code, _, err = run(dir, "downgrade", "-3")
    assert.equal(1, code)
    assert.matches("Relative revision %-3 didn't produce 3 migrations", err)
    code, _, err = run(dir, "downgrade", "ccc333")
    assert.equal(1, code)
    assert.matches("Destination ccc333 is not a valid downgrade target", err)
    code, _, err = run(dir, "downgrade")
    assert.equal(1, code)
    assert.matches("downgrade needs a target", err)
    assert.equal("bbb222", versions(db))
  end)

  it("rolls back a failing revision whole, keeps the ones before, names file:line and SQLSTATE", function()
    local dir = linear({
      ["versions/ddd444_bad.lua"] = h.revision("ddd444", "ccc333",
        'op.execute("CREATE TABLE t_half (id int)")\n  op.execute("ALTER TABLE nope ADD COLUMN x int")',
        'op.execute("ALTER TABLE nope DROP COLUMN x")\n  op.drop_table("t_half")'),
    })
    local code, out, err = run(dir, "upgrade", "head")
    assert.equal(1, code)
    assert.matches("Running upgrade ccc333 %-> ddd444, ddd444 %.%.%. FAILED", out)
    assert.matches("upgrade ddd444 failed: versions/ddd444_bad.lua:7:", err)
    assert.matches("42P01", err)
    assert.matches('relation "nope" does not exist', err)
    assert.matches("ALTER TABLE nope ADD COLUMN x int", err)
    assert.equal(1, select(2, err:gsub("\n", "")), "one line: " .. err)
    assert.equal("ccc333", versions(db))
    assert.equal("luamig_log,luamig_version,t_log,t_one,t_two", tables(db))   -- no t_half
  end)

  it("applies nothing twice when two runs race: the lock serialises them", function()
    local slow = h.revision("eee555", "ccc333",
      [[op.execute("SELECT pg_sleep(0.5)"); op.execute("INSERT INTO t_log VALUES ($1)", { "eee555" })]])
    local dir = linear({ ["versions/eee555_slow.lua"] = slow })
    local results = h.run_all({
      { { "upgrade", "head" }, { cwd = dir, env = env } },
      { { "upgrade", "head" }, { cwd = dir, env = env } },
      { { "upgrade", "head" }, { cwd = dir, env = env } },
    })
    for _, r in ipairs(results) do assert.equal(0, r.code, r.stderr) end
    assert.equal("bbb222,ccc333,eee555", h.psql(db, "SELECT string_agg(rev, ',' ORDER BY rev) FROM t_log"))
    assert.equal("eee555", versions(db))
  end)

  it("backs up the database with pg_dump before upgrading, and says where", function()
    local dir = linear()
    assert.equal(0, (run(dir, "upgrade", "aaa111")))
    local file = dir .. "/backup.sql"
    local code, out, err = run(dir, "upgrade", "--backup", file)
    assert.equal(0, code, err)
    assert.matches("Backed up the database to " .. file:gsub("%p", "%%%0") .. " %(pg_dump%)", out)
    local f = assert(io.open(file))
    local dump = f:read("a")
    f:close()
    assert.matches("CREATE TABLE public.t_log", dump)       -- taken before t_one existed
    assert.not_matches("CREATE TABLE public.t_one", dump)
    code, _, err = run(dir, "downgrade", "base", "--backup", "/nonexistent/dir/x.sql")
    assert.equal(1, code)
    assert.matches("pg_dump failed", err)
    assert.equal("ccc333", versions(db))                    -- nothing changed
  end)

  it("speaks JSON for tools: one document on stdout, errors included", function()
    local json = require "dkjson"
    local dir = linear()
    local code, out, err = run(dir, "upgrade", "bbb222", "--json")
    assert.equal(0, code, err)
    local doc = assert(json.decode(out))
    assert.equal(2, #doc.steps)
    assert.equal("bbb222", doc.steps[2].revision)
    assert.equal("upgrade", doc.steps[2].direction)
    assert.equal("aaa111", doc.steps[2].down_revision[1])
    assert.is_number(doc.steps[2].ms)
    code, out = run(dir, "status", "--json")
    assert.equal(3, code)
    doc = assert(json.decode(out))
    assert.is_false(doc.up_to_date)
    assert.equal("bbb222", doc.current[1].revision)
    assert.equal("ccc333", doc.pending[1].revision)
    code, out = run(dir, "current", "--json")
    assert.equal(0, code)
    assert.equal("bbb222", json.decode(out).current[1].revision)
    code, out = run(dir, "history", "--json")
    assert.equal(0, code)
    doc = json.decode(out)
    assert.equal(3, #doc.history)
    assert.is_true(doc.history[2].current)
    code, out = run(dir, "heads", "--json")
    assert.equal("ccc333", json.decode(out).heads[1].revision)
    code, out = run(dir, "upgrade", "nope", "--json")
    assert.equal(1, code)
    assert.matches("Can't locate revision", json.decode(out).error)
    -- stable: the same state prints the same document
    assert.equal(select(2, run(dir, "history", "--json")), select(2, run(dir, "history", "--json")))
  end)

  it("writes revisions from the template on top of the head", function()
    local dir = h.project({})
    local code, out, err = h.run({ "init", "app" }, { cwd = dir })
    assert.equal(0, code, err)
    assert.matches("Created app/luamig.lua", out)
    local app = dir .. "/app"
    code, out, err = h.run({ "revision", "-m", "Create users table" }, { cwd = app })
    assert.equal(0, code, err)
    local first = out:match("Generating versions/(%x+)_create_users_table%.lua %.%.%. done")
    assert.truthy(first, out)
    assert.equal(12, #first)
    code, out = h.run({ "revision", "-m", 'Add "email" to users', "--rev-id", "second1" }, { cwd = app })
    assert.equal(0, code)
    assert.matches("versions/second1_add_email_to_users%.lua", out)
    local f = assert(io.open(app .. "/versions/second1_add_email_to_users.lua"))
    local text = f:read("a")
    f:close()
    assert.matches('down_revision = "' .. first .. '"', text, 1, true)
    assert.matches("Revises: " .. first, text, 1, true)
    assert.matches('message = "Add \\"email\\" to users"', text, 1, true)
    assert.matches("Create Date: %d%d%d%d%-%d%d%-%d%d", text)
    code, out = h.run({ "heads" }, { cwd = app })
    assert.equal(0, code)
    assert.equal("second1 (head)\n", out)
    code, _, err = h.run({ "revision", "-m", "x", "--rev-id", "second1" }, { cwd = app })
    assert.equal(1, code)
    assert.matches("already exists", err)
  end)

  describe("bad input: one line, exit 1, nothing changed", function()
    local function fails(dir, pattern, ...)
      local code, _, err = run(dir, ...)
      assert.equal(1, code, err)
      assert.matches(pattern, err)
      assert.equal(1, select(2, err:gsub("\n", "")), "one line: " .. err)
      assert.equal("", tables(db))
    end

    it("no config and no URL", function()
      local dir = h.project({})
      os.remove(dir .. "/luamig.lua")
      local code, _, err = h.run({ "upgrade" }, { cwd = dir, env = { DATABASE_URL = false } })
      assert.equal(1, code)
      assert.matches("no luamig.lua here and no URL", err)
    end)

    it("a server that refuses, with the password masked", function()
      local dir = linear()
      local code, _, err = h.run({ "--url", "postgresql://bob:s3cret@127.0.0.1:1/x", "upgrade" },
        { cwd = dir })
      assert.equal(1, code)
      assert.matches("could not connect to postgresql://bob:%*%*%*@127%.0%.0%.1:1/x", err)
      assert.not_matches("s3cret", err)
    end)

    it("a syntax error names file and line", function()
      fails(linear({ ["versions/x_bad.lua"] = 'revision = "x"\nfunction upgrade(\n' }),
        "versions/x_bad%.lua:3:", "upgrade")
    end)

    it("a file without revision, upgrade or downgrade", function()
      fails(h.project({ ["versions/a.lua"] = "function upgrade() end\nfunction downgrade() end\n" }),
        "versions/a%.lua: no 'revision' id set", "upgrade")
      fails(h.project({ ["versions/a.lua"] = 'revision = "a"\nfunction downgrade() end\n' }),
        "revision a has no upgrade%(%) function", "upgrade")
    end)

    it("a duplicate id, a dangling down_revision, a cycle", function()
      fails(linear({ ["versions/zzz_dup.lua"] = h.revision("bbb222", "aaa111") }),
        "duplicate revision id 'bbb222' in versions/bbb222_one.lua and versions/zzz_dup.lua", "upgrade")
      fails(linear({ ["versions/ddd_x.lua"] = h.revision("ddd", "nope") }),
        "revision ddd %(versions/ddd_x.lua%): down_revision 'nope' names no revision file", "upgrade")
      fails(h.project({
        ["versions/a.lua"] = h.revision("a", "c"),
        ["versions/b.lua"] = h.revision("b", "a"),
        ["versions/c.lua"] = h.revision("c", "b"),
      }), "cycle in the revision graph: [abc] %-> [abc] %-> [abc] %-> [abc]", "upgrade")
    end)

    it("a version table naming a revision no file has", function()
      local dir = linear()
      h.psql(db, "CREATE TABLE luamig_version (version_num varchar(32) PRIMARY KEY); "
        .. "INSERT INTO luamig_version VALUES ('fff000')")
      local code, _, err = run(dir, "upgrade")
      assert.equal(1, code)
      assert.matches("Can't locate revision identified by 'fff000'", err)
      assert.equal("luamig_version", tables(db))
      local out
      code, out = run(dir, "current")
      assert.equal(0, code)
      assert.equal("fff000 (unknown: no revision file has it)\n", out)
    end)
  end)

  it("reads DATABASE_URL from a .env beside the config, never over the environment", function()
    local dir = linear({ [".env"] = "# test\nDATABASE_URL=" .. h.url(db) .. "\n" })
    local code, _, err = h.run({ "upgrade", "+1" }, { cwd = dir, env = { DATABASE_URL = false } })
    assert.equal(0, code, err)
    assert.equal("aaa111", versions(db))
    code, _, err = h.run({ "upgrade" }, { cwd = dir,
      env = { DATABASE_URL = "postgresql://u:pw@127.0.0.1:1/none" } })
    assert.equal(1, code)
    assert.matches("127%.0%.0%.1:1", err)
  end)
end)

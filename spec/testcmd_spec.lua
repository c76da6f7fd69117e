-- `luamig test`: the example project passes; each broken project fails the right check
-- at the right revision with the difference named; scratch databases never outlive the
-- run (failure, ^C); --json, exit statuses, --scratch. #cli: the ASan build too.
local h = require "helpers"
local json = require "dkjson"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local ADD_DESCRIPTION = "3f2a9c1b7e4d_add_description_column_to_sessions.lua"

local read, write = h.read_file, h.write_file

-- A copy of the example project (luamig.lua, versions/, app/); files replaces or adds
-- files (relative path -> content).
local function example(files)
  local dir = h.project({})
  assert(h.sh(("cp -r %s/luamig.lua %s/versions %s/app %s/"):format(h.shell_quote(h.root),
    h.shell_quote(h.root), h.shell_quote(h.root), h.shell_quote(dir))) == 0)
  for name, text in pairs(files or {}) do write(dir .. "/" .. name, text) end
  return dir
end

-- The lines of stdout that report check `name` (its line and the indented ones after).
local function check_block(out, name)
  local block, on = {}, false
  for line in out:gmatch("[^\n]+") do
    if line:match("^%u%u%u%u " .. name:gsub("%p", "%%%0") .. ":") then
      on = true
    elseif not line:match("^    ") then
      on = false
    end
    if on then block[#block + 1] = line end
  end
  return table.concat(block, "\n")
end

describe("luamig test #cli", function()
  local db, url

  h.database_each(function(name)
    db, url = name, h.url(name)
  end)

  local function leftovers()
    return h.psql("postgres", ("SELECT count(*) FROM pg_database WHERE datname LIKE '%s\\_luamig\\_test\\_%%'")
      :format(db))
  end

  local function test(dir, args)
    local argv = { "test", "--url", url }
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    return h.run(argv, { cwd = dir })
  end

  it("passes the example project, one line per check, and drops its scratch database", function()
    local code, out, err = test(example())
    assert.equal(0, code, out .. err)
    for _, name in ipairs { "graph", "stairway", "round trip", "models match", "offline equals online", "lint" } do
      assert.truthy(out:find("\nPASS " .. name .. ":", 1, true) or out:find("^PASS " .. name .. ":"), name .. "\n" .. out)
    end
    assert.matches("scratch database " .. db:gsub("%p", "%%%0") .. "_luamig_test_%d+ on ", out)
    assert.matches("PASS stairway: 4 revisions: each downgrade undoes its upgrade", out, 1, true)
    assert.matches("6 passed, 0 failed, 0 skipped\n$", out)
    assert.falsy(out:find("stairway [", 1, true), out)    -- progress lines only on a terminal
    assert.equal("0", leftovers())
  end)

  it("fails stairway at the revision whose downgrade forgets a column, naming the column", function()
    local dir = example()
    local path = dir .. "/versions/" .. ADD_DESCRIPTION
    write(path, (read(path):gsub('op%.drop_column%("sessions", "description"%)', "-- forgotten")))
    local code, out = test(dir)
    assert.equal(1, code, out)
    assert.equal("FAIL stairway: revision 3f2a9c1b7e4d (Add description column to sessions): "
      .. "its downgrade does not undo its upgrade\n"
      .. "    versions/" .. ADD_DESCRIPTION .. ":14: downgrade()\n"
      .. "    column sessions.description: missing before, present after downgrade",
      check_block(out, "stairway"))
    assert.equal("0", leftovers())     -- a failure drops it too
  end)

  it("fails stairway at the revision whose downgrade drops the wrong index (--json)", function()
    local dir = example {
      ["versions/b5c6d7e8f9a0_index_titles.lua"] = h.revision("b5c6d7e8f9a0", "3f2a9c1b7e4d",
        'op.create_index("ix_sessions_title", "sessions", { "title" })',
        'op.drop_index("ix_sessions_expires_at")', { message = "Index sessions by title" }),
    }
    local code, out = test(dir, { "--json" })
    assert.equal(1, code, out)
    local checks = {}                -- one object per check, one per line
    for line in out:gmatch("[^\n]+") do checks[#checks + 1] = assert(json.decode(line), line) end
    local names = {}
    for i, c in ipairs(checks) do names[i] = c.check end
    assert.same({ "graph", "stairway", "round trip", "models match", "offline equals online", "lint" }, names)
    local s = checks[2]
    assert.equal("fail", s.status)
    assert.equal("b5c6d7e8f9a0", s.revision)
    assert.equal("versions/b5c6d7e8f9a0_index_titles.lua", s.file)
    assert.equal(8, s.line)            -- function downgrade()
    assert.same({ "index ix_sessions_expires_at on sessions: present before, missing after downgrade",
                  "index ix_sessions_title on sessions: missing before, present after downgrade" },
                s.differences)
    -- the round trip starts afresh and meets the missing index on the way down
    assert.equal("fail", checks[3].status)
    assert.matches("^downgrade failed: .*ix_sessions_expires_at", checks[3].summary)
  end)

  it("fails models match when a model has no revision", function()
    local dir = example()
    local models = dir .. "/app/models.lua"
    write(models, (read(models):gsub("\nreturn m", [[

m:table("tags", { { "id", "bigserial", primary_key = true }, { "name", "text", nullable = false } })

return m]])))
    local code, out = test(dir)
    assert.equal(1, code, out)
    assert.equal("FAIL models match: ./app/models.lua and the database differ after upgrade heads "
      .. "(1 difference)\n    added table 'tags'", check_block(out, "models match"))
    assert.matches("PASS stairway:", out, 1, true)
  end)

  it("fails offline equals online when a revision branches on the data", function()
    local dir = example {
      ["versions/c6d7e8f9a0b1_nickname.lua"] = h.revision("c6d7e8f9a0b1", "3f2a9c1b7e4d", [[
  -- a query offline raises: the script takes the other branch
  local ok, rows = pcall(op.query, "SELECT count(*) AS n FROM users")
  if ok and rows[1].n == 0 then op.add_column("users", { "nickname", "text" }) end]],
        'op.execute("ALTER TABLE users DROP COLUMN IF EXISTS nickname")'),
    }
    local code, out = test(dir)
    assert.equal(1, code, out)
    assert.equal("FAIL offline equals online: the --sql script of base -> heads gives another "
      .. "schema than upgrading online\n"
      .. "    column users.nickname: present online, missing after the --sql script",
      check_block(out, "offline equals online"))
    assert.matches("PASS stairway:", out, 1, true)
    assert.equal("0", leftovers())
  end)

  it("compares every kind of object the catalog holds", function()
    -- one revision makes each kind; its downgrade drops only the table, so each of the
    -- others is named (what the table holds is not listed again); the version table's
    -- schema, which luamig never creates, is made for the scratch database
    local dir = h.project({
      ["versions/a_base.lua"] = h.revision("aaa", nil,
        'op.create_table("t", { { "id", "bigserial", primary_key = true }, { "n", "int" } })',
        'op.drop_table("t")'),
      ["versions/b_kinds.lua"] = h.revision("bbb", "aaa", [[
  op.execute("CREATE SCHEMA extra")
  op.create_enum("mood", { "ok", "sad" })
  op.execute("CREATE DOMAIN posint AS integer CHECK (VALUE > 0)")
  op.execute("CREATE SEQUENCE counter START 5")
  op.execute("CREATE VIEW big AS SELECT id FROM t WHERE n > 10")
  op.execute("CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
  op.execute("CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch()")
  op.execute("COMMENT ON COLUMN t.n IS 'how many'")
  op.execute("GRANT SELECT ON t TO PUBLIC")
  op.alter_column("t", "n", { server_default = "1", nullable = false })
  op.create_check_constraint("n_positive", "t", "n > 0")
  op.create_table("gone", { { "id", "int" } })]],
        [[op.drop_table("gone")]]),
    }, 'return { versions = "versions", version_table_schema = "meta" }\n')
    local code, out = test(dir)
    assert.equal(1, code, out)
    local block = check_block(out, "stairway")
    for _, line in ipairs {
      "schema extra: missing before, present after downgrade",
      "enum mood: missing before, present after downgrade",
      "domain posint: missing before, present after downgrade",
      "column t.n: comment none before, how many after downgrade",
      "column t.n: default none before, 1 after downgrade",
      "column t.n: not null no before, yes after downgrade",
      "table t: privileges postgres=arwdDxt/postgres before, =r/postgres, postgres=arwdDxt/postgres after downgrade",
      "check constraint n_positive on t: missing before, present after downgrade",
      "trigger t_touch on t: missing before, present after downgrade",
      "sequence counter: missing before, present after downgrade",
      "view big: missing before, present after downgrade",
      "function touch(): missing before, present after downgrade",
    } do
      assert.truthy((block .. "\n"):find("\n    " .. line .. "\n", 1, true), line .. "\n" .. block)
    end
    assert.falsy(block:find("gone", 1, true), block)
    assert.falsy(block:find("meta", 1, true), block)
  end)

  it("tests only the revisions of a range, a progress line per revision on a terminal", function()
    local dir = example()
    -- script(1) gives the command a terminal
    local code, out = h.sh(("cd %s && NO_COLOR=1 script -qec %s /dev/null </dev/null"):format(
      h.shell_quote(dir), h.shell_quote(("%s test 7c9e2d4f1b3a:head --url %s"):format(
        h.shell_quote(h.bin), h.shell_quote(url)))))
    out = out:gsub("\r", "")
    assert.equal(0, code, out)
    assert.matches("\n  stairway %[1/2%] a1b2c3d4e5f6, Create participants table\n"
      .. "  stairway %[2/2%] 3f2a9c1b7e4d, Add description column to sessions\nPASS stairway: 2 revisions", out)
    assert.matches("PASS round trip: 7c9e2d4f1b3a -> head -> 7c9e2d4f1b3a", out, 1, true)
  end)

  it("fails graph on two heads and skips the rest", function()
    local dir = h.project {
      ["versions/a.lua"] = h.revision("aaa", nil, "", ""),
      ["versions/b.lua"] = h.revision("bbb", "aaa", "", ""),
      ["versions/c.lua"] = h.revision("ccc", "aaa", "", ""),
    }
    local code, out = test(dir)
    assert.equal(1, code, out)
    assert.matches("FAIL graph: Multiple head revisions are present: ", out, 1, true)
    assert.matches("SKIP stairway: the revisions do not load (graph)", out, 1, true)
    assert.matches("0 passed, 1 failed, 5 skipped", out, 1, true)
    -- the Lua API returns the same checks
    local res = assert(require("luamig").test { config = dir .. "/luamig.lua", url = url })
    assert.same({ 0, 1, 5 }, { res.passed, res.failed, res.skipped })
    assert.equal("graph", res.checks[1].check)
    assert.equal("fail", res.checks[1].status)
  end)

  it("accepts the labelled heads luamig.lua declares; steps a merge back alone", function()
    local files = {
      ["versions/a.lua"] = h.revision("aaa", nil, 'op.create_table("a", { { "id", "int" } })',
        'op.drop_table("a")', { branch_labels = { "main" } }),
      ["versions/b.lua"] = h.revision("bbb", "aaa", 'op.create_table("b", { { "id", "int" } })', 'op.drop_table("b")'),
      ["versions/x.lua"] = h.revision("xxx", nil, 'op.create_table("x", { { "id", "int" } })',
        'op.drop_table("x")', { branch_labels = { "billing" } }),
      ["versions/y.lua"] = h.revision("yyy", "xxx", 'op.create_table("y", { { "id", "int" } })', 'op.drop_table("y")'),
    }
    local dir = h.project(files, 'return { versions = "versions", heads = { "main", "billing" } }\n')
    local code, out = test(dir)
    assert.equal(0, code, out)
    assert.matches("PASS graph: 4 revisions, 2 heads (bbb, yyy)", out, 1, true)
    -- the second base cannot be undone alone: downgrading it to base takes the other branch
    assert.matches("PASS stairway: 4 revisions: each downgrade undoes its upgrade; 1 not alone", out, 1, true)
    files["versions/m.lua"] = h.revision("mmm", { "bbb", "yyy" }, 'op.create_table("m", { { "id", "int" } })', "")
    code, out = test(h.project(files))
    assert.equal(1, code, out)
    assert.equal("FAIL stairway: revision mmm (mmm): its downgrade does not undo its upgrade\n"
      .. "    versions/m.lua:8: downgrade()\n    table m: missing before, present after downgrade",
      check_block(out, "stairway"))
  end)

  it("documents itself in luamig help test", function()
    local out = h.run_ok { "help", "test" }
    assert.matches("usage: luamig test [--scratch] [--lint strict|warn|off]", out, 1, true)
    assert.matches("\n  %-%-scratch +start a throwaway server of its own", out)
    assert.matches("luamig test --scratch            # CI", out, 1, true)
  end)

  it("exits 2 when the run cannot start, and says why", function()
    local dir = example()
    local code, out, err = h.run({ "test", "--url", h.url(db .. "_nope") }, { cwd = dir })
    assert.equal(2, code, out .. err)
    assert.matches("could not connect", err, 1, true)
    code, _, err = h.run({ "test", "--url", url, "--scratch" }, { cwd = dir })
    assert.equal(2, code)
    assert.matches("--url and --scratch exclude each other", err, 1, true)
    code, _, err = h.run({ "test", "base:head", "extra" }, { cwd = dir })
    assert.equal(2, code)
    assert.matches("unexpected argument 'extra'", err, 1, true)
    code, _, err = h.run({ "test", "--no-such-option" }, { cwd = dir })
    assert.equal(2, code)
    assert.matches("unknown option '--no-such-option'", err, 1, true)
    code, _, err = h.run({ "test", "--lint", "loud" }, { cwd = dir })
    assert.equal(2, code)
    assert.matches("--lint must be strict, warn or off, not 'loud'", err, 1, true)
    code, _, err = h.run({ "test", "--scratch" }, { cwd = dir, env = { PG_BINDIR = dir } })
    assert.equal(2, code)
    assert.matches("--scratch needs PostgreSQL's server programs (initdb, pg_ctl), not in " .. dir, err, 1, true)
    -- a role that may not create databases is told about --scratch
    local role = db .. "_role"
    h.psql(db, ('CREATE ROLE "%s" LOGIN'):format(role))
    code, _, err = h.run({ "test", "--url", url:gsub("user=[^&]*", "user=" .. role) }, { cwd = dir })
    h.psql(db, ('DROP ROLE "%s"'):format(role))
    assert.equal(2, code, err)
    assert.matches("could not create the scratch database " .. db .. "_luamig_test_%d+: 42501: "
      .. "permission denied to create database.*luamig test %-%-scratch", err)
  end)

  it("drops the scratch database when interrupted by ^C (SIGINT), and exits 130", function()
    local dir = example {
      ["versions/d7e8f9a0b1c2_slow.lua"] = h.revision("d7e8f9a0b1c2", "3f2a9c1b7e4d",
        'op.execute("SELECT pg_sleep(0.1)")', 'op.execute("SELECT pg_sleep(0.1)")'),
    }
    local out, errf = dir .. "/out", dir .. "/err"
    -- a background job ignores SIGINT (and luamig leaves it so): env gives it back
    local code = h.sh(("cd %s && { env --default-signal=INT %s test --url %s >%s 2>%s & pid=$!; "
      .. "for i in $(seq 50); do grep -q '^scratch database' %s && break; sleep 0.1; done; "
      .. "sleep 0.2; kill -INT $pid; wait $pid; }"):format(h.shell_quote(dir), h.shell_quote(h.bin),
      h.shell_quote(url), out, errf, out))
    assert.equal(130, code, read(out) .. read(errf))
    assert.matches("interrupted; the scratch databases on .* are dropped", read(errf))
    assert.equal("0", leftovers())
  end)
end)

describe("luamig test --scratch #cli", function()
  it("starts a throwaway server, passes the example project, removes the server", function()
    local dir = example()
    local code, out, err = h.run({ "test", "--scratch" }, { cwd = dir, env = { PGHOST = false, PGPORT = false } })
    assert.equal(0, code, out .. err)
    local home = out:match("scratch database luamig_test_%d+ on a throwaway cluster in (%S+)")
    assert.truthy(home, out)
    assert.matches("6 passed, 0 failed, 0 skipped", out, 1, true)
    assert.equal(1, (h.sh("test -e " .. h.shell_quote(home))))   -- removed
  end)
end)

-- Branches, merges, labels, dependencies, stamp, status and offline --sql,
-- checked against the real server: the order revisions ran in (a log table
-- each revision writes to) and the version-table rows after every step.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"

-- A revision that creates table t_<id> and appends its id to run_log.
local function rev(id, down, extra)
  return h.revision(id, down,
    ('op.create_table("t_%s", { { "id", "int" } }); op.execute("INSERT INTO run_log (rev) VALUES ($1)", { "%s" })')
      :format(id, id),
    ('op.drop_table("t_%s"); op.execute("INSERT INTO run_log (rev) VALUES ($1)", { "-%s" })'):format(id, id),
    extra)
end

--        base
--          |
--          a  (creates run_log)
--         / \
--   left b1   c1 right
--        |     |
--        b2   c2
local function branched(more)
  local files = {
    ["versions/a.lua"] = h.revision("a", nil,
      'op.execute("CREATE TABLE run_log (n serial, rev text)")', 'op.execute("DROP TABLE run_log")',
      { message = "root" }),
    ["versions/b1.lua"] = rev("b1", "a", { branch_labels = { "left" } }),
    ["versions/b2.lua"] = rev("b2", "b1"),
    ["versions/c1.lua"] = rev("c1", "a", { branch_labels = { "right" } }),
    ["versions/c2.lua"] = rev("c2", "c1"),
  }
  for k, v in pairs(more or {}) do files[k] = v end
  return h.project(files)
end

describe("branches and merges #cli", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  local function run(dir, ...) return h.run({ ... }, { cwd = dir, env = env }) end
  local function ok(dir, ...)
    local code, out, err = run(dir, ...)
    assert.equal(0, code, table.concat({ ... }, " ") .. ": " .. err)
    return out
  end
  local function rows()
    return h.psql(db, "SELECT coalesce(string_agg(version_num, ',' ORDER BY version_num), '') FROM luamig_version")
  end
  local function log()
    return h.psql(db, "SELECT coalesce(string_agg(rev, ',' ORDER BY n), '') FROM run_log")
  end

  it("refuses 'head' with several heads, naming them and the ways out", function()
    local dir = branched()
    local code, _, err = run(dir, "upgrade", "head")
    assert.equal(1, code)
    assert.matches("Multiple head revisions are present for given argument 'head'; please specify "
      .. "a specific target revision, '<branchname>@head' to narrow to a specific head, or 'heads' "
      .. "for all heads", err, 1, true)
    assert.matches("b2, c2", err, 1, true)
    assert.matches("luamig merge", err, 1, true)
  end)

  it("walks branches with heads, LABEL@head, LABEL@-N, LABEL@base, LABEL@+N", function()
    local dir = branched()
    ok(dir, "upgrade", "heads")
    assert.equal("b2,c2", rows())
    assert.equal("c1,c2,b1,b2", log())               -- Alembic's order: one branch, then the next
    ok(dir, "downgrade", "left@-1")
    assert.equal("b1,c2", rows())
    ok(dir, "upgrade", "left@head")
    assert.equal("b2,c2", rows())
    ok(dir, "downgrade", "right@base")               -- that branch only
    assert.equal("b2", rows())
    assert.equal("c1,c2,b1,b2,-b2,b2,-c2,-c1", log())
    ok(dir, "upgrade", "right@+1")
    assert.equal("b2,c1", rows())
    ok(dir, "downgrade", "b1")                       -- a revision: what is built on it goes
    assert.equal("b1,c1", rows())
    ok(dir, "downgrade", "a")
    assert.equal("a", rows())
    ok(dir, "upgrade", "c2")
    assert.equal("c2", rows())
    local code, _, err = run(dir, "upgrade", "+1")   -- from c2 there is no +1
    assert.equal(1, code)
    assert.matches("didn't produce 1 migrations", err)
    ok(dir, "downgrade", "base")
    assert.equal("", rows())
  end)

  it("merges heads into one row and splits them again on the way down", function()
    local dir = branched()
    local out = ok(dir, "merge", "-m", "join", "--rev-id", "m1")
    assert.matches("Generating versions/m1_join%.lua %.%.%. done", out)
    local f = assert(io.open(dir .. "/versions/m1_join.lua"))
    local text = f:read("a")
    f:close()
    assert.matches('down_revision = { "b2", "c2" }', text, 1, true)
    assert.equal("m1 (left, right) (head)\n", ok(dir, "heads"))   -- both labels reach it
    ok(dir, "upgrade", "b1")
    assert.equal("b1", rows())
    ok(dir, "upgrade", "head")
    assert.equal("m1", rows())
    ok(dir, "downgrade", "-1")
    assert.equal("b2,c2", rows())
    ok(dir, "upgrade", "m1")
    assert.equal("m1", rows())
    ok(dir, "downgrade", "c1")                       -- through the merge point: b2 stays
    assert.equal("b2,c1", rows())
    local code, _, err = run(dir, "merge", "b1", "c2")
    assert.equal(1, code)
    assert.matches("revision b1 is not a head", err)
    code, _, err = run(dir, "merge")
    assert.equal(1, code)
    assert.matches("nothing to merge", err)
  end)

  it("applies depends_on first and keeps the dependency's row only while it is a head", function()
    local dir = branched({ ["versions/d1.lua"] = rev("d1", "c2", { depends_on = { "left" } }) })
    ok(dir, "upgrade", "d1")
    assert.equal("d1", rows())                       -- as Alembic: applying d1 takes b1's row
    assert.equal("b1,c1,c2,d1", log())               -- Alembic's order: the dependency first
    ok(dir, "downgrade", "b1@base")                  -- reverting b1 reverts its dependent first
    assert.equal("c2", rows())
    local code, _, err = run(branched({ ["versions/x.lua"] = rev("x", "a", { depends_on = { "nope" } }) }),
      "heads")
    assert.equal(1, code)
    assert.matches("depends_on 'nope' names no revision or branch label", err)
  end)

  it("refuses a label claimed by two files", function()
    local dir = branched({ ["versions/b3.lua"] = rev("b3", "b2", { branch_labels = { "right" } }) })
    local code, _, err = run(dir, "heads")
    assert.equal(1, code)
    assert.matches("branch label 'right' of revision", err)
    assert.matches("is already claimed by", err)
  end)

  it("creates revisions on a chosen head, spliced, labelled, depending, in a chosen directory", function()
    local dir = branched({ ["more/.keep"] = "" })
    local f = assert(io.open(dir .. "/luamig.lua", "w"))
    f:write('return { versions = { "versions", "more" } }\n')
    f:close()
    local code, _, err = run(dir, "revision", "-m", "x", "--head", "b1")
    assert.equal(1, code)
    assert.matches("Revision b1 is not a head revision; please specify %-%-splice", err)
    local out = ok(dir, "revision", "-m", "side", "--rev-id", "s1", "--head", "b1", "--splice",
      "--branch-label", "side", "--depends-on", "c1", "--version-path", "more")
    assert.matches("more/s1_side%.lua", out)
    f = assert(io.open(dir .. "/more/s1_side.lua"))
    local text = f:read("a")
    f:close()
    assert.matches('down_revision = "b1"', text, 1, true)
    assert.matches('branch_labels = { "side" }', text, 1, true)
    assert.matches('depends_on = { "c1" }', text, 1, true)
    out = ok(dir, "show", "side@head")        -- b1's label reaches s1, as in Alembic and heads
    assert.matches("Rev: s1 %(head%)\nParent: b1\nAlso depends on: c1\nBranch names: left, side\nPath: more/s1_side.lua", out)
    out = ok(dir, "branches")
    assert.matches("b1 %(branchpoint%)", out)
    assert.matches("    %-> s1", out)
  end)

  it("stamps without running anything", function()
    local dir = branched()
    ok(dir, "stamp", "heads")
    assert.equal("b2,c2", rows())
    assert.equal("", h.psql(db, "SELECT string_agg(tablename, ',') FROM pg_tables WHERE tablename LIKE 't_%'"))
    ok(dir, "stamp", "b1")                           -- moves the left row
    assert.equal("b1,c2", rows())
    ok(dir, "stamp", "base")
    assert.equal("", rows())
    ok(dir, "stamp", "c1")
    assert.equal("c1", rows())
    h.psql(db, "INSERT INTO luamig_version VALUES ('junk')")
    local code, _, err = run(dir, "stamp", "c2")
    assert.equal(1, code)
    assert.matches("Can't locate revision identified by 'junk'", err)
    ok(dir, "stamp", "--purge", "c2")
    assert.equal("c2", rows())
    code, _, err = run(dir, "stamp", "zzz")
    assert.equal(1, code)
    assert.matches("Can't locate revision identified by 'zzz'", err)
    assert.equal("c2", rows())
  end)

  it("status exits 0 at head, 3 with pending revisions, 1 on error", function()
    local dir = branched()
    local code, out = run(dir, "status")
    assert.equal(3, code)
    assert.matches("Current: <base>", out)
    assert.matches("Pending: 5 revisions", out)
    ok(dir, "upgrade", "left@head")
    code, out = run(dir, "status")
    assert.equal(3, code)
    assert.matches("Pending: 2 revisions\n  a %-> c1, c1\n  c1 %-> c2 %(head%), c2\n", out)
    ok(dir, "upgrade", "heads")
    code, out = run(dir, "status")
    assert.equal(0, code)
    assert.matches("Up to date", out)
    code = h.run({ "status" }, { cwd = dir, env = { DATABASE_URL = "postgresql://x@127.0.0.1:1/x" } })
    assert.equal(1, code)
  end)

  it("shows history ranges with relative parts", function()
    local dir = h.project({
      ["versions/r1.lua"] = h.revision("r1", nil, "", "", { message = "one" }),
      ["versions/r2.lua"] = h.revision("r2", "r1", "", "", { message = "two" }),
      ["versions/r3.lua"] = h.revision("r3", "r2", "", "", { message = "three" }),
      ["versions/r4.lua"] = h.revision("r4", "r3", "", "", { message = "four" }),
    })
    ok(dir, "upgrade", "r3")
    assert.equal("r2 -> r3 (current), three\nr1 -> r2, two\n", ok(dir, "history", "-r", "-1:current"))
    assert.equal("r3 -> r4 (head), four\nr2 -> r3 (current), three\n", ok(dir, "history", "-r", "r3:"))
    assert.equal("r1 -> r2, two\n<base> -> r1, one\n", ok(dir, "history", "-r", "base:r2"))
    assert.equal(4, select(2, ok(dir, "history", "-r", "base:head"):gsub("\n", "")))
  end)

  describe("offline --sql", function()
    local function dump(name)
      local code, out = h.sh(("%s --schema-only --no-owner -d %s | grep -v -e '^--' -e '^$' -e '^.restrict' -e '^.unrestrict'")
        :format(PG_DUMP, h.shell_quote(name)))
      assert.equal(0, code, out)
      return out
    end

    it("prints a script that gives the same schema and version table as the online run", function()
      local dir = branched({ ["versions/m.lua"] = rev("m", { "b2", "c2" }) })
      local code, script, err = h.run({ "upgrade", "head", "--sql" },
        { cwd = dir, env = { DATABASE_URL = false } })   -- no connection at all
      assert.equal(0, code, err)
      assert.matches("CREATE TABLE IF NOT EXISTS", script)
      assert.matches("%-%- Running upgrade  %-> a, root\nBEGIN;", script)
      assert.matches("INSERT INTO run_log %(rev%) VALUES %('b1'%);", script)
      assert.matches("COMMIT;", script)
      local path = dir .. "/up.sql"
      local f = assert(io.open(path, "w"))
      f:write(script)
      f:close()
      local offline = h.new_database()
      local rc, out = h.sh(("/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 -1 -f %s -d %s 2>&1")
        :format(h.shell_quote(path), h.shell_quote(offline)))
      assert.equal(0, rc, out)
      ok(dir, "upgrade", "head")
      assert.equal(dump(db), dump(offline))
      assert.equal(rows(), h.psql(offline, "SELECT string_agg(version_num, ',') FROM luamig_version"))
      assert.equal(log(), h.psql(offline, "SELECT string_agg(rev, ',' ORDER BY n) FROM run_log"))

      -- and back down: FROM:TO is required offline
      code, _, err = h.run({ "downgrade", "a", "--sql" }, { cwd = dir })
      assert.equal(1, code)
      assert.matches("offline downgrade needs a start revision", err)
      code, script, err = h.run({ "downgrade", "m:a", "--sql" }, { cwd = dir })
      assert.equal(0, code, err)
      f = assert(io.open(path, "w"))
      f:write(script)
      f:close()
      rc, out = h.sh(("/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 -1 -f %s -d %s 2>&1")
        :format(h.shell_quote(path), h.shell_quote(offline)))
      assert.equal(0, rc, out)
      ok(dir, "downgrade", "a")
      assert.equal(dump(db), dump(offline))
      assert.equal("a", h.psql(offline, "SELECT string_agg(version_num, ',') FROM luamig_version"))
      h.drop_database(offline)
    end)

    it("stamps offline", function()
      local dir = branched()
      local code, script = h.run({ "stamp", "b2", "--sql" }, { cwd = dir })
      assert.equal(0, code)
      assert.matches([[INSERT INTO "luamig_version" %(version_num%) VALUES %('b2'%);]], script)
    end)
  end)
end)

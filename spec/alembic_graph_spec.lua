-- Graph semantics as Alembic 1.8 has them (alembic/script/revision.py), one
-- spec per class of disagreement a differential run found (issue #15), and
-- the places where luamig differs on purpose (README, "Where luamig differs
-- from Alembic"). scripts/conformance/ checks the same against real Alembic on
-- random graphs. Each revision appends "+id" / "-id" to run_log.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

-- A project from { id, down, extra } triples (down: nil, an id, or a list).
local function project(revs)
  local files = {}
  for _, r in ipairs(revs) do
    local id = r[1]
    files["versions/" .. id .. ".lua"] = h.revision(id, r[2],
      ('op.execute("INSERT INTO run_log (rev) VALUES ($1)", { "+%s" })'):format(id),
      ('op.execute("INSERT INTO run_log (rev) VALUES ($1)", { "-%s" })'):format(id), r[3])
  end
  return h.project(files)
end

describe("graph semantics as Alembic's #cli", function()
  local db, env
  -- an empty database (run_log only), again for each project a spec tries
  local function reset()
    h.psql(db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public; CREATE TABLE run_log (n serial, rev text)")
  end
  h.database_each(function(name)
    db, env = name, { DATABASE_URL = h.url(name) }
    reset()
  end)

  local function ok(dir, ...) return h.run_ok({ ... }, { cwd = dir, env = env }) end
  local function fails(dir, pattern, ...)
    local code, out, err = h.run({ ... }, { cwd = dir, env = env })
    assert.equal(1, code, table.concat({ ... }, " ") .. " should fail: " .. out)
    assert.matches(pattern, err, 1, true)
  end
  local function rows()
    return h.psql(db, "SELECT coalesce(string_agg(version_num, ',' ORDER BY version_num), '') FROM luamig_version")
  end
  -- what ran since the last call
  local seen = 0
  before_each(function() seen = 0 end)
  local function ran()
    local out = h.psql(db, ("SELECT coalesce(string_agg(rev, ',' ORDER BY n), '') FROM run_log WHERE n > %d"):format(seen))
    seen = tonumber(h.psql(db, "SELECT coalesce(max(n), 0) FROM run_log"))
    return out
  end

  -- r -> f1 (feat) -> f2, and x on r depending on f1
  local function dependent()
    return project({ { "r" }, { "f1", "r", { branch_labels = { "feat" } } }, { "f2", "f1" },
                     { "x", "r", { depends_on = { "f1" } } } })
  end

  it("C2: a label's branch follows down_revision, not depends_on", function()
    local dir = dependent()
    ok(dir, "upgrade", "feat@head")                  -- x depends on f1 but is not on feat
    assert.equal("+r,+f1,+f2", ran())
    ok(dir, "upgrade", "x")
    assert.equal("f2,x", rows())
    ran()
    ok(dir, "downgrade", "feat@-1")                  -- from f2, the one row on feat
    assert.equal("-f2", ran())
    assert.equal("x", rows())                        -- x's row stands for f1
  end)

  it("C4: LABEL@+N walks toward the label one revision at a time", function()
    local dir = project({ { "r" }, { "t1", "r" }, { "fx", "t1", { branch_labels = { "feat" } } },
                          { "fy", "fx" }, { "o1", "r" } })
    ok(dir, "upgrade", "feat@+1")                    -- from nothing: the base, not the label
    assert.equal("+r", ran())
    ok(dir, "upgrade", "feat@+1")                    -- t1, not o1: o1 is off feat's lineage
    assert.equal("+t1", ran())
    ok(dir, "upgrade", "feat@+2")
    assert.equal("+fx,+fy", ran())
    fails(dir, "didn't produce 1 migrations", "upgrade", "feat@+1")
    assert.equal("fy", rows())
  end)

  it("C5: current shows what the rows stand for, dependencies included", function()
    -- r -> d, and y on r depending on d: y's row stands for d too
    local dir = project({ { "r" }, { "d", "r" }, { "y", "r", { depends_on = { "d" } } } })
    assert.equal("d (effective head)\ny (head)\n", ok(dir, "heads"))
    assert.matches("^Rev: d %(head%)\n", ok(dir, "show", "d"))   -- a "Rev:" entry: any head
    ok(dir, "upgrade", "y")
    assert.equal("y", rows())
    assert.equal("d (effective head)\ny (head)\n", ok(dir, "current"))
    reset()
    dir = dependent()                                -- f1 is no head: it shows unmarked
    ok(dir, "upgrade", "x")
    assert.equal("f1\nx (head)\n", ok(dir, "current"))
    assert.equal("f2 (feat) (head)\nx (head)\n", ok(dir, "heads"))
    ok(dir, "upgrade", "f2")
    assert.equal("f2 (head)\nx (head)\n", ok(dir, "current"))
  end)

  it("C6: -N and LABEL@-N undo the walked line only", function()
    local dir = project({ { "r" }, { "a1", "r", { branch_labels = { "feat" } } }, { "a2", "a1" },
                          { "b1", "r" } })
    ok(dir, "upgrade", "heads")
    ran()
    ok(dir, "downgrade", "feat@-2")                  -- to r, along a2 -> a1: b1 stays
    assert.equal("-a2,-a1", ran())
    assert.equal("b1", rows())
    -- h depends on t (t's row goes into h's): -2 from h walks h -> s -> r and undoes s and h
    reset()
    seen = 0
    local dep = project({ { "r" }, { "s", "r" }, { "h", "s", { depends_on = { "t" } } }, { "t", "r" } })
    ok(dep, "upgrade", "h")
    assert.equal("h", rows())
    ran()
    ok(dep, "downgrade", "-2")
    assert.equal("-h,-s", ran())
    assert.equal("t", rows())
  end)

  it("C8: downgrade REV undoes what builds on REV's children, not its dependents", function()
    local dir = project({ { "r" }, { "d", "r" }, { "d2", "d" }, { "x", "r", { depends_on = { "d" } } } })
    ok(dir, "upgrade", "heads")
    assert.equal("d2,x", rows())
    ran()
    ok(dir, "downgrade", "d")                        -- x only depends on d, which stays
    assert.equal("-d2", ran())
    assert.equal("x", rows())                        -- x's row stands for d
    fails(dir, "not a valid downgrade target", "downgrade", "d")   -- nothing applied on d's children
    assert.equal("", ran())
  end)

  -- r -> a1 (fa) -> a2 and r -> b1 (fb) -> b2
  local function two_branches()
    return project({ { "r" }, { "a1", "r", { branch_labels = { "fa" } } }, { "a2", "a1" },
                     { "b1", "r", { branch_labels = { "fb" } } }, { "b2", "b1" } })
  end

  it("downgrade LABEL@REV narrows to the label's line, and refuses as Alembic does", function()
    local dir = two_branches()
    ok(dir, "upgrade", "heads")
    ran()
    ok(dir, "downgrade", "fa@r")                     -- r's children narrowed to a1's line
    assert.equal("-a2,-a1", ran())
    assert.equal("b2", rows())
    fails(dir, "not a valid downgrade target", "downgrade", "fa@r")  -- nothing on fa, r not a row
    fails(dir, "not a valid downgrade target", "downgrade", "fa@a1") -- a1 is not applied
    assert.equal("", ran())
    assert.equal("b2", rows())
  end)

  it("downgrade LABEL@base with nothing applied on the branch does nothing", function()
    -- r -> p -> a1 (fa) and r -> b1: neither a1 nor its parent p is applied
    local dir = project({ { "r" }, { "p", "r" }, { "a1", "p", { branch_labels = { "fa" } } },
                          { "b1", "r" } })
    ok(dir, "upgrade", "b1")
    ran()
    ok(dir, "downgrade", "fa@base")                  -- (Alembic: everything, r being the only base)
    assert.equal("", ran())
    assert.equal("b1", rows())
  end)

  it("'Multiple heads' for LABEL@head names that label's heads only", function()
    local dir = project({ { "r" }, { "f1", "r", { branch_labels = { "feat" } } }, { "f2", "f1" },
                          { "f3", "f1" }, { "o1", "r" } })
    local code, _, err = h.run({ "upgrade", "feat@head" }, { cwd = dir, env = env })
    assert.equal(1, code)
    assert.matches("Multiple head revisions are present for given argument 'feat@head'", err, 1, true)
    assert.matches("(heads: f2, f3;", err, 1, true)
    assert.equal("f2 (feat) (head)\nf3 (feat) (head)\no1 (head)\n", ok(dir, "heads"))
  end)

  it("marks branch points and merge points in current", function()
    local dir = project({ { "r" }, { "a", "r" }, { "b", "r" }, { "m", { "a", "b" } } })
    ok(dir, "upgrade", "r")
    assert.equal("r (branchpoint)\n", ok(dir, "current"))
    ok(dir, "upgrade", "m")
    assert.equal("m (head) (mergepoint)\n", ok(dir, "current"))
  end)

  describe("where luamig differs from Alembic", function()
    it("refuses downgrade -N from several version rows", function()
      local dir = two_branches()
      ok(dir, "upgrade", "heads")
      ran()
      fails(dir, "Ambiguous downgrade from multiple current revisions", "downgrade", "-1")
      assert.equal("", ran())
      ok(dir, "downgrade", "fb@-1")
      assert.equal("-b2", ran())
    end)

    it("downgrades only the labelled branch for LABEL@base on a non-base label", function()
      local dir = two_branches()
      ok(dir, "upgrade", "heads")
      ran()
      ok(dir, "downgrade", "fa@base")                -- Alembic would undo everything down to r
      assert.equal("-a2,-a1", ran())
      assert.equal("b2", rows())
    end)

    it("undoes exactly the merge when -N lands on its parents", function()
      local dir = project({ { "r" }, { "a", "r" }, { "b", "r" }, { "m", { "a", "b" } }, { "n", "m" } })
      ok(dir, "upgrade", "n")
      ran()
      ok(dir, "downgrade", "-2")                     -- Alembic: "Ambiguous walk"
      assert.equal("-n,-m", ran())
      assert.equal("a,b", rows())
      ok(dir, "upgrade", "n")
      fails(dir, "Ambiguous walk", "downgrade", "-3") -- a step past the merge is still ambiguous
    end)

    it("keeps the version rows the heads of what is applied", function()
      -- p -> q, and y on p depending on q: undoing y leaves q's row alone
      -- (Alembic writes p and q, one below the other)
      local dir = project({ { "p" }, { "q", "p" }, { "y", "p", { depends_on = { "q" } } } })
      ok(dir, "upgrade", "y")
      assert.equal("y", rows())
      ok(dir, "downgrade", "-1")
      assert.equal("q", rows())
      -- a merge one of whose parents a dependency absorbed (Alembic fails with a KeyError)
      local merge = project({ { "a" }, { "b" }, { "c", nil, { depends_on = { "a" } } },
                              { "m", { "a", "b", "c" } } })
      local mdb = h.new_database()
      local menv = { DATABASE_URL = h.url(mdb) }
      h.psql(mdb, "CREATE TABLE run_log (n serial, rev text)")
      h.run_ok({ "upgrade", "c" }, { cwd = merge, env = menv })
      h.run_ok({ "upgrade", "m" }, { cwd = merge, env = menv })
      assert.equal("m", h.psql(mdb, "SELECT string_agg(version_num, ',') FROM luamig_version"))
      h.drop_database(mdb)
    end)
  end)
end)

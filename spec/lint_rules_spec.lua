-- The lint rules of issue #16: what squawk catches and luamig missed, what both
-- missed, the false alarms removed, downgrades that follow renames, the style
-- rules of lint --style, and the range a lint takes.
local h = require "helpers"
local L = require "lint_helpers"
local project, run_lint, findings, unallowed = L.project, L.run_lint, L.findings, L.unallowed

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

-- The rules of the findings of one op.execute(sql) in r1 (transactional unless extra says).
local function rules_of_sql(sql, extra)
  local _, all = findings({ { ("op.execute(%q)"):format(sql), 'op.execute("SELECT 1")', extra } })
  local rules = {}
  for _, f in ipairs(all) do
    if not f.allowed and not f.rule:match("^downgrade") then rules[#rules + 1] = f.rule end
  end
  table.sort(rules)
  return rules, all
end

describe("lint range", function()
  local revs = {
    { 'op.add_column("t", { "a", "integer", nullable = false })', 'op.drop_column("t", "a")' },
    { 'op.add_column("t", { "b", "integer", nullable = false })', 'op.drop_column("t", "b")' },
  }

  it("A:B starts after A, as upgrade --sql A:B does", function()
    local dir = project(revs)
    local function revisions(range)
      local seen = {}
      for _, f in ipairs(run_lint(dir, range)) do seen[#seen + 1] = f.revision end
      return table.concat(seen, " ")
    end
    assert.equal("r2", revisions("r1:r2"))
    assert.equal("r2", revisions("r1:head"))
    assert.equal("r1 r2", revisions("r0:head"))
    assert.equal("r1", revisions("r0:r1"))
    assert.equal("r1", revisions("r1"))                 -- one revision: that one
    assert.equal("", revisions("r2:head"))
  end)

  it("#cli base:head and :head lint every revision", function()
    -- a rule that fires whether the table is new or not
    local concurrent = { 'op.create_index("ix", "t", { "n" }, { concurrently = true })', 'op.drop_index("ix")' }
    local dir = project({ concurrent, concurrent })
    for _, range in ipairs { "base:head", ":head" } do
      local code, out = h.run({ "lint", range }, { cwd = dir })
      assert.equal(2, code, out)
      assert.matches("r1%.lua:%d+: concurrently%-in%-transaction", out)
      assert.matches("r2%.lua:%d+: concurrently%-in%-transaction", out)
    end
    local code, out = h.run({ "lint", "r1:r2" }, { cwd = dir })
    assert.equal(2, code)
    assert.not_matches("r1%.lua", out)
  end)
end)

describe("lint: constraints the server names", function()
  it("fires as for a named one, naming the constraint as PostgreSQL will", function()
    local of = findings({ { 'op.create_foreign_key(nil, "t", "parent", { "c" }, { "id" })',
                            'op.drop_constraint("t_c_fkey", "t")' } }, "constraint-not-valid")
    assert.equal(1, #of)
    assert.equal('adds foreign key "t_c_fkey" (named by PostgreSQL) to existing table "t" without NOT VALID',
      of[1].message)
  end)

  it("a downgrade that drops it by that name undoes it; one that does not is named", function()
    local up = 'op.safe("index-not-concurrent", "t is small")\n'
      .. '  op.create_unique_constraint(nil, "t", { "n", "c" })\n'
      .. '  op.create_check_constraint(nil, "t", "n > c", { not_valid = true })\n'
      .. '  op.create_check_constraint(nil, "t", "n > 0", { not_valid = true })'
    local _, all = findings({ { up, 'op.drop_constraint("t_n_check", "t")\n  op.drop_constraint("t_check", "t")\n'
      .. '  op.drop_constraint("t_n_c_key", "t")' } })
    assert.same({}, L.unallowed(all))
    local of = findings({ { up, 'op.drop_constraint("t_n_check", "t")' } }, "downgrade-not-inverse")
    local msgs = {}
    for i, f in ipairs(of) do msgs[i] = f.message end
    assert.same({
      'upgrade() adds constraint "t_n_c_key" (named by PostgreSQL), which downgrade() does not undo',
      'upgrade() adds constraint "t_check" (named by PostgreSQL), which downgrade() does not undo',
    }, msgs)
  end)

  it("the set-not-null recipe works with an unnamed check validated by its name", function()
    local _, all = findings({
      { 'op.create_check_constraint(nil, "t", "c IS NOT NULL", { not_valid = true })',
        'op.drop_constraint("t_c_check", "t")' },
      { 'op.validate_constraint("t_c_check", "t")', "" },
      { 'op.alter_column("t", "c", { nullable = false })', 'op.alter_column("t", "c", { nullable = true })' },
    })
    assert.same({}, unallowed(all))
    local of = findings({ { 'op.create_check_constraint(nil, "t", "c IS NOT NULL", { not_valid = true })\n'
      .. '  op.validate_constraint("t_c_check", "t")', 'op.drop_constraint("t_c_check", "t")' } },
      "constraint-not-valid")
    assert.equal(1, #of)
  end)
end)

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

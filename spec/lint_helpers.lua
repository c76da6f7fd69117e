-- spec/lint_helpers.lua: the project every lint spec starts from, and the
-- findings of a range of it (spec/lint_spec.lua, spec/lint_rules_spec.lua).
local h = require "helpers"
local core = require "luamig.core"

local L = {}

-- r0 builds the schema every case starts from (applied before the range, so its
-- tables are existing ones): t with 800 rows, parent, and slow_ok(), an
-- immutable check that takes ~2 ms a row, so a scan of t under a lock is long.
L.SETUP = [==[op.execute([[
    CREATE FUNCTION slow_ok(int) RETURNS boolean IMMUTABLE LANGUAGE plpgsql
      AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN true; END $$]])
  op.execute([[CREATE TABLE parent (id bigint PRIMARY KEY)]])
  op.execute([[INSERT INTO parent SELECT generate_series(0, 1000)]])
  op.execute([[CREATE TABLE t (id bigserial PRIMARY KEY, n integer NOT NULL DEFAULT 0,
    c integer DEFAULT 0, name varchar(20) DEFAULT 'x', legacy text)]])
  op.execute([[INSERT INTO t (n, c, legacy) SELECT g, g, 'old' FROM generate_series(1, 800) g]])]==]
L.SETUP_DOWN = 'op.execute("DROP TABLE t; DROP TABLE parent; DROP FUNCTION slow_ok(int)")'

-- A project: r0, then revs (each { up, down [, extra] }) as r1, r2, ... in a chain.
function L.project(revs, config)
  local files = { ["versions/r0.lua"] = h.revision("r0", nil, L.SETUP, L.SETUP_DOWN) }
  for i, r in ipairs(revs) do
    files[("versions/r%d.lua"):format(i)] = h.revision("r" .. i, "r" .. (i - 1), r[1], r[2], r[3])
  end
  return h.project(files, config)
end

-- The findings of a range of the project in dir (default: every revision after r0).
function L.run_lint(dir, range, opts)
  local o = { config = dir .. "/luamig.lua", range = range or "r0:head" }
  for k, v in pairs(opts or {}) do o[k] = v end
  return core.lint(o)
end

-- The findings of revs (after r0) for rule, and all of them.
function L.findings(revs, rule, range, opts)
  local all = L.run_lint(L.project(revs), range, opts)
  local of = {}
  for _, f in ipairs(all) do if f.rule == rule then of[#of + 1] = f end end
  return of, all
end

-- The findings not allowed, one line each ("file:line rule: message").
function L.unallowed(all)
  local list = {}
  for _, f in ipairs(all) do
    if not f.allowed then list[#list + 1] = ("%s:%s %s: %s"):format(f.file, f.line, f.rule, f.message) end
  end
  return list
end

return L

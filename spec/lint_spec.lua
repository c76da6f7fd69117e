-- The migration safety lint: every rule fires on a revision that breaks it,
-- stays quiet on the recipe and is silenced by an allow comment or op.safe;
-- then each recipe runs on the real server while another connection keeps
-- reading and writing the table, none of whose statements may wait longer
-- than the lock_timeout.
local h = require "helpers"
local core = require "luamig.core"
local lint = require "luamig.lint"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local L = require "lint_helpers"
local project, run_lint, findings, unallowed = L.project, L.run_lint, L.findings, L.unallowed
local SETUP, SETUP_DOWN = L.SETUP, L.SETUP_DOWN

-- Each rule: a revision that triggers it (its first statement is the culprit) and
-- the recipe, revisions that reach the same end without a finding. check: SQL
-- that returns "t" once the recipe has run; downgrade: also undo it under load.
local RULES = {
  {
    rule = "add-column-not-null",
    trigger = { 'op.add_column("t", { "score", "integer", nullable = false })', 'op.drop_column("t", "score")' },
    recipe = {
      { 'op.add_column("t", { "score", "integer", nullable = false, default = "0" })',
        'op.drop_column("t", "score")' },
    },
    check = "SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'score'",
  },
  {
    rule = "add-column-volatile-default",
    trigger = { 'op.add_column("t", { "token", "uuid", default = "gen_random_uuid()" })',
                'op.drop_column("t", "token")' },
    recipe = {
      { 'op.add_column("t", { "token", "uuid" })\n'
        .. '  op.alter_column("t", "token", { server_default = "gen_random_uuid()" })',
        'op.drop_column("t", "token")' },
      { [[repeat until op.execute("UPDATE t SET token = gen_random_uuid() WHERE id IN "
        .. "(SELECT id FROM t WHERE token IS NULL LIMIT 200)") == 0]], "", { transactional = false } },
    },
    check = "SELECT count(*) = 0 FROM t WHERE token IS NULL",
  },
  {
    rule = "alter-type-rewrite",
    trigger = { 'op.alter_column("t", "n", { type = "bigint" })', 'op.alter_column("t", "n", { type = "integer" })' },
    recipe = {
      { [==[op.add_column("t", { "n_big", "bigint" })
  op.execute([[CREATE FUNCTION t_n_big() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN NEW.n_big := NEW.n; RETURN NEW; END $$]])
  op.execute("CREATE TRIGGER t_n_big BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION t_n_big()")]==],
        [[op.execute("DROP TRIGGER t_n_big ON t; DROP FUNCTION t_n_big()")
  op.drop_column("t", "n_big")]] },
      { [[repeat until op.execute("UPDATE t SET n_big = n WHERE id IN "
        .. "(SELECT id FROM t WHERE n_big IS NULL LIMIT 200)") == 0]], "", { transactional = false } },
      { [[op.execute("DROP TRIGGER t_n_big ON t; DROP FUNCTION t_n_big()")
  -- luamig: allow rename-or-drop because the release running now reads n, which stays
  op.drop_column("t", "n")
  -- luamig: allow rename-or-drop because n_big takes the name n in the same transaction
  op.alter_column("t", "n_big", { new_name = "n" })
  op.alter_column("t", "n", { server_default = "0" })]],
        [[op.alter_column("t", "n", { new_name = "n_big" })
  op.add_column("t", { "n", "integer", nullable = false, default = "0" })]] },
    },
    check = "SELECT format_type(atttypid, atttypmod) = 'bigint' FROM pg_attribute "
      .. "WHERE attrelid = 't'::regclass AND attname = 'n'",
  },
  {
    rule = "set-not-null",
    trigger = { 'op.alter_column("t", "c", { nullable = false })', 'op.alter_column("t", "c", { nullable = true })' },
    recipe = {
      { 'op.create_check_constraint("t_c_not_null", "t", "c IS NOT NULL", { not_valid = true })',
        'op.drop_constraint("t_c_not_null", "t")' },
      { 'op.validate_constraint("t_c_not_null", "t")', "" },
      { 'op.alter_column("t", "c", { nullable = false })\n  op.drop_constraint("t_c_not_null", "t")',
        'op.execute("ALTER TABLE t ADD CONSTRAINT t_c_not_null CHECK (c IS NOT NULL) NOT VALID")\n'
        .. '  op.alter_column("t", "c", { nullable = true })' },
    },
    check = "SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'c'",
  },
  {
    rule = "index-not-concurrent",
    trigger = { 'op.create_index("t_n_slow", "t", { "slow_ok(n)" })', 'op.drop_index("t_n_slow")' },
    recipe = {
      -- a build of ~2 s (the 800 first rows at ~2 ms each) while the writes go on
      { 'op.create_index("t_n_slow", "t", { "slow_ok(n)" }, { concurrently = true, where = "id <= 800" })',
        'op.drop_index("t_n_slow", { concurrently = true })', { transactional = false } },
    },
    check = "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_n_slow'::regclass",
    downgrade = true,
  },
  {
    rule = "concurrently-in-transaction",
    trigger = { 'op.create_index("t_name", "t", { "name" }, { concurrently = true })',
                'op.drop_index("t_name", { concurrently = true })' },
    recipe = {
      { 'op.create_index("t_name", "t", { "name" }, { concurrently = true })',
        'op.drop_index("t_name", { concurrently = true })', { transactional = false } },
    },
    check = "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_name'::regclass",
  },
  {
    rule = "constraint-not-valid",
    trigger = { 'op.create_check_constraint("t_n_ok", "t", "slow_ok(n)")', 'op.drop_constraint("t_n_ok", "t")' },
    recipe = {
      { 'op.create_check_constraint("t_n_ok", "t", "slow_ok(n)", { not_valid = true })\n'
        .. '  op.create_foreign_key("t_parent_fk", "t", "parent", { "c" }, { "id" }, { not_valid = true })\n'
        .. '  op.execute("ALTER TABLE t ADD CONSTRAINT t_parent_fk2 FOREIGN KEY (c) REFERENCES parent (id) NOT VALID")',
        'op.drop_constraint("t_parent_fk2", "t")\n  op.drop_constraint("t_parent_fk", "t")\n'
        .. '  op.drop_constraint("t_n_ok", "t")' },
      { 'op.validate_constraint("t_n_ok", "t")\n  op.validate_constraint("t_parent_fk", "t")\n'
        .. '  op.execute("ALTER TABLE t VALIDATE CONSTRAINT t_parent_fk2")', "" },
    },
    check = "SELECT bool_and(convalidated) AND count(*) = 3 FROM pg_constraint "
      .. "WHERE conname IN ('t_n_ok', 't_parent_fk', 't_parent_fk2')",
  },
  {
    rule = "rename-or-drop",
    trigger = { 'op.alter_column("t", "name", { new_name = "title" })',
                'op.alter_column("t", "title", { new_name = "name" })' },
    recipe = {   -- expand, deploy (the release that uses title), contract
      { 'op.add_column("t", { "title", "varchar(20)" })', 'op.drop_column("t", "title")' },
      { [[repeat until op.execute("UPDATE t SET title = name WHERE id IN "
        .. "(SELECT id FROM t WHERE title IS NULL LIMIT 200)") == 0]], "", { transactional = false } },
      { 'op.safe("rename-or-drop", "release 3 reads and writes only title")\n'
        .. '  op.drop_column("t", "name")',
        'op.add_column("t", { "name", "varchar(20)" })' },
    },
    check = "SELECT count(*) = 0 FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'name'",
  },
  {
    rule = "execute-lock",
    trigger = { 'op.execute("VACUUM FULL t")', "", { transactional = false } },
    recipe = {
      { 'op.execute("VACUUM (ANALYZE) t")', "", { transactional = false } },
    },
    check = "SELECT reltuples >= 800 FROM pg_class WHERE relname = 't'",
  },
  {
    rule = "truncate",
    trigger = { 'op.execute("TRUNCATE t")', "" },
    recipe = {   -- the rows meant, in batches, each its own transaction
      { [[repeat until op.execute("DELETE FROM t WHERE id IN "
        .. "(SELECT id FROM t WHERE id <= 800 LIMIT 200)") == 0]], "", { transactional = false } },
    },
    check = "SELECT count(*) = 0 FROM t WHERE id <= 800",
  },
  {
    rule = "transaction-control",
    trigger = { 'op.execute("COMMIT")', "" },
    recipe = {
      { 'op.execute("BEGIN")\n  op.execute("UPDATE t SET c = 0 WHERE id < 100")\n  op.execute("COMMIT")',
        "", { transactional = false } },
    },
    check = "SELECT count(*) = 0 FROM t WHERE id < 100 AND c <> 0",
  },
  {
    rule = "unbatched-backfill",
    trigger = { 'op.execute("UPDATE t SET c = 0")', "" },
    recipe = {
      { 'op.backfill("t", { set = "c = 0", where = "c <> 0", batch = 200 })', "",
        { transactional = false } },
    },
    check = "SELECT count(*) = 0 FROM t WHERE c <> 0",
  },
  {
    rule = "table-rewrite",
    trigger = { 'op.add_column("t", { "g", "integer GENERATED ALWAYS AS (n * 2) STORED" })',
                'op.drop_column("t", "g")' },
    recipe = {   -- a plain column a trigger keeps, backfilled in batches
      { [==[op.add_column("t", { "g", "integer" })
  op.execute([[CREATE FUNCTION t_g() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN NEW.g := NEW.n * 2; RETURN NEW; END $$]])
  op.execute("CREATE TRIGGER t_g BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION t_g()")]==],
        [[op.execute("DROP TRIGGER t_g ON t; DROP FUNCTION t_g()")
  op.drop_column("t", "g")]] },
      { [[repeat until op.execute("UPDATE t SET g = n * 2 WHERE id IN "
        .. "(SELECT id FROM t WHERE g IS NULL LIMIT 200)") == 0]], "", { transactional = false } },
    },
    check = "SELECT count(*) = 0 FROM t WHERE g IS DISTINCT FROM n * 2",
  },
  {
    rule = "downgrade-missing",
    trigger = { 'op.add_column("t", { "note", "text" })', "" },
    recipe = {
      { 'op.add_column("t", { "note", "text" })', 'op.drop_column("t", "note")' },
    },
    check = "SELECT count(*) = 1 FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'note'",
    downgrade = true,
  },
  {
    rule = "downgrade-not-inverse",
    trigger = { 'op.add_column("t", { "note", "text" })', 'op.drop_column("t", "legacy")' },
    recipe = {
      { 'op.create_table("audit", { { "id", "bigserial", primary_key = true } })\n'
        .. '  op.add_column("t", { "note", "text" })',
        'op.drop_column("t", "note")\n  op.drop_table("audit")' },
    },
    check = "SELECT to_regclass('audit') IS NOT NULL",
    downgrade = true,
  },
}

local RULE = {}
for _, case in ipairs(RULES) do RULE[case.rule] = case end

describe("lint", function()
  for _, case in ipairs(RULES) do
    describe(case.rule, function()
      it("fires on a revision that breaks it, with the lock, the effect and the recipe", function()
        local of = findings({ case.trigger }, case.rule)
        assert.is_true(#of >= 1, "no " .. case.rule .. " finding")
        local f = of[1]
        assert.equal("r1", f.revision)
        assert.matches("versions/r1%.lua$", f.file)
        assert.is_number(f.line)
        assert.is_false(f.allowed)
        for _, k in ipairs { "message", "lock", "effect", "recipe" } do
          assert.is_string(f[k])
          assert.is_true(#f[k] > 0)
        end
      end)

      it("stays quiet on the recipe", function()
        local _, all = findings(case.recipe, case.rule)
        assert.same({}, unallowed(all))
      end)

      it("is silenced by an allow comment with a reason, shown by --verbose", function()
        local up = "-- luamig: allow " .. case.rule .. " because the table is tiny here\n  " .. case.trigger[1]
        local of, all = findings({ { up, case.trigger[2], case.trigger[3] } }, case.rule)
        if case.rule == "downgrade-missing" then return end   -- its line is downgrade()'s: below
        assert.is_true(#of >= 1)
        assert.is_true(of[1].allowed)
        assert.equal("comment", of[1].via)
        assert.equal("the table is tiny here", of[1].reason)
        assert.matches("allowed %(comment%): the table is tiny here", lint.format(all, { verbose = true }))
        assert.not_matches("tiny", lint.format(all))
      end)

      it("is silenced for one call by op.safe", function()
        local up = ('op.safe(%q, "checked by the DBA")\n  '):format(case.rule) .. case.trigger[1]
        local down = case.trigger[2]
        if case.rule == "downgrade-missing" then down = ('op.safe(%q, "irreversible on purpose")'):format(case.rule) end
        local of = findings({ { up, down, case.trigger[3] } }, case.rule)
        assert.is_true(#of >= 1)
        assert.is_true(of[1].allowed)
        assert.equal("op.safe", of[1].via)
      end)
    end)
  end

  it("tables created earlier in the run count as new; before it, as existing", function()
    local revs = {
      { 'op.create_table("u", { { "id", "bigserial", primary_key = true }, { "n", "integer" } })',
        'op.drop_table("u")' },
      { [[op.add_column("u", { "x", "integer", nullable = false })
  op.create_index("u_n", "u", { "n" })
  op.alter_column("u", "n", { type = "bigint", nullable = false })
  op.execute("ALTER TABLE u ADD CONSTRAINT u_n_pos CHECK (n > 0)")
  op.rename_table("u", "u2")]],
        [[op.rename_table("u2", "u")
  op.execute("ALTER TABLE u DROP CONSTRAINT u_n_pos")
  op.alter_column("u", "n", { type = "integer", nullable = true })
  op.drop_index("u_n")
  op.drop_column("u", "x")]] },
    }
    local dir = project(revs)
    assert.same({}, unallowed(run_lint(dir, "r0:head")))
    local rules = {}
    for _, f in ipairs(run_lint(dir, "r2")) do rules[f.rule] = (rules[f.rule] or 0) + 1 end
    assert.same({ ["add-column-not-null"] = 1, ["index-not-concurrent"] = 1, ["alter-type-rewrite"] = 1,
                  ["set-not-null"] = 1, ["constraint-not-valid"] = 1, ["rename-or-drop"] = 1 }, rules)
  end)

  it("reads the statements of op.execute", function()
    local cases = {
      { "ALTER TABLE t ADD COLUMN x int NOT NULL", "add-column-not-null" },
      { "alter table t add x timestamptz default clock_timestamp()", "add-column-volatile-default" },
      { "ALTER TABLE t ADD COLUMN id2 bigserial", "add-column-volatile-default" },
      { "ALTER TABLE public.t ALTER COLUMN n SET DATA TYPE bigint", "alter-type-rewrite" },
      { "ALTER TABLE t ALTER COLUMN name TYPE varchar(10)", "alter-type-rewrite" },
      { "ALTER TABLE t ALTER c SET NOT NULL", "set-not-null" },
      { "CREATE UNIQUE INDEX t_n ON t (n)", "index-not-concurrent" },
      { "ALTER TABLE t ADD CONSTRAINT t_u UNIQUE (n)", "index-not-concurrent" },
      { "REINDEX TABLE t", "index-not-concurrent" },
      { "ALTER TABLE t ADD FOREIGN KEY (c) REFERENCES parent (id)", "constraint-not-valid" },
      { "ALTER TABLE t ADD CONSTRAINT k CHECK (n > 0) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT k",
        "constraint-not-valid" },
      { 'ALTER TABLE "t" RENAME COLUMN legacy TO old', "rename-or-drop" },
      { "ALTER TABLE t RENAME TO t2", "rename-or-drop" },
      { "DROP TABLE parent", "rename-or-drop" },
      { "LOCK TABLE t", "execute-lock" },
      { "LOCK t IN SHARE MODE", "execute-lock" },
      { "CLUSTER t USING t_pkey", "execute-lock" },
      { "/* ; */ VACUUM (FULL, ANALYZE) t", "execute-lock" },
      { "CREATE INDEX CONCURRENTLY t_n ON t (n)", "concurrently-in-transaction" },
    }
    for _, c in ipairs(cases) do
      local of = findings({ { ("op.execute(%q)"):format(c[1]), "" } }, c[2])
      assert.is_true(#of >= 1, c[1] .. ": no " .. c[2])
    end
    local quiet = {
      "ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT 0",
      "ALTER TABLE t ADD COLUMN x timestamptz DEFAULT now()",
      "ALTER TABLE t ALTER COLUMN name TYPE varchar(40)",
      "ALTER TABLE t ALTER COLUMN name TYPE text",
      "ALTER TABLE t ALTER COLUMN c SET DEFAULT random()",
      "ALTER TABLE t ADD CONSTRAINT k CHECK (n > 0) NOT VALID",
      "LOCK TABLE t IN ROW EXCLUSIVE MODE",
      "SELECT 'ALTER TABLE t ALTER COLUMN n TYPE bigint; LOCK TABLE t'",
      "UPDATE t SET c = 1 WHERE id < 10",
    }
    for _, sql in ipairs(quiet) do
      local _, all = findings({ { ("op.execute(%q)"):format(sql), 'op.execute("SELECT 1")' } })
      for _, f in ipairs(all) do
        assert.is_true(f.rule:match("^downgrade") ~= nil or f.allowed, sql .. ": " .. f.rule)
      end
    end
  end)

  it("schemas, extensions, enums and comments are undone by their drops", function()
    local up = 'op.create_schema("s")\n  op.create_extension("pgcrypto")\n  op.create_enum("mood", { "a" })\n'
      .. '  op.add_enum_value("mood", "b")\n  op.create_table_comment("t", "the table")'
    local _, all = findings({ { up, 'op.drop_table_comment("t")\n  op.drop_enum("mood")\n'
      .. '  op.drop_extension("pgcrypto")\n  op.drop_schema("s")' } })
    assert.same({}, unallowed(all))
    local of = findings({ { up, 'op.drop_table_comment("t")\n  op.drop_enum("mood")' } }, "downgrade-not-inverse")
    assert.equal(2, #of)
    assert.equal('upgrade() creates schema "s", which downgrade() does not undo', of[1].message)
    assert.equal('upgrade() creates extension "pgcrypto", which downgrade() does not undo', of[2].message)
    local _, only_value = findings({ { 'op.add_enum_value("mood", "c")', "" } })
    assert.same({}, unallowed(only_value))
  end)

  it("takes not_valid = true on create_foreign_key and create_check_constraint", function()
    local _, all = findings({
      { 'op.create_foreign_key("t_fk", "t", "parent", { "c" }, { "id" }, { not_valid = true })\n'
        .. '  op.create_check_constraint("t_ck", "t", "n > 0", { not_valid = true })',
        'op.drop_constraint("t_ck", "t")\n  op.drop_constraint("t_fk", "t")' },
      { 'op.validate_constraint("t_fk", "t")', "" },
    })
    assert.same({}, unallowed(all))
  end)

  it("a reason is required: an allow comment without one does not count", function()
    local up = "-- luamig: allow index-not-concurrent\n  op.create_index(\"t_n\", \"t\", { \"n\" })"
    local of = findings({ { up, 'op.drop_index("t_n")' } }, "index-not-concurrent")
    assert.is_false(of[1].allowed)
    assert.matches("has no reason", of[1].note)
    local lints = findings({ { 'op.safe("index-not-concurrent")\n  op.create_index("t_n", "t", { "n" })',
                              'op.drop_index("t_n")' } }, "lint")
    assert.matches("op.safe: expects a rule id and a reason", lints[1].message)
    lints = findings({ { 'op.safe("no-such-rule", "typo")\n  op.create_index("t_n", "t", { "n" })',
                         'op.drop_index("t_n")' } }, "lint")
    assert.matches('op.safe names no rule "no%-such%-rule"', lints[1].message)
  end)

  it("a call no op answers fails the lint as it would fail the run", function()
    local lints = findings({ { 'op.add_colum("t", { "x", "int" })', 'op.drop_column("t", "x")' } }, "lint")
    assert.equal(1, #lints)
    assert.matches("upgrade%(%) raised during the lint: .*add_colum", lints[1].message)
    assert.equal(6, lints[1].line)
  end)

  it("downgrade-missing: an allow comment goes above function downgrade()", function()
    local dir = h.project({
      ["versions/r0.lua"] = h.revision("r0", nil, SETUP, SETUP_DOWN),
      ["versions/r1.lua"] = table.concat({
        'revision = "r1"', 'down_revision = "r0"',
        'function upgrade()', '  op.add_column("t", { "note", "text" })', 'end',
        '-- luamig: allow downgrade-missing because the note column holds data we never drop',
        'function downgrade()', 'end', '' }, "\n"),
    })
    local all = run_lint(dir)
    assert.equal(1, #all)
    assert.equal("downgrade-missing", all[1].rule)
    assert.equal(7, all[1].line)
    assert.is_true(all[1].allowed)
  end)

  it("downgrade-not-inverse: names what is not undone and drops of data upgrade never made", function()
    local of = findings({ { 'op.add_column("t", { "note", "text" })\n  op.create_index("t_n", "t", { "n" }, { concurrently = true })',
                            'op.drop_column("t", "legacy")' } }, "downgrade-not-inverse")
    local msgs = {}
    for _, f in ipairs(of) do msgs[#msgs + 1] = f.message end
    table.sort(msgs)
    assert.same({
      'downgrade() drops column "t"."legacy", which upgrade() did not create: a downgrade would destroy data',
      'upgrade() adds column "t"."note", which downgrade() does not undo',
      'upgrade() creates index "t_n", which downgrade() does not undo',
    }, msgs)
  end)

  it("lints the pending revisions by default, reading the version table", function()
    local db = h.new_database()
    local dir = project({ { 'op.add_column("t", { "x", "integer", nullable = false })', 'op.drop_column("t", "x")' } },
      ('return { versions = "versions", url = %q }'):format(h.url(db)))
    local code, _, err = h.run({ "upgrade", "r0" }, { cwd = dir })
    assert.equal(0, code, err)
    local all = core.lint { config = dir .. "/luamig.lua" }
    assert.equal(1, #all)
    assert.equal("add-column-not-null", all[1].rule)
    h.drop_database(db)
  end)
end)

-- ---- the recipes on the real server, under load ----

local LOCK_TIMEOUT = 1.0
local CONFIG = 'return { versions = "versions", lock_timeout = "1s" }'

-- The load client on db's table t (h.start_load).
local function start_load(db) return h.start_load(db, "t") end

-- Applies revs (after r0) with luamig upgrade while the load runs; returns the load's
-- figures. opts: prepare (SQL run after r0), check (SQL that must return "t" after the
-- upgrade), downgrade (then take the revisions back, still under load).
local function under_load(db, revs, opts)
  local check, downgrade = opts.check, opts.downgrade
  local dir = project(revs, CONFIG)
  local env = { DATABASE_URL = h.url(db) }
  local code, _, err = h.run({ "upgrade", "r0" }, { cwd = dir, env = env })
  assert.equal(0, code, err)
  if opts.prepare then h.psql(db, opts.prepare) end
  local stop = start_load(db)
  local out
  code, out, err = h.run({ "upgrade" }, { cwd = dir, env = env })
  local done = code == 0 and (not check or h.psql(db, check))
  local down_code, down_err = 0, ""
  if downgrade and code == 0 then
    down_code, _, down_err = h.run({ "downgrade", "r0" }, { cwd = dir, env = env })
  end
  local load = stop()
  assert.equal(0, code, out .. err)
  if check then assert.equal("t", done, check) end
  assert.equal(0, down_code, down_err)
  return load
end

describe("lint recipes under load #load", function()
  local db
  before_each(function() db = h.new_database() end)
  after_each(function() h.drop_database(db) end)

  it("the harness sees a blocked application: CHECK without NOT VALID on a slow check", function()
    -- 1300 rows at >= 1 ms each: the scan holds the lock over a second on any machine
    local load = under_load(db, { RULE["constraint-not-valid"].trigger },
      { prepare = "INSERT INTO t (n) SELECT g FROM generate_series(1, 500) g" })
    assert.is_true(load.longest > LOCK_TIMEOUT,
      ("the application waited at most %.3f s"):format(load.longest))
  end)

  for _, case in ipairs(RULES) do
    it(case.rule .. ": the recipe never blocks the application longer than lock_timeout", function()
      local dir = project(case.recipe)
      assert.same({}, unallowed(run_lint(dir)))
      local load = under_load(db, case.recipe, case)
      assert.equal(0, load.errors, load.first)
      assert.is_true(load.count > 20, ("only %d statements ran"):format(load.count))
      assert.is_true(load.longest < LOCK_TIMEOUT,
        ("a statement of the application waited %.3f s (lock_timeout %.1f s)"):format(load.longest, LOCK_TIMEOUT))
    end)
  end
end)

-- ---- the command line ----

describe("lint #cli", function()
  local BAD = { 'op.add_column("t", { "x", "integer", nullable = false })', 'op.drop_column("t", "x")' }
  local OK = { '-- luamig: allow index-not-concurrent because t is small\n  op.create_index("t_n", "t", { "n" })',
               'op.drop_index("t_n")' }

  it("exits 0 when clean, 2 on findings, each with file:line, rule, lock, effect and recipe", function()
    local dir = project({ OK })
    local code, out, err = h.run({ "lint", "r0:head" }, { cwd = dir })
    assert.equal(0, code, err)
    assert.matches("0 findings, 1 allowed %(%-%-verbose shows them%)", out)
    dir = project({ OK, BAD })
    code, out = h.run({ "lint", "r0:head" }, { cwd = dir })
    assert.equal(2, code)
    assert.matches("versions/r2%.lua:6: add%-column%-not%-null %(revision r2%)", out)
    assert.matches("lock:   ACCESS EXCLUSIVE", out)
    assert.matches("effect: every existing row", out)
    assert.matches("recipe: give the column a constant default", out)
    assert.not_matches("t is small", out)
    code, out = h.run({ "lint", "r0:head", "--verbose" }, { cwd = dir })
    assert.equal(2, code)
    assert.matches("versions/r1%.lua:7: index%-not%-concurrent %(revision r1%) allowed %(comment%): t is small", out)
    code, out = h.run({ "lint", "r1" }, { cwd = dir })
    assert.equal(0, code, out)
  end)

  it("--json gives the findings to CI", function()
    local code, out = h.run({ "--json", "lint", "r0:head" }, { cwd = project({ BAD }) })
    assert.equal(2, code)
    assert.matches('^{"findings":%[{', out)
    for _, s in ipairs { '"rule":"add%-column%-not%-null"', '"revision":"r1"', '"line":6',
                         '"file":"[^"]*versions/r1%.lua"', '"allowed":false', '"lock":"ACCESS EXCLUSIVE',
                         '"recipe":"give' } do
      assert.matches(s, out)
    end
    code, out = h.run({ "--json", "lint", "r0:head" }, { cwd = project({ OK }) })
    assert.equal(0, code)
    assert.matches('"allowed":true', out)
  end)

  describe("on upgrade", function()
    local db, env
    h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

    it("warns and runs by default; --lint strict refuses to run; --lint off says nothing", function()
      local dir = project({ BAD })
      assert.equal(0, (h.run({ "upgrade", "r0" }, { cwd = dir, env = env })))
      local code, out, err = h.run({ "lint" }, { cwd = dir, env = env })
      assert.equal(2, code, err)
      assert.matches("r1%.lua:6: add%-column%-not%-null", out)
      code, _, err = h.run({ "upgrade", "--lint", "strict" }, { cwd = dir, env = env })
      assert.equal(1, code)
      assert.matches("luamig: warning: [^\n]*versions/r1%.lua:6: add%-column%-not%-null: adds NOT NULL column", err)
      assert.matches("1 lint finding in the revisions to apply .*%-%-lint strict refuses to run them", err)
      assert.equal("r0", h.psql(db, "SELECT version_num FROM luamig_version"))
      code, _, err = h.run({ "upgrade", "--lint", "off" }, { cwd = dir, env = env })
      assert.equal(1, code)                -- the table has rows: PostgreSQL refuses it, as the lint said
      assert.not_matches("warning", err)
      assert.matches("23502", err)
      h.psql(db, "DELETE FROM t")
      code, _, err = h.run({ "upgrade" }, { cwd = dir, env = env })
      assert.equal(0, code, err)
      assert.matches("warning: [^\n]*add%-column%-not%-null", err)
      assert.equal("r1", h.psql(db, "SELECT version_num FROM luamig_version"))
    end)
  end)

  it("revision warns about the findings of the head it builds on", function()
    local dir = project({ BAD })
    local code, out, err = h.run({ "revision", "-m", "next", "--rev-id", "r9" }, { cwd = dir })
    assert.equal(0, code, err)
    assert.matches("Generating .*r9_next%.lua", out)
    assert.matches("warning: [^\n]*r1%.lua:6: add%-column%-not%-null", err)
  end)
end)

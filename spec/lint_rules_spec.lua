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

describe("lint: SQL it cannot read whole", function()
  it("never makes the lint fail, in upgrade() or downgrade(), nor do odd op arguments", function()
    local odd = { "ALTER TABLE", "ALTER TABLE t DROP COLUMN", "ALTER TABLE t ADD", "ALTER TABLE t RENAME TO",
      "ALTER TABLE t RENAME COLUMN legacy TO", "ALTER TABLE t ALTER COLUMN", "ALTER TYPE RENAME TO",
      "ALTER INDEX x RENAME TO", "TRUNCATE", "UPDATE", "DELETE FROM", "CREATE INDEX ON", "DROP INDEX",
      "DROP TABLE", "CREATE TABLE", "ALTER TABLE t ADD CONSTRAINT", "ALTER TABLE t ADD UNIQUE",
      "ALTER TABLE t ADD FOREIGN KEY (", ";;", "WITH", "WITH x AS", "BEGIN ATOMIC", "COMMIT PREPARED",
      "LOCK", "VACUUM (", "REINDEX", "ALTER TABLE t SET", "CREATE TYPE", "DROP DATABASE" }
    local calls = {}
    for i, sql in ipairs(odd) do calls[i] = ("op.execute(%q)"):format(sql) end
    for _, call in ipairs { "op.create_table()", 'op.rename_table("t")', 'op.alter_column("t", nil, { new_name = "x" })',
                            'op.add_column("t", "x")', "op.drop_index()", 'op.create_index(nil, nil, { "a" })',
                            'op.create_foreign_key(nil, "t", "parent", "c", "id")', "op.drop_enum()" } do
      calls[#calls + 1] = call
    end
    for _, call in ipairs(calls) do
      local _, all = findings({ { call, call } })
      for _, f in ipairs(all) do assert.are_not.equal("lint", f.rule, call .. ": " .. f.message) end
    end
  end)
end)

describe("lint: what squawk caught and luamig missed", function()
  it("drop-database: DROP DATABASE, in any revision", function()
    assert.same({ "drop-database" }, rules_of_sql("DROP DATABASE IF EXISTS other"))
    assert.same({ "drop-database" }, rules_of_sql("drop database other with (force)", { transactional = false }))
  end)

  it("truncate: TRUNCATE ... CASCADE always, TRUNCATE of an existing table", function()
    assert.same({ "truncate" }, rules_of_sql("TRUNCATE t"))
    assert.same({ "truncate" }, rules_of_sql("TRUNCATE TABLE ONLY parent, t RESTART IDENTITY"))
    local of = findings({ { 'op.create_table("fresh", { { "id", "bigint" } })\n'
      .. '  op.execute("INSERT INTO fresh VALUES (1); TRUNCATE fresh")\n'
      .. '  op.execute("TRUNCATE fresh CASCADE")', 'op.drop_table("fresh")' } }, "truncate")
    assert.equal(1, #of)                            -- the new table's plain TRUNCATE is fine
    assert.equal(8, of[1].line)
    assert.matches("CASCADE", of[1].message)
    assert.matches("ACCESS EXCLUSIVE", of[1].lock)
  end)

  it("transaction-control: BEGIN, COMMIT, ROLLBACK ... in op.execute of a transactional revision", function()
    for _, sql in ipairs { "COMMIT", "BEGIN", "begin transaction isolation level serializable",
                           "START TRANSACTION", "ROLLBACK", "END", "ABORT", "COMMIT AND CHAIN",
                           "PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'", "ROLLBACK PREPARED 'x'",
                           "CREATE TABLE z (x int); COMMIT; CREATE TABLE y (x int)" } do
      assert.same({ "transaction-control" }, rules_of_sql(sql), sql)
    end
    for _, sql in ipairs { "SAVEPOINT s", "ROLLBACK TO SAVEPOINT s", "ROLLBACK TO s", "RELEASE SAVEPOINT s",
                           "DO $$ BEGIN PERFORM 1; END $$",
                           "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
                             .. "SELECT CASE WHEN true THEN 1 END; END" } do
      assert.same({}, rules_of_sql(sql), sql)
    end
    -- outside a transaction each statement is its own: BEGIN ... COMMIT is the author's to use
    assert.same({}, rules_of_sql("BEGIN; UPDATE t SET c = 1 WHERE id < 100; COMMIT", { transactional = false }))
  end)
end)

describe("lint: what both missed", function()
  it("unbatched-backfill: UPDATE or DELETE of a whole existing table", function()
    for _, sql in ipairs { "UPDATE t SET c = n", "update only public.t as x set c = 1 from parent p",
                           "DELETE FROM t", "delete from t using parent" } do
      assert.same({ "unbatched-backfill" }, rules_of_sql(sql), sql)
      assert.same({ "unbatched-backfill" }, rules_of_sql(sql, { transactional = false }), sql)
    end
    for _, sql in ipairs { "UPDATE t SET c = n WHERE id IN (SELECT id FROM t WHERE c IS NULL LIMIT 1000)",
                           "UPDATE t SET c = (SELECT max(id) FROM parent WHERE id > 0) WHERE c IS NULL",
                           "DELETE FROM t WHERE id < 10", "DELETE FROM t WHERE CURRENT OF cur" } do
      assert.same({}, rules_of_sql(sql), sql)
    end
    local of = findings({ { 'op.create_table("fresh", { { "id", "bigint" }, { "v", "int" } })\n'
      .. '  op.execute("UPDATE fresh SET v = 1")', 'op.drop_table("fresh")' } }, "unbatched-backfill")
    assert.same({}, of)
    local f = findings({ { 'op.execute("UPDATE t SET c = n")', "" } }, "unbatched-backfill")[1]
    assert.matches("ROW EXCLUSIVE", f.lock)
    assert.matches('UPDATE of every row of existing table "t"', f.message)
  end)

  it("table-rewrite: SET LOGGED/UNLOGGED, SET TABLESPACE, SET ACCESS METHOD, a stored generated column", function()
    for _, sql in ipairs { "ALTER TABLE t SET UNLOGGED", "ALTER TABLE t SET LOGGED",
                           "ALTER TABLE t SET TABLESPACE fast", "ALTER TABLE ALL IN TABLESPACE a SET TABLESPACE b",
                           "ALTER TABLE t SET ACCESS METHOD heap2",
                           "ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS (n * 2) STORED" } do
      assert.same({ "table-rewrite" }, rules_of_sql(sql), sql)
    end
    local of = findings({ { 'op.add_column("t", { "g", "integer GENERATED ALWAYS AS (n * 2) STORED" })',
                            'op.drop_column("t", "g")' } }, "table-rewrite")
    assert.equal(1, #of)
    assert.matches("stored generated column", of[1].message)
    assert.same({}, rules_of_sql("ALTER TABLE t SET (fillfactor = 70)"))
    assert.same({ "add-column-volatile-default" },
      rules_of_sql("ALTER TABLE t ADD COLUMN i bigint GENERATED ALWAYS AS IDENTITY"))
    local _, all = findings({ { 'op.create_table("fresh", { { "id", "bigint" } })\n'
      .. '  op.execute("ALTER TABLE fresh SET UNLOGGED")', 'op.drop_table("fresh")' } })
    assert.same({}, unallowed(all))
  end)
end)

describe("lint: false alarms and messages", function()
  it("ADD COLUMN ... REFERENCES: a new column without a default is not scanned", function()
    for _, up in ipairs { 'op.add_column("t", { "p", "bigint", references = "parent" })',
                          'op.execute("ALTER TABLE t ADD COLUMN p bigint REFERENCES parent (id)")' } do
      local _, all = findings({ { up, 'op.drop_column("t", "p")' } })
      assert.same({}, unallowed(all), up)
    end
    for _, up in ipairs { 'op.add_column("t", { "p", "bigint", default = "1", references = "parent" })',
                          'op.execute("ALTER TABLE t ADD COLUMN p bigint DEFAULT 1 REFERENCES parent (id)")' } do
      local of = findings({ { up, 'op.drop_column("t", "p")' } }, "constraint-not-valid")
      assert.equal(1, #of, up)
      assert.matches("with a default", of[1].message)
    end
  end)

  it("validating a NOT VALID foreign key in its own transaction names SHARE ROW EXCLUSIVE", function()
    local of = findings({ { 'op.create_foreign_key("fk", "t", "parent", { "c" }, { "id" }, { not_valid = true })\n'
      .. '  op.validate_constraint("fk", "t")', 'op.drop_constraint("fk", "t")' } }, "constraint-not-valid")
    assert.equal(1, #of)
    assert.matches("SHARE ROW EXCLUSIVE lock of the ADD on both tables", of[1].message)
    assert.not_matches("ACCESS EXCLUSIVE", of[1].message .. of[1].lock)
    of = findings({ { 'op.create_check_constraint("ck", "t", "n > 0", { not_valid = true })\n'
      .. '  op.validate_constraint("ck", "t")', 'op.drop_constraint("ck", "t")' } }, "constraint-not-valid")
    assert.matches("ACCESS EXCLUSIVE lock of the ADD", of[1].message)
  end)
end)

describe("lint: downgrade-not-inverse follows renames within a revision", function()
  local function inverse_findings(up, down)
    local of = findings({ { up, down } }, "downgrade-not-inverse")
    local msgs = {}
    for i, f in ipairs(of) do msgs[i] = f.message end
    return msgs
  end

  it("an enum renamed away, created again and the old one dropped (and the same back)", function()
    local function swap(labels)
      return ('op.execute("ALTER TYPE mood RENAME TO mood_old")\n'
        .. '  op.create_enum("mood", %s)\n'
        .. '  op.execute("ALTER TABLE t ALTER COLUMN m TYPE mood USING m::text::mood")\n'
        .. '  op.drop_enum("mood_old")'):format(labels)
    end
    assert.same({}, inverse_findings(swap('{ "a", "b", "c" }'), swap('{ "a", "b" }')))
    assert.same({ 'upgrade() creates type "mood", which downgrade() does not undo',
                  'upgrade() drops type "mood_old", which downgrade() does not undo' },
      inverse_findings(swap('{ "a", "b", "c" }'), 'op.execute("SELECT 1")'))
  end)

  it("a table created, renamed and dropped in the same revision pair", function()
    assert.same({}, inverse_findings(
      'op.create_table("t_new", { { "id", "bigint" } })\n  op.add_column("t_new", { "x", "text" })\n'
        .. '  op.rename_table("t_new", "t_final")\n  op.create_index("ix_x", "t_final", { "x" })',
      'op.drop_table("t_final")'))
    assert.same({}, inverse_findings(      -- the swap: a new table takes the old one's name
      'op.create_table("t_copy", { { "id", "bigint" } })\n  op.drop_table("t")\n'
        .. '  op.rename_table("t_copy", "t")',
      'op.create_table("t_old", { { "id", "bigint" } })\n  op.drop_table("t")\n'
        .. '  op.rename_table("t_old", "t")'))
    assert.same({ 'upgrade() creates table "t_new", which downgrade() does not undo',   -- it is t_final now
                  'downgrade() drops table "t_new", which upgrade() did not create: a downgrade would destroy data' },
      inverse_findings('op.create_table("t_new", { { "id", "bigint" } })\n  op.rename_table("t_new", "t_final")',
        'op.drop_table("t_new")'))
  end)

  it("renames of existing objects must be undone, by any path", function()
    assert.same({}, inverse_findings(
      'op.rename_table("t", "t2")\n  op.add_column("t2", { "x", "text" })\n  op.rename_table("t2", "t3")',
      'op.drop_column("t3", "x")\n  op.rename_table("t3", "t")'))
    assert.same({}, inverse_findings(
      'op.alter_column("t", "name", { new_name = "title" })\n  op.execute("ALTER INDEX t_pkey RENAME TO t_pk")',
      'op.execute("ALTER INDEX t_pk RENAME TO t_pkey")\n  op.alter_column("t", "title", { new_name = "name" })'))
    assert.same({ 'upgrade() renames table "t2" to "t3", which downgrade() does not undo' },
      inverse_findings('op.rename_table("t", "t2")\n  op.rename_table("t2", "t3")', 'op.rename_table("t3", "t2")'))
  end)

  it("an index the server names is not compared", function()
    assert.same({}, inverse_findings('op.execute("CREATE INDEX CONCURRENTLY ON t (n)")',
      'op.execute("DROP INDEX t_n_idx")'))
  end)

  it("an enum created twice with if_not_exists is dropped once", function()
    assert.same({}, inverse_findings(
      'op.create_enum("mood", { "a" }, { if_not_exists = true })\n'
        .. '  op.create_enum("mood", { "a" }, { if_not_exists = true })',
      'op.drop_enum("mood")'))
  end)
end)

describe("lint --style", function()
  local STYLE = {
    'op.create_table("a", { { "id", "serial", primary_key = true }, { "b_id", "integer", references = "b(id)" },',
    '    { "at", "timestamp" }, { "code", "varchar(20)" }, { "flag", "char(1)" }, { "n", "integer" },',
    '    { "ok_at", "timestamptz" }, { "note", "text" }, { "big", "bigint" }, { "v", "varchar" } })',
  }
  local up = table.concat(STYLE, "\n")
  local function style_rules(revs, opts)
    local _, all = findings(revs, nil, nil, opts)
    local list = {}
    for _, f in ipairs(all) do
      if f.rule:match("^prefer%-") then list[#list + 1] = ("%s:%d %s"):format(f.rule, f.line, f.message) end
    end
    table.sort(list)
    return list
  end

  it("is off by default", function()
    assert.same({}, style_rules({ { up, 'op.drop_table("a")' } }))
  end)

  it("flags int and serial keys, serial columns, timestamp, varchar(n) and char(n)", function()
    assert.same({
      'prefer-bigint-key:6 column "a"."b_id" is a key of type integer: use bigint',
      'prefer-bigint-key:6 column "a"."id" is a key of type serial: use bigint',
      'prefer-identity:6 column "a"."id" is serial: use GENERATED ALWAYS AS IDENTITY',
      'prefer-text:6 column "a"."code" is varchar(20): use text (with a CHECK on length() if the limit matters)',
      'prefer-text:6 column "a"."flag" is char(1): use text (with a CHECK on length() if the limit matters)',
      'prefer-timestamptz:6 column "a"."at" is timestamp: use timestamptz',
    }, style_rules({ { up, 'op.drop_table("a")' } }, { style = true }))
  end)

  it("reads SQL, added columns, type changes and key constraints too", function()
    local sql = 'op.execute([[CREATE TABLE s (id int PRIMARY KEY, at timestamp(3) without time zone,\n'
      .. '    p int, CONSTRAINT s_p FOREIGN KEY (p) REFERENCES parent (id))]])\n'
      .. '  op.add_column("t", { "when_at", "timestamp without time zone" })\n'
      .. '  op.alter_column("t", "name", { type = "character varying(40)" })\n'
      .. '  op.create_table("k", { { "x", "smallint" }, { primary_key = { "x" } } })'
    assert.same({
      'prefer-bigint-key:10 column "k"."x" is a key of type smallint: use bigint',
      'prefer-bigint-key:6 column "s"."id" is a key of type int: use bigint',
      'prefer-bigint-key:6 column "s"."p" is a key of type int: use bigint',
      'prefer-text:9 column "t"."name" is character varying(40): use text (with a CHECK on length() if the limit matters)',
      'prefer-timestamptz:6 column "s"."at" is timestamp(3) without time zone: use timestamptz',
      'prefer-timestamptz:8 column "t"."when_at" is timestamp without time zone: use timestamptz',
    }, style_rules({ { sql, 'op.drop_table("k")\n  op.drop_column("t", "when_at")\n  op.execute("DROP TABLE s")' } },
      { style = true }))
  end)

  it("#cli lint --style: style findings count, op.safe silences them", function()
    local dir = project({ { up, 'op.drop_table("a")' } })
    local code, out = h.run({ "lint", "r0:head" }, { cwd = dir })
    assert.equal(0, code, out)
    code, out = h.run({ "lint", "r0:head", "--style" }, { cwd = dir })
    assert.equal(2, code, out)
    assert.matches("prefer%-timestamptz %(revision r1%)", out)
    assert.matches("lock:   none", out)
    local safe = 'op.safe("prefer-text", "codes are fixed at 20")\n  ' .. up
    code, out = h.run({ "lint", "r0:head", "--style" }, { cwd = project({ { safe, 'op.drop_table("a")' } }) })
    assert.matches("2 allowed", out)             -- code and flag
  end)
end)

-- What each statement takes, read from pg_locks by a second connection while the
-- statement's transaction is still open: the locks the rules and docs/safety-lint.md
-- name are the ones PostgreSQL 15 takes.
describe("the locks the rules name, measured", function()
  local core = require "luamig.core"
  local lint = require "luamig.lint"
  local db, url, watcher
  h.database_each(function(name)
    db, url = name, h.url(name)
    h.psql(db, [[CREATE TABLE parent (id bigint PRIMARY KEY);
      INSERT INTO parent SELECT generate_series(0, 1000);
      CREATE TABLE t (id bigserial PRIMARY KEY, n integer NOT NULL DEFAULT 0, c integer DEFAULT 0);
      INSERT INTO t (n, c) SELECT g, g % 1000 FROM generate_series(1, 2000) g;
      CREATE TABLE child (id bigint, pid bigint REFERENCES parent);
      CREATE TABLE u AS SELECT g AS id FROM generate_series(1, 2000) g]])
    watcher = core.connect(url)
  end, function() watcher:close() end)

  -- Runs sql in an open transaction on a fresh connection; returns { locks = { "t:AccessExclusiveLock",
  -- ... }, seq_scans = (of rel), rewritten = (rel's file changed) }, or nil and the error.
  local function measure(sql, rel)
    rel = rel or "t"
    local a = core.connect(url)
    local pid = a:query("SELECT pg_backend_pid() AS p")[1].p
    local node = a:query("SELECT pg_relation_filenode($1::regclass) AS f", rel)[1].f
    a:exec("BEGIN")
    local ok, err = pcall(a.exec, a, sql)
    local out
    if ok then
      out = { locks = {} }
      for _, r in ipairs(watcher:query([[SELECT relation::regclass::text || ':' || mode AS l FROM pg_locks
          WHERE pid = $1 AND locktype = 'relation' AND granted
            AND relation::regclass::text IN ('t', 'parent', 'child', 'u') ORDER BY 1]], pid)) do
        out.locks[#out.locks + 1] = r.l
      end
      out.seq_scans = a:query("SELECT coalesce(sum(seq_scan), 0)::int AS s FROM pg_stat_xact_user_tables "
        .. "WHERE relid = $1::regclass", rel)[1].s
      out.rewritten = a:query("SELECT pg_relation_filenode($1::regclass) AS f", rel)[1].f ~= node
    end
    pcall(a.exec, a, "ROLLBACK")
    a:close()
    return out, err
  end

  local function has(list, x)
    for _, v in ipairs(list) do if v == x then return true end end
    return false
  end
  local function names(rule, mode) assert.matches(mode, lint.rules[rule].lock, 1, true) end

  it("table-rewrite: ACCESS EXCLUSIVE and a new file for the table", function()
    for _, case in ipairs { { "ALTER TABLE u SET UNLOGGED", "u" },
                            { "ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS (n * 2) STORED", "t" } } do
      local m = assert(measure(case[1], case[2]))
      assert.is_true(has(m.locks, case[2] .. ":AccessExclusiveLock"), case[1])
      assert.is_true(m.rewritten, case[1])
    end
    names("table-rewrite", "ACCESS EXCLUSIVE")
  end)

  it("truncate: ACCESS EXCLUSIVE, on the referencing tables too with CASCADE", function()
    local m = assert(measure("TRUNCATE parent CASCADE", "parent"))
    assert.is_true(has(m.locks, "parent:AccessExclusiveLock"))
    assert.is_true(has(m.locks, "child:AccessExclusiveLock"))
    names("truncate", "ACCESS EXCLUSIVE")
  end)

  it("unbatched-backfill: ROW EXCLUSIVE, and a writer of any row waits", function()
    local a = core.connect(url)
    a:exec("BEGIN")
    a:exec("UPDATE t SET c = 0")
    watcher:exec("SET lock_timeout = '100ms'")
    local ok, err = pcall(watcher.exec, watcher, "UPDATE t SET n = n + 1 WHERE id = 1234")
    a:exec("ROLLBACK")
    a:close()
    assert.is_false(ok)
    assert.matches("55P03", err)
    local m = assert(measure("UPDATE t SET c = 0"))
    assert.same({ "t:RowExclusiveLock" }, m.locks)
    names("unbatched-backfill", "ROW EXCLUSIVE")
  end)

  it("constraint-not-valid: ADD COLUMN ... REFERENCES scans the table only with a default", function()
    local plain = assert(measure("ALTER TABLE t ADD COLUMN p bigint REFERENCES parent"))
    assert.equal(0, plain.seq_scans)
    local with_default = assert(measure("ALTER TABLE t ADD COLUMN p bigint DEFAULT 1 REFERENCES parent"))
    assert.equal(1, with_default.seq_scans)
    assert.is_true(has(with_default.locks, "parent:ShareRowExclusiveLock"))
  end)

  it("constraint-not-valid: a foreign key validated in its own transaction keeps SHARE ROW EXCLUSIVE", function()
    local m = assert(measure("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES parent NOT VALID; "
      .. "ALTER TABLE t VALIDATE CONSTRAINT f"))
    assert.is_true(has(m.locks, "t:ShareRowExclusiveLock"))
    assert.is_true(has(m.locks, "parent:ShareRowExclusiveLock"))
    assert.is_false(has(m.locks, "t:AccessExclusiveLock"))
    assert.equal(1, m.seq_scans)
  end)

  it("drop-database: refused inside a transaction", function()
    local m, err = measure("DROP DATABASE " .. core.quote_ident(db .. "_other"))
    assert.is_nil(m)
    assert.matches("25001", err)
  end)
end)

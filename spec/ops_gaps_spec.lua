-- What real Alembic histories need (issue #16): create_enum with if_not_exists,
-- constraints the server names, and an offline script that sets the timeouts and
-- records no made-up durations.
local h = require "helpers"
local core = require "luamig.core"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local PSQL = "/usr/lib/postgresql/15/bin/psql"

-- Runs a script file with psql on db; returns the exit code and the output.
local function psql_file(db, script)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local code, out = h.sh(("%s -X -q -v ON_ERROR_STOP=1 -f %s -d %s 2>&1")
    :format(PSQL, h.shell_quote(path), h.shell_quote(db)))
  os.remove(path)
  return code, out
end

describe("offline --sql #cli", function()
  local CONFIG = 'return { versions = "versions", statement_timeout = "5s", lock_timeout = "2s" }'
  local function dir_with(config)
    return h.project({
      ["versions/a.lua"] = h.revision("a", nil, 'op.create_table("x", { { "id", "bigint" } })', 'op.drop_table("x")'),
      ["versions/b.lua"] = h.revision("b", "a", 'op.add_column("x", { "y", "text" })', 'op.drop_column("x", "y")'),
    }, config)
  end

  it("sets statement_timeout and lock_timeout before any other statement", function()
    local code, script, err = h.run({ "upgrade", "head", "--sql" }, { cwd = dir_with(CONFIG), env = { DATABASE_URL = false } })
    assert.equal(0, code, err)
    assert.matches("^SET lock_timeout = '2s';\nSET statement_timeout = '5s';\n", script)
    local _, n = script:gsub("SET statement_timeout", "")
    assert.equal(1, n)
    code, script = h.run({ "downgrade", "b:base", "--sql" }, { cwd = dir_with(CONFIG), env = { DATABASE_URL = false } })
    assert.equal(0, code, script)
    assert.matches("^SET lock_timeout = '2s';\nSET statement_timeout = '5s';\n", script)
  end)

  it("without statement_timeout in luamig.lua, sets only lock_timeout (its default, 5s)", function()
    local code, script, err = h.run({ "upgrade", "head", "--sql" }, { cwd = dir_with(), env = { DATABASE_URL = false } })
    assert.equal(0, code, err)
    assert.matches("^SET lock_timeout = '5s';\n", script)
    assert.not_matches("statement_timeout", script)
  end)

  it("records no duration in the audit log (the script's run time is unknown), and runs", function()
    local code, script, err = h.run({ "upgrade", "head", "--sql" }, { cwd = dir_with(CONFIG), env = { DATABASE_URL = false } })
    assert.equal(0, code, err)
    local _, rows = script:gsub("INSERT INTO \"luamig_log\" %(revision, direction, checksum, duration_ms, "
      .. "luamig_version%) VALUES %('[ab]', 'upgrade', '%x+', NULL, '[%d.]+'%);", "")
    assert.equal(2, rows, script)
    local db = h.new_database()
    local rc, out = psql_file(db, script)
    assert.equal(0, rc, out)
    assert.equal("a|t\nb|t", h.psql(db, "SELECT revision, duration_ms IS NULL FROM luamig_log ORDER BY id"))
    h.drop_database(db)
  end)

  it("a live run still records its durations", function()
    local db = h.new_database()
    local code, _, err = h.run({ "upgrade", "head" }, { cwd = dir_with(CONFIG), env = { DATABASE_URL = h.url(db) } })
    assert.equal(0, code, err)
    assert.equal("t", h.psql(db, "SELECT bool_and(duration_ms >= 0) FROM luamig_log"))
    h.drop_database(db)
  end)
end)

-- An offline op table: returns op and a function giving the script so far.
local function offline()
  local ctx = core.new_context()
  return core.ops(ctx), function() return table.concat(core.script(ctx), "\n") end
end

local function failure(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("op.create_enum with if_not_exists", function()
  local db, conn, op
  h.database_each(function(name)
    db, conn = name, core.connect(h.url(name))
    op = core.ops(core.new_context(conn))
  end, function() conn:close() end)

  local function labels(schema, name)
    local out = {}
    for i, r in ipairs(conn:query([[SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
        JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1 AND t.typname = $2
        ORDER BY e.enumsortorder]], schema, name)) do out[i] = r.enumlabel end
    return out
  end

  it("creates the type once; the second call does nothing (the first one's labels stay)", function()
    op.create_enum("mood", { "sad", "happy" }, { if_not_exists = true })
    op.create_enum("mood", { "other" }, { if_not_exists = true })
    assert.same({ "sad", "happy" }, labels("public", "mood"))
    local err = failure(op.create_enum, "mood", { "x" })
    assert.matches("42710", err, 1, true)               -- without it, PostgreSQL refuses
  end)

  it("looks in the schema the type goes to, not in the whole search_path", function()
    conn:exec("CREATE SCHEMA other; CREATE TYPE other.mood AS ENUM ('o'); SET search_path = public, other")
    op.create_enum("mood", { "p" }, { if_not_exists = true })            -- public.mood is missing
    assert.same({ "p" }, labels("public", "mood"))
    op.create_enum("mood", { "z" }, { schema = "other", if_not_exists = true })
    assert.same({ "o" }, labels("other", "mood"))
    op.create_enum("mood2", { "q" }, { schema = "other", if_not_exists = true })
    assert.same({ "q" }, labels("other", "mood2"))
  end)

  it("takes names and labels with quotes and dollar signs", function()
    local name, vals = 'we"ird $luamig$', { "it's", "$luamig$", "$$", "a\\b" }
    op.create_enum(name, vals, { if_not_exists = true })
    op.create_enum(name, vals, { if_not_exists = true })
    assert.same(vals, labels("public", name))
  end)

  it("offline: the same DO block, guarded by pg_type, which runs twice without error", function()
    local off, script = offline()
    off.create_enum("mood", { "sad", "happy" }, { if_not_exists = true })
    off.create_enum("mood", { "sad", "happy" }, { schema = "public", if_not_exists = true })
    local sql = script()
    assert.matches("^DO %$luamig%$\nBEGIN\n  IF NOT EXISTS %(SELECT FROM pg_type t JOIN pg_namespace n ON "
      .. "n%.oid = t%.typnamespace\n                 WHERE t%.typname = 'mood' AND n%.nspname = "
      .. "current_schema%(%)%) THEN\n    CREATE TYPE \"mood\" AS ENUM %('sad', 'happy'%);\n  END IF;\n"
      .. "END\n%$luamig%$;\n", sql)
    assert.matches("n%.nspname = 'public'%) THEN\n    CREATE TYPE \"public\"%.\"mood\"", sql)
    local rc, out = psql_file(db, sql)
    assert.equal(0, rc, out)
    assert.same({ "sad", "happy" }, labels("public", "mood"))
  end)

  it("if_not_exists must be a boolean", function()
    assert.matches("op.create_enum: if_not_exists must be a boolean", failure(op.create_enum, "m", { "a" },
      { if_not_exists = "yes" }), 1, true)
  end)
end)

describe("constraints the server names", function()
  local conn, op
  h.database_each(function(name)
    conn = core.connect(h.url(name))
    op = core.ops(core.new_context(conn))
    conn:exec([[CREATE TABLE p (id bigint PRIMARY KEY);
      CREATE TABLE c (id bigint NOT NULL, pid bigint, a integer, b integer)]])
  end, function() conn:close() end)

  local function constraints(tbl)
    local out = {}
    for _, r in ipairs(conn:query([[SELECT conname || ' ' || contype::text || ' ' || convalidated AS c
        FROM pg_constraint WHERE conrelid = $1::regclass ORDER BY conname]], tbl)) do
      out[#out + 1] = r.c
    end
    return out
  end

  it("create_*(nil, ...) adds the constraint under the name PostgreSQL gives it", function()
    op.create_primary_key(nil, "c", { "id" })
    op.create_unique_constraint(nil, "c", { "a", "b" }, { deferrable = true })
    op.create_foreign_key(nil, "c", "p", { "pid" }, { "id" }, { ondelete = "cascade" })
    op.create_check_constraint(nil, "c", "a > 0")
    op.create_check_constraint(nil, "c", "a < b", { not_valid = true })
    assert.same({ "c_a_b_key u true", "c_a_check c true", "c_check c false", "c_pid_fkey f true",
                  "c_pkey p true" }, constraints("c"))
  end)

  it("offline: ADD without CONSTRAINT name", function()
    local off, script = offline()
    off.create_unique_constraint(nil, "c", { "a" })
    off.create_foreign_key(nil, "c", "p", { "pid" }, { "id" }, { not_valid = true })
    off.create_check_constraint(nil, "c", "a > 0")
    off.create_primary_key(nil, "c", { "id" }, { schema = "public" })
    assert.equal(table.concat({
      'ALTER TABLE "c" ADD UNIQUE ("a");',
      'ALTER TABLE "c" ADD FOREIGN KEY ("pid") REFERENCES "p" ("id") NOT VALID;',
      'ALTER TABLE "c" ADD CHECK (a > 0);',
      'ALTER TABLE "public"."c" ADD PRIMARY KEY ("id");' }, "\n"), script())
  end)

  it("drop_constraint and validate_constraint still need the name, and say so", function()
    for _, f in ipairs { "drop_constraint", "validate_constraint" } do
      local err = failure(op[f], nil, "c")
      assert.matches("op." .. f .. ": Constraint must have a name: PostgreSQL named it when it was "
        .. "created (<table>_<columns>_key, _fkey, _check, <table>_pkey); find it with \\d <table> "
        .. "and pass it", err, 1, true)
      assert.not_matches("\n", err)
    end
    assert.matches("constraint name must be a string %(got number%)", failure(op.create_unique_constraint, 5, "c", { "a" }))
  end)

  it("autogenerate: the model's unnamed constraints match them, under whatever name the server chose", function()
    local schema = require "luamig.schema"
    local A = require "luamig.autogen"
    conn:exec("CREATE INDEX c_a_key ON p (id)")       -- the name PostgreSQL would pick is taken
    op.create_unique_constraint(nil, "c", { "a" })    -- so it picks c_a_key1
    op.create_foreign_key(nil, "c", "p", { "pid" }, { "id" })
    op.create_check_constraint(nil, "c", "b > 0")
    op.create_primary_key(nil, "c", { "id" })
    assert.same({ "c_a_key1 u true", "c_b_check c true", "c_pid_fkey f true", "c_pkey p true" }, constraints("c"))
    local m = schema.new()
    m:table("p", { { "id", "bigint", primary_key = true }, schema.index("c_a_key", { "id" }) })
    m:table("c", {
      { "id", "bigint", primary_key = true },
      { "pid", "bigint", references = "p(id)" },
      { "a", "integer", unique = true },
      { "b", "integer", check = "b > 0" },
    })
    assert.same({}, A.diff(conn, m, {}).changes)
    local named = schema.new()                         -- a name given in the model is compared as a name
    named:table("p", { { "id", "bigint", primary_key = true }, schema.index("c_a_key", { "id" }) })
    named:table("c", {
      { "id", "bigint", primary_key = true },
      { "pid", "bigint", references = "p(id)" },
      { "a", "integer" },
      { "b", "integer", check = "b > 0" },
      schema.unique({ "a" }, { name = "uq_a" }),
    })
    local changes = A.diff(conn, named, {}).changes
    table.sort(changes)
    assert.same({ "added unique constraint 'uq_a' on 'c (a)'", "removed unique constraint 'c_a_key1' on 'c (a)'" },
      changes)
  end)
end)

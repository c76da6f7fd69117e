-- The op.* API bound from C: live effects checked in the catalog, offline
-- script text, parameters, and errors that name the op and the caller's line.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local core = require "luamig.core"

-- Runs f, which must fail; returns the message.
local function failure(f)
  local ok, err = pcall(f)
  assert.is_false(ok, "expected an error")
  return err
end
-- The caller's current line.
local function here() return debug.getinfo(2, "l").currentline end

-- "spec/ops_spec.lua:<line>: " as luaL_where writes it for this file.
local src = debug.getinfo(1, "S").short_src
local function where(line) return src .. ":" .. line .. ": " end
local where_pattern = src:gsub("%p", "%%%0") .. ":%d+: "

describe("op (live)", function()
  local db, conn, op
  h.database_each(function(name)
    db, conn = name, core.connect(h.url(name))
    op = core.ops(core.new_context(conn))
  end, function() conn:close() end)

  -- name, type, nullable, default of each column of table in schema (default public).
  local function columns(tbl, schema)
    return conn:query([[SELECT column_name AS name, data_type AS type, is_nullable AS nullable,
                               column_default AS default
                          FROM information_schema.columns
                         WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position]],
                      schema or "public", tbl)
  end
  -- contype -> array of constraint definitions on table.
  local function constraints(tbl)
    local out = {}
    for _, r in ipairs(conn:query([[SELECT contype, pg_get_constraintdef(c.oid) AS def
                                      FROM pg_constraint c WHERE conrelid = to_regclass($1)
                                     ORDER BY conname]], core.quote_ident(tbl))) do
      out[r.contype] = out[r.contype] or {}
      table.insert(out[r.contype], r.def)
    end
    return out
  end

  it("creates a table with its columns, keys and references", function()
    op.create_table("users", {
      { "id", "bigserial", primary_key = true },
      { "email", "varchar(255)", nullable = false, unique = true },
      { "created_at", "timestamptz", nullable = false, default = "now()" },
      { "score", "int", default = 0 },
    })
    op.create_table("sessions", {
      { "id", "bigserial", primary_key = true },
      { "user_id", "bigint", nullable = false, references = "users(id)", on_delete = "cascade" },
      { "title", "text" },
      "UNIQUE (user_id, title)",
    })
    local cols = columns("users")
    assert.equal(4, #cols)
    assert.same({ name = "email", type = "character varying", nullable = "NO" },
                { name = cols[2].name, type = cols[2].type, nullable = cols[2].nullable })
    assert.equal("now()", cols[3].default)
    assert.equal("0", cols[4].default)
    assert.equal("YES", cols[4].nullable)
    local uc = constraints("users")
    assert.same({ "PRIMARY KEY (id)" }, uc.p)
    assert.same({ "UNIQUE (email)" }, uc.u)
    local sc = constraints("sessions")
    assert.same({ "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE" }, sc.f)
    assert.same({ "UNIQUE (user_id, title)" }, sc.u)
  end)

  it("makes several primary_key columns one composite key", function()
    op.create_table("pair", { { "a", "int", primary_key = true }, { "b", "text", primary_key = true },
                              { "c", "int" } })
    assert.same({ "PRIMARY KEY (a, b)" }, constraints("pair").p)
  end)

  it("round-trips hostile identifiers through create_table, add_column, create_index", function()
    local names = { "select", 'we"ird', "with space", "café", "MixedCase", ("n"):rep(63) }
    local cols = {}
    for i, n in ipairs(names) do cols[i] = { n, "text" } end
    for _, tbl in ipairs(names) do
      op.create_table(tbl, cols)
      op.add_column(tbl, { "order", "int", nullable = false, default = "1" })
      op.add_column(tbl, { 'x"y z', "int" })
      op.create_index("ix " .. tbl:sub(1, 40), tbl, { 'we"ird', "café", "lower(\"select\")" },
                      { unique = true, where = '"order" > 0' })
      local got = {}
      for i, c in ipairs(columns(tbl)) do got[i] = c.name end
      local want = { table.unpack(names) }
      want[#want + 1] = "order"
      want[#want + 1] = 'x"y z'
      assert.same(want, got)
      local ix = conn:query("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1", tbl)
      assert.equal(1, #ix)
      assert.equal("ix " .. tbl:sub(1, 40), ix[1].indexname)
      assert.matches("CREATE UNIQUE INDEX", ix[1].indexdef, 1, true)
      assert.matches('("we""ird", "café", lower("select")) WHERE ("order" > 0)', ix[1].indexdef, 1, true)
    end
  end)

  it("drops columns, indexes and tables", function()
    op.create_table("t", { { "a", "int" }, { "b", "int" } })
    op.create_index("t_b", "t", { "b" })
    op.drop_index("t_b")
    assert.equal("0", h.psql(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_b'"))
    op.drop_column("t", "b")
    assert.equal(1, #columns("t"))
    op.drop_table("t")
    assert.equal("", h.psql(db, "SELECT to_regclass('t')"))
  end)

  it("honours schema= on every op", function()
    op.execute('CREATE SCHEMA "my app"')
    op.create_table("t", { { "id", "int", primary_key = true } }, { schema = "my app" })
    op.create_table("u", { { "t_id", "int", references = "my app.t(id)", on_delete = "set null" } },
                    { schema = "my app" })
    op.add_column("t", { "v", "text" }, { schema = "my app" })
    op.create_index("t_v", "t", { "v" }, { schema = "my app" })
    assert.equal(2, #columns("t", "my app"))
    assert.equal("1", h.psql(db, [[SELECT count(*) FROM pg_indexes WHERE schemaname = 'my app' AND indexname = 't_v']]))
    op.drop_index("t_v", { schema = "my app" })
    op.drop_column("t", "v", { schema = "my app" })
    op.drop_table("u", { schema = "my app" })
    op.drop_table("t", { schema = "my app" })
    assert.equal("0", h.psql(db, [[SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                    WHERE n.nspname = 'my app']]))
  end)

  it("sends execute's params as parameters and returns the row count", function()
    op.create_table("t", { { "id", "int" }, { "s", "text" }, { "b", "boolean" } })
    local hostile = [[O'Brien $1 "q" \' -- ;]]
    assert.equal(1, op.execute("INSERT INTO t VALUES ($1, $2, $3)", { 1, hostile, true }))
    assert.equal(1, op.execute("INSERT INTO t VALUES ($1, $2, $3)", { 2, nil, false, n = 3 }))
    assert.equal(hostile, h.psql(db, "SELECT s FROM t WHERE id = 1"))
    assert.equal("t", h.psql(db, "SELECT s IS NULL AND NOT b FROM t WHERE id = 2"))
    assert.equal(2, op.execute("UPDATE t SET s = 'x'"))
    assert.equal(0, op.execute("CREATE TABLE more (a int); CREATE TABLE most (a int)"))
    assert.equal("more,most", h.psql(db, "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relname LIKE 'mo%'"))
  end)

  it("rejects a 64-byte name before sending anything", function()
    local long = ("x"):rep(64)
    local line
    local err = failure(function()
      line = here() + 1
      op.create_table(long, { { "a", "int" } })
    end)
    assert.equal(where(line) .. 'op.create_table: identifier "' .. long .. '" is longer than 63 bytes', err)
    err = failure(function() op.add_column("t", { long, "int" }) end)
    assert.matches("op.add_column: identifier", err, 1, true)
    err = failure(function() op.create_index(long, "t", { "a" }) end)
    assert.matches("longer than 63 bytes", err, 1, true)
    assert.equal("", h.psql(db, "SELECT string_agg(relname, ',') FROM pg_class WHERE relnamespace = 'public'::regnamespace"))
  end)

  it("re-raises server errors with SQLSTATE, hint, SQL and the op call's line", function()
    op.create_table("t", { { "a", "int" } })
    local line
    local err = failure(function()
      line = here() + 1
      op.create_index("t_f", "t", { "no_such_function(a)" })
    end)
    assert.is_nil(err:find("\n"))
    assert.matches("^" .. where(line):gsub("%p", "%%%0") .. "op%.create_index: 42883: function no_such_function%(integer%) does not exist", err)
    assert.matches("(HINT: No function matches the given name and argument types.", err, 1, true)
    assert.matches('; SQL: CREATE INDEX "t_f" ON "t" (no_such_function(a))', err, 1, true)

    err = failure(function()
      line = here() + 1
      op.execute("INSERT INTO t VALUES ($1)", { "not a number" })
    end)
    assert.equal(where(line) .. 'op.execute: 22P02: invalid input syntax for type integer: "not a number"; '
                 .. "SQL: INSERT INTO t VALUES ($1)", err)

    err = failure(function() op.create_table("t", { { "a", "int" } }) end)
    assert.matches('op.create_table: 42P07: relation "t" already exists; SQL: CREATE TABLE "t" ( "a" int )', err, 1, true)
  end)

  it("reports a revision's own file and line", function()
    local env = { op = op }
    local chunk = assert(load(table.concat({
      "-- a revision",
      "function upgrade()",
      "  op.create_table('t', { { 'a', 'int' } })",
      "  op.add_column('t', { 'b' })",
      "end",
    }, "\n"), "@versions/x.lua", "t", env))
    chunk()
    local ok, err = pcall(env.upgrade)
    assert.is_false(ok)
    assert.equal('versions/x.lua:4: op.add_column: column "b": needs a type (a string such as "text")', err)
    assert.equal(1, #columns("t"))
  end)

  it("validates arguments with the op's name", function()
    local cases = {
      { function() op.add_column("t", {}) end, "op.add_column: column needs a name" },
      { function() op.add_column("t", { "x", "int; DROP TABLE t" }) end, "contains ';'" },
      { function() op.add_column("t", { "x", "int", nulable = false }) end, "unknown field 'nulable'" },
      { function() op.add_column("t", { "x", "int", nullable = "no" }) end, "nullable must be a boolean" },
      { function() op.add_column("t", { "x", "int", references = "u(id)", on_delete = "explode" }) end,
        "on_delete must be one of" },
      { function() op.add_column("t", { "x", "int", on_update = "cascade" }) end, "need references" },
      { function() op.add_column("t", "x", "int") end, "op.add_column: column must be a table" },
      { function() op.drop_table("t", {}, "x") end, "op.drop_table: takes at most 2 arguments" },
      { function() op.drop_table("t", { shema = "s" }) end, "op.drop_table: unknown option 'shema'" },
      { function() op.create_table("t", { a = { "a", "int" } }) end, "columns must be an array" },
      { function() op.create_table("t", { { "a", "int", primary_key = true, nullable = true } }) end,
        "a primary key cannot be nullable" },
      { function() op.create_index("i", "t", {}) end, "at least one column" },
      { function() op.drop_index("") end, "op.drop_index: empty identifier" },
      { function() op.execute("SELECT $1", { {} }) end, "op.execute: parameter 1 must be nil" },
      { function() op.execute(42) end, "op.execute: SQL must be a string" },
    }
    for _, case in ipairs(cases) do
      local err = failure(case[1])
      assert.matches(case[2], err, 1, true)
      assert.matches("^" .. where_pattern, err)
    end
  end)
end)

describe("op (offline)", function()
  local ctx, op
  before_each(function()
    ctx = core.new_context()
    op = core.ops(ctx)
  end)

  it("renders the statements a live run would send", function()
    op.create_table("users", {
      { "id", "bigserial", primary_key = true },
      { "email", "varchar(255)", nullable = false, unique = true },
      { "org_id", "int", references = "auth.orgs(id)", on_delete = "set null", on_update = "CASCADE" },
      { "created_at", "timestamptz", nullable = false, default = "now()" },
      "UNIQUE (email, org_id)",
    }, { schema = "app" })
    op.create_table("pair", { { "a", "int", primary_key = true }, { "b", "int", primary_key = true } })
    op.add_column("users", { "select", "text", default = "'x'" })
    op.drop_column("users", 'we"ird', { schema = "app" })
    op.create_index("ix_email", "users", { "email", "lower(email)" }, { unique = true, where = "org_id > 0" })
    op.drop_index("ix_email", { schema = "app" })
    op.drop_table("users")
    assert.equal(0, op.execute("UPDATE t SET s = $1 WHERE id = $2 AND note <> '$1'", { "it's", 5 }))
    op.execute("SELECT $1, $2 -- done", { nil, true, n = 2 })
    assert.same({
      'CREATE TABLE "app"."users" (\n'
        .. '    "id" bigserial PRIMARY KEY,\n'
        .. '    "email" varchar(255) NOT NULL UNIQUE,\n'
        .. '    "org_id" int REFERENCES "auth"."orgs" ("id") ON DELETE SET NULL ON UPDATE CASCADE,\n'
        .. '    "created_at" timestamptz NOT NULL DEFAULT now(),\n'
        .. '    UNIQUE (email, org_id)\n'
        .. ');',
      'CREATE TABLE "pair" (\n    "a" int,\n    "b" int,\n    PRIMARY KEY ("a", "b")\n);',
      [[ALTER TABLE "users" ADD COLUMN "select" text DEFAULT 'x';]],
      [[ALTER TABLE "app"."users" DROP COLUMN "we""ird";]],
      [[CREATE UNIQUE INDEX "ix_email" ON "users" ("email", lower(email)) WHERE org_id > 0;]],
      [[DROP INDEX "app"."ix_email";]],
      [[DROP TABLE "users";]],
      [[UPDATE t SET s = 'it''s' WHERE id = '5' AND note <> '$1';]],
      "SELECT NULL, 'true' -- done\n;",
    }, core.script(ctx))
    assert.matches("offline, 9 statements", tostring(ctx), 1, true)
  end)

  it("raises argument errors exactly as a live context does", function()
    local line
    local err = failure(function()
      line = here() + 1
      op.create_table("t", { { "a" } })
    end)
    assert.equal(where(line) .. 'op.create_table: column "a": needs a type (a string such as "text")', err)
    err = failure(function()
      line = here() + 1
      op.execute("SELECT $2", { 1 })
    end)
    assert.equal(where(line) .. "op.execute: SQL refers to $2 but 1 parameter(s) were given", err)
    assert.same({}, core.script(ctx))
  end)
end)

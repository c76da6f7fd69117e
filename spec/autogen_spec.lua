-- Autogenerate: the models (luamig.schema) against the live schema (luamig.introspect),
-- the operations that take one to the other (luamig.autogen), `luamig revision
-- --autogenerate` and `luamig check`. Each detection runs a round trip on the server:
-- the upgrade leaves nothing to detect, the downgrade brings every difference back.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local core = require "luamig.core"
local schema = require "luamig.schema"
local N = require "luamig.normalize"
local A = require "luamig.autogen"

local PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("luamig.normalize", function()
  it("gives one name to each spelling of a type", function()
    local same = {
      { "varchar(500)", "character varying(500)" }, { "VARCHAR", "character varying" },
      { "int", "integer" }, { "int4", "integer" }, { "serial", "integer" },
      { "bigserial", "bigint" }, { "int8", "bigint" }, { "smallint", "int2" },
      { "timestamptz", "timestamp with time zone" },
      { "timestamptz(3)", "timestamp(3) with time zone" },
      { "timestamp", "timestamp without time zone" }, { "time", "time without time zone" },
      { "decimal(10, 2)", "numeric(10,2)" }, { "bool", "boolean" }, { "float8", "double precision" },
      { "float", "double precision" }, { "float(10)", "real" }, { "char", "character(1)" },
      { "int[]", "integer[]" }, { "text[][]", "text[]" }, { "public.mood", "mood" },
      { '"mood"', "mood" },
    }
    for _, p in ipairs(same) do assert.equal(N.type(p[2], "public"), N.type(p[1], "public"), p[1]) end
    assert.are_not.equal(N.type("varchar(500)"), N.type("varchar(255)"))
    assert.are_not.equal(N.type('"Mood"'), N.type("mood"))
    assert.equal("bigint", N.serial_base("BIGSERIAL"))
    assert.is_nil(N.serial_base("bigint"))
  end)

  it("reads expressions as PostgreSQL prints them back", function()
    local same = {
      { "price > 0", "(price > (0)::numeric)" },
      { "status IN ('a','b')",
        "((status)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))" },
      { "x NOT IN (1, 2)", "(x <> ALL (ARRAY[1, 2]))" },
      { "-1", "'-1'::integer" }, { "a=-1", "(a = '-1'::integer)" },
      { "'candidate'", "'candidate'::character varying" },
      { "now()", "CURRENT_TIMESTAMP" }, { "lower(email)", "lower((email)::text)" },
      { "0 < b and a > 1", "((0 < b) AND (a > 1))" }, { "x != 5", "(x <> 5)" },
      { "CAST(x AS text) = 'a'", "((x)::text = 'a'::text)" },
      { "deleted_at IS NULL", "(deleted_at IS NULL)" }, { '"weird" > 0', "(weird > 0)" },
    }
    for _, p in ipairs(same) do assert.equal(N.expr(p[2]), N.expr(p[1]), p[1]) end
    assert.are_not.equal(N.expr("a - 1"), N.expr("a + 1"))
    assert.are_not.equal(N.expr("'a'"), N.expr("'b'"))
    assert.are_not.equal(N.expr('"Weird" > 0'), N.expr("weird > 0"))
    assert.equal(N.index_element("id"), N.index_element("id ASC NULLS LAST"))
    assert.equal(N.index_element("id DESC"), N.index_element("id DESC NULLS FIRST"))
    assert.are_not.equal(N.index_element("id"), N.index_element("id DESC"))
  end)
end)

describe("luamig.schema", function()
  it("names unnamed constraints and indexes as PostgreSQL does", function()
    local m = schema.new()
    local t = m:table("participants", {
      { "id", "bigserial", primary_key = true },
      { "session_id", "bigint", references = "sessions(id)", on_delete = "CASCADE" },
      { "user_id", "bigint", unique = true, index = true },
      { "price", "numeric", check = "price > 0" },
      "UNIQUE (session_id, user_id)",
      "CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL",
      schema.check("price < 100 AND user_id > 0"),
      schema.index({ "lower(role)" }),
    })
    assert.equal("participants_pkey", t.pk.name)
    local names = {}
    for _, list in ipairs { t.uniques, t.checks, t.fks, t.indexes } do
      for _, o in ipairs(list) do names[#names + 1] = o.name end
    end
    table.sort(names)
    assert.same({ "fk_user", "participants_check", "participants_lower_idx", "participants_price_check",
                  "participants_session_id_fkey", "participants_session_id_user_id_key",
                  "participants_user_id_idx", "participants_user_id_key" }, names)
    assert.equal("cascade", t.fks[1].on_delete)
    assert.equal("set null", t.fks[2].on_delete)
    assert.same({ "id" }, t.fks[2].ref_columns)
    -- 63 bytes at most, the longer part shortened first (makeObjectName)
    local long = schema.default_name(("t"):rep(40), "key", { ("c"):rep(40) })
    assert.equal(63, #long)
    assert.equal(("t"):rep(29) .. "_" .. ("c"):rep(29) .. "_key", long)
  end)

  it("refuses what it cannot read, naming the table and column", function()
    local m = schema.new()
    assert.has_error(function() m:table("t", { { "id" } }) end,
      'luamig.schema: table t: column id: needs a type (a string such as "text")')
    assert.has_error(function() m:table("t", { { "id", "int", nulable = false } }) end,
      "luamig.schema: table t: column id: unknown field 'nulable'")
    assert.error_matches(function() m:table("t", { { "id", "int" }, "EXCLUDE USING gist (id WITH =)" }) end,
      "cannot read the table constraint")
    assert.error_matches(function() m:table("t", { { "id", "int" }, schema.unique { "nope" } }) end,
      "names no column 'nope'")
    m:table("t", { { "id", "int" } })
    assert.error_matches(function() m:table("t", { { "id", "int" } }) end, "defined twice")
  end)
end)

describe("autogenerate against the server", function()
  local db, conn
  h.database_each(function(name) db, conn = name, core.connect(h.url(name)) end,
    function() conn:close() end)

  local function sql(s) conn:exec(s) end
  local function changes(m) return A.diff(conn, m, {}).changes end

  local function apply(body)
    local env = setmetatable({ op = core.ops(core.new_context(conn)) }, { __index = _G })
    assert(load("return function() " .. body .. "\nend", "=body", "t", env))()()
  end

  -- Detects `expected` (in this order), applies the upgrade (nothing left to detect),
  -- then the downgrade (the same differences again). Returns the bodies.
  local function roundtrip(m, expected)
    local r = A.diff(conn, m, {})
    assert.same(expected, r.changes)
    local up, down = A.render(r.ops)
    apply(up)
    assert.same({}, changes(m))
    apply(down)
    assert.same(expected, changes(m))
    return up, down
  end

  it("adds tables referenced ones first, removes referencing ones first", function()
    sql([[CREATE TABLE old_parent (id int PRIMARY KEY);
          CREATE TABLE a_old_child (id int PRIMARY KEY, parent_id int REFERENCES old_parent (id))]])
    local m = schema.new()
    m:table("a_child", { { "id", "int", primary_key = true }, { "z_id", "int", references = "z_parent(id)" } })
    m:table("z_parent", { { "id", "int", primary_key = true } })
    local up, down = roundtrip(m, { "removed table 'a_old_child'", "removed table 'old_parent'",
                                    "added table 'z_parent'", "added table 'a_child'" })
    assert.truthy(up:find('op.drop_table("a_old_child")', 1, true) < up:find('op.drop_table("old_parent")', 1, true))
    assert.truthy(up:find('op.create_table("z_parent"', 1, true) < up:find('op.create_table("a_child"', 1, true))
    assert.matches('references = "z_parent%(id%)"', up)
    -- the downgrade recreates the dropped tables from the database, foreign key included
    assert.matches('{ "parent_id", "integer", references = "old_parent%(id%)" }', down)
  end)

  it("breaks a cycle of foreign keys between new tables", function()
    local m = schema.new()
    m:table("eggs", { { "id", "int", primary_key = true }, { "hen_id", "int", references = "hens(id)" } })
    m:table("hens", { { "id", "int", primary_key = true }, { "egg_id", "int", references = "eggs(id)" } })
    local up = roundtrip(m, { "added table 'eggs'", "added table 'hens'" })
    assert.matches('op.create_foreign_key%("eggs_hen_id_fkey", "eggs", "hens", { "hen_id" }, { "id" }%)', up)
    -- and the same cycle is dropped in an order that applies
    apply(up)
    local up2 = roundtrip(schema.new(), { "removed table 'hens'", "removed table 'eggs'" })
    assert.matches('op.drop_constraint%("eggs_hen_id_fkey", "eggs"%)', up2)
  end)

  it("detects columns added and removed", function()
    sql("CREATE TABLE sessions (id bigserial PRIMARY KEY, title text, old_flag boolean DEFAULT true)")
    local m = schema.new()
    m:table("sessions", {
      { "id", "bigserial", primary_key = true },
      { "title", "text" },
      { "description", "varchar(500)", comment = "shown to participants" },
    })
    local up, down = roundtrip(m, { "added column 'sessions.description'", "removed column 'sessions.old_flag'" })
    assert.matches('op.add_column%("sessions", { "description", "varchar%(500%)", comment = "shown to participants" }%)', up)
    assert.matches('op.drop_column%("sessions", "old_flag"%)', up)
    assert.matches('op.add_column%("sessions", { "old_flag", "boolean", default = "true" }%)', down)
  end)

  it("compares types by their canonical names and detects a change", function()
    sql([[CREATE TABLE t (a character varying(500), b integer, c timestamp with time zone,
          d numeric(10,2), e double precision, f text[], g bigint)]])
    local m = schema.new()
    local cols = { { "a", "varchar(500)" }, { "b", "int" }, { "c", "timestamptz" },
                   { "d", "decimal(10, 2)" }, { "e", "float8" }, { "f", "text[]" }, { "g", "int8" } }
    m:table("t", cols)
    assert.same({}, changes(m))
    m = schema.new()
    cols[1] = { "a", "text" }
    cols[2] = { "b", "bigint" }
    m:table("t", cols)
    local up = roundtrip(m, { "type change from character varying(500) to text on 't.a'",
                              "type change from integer to bigint on 't.b'" })
    assert.matches('op.alter_column%("t", "a", { type = "text" }%)', up)
  end)

  it("detects nullability", function()
    sql("CREATE TABLE t (id serial PRIMARY KEY, a int NOT NULL, b int)")
    local m = schema.new()
    m:table("t", { { "id", "serial", primary_key = true }, { "a", "int" }, { "b", "int", nullable = false } })
    roundtrip(m, { "NULL on column 't.a'", "NOT NULL on column 't.b'" })
  end)

  it("compares server defaults as PostgreSQL stores them; serial and identity are no defaults", function()
    sql([[CREATE TABLE t (id bigserial PRIMARY KEY, n int DEFAULT -1, s varchar(20) DEFAULT 'x',
          at timestamptz DEFAULT now(), since timestamptz DEFAULT '2000-01-01',
          k bigint GENERATED BY DEFAULT AS IDENTITY, flag boolean DEFAULT true, gone int DEFAULT 3,
          j jsonb DEFAULT '{}'::jsonb)]])
    local m = schema.new()
    local cols = {
      { "id", "bigserial", primary_key = true }, { "n", "int", default = -1 },
      { "s", "varchar(20)", default = "'x'" }, { "at", "timestamptz", default = "CURRENT_TIMESTAMP" },
      { "since", "timestamptz", default = "'2000-01-01'" },
      { "k", "bigint", identity = true }, { "flag", "boolean", default = true },
      { "gone", "int", default = 3 }, { "j", "jsonb", default = "'{}'" },
    }
    m:table("t", cols)
    assert.same({}, changes(m))
    cols[2] = { "n", "int", default = 0 }
    cols[8] = { "gone", "int" }
    cols[9] = { "j", "jsonb", default = "'[]'" }
    cols[#cols + 1] = nil
    m = schema.new()
    m:table("t", cols)
    roundtrip(m, { "changed server default on column 't.n': '-1'::integer -> 0",
                   "changed server default on column 't.gone': 3 -> none",
                   "changed server default on column 't.j': '{}'::jsonb -> '[]'" })
  end)

  it("detects primary keys, serial, identity and generated columns", function()
    sql([[CREATE TABLE t (id int, n int, k int GENERATED ALWAYS AS IDENTITY, s bigserial,
          g int GENERATED ALWAYS AS (n * 2) STORED)]])
    local m = schema.new()
    m:table("t", { { "id", "int", primary_key = true }, { "n", "serial" },
                   { "k", "int", identity = true }, { "s", "bigint", nullable = false },
                   { "g", "int", generated = "n * 3" } })
    local up = roundtrip(m, {
      "NOT NULL on column 't.id'",
      "NOT NULL on column 't.n'",
      "changed server default on column 't.n': none -> serial",
      "changed identity on column 't.k': always -> by default",
      "changed server default on column 't.s': serial -> none",
      "changed generated expression on column 't.g'",
      "added primary key 't_pkey' on 't (id)'",
    })
    assert.matches('op.create_primary_key%("t_pkey", "t", { "id" }%)', up)
    assert.matches("CREATE SEQUENCE t_n_seq OWNED BY t.n", up, 1, true)
  end)

  it("detects indexes: columns, uniqueness, partial where, expressions", function()
    sql([[CREATE TABLE users (id int PRIMARY KEY, email varchar(255), org int, deleted_at timestamptz);
          CREATE INDEX ix_email ON users (lower(email));
          CREATE INDEX ix_org ON users (org);
          CREATE INDEX ix_live ON users (org) WHERE deleted_at IS NULL;
          CREATE INDEX ix_gone ON users (email)]])
    local m = schema.new()
    local items = {
      { "id", "int", primary_key = true }, { "email", "varchar(255)" }, { "org", "int" },
      { "deleted_at", "timestamptz" },
      schema.index("ix_email", { "lower(email)" }),
      schema.index("ix_org", { "org" }),
      schema.index("ix_live", { "org" }, { where = "deleted_at IS NULL" }),
      schema.index("ix_gone", { "email" }),
    }
    m:table("users", items)
    assert.same({}, changes(m))
    items[6] = schema.index("ix_org", { "org", "id DESC" }, { unique = true })
    items[7] = schema.index("ix_live", { "org" }, { where = "deleted_at IS NOT NULL" })
    items[8] = schema.index("ix_new", { "email", "org" })
    m = schema.new()
    m:table("users", items)
    local up = roundtrip(m, {
      "removed index 'ix_gone' on 'users (email)'",
      "changed index 'ix_live' on 'users (org)' where deleted_at IS NOT NULL",
      "changed unique index 'ix_org' on 'users (org, id DESC)'",
      "added index 'ix_new' on 'users (email, org)'",
    })
    assert.matches('op.create_index%("ix_org", "users", { "org", "%(id%) DESC" }, { unique = true }%)', up)
  end)

  it("reads back what op.create_index cannot say, and odd names", function()
    sql([[CREATE TABLE "Odd" (id int PRIMARY KEY, "Mixed Case" text, email text, a int, b int);
          CREATE INDEX ix_pattern ON "Odd" (email text_pattern_ops);
          CREATE INDEX ix_cover ON "Odd" (a) INCLUDE (b);
          CREATE INDEX ix_exprs ON "Odd" ((a + b), lower(email) DESC, (a * 2), "Mixed Case")]])
    local m = schema.new()
    local items = {
      { "id", "int", primary_key = true }, { "Mixed Case", "text" }, { "email", "text" },
      { "a", "int" }, { "b", "int" },
      schema.index("ix_exprs", { "(a + b)", "lower(email) DESC", "(a * 2)", '"Mixed Case"' }),
    }
    m:table("Odd", items)
    local up, down = roundtrip(m, { "removed index 'ix_cover' on 'Odd (a)'",
                                    "removed index 'ix_pattern' on 'Odd (email text_pattern_ops)'" })
    assert.matches('op.drop_index%("ix_pattern"%)', up)
    -- the downgrade recreates them from the server's own definition
    assert.matches('op.execute%(%[%[CREATE INDEX ix_pattern ON "Odd" USING btree %(email text_pattern_ops%)%]%]%)', down)
    assert.matches('INCLUDE %(b%)', down)
  end)

  it("detects unique, check and foreign-key constraints, with ondelete", function()
    sql([[CREATE TABLE users (id int PRIMARY KEY);
          CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users (id),
            code text UNIQUE, price numeric CHECK (price > 0), status varchar(10),
            placed timestamptz, CONSTRAINT ck_status CHECK (status IN ('new', 'paid')),
            CONSTRAINT ck_placed CHECK (placed > '2000-01-01'))]])
    local m = schema.new()
    m:table("users", { { "id", "int", primary_key = true } })
    local items = {
      { "id", "int", primary_key = true }, { "user_id", "int", references = "users(id)" },
      { "code", "text", unique = true }, { "price", "numeric", check = "price > 0" },
      { "status", "varchar(10)" }, { "placed", "timestamptz" },
      schema.check("status IN ('new', 'paid')", { name = "ck_status" }),
      schema.check("placed > '2000-01-01'", { name = "ck_placed" }),  -- the server's text differs
    }
    m:table("orders", items)
    assert.same({}, changes(m))
    items[2] = { "user_id", "int", references = "users(id)", on_delete = "cascade" }
    items[3] = { "code", "text" }
    items[4] = { "price", "numeric", check = "price >= 0" }
    items[#items + 1] = schema.unique({ "user_id", "code" })
    m = schema.new()
    m:table("users", { { "id", "int", primary_key = true } })
    m:table("orders", items)
    local up = roundtrip(m, {
      "changed foreign key 'orders_user_id_fkey' on 'orders (user_id)' -> users (id) on delete cascade",
      "removed unique constraint 'orders_code_key' on 'orders (code)'",
      "changed check constraint 'orders_price_check' on 'orders': price >= 0",
      "added unique constraint 'orders_user_id_code_key' on 'orders (user_id, code)'",
    })
    assert.matches('op.create_foreign_key%("orders_user_id_fkey", "orders", "users", { "user_id" }, '
                   .. '{ "id" }, { ondelete = "cascade" }%)', up)
    assert.matches('op.drop_constraint%("orders_code_key", "orders"%)', up)
  end)

  it("detects enums: new types, added values, removed values and types", function()
    sql([[CREATE TYPE mood AS ENUM ('sad', 'ok');
          CREATE TYPE shape AS ENUM ('round', 'square', 'odd');
          CREATE TYPE gone AS ENUM ('x');
          CREATE TABLE t (id int PRIMARY KEY, m mood DEFAULT 'ok', s shape)]])
    local m = schema.new()
    m:enum("mood", { "awful", "sad", "ok", "happy" })
    m:enum("shape", { "round", "square" })
    m:enum("size", { "s", "m", "l" })
    m:table("t", { { "id", "int", primary_key = true }, { "m", "mood", default = "'ok'" }, { "s", "shape" } })
    local up, down = roundtrip(m, {
      "added value 'awful' to enum 'mood'", "added value 'happy' to enum 'mood'",
      "changed values of enum 'shape' ('round', 'square', 'odd') -> ('round', 'square')",
      "added enum 'size' ('s', 'm', 'l')", "removed enum 'gone'",
    })
    assert.matches('op.add_enum_value%("mood", "awful", { before = "sad" }%)', up)
    assert.matches('op.add_enum_value%("mood", "happy", { after = "ok" }%)', up)
    assert.matches('op.create_enum%("size", { "s", "m", "l" }%)', up)
    -- PostgreSQL cannot drop a value: the downgrade rebuilds the type and its columns
    assert.matches('ALTER TYPE mood RENAME TO mood_old', down)
    assert.matches('op.alter_column%("t", "m", { type = "mood", using = "m::text::mood", '
                   .. 'server_default = "\'ok\'::mood" }%)', down)
  end)

  it("detects table and column comments", function()
    sql([[CREATE TABLE t (id int, a int, b int);
          COMMENT ON TABLE t IS 'old'; COMMENT ON COLUMN t.b IS 'bee']])
    local m = schema.new()
    m:table("t", { { "id", "int" }, { "a", "int", comment = "it's a" }, { "b", "int" } },
            { comment = "the t" })
    local up = roundtrip(m, { "changed comment on column 't.a'", "changed comment on column 't.b'",
                              "changed comment on table 't'" })
    assert.matches([[op.alter_column%("t", "a", { comment = "it's a" }%)]], up)
    assert.matches('op.alter_column%("t", "b", { comment = false }%)', up)
    assert.matches('op.create_table_comment%("t", "the t"%)', up)
  end)

  it("creates the schemas the models name and looks only at those", function()
    sql("CREATE SCHEMA elsewhere; CREATE TABLE elsewhere.ignored (id int)")
    local m = schema.new()
    m:enum("level", { "low", "high" }, { schema = "audit" })
    m:table("events", { { "id", "bigserial", primary_key = true }, { "level", "audit.level" },
                        { "user_id", "int", references = "users(id)" } }, { schema = "audit" })
    m:table("users", { { "id", "int", primary_key = true } })
    local up = roundtrip(m, { "added schema 'audit'", "added enum 'audit.level' ('low', 'high')",
                              "added table 'users'", "added table 'audit.events'" })
    assert.matches('op.create_schema%("audit"%)', up)
    assert.matches('}, { schema = "audit" }%)', up)
  end)

  it("names the columns of a foreign key to a table outside the models' schemas", function()
    sql([[CREATE SCHEMA ext; CREATE TABLE ext.accounts (id int, code text, PRIMARY KEY (id, code));
          CREATE TABLE t (id int PRIMARY KEY, acc int, acc_code text,
            FOREIGN KEY (acc, acc_code) REFERENCES ext.accounts (id, code))]])
    local m = schema.new()
    m:table("t", { { "id", "int", primary_key = true }, { "acc", "int" }, { "acc_code", "text" },
                   schema.foreign_key({ "acc", "acc_code" }, "ext.accounts(id, code)") })
    assert.same({}, changes(m))
    m = schema.new()
    m:table("t", { { "id", "int", primary_key = true }, { "acc", "int" }, { "acc_code", "text" } })
    local _, down = roundtrip(m, {
      "removed foreign key 't_acc_acc_code_fkey' on 't (acc, acc_code)' -> ext.accounts (id, code)" })
    assert.matches('op.create_foreign_key%("t_acc_acc_code_fkey", "t", "accounts", { "acc", "acc_code" }, '
                   .. '{ "id", "code" }, { referent_schema = "ext" }%)', down)
  end)

  it("leaves the version and log tables alone", function()
    sql("CREATE TABLE luamig_version (version_num varchar(32)); CREATE TABLE luamig_log (id int)")
    local r = A.diff(conn, schema.new(), { [".luamig_version"] = true, [".luamig_log"] = true })
    assert.same({}, r.changes)
  end)

  it("reads the catalog with the same number of queries for 10 tables and 100", function()
    local function build(n)
      local stmts, m = {}, schema.new()
      for i = 1, n do
        stmts[#stmts + 1] = ("CREATE TABLE t%d (id bigserial PRIMARY KEY, v text, n int NOT NULL DEFAULT 0, "
          .. "p int REFERENCES t%d (id) ON DELETE CASCADE); CREATE INDEX t%d_v ON t%d (v)"):format(
          i, i > 1 and i - 1 or i, i, i)
        m:table("t" .. i, { { "id", "bigserial", primary_key = true }, { "v", "text" },
          { "n", "int", nullable = false, default = 0 },
          { "p", "int", references = ("t%d(id)"):format(i > 1 and i - 1 or i), on_delete = "cascade" },
          schema.index("t" .. i .. "_v", { "v" }) })
      end
      sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public; " .. table.concat(stmts, "; "))
      return m
    end
    local function count(m)
      local n = 0
      local counting = {
        query = function(_, ...) n = n + 1; return conn:query(...) end,
        exec = function(_, ...) n = n + 1; return conn:exec(...) end,
      }
      assert.same({}, A.diff(counting, m, {}).changes)
      return n
    end
    local small = count(build(10))
    local large = count(build(100))
    assert.equal(small, large)
    assert.equal(6, large)
  end)
end)

describe("luamig revision --autogenerate and check #cli", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  local models = read(h.root .. "/app/models.lua")
  local config = 'return { versions = "versions", models = "app.models" }\n'

  local function run(dir, ...) return h.run({ ... }, { cwd = dir, env = env }) end

  local function ls(dir)
    local _, out = h.sh("ls -A " .. h.shell_quote(dir .. "/versions"))
    local files = {}
    for f in out:gmatch("[^\n]+") do   -- less luamig's header cache
      if not f:match("^%.luamig%-cache") then files[#files + 1] = f end
    end
    return files
  end

  -- The schema as pg_dump prints it, without luamig's own tables and pg_dump's
  -- per-run \restrict key.
  local function dump()
    local code, out = h.sh(("%s --schema-only -T 'luamig_*' -d %s"):format(PG_DUMP, h.shell_quote(db)))
    assert.equal(0, code, out)
    return (out:gsub("\\%a*restrict [^\n]*\n", ""))
  end

  it("round trip: autogenerate from empty, upgrade, nothing left, downgrade to the empty schema", function()
    local dir = h.project({ ["app/models.lua"] = models, ["versions/.keep"] = "" }, config)
    local empty = dump()
    local code, out, err = run(dir, "revision", "--autogenerate", "-m", "Initial schema", "--rev-id", "init01")
    assert.equal(0, code, err)
    assert.matches("Detected added table 'users'\nDetected added table 'sessions'\n"
                   .. "Detected added table 'participants'\n", out, 1, true)
    assert.matches("Generating .*versions/init01_initial_schema%.lua %.%.%. done", out)
    local text = read(dir .. "/versions/init01_initial_schema.lua")
    assert.matches('op.create_index%("ix_sessions_expires_at", "sessions", { "expires_at" }%)', text)
    assert.matches('"UNIQUE %(session_id, user_id%)"', text)

    code, out, err = run(dir, "upgrade", "head")
    assert.equal(0, code, err)
    code, out = run(dir, "revision", "--autogenerate", "-m", "again")
    assert.equal(0, code, out)
    assert.matches("No changes in schema detected.", out, 1, true)
    assert.same({ ".keep", "init01_initial_schema.lua" }, ls(dir))
    code, out = run(dir, "check")
    assert.equal(0, code, out)

    code, out, err = run(dir, "downgrade", "base")
    assert.equal(0, code, err)
    assert.equal(empty, dump())
  end)

  it("prints what it detected, Alembic's way, and writes it", function()
    -- the example project's first three revisions: sessions has no description yet
    local files = { ["app/models.lua"] = models }
    for _, f in ipairs { "1a2b3c4d5e6f_create_users_table.lua", "7c9e2d4f1b3a_create_sessions_table.lua",
                         "a1b2c3d4e5f6_create_participants_table.lua" } do
      files["versions/" .. f] = read(h.root .. "/versions/" .. f)
    end
    local dir = h.project(files, config)
    assert.equal(0, (run(dir, "upgrade", "head")))
    local code, out = run(dir, "check")
    assert.equal(1, code, out)
    assert.matches("added column 'sessions.description'", out, 1, true)
    local err
    code, out, err = run(dir, "revision", "--autogenerate", "-m", "Add description", "--rev-id", "desc01")
    assert.equal(0, code, err)
    assert.equal("Detected added column 'sessions.description'\n"
                 .. "Generating versions/desc01_add_description.lua ... done\n", out)
    local text = read(dir .. "/versions/desc01_add_description.lua")
    assert.matches('down_revision = "a1b2c3d4e5f6"', text, 1, true)
    assert.matches('op.add_column("sessions", { "description", "varchar(500)" })', text, 1, true)
    assert.matches('op.drop_column("sessions", "description")', text, 1, true)
    -- not applied yet: autogenerate and check refuse to compare
    code, _, err = run(dir, "check")
    assert.equal(1, code)
    assert.matches("Target database is not up to date: 1 revision is pending", err, 1, true)
    assert.equal(0, (run(dir, "upgrade", "head")))
    code, out = run(dir, "check")
    assert.equal(0, code, out)
    assert.matches("No new upgrade operations detected", out, 1, true)
  end)

  it("writes an empty revision only when asked", function()
    local dir = h.project({ ["app/models.lua"] = "return require('luamig.schema').new()\n",
                            ["versions/.keep"] = "" }, config)
    local code, out = run(dir, "revision", "--autogenerate", "-m", "nothing")
    assert.equal(0, code, out)
    assert.matches("No changes in schema detected.\nNo revision written", out, 1, true)
    assert.same({ ".keep" }, ls(dir))
    code, out = run(dir, "revision", "--autogenerate", "--allow-empty", "-m", "nothing", "--rev-id", "e1")
    assert.equal(0, code, out)
    assert.same({ ".keep", "e1_nothing.lua" }, ls(dir))
  end)

  it("says what is missing when the models are not set or broken", function()
    local dir = h.project({ ["versions/.keep"] = "" })
    local code, _, err = run(dir, "check")
    assert.equal(1, code)
    assert.matches("no models to compare: set models = ", err, 1, true)
    dir = h.project({ ["versions/.keep"] = "", ["app/models.lua"] = "return 42\n" }, config)
    code, _, err = run(dir, "check")
    assert.equal(1, code)
    assert.matches("must return a model", err, 1, true)
    code, _, err = run(dir, "check", "--models", "app.nothing")
    assert.equal(1, code)
    assert.matches("models: module 'app.nothing' not found", err, 1, true)
  end)

  it("the example project's models match its revisions", function()
    local code, out, err = h.run({ "-c", h.root .. "/luamig.lua", "upgrade", "head" }, { env = env })
    assert.equal(0, code, err)
    code, out = h.run({ "-c", h.root .. "/luamig.lua", "check" }, { env = env })
    assert.equal(0, code, out)
  end)
end)

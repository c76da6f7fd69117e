-- The complete op API: each op applied to the server with its effect read back
-- from the catalog, its offline (--sql) text, hostile identifiers round-tripping
-- through every op, and the CLI's non-transactional revisions.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local core = require "luamig.core"

local function failure(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- Names that break naive SQL: quotes, keywords, spaces, unicode, 63 bytes (some
-- multi-byte), things that look like qualification, comments or statement ends.
local HOSTILE = {
  'we"ird', "select", "with space", "café ☕", "MixedCase", ("n"):rep(63),
  ("é"):rep(31) .. "x", 'a"."b', "x; DROP TABLE y; --", "/* c */ $1 'q'",
}

describe("op API (live)", function()
  local db, conn, op
  h.database_each(function(name)
    db, conn = name, core.connect(h.url(name))
    op = core.ops(core.new_context(conn))
  end, function() conn:close() end)

  local function one(sql, ...)
    local row = conn:query(sql, ...)[1]
    if row == nil then return nil end
    local _, v = next(row)
    return v
  end
  -- The relkind of schema.name, or nil.
  local function relkind(schema, name)
    return one([[SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2]], schema, name)
  end
  local function regclass(schema, name)
    return core.quote_ident(schema) .. "." .. core.quote_ident(name)
  end
  -- Columns of schema.tbl in order: { name, type, notnull, default }.
  local function columns(schema, tbl)
    return conn:query([[SELECT attname AS name, format_type(atttypid, atttypmod) AS type,
                               attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS default,
                               col_description(a.attrelid, a.attnum) AS comment
                          FROM pg_attribute a LEFT JOIN pg_attrdef d
                            ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                         ORDER BY a.attnum]], regclass(schema, tbl))
  end
  local function column_names(schema, tbl)
    local out = {}
    for i, c in ipairs(columns(schema, tbl)) do out[i] = c.name end
    return out
  end
  -- conname -> { type, def, deferrable, deferred } of schema.tbl's constraints.
  local function constraints(schema, tbl)
    local out = {}
    for _, r in ipairs(conn:query([[SELECT conname, contype, pg_get_constraintdef(oid) AS def,
                                           condeferrable, condeferred
                                      FROM pg_constraint WHERE conrelid = to_regclass($1)]],
                                  regclass(schema, tbl))) do
      out[r.conname] = { type = r.contype, def = r.def, deferrable = r.condeferrable,
                         deferred = r.condeferred }
    end
    return out
  end
  local function table_comment(schema, tbl)
    return one("SELECT obj_description(to_regclass($1), 'pg_class') AS c", regclass(schema, tbl))
  end
  local function index_def(schema, name)
    return one([[SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = $2]],
               schema, name)
  end
  local function enum_labels(schema, name)
    local out = {}
    for i, r in ipairs(conn:query([[SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
                                      JOIN pg_namespace n ON n.oid = t.typnamespace
                                     WHERE n.nspname = $1 AND t.typname = $2 ORDER BY e.enumsortorder]],
                                  schema, name)) do
      out[i] = r.enumlabel
    end
    return out
  end
  local function schema_exists(name)
    return one("SELECT count(*) AS n FROM pg_namespace WHERE nspname = $1", name) == 1
  end

  describe("tables", function()
    it("create_table: columns, table constraints, comments, if_not_exists", function()
      op.create_table("users", { { "id", "bigint", primary_key = true } })
      op.create_table("orders", {
        { "id", "bigserial", primary_key = true },
        { "user_id", "bigint", nullable = false, comment = "who ordered" },
        { "code", "text", nullable = false },
        { "total", "numeric(10,2)", default = 0 },
        "CHECK (code <> '')",
        { unique = { "user_id", "code" }, name = "uq_orders_user_code", deferrable = true,
          initially = "deferred" },
        { check = "total >= 0", name = "ck_orders_total" },
        { foreign_key = { "user_id" }, referent = "users", remote_cols = { "id" },
          ondelete = "cascade", onupdate = "restrict", name = "fk_orders_user" },
      }, { comment = "one row per order" })
      assert.same({ "id", "user_id", "code", "total" }, column_names("public", "orders"))
      local cols = columns("public", "orders")
      assert.equal("who ordered", cols[2].comment)
      assert.is_true(cols[2].notnull)
      assert.equal("numeric(10,2)", cols[4].type)
      assert.equal("0", cols[4].default)
      assert.equal("one row per order", table_comment("public", "orders"))
      local c = constraints("public", "orders")
      assert.equal("PRIMARY KEY (id)", c.orders_pkey.def)
      assert.equal("UNIQUE (user_id, code) DEFERRABLE INITIALLY DEFERRED", c.uq_orders_user_code.def)
      assert.is_true(c.uq_orders_user_code.deferred)
      assert.equal("CHECK ((total >= (0)::numeric))", c.ck_orders_total.def)
      assert.equal("FOREIGN KEY (user_id) REFERENCES users(id) ON UPDATE RESTRICT ON DELETE CASCADE",
                   c.fk_orders_user.def)
      assert.equal("CHECK ((code <> ''::text))", c.orders_code_check.def)

      op.create_table("orders", { { "other", "int" } }, { if_not_exists = true })
      assert.same({ "id", "user_id", "code", "total" }, column_names("public", "orders"))
      op.create_table("pair", { { "a", "int" }, { "b", "int" }, { primary_key = { "a", "b" }, name = "pk_pair" } })
      assert.equal("PRIMARY KEY (a, b)", constraints("public", "pair").pk_pair.def)
    end)

    it("drop_table, with if_exists and cascade", function()
      op.create_table("t", { { "id", "int", primary_key = true } })
      op.execute("CREATE VIEW v AS SELECT * FROM t")
      local err = failure(op.drop_table, "t")
      assert.matches("2BP01", err, 1, true)
      op.drop_table("t", { cascade = true })
      assert.is_nil(relkind("public", "t"))
      assert.is_nil(relkind("public", "v"))
      op.drop_table("t", { if_exists = true })
    end)

    it("rename_table", function()
      op.create_table("old", { { "a", "int" } })
      op.rename_table("old", "new")
      assert.is_nil(relkind("public", "old"))
      assert.equal("r", relkind("public", "new"))
    end)

    it("create_table_comment and drop_table_comment", function()
      op.create_table("t", { { "a", "int" } })
      op.create_table_comment("t", [[it's a \ "table"]])
      assert.equal([[it's a \ "table"]], table_comment("public", "t"))
      op.drop_table_comment("t")
      assert.is_nil(table_comment("public", "t"))
    end)
  end)

  describe("columns", function()
    before_each(function() op.create_table("t", { { "id", "int" } }) end)

    it("add_column with a default, a comment and if_not_exists", function()
      op.execute("INSERT INTO t VALUES (1)")
      op.add_column("t", { "state", "text", nullable = false, default = "'new'", comment = "lifecycle" })
      op.add_column("t", { "state", "int" }, { if_not_exists = true })
      local c = columns("public", "t")[2]
      assert.same({ name = "state", type = "text", notnull = true, default = "'new'::text",
                    comment = "lifecycle" }, c)
      assert.equal("new", one("SELECT state FROM t"))
    end)

    it("drop_column, with if_exists", function()
      op.add_column("t", { "x", "int" })
      op.drop_column("t", "x")
      assert.same({ "id" }, column_names("public", "t"))
      op.drop_column("t", "x", { if_exists = true })
    end)

    it("alter_column: type with using, nullable, server_default, comment, new_name", function()
      op.add_column("t", { "n", "text", default = "'1'" })
      op.execute("INSERT INTO t VALUES (1, '42')")
      op.alter_column("t", "n", { type = "bigint", using = "n::bigint", server_default = "7",
                                  nullable = false, comment = "a number" })
      assert.same({ name = "n", type = "bigint", notnull = true, default = "7", comment = "a number" },
                  columns("public", "t")[2])
      assert.equal(42, one("SELECT n FROM t"))
      op.alter_column("t", "n", { nullable = true, server_default = false, comment = false,
                                  new_name = "m" })
      assert.same({ name = "m", type = "bigint", notnull = false }, columns("public", "t")[2])
      op.alter_column("t", "m", { server_default = 3 })
      assert.equal("3", columns("public", "t")[2].default)
    end)
  end)

  describe("constraints", function()
    before_each(function()
      op.create_table("p", { { "a", "int", nullable = false }, { "b", "int", nullable = false } })
      op.create_table("c", { { "x", "int" }, { "y", "int" } })
    end)

    it("create_primary_key and create_unique_constraint", function()
      op.create_primary_key("pk_p", "p", { "a", "b" })
      op.create_unique_constraint("uq_p_b", "p", { "b" }, { deferrable = true })
      local c = constraints("public", "p")
      assert.same({ type = "p", def = "PRIMARY KEY (a, b)", deferrable = false, deferred = false }, c.pk_p)
      assert.same({ type = "u", def = "UNIQUE (b) DEFERRABLE", deferrable = true, deferred = false }, c.uq_p_b)
    end)

    it("create_foreign_key with every option", function()
      op.create_schema("other")
      op.create_table("r", { { "a", "int" }, { "b", "int" }, { unique = { "a", "b" } } }, { schema = "other" })
      op.create_foreign_key("fk_c_r", "c", "r", { "x", "y" }, { "a", "b" },
        { referent_schema = "other", ondelete = "set null", onupdate = "cascade", match = "full",
          deferrable = true, initially = "deferred" })
      local c = constraints("public", "c").fk_c_r
      assert.equal("f", c.type)
      assert.equal("FOREIGN KEY (x, y) REFERENCES other.r(a, b) MATCH FULL ON UPDATE CASCADE "
                   .. "ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED", c.def)
      assert.is_true(c.deferred)
    end)

    it("not_valid constraints and validate_constraint", function()
      op.execute("INSERT INTO c VALUES (-1, NULL)")
      op.create_check_constraint("ck_c_x", "c", "x > 0", { not_valid = true })
      op.create_primary_key("pk_p", "p", { "a" })
      op.create_foreign_key("fk_c_p", "c", "p", { "x" }, { "a" }, { not_valid = true })
      local function valid(name)
        return one("SELECT convalidated FROM pg_constraint WHERE conname = $1", name)
      end
      assert.is_false(valid("ck_c_x"))
      assert.is_false(valid("fk_c_p"))
      local err = failure(op.validate_constraint, "ck_c_x", "c")
      assert.matches("^op%.validate_constraint: 23514: check constraint \"ck_c_x\"", err)
      op.execute("DELETE FROM c")
      op.validate_constraint("ck_c_x", "c")
      op.validate_constraint("fk_c_p", "c", { schema = "public" })
      assert.is_true(valid("ck_c_x"))
      assert.is_true(valid("fk_c_p"))
    end)

    it("create_check_constraint and drop_constraint", function()
      op.create_check_constraint("ck_c_x", "c", "x > 0 AND y IS NOT NULL")
      assert.equal("CHECK (((x > 0) AND (y IS NOT NULL)))", constraints("public", "c").ck_c_x.def)
      local err = failure(op.execute, "INSERT INTO c VALUES (0, 1)")
      assert.matches("23514", err, 1, true)
      op.drop_constraint("ck_c_x", "c", { type_ = "check" })
      assert.same({}, constraints("public", "c"))
      op.drop_constraint("ck_c_x", "c", { if_exists = true })
      op.create_primary_key("pk_p", "p", { "a" })
      op.create_foreign_key("fk", "c", "p", { "x" }, { "a" })
      op.drop_constraint("pk_p", "p", { cascade = true })
      assert.same({}, constraints("public", "c"))
    end)
  end)

  describe("indexes", function()
    before_each(function()
      op.create_table("t", { { "a", "int" }, { "b", "text" }, { "tags", "text[]" } })
    end)

    it("create_index with unique, where, using, include, if_not_exists", function()
      op.create_index("ix_t_a", "t", { "a", "lower(b)" }, { unique = true, where = "a > 0", include = { "b" } })
      op.create_index("ix_t_a", "t", { "b" }, { if_not_exists = true })
      op.create_index("ix_t_tags", "t", { "tags" }, { using = "gin" })
      assert.equal("CREATE UNIQUE INDEX ix_t_a ON public.t USING btree (a, lower(b)) INCLUDE (b) WHERE (a > 0)",
                   index_def("public", "ix_t_a"))
      assert.equal("CREATE INDEX ix_t_tags ON public.t USING gin (tags)", index_def("public", "ix_t_tags"))
    end)

    it("drop_index, with if_exists", function()
      op.create_index("ix", "t", { "a" })
      op.drop_index("ix")
      assert.is_nil(relkind("public", "ix"))
      op.drop_index("ix", { if_exists = true })
    end)

    it("runs concurrently = true only outside a transaction", function()
      local err = failure(op.create_index, "ix_c", "t", { "a" }, { concurrently = true })
      assert.equal("op.create_index: concurrently = true needs a revision with transactional = false", err)
      assert.is_nil(relkind("public", "ix_c"))
      err = failure(op.drop_index, "ix_c", { concurrently = true })
      assert.matches("op.drop_index: concurrently = true needs", err, 1, true)

      local auto = core.ops(core.new_context(conn, { transactional = false }))
      auto.create_index("ix_c", "t", { "a" }, { concurrently = true, unique = true })
      assert.equal("CREATE UNIQUE INDEX ix_c ON public.t USING btree (a)", index_def("public", "ix_c"))
      assert.is_true(one("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_c'::regclass"))
      auto.drop_index("ix_c", { concurrently = true, if_exists = true })
      assert.is_nil(relkind("public", "ix_c"))
    end)
  end)

  describe("types, schemas and extensions", function()
    it("create_enum, add_enum_value (before, after, if_not_exists), drop_enum", function()
      op.create_enum("mood", { "sad", "happy" })
      op.add_enum_value("mood", "ok", { before = "happy" })
      op.add_enum_value("mood", "elated", { after = "happy" })
      op.add_enum_value("mood", "meh")
      op.add_enum_value("mood", "ok", { if_not_exists = true })
      assert.same({ "sad", "ok", "happy", "elated", "meh" }, enum_labels("public", "mood"))
      op.create_table("t", { { "m", "mood" } })
      local err = failure(op.drop_enum, "mood")
      assert.matches("2BP01", err, 1, true)
      op.drop_enum("mood", { cascade = true })
      assert.same({}, enum_labels("public", "mood"))
      op.drop_enum("mood", { if_exists = true })
    end)

    it("create_schema (if_not_exists, authorization) and drop_schema (cascade)", function()
      op.create_schema("app")
      op.create_schema("app", { if_not_exists = true })
      op.execute("CREATE ROLE " .. core.quote_ident(db .. "_owner"))
      op.create_schema("owned", { authorization = db .. "_owner" })
      assert.equal(db .. "_owner", one("SELECT nspowner::regrole::text AS o FROM pg_namespace WHERE nspname = 'owned'"))
      op.drop_schema("owned")
      op.execute("DROP ROLE " .. core.quote_ident(db .. "_owner"))
      op.create_table("t", { { "a", "int" } }, { schema = "app" })
      local err = failure(op.drop_schema, "app")
      assert.matches("2BP01", err, 1, true)
      op.drop_schema("app", { cascade = true })
      assert.is_false(schema_exists("app"))
      op.drop_schema("app", { if_exists = true })
    end)

    it("create_extension (schema, version, if_not_exists, cascade) and drop_extension", function()
      op.create_schema("ext")
      op.create_extension("uuid-ossp", { schema = "ext", version = "1.1" })
      op.create_extension("uuid-ossp", { if_not_exists = true })
      local row = conn:query([[SELECT extversion, extnamespace::regnamespace::text AS ns
                                 FROM pg_extension WHERE extname = 'uuid-ossp']])[1]
      assert.same({ extversion = "1.1", ns = "ext" }, row)
      op.create_extension("earthdistance", { cascade = true })
      assert.equal(2, one("SELECT count(*) FROM pg_extension WHERE extname IN ('cube', 'earthdistance')"))
      op.drop_extension("cube", { cascade = true })
      op.drop_extension("uuid-ossp")
      op.drop_extension("uuid-ossp", { if_exists = true })
      assert.equal(0, one("SELECT count(*) FROM pg_extension WHERE extname IN ('cube', 'earthdistance', 'uuid-ossp')"))
    end)
  end)

  describe("data", function()
    it("query returns converted rows; params go as parameters", function()
      op.create_table("t", { { "id", "int" }, { "name", "text" }, { "ok", "boolean" }, { "r", "float8" } })
      op.execute("INSERT INTO t VALUES (1, $1, true, 0.5), (2, NULL, false, NULL)", { "it's" })
      local rows = op.query("SELECT * FROM t WHERE id >= $1 ORDER BY id", { 1 })
      assert.same({ { id = 1, name = "it's", ok = true, r = 0.5 }, { id = 2, ok = false } }, rows)
      assert.equal("integer", math.type(rows[1].id))
      assert.same({}, op.query("SELECT * FROM t WHERE false"))
      local err = failure(op.query, "SELECT nope FROM t")
      assert.matches("^op%.query: 42703: column \"nope\" does not exist", err)
    end)

    it("bulk_insert: the union of keys, DEFAULT for a missing key, typed values", function()
      op.create_table("t", { { "id", "serial" }, { "name", "text", default = "'anon'" },
                             { "n", "numeric" }, { "ok", "boolean" } })
      assert.equal(3, op.bulk_insert("t", {
        { name = "O'Brien $1", n = 1.5, ok = true },
        { n = 2 },
        { id = 10, name = "", ok = false },
      }))
      assert.same({
        { id = 1, name = "O'Brien $1", n = 1.5, ok = true },
        { id = 2, name = "anon", n = 2 },
        { id = 10, name = "", ok = false },
      }, op.query("SELECT * FROM t ORDER BY id"))
      assert.equal(0, op.bulk_insert("t", {}))
      op.bulk_insert("t", { {}, {} })
      assert.equal(5, one("SELECT count(*) FROM t"))
    end)

    it("bulk_insert batches rows and stays under 65535 parameters", function()
      op.create_table("wide", (function()
        local cols = {}
        for c = 1, 200 do cols[c] = { ("c%03d"):format(c), "int" } end
        return cols
      end)())
      local rows = {}
      for r = 1, 700 do
        local row = {}
        for c = 1, 200 do row[("c%03d"):format(c)] = r * 1000 + c end
        rows[r] = row
      end
      assert.equal(700, op.bulk_insert("wide", rows))
      assert.equal(700, one("SELECT count(*) FROM wide"))
      assert.equal(700 * 1000 + 200, one("SELECT max(c200) FROM wide"))
      -- offline: 65535 / 200 = 327 rows per statement
      local ctx = core.new_context()
      core.ops(ctx).bulk_insert("wide", rows)
      assert.equal(3, #core.script(ctx))
      ctx = core.new_context()
      local narrow = {}
      for r = 1, 1201 do narrow[r] = { a = r } end
      core.ops(ctx).bulk_insert("narrow", narrow)
      assert.equal(3, #core.script(ctx))   -- 500 rows per statement
    end)

    it("bulk_insert checks rows before sending anything", function()
      op.create_table("t", { { "a", "int" } })
      local cases = {
        { { { a = 1 }, "x" }, "row 2 must be a table" },
        { { { a = 1 }, { [1] = 2 } }, "row 2: key 1 is not a column name" },
        { { { a = {} } }, 'row 1, column "a": value must be a boolean, a number or a string' },
        { { { a = "x\0y" } }, 'row 1, column "a": value contains a NUL byte' },
        { { { [("k"):rep(64)] = 1 } }, "longer than 63 bytes" },
        { { a = 1 }, "rows must be an array" },
      }
      for _, case in ipairs(cases) do
        assert.matches(case[2], failure(op.bulk_insert, "t", case[1]), 1, true)
      end
      assert.equal(0, one("SELECT count(*) FROM t"))
    end)
  end)

  it("round-trips hostile identifiers through every op", function()
    local n = #HOSTILE
    local function name(i, k) return HOSTILE[(i + k - 1) % n + 1] end
    for i = 1, n do
      local s, tbl, col, ix, uq, pk, renamed, enum, ck, fk, ref =
        name(i, 0), name(i, 1), name(i, 2), name(i, 3), name(i, 4), name(i, 5), name(i, 6),
        name(i, 7), name(i, 8), name(i, 9), name(i, 0)
      local o = { schema = s }
      op.create_schema(s)
      op.create_enum(enum, { col, "it's", [[back\slash]] }, o)
      op.add_enum_value(enum, tbl, { schema = s, before = "it's" })
      op.create_table(tbl, { { col, "int", nullable = false, comment = col },
                             { ref, "text" },
                             { ck, "text" },
                             { check = ("%s > 0"):format(core.quote_ident(col)), name = ck } },
                      { schema = s, comment = tbl })
      op.add_column(tbl, { pk, "int", comment = pk }, o)
      op.alter_column(tbl, pk, { schema = s, type = "bigint", nullable = false, server_default = "1",
                                 comment = renamed })
      op.create_primary_key(pk, tbl, { col }, o)
      op.create_unique_constraint(uq, tbl, { col, pk }, o)
      op.create_table(fk, { { col, "int" }, { pk, "bigint" } }, o)
      op.create_foreign_key(fk, fk, tbl, { col, pk }, { col, pk }, { schema = s, referent_schema = s })
      op.create_check_constraint(ref, tbl, ("%s IS NOT NULL"):format(core.quote_ident(ref)), o)
      op.create_index(ix, tbl, { ref, ("lower(%s)"):format(core.quote_ident(ref)) },
                      { schema = s, include = { col }, where = ("%s > 0"):format(core.quote_ident(col)) })
      op.bulk_insert(tbl, { { [col] = 1, [ref] = "x", [ck] = "it's" }, { [col] = 2, [ref] = "y" } }, o)
      op.create_table_comment(tbl, ix, o)
      op.rename_table(tbl, renamed, o)
      op.alter_column(renamed, col, { schema = s, new_name = uq })

      assert.is_true(schema_exists(s))
      assert.equal("r", relkind(s, renamed))
      assert.is_nil(relkind(s, tbl))
      assert.same({ uq, ref, ck, pk }, column_names(s, renamed))
      local cols = columns(s, renamed)
      assert.equal(col, cols[1].comment)
      assert.same({ "bigint", true, "1", renamed }, { cols[4].type, cols[4].notnull, cols[4].default, cols[4].comment })
      assert.equal(ix, table_comment(s, renamed))
      local cons = constraints(s, renamed)
      for _, c in ipairs { { ck, "c" }, { pk, "p" }, { uq, "u" }, { ref, "c" } } do
        assert.equal(c[2], cons[c[1]] and cons[c[1]].type, "constraint " .. c[1])
      end
      assert.equal("f", constraints(s, fk)[fk].type)
      assert.equal("i", relkind(s, ix))
      assert.same({ col, tbl, "it's", [[back\slash]] }, enum_labels(s, enum))
      local rows = conn:query(("SELECT * FROM %s ORDER BY 1"):format(regclass(s, renamed)))
      assert.same({ [uq] = 1, [ref] = "x", [ck] = "it's", [pk] = 1 }, rows[1])
      assert.same({ [uq] = 2, [ref] = "y", [pk] = 1 }, rows[2])

      op.drop_index(ix, o)
      op.drop_constraint(fk, fk, o)
      op.drop_constraint(ref, renamed, o)
      op.drop_table_comment(renamed, o)
      op.drop_column(renamed, ck, o)
      op.drop_table(fk, o)
      op.drop_table(renamed, o)
      op.drop_enum(enum, o)
      assert.is_nil(relkind(s, ix))
      assert.is_nil(relkind(s, renamed))
      assert.same({}, enum_labels(s, enum))
      op.drop_schema(s)
      assert.is_false(schema_exists(s))
    end
  end)

  it("refuses a name over 63 bytes in every op before sending anything", function()
    local long = ("é"):rep(32)           -- 64 bytes, 32 characters
    op.create_table("t", { { "a", "int" } })
    local calls = {
      { "create_table", long, { { "a", "int" } } }, { "create_table", "t2", { { long, "int" } } },
      { "drop_table", long }, { "rename_table", "t", long }, { "create_table_comment", long, "c" },
      { "drop_table_comment", long }, { "add_column", "t", { long, "int" } }, { "drop_column", "t", long },
      { "alter_column", "t", "a", { new_name = long } }, { "alter_column", "t", long, { nullable = true } },
      { "create_primary_key", long, "t", { "a" } }, { "create_unique_constraint", "u", "t", { long } },
      { "create_foreign_key", "f", "t", long, { "a" }, { "a" } },
      { "create_check_constraint", long, "t", "a > 0" }, { "drop_constraint", long, "t" },
      { "validate_constraint", long, "t" },
      { "create_index", "i", "t", { "a" }, { include = { long } } }, { "drop_index", long },
      { "create_enum", long, { "a" } }, { "create_enum", "e", { ("v"):rep(64) } },
      { "drop_enum", long }, { "add_enum_value", "e", ("v"):rep(64) },
      { "create_schema", long }, { "drop_schema", long }, { "create_extension", long },
      { "drop_extension", long }, { "bulk_insert", long, { { a = 1 } } },
      { "create_table", "t3", { { "a", "int" } }, { schema = long } },
    }
    for _, call in ipairs(calls) do
      local err = failure(op[call[1]], table.unpack(call, 2))
      assert.matches("^op%." .. call[1] .. ": ", err)
      assert.matches("is longer than 63 bytes", err, 1, true)
    end
    assert.equal("t", one([[SELECT string_agg(relname, ',') FROM pg_class
                             WHERE relnamespace = 'public'::regnamespace]]))
    assert.equal(0, one("SELECT count(*) FROM pg_type WHERE typname = 'e'"))
  end)

  it("names the op and the problem for bad arguments", function()
    local cases = {
      { "alter_column", { "t", "a" }, "options must be a table such as { nullable = false }" },
      { "alter_column", { "t", "a", {} }, "nothing to alter" },
      { "alter_column", { "t", "a", { using = "a::int" } }, "using needs type" },
      { "alter_column", { "t", "a", { server_default = true } }, "server_default must be a SQL expression string or a number, or false" },
      { "alter_column", { "t", "a", { type = "int; DROP TABLE t" } }, [[type "int; DROP TABLE t" contains ';' or a comment]] },
      { "alter_column", { "t", "a", { nulable = true } }, "unknown option 'nulable'" },
      { "create_foreign_key", { "f", "t", "u", { "a" }, { "a", "b" } }, "local_cols has 1 columns but remote_cols has 2" },
      { "create_foreign_key", { "f", "t", "u", { "a" }, { "a" }, { ondelete = "boom" } }, "ondelete must be one of" },
      { "create_foreign_key", { "f", "t", "u", { "a" }, { "a" }, { initially = "later" } }, "initially must be 'deferred' or 'immediate'" },
      { "create_foreign_key", { "f", "t", "u", { "a" }, { "a" }, { match = "partial" } }, "match must be 'full' or 'simple'" },
      { "create_unique_constraint", { "u", "t", {} }, "columns: needs at least one column" },
      { "create_check_constraint", { "c", "t", 1 }, "condition must be a SQL expression string" },
      { "drop_constraint", { "c", "t", { type_ = "fk" } }, "type_ must be 'foreignkey'" },
      { "create_table", { "t", { { unique = { "a" }, check = "a > 0" } } }, "constraint #1 has both unique and check" },
      { "create_table", { "t", { { unique = { "a" }, colour = 1 } } }, "constraint #1: unknown field 'colour'" },
      { "create_table", { "t", { { foreign_key = { "a" } } } }, "constraint #1: foreign_key needs referent (the table)" },
      { "create_table", { "t", { { "a", "int", comment = 5 } } }, "comment must be a string" },
      { "create_index", { "i", "t", { "a" }, { using = 1 } }, "using must be an index method" },
      { "create_index", { "i", "t", { "a" }, { include = "b" } }, "include must be a table" },
      { "add_enum_value", { "e", "x", { before = "a", after = "b" } }, "give before or after, not both" },
      { "create_enum", { "e", { 1 } }, "enum value must be a string" },
      { "create_extension", { "x", { version = 1 } }, "version must be a string" },
      { "create_schema", { "s", { schema = "x" } }, "unknown option 'schema'" },
      { "create_table_comment", { "t" }, "comment must be a string" },
      { "rename_table", { "t" }, "new table name must be a string" },
      { "safe", { "set-not-null" }, 'expects a rule id and a reason: op.safe("rule-id", "why")' },
      { "safe", { "set-not-null", "  " }, "expects a rule id and a reason" },
      { "create_check_constraint", { "c", "t", "a > 0", { not_valid = "yes" } }, "not_valid must be a boolean" },
    }
    for _, case in ipairs(cases) do
      local err = failure(op[case[1]], table.unpack(case[2]))
      assert.matches("op." .. case[1] .. ": " .. case[3], err, 1, true)
    end
  end)
end)

describe("op API (offline)", function()
  local ctx, op
  before_each(function()
    ctx = core.new_context(nil, { transactional = false })
    op = core.ops(ctx)
  end)

  it("renders each op as the statements a live run sends", function()
    op.create_table("orders", {
      { "id", "bigserial", primary_key = true },
      { "user_id", "bigint", nullable = false, comment = "who" },
      { "total", "numeric(10,2)", default = 0 },
      { unique = { "user_id", "total" }, name = "uq_x", deferrable = true, initially = "deferred" },
      { check = "total >= 0", name = "ck_total" },
      { foreign_key = { "user_id" }, referent = "users", remote_cols = { "id" }, ondelete = "cascade" },
    }, { schema = "shop", comment = [[it's \ orders]], if_not_exists = true })
    op.drop_table("orders", { schema = "shop", if_exists = true, cascade = true })
    op.rename_table("a", "b", { schema = "s" })
    op.create_table_comment("a", "hi")
    op.drop_table_comment("a", { schema = "s" })
    op.add_column("t", { "c", "int", comment = "cc" }, { if_not_exists = true })
    op.drop_column("t", "c", { if_exists = true, cascade = true })
    op.alter_column("t", "c", { type = "bigint", using = "c::bigint", nullable = false,
                                server_default = "0", comment = false, new_name = "d" })
    op.alter_column("t", "c", { server_default = false, schema = "s" })
    op.create_primary_key("pk", "t", { "a", "b" })
    op.create_unique_constraint("uq", "t", { "a" }, { deferrable = false })
    op.create_foreign_key("fk", "t", "u", { "a" }, { "id" }, { referent_schema = "x",
      ondelete = "set null", onupdate = "CASCADE", match = "full", deferrable = true, initially = "immediate" })
    op.create_check_constraint("ck", "t", "a > 0", { schema = "s" })
    op.create_check_constraint("ck", "t", "a > 0", { not_valid = true })
    op.create_foreign_key("fk", "t", "u", { "a" }, { "id" }, { not_valid = true })
    op.validate_constraint("fk", "t", { schema = "s" })
    op.safe("set-not-null", "tiny table")
    op.drop_constraint("ck", "t", { type_ = "check", if_exists = true })
    op.create_index("ix", "t", { "a", "lower(b)" }, { unique = true, using = "btree", include = { "c" },
      concurrently = true, if_not_exists = true, where = "a > 0", schema = "s" })
    op.drop_index("ix", { concurrently = true, if_exists = true, schema = "s" })
    op.create_enum("mood", { "sad", "it's" }, { schema = "s" })
    op.drop_enum("mood", { if_exists = true, cascade = true })
    op.add_enum_value("mood", "happy", { after = "sad", if_not_exists = true })
    op.add_enum_value("mood", "meh", { before = "sad", schema = "s" })
    op.create_schema("app", { if_not_exists = true, authorization = "bob" })
    op.drop_schema("app", { if_exists = true, cascade = true })
    op.create_extension("uuid-ossp", { schema = "ext", version = "1.1", if_not_exists = true, cascade = true })
    op.drop_extension("uuid-ossp", { if_exists = true })
    op.bulk_insert("t", { { a = 1, b = "x" }, { a = 2.5 }, { b = [[y\]], c = true } }, { schema = "s" })
    op.bulk_insert("t", { {}, {} })
    assert.same({
      'CREATE TABLE IF NOT EXISTS "shop"."orders" (\n'
        .. '    "id" bigserial PRIMARY KEY,\n'
        .. '    "user_id" bigint NOT NULL,\n'
        .. '    "total" numeric(10,2) DEFAULT 0,\n'
        .. '    CONSTRAINT "uq_x" UNIQUE ("user_id", "total") DEFERRABLE INITIALLY DEFERRED,\n'
        .. '    CONSTRAINT "ck_total" CHECK (total >= 0),\n'
        .. '    FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE\n'
        .. ');',
      [[COMMENT ON TABLE "shop"."orders" IS E'it''s \\ orders';]],
      [[COMMENT ON COLUMN "shop"."orders"."user_id" IS 'who';]],
      [[DROP TABLE IF EXISTS "shop"."orders" CASCADE;]],
      [[ALTER TABLE "s"."a" RENAME TO "b";]],
      [[COMMENT ON TABLE "a" IS 'hi';]],
      [[COMMENT ON TABLE "s"."a" IS NULL;]],
      [[ALTER TABLE "t" ADD COLUMN IF NOT EXISTS "c" int;]],
      [[COMMENT ON COLUMN "t"."c" IS 'cc';]],
      [[ALTER TABLE "t" DROP COLUMN IF EXISTS "c" CASCADE;]],
      'ALTER TABLE "t"\n'
        .. '    ALTER COLUMN "c" DROP DEFAULT,\n'
        .. '    ALTER COLUMN "c" TYPE bigint USING c::bigint,\n'
        .. '    ALTER COLUMN "c" SET NOT NULL,\n'
        .. '    ALTER COLUMN "c" SET DEFAULT 0;',
      [[COMMENT ON COLUMN "t"."c" IS NULL;]],
      [[ALTER TABLE "t" RENAME COLUMN "c" TO "d";]],
      [[ALTER TABLE "s"."t" ALTER COLUMN "c" DROP DEFAULT;]],
      [[ALTER TABLE "t" ADD CONSTRAINT "pk" PRIMARY KEY ("a", "b");]],
      [[ALTER TABLE "t" ADD CONSTRAINT "uq" UNIQUE ("a") NOT DEFERRABLE;]],
      [[ALTER TABLE "t" ADD CONSTRAINT "fk" FOREIGN KEY ("a") REFERENCES "x"."u" ("id") MATCH FULL ]]
        .. [[ON DELETE SET NULL ON UPDATE CASCADE DEFERRABLE INITIALLY IMMEDIATE;]],
      [[ALTER TABLE "s"."t" ADD CONSTRAINT "ck" CHECK (a > 0);]],
      [[ALTER TABLE "t" ADD CONSTRAINT "ck" CHECK (a > 0) NOT VALID;]],
      [[ALTER TABLE "t" ADD CONSTRAINT "fk" FOREIGN KEY ("a") REFERENCES "u" ("id") NOT VALID;]],
      [[ALTER TABLE "s"."t" VALIDATE CONSTRAINT "fk";]],
      [[ALTER TABLE "t" DROP CONSTRAINT IF EXISTS "ck";]],
      [[CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "ix" ON "s"."t" USING "btree" ("a", lower(b)) ]]
        .. [[INCLUDE ("c") WHERE a > 0;]],
      [[DROP INDEX CONCURRENTLY IF EXISTS "s"."ix";]],
      [[CREATE TYPE "s"."mood" AS ENUM ('sad', 'it''s');]],
      [[DROP TYPE IF EXISTS "mood" CASCADE;]],
      [[ALTER TYPE "mood" ADD VALUE IF NOT EXISTS 'happy' AFTER 'sad';]],
      [[ALTER TYPE "s"."mood" ADD VALUE 'meh' BEFORE 'sad';]],
      [[CREATE SCHEMA IF NOT EXISTS "app" AUTHORIZATION "bob";]],
      [[DROP SCHEMA IF EXISTS "app" CASCADE;]],
      [[CREATE EXTENSION IF NOT EXISTS "uuid-ossp" SCHEMA "ext" VERSION '1.1' CASCADE;]],
      [[DROP EXTENSION IF EXISTS "uuid-ossp";]],
      'INSERT INTO "s"."t" ("a", "b", "c") VALUES\n'
        .. "    ('1', 'x', DEFAULT),\n"
        .. "    ('2.5', DEFAULT, DEFAULT),\n"
        .. [[    (DEFAULT, E'y\\', 'true');]],
      [[INSERT INTO "t" DEFAULT VALUES;]],
      [[INSERT INTO "t" DEFAULT VALUES;]],
    }, core.script(ctx))
  end)

  it("builds statements longer than Lua's buffer (several kilobytes) whole", function()
    local cols, names, quoted = {}, {}, {}
    for i = 1, 40 do
      names[i] = ("column_%02d_"):format(i) .. ("x"):rep(50)
      quoted[i] = '"' .. names[i] .. '"'
      cols[i] = { names[i], "int", primary_key = i <= 30, comment = ("c"):rep(60) }
    end
    cols[41] = { unique = { table.unpack(names, 1, 30) }, deferrable = true, initially = "deferred" }
    cols[42] = { foreign_key = { table.unpack(names, 1, 30) }, referent = "other",
                 remote_cols = { table.unpack(names, 1, 30) }, match = "full", initially = "immediate" }
    op.create_table("wide", cols)
    local script = core.script(ctx)
    local defs = {}
    for i = 1, 40 do defs[i] = quoted[i] .. " int" end
    local list = table.concat(quoted, ", ", 1, 30)
    defs[41] = "UNIQUE (" .. list .. ") DEFERRABLE INITIALLY DEFERRED"
    defs[42] = "FOREIGN KEY (" .. list .. ') REFERENCES "other" (' .. list .. ") MATCH FULL INITIALLY IMMEDIATE"
    defs[43] = "PRIMARY KEY (" .. list .. ")"
    assert.equal('CREATE TABLE "wide" (\n    ' .. table.concat(defs, ",\n    ") .. "\n);", script[1])
    assert.equal(41, #script)
    assert.equal(('COMMENT ON COLUMN "wide".%s IS \'%s\';'):format(quoted[40], ("c"):rep(60)), script[41])
  end)

  it("quotes hostile identifiers the one way", function()
    for _, n in ipairs(HOSTILE) do
      op.create_index(n, n, { n }, { schema = n, include = { n } })
    end
    local script = core.script(ctx)
    for i, n in ipairs(HOSTILE) do
      local q = '"' .. n:gsub('"', '""') .. '"'
      assert.equal(("CREATE INDEX %s ON %s.%s (%s) INCLUDE (%s);"):format(q, q, q, q, q), script[i])
    end
  end)

  it("refuses op.query, and concurrently in a transactional context", function()
    local err = failure(op.query, "SELECT 1")
    assert.equal("op.query needs a live database; offline --sql cannot run data queries", err)
    local tx = core.ops(core.new_context())
    err = failure(tx.create_index, "i", "t", { "a" }, { concurrently = true })
    assert.equal("op.create_index: concurrently = true needs a revision with transactional = false", err)
    assert.same({}, core.script(ctx))
  end)
end)

describe("docs/operations.md", function()
  it("is what scripts/opdocs.lua renders from the offline renderer", function()
    local render = dofile(h.root .. "/scripts/opdocs.lua")
    local f = assert(io.open(h.root .. "/docs/operations.md", "rb"))
    local have = f:read("a")
    f:close()
    assert.equal(render(), have, "docs/operations.md is stale: LUA_CPATH='build/lib/?.so;;' LUA_PATH='lua/?.lua;;' "
                 .. "lua5.4 scripts/opdocs.lua > docs/operations.md")
  end)

  it("documents every op the API has", function()
    local f = assert(io.open(h.root .. "/docs/operations.md", "rb"))
    local doc = f:read("a")
    f:close()
    local names = {}
    for name in pairs(core.ops(core.new_context())) do names[#names + 1] = name end
    table.sort(names)
    assert.is_true(#names >= 25)
    for _, name in ipairs(names) do
      assert.truthy(doc:find("### `op." .. name .. "`", 1, true), "op." .. name .. " is not documented")
    end
  end)
end)

describe("non-transactional revisions #cli", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  local function project()
    return h.project({
      ["versions/a1_table.lua"] = h.revision("a1", nil,
        [[op.create_table("t", { { "a", "int" } })]], [[op.drop_table("t")]], { message = "table" }),
      ["versions/b2_index.lua"] = h.revision("b2", "a1",
        [[op.create_index("ix_t_a", "t", { "a" }, { concurrently = true })]],
        [[op.drop_index("ix_t_a", { concurrently = true })]],
        { message = "index", transactional = false }),
    })
  end

  it("runs CREATE INDEX CONCURRENTLY outside a transaction and says so", function()
    local dir = project()
    local code, out, err = h.run({ "upgrade" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.matches("Running upgrade a1 -> b2, index (non-transactional)", out, 1, true)
    assert.equal("t", h.psql(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_t_a'::regclass"))
    assert.equal("b2", h.psql(db, "SELECT version_num FROM luamig_version"))
    code, out, err = h.run({ "downgrade", "-1" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.matches("(non-transactional)", out, 1, true)
    assert.equal("", h.psql(db, "SELECT to_regclass('ix_t_a')"))
    code, out = h.run({ "upgrade", "--sql" }, { cwd = dir, env = env })
    assert.equal(0, code)
    assert.matches('CREATE INDEX CONCURRENTLY "ix_t_a" ON "t" ("a");', out, 1, true)
  end)

  it("refuses concurrently = true in a transactional revision, naming the line", function()
    local dir = h.project({
      ["versions/a1_bad.lua"] = h.revision("a1", nil,
        'op.create_table("t", { { "a", "int" } })\n  op.create_index("ix", "t", { "a" }, { concurrently = true })',
        "", { message = "bad" }),
    })
    local code, _, err = h.run({ "upgrade" }, { cwd = dir, env = env })
    assert.equal(1, code)
    assert.matches("upgrade a1 failed: versions/a1_bad.lua:%d+: op.create_index: concurrently = true "
                   .. "needs a revision with transactional = false", err)
    assert.equal("", h.psql(db, "SELECT to_regclass('t')"))
    code, _, err = h.run({ "upgrade", "--sql" }, { cwd = dir, env = env })
    assert.equal(1, code)
    assert.matches("concurrently = true needs a revision with transactional = false", err, 1, true)
  end)

  it("applies and reverts every op through the command, and renders it with --sql", function()
    local up = [[
op.create_schema("app", { if_not_exists = true })
  op.create_extension("pg_trgm", { schema = "app" })
  op.create_enum("mood", { "sad", "happy" }, { schema = "app" })
  op.add_enum_value("mood", "ok", { schema = "app", before = "happy" })
  op.create_table("users", {
    { "id", "bigserial", primary_key = true },
    { "email", "text", nullable = false, comment = "login" },
    { "mood", "app.mood" },
    { check = "email <> ''", name = "ck_users_email" },
  }, { schema = "app", comment = "people" })
  op.create_table("posts", { { "id", "bigserial", primary_key = true }, { "user_id", "bigint" },
                             { "title", "text" } }, { schema = "app" })
  op.add_column("posts", { "body", "text", default = "''" }, { schema = "app" })
  op.alter_column("posts", "title", { schema = "app", type = "varchar(200)", nullable = false,
                                      server_default = "'untitled'", comment = "shown", new_name = "headline" })
  op.create_unique_constraint("uq_users_email", "users", { "email" }, { schema = "app" })
  op.create_foreign_key("fk_posts_user", "posts", "users", { "user_id" }, { "id" },
                        { schema = "app", referent_schema = "app", ondelete = "cascade" })
  op.create_check_constraint("ck_posts_headline", "posts", "headline <> ''", { schema = "app" })
  op.create_index("ix_posts_headline", "posts", { "headline" },
                  { schema = "app", using = "gin", where = "body <> ''" })
  op.create_table_comment("posts", "writing", { schema = "app" })
  op.rename_table("posts", "articles", { schema = "app" })
  op.bulk_insert("users", { { email = "a@x", mood = "happy" }, { email = "b@x" } }, { schema = "app" })
  local rows = op.query("SELECT id, email FROM app.users ORDER BY id")
  op.bulk_insert("articles", { { user_id = rows[1].id, headline = rows[2].email } }, { schema = "app" })]]
    up = up:gsub('using = "gin", ', 'using = "btree", ')
    local down = [[
op.drop_index("ix_posts_headline", { schema = "app" })
  op.drop_constraint("fk_posts_user", "articles", { schema = "app" })
  op.drop_table_comment("articles", { schema = "app" })
  op.drop_column("articles", "body", { schema = "app" })
  op.drop_table("articles", { schema = "app" })
  op.drop_table("users", { schema = "app" })
  op.drop_enum("mood", { schema = "app" })
  op.drop_extension("pg_trgm")
  op.drop_schema("app")]]
    local dir = h.project({ ["versions/a1_all.lua"] = h.revision("a1", nil, up, down, { message = "all" }) })
    local code, out, err = h.run({ "upgrade" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.equal("b@x", h.psql(db, "SELECT headline FROM app.articles"))
    assert.equal("happy,sad", h.psql(db, "SELECT string_agg(coalesce(mood::text, 'sad'), ',' ORDER BY id) FROM app.users"))
    assert.equal("shown", h.psql(db, "SELECT col_description('app.articles'::regclass, 3)"))
    assert.equal("writing", h.psql(db, "SELECT obj_description('app.articles'::regclass, 'pg_class')"))
    assert.equal("fk_posts_user", h.psql(db, [[SELECT conname FROM pg_constraint
                                               WHERE conrelid = 'app.articles'::regclass AND contype = 'f']]))
    code, out, err = h.run({ "downgrade", "base" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.equal("0", h.psql(db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'"))
    -- offline, op.query has no answer: the error says so
    code, out, err = h.run({ "upgrade", "--sql" }, { cwd = dir, env = env })
    assert.equal(1, code)
    assert.matches("versions/a1_all%.lua:%d+: op%.query needs a live database; offline %-%-sql cannot run data queries", err)
    local offline = up:gsub("\n  local rows = .*$", "")
    dir = h.project({ ["versions/a1_all.lua"] = h.revision("a1", nil, offline, down, { message = "all" }) })
    code, out, err = h.run({ "upgrade", "--sql" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.matches('\nALTER TABLE "app"."posts" RENAME TO "articles";\nINSERT INTO "app"."users" '
                   .. "(\"email\", \"mood\") VALUES\n    ('a@x', 'happy'),\n    ('b@x', DEFAULT);\n", out, 1, true)
    code, out, err = h.run({ "downgrade", "a1:base", "--sql" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.matches('DROP SCHEMA "app";', out, 1, true)
  end)

  it("keeps server NOTICEs quiet and shows WARNINGs", function()
    local dir = h.project({
      ["versions/a1_noisy.lua"] = h.revision("a1", nil,
        'op.drop_table("nope", { if_exists = true })\n'
          .. '  op.create_schema("public", { if_not_exists = true })\n'
          .. [[  op.execute("DO $$ BEGIN RAISE NOTICE 'chatter'; RAISE WARNING 'careful: %', 42; END $$")]],
        "", { message = "noisy" }),
    })
    local code, out, err = h.run({ "upgrade" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.is_nil(err:find("NOTICE", 1, true))
    assert.is_nil(err:find("chatter", 1, true))
    assert.is_nil(err:find("skipping", 1, true))
    assert.matches("luamig: warning: server: careful: 42\n", err, 1, true)
    assert.matches("Running upgrade  -> a1, noisy", out, 1, true)
  end)
end)

-- Least privilege: a role that owns the schema (and may create in the
-- database) but is no superuser runs every op of docs/operations.md that
-- needs no superuser, both ways, and lint and --backup; CREATE EXTENSION of
-- an untrusted extension fails in one line that names the privilege.
local h = require "helpers"
local topo = require "topology"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

-- Every op, as the docs show them (r01, transactional) ...
local UP1 = [[
  op.create_schema("billing", { if_not_exists = true })
  op.create_extension("citext", { if_not_exists = true })
  op.create_enum("order_status", { "new", "paid", "shipped" })
  op.add_enum_value("order_status", "refunded", { after = "paid", if_not_exists = true })
  op.create_table("users", {
    { "id", "bigserial", primary_key = true },
    { "email", "citext" },
    { "age", "text" },
    { "nick", "text", default = "'x'" },
  })
  op.add_column("users", { "last_login", "timestamptz", comment = "UTC" })
  op.alter_column("users", "age", { type = "integer", using = "age::integer", nullable = false,
                                    server_default = "0" })
  op.alter_column("users", "nick", { server_default = false, nullable = true, new_name = "nickname" })
  op.drop_column("users", "last_login")
  op.create_unique_constraint("uq_users_email", "users", { "email" })
  op.create_check_constraint("ck_users_email", "users", "email IS NOT NULL", { not_valid = true })
  op.validate_constraint("ck_users_email", "users")
  op.create_table("orders", {
    { "id", "bigserial", primary_key = true },
    { "user_id", "bigint", nullable = false },
    { "status", "order_status", nullable = false, default = "'new'", comment = "new, paid or shipped" },
    { "total", "numeric(10,2)", nullable = false, default = 0 },
    { unique = { "user_id", "status" }, name = "uq_orders_user_status" },
  }, { comment = "One row per order" })
  op.create_foreign_key("fk_orders_user", "orders", "users", { "user_id" }, { "id" },
                        { ondelete = "cascade", deferrable = true, initially = "deferred" })
  op.create_check_constraint("ck_orders_total", "orders", "total >= 0")
  op.create_table_comment("orders", "One row per order; see the billing docs")
  op.drop_table_comment("orders")
  op.create_table("memberships", { { "user_id", "bigint" }, { "team_id", "bigint" } })
  op.create_primary_key("pk_memberships", "memberships", { "user_id", "team_id" })
  op.create_table("posts", { { "id", "bigint" }, { "tags", "text[]" } }, { schema = "billing" })
  op.create_index("ix_posts_tags", "posts", { "tags" }, { using = "gin", schema = "billing" })
  op.create_index("ix_users_email", "users", { "lower(email)" }, { unique = true, where = "age > 0" })
  op.rename_table("memberships", "teams_users")
  op.bulk_insert("users", { { email = "A@x", age = 1 }, { email = "b@x", age = 2 } })
  op.execute("UPDATE users SET nickname = $1 WHERE age = $2", { "first", 1 })
  for _, row in ipairs(op.query("SELECT id, email FROM users WHERE email <> lower(email)") or {}) do
    op.execute("UPDATE users SET email = $1 WHERE id = $2", { row.email:lower(), row.id })
  end]]
local DOWN1 = [[
  op.drop_index("ix_users_email")
  op.drop_index("ix_posts_tags", { schema = "billing" })
  op.drop_table("posts", { schema = "billing" })
  op.drop_table("teams_users")
  op.drop_constraint("fk_orders_user", "orders")
  op.drop_table("orders")
  op.drop_table("users", { if_exists = true })
  op.drop_enum("order_status")
  op.drop_extension("citext")
  op.drop_schema("billing", { cascade = true })]]
-- ... and the ones that need no transaction (r02)
local UP2 = 'op.create_index("ix_orders_user", "orders", { "user_id" }, { include = { "total" }, concurrently = true })'
local DOWN2 = 'op.drop_index("ix_orders_user", { concurrently = true, if_exists = true })'

describe("as a schema owner that is no superuser #cli", function()
  local role = ("luamig_owner_%x"):format(math.random(0, 0x7fffffff))
  lazy_setup(function() h.psql("postgres", ('CREATE ROLE "%s" LOGIN NOSUPERUSER'):format(role)) end)
  lazy_teardown(function() h.psql("postgres", ('DROP ROLE IF EXISTS "%s"'):format(role)) end)

  local db, env
  h.database_each(function(name)
    db = name
    h.psql(db, ('ALTER SCHEMA public OWNER TO "%s"; GRANT CREATE ON DATABASE "%s" TO "%s"')
      :format(role, db, role))
    env = { DATABASE_URL = topo.url(topo.primary(), db, nil, role) }
  end)

  it("runs every op that needs no superuser, up and down, and lint and --backup", function()
    local dir = h.project({
      ["versions/r01.lua"] = h.revision("r01", nil, UP1, DOWN1),
      ["versions/r02.lua"] = h.revision("r02", "r01", UP2, DOWN2, { transactional = false }),
    })
    local code, out, err = h.run({ "upgrade", "r01", "--lint", "off" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    code, out, err = h.run({ "lint" }, { cwd = dir, env = env })   -- the pending r02: connects
    assert.truthy(code == 0 or code == 2, out .. err)
    code, out, err = h.run({ "upgrade", "head", "--backup", dir .. "/before.sql", "--lint", "off" },
                         { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.matches("Backed up the database to", out .. err, 1, true)
    local f = assert(io.open(dir .. "/before.sql"))
    local dump = f:read("a")
    f:close()
    assert.matches("CREATE TABLE public.orders", dump, 1, true)
    assert.equal(role, h.psql(db, "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'"))
    assert.equal("a@x,b@x|first", h.psql(db, "SELECT string_agg(email::text, ',' ORDER BY id), "
      .. "max(nickname) FROM users"))
    assert.equal("ix_orders_user", h.psql(db, "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_orders_user'"))
    code, _, err = h.run({ "downgrade", "base" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.equal("0", h.psql(db, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
      .. "c.relnamespace WHERE n.nspname IN ('public', 'billing') AND c.relname NOT LIKE 'luamig%'"))
  end)

  it("names the privilege when an untrusted extension needs a superuser, in one line", function()
    local dir = h.project({
      ["versions/r01.lua"] = h.revision("r01", nil, 'op.create_table("t", { { "id", "int" } })\n'
        .. '  op.create_extension("file_fdw")', "") })
    local code, out, err = h.run({ "upgrade", "head", "--lint", "off" }, { cwd = dir, env = env })
    assert.equal(1, code)
    assert.equal(1, select(2, err:gsub("\n", "")), err)
    assert.matches('upgrade r01 failed: versions/r01.lua:7: op.create_extension: 42501: permission '
      .. 'denied to create extension "file_fdw" (HINT: Must be superuser to create this extension.)',
      err, 1, true)
    assert.not_matches("Upgraded", out, 1, true)
    assert.equal("|0", h.psql(db, "SELECT to_regclass('t'), (SELECT count(*) FROM luamig_version)"))
  end)
end)

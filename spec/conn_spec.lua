-- luamig.core connections: connect, exec/query with parameters, one-line
-- errors with SQLSTATE, closed and lost handles, password redaction.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local core = require "luamig.core"

describe("luamig.core connection", function()
  local db, conn
  h.database_each(function(name) db, conn = name, core.connect(h.url(name)) end,
    function() conn:close() end)

  it("connects to the URL's database and names itself", function()
    local row = conn:query("SELECT current_database() AS db, current_setting('application_name') AS app")[1]
    assert.equal(db, row.db)
    assert.equal("luamig", row.app)
    assert.matches("^luamig%.conn %(.*/" .. db:gsub("%p", "%%%0") .. "%)$", tostring(conn))
  end)

  it("lets the URL's own settings win over luamig's defaults", function()
    local c <close> = core.connect(h.url(db) .. "&application_name=mine")
    assert.equal("mine", c:query("SHOW application_name")[1].application_name)
  end)

  it("uses libpq's defaults (PG* environment) without a URL", function()
    local c <close> = core.connect()
    assert.equal(os.getenv("PGUSER") or "postgres", c:query("SELECT current_user AS u")[1].u)
  end)

  it("returns affected row counts from exec", function()
    assert.equal(0, conn:exec("CREATE TABLE t (a int)"))
    assert.equal(3, conn:exec("INSERT INTO t SELECT generate_series(1, 3)"))
    assert.equal(2, conn:exec("DELETE FROM t WHERE a > $1", 1))
  end)

  it("sends values as parameters, never as SQL text", function()
    conn:exec("CREATE TABLE t (id int, s text, b boolean, n numeric, f float8, big int8)")
    local hostile = [[it's $1 "x" \ ');DROP TABLE t;--]]
    assert.equal(1, conn:exec("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6)",
                              7, hostile, true, 1.25, 2.0, math.maxinteger))
    assert.equal(1, conn:exec("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6)",
                              3.0, nil, false, nil, nil, math.mininteger))
    assert.equal(hostile, h.psql(db, "SELECT s FROM t WHERE id = 7"))
    assert.equal("1", h.psql(db, "SELECT count(*) FROM t WHERE id = 3 AND s IS NULL AND NOT b"))
  end)

  it("converts query results by column type; NULL leaves the field out", function()
    local rows = conn:query([[SELECT 1::int2 AS i2, 2::int4 AS i4, 9223372036854775807::int8 AS i8,
                                     1.5::float4 AS f4, 10::float8 AS f8, 12.50::numeric AS num,
                                     'NaN'::float8 AS nan, true AS yes, false AS no,
                                     'txt'::text AS t, '2024-01-02'::date AS d, NULL::int AS missing]])
    assert.equal(1, #rows)
    local r = rows[1]
    assert.equal("integer", math.type(r.i2))
    assert.equal(2, r.i4)
    assert.equal(math.maxinteger, r.i8)
    assert.equal("float", math.type(r.f4))
    assert.equal(1.5, r.f4)
    assert.equal("float", math.type(r.f8))
    assert.equal(10.0, r.f8)
    assert.equal(12.5, r.num)
    assert.is_true(r.nan ~= r.nan)
    assert.is_true(r.yes)
    assert.is_false(r.no)
    assert.equal("txt", r.t)
    assert.equal("2024-01-02", r.d)
    assert.is_nil(r.missing)
    assert.same({}, conn:query("SELECT 1 AS x WHERE false"))
  end)

  it("raises one line with SQLSTATE, detail, hint and the statement", function()
    conn:exec("CREATE TABLE t (a int PRIMARY KEY)")
    conn:exec("INSERT INTO t VALUES (1)")
    local ok, err = pcall(conn.exec, conn, "INSERT INTO t\n   VALUES ($1)", 1)
    assert.is_false(ok)
    assert.equal('23505: duplicate key value violates unique constraint "t_pkey" '
                 .. "(DETAIL: Key (a)=(1) already exists.); SQL: INSERT INTO t VALUES ($1)", err)
    ok, err = pcall(conn.query, conn, "SELECT no_such_function(1)")
    assert.is_false(ok)
    assert.matches("^42883: function no_such_function%(integer%) does not exist %(HINT: No function matches", err)
    assert.matches("; SQL: SELECT no_such_function%(1%)$", err)
    assert.is_nil(err:find("\n"))
    -- still usable afterwards
    assert.equal(1, conn:query("SELECT 1 AS one")[1].one)
  end)

  it("rejects values it cannot send", function()
    assert.has_error(function() conn:exec("SELECT $1", {}) end)
    assert.has_error(function() conn:exec("SELECT $1", "a\0b") end)
    assert.has_error(function() conn:exec("SELECT 1\0") end)
  end)

  it("closes idempotently, by close(), <close> and __gc", function()
    local c = core.connect(h.url(db))
    c:close()
    c:close()
    assert.equal("luamig.conn (closed)", tostring(c))
    local ok, err = pcall(c.exec, c, "SELECT 1")
    assert.is_false(ok)
    assert.matches("closed connection", err)

    local function backends(app)
      return tonumber(h.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" .. app .. "'"))
    end
    local function wait_gone(app)
      for _ = 1, 100 do
        if backends(app) == 0 then return true end
        conn:exec("SELECT pg_sleep(0.02)")
      end
      return false
    end
    do
      local scoped <close> = core.connect(h.url(db) .. "&application_name=scoped")
      assert.equal(1, backends("scoped"))
    end
    assert.is_true(wait_gone("scoped"))
    local dropped = core.connect(h.url(db) .. "&application_name=dropped")
    assert.equal(1, backends("dropped"))
    dropped = nil  -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.is_true(wait_gone("dropped"))
  end)

  it("reports a lost connection as an error, not a crash", function()
    local c = core.connect(h.url(db) .. "&application_name=victim")
    conn:exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'")
    local ok, err = pcall(c.exec, c, "SELECT 1")
    assert.is_false(ok)
    assert.matches("connection to the server was lost", err)
    assert.matches("SQL: SELECT 1$", err)
    ok, err = pcall(c.query, c, "SELECT 2")
    assert.is_false(ok)
    assert.matches("^08006: connection to the server was lost", err)
    c:close()
  end)
end)

describe("luamig.core connect failures", function()
  it("redacts the password and keeps libpq's reason on one line", function()
    local ok, err = pcall(core.connect, "postgresql://bob:s3cret@/nodb?host=/nonexistent&password=zz")
    assert.is_false(ok)
    assert.matches("^could not connect to postgresql://bob:%*%*%*@/nodb%?host=/nonexistent&password=%*%*%*: ", err)
    assert.is_nil(err:find("s3cret", 1, true))
    assert.is_nil(err:find("zz", 1, true))
    assert.is_nil(err:find("\n"))
    ok, err = pcall(core.connect, "host=/nonexistent password='se cret' dbname=x")
    assert.is_false(ok)
    assert.matches("^could not connect to host=/nonexistent password=%*%*%* dbname=x: ", err)
  end)
end)

describe("luamig.core.redact", function()
  it("masks passwords in URLs and key=value strings", function()
    assert.equal("postgresql://user:***@host/db", core.redact("postgresql://user:pass@host/db"))
    assert.equal("postgres://user:***@host:5432/db?sslmode=require",
                 core.redact("postgres://user:p%40ss@host:5432/db?sslmode=require"))
    assert.equal("postgresql://host/db?user=u&password=***&sslmode=disable",
                 core.redact("postgresql://host/db?user=u&password=secret&sslmode=disable"))
    assert.equal("host=h password=*** dbname=d", core.redact("host=h password=secret dbname=d"))
    assert.equal("host=h password=*** dbname=d", core.redact("host=h password='se cret' dbname=d"))
    assert.equal("password = *** user=u", core.redact([[password = 'it\'s' user=u]]))
    assert.equal("application_name='password=x' password=***",
                 core.redact("application_name='password=x' password=y"))
  end)

  it("leaves strings without a password alone", function()
    for _, s in ipairs { "postgresql://user@host/db", "postgres:///db?host=/tmp", "host=h dbname=d",
                         "mydb", "" } do
      assert.equal(s, core.redact(s))
    end
  end)
end)

describe("luamig.core.quote_ident", function()
  it("always quotes and doubles inner quotes", function()
    assert.equal('"users"', core.quote_ident("users"))
    assert.equal('"we""ird"', core.quote_ident('we"ird'))
    assert.equal('"café"', core.quote_ident("café"))
    assert.equal('"' .. ("x"):rep(63) .. '"', core.quote_ident(("x"):rep(63)))
  end)

  it("rejects empty and over-long names", function()
    local ok, err = pcall(core.quote_ident, "")
    assert.is_false(ok)
    assert.matches("empty identifier", err, 1, true)
    ok, err = pcall(core.quote_ident, ("x"):rep(64))
    assert.is_false(ok)
    assert.matches('identifier "' .. ("x"):rep(64) .. '" is longer than 63 bytes', err, 1, true)
  end)
end)

describe("permission denied for schema #cli", function()
  local db, role
  before_each(function()
    db = h.new_database()
    role = ("no create %x"):format(math.random(0, 0x7fffffff))
    h.psql("postgres", ('CREATE ROLE "%s" LOGIN'):format(role))
  end)
  after_each(function()
    h.drop_database(db)
    h.psql("postgres", ('DROP ROLE IF EXISTS "%s"'):format(role))
  end)

  it("names the user and the privilege, and prints the GRANT that fixes it", function()
    -- PostgreSQL 15 no longer grants CREATE on public to every role.
    local dir = h.project({
      ["versions/a1_t.lua"] = h.revision("a1", nil, [[op.create_table("t", { { "a", "int" } })]],
                                         [[op.drop_table("t")]], { message = "t" }),
    })
    local url = h.url(db):gsub("([?&]user=)[^&]*", "%1" .. role:gsub(" ", "%%%%20"))
    local code, _, err = h.run({ "upgrade" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(1, code)
    assert.matches("42501: permission denied for schema public (HINT: user \"" .. role
                   .. "\" lacks the CREATE privilege on schema \"public\"; as a superuser or the "
                   .. "schema's owner run: GRANT ALL ON SCHEMA \"public\" TO \"" .. role .. "\";)",
                   err, 1, true)
    h.psql(db, ('GRANT ALL ON SCHEMA public TO "%s"'):format(role))
    code, _, err = h.run({ "upgrade" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(0, code, err)
    assert.equal("r", h.psql(db, "SELECT relkind FROM pg_class WHERE relname = 't'"))
    h.psql(db, ('DROP OWNED BY "%s"'):format(role))
  end)
end)

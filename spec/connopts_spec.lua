-- The connection settings production URLs carry, through libpq, against
-- real servers: SSL with a self-signed certificate (sslmode=verify-full and
-- sslrootcert; require to a server without SSL fails in one line), and
-- options=-c search_path=... (the version table lands in that schema).
-- connect_timeout and multi-host URLs: safety_spec.lua and standby_spec.lua.
local h = require "helpers"
local topo = require "topology"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

-- The first revision records whether its session is encrypted.
local SSL_SEEN = { [1] = { up = 'op.execute("CREATE TABLE seen AS SELECT ssl FROM pg_stat_ssl '
  .. 'WHERE pid = pg_backend_pid()")' } }

describe("connection settings #cli", function()
  local ssl, root
  lazy_setup(function()
    local ok, err = pcall(function() ssl = topo.start("ssl") end)
    if not ok then topo.stop_all() error(err) end
    root = ssl.dir .. "/root.crt"
  end)
  lazy_teardown(topo.stop_all)

  local db
  before_each(function()
    db = ("spec_ssl_%x"):format(math.random(0, 0x7fffffff))
    h.psql(topo.url(ssl, "postgres"), ('CREATE DATABASE "%s"'):format(db))
  end)
  after_each(function()
    h.psql(topo.url(ssl, "postgres"), ('DROP DATABASE IF EXISTS "%s" WITH (FORCE)'):format(db))
  end)

  local function verify_url(cert)
    return ("postgresql://postgres@localhost:%s/%s?sslmode=verify-full&sslrootcert=%s")
      :format(ssl.port, db, cert)
  end

  it("migrates over SSL with sslmode=verify-full and the server's root certificate", function()
    local dir = topo.chain(2, nil, SSL_SEEN)
    local env = { DATABASE_URL = verify_url(root) }
    local code, out, err = h.run({ "upgrade", "head" }, { cwd = dir, env = env })
    assert.equal(0, code, err)
    assert.matches("Upgraded: 2 revisions.", out, 1, true)
    code, out = h.run({ "current" }, { cwd = dir, env = env })
    assert.equal(0, code)
    assert.equal("r02 (head)\n", out)
    assert.equal("t", h.psql(topo.url(ssl, db), "SELECT ssl FROM seen"))
  end)

  it("refuses a certificate that sslrootcert does not vouch for, in one line", function()
    local other = h.project({}) .. "/other.crt"
    local rc, msg = h.sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      .. "-keyout %s.key -out %s"):format(h.shell_quote(other), h.shell_quote(other)))
    assert.equal(0, rc, msg)
    local dir = topo.chain(1)
    local code, _, err = h.run({ "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = verify_url(other) } })
    assert.equal(1, code)
    assert.equal(1, select(2, err:gsub("\n", "")), err)
    assert.matches("could not connect to " .. verify_url(other), err, 1, true)
    assert.matches("certificate verify failed", err, 1, true)
  end)

  it("says in one line that a server without SSL cannot satisfy sslmode=require; no password shown", function()
    h.psql(topo.url(ssl, "postgres"), "ALTER SYSTEM SET ssl = off")
    h.psql(topo.url(ssl, "postgres"), "SELECT pg_reload_conf()")
    local ok, err = pcall(function()
      local url = ("postgresql://postgres:s3cret@127.0.0.1:%s/%s?sslmode=require"):format(ssl.port, db)
      local dir, code, _, e = topo.chain(1)
      for _ = 1, 50 do          -- the reload reaches the postmaster asynchronously
        code, _, e = h.run({ "current" }, { cwd = dir, env = { DATABASE_URL = url } })
        if e:find("SSL was required", 1, true) then break end
        h.sh("sleep 0.1")
      end
      assert.equal(1, code)
      assert.equal(1, select(2, e:gsub("\n", "")), e)
      assert.matches("luamig: error: could not connect to postgresql://postgres:***@127.0.0.1:"
        .. ssl.port .. "/" .. db .. "?sslmode=require: ", e, 1, true)
      assert.matches("server does not support SSL, but SSL was required", e, 1, true)
      assert.not_matches("s3cret", e, 1, true)
    end)
    h.psql(topo.url(ssl, "postgres"), "ALTER SYSTEM RESET ssl")
    h.psql(topo.url(ssl, "postgres"), "SELECT pg_reload_conf()")
    assert(ok, err)
  end)

  it("honours options=-c search_path=...: the version table lands in that schema", function()
    h.psql(topo.url(ssl, db), "CREATE SCHEMA app")
    local url = verify_url(root) .. "&options=-c%20search_path%3Dapp"
    local dir = topo.chain(2)
    local code, _, err = h.run({ "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(0, code, err)
    assert.equal("app.luamig_version|app.luamig_log|app.applied|",
      h.psql(topo.url(ssl, db), "SELECT to_regclass('app.luamig_version')::text || '|' || "
        .. "to_regclass('app.luamig_log')::text || '|' || to_regclass('app.applied')::text || '|' || "
        .. "coalesce(to_regclass('public.luamig_version')::text, '')"))
    local out
    code, out = h.run({ "current" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(0, code)
    assert.equal("r02 (head)\n", out)
  end)
end)

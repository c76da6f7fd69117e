-- make demo as a new user runs it: in a fresh clone inside a 0700 directory (as root the
-- server runs as postgres, who cannot enter it), then again, then after
-- `pgcluster.sh stop .demo`; and scripts/pgcluster.sh's choice of a short, reachable
-- cluster directory and its one-line errors. #demo
local h = require "helpers"
local checkout = require "checkout"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local q, must = h.shell_quote, checkout.must
local PG_BINDIR = "/usr/lib/postgresql/15/bin"
local ROOT = must("id -u") == "0"
local SOCKET_MAX = 107        -- bytes of a Unix socket path (sun_path less its NUL)

local function pgcluster(args, env)
  local e = { PGHOST = false, PGPORT = false }
  for k, v in pairs(env or {}) do e[k] = v end
  table.insert(args, 1, h.root .. "/scripts/pgcluster.sh")
  return h.run(args, { bin = "bash", env = e })
end

local function running(host, port)
  return h.sh(("%s/pg_isready -q -h %s -p %s"):format(PG_BINDIR, q(host), port)) == 0
end

local function exists(path) return h.sh("test -e " .. q(path)) == 0 end

describe("make demo in a fresh clone #demo", function()
  local clone
  after_each(function()
    if clone then h.sh(("cd %s && bash scripts/pgcluster.sh remove .demo"):format(q(clone))) end
    clone = nil
  end)

  local function make_demo()
    local env = { PGHOST = false, PGPORT = false, PGUSER = false }
    for k, v in pairs(checkout.CLEAN_ENV) do env[k] = v end
    return h.run({ "-C", clone, "demo" }, { bin = "make", env = env, timeout = 600 })
  end

  it("runs in a 0700 directory, reuses its cluster, and pgcluster.sh stop .demo stops it", function()
    local private = checkout.scratch() .. "/private"
    must("mkdir -m 700 " .. q(private))
    clone = checkout.clone(private .. "/project")
    local code, out, err = make_demo()
    assert.equal(0, code, out .. err)
    assert.matches("Upgraded: 4 revisions.", out, nil, true)
    assert.equal("3f2a9c1b7e4d (head)", out:match("==> build/luamig current[^\n]*\n([^\n]*)"), out)

    -- the footer's psql command names the socket directory the server really uses
    local host, port = out:match("\nConnect:%s+%S+ %-h (%S+) %-p (%d+) ")
    assert.truthy(host, out)
    assert.is_true(#host + #"/.s.PGSQL." + #port <= SOCKET_MAX, host)
    local demo = clone .. "/.demo"
    if ROOT then
      -- postgres cannot enter the clone: the cluster lives where it can, remembered in .demo/
      assert.matches("^/var/tmp/", host)
      assert.matches("pgcluster: postgres cannot enter [^\n]*/%.demo: the cluster lives in " .. host:gsub("%p", "%%%0"), err)
      assert.equal(host, must("cat " .. q(demo .. "/cluster")))
      assert.equal("postgres 700", must("stat -c '%U %a' " .. q(host)))
    else
      assert.equal(must("cd " .. q(demo) .. " && pwd -P"), host)
    end
    assert.is_true(running(host, port))

    -- again: the same cluster, nothing to do
    code, out, err = make_demo()
    assert.equal(0, code, out .. err)
    assert.matches("Nothing to do", out, nil, true)
    assert.matches("reusing", err, nil, true)

    -- stop, as the footer says; the next make demo starts it again on the same data
    code, out = h.sh(("cd %s && bash scripts/pgcluster.sh stop .demo"):format(q(clone)))
    assert.equal(0, code, out)
    assert.is_false(running(host, port))
    code, out, err = make_demo()
    assert.equal(0, code, out .. err)
    assert.matches("Nothing to do", out, nil, true)
    assert.matches("-h " .. host .. " ", out, nil, true)

    -- remove: stopped, and its directory gone
    code, out = h.sh(("cd %s && bash scripts/pgcluster.sh remove .demo"):format(q(clone)))
    assert.equal(0, code, out)
    assert.is_false(running(host, port))
    if ROOT then
      assert.is_false(exists(host))
      assert.is_false(exists(demo .. "/cluster"))
    else
      assert.is_false(exists(demo .. "/data"))
    end
  end)
end)

describe("scripts/pgcluster.sh #demo", function()
  it("puts the cluster of a directory whose socket path would be too long in a short one", function()
    local long = checkout.scratch() .. "/" .. ("d"):rep(60) .. "/" .. ("e"):rep(60)
    local code, out, err = pgcluster({ "start", long, "5441" })
    finally(function() pgcluster({ "remove", long }) end)
    assert.equal(0, code, out .. err)
    local host = out:match("export PGHOST=(%S+) ")
    assert.truthy(host, out)
    assert.matches("its socket path in [^\n]* would pass 107 bytes: the cluster lives in " .. host:gsub("%p", "%%%0"), err)
    assert.is_true(#host + #"/.s.PGSQL.5441" <= SOCKET_MAX, host)
    assert.equal(host, must("cat " .. q(long .. "/cluster")))
    assert.equal("1", h.psql(("host=%s port=5441 user=postgres dbname=postgres"):format(host), "SELECT 1"))
    code, out = pgcluster({ "stop", long })
    assert.equal(0, code, out)
    assert.is_false(running(host, 5441))
    code, out = pgcluster({ "remove", long })
    assert.equal(0, code, out)
    assert.is_false(exists(host))
  end)

  -- One line on stderr, naming what to do; non-zero exit.
  local function refuses(args, env, pattern)
    local code, out, err = pgcluster(args, env)
    assert.are_not.equal(0, code, out .. err)
    assert.equal("", out)
    assert.matches("^pgcluster: [^\n]+\n$", err)
    assert.matches(pattern, err)
  end

  it("refuses, in one line, a cluster file naming a symbolic link or a relative path", function()
    local dir = checkout.scratch()
    must(("mkdir %s/real %s/c && ln -s %s/real %s/link"):format(q(dir), q(dir), q(dir), q(dir)))
    must(("printf '%%s\\n' %s >%s/c/cluster"):format(q(dir .. "/link"), q(dir)))
    refuses({ "start", dir .. "/c" }, nil, "c/cluster names .*link.*symbolic link")
    refuses({ "stop", dir .. "/c" }, nil, "symbolic link")
    refuses({ "remove", dir .. "/c" }, nil, "symbolic link")
    assert.is_true(exists(dir .. "/real"))
    must(("printf 'real\\n' >%s/c/cluster"):format(q(dir)))
    refuses({ "start", dir .. "/c" }, nil, "not an absolute path")
  end)

  it("names the package when PostgreSQL is missing", function()
    refuses({ "start", checkout.scratch() .. "/x" }, { PG_BINDIR = "/nonexistent" },
      "no initdb in /nonexistent .*postgresql.*PG_BINDIR")
  end)
end)

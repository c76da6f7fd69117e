-- Fleet runs (#20): one command on 50 databases and on 20 tenant schemas of one
-- server at once; two fleet runs at once apply each revision once; a broken
-- target fails alone; a SIGKILLed fleet run leaves every target whole.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local PSQL = "/usr/lib/postgresql/15/bin/psql"
local q = h.shell_quote
local NDB, NSCHEMA = 50, 20

-- Runs a psql script (stdin) on db; returns its output (unaligned, tuples only).
local function psql_script(db, script)
  local code, out = h.sh(("%s -X -q -A -t -v ON_ERROR_STOP=1 -d %s <<'LUAMIG_EOF'\n%s\nLUAMIG_EOF")
    :format(PSQL, q(db), script))
  assert(code == 0, out)
  return out
end

-- sql (one row, one value) in each database of names: name -> value, one psql.
local function each_db(names, sql)
  local lines = {}
  for _, name in ipairs(names) do
    lines[#lines + 1] = ("\\c %s\nSELECT %s || '|' || coalesce((%s)::text, '');")
      :format(q(name), "'" .. name .. "'", sql)
  end
  local got = {}
  for line in psql_script("postgres", table.concat(lines, "\n")):gmatch("[^\n]+") do
    local name, v = line:match("^([^|]+)|(.*)$")
    if name then got[name] = v end
  end
  return got
end

-- Three trivial revisions; r2 in the kill test's copy sleeps a little.
local function revisions(slow)
  return {
    ["versions/r1.lua"] = h.revision("r1", nil, 'op.create_table("a", { { "id", "bigint", primary_key = true } })',
      'op.drop_table("a")'),
    ["versions/r2.lua"] = h.revision("r2", "r1",
      (slow and 'op.execute("SELECT pg_sleep(0.3)")\n  ' or "") ..
      'op.add_column("a", { "note", "text" })', 'op.drop_column("a", "note")'),
    ["versions/r3.lua"] = h.revision("r3", "r2", 'op.create_table("b", { { "id", "bigint", primary_key = true } })',
      'op.drop_table("b")'),
  }
end

-- The JSON lines of a fleet run's --json output, decoded just enough: target -> object text.
local function json_lines(out)
  local got, n = {}, 0
  for line in out:gmatch("[^\n]+") do
    local target = line:match('"target":"([^"]*)"')
    assert(target, "not a target object: " .. line)
    got[target] = line
    n = n + 1
  end
  return got, n
end

-- luamig args in the project dir (unless opts.cwd says otherwise).
local function run_in(dir, args, opts)
  opts = opts or {}
  opts.cwd = opts.cwd or dir
  return h.run(args, opts)
end

describe("fleet of 50 databases", function()
  local prefix = ("fleet_%d_"):format(math.random(0, 0x7fffff))
  local template = prefix:gsub("^fleet_", "fleettpl_")
  local dbs, server, dir, slow_dir = {}, nil, nil, nil

  setup(function()
    server = h.url("postgres")
    -- copies of a template of our own (FILE_COPY: a small directory), four sessions at once
    psql_script("postgres", ("CREATE DATABASE %s;"):format(template))
    local scripts = {}
    for i = 1, NDB do
      dbs[i] = ("%s%02d"):format(prefix, i)
      local k = i % 4 + 1
      scripts[k] = (scripts[k] or "") .. ("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY;\n")
        :format(dbs[i], template)
    end
    local jobs = {}
    for k, script in ipairs(scripts) do
      jobs[k] = ("printf %%s %s | %s -X -q -v ON_ERROR_STOP=1 -d postgres &"):format(q(script), PSQL)
    end
    local code, out = h.sh(table.concat(jobs, "\n") .. "\nwait")
    assert(code == 0, out)
    dir = h.project(revisions(false))
    slow_dir = h.project(revisions(true))
  end)

  teardown(function()
    local script = {}
    for _, name in ipairs(dbs) do script[#script + 1] = ("DROP DATABASE IF EXISTS %s WITH (FORCE);"):format(name) end
    script[#script + 1] = ("DROP DATABASE IF EXISTS %s;"):format(template)
    psql_script("postgres", table.concat(script, "\n"))
  end)

  local function fleet(args, opts) return run_in(dir, args, opts) end

  it("upgrades 50 databases, each revision once, with two fleet runs at once", function()
    local args = { "upgrade", "--all-databases", "--match", prefix .. "%", "--url", server, "--json" }
    local runs = h.run_all({ { args, { cwd = dir } }, { args, { cwd = dir } } })
    local applied = 0
    for _, r in ipairs(runs) do
      assert.equal(0, r.code, r.stderr)
      local got, n = json_lines(r.stdout)
      assert.equal(NDB, n)
      for _, name in ipairs(dbs) do
        local line = assert(got[name], name)
        assert.matches('"status":"ok"', line)
        assert.matches('"to":"r3"', line)
        applied = applied + tonumber(line:match('"count":(%d+)'))
      end
    end
    assert.equal(NDB * 3, applied)   -- each revision ran once, in one of the two runs
    local versions = each_db(dbs, "SELECT version_num FROM luamig_version")
    local logged = each_db(dbs, "SELECT count(*) || '/' || count(DISTINCT revision) FROM luamig_log "
      .. "WHERE direction = 'upgrade'")
    for _, name in ipairs(dbs) do
      assert.equal("r3", versions[name], name)
      assert.equal("3/3", logged[name], name)
    end
    -- the template, the other databases of the server: untouched
    assert.equal("", h.psql(template, "SELECT to_regclass('luamig_version')"))
    -- resumable: the same command again finds nothing to do
    local code, out, err = fleet({ "upgrade", "--all-databases", "--match", prefix .. "%", "--url", server })
    assert.equal(0, code, err)
    assert.matches(NDB .. " targets: " .. NDB .. " ok", out)
    assert.matches("TARGET%s+FROM%s+TO%s+APPLIED%s+TIME%s+STATUS", out)
    assert.matches(dbs[7] .. "%s+r3%s+r3%s+0%s+%d+ ms%s+ok", out)
  end)

  it("a SIGKILLed fleet run leaves every target whole; the rerun completes", function()
    local code, out, err = fleet({ "downgrade", "base", "--all-databases", "--match", prefix .. "%",
                                   "--url", server, "--jobs", "8" })
    assert.equal(0, code, err)
    local pidfile = slow_dir .. "/pid"
    h.sh(("cd %s && %s upgrade --all-databases --match %s --url %s --jobs 4 >/dev/null 2>&1 & echo $! >%s")
      :format(q(slow_dir), q(h.bin), q(prefix .. "%"), q(server), q(pidfile)))
    local f = assert(io.open(pidfile))
    local pid = f:read("l")
    f:close()
    h.sh("sleep 1.5")
    assert.equal(0, (h.sh("kill -9 " .. pid)))
    -- its children die with it: no luamig run of this fleet is left on the server
    for _ = 1, 100 do
      local left = h.psql("postgres", ("SELECT count(*) FROM pg_stat_activity WHERE datname LIKE %s")
        :format("'" .. prefix .. "%'"))
      if left == "0" then break end
      h.sh("sleep 0.1")
    end
    local versions = each_db(dbs, "SELECT string_agg(version_num, ',') FROM luamig_version")
    local tables = each_db(dbs, "SELECT (to_regclass('a') IS NOT NULL)::int || (SELECT count(*) FROM "
      .. "pg_attribute WHERE attrelid = to_regclass('a') AND attname = 'note')::text || "
      .. "(to_regclass('b') IS NOT NULL)::int")
    local whole = { [""] = "000", r1 = "100", r2 = "110", r3 = "111" }
    local done = 0
    for _, name in ipairs(dbs) do
      local v = versions[name] or ""
      assert.equal(whole[v], tables[name], name .. " at '" .. v .. "'")
      if v == "r3" then done = done + 1 end
    end
    assert.is_true(done < NDB, "the kill came after the run had finished")
    code, out, err = fleet({ "upgrade", "--all-databases", "--match", prefix .. "%", "--url", server,
                             "--jobs", "8" })
    assert.equal(0, code, err)
    assert.matches(NDB .. " targets: " .. NDB .. " ok", out)
    versions = each_db(dbs, "SELECT version_num FROM luamig_version")
    for _, name in ipairs(dbs) do assert.equal("r3", versions[name], name) end
  end)

  it("status exits 3 while a target has pending revisions; help shows the options", function()
    local code, out = fleet({ "status", "--all-databases", "--match", prefix .. "0%", "--url", server })
    assert.equal(0, code, out)
    assert.matches("9 targets: 9 up to date", out)
    fleet({ "downgrade", "-1", "--all-databases", "--match", prefix .. "01", "--url", server })
    code, out = fleet({ "status", "--all-databases", "--match", prefix .. "0%", "--url", server })
    assert.equal(3, code, out)
    assert.matches(dbs[1] .. "%s+r2%s+r3%s+1%s+%d+ ms%s+pending", out)
    code, out = h.run({ "help", "upgrade" })
    assert.equal(0, code)
    for _, opt in ipairs({ "--targets FILE", "--all-databases", "--all-schemas", "--match PATTERN",
                           "--jobs N", "--continue-on-error" }) do
      assert.matches(opt:gsub("%-", "%%-"), out)
    end
  end)

end)

-- The same engine on tenant schemas (cheaper than databases: these also run
-- under ASan), and what a fleet run refuses.
describe("fleet #cli", function()
  local schema_db, server, dir

  setup(function()
    server = h.url("postgres")
    schema_db = h.new_database()
    local schemas = {}
    for i = 1, NSCHEMA do schemas[i] = ("CREATE SCHEMA tenant_%02d;"):format(i) end
    psql_script(schema_db, table.concat(schemas, "\n"))
    dir = h.project(revisions(false))
  end)

  local function fleet(args, opts) return run_in(dir, args, opts) end

  it("migrates tenant schemas: search_path and the version table in each", function()
    local url = h.url(schema_db)
    local code, out, err = fleet({ "upgrade", "--all-schemas", "--match", "tenant\\_%", "--url", url })
    assert.equal(0, code, err)
    assert.matches(NSCHEMA .. " targets: " .. NSCHEMA .. " ok", out)
    assert.equal(tostring(NSCHEMA), h.psql(schema_db, [[SELECT count(*) FROM pg_tables
      WHERE tablename = 'b' AND schemaname LIKE 'tenant\_%']]))
    assert.equal(tostring(NSCHEMA), h.psql(schema_db, [[SELECT count(*) FROM pg_tables
      WHERE tablename = 'luamig_version' AND schemaname LIKE 'tenant\_%']]))
    assert.equal("r3", h.psql(schema_db, "SELECT version_num FROM tenant_13.luamig_version"))
    assert.equal("", h.psql(schema_db, "SELECT to_regclass('public.luamig_version')"))
    -- verify reads each schema's own audit log
    code, out, err = fleet({ "verify", "--strict", "--all-schemas", "--match", "tenant\\_%", "--url", url })
    assert.equal(0, code, out .. err)
    assert.matches("TARGET%s+FINDINGS%s+TIME%s+STATUS", out)
    assert.matches(NSCHEMA .. " targets: " .. NSCHEMA .. " ok", out)
    h.psql(schema_db, "UPDATE tenant_02.luamig_version SET version_num = 'r2'")   -- by hand
    code, out = fleet({ "verify", "--strict", "--all-schemas", "--match", "tenant\\_%", "--url", url })
    assert.equal(1, code, out)
    assert.matches("tenant_02%s+1%s+%d+ ms%s+findings", out)
    assert.matches((NSCHEMA - 1) .. " ok, 1 findings", out)
    h.psql(schema_db, "UPDATE tenant_02.luamig_version SET version_num = 'r3'")
    -- the config can name them, from a table of tenants it reads itself
    h.psql(schema_db, "CREATE TABLE public.tenants (name text); INSERT INTO public.tenants "
      .. "SELECT 'tenant_' || to_char(g, 'FM00') FROM generate_series(1, 5) g")
    local cfg = h.project(revisions(false), ([[return { versions = "versions", url = %q,
      schemas = function(db)
        local names = {}
        for _, row in ipairs(db.query("SELECT name FROM tenants ORDER BY name")) do names[#names + 1] = row.name end
        return names
      end }]]):format(url))
    code, out, err = h.run({ "status" }, { cwd = cfg })
    assert.equal(0, code, err)
    assert.matches("5 targets: 5 up to date", out)
    assert.matches("tenant_05%s+r3%s+r3%s+0", out)
  end)

  it("a broken target fails alone, naming file:line and the server's message", function()
    local url = h.url(schema_db)
    local code_down = fleet({ "downgrade", "r1", "--all-schemas", "--match", "tenant\\_%", "--url", url })
    assert.equal(0, code_down)
    h.psql(schema_db, "CREATE TABLE tenant_07.b (x int)")
    local code, out, err = fleet({ "upgrade", "--all-schemas", "--match", "tenant\\_%", "--url", url,
                                   "--continue-on-error" })
    assert.equal(1, code)
    assert.matches(NSCHEMA .. " targets: " .. (NSCHEMA - 1) .. " ok, 1 failed", out)
    assert.matches("tenant_07%s+r1%s+r2%s+1%s+%d+ ms%s+failed", out)
    assert.matches("luamig: error: tenant_07: upgrade r3 failed: versions/r3.lua:%d+: op.create_table: "
      .. '42P07: relation "b" already exists', err)
    assert.equal("r2", h.psql(schema_db, "SELECT version_num FROM tenant_07.luamig_version"))
    assert.equal("r3", h.psql(schema_db, "SELECT version_num FROM tenant_08.luamig_version"))
    -- without --continue-on-error, no new target starts after a failure
    fleet({ "downgrade", "r1", "--all-schemas", "--match", "tenant\\_%", "--url", url })
    code, out = fleet({ "upgrade", "--all-schemas", "--match", "tenant\\_%", "--url", url, "--jobs", "1" })
    assert.equal(1, code)
    assert.matches("tenant_07 .* failed", out)
    assert.matches("tenant_08%s+%-%s+%-%s+%-%s+%-%s+not run", out)
    assert.matches("6 ok, 1 failed, 13 not run", out)
    h.psql(schema_db, "DROP TABLE tenant_07.b")
    code, out = fleet({ "upgrade", "--all-schemas", "--match", "tenant\\_%", "--url", url })
    assert.equal(0, code, out)
  end)

  it("a run that dies by a signal fails its target alone, naming the signal", function()
    local kill = h.project({   -- its downgrade() undoes nothing: a lint warning on every target
      ["versions/k1.lua"] = h.revision("k1", nil,
        'if os.getenv("LUAMIG_FLEET_SCHEMA") == "tenant_03" then os.execute("kill -9 $PPID") end\n'
        .. '  op.create_table("k", { { "id", "bigint", primary_key = true } })', ""),
    }, 'return { versions = "versions", version_table = "luamig_kill" }')
    local code, out, err = h.run({ "upgrade", "--all-schemas", "--match", "tenant\\_0%", "--url",
                                   h.url(schema_db), "--continue-on-error" }, { cwd = kill })
    assert.equal(1, code, out)
    assert.matches("tenant_03 .* failed", out)
    assert.matches("8 ok, 1 failed", out)
    assert.matches("luamig: error: tenant_03: luamig was killed by signal 9", err)
    -- the same warning from eight targets, once
    local _, n = err:gsub("downgrade%-missing", "")
    assert.equal(1, n, err)
    assert.matches("luamig: warning: versions/k1.lua:%d+: downgrade%-missing: downgrade%(%) undoes nothing "
      .. "%(8 targets%)", err)
  end)

  it("draws a progress line on a terminal, and only there", function()
    local cmd = ("cd %s && %s current --all-schemas --match 'tenant\\_%%' --url %s"):format(q(dir), q(h.bin),
      q(h.url(schema_db)))
    local code, out = h.sh(("script -qec %s /dev/null </dev/null"):format(q(cmd)))
    assert.equal(0, code, out)
    assert.matches("\r\27%[K%[%d+/" .. NSCHEMA .. "%] %d running, 0 failed", out)
    assert.matches("\r\27%[KTARGET ", out)            -- erased before the table
    code, out = h.sh(cmd)
    assert.equal(0, code, out)
    assert.not_matches("\27", out)
  end)

  it("--targets FILE: passwords masked in the summary, never in a child's argv", function()
    local password = "s3cret-pw"
    local urls = {}
    for i = 1, 3 do
      urls[i] = h.url(h.new_database()):gsub("^postgresql:///", "postgresql://postgres:" .. password .. "@/")
    end
    local probe = h.project({
      ["targets.txt"] = "# three tenants\n" .. table.concat(urls, "\n") .. "\n\n",
      ["versions/r1.lua"] = h.revision("r1", nil, "", ""),
      ["versions/r2.lua"] = h.revision("r2", "r1", "", ""),
      ["versions/r3.lua"] = h.revision("r3", "r2", "", ""),
      ["versions/r4.lua"] = h.revision("r4", "r3", [[local f = assert(io.open("/proc/self/cmdline"))
  print("argv: " .. f:read("a"):gsub("%z", " "))
  f:close()]], ""),
    })
    local code, out, err = h.run({ "upgrade", "--targets", "targets.txt" }, { cwd = probe })
    assert.equal(0, code, err)
    assert.matches("3 targets: 3 ok", out)
    assert.matches("postgresql://postgres:%*%*%*@/", out)
    assert.not_matches(password, out)
    assert.matches("argv: luamig %-%-fleet%-child %-%-json upgrade ", err)
    assert.not_matches(password, err)
    code, out = h.run({ "current", "--targets", "targets.txt", "--json" }, { cwd = probe })
    assert.equal(0, code, out)
    local got, n = json_lines(out)
    assert.equal(3, n)
    assert.not_matches(password, out)
    for _, line in pairs(got) do assert.matches('"from":"r4"', line) end
  end)

  it("takes its targets from luamig.lua: URLs, named ones, or a function", function()
    local a, b = h.new_database(), h.new_database()
    local cfg = h.project(revisions(false), ([[return { versions = "versions",
      targets = function() return { %q, { url = %q, name = "second" } } end }]]):format(h.url(a), h.url(b)))
    local code, out, err = h.run({ "upgrade", "--jobs", "1" }, { cwd = cfg })
    assert.equal(0, code, err)
    assert.matches("2 targets: 2 ok", out)
    assert.matches("second%s+<base>%s+r3%s+3", out)
    assert.equal("r3", h.psql(a, "SELECT version_num FROM luamig_version"))
    -- --url names one database: the configured targets step aside
    code, out, err = h.run({ "current", "--url", h.url(b) }, { cwd = cfg })
    assert.equal(0, code, err)
    assert.equal("r3 (head)\n", out)
  end)

  it("refuses what a fleet run cannot do, in one line", function()
    local cases = {
      { { "upgrade", "--match", "x%" }, "%-%-match goes with %-%-all%-databases or %-%-all%-schemas" },
      { { "upgrade", "--targets", "t", "--all-databases" }, "use one" },
      { { "upgrade", "--all-databases", "--sql", "--url", server }, "%-%-sql writes one script" },
      { { "upgrade", "--all-databases", "--jobs", "0", "--url", server }, "%-%-jobs must be" },
      { { "history", "--all-databases" }, "history: unknown option '%-%-all%-databases' %(see 'luamig "
        .. "help history'; it is an option of current, downgrade, status, upgrade, verify%)" },
      { { "upgrade", "--all-databases", "--match", "nothing_like_this%", "--url", server },
        "no database matches" },
    }
    for _, c in ipairs(cases) do
      local code, _, err = fleet(c[1])
      assert.equal(1, code, table.concat(c[1], " "))
      assert.matches(c[2], err)
    end
  end)
end)

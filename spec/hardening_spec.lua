-- Bad input and hostile revision files (issue 14): long lists, missing messages,
-- endless loops, FIFOs, huge bulk inserts, multi-line messages, os.exit, print,
-- a full disk, bad ids and error values. Each ends in one clear line and a
-- non-zero exit with nothing half-applied, or works as it should. #cli: these
-- also run on the sanitizer build.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local q = h.shell_quote
local PSQL = "/usr/lib/postgresql/15/bin/psql"

local function tables(db)
  return h.psql(db, [[SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '')
                      FROM pg_tables WHERE schemaname = 'public']])
end

local function versions(db)
  return h.psql(db, [[SELECT coalesce(string_agg(version_num, ',' ORDER BY version_num), '')
                      FROM luamig_version]])
end

local function lines(s)
  local n = 0
  for _ in s:gmatch("[^\n]*\n") do n = n + 1 end
  return n
end

-- n base revisions h01..hNN (each a head of its own), with an empty upgrade.
local function heads_project(n, extra)
  local files = {}
  for i = 1, n do
    local id = ("h%02d"):format(i)
    files[("versions/%s.lua"):format(id)] = h.revision(id, nil)
  end
  for k, v in pairs(extra or {}) do files[k] = v end
  return h.project(files)
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("hardening #cli", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  local function run(dir, args, opts)
    opts = opts or {}
    opts.cwd, opts.env = dir, opts.env or env
    return h.run(args, opts)
  end

  -- exit 1, one line on stderr matching pattern, nothing on stdout.
  local function refused(pattern, code, out, err)
    assert.equal(1, code, err)
    assert.matches(pattern, err)
    assert.equal(1, lines(err), "one line: " .. err)
    assert.equal("", out)
  end

  describe("long lists (item 1)", function()
    it("a merge of 40 heads writes a file every command then reads and applies", function()
      local dir = heads_project(40)
      local code, out, err = run(dir, { "merge", "heads", "--rev-id", "m40" })
      assert.equal(0, code, err)
      assert.matches("Generating versions/m40_merge_heads%.lua %.%.%. done", out)
      code, out, err = run(dir, { "heads" }, { timeout = 30 })
      assert.equal(0, code, err)
      assert.equal("m40 (head)\n", out)
      code, out, err = run(dir, { "history" }, { timeout = 30 })
      assert.equal(0, code, err)
      assert.equal(41, lines(out))
      assert.matches("^h01, h02, .*, h40 %-> m40 %(head%) %(mergepoint%), merge heads\n", out)
      code, _, err = run(dir, { "-q", "upgrade", "head" }, { timeout = 30 })
      assert.equal(0, code, err)
      assert.equal("m40", versions(db))
    end)

    it("40 depends_on and 40 branch labels in one file, and 40 --depends-on", function()
      local deps, labels, args = {}, {}, { "revision", "-m", "many deps", "--rev-id", "d2", "--head", "d1" }
      for i = 1, 40 do
        deps[i] = ("h%02d"):format(i)
        labels[i] = ("lab%02d"):format(i)
        args[#args + 1] = "--depends-on"
        args[#args + 1] = deps[i]
      end
      local dir = heads_project(40, { ["versions/d1.lua"] = h.revision("d1", "h01", nil, nil,
        { depends_on = deps, branch_labels = labels }) })
      local code, out, err = run(dir, { "heads" }, { timeout = 30 })
      assert.equal(0, code, err)
      assert.equal(40, lines(out))
      code, out, err = run(dir, { "show", "d1" }, { timeout = 30 })
      assert.equal(0, code, err)
      assert.matches("Branch names: lab01, lab02, .*, lab40\n", out)
      code, _, err = run(dir, args, { timeout = 30 })
      assert.equal(0, code, err)
      code, out, err = run(dir, { "show", "d2" }, { timeout = 30 })
      assert.equal(0, code, err)
      assert.matches("Also depends on: h01, h02, .*, h40\n", out)
    end)
  end)

  describe("revision without a message (item 2)", function()
    it("writes <id>.lua with an empty message, as Alembic does", function()
      local dir = h.project({ ["versions/.keep"] = "" })
      local code, out, err = run(dir, { "revision" })
      assert.equal(0, code, err)
      local id = out:match("^Generating versions/(%x+)%.lua %.%.%. done\n$")
      assert.is_truthy(id, out)
      assert.equal(12, #id)
      code, out, err = run(dir, { "revision", "--rev-id", "second" })
      assert.equal(0, code, err)
      assert.equal("Generating versions/second.lua ... done\n", out)
      code, out = run(dir, { "history" }, { env = { DATABASE_URL = false } })
      assert.equal(0, code)
      assert.equal(("%s -> second (head), \n<base> -> %s, \n"):format(id, id), out)
      code, _, err = run(dir, { "-q", "upgrade" })
      assert.equal(0, code, err)
      assert.equal("second", versions(db))
    end)

    it("revision --autogenerate without -m", function()
      local dir = h.project({
        ["versions/.keep"] = "",
        ["models.lua"] = [[local s = require "luamig.schema"; local m = s.new()
          m:table("things", { { "id", "bigint", primary_key = true } }); return m]],
      }, 'return { versions = "versions", models = "models" }\n')
      local code, out, err = run(dir, { "revision", "--autogenerate", "--rev-id", "auto1" })
      assert.equal(0, code, err)
      assert.matches("Generating versions/auto1%.lua %.%.%. done", out)
      assert.is_true(file_exists(dir .. "/versions/auto1.lua"))
    end)

    it("the Lua API's revision{} without a message", function()
      local dir = h.project({ ["versions/.keep"] = "" })
      local lua = ([[package.path = %q .. "/lua/?.lua;" .. %q .. "/lua/?/init.lua;" .. package.path
        package.cpath = %q .. "/build/lib/?.so;" .. package.cpath
        local r, e = require("luamig").revision { config = "luamig.lua", rev_id = "api1" }
        io.write(r and r.path or ("ERR " .. tostring(e)))]]):format(h.root, h.root, h.root)
      local code, out = h.sh(("cd %s && lua5.4 -e %s"):format(q(dir), q(lua)))
      assert.equal(0, code, out)
      assert.equal("versions/api1.lua", out)
    end)
  end)

  describe("time and files (item 3)", function()
    local LOOP = [[op.execute("CREATE TABLE t_loop (id int)")
  local n = 0
  while true do n = n + 1 end]]

    it("an endless loop in upgrade() ends at revision_timeout, rolled back", function()
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, LOOP) })
      local t0 = os.time()
      local code, out, err = run(dir, { "-q", "--revision-timeout", "1s", "upgrade" }, { timeout = 60 })
      assert.equal(1, code, err)
      assert.matches("upgrade a failed: versions/a%.lua:%d+: upgrade%(%) ran longer than "
        .. "revision_timeout %(1s%)", err)
      assert.equal("", out)
      assert.is_true(os.time() - t0 < 20)
      assert.equal("luamig_log,luamig_version", tables(db))
      assert.equal("", versions(db))
    end)

    it("revision_timeout in the config, and at file load", function()
      local dir = h.project({ ["versions/a.lua"] = 'revision = "a"\nwhile true do end\n'
        .. "function upgrade() end\nfunction downgrade() end\n" },
        'return { versions = "versions", revision_timeout = "300ms" }\n')
      local code, out, err = run(dir, { "heads" }, { timeout = 60 })
      refused("^luamig: error: versions/a%.lua:2: the file ran longer than revision_timeout "
        .. "%(300ms%)", code, out, err)
    end)

    it("a revision that catches the timeout in a loop still ends", function()
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, [[local n = 0
  while true do
    pcall(function() while true do n = n + 1 end end)
  end]]) }, 'return { versions = "versions", revision_timeout = "300ms" }\n')
      local code, _, err = run(dir, { "--lint", "off", "upgrade", "head", "--sql" }, { timeout = 30 })
      assert.equal(1, code, err)
      assert.matches("upgrade a failed: versions/a%.lua:%d+: upgrade%(%) ran longer than "
        .. "revision_timeout %(300ms%)", err)
    end)

    it("refuses a FIFO and a symlink to a device named *.lua; a symlink to a file is fine", function()
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil),
                              ["elsewhere/b.lua"] = h.revision("b", "a") })
      assert.equal(0, (h.sh("ln -s ../elsewhere/b.lua " .. q(dir .. "/versions/b.lua"))))
      local code, out, err = run(dir, { "heads" })
      assert.equal(0, code, err)
      assert.equal("b (head)\n", out)
      assert.equal(0, (h.sh("mkfifo " .. q(dir .. "/versions/c.lua"))))
      code, out, err = run(dir, { "heads" }, { timeout = 20 })
      refused("versions/c%.lua: not a regular file", code, out, err)
      os.remove(dir .. "/versions/c.lua")
      assert.equal(0, (h.sh("ln -s /dev/null " .. q(dir .. "/versions/d.lua"))))
      code, out, err = run(dir, { "heads" }, { timeout = 20 })
      refused("versions/d%.lua: not a regular file", code, out, err)
    end)
  end)

  describe("bounds (item 4)", function()
    it("bulk_insert with more columns than a table can have", function()
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, [[local row = {}
  for i = 1, 70000 do row["c" .. i] = i end
  op.bulk_insert("t", { row })]]) })
      local code, out, err = run(dir, { "upgrade", "head", "--sql" }, { timeout = 20 })
      assert.equal(1, code, err)
      assert.matches("versions/a%.lua:%d+: op%.bulk_insert: 70000 columns, more than a table can "
        .. "have %(1600%)", err)
      assert.equal(1, lines(err), err)
      assert.not_matches("INSERT INTO \"t\"", out)
    end)

    it("a column list that never ends (__index, __len)", function()
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, [[op.create_table("t",
    setmetatable({}, { __len = function() return math.maxinteger end,
                       __index = function(_, i) return { "c" .. i, "int" } end }))]]) })
      local code, out, err = run(dir, { "upgrade", "head", "--sql" }, { timeout = 20 })
      assert.equal(1, code, err)
      assert.matches("versions/a%.lua:%d+: op%.create_table: columns must be a plain array", err)
      assert.not_matches("CREATE TABLE \"t\"", out)
      code, _, err = run(dir, { "upgrade" }, { timeout = 20 })
      assert.equal(1, code, err)
      assert.equal("luamig_log,luamig_version", tables(db))
    end)

    it("validates every duration and number option", function()
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil) })
      local function bad(args, pattern, config)
        local d = config and h.project({ ["versions/a.lua"] = h.revision("a", nil) }, config) or dir
        local code, out, err = run(d, args, { timeout = 20 })
        refused(pattern, code, out, err)
      end
      bad({ "--lock-wait", "2147484", "upgrade" },
        "lock_wait %(%-%-lock%-wait%) must be a number of seconds from 0 to 2147483, not '2147484'")
      bad({ "--lock-wait", "1e400", "upgrade" }, "lock_wait .* not '1e400'")
      bad({ "--lock-wait", "-1", "upgrade" }, "lock_wait .* not '%-1'")
      bad({ "upgrade" }, "lock_wait .* not '%-?nan'",
        'return { versions = "versions", lock_wait = 0/0 }')
      bad({ "upgrade" }, "lock_retries must be a whole number from 0 to 20, not '100'",
        'return { versions = "versions", lock_retries = 100 }')
      bad({ "upgrade" }, "lock_retries must be a whole number from 0 to 20, not '2.5'",
        'return { versions = "versions", lock_retries = 2.5 }')
      bad({ "upgrade" }, "lock_timeout must be a duration such as \"5s\", \"500ms\" or \"10min\" "
        .. "%(up to 24 days; 0 turns it off%), not 'forever'",
        'return { versions = "versions", lock_timeout = "forever" }')
      bad({ "upgrade" }, "statement_timeout must be a duration .* not '1 fortnight'",
        'return { versions = "versions", statement_timeout = "1 fortnight" }')
      bad({ "--revision-timeout", "10x", "upgrade" }, "revision_timeout %(%-%-revision%-timeout%) must be a duration .* not '10x'")
      bad({ "--revision-timeout", "99999999999h", "upgrade" }, "revision_timeout .* must be a duration")
      assert.equal("", tables(db))
    end)
  end)

  describe("messages in SQL comments and on screen (item 5)", function()
    local function apply_script(script)
      local file = os.tmpname()
      local f = assert(io.open(file, "wb"))
      f:write(script)
      f:close()
      local code, out = h.sh(("%s -X -q -v ON_ERROR_STOP=1 -d %s -f %s"):format(PSQL, q(db), q(file)))
      os.remove(file)
      return code, out
    end

    it("a hostile message cannot end the comment: the script drops nothing", function()
      h.psql(db, "CREATE TABLE precious (id int)")
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil,
        [[op.execute("CREATE TABLE t (id int)")]], nil,
        { message = "Create t\nDROP TABLE precious; --" }) })
      local code, script, err = run(dir, { "upgrade", "head", "--sql" })
      assert.equal(0, code, err)
      assert.matches("\n%-%- Running upgrade  %-> a, Create t DROP TABLE precious; %-%-\n", script)
      local ok, out = apply_script(script)
      assert.equal(0, ok, out)
      assert.equal("precious,t", h.psql(db, [[SELECT string_agg(tablename, ',' ORDER BY tablename)
                                              FROM pg_tables WHERE tablename IN ('precious', 't')]]))
    end)

    it("a five-line message: one line in progress and history, all of it in --verbose", function()
      local msg = "Add audit columns\n\nWhy: the auditors asked.\r\nTicket: OPS-12\tsee wiki\n\27[31mend"
      local dir = h.project({ ["versions/a.lua"] = ('revision = "a"\nmessage = %q\n'):format(msg)
        .. 'function upgrade() op.execute("CREATE TABLE t (id int)") end\nfunction downgrade() end\n' })
      local code, script, err = run(dir, { "upgrade", "head", "--sql" })
      assert.equal(0, code, err)
      assert.not_matches("\27", script)
      assert.matches("\n%-%- Running upgrade  %-> a, Add audit columns  Why: the auditors asked%.  "
        .. "Ticket: OPS%-12 see wiki  %[31mend\n", script)
      local ok, out = apply_script(script)
      assert.equal(0, ok, out)
      h.psql(db, "DROP TABLE t, luamig_version, luamig_log")
      code, out, err = run(dir, { "upgrade" })
      assert.equal(0, code, err)
      assert.matches("^Running upgrade  %-> a, Add audit columns %.%.%. [%d.]+ ms\nUpgraded: 1 revision%.\n$", out)
      code, out = run(dir, { "history" })
      assert.equal(0, code)
      assert.equal("<base> -> a (head) (current), Add audit columns\n", out)
      code, out = run(dir, { "history", "--verbose" })
      assert.equal(0, code)
      assert.matches("\n    Add audit columns\n\n    Why: the auditors asked%.\n    Ticket: OPS%-12"
        .. "\tsee wiki\n     %[31mend\n", out)
    end)

    it("revision -m with several lines writes them as comment lines; show prints them", function()
      local dir = h.project({ ["versions/.keep"] = "" })
      local code, _, err = run(dir, { "revision", "--rev-id", "ml", "-m", "First line\nsecond line" })
      assert.equal(0, code, err)
      local out
      code, out = run(dir, { "show", "ml" })
      assert.equal(0, code)
      assert.matches("\n    First line\n    second line\n", out)
      code, out = run(dir, { "-q", "upgrade", "head", "--sql" })
      assert.equal(0, code)
      assert.matches("%-%- Running upgrade  %-> ml, First line second line\n", out)
    end)
  end)

  describe("os.exit (item 7)", function()
    it("in upgrade(): an error naming file:line, nothing applied, exit 1", function()
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil,
        [[op.execute("CREATE TABLE t (id int)"); os.exit(0)]]) })
      local code, out, err = run(dir, { "-q", "upgrade" })
      assert.equal(1, code, err)
      assert.matches("upgrade a failed: versions/a%.lua:%d+: os%.exit is not allowed in a revision", err)
      assert.equal("", out)
      assert.equal("luamig_log,luamig_version", tables(db))
      assert.equal("", versions(db))
    end)

    it("at file load", function()
      local dir = h.project({ ["versions/a.lua"] = 'revision = "a"\nos.exit(0)\n'
        .. "function upgrade() end\nfunction downgrade() end\n" })
      local code, out, err = run(dir, { "heads" })
      refused("^luamig: error: versions/a%.lua:2: os%.exit is not allowed in a revision %(raise an error",
        code, out, err)
    end)
  end)

  describe("print and io.write (item 8)", function()
    local BODY = [[print("hello", 42)
  io.write("written\n")
  io.stdout:write("to stdout\n")
  op.execute("CREATE TABLE t (id int)")]]

    it("go to stderr, prefixed with the file, once, never into --sql or --json", function()
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, BODY) })
      local code, out, err = run(dir, { "upgrade", "head", "--sql" })
      assert.equal(0, code, err)
      assert.not_matches("hello", out)
      assert.not_matches("written", out)
      assert.not_matches("to stdout", out)
      assert.matches("versions/a%.lua:%d+: hello\t42\n", err)
      assert.equal(1, select(2, err:gsub("hello", "")), err)
      assert.equal(1, select(2, err:gsub("written", "")), err)
      code, out, err = run(dir, { "upgrade", "--json" })
      assert.equal(0, code, err)
      assert.matches('^{"steps":%[.*%]}\n$', out)
      assert.matches("hello", err)
    end)
  end)

  describe("stdout errors (item 13)", function()
    it("a script to a full disk fails", function()
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, [[op.execute("SELECT 1")]]) })
      local code, out = h.sh(("cd %s && %s upgrade head --sql >/dev/full"):format(q(dir), q(h.bin)))
      assert.equal(1, code, out)
      assert.equal("luamig: error: could not write the script: No space left on device\n", out)
      code, out = h.sh(("cd %s && %s history >/dev/full"):format(q(dir), q(h.bin)))
      assert.equal(1, code, out)
      assert.equal("luamig: error: could not write the output: No space left on device\n", out)
      code, out = h.sh(("cd %s && DATABASE_URL=%s %s upgrade --json >/dev/full"):format(q(dir),
        q(env.DATABASE_URL), q(h.bin)))
      assert.equal(1, code, out)
      assert.matches("could not write the output: No space left on device\n$", out)
    end)
  end)

  describe("revision ids (item 14)", function()
    local bad_ids = { "head", "heads", "base", "current", "-1", "a:b", "x@y", "a b", "a\nb",
                      "a\0b", ("x"):rep(33), "" }
    for _, id in ipairs(bad_ids) do
      it(("refuses the id %q on load"):format(id), function()
        local dir = h.project({ ["versions/bad.lua"] = "revision = " .. ("%q"):format(id)
          .. "\nfunction upgrade() end\nfunction downgrade() end\n" })
        local code, out, err = run(dir, { "heads" })
        refused("^luamig: error: versions/bad%.lua: ", code, out, err)
        assert.matches(id == "" and "no 'revision' id set" or "revision id", err)
      end)
    end

    it("refuses a reserved --rev-id and an id another file has", function()
      local dir = h.project({ ["versions/x.lua"] = h.revision("taken", nil) })
      local code, out, err = run(dir, { "revision", "-m", "m", "--rev-id", "head" })
      refused("revision id 'head' is reserved", code, out, err)
      code, out, err = run(dir, { "revision", "-m", "m", "--rev-id", "a-b" })
      refused("revision id 'a%-b' must be 1 to 32 letters, digits or '_'", code, out, err)
      code, out, err = run(dir, { "revision", "-m", "other", "--rev-id", "taken" })
      refused("revision id 'taken' already exists in versions/x%.lua", code, out, err)
    end)

    it("four concurrent revision --rev-id X write exactly one file", function()
      local dir = h.project({ ["versions/.keep"] = "" })
      local jobs = {}
      for i = 1, 4 do jobs[i] = { { "revision", "-m", "m" .. i, "--rev-id", "same" }, { cwd = dir } } end
      local ok = 0
      for _, r in ipairs(h.run_all(jobs)) do
        if r.code == 0 then ok = ok + 1 else assert.matches("already exists", r.stderr) end
      end
      assert.equal(1, ok)
      local _, listing = h.sh("ls " .. q(dir .. "/versions"))
      assert.equal(1, lines(listing), listing)
    end)
  end)

  describe("error values and interrupted runs (item 19)", function()
    local function fails_with(body, pattern)
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, body) })
      local code, out, err = run(dir, { "-q", "upgrade" })
      assert.equal(1, code, err)
      assert.equal("", out)
      assert.matches(pattern, err)
      assert.not_matches("table: 0x", err)
      assert.not_matches("error object is not a string", err)
      assert.equal("", versions(db))
      return err
    end

    it("tables, __tostring, nil and level-0 strings all name file:line", function()
      fails_with("error({ code = 1 })", "upgrade a failed: versions/a%.lua:%d+: a table value "
        .. "was raised as the error %(give it a __tostring metamethod%)\n$")
      fails_with('error(setmetatable({}, { __tostring = function() return "custom boom" end }))',
        "upgrade a failed: versions/a%.lua:%d+: custom boom\n$")
      fails_with("error()", "upgrade a failed: versions/a%.lua:%d+: nil error value\n$")
      fails_with('error("no position", 0)', "upgrade a failed: versions/a%.lua:%d+: no position\n$")
    end)

    it("FAILED never goes into the --sql output", function()
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, 'error("boom")') })
      local code, out, err = run(dir, { "upgrade", "head", "--sql" })
      assert.equal(1, code, err)
      assert.not_matches("FAILED", out)
      assert.matches("versions/a%.lua:%d+: boom", err)
    end)

    it("the next run says an earlier run stopped inside a non-transactional revision", function()
      local body = [[op.execute("CREATE TABLE IF NOT EXISTS part1 (id int)")
  op.execute("SELECT 1 / $1::int", { tonumber(os.getenv("LUAMIG_TEST_DIVISOR") or "0") })]]
      local dir = h.project({ ["versions/a.lua"] = h.revision("a", nil, body, nil,
        { transactional = false }) })
      local code, _, err = run(dir, { "-q", "upgrade" })
      assert.equal(1, code, err)
      assert.matches("22012", err)
      assert.equal("luamig_log,luamig_version,part1", tables(db))
      local e = { DATABASE_URL = env.DATABASE_URL, LUAMIG_TEST_DIVISOR = "1" }
      code, _, err = run(dir, { "-q", "upgrade" }, { env = e })
      assert.equal(0, code, err)
      assert.matches("warning: an earlier run stopped inside revision a %(versions/a%.lua%), which is "
        .. "not transactional: what it did before it stopped was not rolled back", err)
      code, _, err = run(dir, { "-q", "downgrade", "base" }, { env = e })
      assert.equal(0, code, err)
      assert.equal("", err)
    end)
  end)
end)

-- valgrind over the 40-parent merge (the system liblua is not instrumented, so
-- the ASan build cannot see a Lua stack overflow). Not #cli: valgrind runs the
-- plain build once.
describe("hardening under valgrind", function()
  local has_valgrind = h.sh("command -v valgrind >/dev/null") == 0
  local db
  before_each(function() db = h.new_database() end)
  after_each(function() h.drop_database(db) end)

  it("heads, history and upgrade head over a 40-parent merge", function()
    if not has_valgrind then
      print("SKIPPED: valgrind is not installed")
      return
    end
    local dir = heads_project(40)
    local bin = h.root .. "/build/luamig"
    local code, _, err = h.run({ "merge", "heads", "--rev-id", "m40" }, { cwd = dir, bin = bin })
    assert.equal(0, code, err)
    for _, cmd in ipairs { { "heads" }, { "history" }, { "-q", "upgrade", "head" } } do
      local args = { "-q", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                     "--error-exitcode=99", bin }
      for _, a in ipairs(cmd) do args[#args + 1] = a end
      local out
      code, out, err = h.run(args, { cwd = dir, bin = "valgrind", timeout = 120,
                                     env = { DATABASE_URL = h.url(db) } })
      assert.equal(0, code, err)
      if cmd[1] == "heads" then assert.equal("m40 (head)\n", out) end
    end
    assert.equal("m40", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  -- Each hostile input of the items above, once under valgrind: a refusal or an
  -- error path must free what it allocated as well as the happy path does.
  it("the refusals of hostile revision files and bad input", function()
    if not has_valgrind then
      print("SKIPPED: valgrind is not installed")
      return
    end
    local cases = {
      { "os.exit", { "upgrade" }, h.revision("a", nil, "os.exit(0)") },
      { "print", { "upgrade", "--sql" }, h.revision("a", nil, 'print("hi") io.write("x")') },
      { "endless loop", { "--revision-timeout", "200ms", "upgrade" },
        h.revision("a", nil, "while true do end") },
      { "hostile message", { "upgrade", "--sql" },
        h.revision("a", nil, nil, nil, { message = "Create t\nDROP TABLE precious; --" }) },
      { "reserved id", { "heads" }, h.revision("head", nil) },
      { "error value", { "upgrade" }, h.revision("a", nil, "error(setmetatable({}, {}))") },
      { "huge bulk_insert", { "upgrade", "--sql" },
        h.revision("a", nil, 'local c = {} for i = 1, 70000 do c[i] = "c" .. i end '
          .. 'op.bulk_insert("t", { c })') },
      { "COMMIT in op.execute", { "upgrade" }, h.revision("a", nil, 'op.execute("COMMIT")') },
      { "revision without -m", { "revision", "--rev-id", "b" }, h.revision("a", nil) },
      { "bad --lock-wait", { "--lock-wait", "nan", "upgrade" }, h.revision("a", nil) },
    }
    local bin = h.root .. "/build/luamig"
    for _, case in ipairs(cases) do
      local dir = h.project({ ["versions/a.lua"] = case[3] })
      local args = { "-q", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                     "--error-exitcode=99", bin }
      for _, a in ipairs(case[2]) do args[#args + 1] = a end
      local code, _, err = h.run(args, { cwd = dir, bin = "valgrind", timeout = 120,
                                         env = { DATABASE_URL = h.url(db) } })
      assert.is_true(code == 0 or code == 1, case[1] .. ": exit " .. tostring(code) .. "\n" .. err)
      assert.not_matches("==%d+==", err, case[1] .. ": valgrind reported\n" .. err)
    end
  end)
end)

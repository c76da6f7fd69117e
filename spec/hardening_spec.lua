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
      assert.matches("Depends on: h01, h02, .*, h40\n", out)
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
end)

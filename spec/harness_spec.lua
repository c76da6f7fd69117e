-- The test harness itself: if these fail, no other spec result can be trusted.
local h = require "helpers"

describe("harness", function()
  after_each(h.cleanup)

  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("shell_quote round-trips hostile strings through sh", function()
    local hostile = {
      "", "plain", "two words", "it's", [["double"]], "'", "''", "$HOME", "${PATH}",
      "`id`", "$(id)", "a\nb", "trailing\n\n", "\\", "\\'", "*", "-n", "!x", "; rm -rf /",
      "\ttab", "é ü", "%s %d",
    }
    for _, s in ipairs(hostile) do
      local code, out = h.sh("sh -c 'printf %s \"$1\"' _ " .. h.shell_quote(s))
      assert.are.equal(0, code)
      assert.are.equal(s, out)
    end
  end)

  describe("run", function()
    -- A stand-in for the CLI that reports what it was given.
    local fake
    before_each(function()
      local dir = h.project({ ["fake.sh"] = table.concat({
        "#!/bin/sh",
        'printf "cwd=%s\\n" "$(pwd)"',
        'printf "argc=%s\\n" "$#"',
        'for a in "$@"; do printf "arg=[%s]\\n" "$a"; done',
        'printf "FOO=%s\\n" "${FOO-unset}"',
        'printf "GONE=%s\\n" "${GONE-unset}"',
        'printf "stdin=%s\\n" "$(cat)"',
        'echo "to stderr" >&2',
        'exit "${CODE:-0}"',
      }, "\n") .. "\n" })
      fake = dir .. "/fake.sh"
      assert.are.equal(0, (h.sh("chmod +x " .. h.shell_quote(fake))))
    end)

    it("passes arguments, cwd, env and stdin, and separates the streams", function()
      local cwd = h.project({})
      local code, out, err = h.run({ "a b", "it's", "$x", "" }, {
        bin = fake, cwd = cwd, stdin = "some input",
        env = { FOO = "bar baz", CODE = 7, GONE = false },
      })
      assert.are.equal(7, code)
      assert.are.equal("to stderr\n", err)
      local real_cwd = select(2, h.sh("cd " .. h.shell_quote(cwd) .. " && pwd")):gsub("\n$", "")
      assert.are.equal(table.concat({
        "cwd=" .. real_cwd, "argc=4", "arg=[a b]", "arg=[it's]", "arg=[$x]", "arg=[]",
        "FOO=bar baz", "GONE=unset", "stdin=some input", "",
      }, "\n"), out)
    end)

    it("gives an empty stdin when none is given", function()
      local code, out = h.run({}, { bin = fake })
      assert.are.equal(0, code)
      assert.truthy(out:find("stdin=\n", 1, true))
    end)

    it("fails the spec on a sanitizer report even when the exit code is fine", function()
      local dir = h.project({ ["asan.sh"] =
        "#!/bin/sh\necho '==1==ERROR: AddressSanitizer: heap-use-after-free' >&2\n" })
      h.sh("chmod +x " .. h.shell_quote(dir .. "/asan.sh"))
      assert.has_error(function() h.run({}, { bin = dir .. "/asan.sh" }) end)
    end)

    it("runs jobs concurrently with run_all", function()
      local jobs = {}
      for i = 1, 4 do jobs[i] = { { "job" .. i }, { bin = fake, env = { CODE = i } } } end
      local results = h.run_all(jobs)
      for i = 1, 4 do
        assert.are.equal(i, results[i].code)
        assert.truthy(results[i].stdout:find("arg=[job" .. i .. "]", 1, true))
        assert.are.equal("to stderr\n", results[i].stderr)
      end
    end)
  end)

  describe("databases", function()
    local db
    before_each(function() db = h.new_database() end)
    after_each(function() h.drop_database(db) end)

    it("new_database makes a database psql can use", function()
      assert.are.equal(db, h.psql(db, "SELECT current_database()"))
      h.psql(db, "CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2)")
      assert.are.equal("1\n2", h.psql(db, "SELECT a FROM t ORDER BY a"))
    end)

    it("psql raises on an SQL error", function()
      assert.has_error(function() h.psql(db, "SELECT * FROM no_such_table") end)
    end)

    it("drop_database removes it", function()
      local other = h.new_database()
      assert.are.equal("1", h.psql("postgres",
        ("SELECT count(*) FROM pg_database WHERE datname = '%s'"):format(other)))
      h.drop_database(other)
      assert.are.equal("0", h.psql("postgres",
        ("SELECT count(*) FROM pg_database WHERE datname = '%s'"):format(other)))
    end)

    it("url reaches the database through libpq", function()
      local url = h.url(db)
      assert.truthy(url:find("^postgresql:///"))
      assert.are.equal(db .. "|postgres", h.psql(url, "SELECT current_database() || '|' || current_user"))
    end)
  end)

  it("project writes the config and files, and cleanup removes them", function()
    local dir = h.project({ ["versions/a1_init.lua"] = "-- x\n" })
    local code, out = h.sh("cd " .. h.shell_quote(dir) .. " && cat luamig.lua versions/a1_init.lua")
    assert.are.equal(0, code)
    assert.are.equal('return { versions = "versions" }\n-- x\n', out)
    local custom = h.project({}, "return { versions = { 'a', 'b' } }\n")
    assert.are.equal("return { versions = { 'a', 'b' } }\n", (select(2, h.sh("cat " .. h.shell_quote(custom .. "/luamig.lua")))))
    h.cleanup()
    assert.are_not.equal(0, (h.sh("test -e " .. h.shell_quote(dir))))
  end)

  it("revision writes a file Lua 5.4 loads with the expected fields", function()
    local env = {}
    local text = h.revision("b2", { "a1", "x9" }, "op.execute('up')", "op.execute('down')",
      { message = "merge it", depends_on = { "c3" }, transactional = false })
    assert.truthy(text:find("^%-%- merge it\n"))
    assert(load(text, "=rev", "t", env))()
    assert.are.equal("b2", env.revision)
    assert.are.same({ "a1", "x9" }, env.down_revision)
    assert.are.equal("merge it", env.message)
    assert.are.same({ "c3" }, env.depends_on)
    assert.are.equal(false, env.transactional)
    assert.are.equal("function", type(env.upgrade))
    assert.are.equal("function", type(env.downgrade))

    local base = {}
    assert(load(h.revision("a1"), "=base", "t", base))()
    assert.are.equal("a1", base.revision)
    assert.is_nil(base.down_revision)
  end)

  describe("the CLI #cli", function()
    it("runs and prints the version from include/luamig.h", function()
      local header = io.open(h.root .. "/include/luamig.h"):read("a")
      local version = header:match('#define LUAMIG_VERSION "([^"]+)"')
      local code, out, err = h.run({ "--version" })
      assert.are.equal(0, code, err)
      assert.truthy(out:find(version, 1, true), out)
    end)

    it("rejects an unknown command with a message, not a crash", function()
      local code, out, err = h.run({ "no-such-command" })
      assert.is_true(code > 0 and code < 124, ("exit %d\n%s%s"):format(code, out, err))
      assert.are_not.equal("", err)
    end)
  end)
end)

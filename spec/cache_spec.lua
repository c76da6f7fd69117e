-- The header cache (.luamig-cache/headers in each versions directory, like git's index):
-- an unchanged file is known by its stat and never opened; any change, a foreign or
-- broken cache, or a directory luamig may not write falls back to reading the files.
local h = require "helpers"
local q = h.shell_quote

local read, write = h.read_file, h.write_file

local function sh_ok(cmd)
  local code, out = h.sh(cmd)
  assert(code == 0, cmd .. ": " .. out)
  return (out:gsub("\n$", ""))
end

-- A linear history of n revisions r01..rNN, each file the same size as the next.
local function project(n)
  local files = {}
  for i = 1, n do
    local id = ("r%02d"):format(i)
    files[("versions/%s_step.lua"):format(id)] = h.revision(id, i > 1 and ("r%02d"):format(i - 1) or nil,
      "", "", { message = "Step " .. id })
  end
  return h.project(files)
end

local function history(dir)
  return h.run_ok({ "history" }, { cwd = dir })
end

-- The revision files (names in versions/) a run of luamig args opened, read from strace.
local function opened(dir, args)
  local names = {}
  local log, code = h.strace(dir, args, "open,openat")
  assert.equal(0, code)
  for name in log:gmatch('open[a-z]*%([^"]*"([^"]*%.lua)"') do
    if name ~= "luamig.lua" then names[#names + 1] = name:match("[^/]*$") end
  end
  table.sort(names)
  return names
end

describe("the header cache #cli", function()
  local has_strace = h.sh("command -v strace") == 0

  it("builds the graph without opening an unchanged file", function()
    assert.is_true(has_strace, "strace is needed (apt-get install strace)")
    local dir = project(4)
    local first = history(dir)
    assert.truthy(io.open(dir .. "/versions/.luamig-cache/headers"), "no cache written")
    assert.same({}, opened(dir, { "history" }))
    assert.equal(first, history(dir))
    -- heads, show and the JSON view come from the same cache
    assert.same({}, opened(dir, { "heads" }))
    assert.matches("r04 %(head%)", h.run_ok({ "heads" }, { cwd = dir }))
  end)

  it("sees an edit of the same size whose mtime was put back with touch -d", function()
    local dir = project(3)
    local path = dir .. "/versions/r02_step.lua"
    history(dir)
    local mtime = sh_ok("stat -c %y " .. q(path))
    local text = read(path)
    local edited = text:gsub("Step r02", "Step X02")
    assert.equal(#text, #edited)
    write(path, edited)
    sh_ok(("touch -d %s %s"):format(q(mtime), q(path)))
    assert.equal(mtime, sh_ok("stat -c %y " .. q(path)))   -- size and mtime as cached
    assert.matches("r01 %-> r02, Step X02", history(dir))
    assert.same({}, opened(dir, { "history" }))   -- and the cache knows the new text now
  end)

  it("sees a file replaced by a new one (another inode) of the same size and times", function()
    local dir = project(3)
    local path = dir .. "/versions/r03_step.lua"
    history(dir)
    local edited = read(path):gsub("Step r03", "Step Y03")
    write(dir .. "/new.tmp", edited)
    sh_ok(("touch -r %s %s && mv %s %s"):format(q(path), q(dir .. "/new.tmp"), q(dir .. "/new.tmp"), q(path)))
    assert.matches("r02 %-> r03 %(head%), Step Y03", history(dir))
  end)

  it("lists the versions directory only when a file came or went since", function()
    assert.is_true(has_strace, "strace is needed")
    local dir = project(3)
    local function lists()
      local log, code = h.strace(dir, { "history" }, "getdents64")
      assert.equal(0, code)
      return select(2, log:gsub("getdents64%(", "")) > 0
    end
    history(dir)
    history(dir)                              -- the first made the cache's directory
    assert.is_false(lists())
    write(dir .. "/versions/r09_new.lua", h.revision("r09", "r03", "", "", { message = "New" }))
    assert.is_true(lists())
    assert.matches("r03 %-> r09 %(head%), New", history(dir))
    os.remove(dir .. "/versions/r09_new.lua")
    assert.is_true(lists())
    assert.matches("r02 %-> r03 %(head%)", history(dir))
  end)

  it("drops a deleted file and adds a new one", function()
    local dir = project(3)
    history(dir)
    os.remove(dir .. "/versions/r03_step.lua")
    local out = history(dir)
    assert.falsy(out:find("r03", 1, true))
    assert.matches("r01 %-> r02 %(head%)", out)
    write(dir .. "/versions/r09_new.lua", h.revision("r09", "r02", "", "", { message = "New" }))
    assert.matches("r02 %-> r09 %(head%), New", history(dir))
    assert.same({}, opened(dir, { "history" }))
  end)

  it("reads the files again when the cache is random bytes, truncated or empty", function()
    local dir = project(3)
    local good = history(dir)
    local cache = dir .. "/versions/.luamig-cache/headers"
    local whole = read(cache)
    local breakers = {
      function() sh_ok(("head -c 4096 /dev/urandom > %s"):format(q(cache))) end,
      function() write(cache, whole:sub(1, #whole // 2)) end,
      function() write(cache, whole:sub(1, -3)) end,
      function() write(cache, "") end,
      function() write(cache, (whole:gsub("Step r02", "Step Z02"))) end,   -- a changed byte
    }
    for _, break_it in ipairs(breakers) do
      break_it()
      assert.equal(good, history(dir))
      local function entries(text)   -- less the directory's stamp and the checksum over it
        return (text:gsub("^([^\n]*\n)[^\n]*\n", "%1"):gsub("end %x+\n$", ""))
      end
      assert.equal(entries(whole), entries(read(cache)))   -- written again (the directory's stamp aside)
    end
  end)

  it("ignores a cache another luamig build wrote, even one whose checksum holds", function()
    assert.is_true(has_strace, "strace is needed")
    local dir = project(2)
    history(dir)
    local cache = dir .. "/versions/.luamig-cache/headers"
    -- the same entries under another version line, with a message changed and a valid trailer
    local body = read(cache):gsub("\nend %x+\n$", "\n"):gsub("^luamig%-cache %d+ [^\n]*\n",
      "luamig-cache 2 0.0.1 0000000000000000\n"):gsub("8:Step r02", "8:Step F02")
    write(cache .. ".body", body)
    local sum = sh_ok("sha256sum " .. q(cache .. ".body")):match("^%x+")
    write(cache, body .. "end " .. sum .. "\n")
    os.remove(cache .. ".body")
    assert.same({ "r01_step.lua", "r02_step.lua" }, opened(dir, { "history" }))
    assert.matches("Step r02", history(dir))
    assert.same({}, opened(dir, { "history" }))
  end)

  it("stays whole when several runs write it at once", function()
    assert.is_true(has_strace, "strace is needed")
    local dir = project(60)
    local jobs = {}
    for i = 1, 8 do jobs[i] = { { "history" }, { cwd = dir } } end
    local results = h.run_all(jobs)
    for _, r in ipairs(results) do
      assert.equal(0, r.code, r.stderr)
      assert.equal(results[1].stdout, r.stdout)
      assert.equal("", r.stderr)
    end
    assert.same({}, opened(dir, { "history" }))
    assert.equal(".luamig-cache", sh_ok("cd " .. q(dir .. "/versions") .. " && ls -A | grep -v '\\.lua$'"))
  end)

  it("works without one in a versions directory luamig may not write", function()
    local dir = project(3)
    local good = history(dir)
    h.sh("rm -rf " .. q(dir .. "/versions/.luamig-cache"))
    local versions = dir .. "/versions"
    local root = sh_ok("id -u") == "0"
    -- root writes through file modes: an immutable directory stands for a read-only one
    local lock = root and "chattr +i " or "chmod a-w "
    local unlock = root and "chattr -i " or "chmod u+w "
    local code, out = h.sh(lock .. q(versions))
    if code ~= 0 then pending("cannot make a directory read-only here: " .. out) return end
    finally(function() h.sh(unlock .. q(versions)) end)
    local code2, out2, err2 = h.run({ "history" }, { cwd = dir })
    assert.equal(0, code2, err2)
    assert.equal(good, out2)
    assert.equal("", err2)
    assert.is_nil(io.open(versions .. "/.luamig-cache/headers"))
    assert.equal("", sh_ok("cd " .. q(versions) .. " && ls -A | grep -v '\\.lua$' || true"))
  end)

  it("still refuses a FIFO where a cached file was", function()
    local dir = project(2)
    history(dir)
    local path = dir .. "/versions/r02_step.lua"
    os.remove(path)
    sh_ok("mkfifo " .. q(path))
    local code, _, err = h.run({ "history" }, { cwd = dir, timeout = 20 })
    assert.equal(1, code)
    assert.matches("r02_step.lua: not a regular file", err)
  end)

  it("is ignored by git in a project luamig init made, and in this repository", function()
    local dir = h.project({})
    os.remove(dir .. "/luamig.lua")
    write(dir .. "/.gitignore", "*.log")      -- a project's own, without a final newline
    h.run_ok({ "init" }, { cwd = dir })
    assert.equal("*.log\n# luamig's caches in each versions directory\n.luamig-cache*\n",
      read(dir .. "/.gitignore"))
    os.remove(dir .. "/luamig.lua")          -- init refuses a project: start one again here
    h.run_ok({ "init" }, { cwd = dir })       -- the line once
    assert.equal(3, select(2, read(dir .. "/.gitignore"):gsub("\n", "")))
    sh_ok("cd " .. q(dir) .. " && git init -q && touch versions/.luamig-cache")
    sh_ok("cd " .. q(dir) .. " && git check-ignore -q versions/.luamig-cache")
    sh_ok("cd " .. q(h.root) .. " && git check-ignore -q versions/.luamig-cache")
  end)

  it("keeps no header of a file whose top level computes it, and reads it each time", function()
    assert.is_true(has_strace, "strace is needed")
    local dir = h.project({
      ["versions/a.lua"] = h.revision("a", nil, "", "", { message = "Plain" }),
      ["versions/b.lua"] = 'revision = "b"\ndown_revision = "a"\nmessage = ("Comp" .. "uted")\n'
        .. "function upgrade() end\nfunction downgrade() end\n",
    })
    assert.matches("a %-> b %(head%), Computed", history(dir))
    assert.same({ "b.lua" }, opened(dir, { "history" }))
  end)
end)

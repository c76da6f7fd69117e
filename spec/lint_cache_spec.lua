-- The lint of `upgrade +1` on a long history (issue #18 item 3): the lint's model of
-- the schema is kept (luamig.lint_cache, .luamig-cache/lint), so a deploy loads the
-- revisions it applies, not every ancestor again; a changed ancestor is replayed.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local function rev(i, up, down)
  local id = ("r%02d"):format(i)
  return ("versions/%s.lua"):format(id), h.revision(id, i > 1 and ("r%02d"):format(i - 1) or nil, up, down)
end

-- The revision files a run opened (names, sorted), from strace.
local function opened(dir, args, env)
  local names, seen = {}, {}
  for name in h.strace(dir, args, "open,openat", env):gmatch('open[a-z]*%([^"]*"([^"]*%.lua)"') do
    name = name:match("[^/]*$")
    if name ~= "luamig.lua" and not seen[name] then names[#names + 1], seen[name] = name, true end
  end
  table.sort(names)
  return names
end

describe("the lint's kept model #cli", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  local function add(dir, i, up, down)
    local path, text = rev(i, up, down)
    h.write_file(dir .. "/" .. path, text)
  end

  it("lints a deploy of one revision without loading the 20 below it", function()
    local files = {}
    for i = 1, 20 do
      local path, text = rev(i, ('op.create_table("t%02d", { { "id", "int" } })'):format(i),
        ('op.drop_table("t%02d")'):format(i))
      files[path] = text
    end
    local dir = h.project(files)
    h.run_ok({ "-q", "upgrade", "head" }, { cwd = dir, env = env })
    assert.truthy(io.open(dir .. "/versions/.luamig-cache/lint"), "no model kept")
    add(dir, 21, 'op.add_column("t01", { "a", "int" })', 'op.drop_column("t01", "a")')
    assert.same({ "r21.lua" }, opened(dir, { "-q", "upgrade", "+1" }, env))
    add(dir, 22, 'op.add_column("t02", { "a", "int" })', 'op.drop_column("t02", "a")')
    assert.same({ "r22.lua" }, opened(dir, { "-q", "upgrade", "+1" }, env))
    assert.equal("r22", h.psql(db, "SELECT version_num FROM luamig_version"))
  end)

  it("treats a table the kept model saw created as existing, not new", function()
    local path, text = rev(1, 'op.create_table("t", { { "id", "int" }, { "c", "int" } })', 'op.drop_table("t")')
    local dir = h.project({ [path] = text })
    h.run_ok({ "-q", "upgrade", "head" }, { cwd = dir, env = env })   -- r01 linted: t new then
    add(dir, 2, 'op.drop_column("t", "c")', 'op.add_column("t", { "c", "int" })')
    local code, out = h.run({ "lint" }, { cwd = dir, env = env })
    assert.equal(2, code, out)
    assert.matches("r02.lua:%d+: rename%-or%-drop", out)
    assert.same({ "r02.lua" }, opened(dir, { "lint" }, env))
  end)

  it("replays an ancestor edited since the model was kept", function()
    local path, text = rev(1, 'op.create_table("t", { { "id", "int" }, { "c", "varchar(10)" } })',
      'op.drop_table("t")')
    local dir = h.project({ [path] = text })
    h.run_ok({ "-q", "upgrade", "head" }, { cwd = dir, env = env })
    add(dir, 2, 'op.alter_column("t", "c", { type = "varchar(20)" })',
      'op.alter_column("t", "c", { type = "varchar(10)" })')
    local code, out = h.run({ "lint" }, { cwd = dir, env = env })
    assert.equal(0, code, out)                 -- widening a varchar: catalog only
    h.write_file(dir .. "/" .. path, (text:gsub("varchar%(10%)", "integer")))
    assert.same({ "r01.lua", "r02.lua" }, opened(dir, { "lint" }, env))
    code, out = h.run({ "lint" }, { cwd = dir, env = env })
    assert.equal(2, code, out)
    assert.matches("alter%-type%-rewrite.*from integer to varchar%(20%)", out)
  end)

  it("replays everything when the kept model is damaged", function()
    local path, text = rev(1, 'op.create_table("t", { { "id", "int" }, { "c", "int" } })', 'op.drop_table("t")')
    local dir = h.project({ [path] = text })
    h.run_ok({ "-q", "upgrade", "head" }, { cwd = dir, env = env })
    add(dir, 2, 'op.drop_column("t", "c")', 'op.add_column("t", { "c", "int" })')
    local cache = dir .. "/versions/.luamig-cache/lint"
    local whole = h.read_file(cache)
    for _, broken in ipairs { whole:sub(1, #whole // 2), whole:gsub("s1:t", "s1:u", 1), "" } do
      h.write_file(cache, broken)
      local code, out = h.run({ "lint" }, { cwd = dir, env = env })
      assert.equal(2, code, out)
      assert.matches("r02.lua:%d+: rename%-or%-drop", out)
    end
  end)
end)

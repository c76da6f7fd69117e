-- The revision loader reads plain headers without running the files, and runs
-- the others: either way the graph must hold what Lua itself makes of each file.
-- No database: history, show and offline upgrades only.
local h = require "helpers"
local core = require "luamig.core"

-- What Lua makes of a revision file: its environment after running it.
local function evaluate(text)
  local env = setmetatable({}, { __index = _G })
  assert(load(text, "=rev", "t", env))()
  return env
end

local function list(v)
  if v == nil then return {} end
  if type(v) == "string" then return { v } end
  return v
end

-- Lua literals for a string, in the forms revision files use. Some the scanner
-- decodes, some it leaves to Lua (\65, \x41, \u{41}, \z, [[...]], "a" .. "b").
local function quote(s, style)
  local q = ("%q"):format(s):gsub("\\\n", "\\n")
  if style == 1 then return q end
  if style == 2 then return "'" .. s:gsub("\\", "\\\\"):gsub("'", "\\'"):gsub("\n", "\\n") .. "'" end
  if style == 3 then return "[==[" .. s .. "]==]" end
  if style == 4 then return q .. ' .. ""' end
  if style == 5 then return "(" .. q .. ")" end
  return '"' .. s:gsub("[^%w ]", function(c) return ("\\%d"):format(c:byte()) end) .. '"'
end

local messages = {
  "Create users", 'Add "email" to users', "it's\ta tab", "back\\slash", "two\nlines",
  "end", "function upgrade() end", "-- not a comment", "[[long]]", "",
}

-- Bodies with what trips naive scanners: end in strings and comments, long
-- brackets, nested blocks, repeat/until, anonymous functions.
local bodies = {
  'op.execute("SELECT %d")',
  'op.execute([[SELECT %d -- end ]]) --[[ end end ]]',
  'local f = function(x) if x then return x elseif x == nil then return 0 else end end\n'
    .. '  for i = 1, 2 do while false do end end repeat local y = f(1) until true\n'
    .. '  op.execute(("SELECT %%d"):format(%d))',
  'local s = "end\\"end" .. \'end\' .. [=[\n]]end]=]\n  op.execute("SELECT " .. %d) -- end',
}

-- Top-level statements that change no header field: literals the scanner
-- skips, and code it does not follow (the file then runs as before).
local plain_noise = {
  "", ";", "-- a comment with revision = \"bogus\"", "--[[ down_revision = nil\nend ]]",
  "--[==[ ]] ]=] ]==]", "local helper = { 1, 'x', -2.5e3, 0x1F, nested = { true, nil } }",
  "local function helper2() return 'end' end", "x = -1", "y = [[\nend]]", "local z",
}
local code_noise = { "do end", "if true then end", "local t = {} t.x = 1", "print_ = tostring(1)" }

-- One revision file: header fields in random forms and places, with noise.
-- A plain one uses only what the scanner reads itself; others may use anything.
local function make_file(rng, i, id, down)
  local plain = rng(2) == 1
  local parts = {}
  local function add(s) parts[#parts + 1] = s end
  local function pick(t) return t[rng(#t)] end
  local function style() return plain and rng(2) or rng(6) end
  if rng(10) == 1 then add("#!/usr/bin/env lua") end
  local msg = pick(messages)
  local fields = {
    "revision = " .. (rng(8) == 1 and quote("wrong" .. i, 1) .. "; revision = " or "") .. quote(id, style()),
    "message = " .. (rng(6) == 1 and "nil" or quote(msg, plain and 2 or rng(6))),
  }
  if down == nil then
    fields[#fields + 1] = pick { "down_revision = nil", "" }
  elseif type(down) == "string" then
    local forms = { quote(down, 1), quote(down, 2), '{ "' .. down .. '" }', "{'" .. down .. "',}" }
    if not plain then forms[#forms + 1] = quote(down, 4) end
    fields[#fields + 1] = "down_revision = " .. pick(forms)
  else
    fields[#fields + 1] = ('down_revision = { "%s"; "%s"; }'):format(down[1], down[2])
  end
  if rng(4) == 1 then fields[#fields + 1] = ('branch_labels = { "lab%d", "alt%d" }'):format(i, i) end
  if rng(4) == 1 and i > 1 then fields[#fields + 1] = 'depends_on = "r1"' end
  if rng(4) == 1 then fields[#fields + 1] = "transactional = " .. pick { "false", "true", "nil" } end
  local body = pick(bodies):format(i)
  local fns = {
    "function upgrade()\n  " .. body .. "\nend",
    "function downgrade() op.execute(\"SELECT -" .. i .. "\") end",
  }
  local statements = {}
  for _, f in ipairs(fields) do statements[#statements + 1] = f end
  for _, f in ipairs(fns) do statements[#statements + 1] = f end
  for _ = 1, rng(3) - 1 do statements[#statements + 1] = pick(plain_noise) end
  if not plain and rng(2) == 1 then statements[#statements + 1] = pick(code_noise) end
  for k = #statements, 2, -1 do    -- any order: Lua does not care, neither may the scanner
    local j = rng(k)
    statements[k], statements[j] = statements[j], statements[k]
  end
  for _, s in ipairs(statements) do add(s) end
  local text = ""
  for _, s in ipairs(parts) do      -- some statements share a line, but never after a comment
    text = text .. s .. ((s:find("--", 1, true) or s:find("^#") or rng(3) > 1) and "\n" or " ")
  end
  if rng(12) == 1 then text = "\xEF\xBB\xBF" .. text end
  return text
end

describe("the revision loader", function()
  it("builds the graph Lua itself would, from plain and computed headers alike", function()
    local seed = os.time()
    math.randomseed(seed)
    local files, texts = {}, {}
    local n = 120
    for i = 1, n do
      local id = "r" .. i
      local down                   -- nil: the base
      if i > 2 and math.random(5) == 1 then down = { "r" .. (i - 1), "r" .. (i - 2) }
      elseif i > 1 then down = "r" .. (i - 1) end
      local text = make_file(math.random, i, id, down)
      local name = ("versions/%s_%03d.lua"):format(id, math.random(999))
      files[name] = text
      texts[id] = { text = text, path = name }
    end
    local dir = h.project(files)
    local cfg = dir .. "/luamig.lua"
    local hist = core.history { config = cfg }
    assert.equal(n, #hist, "seed " .. seed)
    for _, rev in ipairs(hist) do
      local t = texts[rev.revision]
      assert.is_not_nil(t, rev.revision)
      local env = evaluate(t.text:gsub("^\xEF\xBB\xBF", ""):gsub("^#[^\n]*", ""))
      local why = ("seed %d, %s:\n%s"):format(seed, t.path, t.text)
      assert.equal(env.revision, rev.revision, why)
      assert.same(list(env.down_revision), rev.down_revision, why)
      assert.equal(env.message, rev.message, why)
      local shown = core.show { config = cfg, target = rev.revision }[1]
      assert.same(list(env.branch_labels), shown.branch_labels, why)
      assert.same(list(env.depends_on), shown.depends_on, why)
      assert.equal(env.transactional ~= false, shown.transactional, why)
    end
    -- and the bodies run: every revision's statement, in order, offline
    local sql = {}
    core.upgrade { config = cfg, sql = true, target = "base:heads",
                   log = function(event, text) if event == "sql" then sql[#sql + 1] = text end end }
    local script = table.concat(sql, "\n")
    for i = 1, n do
      assert.truthy(script:find("SELECT " .. i .. "%f[%D]"), "revision r" .. i .. " ran")
    end
  end)

  it("reports what Lua reports for files that are not plain", function()
    local cases = {
      { "local upgrade\nrevision = 'a'\nfunction upgrade() end\nfunction downgrade() end\n",
        "revision a has no upgrade%(%) function" },
      { "revision = 'a'\nfunction downgrade() end\nupgrade = 1\n", "revision a has no upgrade%(%) function" },
      { "revision = 'a'\nmessage = 42\nfunction upgrade() end\nfunction downgrade() end\n",
        "'message' must be a string, not number" },
      { "revision = 'a'\ntransactional = 'no'\nfunction upgrade() end\nfunction downgrade() end\n",
        "'transactional' must be a boolean" },
      { "revision = 'a'\ndown_revision = { 'b', 1 }\nfunction upgrade() end\nfunction downgrade() end\n",
        "down_revision must be a string or a list of strings %(item 2 is number%)" },
      { "revision = ''\nfunction upgrade() end\nfunction downgrade() end\n", "no 'revision' id set" },
      { "function revision() end\nfunction upgrade() end\nfunction downgrade() end\n",
        "'revision' must be a string, not function" },
      { "revision = 'a'\nfunction upgrade()\nfunction downgrade() end\n", "a%.lua:4: 'end' expected" },
      { "revision = 'a' error('at load')\nfunction upgrade() end\nfunction downgrade() end\n",
        "a%.lua:1: at load" },
    }
    for _, c in ipairs(cases) do
      local dir = h.project({ ["versions/a.lua"] = c[1] })
      local ok, err = pcall(core.heads, { config = dir .. "/luamig.lua" })
      assert.is_false(ok, c[1])
      assert.truthy(tostring(err):find(c[2]), c[1] .. "\ngave: " .. tostring(err))
    end
  end)

  it("leaves a body it did not need uncompiled, and stops a run before any step on one it does", function()
    local dir = h.project({
      ["versions/a.lua"] = h.revision("a", nil, 'op.execute("SELECT 1")'),
      ["versions/b.lua"] = 'revision = "b"\ndown_revision = "a"\n'
        .. 'function upgrade()\n  op.execute("SELECT 2" end\nfunction downgrade() end\n',
    })
    local cfg = dir .. "/luamig.lua"
    assert.equal("b", core.heads { config = cfg }[1].revision)
    local sql = {}
    local ok, err = pcall(core.upgrade, { config = cfg, sql = true, target = "base:head",
      log = function(event, text) if event == "sql" then sql[#sql + 1] = text end end })
    assert.is_false(ok)
    assert.matches("versions/b%.lua:4: ", tostring(err))
    assert.is_nil(table.concat(sql, "\n"):find("SELECT 1", 1, true))
  end)
end)

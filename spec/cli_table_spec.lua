-- The command table (issue #17 item 5, #13 items 7-9): options per command,
-- help that lists them, --list-cmds/--list-opts for the completions, --json
-- everywhere it makes sense, NO_COLOR, init on a project, whole file names in
-- errors, and Alembic's revision entry in history --verbose and show. #cli:
-- these also run on the sanitizer build.
local h = require "helpers"
local json = require "dkjson"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local q = h.shell_quote

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

-- The visible commands, from the table.
local function commands()
  return lines(h.run_ok({ "--list-cmds" }))
end

-- A command's own options from --list-opts: { long =, short =, arg =, help = } each,
-- and its positional arguments as { key =, words = }.
local function options(name)
  local opts, args = {}, nil
  for _, l in ipairs(lines(h.run_ok({ "--list-opts", name }))) do
    local key, words = l:match("^args (%S+) ?(.*)$")
    if key then
      args = { key = key, words = words }
    else
      local long, short, arg, help = l:match("^(%-%-[%w-]+) (%S+) (%S+) (.+)$")
      assert(long, "--list-opts " .. name .. ": bad line " .. l)
      opts[#opts + 1] = { long = long, short = short ~= "-" and short or nil,
                          arg = arg ~= "-" and arg or nil, help = help }
    end
  end
  return opts, args
end

-- A linear project a -> b -> c.
local function linear()
  return h.project({
    ["versions/aaa111_one.lua"] = h.revision("aaa111", nil, "", "", { message = "One" }),
    ["versions/bbb222_two.lua"] = h.revision("bbb222", "aaa111", "", "", { message = "Two" }),
    ["versions/ccc333_three.lua"] = h.revision("ccc333", "bbb222", "", "", { message = "Three" }),
  })
end

describe("the command table #cli", function()
  it("takes a command's own options only, naming the option and the command", function()
    local dir = linear()
    local code, out, err = h.run({ "heads", "--purge", "--splice" }, { cwd = dir })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^luamig: error: heads: unknown option '%-%-purge' %(see 'luamig help heads'", err)
    assert.matches("it is an option of stamp", err, 1, true)
    assert.equal(1, select(2, err:gsub("\n", "")), "one line: " .. err)
    code, _, err = h.run({ "heads", "--verbos" }, { cwd = dir })
    assert.equal(1, code)
    assert.matches("heads: unknown option '--verbos'; did you mean '--verbose'?", err, 1, true)
    code, _, err = h.run({ "--sql", "history" }, { cwd = dir })   -- before the command, too
    assert.equal(1, code)
    assert.matches("history: unknown option '--sql'", err, 1, true)
    code, _, err = h.run({ "--bogus" }, { cwd = dir })
    assert.equal(1, code)
    assert.matches("unknown option '--bogus' (see 'luamig --help')", err, 1, true)
    -- an option of the command, before or after it, and a global one anywhere
    assert.matches("^Rev: ccc333", h.run_ok({ "-v", "heads" }, { cwd = dir }))
    assert.matches("^Rev: ccc333", h.run_ok({ "heads", "-c", dir .. "/luamig.lua", "--verbose" }))
    assert.matches("DELETE FROM", h.run_ok({ "stamp", "--purge", "--sql", "head" }, { cwd = dir }))
  end)

  it("lists the commands alphabetically, as --help does, and the options of each", function()
    local names = commands()
    local sorted = { table.unpack(names) }
    table.sort(sorted)
    assert.same(sorted, names)
    local help = h.run_ok({ "--help" })
    local listed = {}
    for l in help:match("\nCommands:\n(.*)$"):gmatch("[^\n]+") do listed[#listed + 1] = l:match("^  (%l+) ") end
    assert.same(names, listed)
    assert.is_nil(help:find("\n  config ", 1, true))   -- hidden: for scripts
    for _, l in ipairs(lines(help)) do assert.is_true(#l <= 79, ("--help: %q is too long"):format(l)) end
    local opts, args = options("history")
    assert.same({ "--verbose", "--indicate-current", "--rev-range" },
      { opts[1].long, opts[2].long, opts[3].long })
    assert.same({ "-v", "-i", "-r" }, { opts[1].short, opts[2].short, opts[3].short })
    assert.equal("START:END", opts[3].arg)
    assert.is_nil(args)
    opts, args = options("upgrade")
    assert.same({ key = "target", words = "head heads" }, args)
    local globals = h.run_ok({ "--list-opts" })
    for _, g in ipairs { "--config -c FILE ", "--url - URL ", "--json - - ", "--quiet -q - " } do
      assert.matches("\n" .. g, "\n" .. globals, 1, true)
    end
    local code, _, err = h.run({ "--list-opts", "nope" })
    assert.equal(1, code)
    assert.matches("no command 'nope'", err, 1, true)
  end)

  it("help COMMAND lists each of its options on one line, then examples; COMMAND --help too", function()
    for _, name in ipairs(commands()) do
      local out = h.run_ok({ "help", name })
      assert.equal(out, h.run_ok({ name, "--help" }))
      local usage = assert(out:match("^usage: luamig " .. name .. "(.-)\n\n"), out)
      local optlines = assert(out:match("\nOptions:\n(.-)\n\n"), out)
      for _, o in ipairs((options(name))) do
        local left = (o.short and o.short .. ", " or "") .. o.long .. (o.arg and " " .. o.arg or "")
        assert.matches("\n  " .. left:gsub("%p", "%%%0") .. "%s+%S", "\n" .. optlines, nil, false,
          ("help %s: no line for %s"):format(name, o.long))
        assert.matches((o.short or o.long):gsub("%p", "%%%0"), usage, nil, false,
          ("help %s: the usage lacks %s"):format(name, o.long))
      end
      assert.matches("\n  %-h, %-%-help%s+this help\n", "\n" .. optlines .. "\n")
      assert.matches("\nExamples:\n  luamig " .. name, out, nil, false, "help " .. name .. ": no examples")
      for _, l in ipairs(lines(out)) do assert.is_true(#l <= 79, ("help %s: %q is too long"):format(name, l)) end
    end
    local code, _, err = h.run({ "help", "upgarde" })
    assert.equal(1, code)
    assert.matches("help: no command 'upgarde'; did you mean 'upgrade'?", err, 1, true)
    -- a command's --help wins over a missing argument
    assert.matches("^usage: luamig downgrade", h.run_ok({ "downgrade", "--help" }))
  end)

  describe("--json", function()
    local db, env
    h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

    local function doc(dir, ...)
      local code, out, err = h.run({ ... }, { cwd = dir, env = env })
      assert(code == 0 or code == 3, table.concat({ ... }, " ") .. ": exit " .. code .. ": " .. err)
      return assert(json.decode(out), out)
    end

    it("on every read-only command, verify, branches and show included", function()
      local dir = linear()
      assert.equal(3, #doc(dir, "upgrade", "--json").steps)
      assert.same({}, doc(dir, "verify", "--json").changed)
      assert.same({}, doc(dir, "branches", "--json").branches)
      local shown = doc(dir, "show", "bbb222", "--json").revisions
      assert.equal("bbb222", shown[1].revision)
      assert.same({ "ccc333" }, shown[1].children)
      assert.equal("ccc333", doc(dir, "current", "--json").current[1].revision)
      assert.equal("ccc333", doc(dir, "heads", "--json").heads[1].revision)
      assert.equal(3, #doc(dir, "history", "--json").history)
      assert.is_true(doc(dir, "status", "--json").up_to_date)
      assert.equal("aaa111", doc(dir, "stamp", "aaa111", "--json").current[1].revision)
      assert.equal("aaa111", h.psql(db, "SELECT version_num FROM luamig_version"))
      local made = doc(dir, "revision", "-m", "Four", "--rev-id", "ddd444", "--json")
      assert.same({ path = "versions/ddd444_four.lua", revision = "ddd444" }, made)
      local fresh = h.project({}, "")
      assert.same({ "app/luamig.lua", "app/versions", "app/revision.lua.tmpl", "app/.gitignore" },
        doc(fresh, "init", "app", "--json").created)
    end)

    it("or says it is not supported", function()
      local code, out, err = h.run({ "help", "--json" }, { env = env })
      assert.equal(1, code)
      assert.equal("--json is not supported by help", json.decode(out).error)
      assert.matches("luamig: error: --json is not supported by help\n", err, 1, true)
    end)

    -- stdout on a terminal (script(1) gives the command one)
    local function on_tty(dir, extra_env, ...)
      local args = {}
      for i, a in ipairs { h.bin, ... } do args[i] = q(a) end
      local vars = {}
      for k, v in pairs(extra_env) do vars[#vars + 1] = q(k .. "=" .. v) end
      local cmd = ("cd %s && env %s DATABASE_URL=%s script -qec %s /dev/null </dev/null")
        :format(q(dir), table.concat(vars, " "), q(h.url(db)), q(table.concat(args, " ")))
      local code, out = h.sh(cmd)
      assert.equal(0, code, out)
      return out
    end

    it("NO_COLOR hides the colour, not the [i/N] counter of a terminal", function()
      local dir = linear()
      local out = on_tty(dir, { NO_COLOR = "1" }, "upgrade", "bbb222")
      assert.matches("[1/2] Running upgrade  -> aaa111, One ... ", out, 1, true)
      assert.matches("[2/2] Running upgrade aaa111 -> bbb222, Two ... ", out, 1, true)
      assert.is_nil(out:find("\27[", 1, true), out)
      out = on_tty(dir, {}, "downgrade", "base")      -- with colour: the counter dimmed
      assert.matches("\27[2m[1/2]\27[0m Running downgrade bbb222 -> aaa111", out, 1, true)
      -- not a terminal: no counter, no colour
      local code, plain = h.run({ "upgrade" }, { cwd = dir, env = env })
      assert.equal(0, code)
      assert.matches("^Running upgrade  %-> aaa111", plain)
      assert.is_nil(plain:find("[1/", 1, true))
    end)
  end)

  it("init refuses a directory that has a luamig.lua, and reports only what it created", function()
    local dir = h.project({}, "")
    os.remove(dir .. "/luamig.lua")
    assert.matches("^Created app/luamig.lua\nCreated app/versions\n", h.run_ok({ "init", "app" }, { cwd = dir }))
    local f = assert(io.open(dir .. "/app/luamig.lua", "w"))
    f:write('return { versions = "versions" } -- mine\n')
    f:close()
    local code, out, err = h.run({ "init", "app" }, { cwd = dir })
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("luamig: error: Directory app already has a luamig.lua (app/luamig.lua): nothing created\n", err)
    assert.equal('return { versions = "versions" } -- mine\n', read(dir .. "/app/luamig.lua"))
    -- the config gone, the rest there: only the config is new
    os.remove(dir .. "/app/luamig.lua")
    assert.equal("Created app/luamig.lua\n", h.run_ok({ "init", "app" }, { cwd = dir }):match("^(.-\n)Edit"))
  end)

  it("never cuts a long file name in an error", function()
    local long = ("very_long_directory_name_"):rep(4) .. "/versions_of_this_project"
    local file = long .. "/aaa111_an_extremely_long_revision_file_name_to_test_messages.lua"
    local dir = h.project({ [file] = 'revision = "aaa111"\nfunction upgrade(\n' },
      ("return { versions = %q }\n"):format(long))
    local function fails(pattern, ...)
      local code, _, err = h.run({ ... }, { cwd = dir })
      assert.equal(1, code, err)
      assert.matches(pattern, err, 1, true)
      assert.is_nil(err:find("%.%.%.[%w_/]"), err)          -- Lua's cut: "...tail_of_the_name.lua"
    end
    fails(file .. ":3: <name> or '...' expected", "heads")   -- a syntax error
    local f = assert(io.open(dir .. "/" .. file, "w"))
    f:write('revision = "aaa111"\nfunction upgrade()\n  local t\n  return t.x\nend\nfunction downgrade() end\n')
    f:close()
    fails(file .. ":4: attempt to index a nil value", "upgrade", "--sql", "--lint", "off")
    f = assert(io.open(dir .. "/" .. file, "w"))
    f:write('revision = "aaa111"\nfunction upgrade()\n  while true do end\nend\nfunction downgrade() end\n')
    f:close()
    fails(file .. ":3: upgrade() ran longer than revision_timeout", "--revision-timeout", "50ms",
      "upgrade", "--sql", "--lint", "off")
    -- the config file, by a long path
    local config = long .. "/luamig.lua"
    f = assert(io.open(dir .. "/" .. config, "w"))
    f:write("return {\n")
    f:close()
    fails(config .. ":2: unexpected symbol", "-c", config, "heads")
  end)
end)

-- Alembic's log_entry (alembic/script/base.py) for the graph below, paths as luamig's.
local ENTRIES = {
  m1 = "Rev: m1 (head) (mergepoint)\nMerges: b1, b2\nBranch names: one\nPath: versions/m1_merge.lua\n\n"
    .. "    Merge\n\n    Revision ID: m1\n    Revises: b1, b2\n    Create Date: 2024-01-01 00:00:00\n\n",
  b2 = "Rev: b2\nParent: a1\nAlso depends on: b1\nPath: versions/b2_two.lua\n\n"
    .. "    Branch two\n\n    Revision ID: b2\n    Revises: a1\n    Create Date: 2024-01-01 00:00:00\n\n",
  b1 = "Rev: b1\nParent: a1\nBranch names: one\nPath: versions/b1_one.lua\n\n"
    .. "    Branch one\n\n    Revision ID: b1\n    Revises: a1\n    Create Date: 2024-01-01 00:00:00\n\n",
  a1 = "Rev: a1 (branchpoint)\nParent: <base>\nBranches into: b1, b2\nPath: versions/a1_users.lua\n\n"
    .. "    Create users\n\n    Revision ID: a1\n    Revises:\n    Create Date: 2024-01-01 00:00:00\n\n",
}

-- The revisions as luamig's template writes them (and Alembic's, docstrings for comments).
local GRAPH = {
  { "a1", "users", "Create users", nil },
  { "b1", "one", "Branch one", "a1", { branch_labels = { "one" } } },
  { "b2", "two", "Branch two", "a1", { depends_on = { "b1" } } },
  { "m1", "merge", "Merge", { "b1", "b2" } },
}

-- A literal of nil, a string or a list of strings: Lua's (nil, { "a" }) or, with
-- python, Python's (None, ("a",)).
local function literal(v, python)
  if v == nil then return python and "None" or "nil" end
  if type(v) == "string" then return ("%q"):format(v) end
  local items = {}
  for i, x in ipairs(v) do items[i] = ("%q"):format(x) end
  return python and "(" .. table.concat(items, ", ") .. ",)" or "{ " .. table.concat(items, ", ") .. " }"
end

-- A revision file opening with the comment lines of header (none: no comment).
local function revision_file(header, id, down, fields)
  local text = header and ("-- " .. header:gsub("\n", "\n-- "):gsub("%-%- \n", "--\n") .. "\n") or ""
  text = text .. ("revision = %q\ndown_revision = %s\n"):format(id, literal(down))
  for _, k in ipairs { "branch_labels", "depends_on", "message" } do
    if fields[k] ~= nil then text = text .. ("%s = %s\n"):format(k, literal(fields[k])) end
  end
  if fields.transactional == false then text = text .. "transactional = false\n" end
  return text .. "function upgrade() end\nfunction downgrade() end\n"
end

local function graph_project()
  local files = {}
  for _, r in ipairs(GRAPH) do
    local id, slug, msg, down, extra = r[1], r[2], r[3], r[4], r[5] or {}
    local revises = type(down) == "table" and table.concat(down, ", ") or down or ""
    files[("versions/%s_%s.lua"):format(id, slug)] = revision_file(
      ("%s\n\nRevision ID: %s\nRevises: %s\nCreate Date: 2024-01-01 00:00:00"):format(msg, id, revises),
      id, down, { message = msg, branch_labels = extra.branch_labels, depends_on = extra.depends_on })
    files[("alembic/versions/%s_%s.py"):format(id, slug)] = ('"""%s\n\nRevision ID: %s\nRevises: %s\n'
      .. 'Create Date: 2024-01-01 00:00:00\n\n"""\nrevision = %q\ndown_revision = %s\nbranch_labels = %s\n'
      .. "depends_on = %s\ndef upgrade(): pass\ndef downgrade(): pass\n")
      :format(msg, id, revises, id, literal(down, true), literal(extra.branch_labels, true),
              literal(extra.depends_on, true))
  end
  files["alembic.ini"] = "[alembic]\nscript_location = alembic\n"
  return h.project(files)
end

describe("a revision in full #cli", function()
  it("history --verbose and show print Alembic's entry: header, path, then the file's header comment", function()
    local dir = graph_project()
    local out = h.run_ok({ "history", "--verbose" }, { cwd = dir, env = { DATABASE_URL = false } })
    assert.equal(ENTRIES.m1 .. ENTRIES.b2 .. ENTRIES.b1 .. ENTRIES.a1, out)
    for id, entry in pairs(ENTRIES) do
      assert.equal(entry, h.run_ok({ "show", id }, { cwd = dir }))
    end
    assert.equal(ENTRIES.m1, h.run_ok({ "heads", "--verbose" }, { cwd = dir }))
    assert.equal(ENTRIES.a1, h.run_ok({ "branches", "--verbose" }, { cwd = dir }))
  end)

  it("is Alembic's own output for the same graph (python3-alembic)", function()
    if h.sh("/usr/bin/python3 -c 'import alembic' 2>/dev/null") ~= 0 then
      pending("python3-alembic is not installed (make deps installs it)")
      return
    end
    local dir = graph_project()
    local code, out = h.sh(("cd %s && PYTHONHASHSEED=0 /usr/bin/python3 -m alembic history --verbose")
      :format(q(dir)))
    assert.equal(0, code, out)
    -- Alembic's paths are absolute .py files; "Branches into:" comes from a set
    out = out:gsub("Path: [^\n]*/alembic/versions/([%w_]+)%.py", "Path: versions/%1.lua")
      :gsub("[ ]+\n", "\n")
      :gsub("Branches into: ([^\n]+)", function(list)
        local ids = {}
        for id in list:gmatch("[^, ]+") do ids[#ids + 1] = id end
        table.sort(ids)
        return "Branches into: " .. table.concat(ids, ", ")
      end)
    assert.equal(out, h.run_ok({ "history", "--verbose" }, { cwd = dir }))
  end)

  it("history --verbose and show describe a revision alike: its header comment, else its message", function()
    local dir = h.project({
      ["versions/aaa111_plain.lua"] = revision_file(nil, "aaa111", nil, { message = "Plain one" }),
      ["versions/bbb222_doc.lua"] = revision_file("Add the thing\n\nLong story.  ", "bbb222", "aaa111",
        { message = "Add the thing", transactional = false }),
    })
    local shown = h.run_ok({ "show", "aaa111" }, { cwd = dir }) .. h.run_ok({ "show", "bbb222" }, { cwd = dir })
    assert.equal(h.run_ok({ "history", "-v", "-r", "bbb222:" }, { cwd = dir })
      .. h.run_ok({ "history", "-v", "-r", ":aaa111" }, { cwd = dir }),
      h.run_ok({ "show", "bbb222" }, { cwd = dir }) .. h.run_ok({ "show", "aaa111" }, { cwd = dir }))
    assert.matches("Path: versions/aaa111_plain.lua\n\n    Plain one\n\n", shown, 1, true)
    assert.matches("Transactional: no\n\n    Add the thing\n\n    Long story.\n\n", shown, 1, true)
  end)
end)

describe("one command list #cli", function()
  it("init.lua exposes the core function of every command", function()
    local api = read(h.root .. "/lua/luamig/init.lua")
    local list = assert(api:match("for _, name in ipairs (%b{})"), "init.lua: no command list")
    local names = {}
    for name in list:gmatch('"(%l+)"') do names[name] = true end
    for _, core in ipairs(lines(h.run_ok({ "--list-cmds=api" }))) do
      assert.is_true(names[core], "lua/luamig/init.lua does not expose luamig." .. core)
    end
    for name in pairs(names) do
      assert.equal("function", type(require("luamig.core")[name]), "init.lua: core has no " .. name)
    end
  end)

  it("the man page's COMMANDS are the table's, each with its options", function()
    local man = read(h.root .. "/docs/luamig.1"):gsub("\\%-", "-"):gsub("\\f[BIRP]", "")
    local section = assert(man:match("\n%.SH COMMANDS\n(.-)\n%.PP\n"), "docs/luamig.1: no COMMANDS")
    local listed = {}
    for entry in ("\n" .. section):gmatch("\n%.TP\n([^\n]+)") do
      local synopsis = entry:gsub('"', "")
      local name = assert(synopsis:match("^%.[BIR]+ (%l+)"), entry)
      listed[#listed + 1] = name
      for _, o in ipairs((options(name))) do
        assert.is_truthy(synopsis:find(o.long, 1, true) or (o.short and synopsis:find(o.short, 1, true)),
          ("docs/luamig.1: the synopsis of %s lacks %s"):format(name, o.long))
      end
    end
    assert.same(commands(), listed)
  end)

  it("the README's Commands table lists every command", function()
    local readme = read(h.root .. "/README.md")
    local section = assert(readme:match("\n## Commands\n(.-)\n## "), "README.md: no Commands section")
    for _, name in ipairs(commands()) do
      assert.matches("\n|[^\n]*`luamig " .. name .. "[ `]", section, nil, false, "README.md: no row for " .. name)
    end
  end)

  it("the completions read the table instead of a list of their own", function()
    local names = table.concat(commands(), " ")
    for _, file in ipairs { "completions/luamig.bash", "completions/_luamig" } do
      local text = read(h.root .. "/" .. file)
      assert.is_nil(text:find("branches check current", 1, true), file .. " lists the commands itself")
      assert.matches("--list-cmds", text, 1, true)
      assert.matches("--list-opts", text, 1, true)
    end
    -- bash: what luamig heads --<TAB> offers is heads' options and the global ones
    local script = ([[
      source %s || exit 1
      complete_words() {
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _luamig
        echo "$(printf '%%s\n' "${COMPREPLY[@]}" | sort | paste -sd ' ')"
      }
      complete_words %s ''
      complete_words %s heads --
      complete_words %s stamp --p
      complete_words %s heads --p
    ]]):format(q(h.root .. "/completions/luamig.bash"), q(h.bin), q(h.bin), q(h.bin), q(h.bin))
    local code, out = h.sh("bash --norc --noprofile -c " .. q(script))
    assert.equal(0, code, out)
    local got = {}
    for l in out:gmatch("([^\n]*)\n") do got[#got + 1] = l end
    assert.same({ names,
                  "--config --direct-url --help --json --quiet --revision-timeout --url --verbose --version",
                  "--purge", "" }, got)
    -- zsh: the commands with their summaries, and _arguments specs from --list-opts
    if h.sh("command -v zsh >/dev/null") ~= 0 then return end
    local zsh = ([[
      _describe() { print -l -- "${(@P)4}"; }
      eval "$(sed '$d' %s)"
      _luamig_bin=%s
      _luamig_commands
      _luamig_specs specs $_luamig_bin heads
      print -l -- $specs
      _luamig_specs specs $_luamig_bin upgrade
      print -l -- $specs
    ]]):format(q(h.root .. "/completions/_luamig"), q(h.bin))
    code, out = h.sh("zsh -f -c " .. q(zsh))
    assert.equal(0, code, out)
    assert.matches("^branches:Show the branch points\ncheck:", out)
    assert.matches("\n%(%-v %-%-verbose%)%-v%[more detail[^\n]*\n%(%-v %-%-verbose%)%-%-verbose%[", out)
    assert.matches("\n--lint=[lint the revisions first: refuse, warn (default) or skip]:strict|warn|off:(strict warn off)\n",
      out, 1, true)
    assert.matches("\n1:target:{_luamig_revisions head heads}\n", out, 1, true)
    assert.is_nil(out:find("--purge", 1, true))
  end)
end)

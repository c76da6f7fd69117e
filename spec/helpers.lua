-- spec/helpers.lua: what every spec needs: run the CLI, talk to the test
-- cluster (PGHOST/PGPORT/PGUSER, set by scripts/test.sh), fresh databases,
-- throwaway project directories and revision files.
assert(_VERSION == "Lua 5.4",
  "the specs need Lua 5.4, this is " .. _VERSION .. ": run `busted --lua=lua5.4`")

local h = {}

local PSQL = "/usr/lib/postgresql/15/bin/psql"

-- Quotes s as one sh word: '...' with each ' written as '\''.
function h.shell_quote(s)
  s = tostring(s)
  assert(not s:find("\0", 1, true), "shell arguments cannot contain NUL bytes")
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end
local q = h.shell_quote

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
end
h.read_file, h.write_file = read_file, write_file

-- os.execute's triple as one integer: the exit status, or 128 + signal like sh.
local function status(ok, how, n)
  -- The shell itself killed by SIGINT: a ^C to the whole run. Lua ignores it while
  -- waiting for a child, so stop here instead of failing one spec and going on.
  if how == "signal" and n == 2 then
    io.stderr:write("interrupted\n")
    os.exit(130, true)
  end
  if how == "signal" then return 128 + n end
  return n or (ok and 0 or 1)
end

h.read_file, h.write_file = read_file, write_file

-- Runs cmd with sh; returns its exit code and its stdout and stderr together.
function h.sh(cmd)
  local p = assert(io.popen("{ " .. cmd .. "\n} 2>&1", "r"))
  local out = p:read("a")
  return status(p:close()), out
end

-- Like h.sh, but raises unless cmd succeeds; returns the output with the final newline removed.
local function must(cmd)
  local code, out = h.sh(cmd)
  if code ~= 0 then error(("command failed (exit %d): %s\n%s"):format(code, cmd, out), 3) end
  return (out:gsub("\n$", ""))
end

h.root = must("cd " .. q(debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/.. && pwd")
local cwd = must("pwd")
local bin = os.getenv("LUAMIG_BIN") or (h.root .. "/build/luamig")
h.bin = bin:sub(1, 1) == "/" and bin or (cwd .. "/" .. bin)   -- specs change cwd: make it absolute
local pid = must("echo $PPID")                                 -- the shell's parent: this process

-- One private temp dir per load of this module (busted reloads it per spec file),
-- under TMPDIR so scripts/test.sh's trap removes anything left behind.
local session
local function tmpdir()
  session = session or must([[mktemp -d "${TMPDIR:-/tmp}/luamig-spec.XXXXXX"]])
  return session
end
local counter = 0
local function fresh(prefix)
  counter = counter + 1
  return ("%s/%s%d"):format(tmpdir(), prefix, counter)
end

-- A sanitizer report fails the spec whatever exit code the spec expected.
local function check_sanitizers(stderr, what)
  if stderr:find("ERROR: AddressSanitizer", 1, true) or stderr:find("ERROR: LeakSanitizer", 1, true)
      or stderr:find("%.[ch]:%d+:%d+: runtime error: ") then
    error("sanitizer report from " .. what .. ":\n" .. stderr, 4)
  end
end

-- The shell command for one run of the CLI; output into out/err files.
local function command(args, opts, out, err)
  local parts = {}
  if opts.cwd then parts[#parts + 1] = "cd " .. q(opts.cwd) .. " &&" end
  -- timeout: a hung run (a lock never released) fails the spec instead of the whole suite.
  parts[#parts + 1] = ("timeout --foreground -k 5 %d env"):format(opts.timeout or 120)
  local names = {}
  for k in pairs(opts.env or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do   -- env wants its -u options before the assignments
    assert(k:match("^[%a_][%w_]*$"), "bad environment variable name: " .. k)
    if opts.env[k] == false then parts[#parts + 1] = "-u " .. k end
  end
  for _, k in ipairs(names) do
    if opts.env[k] ~= false then parts[#parts + 1] = q(k .. "=" .. tostring(opts.env[k])) end
  end
  parts[#parts + 1] = q(opts.bin or h.bin)
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local stdin = "/dev/null"       -- never let the CLI wait on the terminal
  if opts.stdin then
    stdin = fresh("in")
    write_file(stdin, opts.stdin)
  end
  return table.concat(parts, " ") .. " <" .. q(stdin) .. " >" .. q(out) .. " 2>" .. q(err)
end

local function collect(out, err, what)
  local stdout, stderr = read_file(out), read_file(err)
  os.remove(out)
  os.remove(err)
  check_sanitizers(stderr, what)
  return stdout, stderr
end

-- Runs the CLI with args (an array); returns code, stdout, stderr.
-- opts: cwd, env (name -> value, or false to unset), stdin (string),
-- timeout (seconds, default 120; 124 = timed out), bin (another executable).
function h.run(args, opts)
  opts = opts or {}
  local out, err = fresh("out"), fresh("err")
  local code = status(os.execute(command(args, opts, out, err)))
  return code, collect(out, err, "luamig " .. table.concat(args, " "))
end

-- h.run that must succeed: raises with the command and its stderr otherwise;
-- returns stdout.
function h.run_ok(args, opts)
  local code, out, err = h.run(args, opts)
  if code ~= 0 then
    error(("luamig %s: exit %d: %s"):format(table.concat(args, " "), code, err), 2)
  end
  return out
end

-- Runs several CLI invocations at once (lock and concurrency specs).
-- jobs: array of { args, opts }; returns an array of { code =, stdout =, stderr = }.
function h.run_all(jobs)
  local script, files = {}, {}
  for i, job in ipairs(jobs) do
    local f = { out = fresh("out"), err = fresh("err"), code = fresh("code") }
    files[i] = f
    script[#script + 1] = ("( %s; echo $? >%s ) &"):format(
      command(job[1], job[2] or {}, f.out, f.err), q(f.code))
  end
  script[#script + 1] = "wait"
  must(table.concat(script, "\n"))
  local results = {}
  for i, f in ipairs(files) do
    local code = tonumber(read_file(f.code))
    os.remove(f.code)
    local stdout, stderr = collect(f.out, f.err, "luamig " .. table.concat(jobs[i][1], " "))
    results[i] = { code = code, stdout = stdout, stderr = stderr }
  end
  return results
end

-- Runs sql on db (a database name or a URL/conninfo); returns the output,
-- unaligned, without headers, command tags (-q) or surrounding whitespace. Raises on error.
function h.psql(db, sql)
  local out, err = fresh("out"), fresh("err")
  local code = status(os.execute(("%s -X -q -A -t -v ON_ERROR_STOP=1 -d %s -c %s </dev/null >%s 2>%s")
    :format(PSQL, q(db), q(sql), q(out), q(err))))
  local stdout, stderr = collect(out, err, "psql")
  if code ~= 0 then error(("psql failed (exit %d) on %s: %s\n%s"):format(code, db, sql, stderr), 2) end
  return (stdout:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function ident(name) return '"' .. name:gsub('"', '""') .. '"' end

local databases = {}   -- created here and not dropped yet

-- Creates an empty database with a name no other spec uses; returns the name.
function h.new_database()
  local name = ("spec_%s_%d_%x"):format(pid, counter + 1, math.random(0, 0x7fffffff))
  counter = counter + 1
  h.psql("postgres", "CREATE DATABASE " .. ident(name))
  databases[name] = true
  return name
end

function h.drop_database(name)
  h.psql("postgres", "DROP DATABASE IF EXISTS " .. ident(name) .. " WITH (FORCE)")
  databases[name] = nil
end

local function pct(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- A libpq URL for db on the test cluster.
function h.url(db)
  local host = assert(os.getenv("PGHOST"), "PGHOST is not set: run the specs through scripts/test.sh")
  return ("postgresql:///%s?host=%s&port=%s&user=%s"):format(
    pct(db), pct(host), pct(os.getenv("PGPORT") or "5432"), pct(os.getenv("PGUSER") or "postgres"))
end

-- A fresh project directory: luamig.lua (config, or the default) plus
-- files (relative path -> content; subdirectories are created). Returns its path.
function h.project(files, config)
  local dir = fresh("project")
  must("mkdir -p " .. q(dir))
  write_file(dir .. "/luamig.lua", config or 'return { versions = "versions" }\n')
  for name, content in pairs(files or {}) do
    local sub = name:match("^(.*)/[^/]*$")
    if sub then must("mkdir -p " .. q(dir .. "/" .. sub)) end
    write_file(dir .. "/" .. name, content)
  end
  return dir
end

-- A Lua literal for a string, boolean, number or array of those.
local function literal(v)
  if type(v) == "table" then
    local items = {}
    for i, x in ipairs(v) do items[i] = literal(x) end
    return "{ " .. table.concat(items, ", ") .. " }"
  elseif type(v) == "string" then
    return ("%q"):format(v)
  end
  return tostring(v)
end

-- The text of a revision file. down: an id, an array of ids (a merge) or nil (a base).
-- extra: a table of further top-level fields (message = "...", depends_on = {...},
-- branch_labels = {...}, transactional = false), or a string of Lua appended verbatim.
function h.revision(id, down, body_up, body_down, extra)
  local fields = type(extra) == "table" and extra or {}
  local message = fields.message or id
  local lines = {
    "-- " .. message:gsub("\n", " "),
    "revision = " .. literal(id),
    "down_revision = " .. (down == nil and "nil" or literal(down)),
    "message = " .. literal(message),
  }
  local names = {}
  for k in pairs(fields) do if k ~= "message" then names[#names + 1] = k end end
  table.sort(names)
  for _, k in ipairs(names) do lines[#lines + 1] = k .. " = " .. literal(fields[k]) end
  if type(extra) == "string" then lines[#lines + 1] = extra end
  lines[#lines + 1] = "function upgrade()\n  " .. (body_up or "") .. "\nend"
  lines[#lines + 1] = "function downgrade()\n  " .. (body_down or "") .. "\nend"
  return table.concat(lines, "\n") .. "\n"
end

-- A project of n revisions r001..rNNN in a line, each creating a table tNNN.
function h.chain(n)
  local files = {}
  for i = 1, n do
    local id, down = ("r%03d"):format(i), i > 1 and ("r%03d"):format(i - 1) or nil
    files[("versions/%s.lua"):format(id)] = h.revision(id, down,
      ('op.create_table("t%03d", { { "id", "int" } })'):format(i), ('op.drop_table("t%03d")'):format(i))
  end
  return h.project(files)
end

-- busted puts describe, it, before_each... in each spec file's environment, not
-- in _G: the _ENV of the function level levels up.
local function spec_env(level)
  local f = debug.getinfo(level + 1, "f").func
  for i = 1, 255 do
    local name, value = debug.getupvalue(f, i)
    if name == nil then break end
    if name == "_ENV" then return value end
  end
  return _G
end

-- In a describe: a fresh database for each spec, dropped after it. open(name)
-- runs first (to set the describe's locals: its env, a connection); close(),
-- when given, runs before the drop.
function h.database_each(open, close)
  local env = spec_env(2)
  local name
  env.before_each(function()
    name = h.new_database()
    open(name)
  end)
  env.after_each(function()
    if close then close() end
    h.drop_database(name)
  end)
end

-- Starts spec/fixtures/silent_listener (a TCP server that accepts and never
-- answers, on 127.0.0.1); returns its port and a function that stops it.
function h.silent_listener()
  local bin = h.project({}) .. "/silent_listener"
  must(("cc -o %s %s/spec/fixtures/silent_listener.c"):format(q(bin), q(h.root)))
  local pid = assert(tonumber(must(("%s > %s.port 2>/dev/null </dev/null & echo $!"):format(q(bin), q(bin)))))
  local stop = function() h.sh("kill " .. pid) end
  for _ = 1, 100 do
    local f = io.open(bin .. ".port")
    local port = f and f:read("l")
    if f then f:close() end
    if port then return port, stop end
    h.sh("sleep 0.1")
  end
  stop()
  error("the silent listener printed no port in 10 s")
end

-- Runs the CLI with args in dir under strace (its -e trace=calls, e.g. "open,openat"),
-- with the variables of env; returns strace's log, the exit code and luamig's stderr.
function h.strace(dir, args, calls, env)
  local log, err = fresh("strace"), fresh("err")
  local parts = { "env" }
  for k, v in pairs(env or {}) do parts[#parts + 1] = q(k .. "=" .. v) end
  parts[#parts + 1] = q(h.bin)
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  -- LeakSanitizer cannot run under ptrace: the ASan build checks leaks in the other specs
  local code = h.sh(("cd %s && ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 strace -f -qq -e "
    .. "trace=%s -o %s %s 2>%s"):format(q(dir), calls, q(log), table.concat(parts, " "), q(err)))
  local text, stderr = read_file(log), read_file(err)
  os.remove(log)
  os.remove(err)
  return text, code, stderr
end

-- The server round trips of a run of luamig args in dir (env as h.strace's): each run
-- of messages sent before the next read is one, the start-up and the goodbye included
-- (libpq writes a pipeline's parts apart, at each Sync). Returns them, the bytes read
-- and luamig's stderr; raises when the run fails.
function h.round_trips(dir, args, env)
  local log, code, err = h.strace(dir, args, "sendto,recvfrom", env)
  assert(code == 0, err)
  local trips, bytes, sending = 0, 0, false
  for line in log:gmatch("[^\n]+") do
    if line:find("sendto(", 1, true) then
      if not sending then trips = trips + 1 end
      sending = true
    elseif line:find("recvfrom(", 1, true) then
      sending = false
      bytes = bytes + (tonumber(line:match("%) = (%d+)$")) or 0)
    end
  end
  return trips, bytes, err
end

-- Waits (bounded: tries times 0.1 s, default 100) until cond() is true.
function h.eventually(cond, what, tries)
  for _ = 1, tries or 100 do
    if cond() then return end
    h.sh("sleep 0.1")
  end
  error("timed out waiting for " .. what, 2)
end

-- Starts spec/lint_load.lua, the running application, on db's table tbl (id, n):
-- it reads, updates and inserts rows, timing each statement. Returns a function
-- that stops it and returns { count =, longest = (seconds), errors =, first = }.
function h.start_load(db, tbl)
  local dir = h.project({})
  local stop, out = dir .. "/stop", dir .. "/load.out"
  local cmd = ("cd %s && LUA_CPATH=%s LUA_PATH=%s lua5.4 spec/lint_load.lua %s %s %s %s >%s 2>&1 &"):format(
    q(h.root), q(package.cpath), q(package.path),
    q(h.url(db)), q(tbl), q(stop), q(out), q(dir .. "/load.log"))
  assert(h.sh(cmd) == 0, "could not start the load client")
  local function exists(p) local f = io.open(p) if f then f:close() end return f ~= nil end
  local function wait_for(p)
    for _ = 1, 200 do
      if exists(p) then return end
      h.sh("sleep 0.05")
    end
    local f = io.open(dir .. "/load.log")
    error("the load client did not write " .. p .. ": " .. (f and f:read("a") or ""))
  end
  wait_for(out .. ".ready")
  return function()
    h.sh("sleep 0.3")                  -- the application goes on a little after the deploy
    assert(io.open(stop, "w")):close()
    wait_for(out)
    local f = assert(io.open(out))
    local count, longest, errors, first = f:read("n", "n", "n", "l")
    f:close()
    return { count = count, longest = longest, errors = errors, first = first }
  end
end

-- Drops the databases made by new_database and removes every temp dir.
-- Also runs when this module is collected (busted reloads it per spec file, and at exit).
function h.cleanup()
  for name in pairs(databases) do pcall(h.drop_database, name) end
  if session then
    h.sh("rm -rf " .. q(session))
    session = nil
  end
end

h._finalizer = setmetatable({}, { __gc = function() pcall(h.cleanup) end })

return h

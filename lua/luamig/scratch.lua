-- luamig.scratch: the databases `luamig test` works on. By default each is created
-- with CREATE DATABASE on the configured server and dropped at the end; with
-- scratch = true (--scratch) a throwaway cluster is started first (initdb and pg_ctl,
-- as `make test` does: only a Unix socket, in a private directory, the server run as
-- postgres when we are root) and removed at the end, databases and all.
local core = require "luamig.core"

local sys = core.scratch

local S = {}
S.__index = S

local NAME_MAX = 63                  -- PostgreSQL's NAMEDATALEN - 1

-- The directory of PostgreSQL's programs: $PG_BINDIR, else what pg_config says.
local function bindir(dir)
  local found = os.getenv("PG_BINDIR")
  if not found or found == "" then
    local out = dir .. "/pg_config.out"
    local ok, status = pcall(sys.spawn, { "pg_config", "--bindir" }, out)
    local f = io.open(out)
    found = ok and status == 0 and f and f:read("l") or nil
    if f then f:close() end
  end
  local initdb = found and io.open(found .. "/initdb")
  if not initdb then
    error(("--scratch needs PostgreSQL's server programs (initdb, pg_ctl)%s: set PG_BINDIR, or put "
           .. "pg_config on PATH (apt-get install postgresql)"):format(found and (", not in " .. found) or ""), 0)
  end
  initdb:close()
  return found
end

-- The last n lines of a log, on one line.
local function tail(path, n)
  local lines = {}
  local f = io.open(path)
  if not f then return "" end
  for line in f:lines() do
    lines[#lines + 1] = line
    if #lines > n then table.remove(lines, 1) end
  end
  f:close()
  return table.concat(lines, " / ")
end

-- Runs one of PostgreSQL's programs; raises with its log's last lines when it fails.
local function must(argv, log, what)
  local status = sys.spawn(argv, log)
  if status ~= 0 then
    error(("%s failed (exit %d): %s"):format(what, status, tail(log, 5)), 0)
  end
end

-- Starts a cluster in a new private directory (self.cluster: its directory, programs,
-- whether it runs); returns the URL of its postgres database.
local function start_cluster(self)
  local dir = sys.tempdir()
  self.cluster = { dir = dir }
  local bin = bindir(dir)
  self.cluster.bin = bin
  local data = dir .. "/data"
  must({ bin .. "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
         "--locale=C", "-N" }, dir .. "/initdb.log", "initdb")
  local conf = assert(io.open(data .. "/postgresql.conf", "a"))
  -- no TCP (clusters never clash on ports); durability is worthless for a test
  conf:write(("\nlisten_addresses = ''\nunix_socket_directories = '%s'\nfsync = off\n"
              .. "full_page_writes = off\nsynchronous_commit = off\n"):format((dir:gsub("'", "''"))))
  conf:close()
  -- marked first: a ^C lands at the next Lua instruction, and close() must stop it then too
  self.cluster.running = true
  must({ bin .. "/pg_ctl", "start", "-w", "-D", data, "-l", dir .. "/server.log", "-o", "-p 5432" },
       dir .. "/pg_ctl.log", "starting the scratch server (pg_ctl start)")
  return sys.conninfo(nil, { host = dir, port = "5432", user = "postgres", dbname = "postgres" })
end

-- Opens where the scratch databases go: opts.scratch (a cluster of its own) or the
-- server of cfg.direct_url or cfg.url. Raises when that server cannot be reached.
function S.open(opts, cfg)
  local self = setmetatable({ created = {}, pid = sys.pid() }, S)
  local ok, err = pcall(function()
    -- direct_url: the server itself when url is a pooler, which knows no new database
    self.admin_url = opts.scratch and start_cluster(self) or cfg.direct_url or cfg.url
    self.admin = core.connect(self.admin_url)
    local row = self.admin:query("SELECT current_database() AS db, "
      .. "current_setting('server_version_num')::int AS version")[1]
    self.base = opts.scratch and "" or row.db
    self.version = row.version
  end)
  if not ok then
    self:close()
    error(err, 0)
  end
  return self
end

-- Where the run happens, for its first line: the server (password masked), or the cluster.
function S:where()
  if self.cluster then return "a throwaway cluster in " .. self.cluster.dir end
  return core.redact(self.admin_url or "")
end

-- What close() does, for a last message.
function S:gone()
  if self.cluster then return ("the throwaway cluster in %s is removed"):format(self.cluster.dir) end
  return ("the scratch databases on %s are dropped"):format(self:where())
end

-- The database's name: <base>_luamig_test_<pid>, the base cut to fit 63 bytes
-- (luamig_test_<pid> in a cluster of our own).
function S:name()
  local tail_part = (self.base == "" and "" or "_") .. "luamig_test_" .. self.pid
  local base = self.base:sub(1, NAME_MAX - #tail_part)
  while base ~= "" and not utf8.len(base) do base = base:sub(1, -2) end   -- a whole character
  return base .. tail_part
end

-- Creates an empty database (dropped first when an earlier try left it); returns its
-- name and URL.
function S:create()
  local name = self:name()
  self:drop(name)
  -- kept even when this fails: ^C raises when CREATE returns, inside the pcall, and close()
  -- drops only what exists
  self.created[name] = true
  local ok, err = pcall(self.admin.exec, self.admin, "CREATE DATABASE " .. core.quote_ident(name))
  if not ok then
    error(("could not create the scratch database %s: %s (a role without CREATEDB can run "
           .. "'luamig test --scratch', which starts a server of its own)"):format(name, err), 0)
  end
  return name, sys.conninfo(self.admin_url, { dbname = name })
end

function S:drop(name)
  local force = self.version >= 130000 and " WITH (FORCE)" or ""
  self.admin:exec("DROP DATABASE IF EXISTS " .. core.quote_ident(name) .. force)
  self.created[name] = nil
end

-- Drops every database made here, then stops and removes the cluster; never raises
-- (returns the problems, one line each, for warnings).
function S:close()
  local problems = {}
  if self.admin then
    for name in pairs(self.created) do
      local ok, err = pcall(self.drop, self, name)
      if not ok then problems[#problems + 1] = ("could not drop %s: %s"):format(name, err) end
    end
    self.admin:close()
    self.admin = nil
  end
  local c = self.cluster
  if c then
    if c.running then
      pcall(sys.spawn, { c.bin .. "/pg_ctl", "stop", "-w", "-m", "immediate", "-D", c.dir .. "/data" },
            c.dir .. "/pg_ctl.log")
    end
    local ok, status = pcall(sys.spawn, { "rm", "-rf", c.dir })
    if not ok or status ~= 0 then problems[#problems + 1] = "could not remove " .. c.dir end
    self.cluster = nil
  end
  return problems
end

return S

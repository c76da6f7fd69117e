-- spec/topology.lua: the production topologies of the pooler, standby and
-- connection specs, as real servers (scripts/topology.sh): PgBouncer, a
-- streaming standby of the test cluster, a server with SSL. Each spec file
-- starts what it needs once (lazy_setup) and stops it in lazy_teardown.
local h = require "helpers"

local t = {}

local started = {}   -- dirs with servers in them, to stop

local function pct(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- Starts one server (topology.sh KIND args...) in a fresh dir that the
-- postgres user can reach; returns { dir =, host =, port = }.
function t.start(kind, ...)
  local _, dir = h.sh([[d=$(mktemp -d "${TMPDIR:-/tmp}/topology.XXXXXX") && chmod 755 "$d" && echo "$d"]])
  dir = dir:gsub("%s+$", "")
  started[#started + 1] = dir .. "/" .. kind
  local args = { "bash", h.shell_quote(h.root .. "/scripts/topology.sh"), kind, h.shell_quote(dir .. "/" .. kind) }
  for _, a in ipairs({ ... }) do args[#args + 1] = h.shell_quote(a) end
  local code, out = h.sh(table.concat(args, " "))
  if code ~= 0 then error("topology.sh " .. kind .. " failed:\n" .. out, 2) end
  local s = { dir = dir .. "/" .. kind }
  for k, v in out:gmatch("(%u+)=([^\n]*)") do s[k:lower()] = v end
  return s
end

-- The test cluster's socket and port (the primary of the standby, behind the poolers).
function t.primary()
  return { host = assert(os.getenv("PGHOST")), port = os.getenv("PGPORT") or "5432" }
end

-- Stops everything started here (teardown; also after a failed start).
function t.stop_all()
  for _, dir in ipairs(started) do
    h.sh("bash " .. h.shell_quote(h.root .. "/scripts/topology.sh") .. " stop " .. h.shell_quote(dir))
  end
  started = {}
end

-- A URL for database db on server s (or on several: an array), with extra
-- query parameters (a string such as "sslmode=require"), as user (default postgres).
function t.url(s, db, extra, user)
  local list = s.host and { s } or s
  local hosts, ports = {}, {}
  for i, x in ipairs(list) do hosts[i], ports[i] = pct(x.host), pct(x.port) end
  return ("postgresql:///%s?host=%s&port=%s&user=%s%s"):format(pct(db), table.concat(hosts, ","),
    table.concat(ports, ","), pct(user or "postgres"), extra and ("&" .. extra) or "")
end

-- Waits (10 s at most) until the standby has replayed all the primary wrote so far.
function t.caught_up(standby)
  -- the insert position: with synchronous_commit = off the write position can still be
  -- behind the commit just made, and the standby "catch up" before it arrives
  local lsn = h.psql("postgres", "SELECT pg_current_wal_insert_lsn()")
  for _ = 1, 100 do
    if h.psql(t.url(standby, "postgres"), ("SELECT pg_last_wal_replay_lsn() >= '%s'"):format(lsn)) == "t" then
      return
    end
    h.sh("sleep 0.1")
  end
  error("the standby did not catch up with the primary in 10 s")
end

-- n revisions r01..rNN, each recording its id in applied(rev) (r01 creates it);
-- extra[i], when given, is { up = more Lua for its upgrade, fields = { transactional = false } }.
-- Returns the project dir.
function t.chain(n, config, extra)
  local files = {}
  for i = 1, n do
    local id, down = ("r%02d"):format(i), i > 1 and ("r%02d"):format(i - 1) or nil
    local up = ('op.execute("INSERT INTO applied (rev) VALUES ($1)", { "%s" })'):format(id)
    if i == 1 then up = 'op.execute("CREATE TABLE applied (rev text NOT NULL)")\n  ' .. up end
    local more = extra and extra[i] or {}
    files[("versions/%s.lua"):format(id)] = h.revision(id, down, up .. "\n  " .. (more.up or ""),
      i == 1 and 'op.execute("DROP TABLE applied")' or
        ('op.execute("DELETE FROM applied WHERE rev = $1", { "%s" })'):format(id), more.fields)
  end
  return h.project(files, config)
end

-- Advisory locks held on the test cluster now.
function t.advisory_locks()
  return tonumber(h.psql("postgres", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
end

return t

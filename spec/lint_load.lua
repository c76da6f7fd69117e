-- spec/lint_load.lua URL TABLE STOPFILE OUTFILE: the running application while
-- lint_spec.lua applies a recipe. Reads, updates and inserts rows of TABLE, one
-- autocommit statement at a time, until STOPFILE exists, timing each statement
-- by the wall clock (lock waits included). Creates OUTFILE.ready once it has
-- run its first statements, and at the end writes OUTFILE:
-- "<statements> <longest seconds> <errors> <first error>".
local core = require "luamig.core"

local url, tbl, stopfile, outfile = ...
assert(outfile, "usage: lua5.4 spec/lint_load.lua URL TABLE STOPFILE OUTFILE")

-- Seconds since boot with 10 ms resolution (os.clock is CPU time, os.time whole seconds).
local function now()
  local f = io.open("/proc/uptime")
  if not f then return os.time() end
  local s = f:read("n")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local conn = core.connect(url)
conn:exec("SET application_name = 'lint-load'")
conn:exec("SET statement_timeout = '30s'")    -- a stuck statement still ends the spec
local maxid = conn:query("SELECT max(id) AS m FROM " .. tbl)[1].m
local statements = {
  { "SELECT n FROM " .. tbl .. " WHERE id = $1", function() return math.random(1, maxid) end },
  { "UPDATE " .. tbl .. " SET n = n + 1 WHERE id = $1", function() return math.random(1, maxid) end },
  { "INSERT INTO " .. tbl .. " (n) VALUES ($1)", function() return math.random(1, 1000) end },
}

local count, longest, errors, first = 0, 0, 0, nil
local function run(s)
  local t0 = now()
  local ok, err = pcall(conn.exec, conn, s[1], s[2]())
  local dt = now() - t0
  count = count + 1
  if dt > longest then longest = dt end
  if not ok then
    errors = errors + 1
    first = first or tostring(err):gsub("%s+", " ")
  end
end

for _, s in ipairs(statements) do run(s) end
local ready = assert(io.open(outfile .. ".ready", "w"))
ready:close()
while not exists(stopfile) do
  for _, s in ipairs(statements) do run(s) end
end
conn:close()
local out = assert(io.open(outfile .. ".tmp", "w"))
out:write(("%d %.3f %d %s\n"):format(count, longest, errors, first or "-"))
out:close()
os.rename(outfile .. ".tmp", outfile)

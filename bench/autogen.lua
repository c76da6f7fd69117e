-- bench/autogen.lua: autogenerate's cost on a large schema. Builds N tables (10 columns,
-- 2 indexes, 1 foreign key each) for N = 10 and N = 1000 (or the sizes given), the models
-- that describe them, then times reading the catalog and comparing (luamig.autogen.diff),
-- counting the queries sent. Needs the build tree (make) and a server (PGHOST, ...):
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/lib/?.so;;' lua5.4 bench/autogen.lua [N...]
-- bench/autogen.sh does that on a throwaway cluster. Prints a markdown table.
local core = require "luamig.core"
local schema = require "luamig.schema"
local A = require "luamig.autogen"
local I = require "luamig.introspect"

local RUNS = tonumber(os.getenv("BENCH_RUNS")) or 5
local sizes = {}
for i, a in ipairs(arg) do sizes[i] = assert(math.tointeger(tonumber(a)), "sizes are integers") end
if #sizes == 0 then sizes = { 10, 1000 } end

local function wall()                                       -- wall clock, ms resolution
  local p = io.popen("date +%s%N")
  local ns = tonumber(p:read("l"))
  p:close()
  return ns / 1e6
end

-- The DDL and the matching models for n tables.
local function workload(n)
  local ddl, m = {}, schema.new()
  for i = 1, n do
    local t, ref = ("t%04d"):format(i), ("t%04d"):format(i > 1 and i - 1 or n)
    ddl[#ddl + 1] = ([[CREATE TABLE %s (
  id bigserial PRIMARY KEY,
  parent_id bigint,
  name varchar(255) NOT NULL,
  email text,
  score numeric(10,2) DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  active boolean DEFAULT true,
  kind integer,
  note text,
  data jsonb DEFAULT '{}'::jsonb);
CREATE INDEX %s_created_at ON %s (created_at);
CREATE UNIQUE INDEX %s_email ON %s (lower(email)) WHERE active;]]):format(t, t, t, t, t)
    m:table(t, {
      { "id", "bigserial", primary_key = true },
      { "parent_id", "bigint", references = ref .. "(id)", on_delete = "cascade" },
      { "name", "varchar(255)", nullable = false },
      { "email", "text" },
      { "score", "numeric(10,2)", default = 0 },
      { "created_at", "timestamptz", nullable = false, default = "now()" },
      { "active", "boolean", default = true },
      { "kind", "int" },
      { "note", "text" },
      { "data", "jsonb", default = "'{}'::jsonb" },
      schema.index(t .. "_created_at", { "created_at" }),
      schema.index(t .. "_email", { "lower(email)" }, { unique = true, where = "active" }),
    })
  end
  for i = 1, n do                                           -- foreign keys once every table exists
    local t, ref = ("t%04d"):format(i), ("t%04d"):format(i > 1 and i - 1 or n)
    ddl[#ddl + 1] = ("ALTER TABLE %s ADD FOREIGN KEY (parent_id) REFERENCES %s (id) ON DELETE CASCADE;")
      :format(t, ref)
  end
  return table.concat(ddl, "\n"), m
end

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

local admin = core.connect("dbname=postgres")
local rows = {}
for _, n in ipairs(sizes) do
  local db = ("luamig_bench_autogen_%d"):format(n)
  admin:exec(("DROP DATABASE IF EXISTS %s"):format(db))
  admin:exec(("CREATE DATABASE %s"):format(db))
  local conn = core.connect("dbname=" .. db)
  local ddl, m = workload(n)
  io.stderr:write(("bench: building %d tables\n"):format(n))
  conn:exec(ddl)
  conn:exec("ANALYZE")
  local queries = 0
  local counting = {
    query = function(_, ...) queries = queries + 1; return conn:query(...) end,
    exec = function(_, ...) queries = queries + 1; return conn:exec(...) end,
  }
  local read_ms, diff_ms, total_ms, nq = {}, {}, {}, nil
  for run = 0, RUNS do                                      -- run 0 warms the caches
    -- the phases, the collector paused as A.diff pauses it
    collectgarbage("collect")
    collectgarbage("stop")
    queries = 0
    local t0 = wall()
    local db_schema = I.read(counting, { schemas = A.model_schemas(m), ignore = {} })
    local t1 = wall()
    local result = A.compare(m, db_schema)
    local t2 = wall()
    collectgarbage("restart")
    assert(#result.changes == 0, "the models should match: " .. tostring(result.changes[1]))
    assert(#result.suspects == 0, "nothing should need the server's canonical form")
    -- and the whole, as `luamig check` runs it
    db_schema, result = nil, nil
    collectgarbage("collect")
    queries = 0
    local t3 = wall()
    assert(#A.diff(counting, m, {}).changes == 0)
    local t4 = wall()
    if run > 0 then
      read_ms[run], diff_ms[run], total_ms[run] = t1 - t0, t2 - t1, t4 - t3
      nq = nq or queries
      assert(nq == queries, "the query count varies between runs")
    end
  end
  rows[#rows + 1] = ("| %d | %d | %d | %.0f | %.0f | %.0f |"):format(n, n * 10, nq,
    median(read_ms), median(diff_ms), median(total_ms))
  conn:close()
  admin:exec(("DROP DATABASE %s"):format(db))
end
admin:close()

print(("### autogenerate: catalog read + diff (median of %d runs, ms)"):format(RUNS))
print("")
print("| tables | columns | catalog queries | read catalog | compare | total (A.diff) |")
print("|---:|---:|---:|---:|---:|---:|")
for _, r in ipairs(rows) do print(r) end

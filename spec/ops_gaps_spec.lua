-- What real Alembic histories need (issue #16): create_enum with if_not_exists,
-- constraints the server names, and an offline script that sets the timeouts and
-- records no made-up durations.
local h = require "helpers"
local core = require "luamig.core"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local PSQL = "/usr/lib/postgresql/15/bin/psql"

-- Runs a script file with psql on db; returns the exit code and the output.
local function psql_file(db, script)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local code, out = h.sh(("%s -X -q -v ON_ERROR_STOP=1 -f %s -d %s 2>&1")
    :format(PSQL, h.shell_quote(path), h.shell_quote(db)))
  os.remove(path)
  return code, out
end

describe("offline --sql #cli", function()
  local CONFIG = 'return { versions = "versions", statement_timeout = "5s", lock_timeout = "2s" }'
  local function dir_with(config)
    return h.project({
      ["versions/a.lua"] = h.revision("a", nil, 'op.create_table("x", { { "id", "bigint" } })', 'op.drop_table("x")'),
      ["versions/b.lua"] = h.revision("b", "a", 'op.add_column("x", { "y", "text" })', 'op.drop_column("x", "y")'),
    }, config)
  end

  it("sets statement_timeout and lock_timeout before any other statement", function()
    local code, script, err = h.run({ "upgrade", "head", "--sql" }, { cwd = dir_with(CONFIG), env = { DATABASE_URL = false } })
    assert.equal(0, code, err)
    assert.matches("^SET lock_timeout = '2s';\nSET statement_timeout = '5s';\n", script)
    local _, n = script:gsub("SET statement_timeout", "")
    assert.equal(1, n)
    code, script = h.run({ "downgrade", "b:base", "--sql" }, { cwd = dir_with(CONFIG), env = { DATABASE_URL = false } })
    assert.equal(0, code, script)
    assert.matches("^SET lock_timeout = '2s';\nSET statement_timeout = '5s';\n", script)
  end)

  it("without statement_timeout in luamig.lua, sets only lock_timeout (its default, 5s)", function()
    local code, script, err = h.run({ "upgrade", "head", "--sql" }, { cwd = dir_with(), env = { DATABASE_URL = false } })
    assert.equal(0, code, err)
    assert.matches("^SET lock_timeout = '5s';\n", script)
    assert.not_matches("statement_timeout", script)
  end)

  it("records no duration in the audit log (the script's run time is unknown), and runs", function()
    local code, script, err = h.run({ "upgrade", "head", "--sql" }, { cwd = dir_with(CONFIG), env = { DATABASE_URL = false } })
    assert.equal(0, code, err)
    local _, rows = script:gsub("INSERT INTO \"luamig_log\" %(revision, direction, checksum, duration_ms, "
      .. "luamig_version%) VALUES %('[ab]', 'upgrade', '%x+', NULL, '[%d.]+'%);", "")
    assert.equal(2, rows, script)
    local db = h.new_database()
    local rc, out = psql_file(db, script)
    assert.equal(0, rc, out)
    assert.equal("a|t\nb|t", h.psql(db, "SELECT revision, duration_ms IS NULL FROM luamig_log ORDER BY id"))
    h.drop_database(db)
  end)

  it("a live run still records its durations", function()
    local db = h.new_database()
    local code, _, err = h.run({ "upgrade", "head" }, { cwd = dir_with(CONFIG), env = { DATABASE_URL = h.url(db) } })
    assert.equal(0, code, err)
    assert.equal("t", h.psql(db, "SELECT bool_and(duration_ms >= 0) FROM luamig_log"))
    h.drop_database(db)
  end)
end)

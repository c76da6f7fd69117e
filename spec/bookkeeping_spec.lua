-- luamig's own statements (src/sql/sql_bookkeeping.c): the version table and its
-- audit log under any name the config may give, live and in --sql.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

describe("bookkeeping statements #cli", function()
  local db, env
  h.database_each(function(name) db, env = name, { DATABASE_URL = h.url(name) } end)

  local function project(version_table)
    return h.project({ ["versions/a.lua"] = h.revision("a", nil, "", "") },
      ('return { versions = "versions", version_table = %q, log_table = "the_log" }')
        :format(version_table))
  end

  it("name the primary key of a version table of up to 63 bytes <table>_pkc, cut to 63 "
    .. "bytes at a character boundary", function()
    for _, name in ipairs { ("v"):rep(63), ("v"):rep(58) .. "é" .. "vv", ("v"):rep(59) } do
      h.psql(db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")   -- no _pkc index left to clash
      local dir = project(name)
      local code, _, err = h.run({ "upgrade" }, { cwd = dir, env = env })
      assert.equal(0, code, err)
      local pk = h.psql(db, ("SELECT conname FROM pg_constraint WHERE conrelid = '%s'::regclass "
        .. "AND contype = 'p'"):format('"' .. name .. '"'))
      local keep = name:sub(1, 59)
      if keep:byte(-1) >= 0xC0 then keep = keep:sub(1, -2) end   -- é split after its first byte
      assert.equal(keep .. "_pkc", pk)
      local out = h.run_ok({ "upgrade", ":a", "--sql" }, { cwd = dir, env = env })
      assert.matches(('CONSTRAINT "%s_pkc" PRIMARY KEY'):format(keep), out, 1, true)
    end
  end)
end)

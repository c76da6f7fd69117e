-- A fleet target's schema goes onto the search path through the one quoting
-- function (luamig_quote_ident), then libpq's options escaping: a tenant schema
-- named with a double quote, a space and a backslash is migrated like any other.
local h = require "helpers"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

describe("fleet schema names #cli", function()
  local db

  before_each(function() db = h.new_database() end)
  after_each(function() h.drop_database(db) end)

  it("puts an odd schema name first on the search path, quoted", function()
    local name = [[Tenant "A" b\c]]
    h.psql(db, 'CREATE SCHEMA "Tenant ""A"" b\\c"')
    local dir = h.project({
      ["versions/r1.lua"] = h.revision("r1", nil,
        'op.create_table("a", { { "id", "bigint", primary_key = true } })', 'op.drop_table("a")'),
    }, ([[return { versions = "versions", url = %q, schemas = { %q } }]]):format(h.url(db), name))
    local code, out, err = h.run({ "upgrade" }, { cwd = dir })
    assert.equal(0, code, out .. err)
    assert.matches("1 target: 1 ok", out)
    assert.equal("r1", h.psql(db, 'SELECT version_num FROM "Tenant ""A"" b\\c".luamig_version'))
    assert.equal("1", h.psql(db, [[SELECT count(*) FROM pg_tables WHERE tablename = 'a'
      AND schemaname = 'Tenant "A" b\c']]))
  end)
end)

-- One SQL vocabulary (issue #17): the Lua modules quote, scan and read SQL through
-- luamig.sqltext and luamig.types, thin faces over the C core's quoting, lexer,
-- foreign-key actions and reference reader, the ones the ops use.
local core = require "luamig.core"
local S = require "luamig.sqltext"
local T = require "luamig.types"
local N = require "luamig.normalize"
local R = require "luamig.render"
local schema = require "luamig.schema"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local function kinds(sql)
  local out = {}
  for _, t in ipairs(S.tokens(sql)) do out[#out + 1] = t.k .. ":" .. t.v end
  return table.concat(out, " ")
end

describe("luamig.sqltext", function()
  it("quotes as the C core does: always for the ops, only where needed for people", function()
    assert.equal('"users"', S.quoted("users"))
    assert.equal("users", S.ident("users"))
    for _, name in ipairs { "user", "select", "Users", "with space", 'we"ird', "1st", "café" } do
      assert.equal(S.quoted(name), S.ident(name), name)
    end
    assert.equal('"we""ird"', S.ident('we"ird'))
    assert.equal(S.ident, R.ident)
    assert.has_error(function() S.ident(("x"):rep(64)) end)
    assert.has_error(function() S.ident("") end)
    assert.equal(63, S.MAX_IDENT)
  end)

  it("writes literals as the offline script does, backslashes as E''", function()
    assert.equal("'it''s'", S.literal("it's"))
    assert.equal([[E'a\\b''c']], S.literal([[a\b'c]]))
    assert.equal(S.literal([[x\y]]), R.literal([[x\y]]))
  end)

  it("scans SQL with the C lexer: quotes, dollar quotes, E'', comments, operators", function()
    assert.equal("word:select word:x ::::: word:int ,:, str:'a''b' ,:, str:E'\\'' ,:, str:$t$;$t$ ,:, "
      .. "ident:Q\"x word:from word:t word:where word:a op:>= op:- num:1 word:and word:b op:!= "
      .. "num:2.5e3 param:$1 ;:;",
      kinds([[SELECT x::int, 'a''b', E'\'', $t$;$t$, "Q""x" FROM t WHERE a>=-1 AND b!=2.5e3 -- c
        /* n /* m */ */ $1 ;]]))
    local toks = S.tokens("a 'open")
    assert.same({ 3, 7, true }, { toks[2].s, toks[2].e, toks[2].open })
  end)
end)

describe("luamig.types", function()
  it("has one spelling of each type for autogenerate and the lint", function()
    assert.equal("character varying(20)[]", T.canonical("VARCHAR (20) []"))
    assert.equal("timestamp(3) with time zone", T.canonical("timestamptz(3)"))
    assert.equal(T.canonical("int4"), N.type("int4"))
    assert.same({ "character varying", { 20 }, true }, { T.parse("varchar(20)[]") })
    assert.same({ "timestamp without time zone", { 3 }, false }, { T.parse("timestamp(3)") })
    assert.equal("bigint", T.serial_base(" BigSerial "))
    assert.is_nil(T.serial_base("bigint"))
  end)

  it("knows the foreign-key actions from the C core", function()
    assert.equal("set null", T.fk_action("SET  Null"))
    assert.equal("SET DEFAULT", T.fk_sql("set default"))
    assert.is_nil(T.fk_action("explode"))
  end)

  it("reads references as op.create_table does, quoted names and column lists included", function()
    assert.same({ "audit", "users", { "id", "org" } }, { T.parse_reference(" audit.users (id, org) ") })
    assert.same({ "My S", "t.x", { 'a"b' } }, { T.parse_reference([["My S"."t.x"("a""b")]]) })
    assert.same({ nil, "users", nil }, { T.parse_reference("users") })
    local _, _, _, why = T.parse_reference("users(id) x")
    assert.matches("must look like", why)
    local ctx = core.new_context()
    core.ops(ctx).create_table("t", { { "a", "int", references = [["My S"."t.x" ("a""b")]] } })
    assert.equal('CREATE TABLE "t" (\n    "a" int REFERENCES "My S"."t.x" ("a""b")\n);', core.script(ctx)[1])
    local m = schema.new()
    m:table("p", { { "id", "int", primary_key = true } })
    local t = m:table("c", { { "p", "int", references = '"p" (id)' }, { "q", "int" },
      "FOREIGN KEY (q) REFERENCES p(id) ON DELETE SET  NULL" })
    assert.same({ nil, "p", { "id" }, "set null" },
                { t.fks[2].ref_schema, t.fks[2].ref_table, t.fks[2].ref_columns, t.fks[2].on_delete })
    assert.equal("p", t.fks[1].ref_table)
    assert.has_error(function() m:table("d", { { "p", "int", references = "p(id) junk" } }) end,
      'luamig.schema: table d: column p: references must look like "table(column)" or '
        .. '"schema.table(column)" (got "p(id) junk")')
  end)
end)

-- luamig.lint_style: the style rules of `luamig lint --style`, off by default
-- (the ones squawk users turn on): bigint keys, identity over serial,
-- timestamptz over timestamp, text over varchar(n) and char(n). They look at
-- the types a revision gives columns (create_table, add_column, type changes)
-- and at the columns it makes keys, whether the table is new or not.
local S = require "luamig.sqltext"
local types = require "luamig.types"

local style = {}

local NONE = "none: a matter of the schema's future, not of a lock"

style.texts = {
  ["prefer-bigint-key"] = {
    lock = NONE,
    effect = "an integer key runs out at 2,147,483,647 (smallint at 32,767); widening it then "
      .. "rewrites the table, and every table whose foreign keys reference it, under ACCESS "
      .. "EXCLUSIVE",
    recipe = "make keys, and the foreign keys to them, bigint (a generated key: bigint "
      .. "GENERATED ALWAYS AS IDENTITY)",
  },
  ["prefer-identity"] = {
    lock = NONE,
    effect = "a serial column's sequence and default are objects of their own: their owner and "
      .. "grants drift from the table's, and nothing keeps writes of explicit ids from "
      .. "colliding with the sequence later",
    recipe = "bigint GENERATED ALWAYS AS IDENTITY (BY DEFAULT where the application writes "
      .. "its own ids)",
  },
  ["prefer-timestamptz"] = {
    lock = NONE,
    effect = "timestamp without time zone stores a wall-clock time with no offset: values "
      .. "written by sessions in different time zones do not compare, and the hour a "
      .. "daylight-saving change repeats is ambiguous",
    recipe = "timestamptz: the same 8 bytes, stored as UTC and shown in the session's time zone",
  },
  ["prefer-text"] = {
    lock = NONE,
    effect = "the length limit of varchar(n) and char(n) is part of the type: lowering it, or "
      .. "any change to char(n), rewrites the table; char(n) also pads values with spaces",
    recipe = "text, with CHECK (length(col) <= n) when the limit is a rule of the data: a check "
      .. "is replaced with NOT VALID and a later VALIDATE, no rewrite",
  },
}

-- The integer types too small for a key (luamig.types' names).
local INT_KEY = { integer = true, smallint = true }

local q = S.said

-- Findings for column `column` of table `tbl` of type `typ` (key: a key column).
local function column(tbl, column_name, typ, key, find)
  local base, args = types.parse(typ)
  if not base then return end
  local what = ("column %s.%s"):format(q(tbl), q(column_name))
  if key and INT_KEY[base] then
    find("prefer-bigint-key", ("%s is a key of type %s: use bigint"):format(what, typ))
  end
  if types.serial_base(typ) then
    find("prefer-identity", ("%s is %s: use GENERATED ALWAYS AS IDENTITY"):format(what, typ))
  end
  if base == "timestamp without time zone" then
    find("prefer-timestamptz", ("%s is %s: use timestamptz"):format(what, typ))
  end
  if (base == "character varying" and #args > 0) or base == "character" then
    find("prefer-text", ("%s is %s: use text (with a CHECK on length() if the limit matters)")
      :format(what, typ))
  end
end

-- The style findings of one action a, reported through find(rule, message);
-- columns(table) gives the types the lint knows of a table's columns.
function style.check(a, columns, find)
  if a.kind == "create_table" then
    for _, c in ipairs(a.columns or {}) do
      local d = c.def or {}
      column(a.table, c.name, d.type, d.primary_key or d.references or (a.keys or {})[c.name], find)
    end
  elseif a.kind == "add_column" then
    column(a.table, a.column, a.type, a.primary_key or a.references, find)
  elseif a.kind == "alter_type" then
    column(a.table, a.column, a.type, false, find)
  elseif a.kind == "add_constraint" and (a.ctype == "primary" or a.ctype == "foreign") then
    local known = columns(a.table)
    for _, c in ipairs(a.columns or {}) do
      local typ = known[c] and known[c].type
      if INT_KEY[types.parse(typ) or ""] then
        find("prefer-bigint-key", ("column %s.%s is a key of type %s: use bigint"):format(
          q(a.table), q(c), typ))
      end
    end
  end
end

return style

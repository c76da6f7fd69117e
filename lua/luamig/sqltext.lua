-- luamig.sqltext: the SQL vocabulary of the Lua modules, a thin face over the C
-- core's (src/sql/quote.c, src/sql/sql_lex.c, bound in src/sql/sqltext.c), so that what Lua
-- writes and reads of SQL is quoted and scanned exactly as the op builders do it.
--
--   S.ident("users") --> users      S.ident("user") --> "user"    (for SQL people read)
--   S.quoted("users") --> "users"                                  (as the ops write names)
--   S.literal("it's") --> 'it''s'   S.literal("a\\b") --> E'a\\\\b'
--   S.tokens("a::int") --> { { k = "word", v = "a", s = 1, e = 1 }, { k = "::", ... }, ... }
local core = require "luamig.core"

local S = { MAX_IDENT = core.max_ident }   -- bytes (PostgreSQL's NAMEDATALEN - 1)

-- An identifier as SQL: bare when PostgreSQL reads it back unchanged, else quoted.
-- Raises on an empty name or one over MAX_IDENT bytes. (Remembered: autogenerate
-- writes the same names many times.)
local idents, nidents = {}, 0
function S.ident(name)
  local q = idents[name]
  if q then return q end
  q = core.quote_ident(name, true)
  if nidents >= 20000 then idents, nidents = {}, 0 end
  idents[name], nidents = q, nidents + 1
  return q
end

-- A name as a comparison key (normalize, types): S.ident's form; one that cannot be
-- a name (empty, too long) stands for itself. Never raises.
function S.name_key(name)
  local ok, q = pcall(S.ident, name)
  return ok and q or name
end

-- An identifier, always quoted.
function S.quoted(name) return core.quote_ident(name) end

-- A string literal ('' doubled; E'...' when it holds a backslash).
function S.literal(s) return core.quote_literal(s) end

-- A name as PostgreSQL's messages write it, for people (nothing doubled: not SQL):
-- S.said("users") --> "users", S.said("users", "email") --> "users"."email".
function S.said(name, column)
  local out = '"' .. tostring(name) .. '"'
  return column == nil and out or out .. '."' .. tostring(column) .. '"'
end

-- The items of list quoted by quote (S.ident, S.literal), joined by ", ".
function S.list(list, quote)
  local out = {}
  for i, v in ipairs(list) do out[i] = quote(v) end
  return table.concat(out, ", ")
end

-- The tokens of SQL text, spaces and comments left out: { k, v, s, e [, open] } each,
-- k one of "word" (v in lower case), "ident" (a quoted name, v unquoted), "str", "num",
-- "param", "op", "::", or the character itself ("(", ",", ";", ".", ...).
S.tokens = core.sql_tokens

-- Whether name is longer than PostgreSQL keeps (it would cut it silently).
function S.too_long(name) return #name > S.MAX_IDENT end

return S

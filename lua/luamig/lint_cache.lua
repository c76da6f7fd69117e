-- luamig.lint_cache: the lint's model of the schema, kept between runs, so linting
-- `upgrade +1` on a long history does not load every revision below it again.
--
-- The lint replays the revisions below the ones it checks (its context) to learn what
-- the schema holds. A run keeps two models in .luamig-cache/lint, in the first
-- versions directory: the one after its context and the one after all its revisions,
-- each with the list of "id sha256" keys it was built from. A later run whose own
-- list starts with one of those lists, all of them context now, starts from that
-- model and loads only the revisions after it. Any other list (a file edited below,
-- another branch) replays from the start, as without a cache.
--
--   lint_cache.analyze(revisions, opts, stored, magic) -> findings, text or nil
local lint = require "luamig.lint"

local M = {}

-- ---- a compact, bounded encoding of plain data (strings, numbers, booleans, tables) ----

local function encode(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = "s" .. #v .. ":" .. v
  elseif t == "number" then
    out[#out + 1] = (math.type(v) == "integer" and "i" or "f") .. ("%.17g"):format(v) .. ";"
  elseif t == "boolean" then
    out[#out + 1] = v and "T" or "F"
  elseif t == "table" then
    out[#out + 1] = "{"
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) ~= type(b) then return type(a) < type(b) end
      return a < b
    end)
    for _, k in ipairs(keys) do
      encode(k, out)
      encode(v[k], out)
    end
    out[#out + 1] = "}"
  else
    error("lint_cache: cannot keep a " .. t)
  end
end

function M.encode(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

-- The value encoded at s[i...] and the position after it; nil on anything else.
local function decode(s, i, depth)
  local c = s:sub(i, i)
  if c == "s" then
    local len, at = s:match("^(%d+):()", i + 1)
    len = tonumber(len)
    if not len or at + len - 1 > #s then return nil end
    return s:sub(at, at + len - 1), at + len
  elseif c == "i" or c == "f" then
    local num, at = s:match("^([^;]+);()", i + 1)
    local v = num and (c == "i" and math.tointeger(tonumber(num)) or tonumber(num))
    if v == nil then return nil end
    return v, at
  elseif c == "T" or c == "F" then
    return c == "T", i + 1
  elseif c == "{" and depth < 64 then
    local t = {}
    i = i + 1
    while s:sub(i, i) ~= "}" do
      local k, v
      k, i = decode(s, i, depth + 1)
      if k == nil then return nil end
      v, i = decode(s, i, depth + 1)
      if v == nil then return nil end
      t[k] = v
    end
    return t, i + 1
  end
  return nil
end

function M.decode(s)
  local v, at = decode(s, 1, 0)
  if v ~= nil and at == #s + 1 then return v end
  return nil
end

-- ---- the lint, from the longest model kept ----

-- Whether keys[1..n] are the keys of revisions[1..n].
local function same_start(keys, revisions, n)
  if type(keys) ~= "table" or #keys < n then return false end
  for i = 1, n do
    if keys[i] ~= revisions[i].key then return false end
  end
  return true
end

-- A model kept after some revisions were linted: what they made is not new any more.
local function as_context(schema)
  for _, e in pairs(schema.tables or {}) do e.new = false end
  return schema
end

-- revisions: as lint.analyze takes them, each with key = "id sha256"; stored: the
-- cache's text (nil: none); magic: its first line for this build. Returns the
-- findings and the text to keep (nil when it is the same).
function M.analyze(revisions, opts, stored, magic)
  local lead = 0                        -- the context revisions this run starts with
  while lead < #revisions and revisions[lead + 1].lint == false do lead = lead + 1 end
  local start, schema = 1, nil
  local kept = stored and stored:sub(1, #magic) == magic and M.decode(stored:sub(#magic + 1))
  if type(kept) == "table" and type(kept.models) == "table" then
    for _, n in ipairs { kept.all, kept.context } do
      local model = math.type(n) == "integer" and kept.models[n]
      if model and n <= lead and same_start(kept.keys, revisions, n) then
        schema = M.decode(model)
        if type(schema) == "table" and type(schema.tables) == "table" then
          start = n + 1
          break
        end
        schema = nil
      end
    end
  end
  local rest = table.move(revisions, start, #revisions, 1, {})
  local models = {}
  local run = setmetatable({
    schema = schema and as_context(schema),
    on_schema = function(s, where) models[where] = M.encode(s) end,
  }, { __index = opts })
  local findings = lint.analyze(rest, run)
  local keys = {}
  for i, rev in ipairs(revisions) do keys[i] = rev.key end
  local text = magic .. M.encode({ keys = keys, context = lead, all = #revisions,
    models = { [lead] = models.context or models["end"], [#revisions] = models["end"] } })
  return findings, text ~= stored and text or nil
end

return M

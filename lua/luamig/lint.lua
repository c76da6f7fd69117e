-- luamig.lint: the migration safety lint. Finds the changes that lock a busy
-- table for long or break the release still running, before they run.
--
-- It never touches the database: each revision's upgrade() (and downgrade())
-- runs with a recording `op` that notes every call, its arguments and its
-- line; luamig.lint_actions turns the calls (and the SQL of op.execute) into
-- actions, which luamig.lint_rules replays in upgrade order over a small model
-- of the schema, so a rule knows whether a table is new in this run.
--
--   lint.analyze(revisions) -> findings
--   lint.format(findings, { verbose = true }) -> text
local actions = require "luamig.lint_actions"
local rules = require "luamig.lint_rules"
local inverse = require "luamig.lint_inverse"
local style = require "luamig.lint_style"
local specs = require "luamig.opspec"

local lint = { rules = {} }
for _, texts in ipairs { rules.texts, style.texts } do
  for id, t in pairs(texts) do lint.rules[id] = t end
end

-- ---- recording a revision's upgrade() or downgrade() ----

-- Runs env[fname] with a recording op; returns { actions, safes, trailing (the
-- op.safe calls no op call followed), error, line (where fname is defined) }.
local function record(rev, fname, known)
  local env = rev.env
  local fn = rawget(env, fname)
  local rec = { actions = {}, pending = {}, trailing = {}, safes = {} }
  if type(fn) ~= "function" then rec.error = fname .. "() is missing"; return rec end
  rec.line = debug.getinfo(fn, "S").linedefined
  local source = "@" .. rev.path
  local function where()                -- the line in the revision file that made the call
    for level = 3, 60 do
      local info = debug.getinfo(level, "Sl")
      if not info then break end
      if info.source == source then return info.currentline end
    end
    local info = debug.getinfo(3, "l")
    return info and info.currentline or rec.line
  end
  local op = setmetatable({}, { __index = function(t, name)
    if known and not known[name] then return nil end
    local f
    if name == "safe" then
      f = function(rule, why)
        if type(rule) ~= "string" or type(why) ~= "string" or not why:find("%S") then
          error("op.safe: expects a rule id and a reason: op.safe(\"rule-id\", \"why\")", 2)
        end
        local sf = { rule = rule, reason = why, line = where() }
        rec.pending[#rec.pending + 1] = sf
        rec.safes[#rec.safes + 1] = sf
      end
    else
      f = function(...)
        local call = { op = name, line = where(), safes = rec.pending }
        rec.pending = {}
        for _, a in ipairs(actions.from_call(name, table.pack(...))) do
          a.call = call
          rec.actions[#rec.actions + 1] = a
        end
        if name == "query" then return {} end
        if name == "execute" or name == "bulk_insert" then return 0 end
      end
    end
    rawset(t, name, f)
    return f
  end })
  local saved = rawget(env, "op")
  rawset(env, "op", op)
  -- rev.pcall (from the core): the revision's time budget, errors as "file:line: message"
  local ok, err = (rev.pcall or pcall)(fn, fname .. "()")
  rawset(env, "op", saved)
  if not ok then rec.error = tostring(err) end
  rec.trailing = rec.pending
  return rec
end

-- ---- allow comments ----

local function file_lines(path)
  local lines = {}
  local f = io.open(path, "r")
  if not f then return lines end
  for l in f:lines() do lines[#lines + 1] = l end
  f:close()
  return lines
end

-- The "-- luamig: allow RULE because REASON" comments just above line: { [rule] = reason|false }.
local function allows_above(lines, line)
  local found = {}
  local k = (line or 0) - 1
  while k >= 1 and lines[k] and lines[k]:match("^%s*%-%-") do
    local rule, rest = lines[k]:match("luamig:%s*allow%s+([%w%-]+)(.*)$")
    if rule and found[rule] == nil then
      found[rule] = rest:match("^%s*because%s+(.-)%s*$") or false
    end
    k = k - 1
  end
  return found
end

-- ---- analysis ----

-- revisions: in upgrade order, { id, path, env or load, transactional, lint }; those
-- with lint = false only build the schema model (they ran before the range). load()
-- makes the environment when it is needed; it is dropped after (10,000 at once would
-- not fit in the memory budget).
-- opts.style: the style rules too (lint --style). opts.schema: the model to start
-- from (luamig.lint_cache); opts.on_schema(schema, where): called with the model
-- before the first revision linted (where = "context") and at the end ("end").
-- Returns the findings, each { rule, revision, file, line, message, lock, effect,
-- recipe, allowed, reason, via, note }.
function lint.analyze(revisions, opts)
  opts = opts or {}
  local known = specs.by_name          -- a call no op answers fails here as it would when run
  local schema = opts.schema or rules.new_schema()
  local findings = {}
  local on_schema = opts.on_schema or function() end
  local context_seen = false
  for _, rev in ipairs(revisions) do
    if rev.lint ~= false and not context_seen then on_schema(schema, "context") end
    context_seen = context_seen or rev.lint ~= false
    rev.env = rev.env or rev.load()
    local up = record(rev, "upgrade", known)
    if rev.lint == false then
      for _, a in ipairs(up.actions) do rules.step(schema, a, nil) end
    else
      local lines                       -- read once a finding needs its allow comments
      local ctx = { tx = rev.transactional ~= false }
      local function find(rule, message, over, line, safes, trailing)
        local r = lint.rules[rule]
        local f = { rule = rule, revision = rev.id, file = rev.path, line = line, message = message,
                    lock = over and over.lock or r.lock, effect = r.effect, recipe = r.recipe,
                    allowed = false }
        for _, list in ipairs { safes or {}, trailing or {} } do
          for _, sf in ipairs(list) do
            if sf.rule == rule and not f.allowed then
              f.allowed, f.reason, f.via = true, sf.reason, "op.safe"
            end
          end
        end
        if not f.allowed then
          lines = lines or file_lines(rev.path)
          local allow = allows_above(lines, line)
          if allow[rule] then
            f.allowed, f.reason, f.via = true, allow[rule], "comment"
          elseif allow[rule] == false then
            f.note = ("the allow comment above line %d has no reason: write '-- luamig: allow %s "
              .. "because ...'"):format(line or 0, rule)
          end
        end
        findings[#findings + 1] = f
      end
      for _, a in ipairs(up.actions) do
        local function found(rule, message, over) find(rule, message, over, a.call.line, a.call.safes) end
        if opts.style then style.check(a, function(t) return rules.columns(schema, t) end, found) end
        rules.step(schema, a, ctx, found)
      end
      if up.error then
        local line = tonumber(up.error:match(":(%d+):")) or up.line
        find("lint", "upgrade() raised during the lint: " .. up.error, nil, line)
      end
      local down = record(rev, "downgrade", known)
      inverse.check(up, down, ctx, function(rule, message, over, line, safes)
        find(rule, message, over, line, safes, down.trailing)
      end)
      for _, rec in ipairs { up, down } do
        for _, sf in ipairs(rec.safes) do
          if not lint.rules[sf.rule] then
            find("lint", ('op.safe names no rule "%s"'):format(sf.rule), nil, sf.line)
          end
        end
      end
    end
    if rev.load then rev.env = nil end
  end
  if not context_seen then on_schema(schema, "context") end
  on_schema(schema, "end")
  local order = {}
  for i, rev in ipairs(revisions) do order[rev.id] = i end
  for i, f in ipairs(findings) do f.seq = i end
  table.sort(findings, function(x, y)
    if x.revision ~= y.revision then return order[x.revision] < order[y.revision] end
    if (x.line or 0) ~= (y.line or 0) then return (x.line or 0) < (y.line or 0) end
    return x.seq < y.seq
  end)
  for _, f in ipairs(findings) do f.seq = nil end
  return findings
end

-- How many findings are not allowed.
function lint.count(findings)
  local n = 0
  for _, f in ipairs(findings) do if not f.allowed then n = n + 1 end end
  return n
end

-- The findings as text for people: each with its place, what happens and the recipe;
-- allowed ones (with their reason) only when verbose.
function lint.format(findings, opts)
  opts = opts or {}
  local out, allowed, explained = {}, 0, {}
  for _, f in ipairs(findings) do
    if f.allowed then allowed = allowed + 1 end
    if not f.allowed or opts.verbose then
      local head = ("%s:%s: %s (revision %s)"):format(f.file, f.line or "?", f.rule, f.revision)
      if f.allowed then
        out[#out + 1] = ("%s allowed (%s): %s"):format(head, f.via, f.reason)
        out[#out + 1] = "    " .. f.message
      else
        out[#out + 1] = head
        out[#out + 1] = "    " .. f.message
        out[#out + 1] = "    lock:   " .. f.lock
        if explained[f.rule] then
          out[#out + 1] = "    (effect and recipe: as above)"
        else
          explained[f.rule] = true
          out[#out + 1] = "    effect: " .. f.effect
          out[#out + 1] = "    recipe: " .. f.recipe
        end
        if f.note then out[#out + 1] = "    note:   " .. f.note end
      end
    end
  end
  local n = #findings - allowed
  if n == 0 and allowed == 0 then
    out[#out + 1] = "No findings."
  else
    out[#out + 1] = ("%d finding%s%s."):format(n, n == 1 and "" or "s",
      allowed > 0 and (", %d allowed%s"):format(allowed, opts.verbose and "" or " (--verbose shows them)") or "")
  end
  return table.concat(out, "\n") .. "\n"
end

return lint

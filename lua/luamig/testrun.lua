-- luamig.testrun: `luamig test [RANGE]`, the checks a project's revisions should pass
-- before they ship, on scratch databases (luamig.scratch):
--   graph           one head (or the labelled heads the config declares), no cycle, every
--                   id unique, every file parses;
--   stairway        for each revision: upgrade to it, snapshot, downgrade one, compare
--                   (the snapshot and the diff: luamig.schemadiff), upgrade again;
--   round trip      FROM -> TO -> FROM leaves the schema it started with, TO again the
--                   schema of the first time;
--   models match    after TO, `check` finds no difference (with models = in luamig.lua);
--   offline equals online: the --sql script of FROM -> TO, on the database back at FROM,
--                   gives the same schema;
--   lint            no finding at the --lint level (strict: findings fail).
-- Each result goes to opts.on_check as soon as it is known; opts.log("progress", text)
-- gets a line per revision. RANGE is [FROM:]TO, base:heads by default.
local core = require "luamig.core"
local A = require "luamig.autogen"
local D = require "luamig.schemadiff"
local S = require "luamig.scratch"

local sys = core.scratch

local T = {}

local Run = {}
Run.__index = Run

-- ---- the run ----

local function interrupted_check()
  if sys.interrupted() then error("interrupted", 0) end
end

-- Options for a core command on the scratch database url (nil: none).
function Run:command_opts(url, extra)
  local o = { config = self.opts.config, url = url, direct_url = url, lint = "off",
              revision_timeout = self.opts.revision_timeout, log = function() end }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- core[cmd] on the scratch database to target: true, or false and the error.
function Run:migrate(cmd, target)
  local ok, res = pcall(core[cmd], self:command_opts(self.url, { target = target }))
  interrupted_check()
  if not ok then return false, tostring(res) end
  return true, res
end

function Run:snapshot()
  return D.snapshot(self.conn, self.ignore)
end

function Run:progress(text)
  if self.opts.log then self.opts.log("progress", text, 0) end
end

-- A fresh scratch database at FROM (its snapshot in self.at_from), connected. dirty:
-- a check left it in a state no snapshot describes; at_to: its schema at TO, once known.
function Run:fresh()
  if self.conn then self.conn:close() end
  self.dbname, self.url = self.env:create()
  self.conn = core.connect(self.url)
  local vs = self.cfg.version_table_schema
  if vs then                         -- luamig never makes it: the configured database has it
    self.conn:exec("CREATE SCHEMA IF NOT EXISTS " .. core.quote_ident(vs))
  end
  if self.from ~= "base" then
    local ok, err = self:migrate("upgrade", self.from)
    if not ok then error(("upgrade to %s (the start of the range) failed: %s"):format(self.from, err), 0) end
  end
  self.at_from = self:snapshot()
  self.at_to, self.dirty = nil, false
end

-- The scratch database at TO, as a clean run leaves it: true, or false and the error.
function Run:at_target()
  if not self.dirty and self.at_to then return true end
  self:fresh()
  local ok, err = self:migrate("upgrade", self.to)
  if not ok then
    self.dirty = true
    return false, err
  end
  self.at_to = self:snapshot()
  return true
end

-- ---- results ----

local function result(name, status, summary, extra)
  local r = { check = name, status = status, summary = summary }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- The line where a revision file defines downgrade(), or nil.
local function downgrade_line(path)
  local f = io.open(path)
  if not f then return nil end
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:match("^%s*function%s+downgrade%s*%(") or line:match("^%s*downgrade%s*=%s*function") then
      f:close()
      return n
    end
  end
  f:close()
  return nil
end

-- A failure of revision r: its id, message, file and downgrade()'s line.
local function failed_at(name, r, summary, differences)
  local msg = r.message and r.message:match("^[^\r\n]*") or ""
  summary = ("revision %s%s: %s"):format(r.revision, msg ~= "" and (" (" .. msg .. ")") or "", summary)
  return result(name, "fail", summary, {
    revision = r.revision, message = r.message, file = r.path, line = downgrade_line(r.path),
    differences = differences })
end

-- ---- the checks ----

-- The heads the config declares (heads = { "label", ... }) against the real ones.
local function heads_problem(heads, declared)
  if declared == nil then
    if #heads <= 1 then return nil end
    local ids = {}
    for i, h in ipairs(heads) do ids[i] = h.revision end
    return ("Multiple head revisions are present: %s (merge them with 'luamig merge heads', or "
            .. "declare the branches: heads = { \"label\", ... } in luamig.lua)"):format(table.concat(ids, ", "))
  end
  if type(declared) ~= "table" then return "config: 'heads' must be a list of branch labels" end
  local want, seen = {}, {}
  for _, label in ipairs(declared) do want[label] = true end
  for _, h in ipairs(heads) do
    local mine = false
    for _, label in ipairs(h.branches or {}) do
      if want[label] then mine, seen[label] = true, true end
    end
    if not mine then
      return ("head %s is on none of the branches luamig.lua declares (%s)"):format(h.revision,
        table.concat(declared, ", "))
    end
  end
  for _, label in ipairs(declared) do
    if not seen[label] then return ("no head carries the declared branch label '%s'"):format(label) end
  end
  return nil
end

function Run:check_graph()
  local name = "graph"
  local ok, hist = pcall(core.history, self:command_opts(nil))
  if not ok then return result(name, "fail", tostring(hist)) end
  local problems = {}
  for _, r in ipairs(hist) do
    local chunk, err = loadfile(r.path, "t", {})
    if not chunk then problems[#problems + 1] = err end
  end
  local heads = core.heads(self:command_opts(nil))
  local hp = heads_problem(heads, A.setting(self.cfg, self.opts, "heads"))
  if hp then table.insert(problems, 1, hp) end
  if #problems > 0 then
    return result(name, "fail", problems[1], { differences = { table.unpack(problems, 2) } })
  end
  local ids = {}
  for i, h in ipairs(heads) do ids[i] = h.revision end
  return result(name, "pass", ("%d revision%s, %s (%s), no cycle, ids unique, every file parses")
    :format(#hist, #hist == 1 and "" or "s", #heads == 1 and "one head" or (#heads .. " heads"),
            table.concat(ids, ", ")))
end

-- The revisions of the range in upgrade order (parents first).
function Run:range_revisions()
  local upto = core.history(self:command_opts(nil, { range = "base:" .. self.to }))
  local below = {}
  if self.from ~= "base" then
    for _, r in ipairs(core.history(self:command_opts(nil, { range = "base:" .. self.from }))) do
      below[r.revision] = true
    end
  end
  local revs = {}
  for i = #upto, 1, -1 do
    if not below[upto[i].revision] then revs[#revs + 1] = upto[i] end
  end
  return revs
end

-- One revision's stairway step from the schema before it (prev): returns the schema
-- after it (and true when r could not be stepped back alone: downgrading it also took a
-- sibling branch with it), or nil and the failure.
function Run:stair(r, prev)
  local name = "stairway"
  local ok, err = self:migrate("upgrade", r.revision)
  if not ok then return nil, failed_at(name, r, "upgrade failed: " .. err) end
  local here = self:snapshot()
  local steps
  ok, steps = self:migrate("downgrade", r.revision .. "-1")
  if not ok then return nil, failed_at(name, r, "downgrade failed: " .. steps) end
  if #steps ~= 1 or steps[1].revision ~= r.revision then
    for i = #steps, 1, -1 do         -- put back what went with it, parents first
      ok, err = self:migrate("upgrade", steps[i].revision)
      if not ok then return nil, failed_at(name, r, "upgrade failed after its downgrade: " .. err) end
    end
    return here, true
  end
  local diff = D.diff(prev, self:snapshot(), { "before", "after downgrade" })
  if #diff > 0 then return nil, failed_at(name, r, "its downgrade does not undo its upgrade", diff) end
  ok, err = self:migrate("upgrade", r.revision)
  if not ok then return nil, failed_at(name, r, "upgrade failed after its downgrade: " .. err) end
  return here
end

function Run:check_stairway()
  local revs = self.revisions
  local prev, skipped = self.at_from, 0
  for i, r in ipairs(revs) do
    self:progress(("stairway [%d/%d] %s, %s"):format(i, #revs, r.revision, r.message or ""))
    local here, outcome = self:stair(r, prev)
    if not here then
      self.dirty = true
      return outcome
    end
    if outcome == true then skipped = skipped + 1 end
    prev = here
  end
  self.at_to = prev
  return result("stairway", "pass", ("%d revision%s: each downgrade undoes its upgrade%s"):format(
    #revs, #revs == 1 and "" or "s",
    skipped > 0 and ("; %d not alone (a sibling branch is applied), checked by the round trip")
      :format(skipped) or ""))
end

function Run:check_round_trip()
  local name, span = "round trip", ("%s -> %s -> %s"):format(self.from, self.to, self.from)
  local ok, err = self:at_target()
  if not ok then return result(name, "fail", "upgrade failed: " .. err) end
  local first = self.at_to
  self.dirty = true
  ok, err = self:migrate("downgrade", self.from)
  if not ok then return result(name, "fail", "downgrade failed: " .. err) end
  local diff = D.diff(self.at_from, self:snapshot(), { "at " .. self.from, "after " .. span })
  if #diff > 0 then
    return result(name, "fail", span .. " leaves the schema changed", { differences = diff })
  end
  ok, err = self:migrate("upgrade", self.to)
  if not ok then return result(name, "fail", "upgrade failed the second time: " .. err) end
  diff = D.diff(first, self:snapshot(), { "the first time", "the second time" })
  if #diff > 0 then
    return result(name, "fail", self.to .. " again gives another schema", { differences = diff })
  end
  self.dirty = false
  return result(name, "pass", span .. " leaves the schema as it was; " .. self.to
    .. " again gives the same schema")
end

function Run:check_models()
  local name = "models match"
  local models = A.setting(self.cfg, self.opts, "models")
  if not models then
    return result(name, "skip", "no models in luamig.lua (models = \"app.models\")")
  end
  if self.to ~= "heads" and self.to ~= "head" then
    return result(name, "skip", "the models describe the head, the range ends at " .. self.to)
  end
  local ok, err = self:at_target()
  if not ok then return result(name, "fail", "upgrade failed: " .. err) end
  local res
  ok, res = pcall(core.check, self:command_opts(self.url, { models = self.opts.models }))
  interrupted_check()
  if not ok then return result(name, "fail", tostring(res)) end
  if #res.changes > 0 then
    return result(name, "fail", ("%s and the database differ after upgrade %s (%d difference%s)")
      :format(res.models, self.to, #res.changes, #res.changes == 1 and "" or "s"),
      { differences = res.changes })
  end
  return result(name, "pass", ("%s and the database agree"):format(res.models))
end

-- The --sql script of FROM -> TO, statement by statement.
function Run:offline_script()
  local stmts = {}
  local ok, err = pcall(core.upgrade, self:command_opts(nil, { sql = true, target = self.from .. ":" .. self.to,
    log = function(event, text) if event == "sql" then stmts[#stmts + 1] = text end end }))
  interrupted_check()
  if not ok then return nil, tostring(err) end
  return stmts
end

-- The scratch database back at FROM, for the script: taken down from TO when its schema
-- then equals a fresh one's at FROM (cheaper than CREATE DATABASE; the round trip's
-- first half), else created afresh. Its state is the script's afterwards.
function Run:back_to_start()
  if not self.dirty and self.at_to then
    self.dirty = true
    local ok = self:migrate("downgrade", self.from)
    if ok and #D.diff(self.at_from, self:snapshot(), { "", "" }) == 0 then return end
  end
  self:fresh()
  self.dirty = true
end

function Run:check_offline()
  local name, span = "offline equals online", ("%s -> %s"):format(self.from, self.to)
  local stmts, err = self:offline_script()
  if not stmts then return result(name, "fail", ("the --sql script of %s cannot be made: %s"):format(span, err)) end
  local ok
  ok, err = self:at_target()
  if not ok then return result(name, "fail", "upgrade failed: " .. err) end
  local online = self.at_to
  self:back_to_start()
  for i, sql in ipairs(stmts) do
    local done, e = pcall(self.conn.exec, self.conn, sql)
    interrupted_check()
    if not done then
      return result(name, "fail", ("statement %d of the --sql script failed: %s"):format(i, e))
    end
  end
  local diff = D.diff(online, self:snapshot(), { "online", "after the --sql script" })
  if #diff > 0 then
    return result(name, "fail", ("the --sql script of %s gives another schema than upgrading online")
      :format(span), { differences = diff })
  end
  return result(name, "pass", ("the --sql script of %s gives the schema upgrading online gives"):format(span))
end

function Run:check_lint()
  local name, level = "lint", self.opts.lint or "warn"
  if level == "off" then return result(name, "skip", "--lint off") end
  local L = require "luamig.lint"
  local findings = core.lint(self:command_opts(nil, { range = self.from .. ":" .. self.to, lint = level }))
  local lines = {}
  for _, f in ipairs(findings) do
    if not f.allowed then
      lines[#lines + 1] = ("%s:%s: %s: %s"):format(f.file, tostring(f.line), f.rule, f.message)
    end
  end
  local n = L.count(findings)
  if n == 0 then return result(name, "pass", "no findings") end
  local summary = ("%d finding%s ('luamig lint %s:%s -v' explains them)"):format(n, n == 1 and "" or "s",
    self.from, self.to)
  if level == "strict" then return result(name, "fail", summary, { differences = lines }) end
  return result(name, "pass", summary .. ", allowed at --lint warn", { differences = lines })
end

-- ---- the command ----

local function parse_range(range)
  if range == nil or range == "" then return "base", "heads" end
  local from, to = range:match("^(.-):(.*)$")
  if not from then from, to = "base", range end
  if from == "" then from = "base" end
  if to == "" then to = "heads" end
  return from, to
end

-- The checks that need a database, in order; a failing graph skips them all.
local DB_CHECKS = { { "stairway", "check_stairway" }, { "round trip", "check_round_trip" },
                    { "models match", "check_models" }, { "offline equals online", "check_offline" } }

function Run:all(report)
  local graph = report(self:check_graph())
  if graph.status == "fail" then
    for _, c in ipairs(DB_CHECKS) do report(result(c[1], "skip", "the revisions do not load (graph)")) end
    report(result("lint", "skip", "the revisions do not load (graph)"))
    return
  end
  self.revisions = self:range_revisions()
  self.env = S.open(self.opts, self.cfg)
  self:fresh()
  if self.opts.log then
    self.opts.log("info", ("scratch database %s on %s"):format(self.dbname, self.env:where()), 0)
  end
  for _, c in ipairs(DB_CHECKS) do report(self[c[2]](self)) end
  report(self:check_lint())
end

-- opts: config, url, scratch, range, lint, models, revision_timeout, log, on_check.
-- Returns { checks = {...}, passed =, failed =, skipped = }; raises for what stops the
-- run itself (the config, the server, the scratch database), "interrupted" on ^C.
function T.run(opts)
  if opts.scratch and opts.url then
    error("--url and --scratch exclude each other: --scratch starts a server of its own", 0)
  end
  local level = opts.lint or "warn"
  if level ~= "warn" and level ~= "strict" and level ~= "off" then
    error(("--lint must be strict, warn or off, not '%s'"):format(tostring(level)), 0)
  end
  local cfg = sys.config(opts)
  local from, to = parse_range(opts.range)
  local vs = cfg.version_table_schema
  local run = setmetatable({ opts = opts, cfg = cfg, from = from, to = to, ignore = {
    [(vs or "") .. "." .. cfg.version_table] = true, [(vs or "") .. "." .. cfg.log_table] = true } }, Run)
  local out = { checks = {}, passed = 0, failed = 0, skipped = 0 }
  local function report(r)
    out.checks[#out.checks + 1] = r
    local k = r.status == "pass" and "passed" or r.status == "fail" and "failed" or "skipped"
    out[k] = out[k] + 1
    if opts.on_check then opts.on_check(r) end
    return r
  end
  sys.trap(true)
  local ok, err = pcall(run.all, run, report)
  sys.trap(false)
  if run.conn then run.conn:close() end
  local gone = run.env and run.env:gone()
  local problems = run.env and run.env:close() or {}
  for _, p in ipairs(problems) do
    if opts.log then opts.log("warn", p, 0) end
  end
  if #problems > 0 then gone = nil end
  if sys.interrupted() then error("interrupted" .. (gone and ("; " .. gone) or ""), 0) end
  if not ok then error(err, 0) end
  return out
end

return T

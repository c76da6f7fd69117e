-- luamig: the Lua API, for apps that migrate at start-up and for tools.
-- A thin face over luamig.core: the same C core, lock and semantics as the
-- luamig command. Expected failures (the database, the files) come back as
-- nil, message, sqlstate (the server's SQLSTATE when the failure is its, as
-- "55P03" for a lock timeout; else nil); a wrong call (not an options table) raises.
--
--   local luamig = require "luamig"
--   local steps, err = luamig.upgrade{ config = "luamig.lua", target = "head" }
local core = require "luamig.core"

local luamig = { version = core.version }

-- The core reports progress as (event, text, ms); apps want finished lines.
local function line_logger(log)
  return function(event, text, ms)
    if event == "done" then
      log(("%s (%.1f ms)"):format(text, ms))
    elseif event == "fail" then
      log(text .. " FAILED")
    elseif event == "info" then
      log(text)
    elseif event == "warn" then
      log("warning: " .. text)
    end
  end
end

-- An error value as one line of text: nil and tables without __tostring would
-- otherwise read "nil" or "table: 0x...".
local function error_text(e)
  if type(e) == "string" then return e end
  if e == nil then return "nil error value" end
  local mt = getmetatable(e)
  if (type(e) == "table" or type(e) == "userdata") and not (type(mt) == "table" and mt.__tostring) then
    return ("a %s value was raised as the error (give it a __tostring metamethod)"):format(type(e))
  end
  return tostring(e)
end

local function command(name)
  return function(opts)
    opts = opts or {}
    if type(opts) ~= "table" then
      error(("luamig.%s: expected an options table, got %s"):format(name, type(opts)), 2)
    end
    local call = {}
    for k, v in pairs(opts) do call[k] = v end
    if opts.log ~= nil then
      if type(opts.log) ~= "function" then
        error(("luamig.%s: log must be a function"):format(name), 2)
      end
      call.log = line_logger(opts.log)
    end
    local ok, result = pcall(core[name], call)
    if not ok then return nil, error_text(result), core.sqlstate(result) end
    return result
  end
end

-- The core functions of the CLI's commands (src/cli/cli_commands.c; `luamig --list-cmds=api`
-- lists them, and spec/cli_table_spec.lua checks this list has each), and autogenerate.
for _, name in ipairs { "upgrade", "downgrade", "stamp", "current", "heads", "history",
                        "status", "show", "branches", "verify", "revision", "merge", "init",
                        "lint", "autogenerate", "check", "test" } do
  luamig[name] = command(name)
end

return luamig

-- examples/app/app.lua: an application that migrates its database at start-up, the
-- guide's "migrations run automatically when the API container starts", with the Lua
-- API instead of a shell step. Start as many copies at once as you like: luamig's
-- advisory lock lets the first one migrate while the others wait, then find nothing
-- left to do.
--
--   DATABASE_URL=postgresql://app@localhost/app lua5.4 examples/app/app.lua
--
-- The luamig module must be on package.path/package.cpath: installed (make install,
-- luarocks), or from a build tree:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lib/?.so;;' lua5.4 examples/app/app.lua
local luamig = require "luamig"

-- luamig.lua beside this file (paths in it are relative to it, wherever we run from).
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "."
local config = os.getenv("APP_LUAMIG_CONFIG") or (here .. "/luamig.lua")

-- No url in the config: luamig uses DATABASE_URL, then libpq's PG* variables.
local steps, err = luamig.upgrade { config = config, target = "head", log = print }
if not steps then
  io.stderr:write("app: database migration failed: ", err, "\n")
  os.exit(1)
end
print(("app: %d migration%s applied"):format(#steps, #steps == 1 and "" or "s"))

-- ... open the connection pool, start the HTTP server, and so on ...
print("app ready")

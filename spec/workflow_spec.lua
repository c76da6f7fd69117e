-- The Alembic guide's Makefile workflow, end to end: make db-setup, db-migrate,
-- db-migrate-current, db-migrate-history, db-migrate-rollback, db-migrate-create and
-- db-reset, on the repository's example project against a fresh database. #workflow
--
-- make runs in a temporary copy of the project (Makefile, scripts/, luamig.lua,
-- versions/, app/), so db-migrate-create writes there and not into the repository's
-- versions/. `-o all` keeps make from building in the copy (which has no sources):
-- the luamig command is this tree's, through LUAMIG (scripts/lib.sh reads it).
local h = require "helpers"
local checkout = require "checkout"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local HEAD, BEFORE = "3f2a9c1b7e4d", "a1b2c3d4e5f6"

local q = h.shell_quote
local read, write = checkout.read, checkout.write

local function must(cmd)
  local code, out = h.sh(cmd)
  assert(code == 0, ("command failed (exit %d): %s\n%s"):format(code, cmd, out))
  return out
end

describe("the guide's make targets #workflow", function()
  local db, dir, base
  before_each(function()
    -- A database name of the spec's own, dropped again so that db-setup creates it.
    db = h.new_database()
    h.drop_database(db)
    base = h.project({})
    dir = base .. "/project"
    must(("mkdir %s && cd %s && cp -R Makefile scripts luamig.lua versions app %s/")
      :format(q(dir), q(h.root), q(dir)))
  end)
  after_each(function() h.drop_database(db) end)

  -- make -s -C <copy> -o all TARGET, with DATABASE_URL on the spec's database.
  local function make(target, extra_env, stdin)
    local env = { DATABASE_URL = h.url(db), LUAMIG = h.bin,
                  MAKEFLAGS = false, MAKELEVEL = false, MFLAGS = false }
    for k, v in pairs(extra_env or {}) do env[k] = v end
    return h.run({ "-s", "-C", dir, "-o", "all", target }, { bin = "make", env = env, stdin = stdin })
  end

  local function ok(target, extra_env)
    local code, out, err = make(target, extra_env)
    assert.equal(0, code, ("make %s failed:\n%s%s"):format(target, out, err))
    return out, err
  end

  local function version() return h.psql(h.url(db), "SELECT string_agg(version_num, ',') FROM luamig_version") end

  it("setup, migrate, current, history, rollback, migrate, create, reset", function()
    -- db-setup: creates the database, grants the schema
    local _, err = ok("db-setup")
    assert.matches("Database " .. db .. " is ready", err, nil, true)
    assert.equal("1", h.psql("postgres", ("SELECT count(*) FROM pg_database WHERE datname = '%s'"):format(db)))
    assert.equal("t", h.psql(h.url(db), "SELECT has_schema_privilege('public', 'CREATE')"))

    -- db-migrate: upgrade head
    local out = ok("db-migrate")
    assert.matches("Upgraded: 4 revisions.", out, nil, true)
    assert.equal(HEAD, version())

    -- db-migrate-current: current --verbose
    out = ok("db-migrate-current")
    assert.matches("Rev: " .. HEAD, out, nil, true)

    -- db-migrate-history: every revision, the current one marked
    out = ok("db-migrate-history")
    for _, id in ipairs { "1a2b3c4d5e6f", "7c9e2d4f1b3a", BEFORE, HEAD } do
      assert.matches("Rev: " .. id, out, nil, true)
    end
    assert.matches("Path: versions/" .. HEAD .. "_add_description_column_to_sessions.lua", out, nil, true)

    -- db-migrate-rollback: downgrade -1
    out = ok("db-migrate-rollback")
    assert.matches("Running downgrade " .. HEAD .. " -> " .. BEFORE, out, nil, true)
    assert.equal(BEFORE, version())
    assert.equal("0", h.psql(h.url(db), [[SELECT count(*) FROM information_schema.columns
                                           WHERE table_name = 'sessions' AND column_name = 'description']]))

    -- db-migrate again: back at head
    out = ok("db-migrate")
    assert.matches("Upgraded: 1 revision.", out, nil, true)
    assert.equal(HEAD, version())

    -- db-migrate-create: a new revision file in the copy's versions/, on top of the head
    out = ok("db-migrate-create", { MESSAGE = "Add email index" })
    local path = out:match("Generating (versions/%x+_add_email_index%.lua) %.%.%. done")
    assert.truthy(path, out)
    local f = assert(io.open(dir .. "/" .. path))
    local text = f:read("a")
    f:close()
    assert.matches('down_revision = "' .. HEAD .. '"', text, nil, true)
    assert.matches("Add email index", text, nil, true)
    local code, listing = h.sh("ls " .. q(h.root .. "/versions"))
    assert.equal(0, code)
    assert.not_matches("add_email_index", listing, nil, true)   -- the repository is untouched
    out = ok("db-migrate-history")
    assert.matches("Rev: " .. path:match("versions/(%x+)_") .. " (head)", out, nil, true)

    -- db-reset without FORCE and without a terminal: refused, nothing dropped
    local rc, rout, rerr = make("db-reset")
    assert.are_not.equal(0, rc, rout .. rerr)
    assert.matches("run it from a terminal, or with FORCE=1", rerr, nil, true)
    assert.equal(HEAD, version())

    -- FORCE=1 make db-reset: dropped and created empty
    _, err = ok("db-reset", { FORCE = "1" })
    assert.matches("Dropped database " .. db, err, nil, true)
    assert.equal("0", h.psql(h.url(db), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))

    -- and the project migrates from scratch again, the new revision included
    out = ok("db-migrate")
    assert.matches("Upgraded: 5 revisions.", out, nil, true)
  end)

  it("db-migrate-create asks for the message on standard input; without models, a plain revision", function()
    -- a project whose luamig.lua names no models: no database needed (this one does not exist)
    local config = read(dir .. "/luamig.lua")
    write(dir .. "/luamig.lua", (config:gsub("\n%s*models%s*=[^\n]*", "")))
    local code, out, err = make("db-migrate-create", nil, "Create index on sessions.expires_at\n")
    assert.equal(0, code, out .. err)
    assert.matches("Migration message: ", err, nil, true)
    local path = out:match("Generating (versions/%x+_create_index_on_sessions_expires_at%.lua) %.%.%. done")
    assert.truthy(path, out)
    assert.not_matches("Detected", out, nil, true)
    assert.matches("\nfunction upgrade%(%)\n%s*\nend\n", read(dir .. "/" .. path))
  end)

  it("db-migrate-create autogenerates from the models (app/models.lua), as the guide's target does", function()
    ok("db-setup")
    ok("db-migrate")
    local models = read(dir .. "/app/models.lua")
    local edited = models:gsub('(\n  { "name", "varchar%(255%)" },\n)', '%1  { "nickname", "varchar(80)" },\n', 1)
    assert.are_not.equal(models, edited)
    write(dir .. "/app/models.lua", edited)

    local out = ok("db-migrate-create", { m = "Add nickname to users" })
    assert.matches("Detected added column 'users.nickname'", out, nil, true)
    local path = out:match("Generating (versions/%x+_add_nickname_to_users%.lua) %.%.%. done")
    assert.truthy(path, out)
    local up = read(dir .. "/" .. path):match("\nfunction upgrade%(%)\n(.-)\nend\n")
    assert.matches('op.add_column("users"', up, nil, true)
    assert.matches('"nickname"', up, nil, true)

    out = ok("db-migrate")
    assert.matches("Upgraded: 1 revision.", out, nil, true)
    assert.equal("1", h.psql(h.url(db), [[SELECT count(*) FROM information_schema.columns
                                           WHERE table_name = 'users' AND column_name = 'nickname']]))
  end)
end)

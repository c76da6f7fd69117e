-- luamig configuration for the example project (an interview-session backend).
--
-- No url here on purpose: luamig connects to $DATABASE_URL (set it in your shell
-- or in a .env file beside this one), else to libpq's defaults (PGHOST, PGPORT,
-- PGUSER, PGDATABASE, ...). `luamig --url URL ...` overrides both.
-- `make demo` and `make db-*` point DATABASE_URL at a private cluster under .demo/
-- when you have not set it yourself.
return {
  versions = "versions",            -- directory of revision files, relative to this file
  models = "app.models",            -- app/models.lua: the schema, for `check` and `revision --autogenerate`
  -- version_table = "luamig_version",
  -- version_table_schema = nil,    -- nil: the first schema on the search_path
}

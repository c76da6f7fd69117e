-- The example app's luamig configuration. No url: DATABASE_URL (or PGHOST, ...) says
-- which database, so the same files work on a laptop, in CI and in a container.
return {
  versions = "versions",
}

-- Create app_migration_log
--
-- Revision ID: 5b7e1d2c9a01
-- Revises:
-- Create Date: 2026-11-25 22:00:00
--
-- Every revision of the example app records itself here, so a test can count how
-- often each one ran when several copies of the app start at once.
revision = "5b7e1d2c9a01"
down_revision = nil
message = "Create app_migration_log"

function upgrade()
  op.create_table("app_migration_log", {
    { "id", "bigserial", primary_key = true },
    { "revision", "varchar(32)", nullable = false },
    { "applied_at", "timestamptz", nullable = false, default = "now()" },
    { "backend_pid", "integer", nullable = false, default = "pg_backend_pid()" },
  })
  op.execute("INSERT INTO app_migration_log (revision) VALUES ($1)", { revision })
end

function downgrade()
  op.drop_table("app_migration_log")
end

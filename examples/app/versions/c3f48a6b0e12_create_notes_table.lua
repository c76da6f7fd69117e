-- Create notes table
--
-- Revision ID: c3f48a6b0e12
-- Revises: 5b7e1d2c9a01
-- Create Date: 2026-11-25 22:01:00
--
-- Slow on purpose (pg_sleep): copies of the app that start meanwhile must wait on
-- the lock instead of running it a second time.
revision = "c3f48a6b0e12"
down_revision = "5b7e1d2c9a01"
message = "Create notes table"

function upgrade()
  op.create_table("notes", {
    { "id", "bigserial", primary_key = true },
    { "body", "text", nullable = false },
    { "created_at", "timestamptz", nullable = false, default = "now()" },
  })
  op.execute("SELECT pg_sleep(0.2)")
  op.execute("INSERT INTO app_migration_log (revision) VALUES ($1)", { revision })
end

function downgrade()
  op.drop_table("notes")
  op.execute("DELETE FROM app_migration_log WHERE revision = $1", { revision })
end

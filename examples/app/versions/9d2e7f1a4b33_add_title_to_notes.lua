-- Add title to notes
--
-- Revision ID: 9d2e7f1a4b33
-- Revises: c3f48a6b0e12
-- Create Date: 2026-11-25 22:02:00
revision = "9d2e7f1a4b33"
down_revision = "c3f48a6b0e12"
message = "Add title to notes"

function upgrade()
  op.add_column("notes", { "title", "varchar(200)", nullable = true })
  op.create_index("ix_notes_created_at", "notes", { "created_at" })
  op.execute("INSERT INTO app_migration_log (revision) VALUES ($1)", { revision })
end

function downgrade()
  op.drop_index("ix_notes_created_at")
  op.drop_column("notes", "title")
  op.execute("DELETE FROM app_migration_log WHERE revision = $1", { revision })
end

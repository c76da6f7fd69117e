-- Create sessions table
--
-- Revision ID: 7c9e2d4f1b3a
-- Revises: 1a2b3c4d5e6f
-- Create Date: 2026-11-25 20:20:00
revision = "7c9e2d4f1b3a"
down_revision = "1a2b3c4d5e6f"
message = "Create sessions table"

function upgrade()
  op.create_table("sessions", {
    { "id", "bigserial", primary_key = true },
    { "user_id", "bigint", nullable = false, references = "users(id)", on_delete = "cascade" },
    { "title", "varchar(255)", nullable = false },
    { "expires_at", "timestamptz", nullable = false },
    { "created_at", "timestamptz", nullable = false, default = "now()" },
  })
  -- The cleanup job looks sessions up by expiry.
  op.create_index("ix_sessions_expires_at", "sessions", { "expires_at" })
end

function downgrade()
  op.drop_index("ix_sessions_expires_at")
  op.drop_table("sessions")
end

-- Create participants table
--
-- Revision ID: a1b2c3d4e5f6
-- Revises: 7c9e2d4f1b3a
-- Create Date: 2026-11-25 20:40:00
revision = "a1b2c3d4e5f6"
down_revision = "7c9e2d4f1b3a"
message = "Create participants table"

function upgrade()
  op.create_table("participants", {
    { "id", "bigserial", primary_key = true },
    { "session_id", "bigint", nullable = false, references = "sessions(id)", on_delete = "cascade" },
    { "user_id", "bigint", nullable = false, references = "users(id)", on_delete = "cascade" },
    { "role", "varchar(50)", nullable = false, default = "'candidate'" },
    { "joined_at", "timestamptz", nullable = false, default = "now()" },
    -- A user joins a given session once.
    "UNIQUE (session_id, user_id)",
  })
end

function downgrade()
  op.drop_table("participants")
end

-- Create users table
--
-- Revision ID: 1a2b3c4d5e6f
-- Revises:
-- Create Date: 2026-11-25 20:00:00
revision = "1a2b3c4d5e6f"
down_revision = nil
message = "Create users table"

function upgrade()
  op.create_table("users", {
    { "id", "bigserial", primary_key = true },
    { "email", "varchar(255)", nullable = false, unique = true },
    { "name", "varchar(255)" },
    { "created_at", "timestamptz", nullable = false, default = "now()" },
  })
end

function downgrade()
  op.drop_table("users")
end

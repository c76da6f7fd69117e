-- Add description column to sessions
--
-- Revision ID: 3f2a9c1b7e4d
-- Revises: a1b2c3d4e5f6
-- Create Date: 2026-11-25 21:00:00
revision = "3f2a9c1b7e4d"
down_revision = "a1b2c3d4e5f6"
message = "Add description column to sessions"

function upgrade()
  op.add_column("sessions", { "description", "varchar(500)", nullable = true })
end

function downgrade()
  op.drop_column("sessions", "description")
end

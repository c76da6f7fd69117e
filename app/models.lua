-- The example project's models: the schema the four revisions in versions/ build,
-- described once. `luamig check` compares them with the database; after a change
-- here, `luamig revision --autogenerate -m "..."` writes the revision that applies it.
local schema = require "luamig.schema"

local m = schema.new()

m:table("users", {
  { "id", "bigserial", primary_key = true },
  { "email", "varchar(255)", nullable = false, unique = true },
  { "name", "varchar(255)" },
  { "created_at", "timestamptz", nullable = false, default = "now()" },
})

m:table("sessions", {
  { "id", "bigserial", primary_key = true },
  { "user_id", "bigint", nullable = false, references = "users(id)", on_delete = "cascade" },
  { "title", "varchar(255)", nullable = false },
  { "expires_at", "timestamptz", nullable = false },
  { "created_at", "timestamptz", nullable = false, default = "now()" },
  { "description", "varchar(500)" },
  -- The cleanup job looks sessions up by expiry.
  schema.index("ix_sessions_expires_at", { "expires_at" }),
})

m:table("participants", {
  { "id", "bigserial", primary_key = true },
  { "session_id", "bigint", nullable = false, references = "sessions(id)", on_delete = "cascade" },
  { "user_id", "bigint", nullable = false, references = "users(id)", on_delete = "cascade" },
  { "role", "varchar(50)", nullable = false, default = "'candidate'" },
  { "joined_at", "timestamptz", nullable = false, default = "now()" },
  -- A user joins a given session once.
  "UNIQUE (session_id, user_id)",
})

return m

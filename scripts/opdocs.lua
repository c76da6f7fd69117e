-- scripts/opdocs.lua: renders docs/operations.md, the op API reference, from the
-- op registry (src/ops/ops_registry.c: each op's signature, section, text and example).
-- Each example runs against an offline op context, so the SQL shown is exactly what
-- `luamig upgrade --sql` prints and what a live run sends (spec/ops_full_spec.lua
-- fails when the file is stale). Regenerate after changing an op:
--   LUA_CPATH='build/lib/?.so;;' LUA_PATH='lua/?.lua;;' lua5.4 scripts/opdocs.lua > docs/operations.md
local core = require "luamig.core"
local specs = require "luamig.opspec"

local INTRO = [[
# Operations

A revision's `upgrade()` and `downgrade()` change the schema through `op`, the operations
below. Names and arguments follow Alembic's `op.*`; options are a Lua table as the last argument.
Every example here was run through luamig's offline renderer: the SQL after it is exactly what
`luamig upgrade --sql` prints and what a live run sends.

The rules every operation follows:

- **Identifiers are always quoted** (`"users"`, `"we""ird"`), by one function: a name reaches the
  catalog exactly as written (case, spaces, reserved words, unicode). A name longer than 63 bytes
  (PostgreSQL's limit, which the server would silently truncate) is an error before anything is sent.
- **`schema =`** qualifies the object (`"app"."users"`) on every operation that names a table,
  index, type or constraint; `create_schema`/`drop_schema` name the schema itself, and
  `create_extension`'s `schema =` is where the extension's objects go.
- **SQL text passes through verbatim**: column types, defaults (`default = "now()"`), check
  conditions, index expressions and `where =` clauses are SQL, as you would write them in
  `CREATE TABLE`. A number or boolean default is written as SQL too (`default = 0`).
- **Values are parameters**: `op.execute`, `op.query` and `op.bulk_insert` send values as
  `$1, $2, ...`, never pasted into SQL; the offline script shows them inlined as literals.
- **Several statements**: an operation that needs more than one (a table and its comments)
  sends them one by one, and `--sql` lists each.
- **Errors** name the revision's file and line, the operation, and for server errors the SQLSTATE,
  message and statement: `versions/x.lua:12: op.add_column: 42701: column "email" of relation
  "users" already exists; SQL: ALTER TABLE "users" ADD COLUMN "email" text`.
- **Outside a transaction**: every revision runs in its own transaction unless it sets
  `transactional = false` at the top of the file. Then each statement commits on its own, the
  version table is updated right after the revision's last statement, and the progress line ends in
  `(non-transactional)`. `CREATE INDEX CONCURRENTLY` (`concurrently = true`) needs this, and
  refuses to run in a transactional revision:
  `op.create_index: concurrently = true needs a revision with transactional = false`.

```lua
-- Index orders by user
revision = "5d1f0c2a9e3b"
down_revision = "3f2a9c1b7e4d"
message = "Index orders by user"
transactional = false          -- each statement commits on its own

function upgrade()
  op.create_index("ix_orders_user", "orders", { "user_id" }, { concurrently = true })
end

function downgrade()
  op.drop_index("ix_orders_user", { concurrently = true })
end
```
]]

-- The SQL of one example: its statements, as the offline script has them; or, for
-- an op that needs a live database, the error the offline script raises.
local function render_sql(example)
  local ctx = core.new_context(nil, { transactional = false })
  local chunk = assert(load(example, "=example", "t", { op = core.ops(ctx), ipairs = ipairs }))
  local ok, err = pcall(chunk)
  if not ok then return nil, (tostring(err):gsub("^example:%d+: ", "")) end
  return table.concat(core.script(ctx), "\n")
end

-- The registry's sections, in its order, each with its ops.
local function sections()
  local list, by_title = {}, {}
  for _, spec in ipairs(specs.list) do
    local section = by_title[spec.section]
    if not section then
      section = { title = spec.section, ops = {} }
      by_title[spec.section] = section
      list[#list + 1] = section
    end
    section.ops[#section.ops + 1] = spec
  end
  return list
end

local function render()
  local out = { INTRO, "\n## Contents\n\n" }
  local list = sections()
  for _, section in ipairs(list) do
    local names = {}
    for _, o in ipairs(section.ops) do names[#names + 1] = ("[`%s`](#op%s)"):format(o.name, o.name) end
    out[#out + 1] = ("- %s: %s\n"):format(section.title, table.concat(names, ", "))
  end
  for _, section in ipairs(list) do
    out[#out + 1] = ("\n## %s\n"):format(section.title)
    for _, o in ipairs(section.ops) do
      out[#out + 1] = ("\n### `op.%s`\n\n`%s`\n"):format(o.name, specs.signature(o))
      if o.doc then out[#out + 1] = "\n" .. o.doc .. "\n" end
      out[#out + 1] = "\n```lua\n" .. o.example .. "\n```\n"
      local sql, live = render_sql(o.example)
      if live then
        out[#out + 1] = "\nLive only; in an offline script (`--sql`) it raises: `" .. live .. "`.\n"
      else
        out[#out + 1] = "\n```sql\n" .. sql .. "\n```\n"
      end
    end
  end
  return table.concat(out)
end

if arg and arg[0] and arg[0]:match("opdocs%.lua$") then io.write(render()) end
return render

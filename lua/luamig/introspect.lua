-- luamig.introspect: the live schema, read from pg_catalog with a fixed set of
-- queries (one per kind of object: schemas, tables, columns, constraints, indexes,
-- enums), whatever the number of tables, restricted to the schemas asked for.
--
-- The result has the shape autogen compares:
--   { current_schema =, schemas = { [name] = true }, tables = { [key] = T }, enums = { [key] = E } }
--   T = { schema, name, key, comment, columns = { C... }, col = { [name] = C }, pk = { name, columns },
--         uniques/checks/fks/indexes = { [name] = ... } }
--   C = { name, type, nullable, default, autoinc, sequence, identity, generated, comment }
-- where key is "schema.name" and every text is as PostgreSQL prints it.
local S = require "luamig.sqltext"
local types = require "luamig.types"

local I = {}

-- {a,"b c"} (PostgreSQL's array output) -> { "a", "b c" }
function I.parse_array(s)
  local out, i, n = {}, 2, #s
  if s == "{}" then return out end
  while i <= n do
    local c = s:sub(i, i)
    if c == '"' then
      local buf, j = {}, i + 1
      while j <= n do
        local ch = s:sub(j, j)
        if ch == "\\" then buf[#buf + 1] = s:sub(j + 1, j + 1); j = j + 2
        elseif ch == '"' then break
        else buf[#buf + 1] = ch; j = j + 1 end
      end
      out[#out + 1] = table.concat(buf)
      i = j + 2                      -- past the quote and the , or }
    else
      local j = s:find("[,}]", i)
      local v = s:sub(i, j - 1)
      out[#out + 1] = v ~= "NULL" and v or nil
      i = j + 1
    end
  end
  return out
end

-- The key elements of an index definition (pg_get_indexdef): "CREATE INDEX i ON t USING
-- btree (lower(email), id DESC) INCLUDE (...) WHERE ..." -> { "lower(email)", "id DESC" }.
function I.index_elements(def, method)
  local open = def:find(" USING " .. method .. " (", 1, true)
  if not open then return {} end
  local start = open + #(" USING " .. method .. " (")
  local out, depth, first, last = {}, 0, nil, nil
  for _, t in ipairs(S.tokens(def:sub(start))) do
    if (t.k == "," or t.k == ")") and depth == 0 then
      out[#out + 1] = first and def:sub(start + first - 1, start + last - 1) or ""
      if t.k == ")" then break end
      first = nil
    else
      if t.k == "(" then depth = depth + 1 elseif t.k == ")" then depth = depth - 1 end
      first, last = first or t.s, t.e
    end
  end
  return out
end

-- { "a", "b" } -> {"a","b"}: a text[] parameter.
function I.array_literal(list)
  local items = {}
  for i, s in ipairs(list) do items[i] = '"' .. s:gsub('[\\"]', "\\%0") .. '"' end
  return "{" .. table.concat(items, ",") .. "}"
end

local IN_SCHEMAS = [[
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition]]

I.queries = {
  schemas = [[
SELECT current_schema() AS current_schema, NULL AS name
UNION ALL
SELECT NULL, nspname FROM pg_namespace WHERE nspname = ANY ($1::text[])]],

  tables = [[
SELECT c.oid, n.nspname AS schema, c.relname AS name, d.description AS comment
FROM pg_class c
  LEFT JOIN pg_description d
    ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
]] .. IN_SCHEMAS,

  -- A default never mentions a column, so it is printed without opening its table
  -- (relid 0), several times faster; a generated column's expression needs the table.
  columns = [[
SELECT a.attrelid AS oid, a.attnum AS num, a.attname AS name,
  format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
  CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, 0)
       ELSE pg_get_expr(ad.adbin, ad.adrelid) END AS default_expr,
  a.attidentity AS identity, a.attgenerated AS generated, d.description AS comment,
  s.seq AS sequence
FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  LEFT JOIN pg_description d
    ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
  LEFT JOIN (SELECT dep.refobjid, dep.refobjsubid, min(dep.objid::regclass::text) AS seq
             FROM pg_depend dep JOIN pg_class sc ON sc.oid = dep.objid AND sc.relkind = 'S'
             WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
               AND dep.deptype IN ('a', 'i')
             GROUP BY 1, 2) s
    ON s.refobjid = a.attrelid AND s.refobjsubid = a.attnum
]] .. IN_SCHEMAS .. [[ AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum]],

  -- Column numbers, not names: the columns query has them (names are looked up only
  -- for a table outside these schemas that a foreign key references).
  constraints = [[
SELECT con.conrelid AS oid, con.conname AS name, con.contype AS type,
  con.conkey::text AS columns, rn.nspname AS ref_schema, rc.relname AS ref_table,
  con.confrelid AS ref_oid, con.confkey::text AS ref_nums,
  CASE WHEN con.contype = 'f' AND rn.nspname <> ALL ($1::text[]) THEN
    ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
          ORDER BY k.ord)::text END AS ref_names,
  con.confdeltype AS on_delete, con.confupdtype AS on_update,
  CASE WHEN con.contype = 'c' THEN pg_get_expr(con.conbin, con.conrelid, true) END AS expr
FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  LEFT JOIN pg_class rc ON rc.oid = con.confrelid
  LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
]] .. IN_SCHEMAS .. [[ AND con.contype IN ('p', 'u', 'f', 'c')
ORDER BY con.conrelid, con.conname]],

  -- Key columns by number (named from the columns query); pg_get_indexdef for the first
  -- two expressions only, and for the whole index only when it has more or something
  -- op.create_index cannot say (an operator class, INCLUDE): a subquery per index would
  -- cost more than all the rest.
  indexes = [[
SELECT i.indrelid AS oid, ic.relname AS name, i.indisunique AS is_unique, am.amname AS method,
  pg_get_expr(i.indpred, i.indrelid, true) AS predicate, i.indkey::text AS keys,
  i.indnkeyatts AS nkeys, i.indoption::text AS options, x.custom,
  CASE WHEN x.custom OR cardinality(x.ex) > 2 THEN pg_get_indexdef(i.indexrelid, 0, true) END AS def,
  CASE WHEN NOT x.custom AND cardinality(x.ex) BETWEEN 1 AND 2
       THEN pg_get_indexdef(i.indexrelid, x.ex[1] + 1, true) END AS expr1,
  CASE WHEN NOT x.custom AND cardinality(x.ex) = 2
       THEN pg_get_indexdef(i.indexrelid, x.ex[2] + 1, true) END AS expr2
FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_am am ON am.oid = ic.relam
  JOIN pg_class c ON c.oid = i.indrelid
  CROSS JOIN LATERAL (SELECT array_positions(i.indkey::int2[], 0::int2) AS ex,
      i.indnatts > i.indnkeyatts OR NOT i.indclass::oid[] <@ (
        SELECT array_agg(oid) FROM pg_opclass WHERE opcdefault) AS custom) x
]] .. IN_SCHEMAS .. [[ AND NOT EXISTS (
    SELECT 1 FROM pg_constraint con
    WHERE con.conrelid = i.indrelid AND con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY i.indrelid, ic.relname]],

  enums = [[
SELECT n.nspname AS schema, t.typname AS name, e.enumlabel AS label
FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace
  JOIN pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname = ANY ($1::text[])
ORDER BY n.nspname, t.typname, e.enumsortorder]],
}


-- The ordering of an index key by its pg_index.indoption bits (1: DESC, 2: NULLS
-- FIRST), as pg_get_indexdef writes it after the key.
local function ordering(o)
  if o & 1 ~= 0 then return o & 2 ~= 0 and " DESC" or " DESC NULLS LAST" end
  return o & 2 ~= 0 and " NULLS FIRST" or ""
end

-- attribute numbers ("{1,2}") -> names, from the columns read
local function column_names(nums, t)
  local out = {}
  for num in nums:gmatch("%d+") do out[#out + 1] = t.by_num[tonumber(num)] end
  return out
end

-- The database's current schema and the schemas asked for that exist, into db;
-- returns them as the text[] parameter of the other queries.
local function read_schemas(conn, db, schemas)
  local wanted = {}
  for _, s in ipairs(schemas or {}) do wanted[#wanted + 1] = s end
  for _, r in ipairs(conn:query(I.queries.schemas, I.array_literal(wanted))) do
    if r.current_schema then db.current_schema = r.current_schema end
    if r.name then db.schemas[r.name] = true end
  end
  if not db.current_schema then
    error("no current schema: the search_path names no schema that exists; set it (or the "
          .. "role's default) so luamig knows where unqualified tables live", 0)
  end
  db.schemas[db.current_schema] = true
  local list = {}
  for s in pairs(db.schemas) do list[#list + 1] = s end
  table.sort(list)
  return I.array_literal(list)
end

-- The tables, into db.tables but those in ignore; returns them by oid, and all of
-- them by oid (the ignored ones too: a foreign key may reference one).
local function read_tables(conn, db, arg, ignore)
  local by_oid, all_by_oid = {}, {}
  for _, r in ipairs(conn:query(I.queries.tables, arg)) do
    local key = r.schema .. "." .. r.name
    local t = { schema = r.schema, name = r.name, key = key, comment = r.comment,
                columns = {}, col = {}, uniques = {}, checks = {}, fks = {}, indexes = {},
                by_num = {} }
    all_by_oid[r.oid] = t
    if not ignore[key] then
      db.tables[key] = t
      by_oid[r.oid] = t
    end
  end
  return by_oid, all_by_oid
end

local function read_columns(conn, arg, all_by_oid)
  for _, r in ipairs(conn:query(I.queries.columns, arg)) do
    local t = all_by_oid[r.oid]
    if t then
      local c = { name = r.name, type = r.type, nullable = not r.notnull, comment = r.comment,
                  sequence = r.sequence }
      if r.generated and r.generated ~= "" then
        c.generated = r.default_expr
      elseif r.identity == "a" or r.identity == "d" then
        c.identity = r.identity == "a" and "always" or "by default"
      elseif r.sequence and r.default_expr == ("nextval('%s'::regclass)"):format(r.sequence) then
        c.autoinc = true             -- serial: the owned sequence is not a default to compare
      else
        c.default = r.default_expr
      end
      t.columns[#t.columns + 1] = c
      t.col[c.name] = c
      t.by_num[r.num] = r.name
    end
  end
end

local function read_constraints(conn, arg, by_oid, all_by_oid)
  for _, r in ipairs(conn:query(I.queries.constraints, arg)) do
    local t = by_oid[r.oid]
    if t then
      local cols = column_names(r.columns, t)
      if r.type == "p" then
        t.pk = { name = r.name, columns = cols }
      elseif r.type == "u" then
        t.uniques[r.name] = { name = r.name, columns = cols }
      elseif r.type == "c" then
        t.checks[r.name] = { name = r.name, expr = r.expr }
      elseif r.type == "f" then
        local rt = all_by_oid[r.ref_oid]
        local ref_cols = r.ref_names and I.parse_array(r.ref_names)
          or column_names(r.ref_nums, rt or { by_num = {} })
        t.fks[r.name] = { name = r.name, columns = cols, ref_schema = r.ref_schema,
                          ref_table = r.ref_table, ref_columns = ref_cols,
                          on_delete = types.FK_CODES[r.on_delete], on_update = types.FK_CODES[r.on_update] }
      end
    end
  end
end

-- The key columns of the index row r of table t, each as PostgreSQL prints it.
local function index_columns(t, r)
  local keys, opts_list, cols = {}, {}, {}
  for k in r.keys:gmatch("%d+") do keys[#keys + 1] = tonumber(k) end
  for o in r.options:gmatch("%d+") do opts_list[#opts_list + 1] = tonumber(o) end
  local elems = r.def and I.index_elements(r.def, r.method)
  local exprs = { r.expr1, r.expr2 }
  for k = 1, r.nkeys do
    local name = t.by_num[keys[k]]
    local order = ordering(opts_list[k] or 0)
    if elems then
      cols[k] = elems[k]             -- as PostgreSQL prints it, ordering included
    elseif keys[k] == 0 or not name then
      cols[k] = table.remove(exprs, 1) .. order
    else
      cols[k] = S.ident(name) .. order
    end
  end
  return cols
end

local function read_indexes(conn, arg, by_oid)
  for _, r in ipairs(conn:query(I.queries.indexes, arg)) do
    local t = by_oid[r.oid]
    if t then
      t.indexes[r.name] = { name = r.name, columns = index_columns(t, r), unique = r.is_unique,
                            where = r.predicate, using = r.method, def = r.def, custom = r.custom }
    end
  end
end

local function read_enums(conn, arg, db)
  for _, r in ipairs(conn:query(I.queries.enums, arg)) do
    local key = r.schema .. "." .. r.name
    local e = db.enums[key]
    if not e then
      e = { schema = r.schema, name = r.name, key = key, values = {} }
      db.enums[key] = e
    end
    e.values[#e.values + 1] = r.label
  end
end

-- opts.schemas: the schemas the models name (the current schema is always added);
-- opts.ignore: { [schema .. "." .. table] = true } (the version and log tables),
-- where a nil schema part means the current schema.
function I.read(conn, opts)
  local db = { schemas = {}, tables = {}, enums = {} }
  local arg = read_schemas(conn, db, opts.schemas)
  local ignore = {}
  for k in pairs(opts.ignore or {}) do
    ignore[k:sub(1, 1) == "." and (db.current_schema .. k) or k] = true
  end
  local by_oid, all_by_oid = read_tables(conn, db, arg, ignore)
  read_columns(conn, arg, all_by_oid)
  read_constraints(conn, arg, by_oid, all_by_oid)
  read_indexes(conn, arg, by_oid)
  read_enums(conn, arg, db)
  return db
end

-- ---- PostgreSQL's text of the model's expressions ----

local PROBE_READ = [[
SELECT 'default' AS kind, c.relname AS rel, a.attname AS name,
  pg_get_expr(ad.adbin, ad.adrelid) AS expr, NULL AS columns, NULL AS options
FROM pg_attrdef ad
  JOIN pg_class c ON c.oid = ad.adrelid
  JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
WHERE c.relnamespace = pg_my_temp_schema() AND c.relname LIKE 'luamig\_probe\_%'
UNION ALL
SELECT 'check', c.relname, con.conname, pg_get_expr(con.conbin, con.conrelid), NULL, NULL
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
WHERE c.relnamespace = pg_my_temp_schema() AND c.relname LIKE 'luamig\_probe\_%'
  AND con.contype = 'c'
UNION ALL
SELECT 'index', ic.relname, ic.relname, pg_get_expr(i.indpred, i.indrelid),
  ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
        FROM generate_series(1, i.indnkeyatts) k ORDER BY k)::text,
  i.indoption::text
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE ic.relnamespace = pg_my_temp_schema() AND ic.relname LIKE 'luamig\_probe\_%']]

-- PostgreSQL's own text for expressions of the models that differ as written from the
-- database's (suspects: { kind = "default"|"check"|"index", table =, obj =, expr = }):
-- each is applied to an empty temporary copy of its table inside a transaction that is
-- rolled back, and read back from the catalog (four round trips, however many; an
-- expression the server refuses stays a difference). Returns
-- { ["kind|table key|name"] = text, or for an index { columns, unique, where, using } }.
function I.canonical(conn, cur, suspects)
  local R = require "luamig.render"
  local ctx = { cur = cur }
  local ident, literal = S.ident, S.literal
  local stmts, probes, nprobe, nindex, back = {}, {}, 0, 0, {}
  for _, sp in ipairs(suspects) do
    local t = sp.table
    local p = probes[t.key]
    if not p then
      nprobe = nprobe + 1
      p = "luamig_probe_" .. nprobe
      probes[t.key] = p
      stmts[#stmts + 1] = ("CREATE TEMP TABLE %s (LIKE %s)"):format(p, R.qual(ctx, t.schema, t.name))
    end
    if sp.kind == "default" then
      stmts[#stmts + 1] = ("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s"):format(p,
        ident(sp.obj.name), sp.expr)
      back["default|" .. p .. "|" .. sp.obj.name] = "default|" .. t.key .. "|" .. sp.obj.name
    elseif sp.kind == "check" then
      stmts[#stmts + 1] = ("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s)"):format(p,
        ident(sp.obj.name), sp.expr)
      back["check|" .. p .. "|" .. sp.obj.name] = "check|" .. t.key .. "|" .. sp.obj.name
    else
      nindex = nindex + 1
      local ix, name = sp.obj, "luamig_probe_ix_" .. nindex
      local elems = {}
      for i, e in ipairs(ix.columns) do elems[i] = R.element_sql(t, e) end
      stmts[#stmts + 1] = ("CREATE %sINDEX %s ON %s USING %s (%s)%s"):format(
        ix.unique and "UNIQUE " or "", name, p, ix.using or "btree", table.concat(elems, ", "),
        ix.where and (" WHERE " .. ix.where) or "")
      back["index|" .. name .. "|" .. name] = { key = "index|" .. t.key .. "|" .. ix.name, ix = ix }
    end
  end
  local body = {}
  for _, sql in ipairs(stmts) do
    body[#body + 1] = "BEGIN EXECUTE " .. literal(sql) .. "; EXCEPTION WHEN OTHERS THEN NULL; END;"
  end
  local text = table.concat(body, "\n")
  local tag = "luamig"
  while text:find("$" .. tag .. "$", 1, true) do tag = tag .. "_" end
  local canonical = {}
  conn:exec("BEGIN")
  local ok, err = pcall(function()
    conn:exec(("DO $%s$ BEGIN\n%s\nEND $%s$"):format(tag, text, tag))
    for _, r in ipairs(conn:query(PROBE_READ)) do
      local to = back[r.kind .. "|" .. r.rel .. "|" .. r.name]
      if type(to) == "string" then
        canonical[to] = r.expr
      elseif to then
        local cols, opts = I.parse_array(r.columns), {}
        for o in r.options:gmatch("%d+") do opts[#opts + 1] = tonumber(o) end
        for k, col in ipairs(cols) do cols[k] = col .. ordering(opts[k] or 0) end
        canonical[to.key] = { columns = cols, unique = to.ix.unique, where = r.expr,
                              using = to.ix.using or "btree" }
      end
    end
  end)
  conn:exec("ROLLBACK")
  if not ok then error(err, 0) end
  return canonical
end

return I

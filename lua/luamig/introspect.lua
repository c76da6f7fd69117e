-- luamig.introspect: the live schema, read from pg_catalog with a fixed set of
-- queries (one per kind of object: schemas, tables, columns, constraints, indexes,
-- enums), whatever the number of tables, restricted to the schemas asked for. The one
-- catalog reader: autogenerate compares the models with what it returns, `luamig test`
-- (opts.full) two snapshots of a scratch database. The result has the shape autogen compares:
--   { current_schema =, schemas = { [name] = true }, tables = { [key] = T }, enums = { [key] = E } }
--   T = { schema, name, key, comment, acl, persistence, options, columns = { C... },
--         col = { [name] = C }, pk = { name, columns }, uniques/checks/fks/indexes = { [name] = ... },
--         excludes = { [name] = ... } }
--   C = { name, type, nullable, default, autoinc, sequence, identity, generated, comment, acl, collation }
-- where key is "schema.name" and every text is as PostgreSQL prints it. With opts.full,
-- also every user schema (schema_info = { [name] = { acl, comment } }), constraints' and
-- indexes' full definitions (def) and comments, T.triggers, and sequences, views,
-- functions, types (domains, composite types, enums' privileges) and extensions.
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

-- An object's comment: d.description, joined on d.objoid = <oid> for catalog <catalog>.
local function comment_join(oid, catalog)
  return ("LEFT JOIN pg_description d ON d.objoid = %s AND d.classoid = '%s'::regclass AND d.objsubid = 0\n")
    :format(oid, catalog)
end

-- Whether the object with oid <oid> in catalog <catalog> belongs to an extension (its
-- objects are the extension's, not the revisions').
local function not_extension_member(oid, catalog)
  return ("NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '%s'::regclass "
    .. "AND e.objid = %s AND e.deptype = 'e')\n"):format(catalog, oid)
end

-- $1: the schemas; $2 (the columns marked "full"): whether to print what only a
-- snapshot compares (a CASE that is false costs nothing per row).
I.queries = {
  schemas = [[
SELECT current_schema() AS current_schema, NULL AS name
UNION ALL
SELECT NULL, nspname FROM pg_namespace WHERE nspname = ANY ($1::text[])]],

  -- full: every schema but PostgreSQL's own
  all_schemas = [[
SELECT current_schema() AS current_schema, NULL AS name, NULL AS acl, NULL AS comment
UNION ALL
SELECT NULL, n.nspname, coalesce(n.nspacl, acldefault('n', n.nspowner))::text, d.description
FROM pg_namespace n
  ]] .. comment_join("n.oid", "pg_namespace") .. [[
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema']],

  tables = [[
SELECT c.oid, n.nspname AS schema, c.relname AS name, d.description AS comment,
  coalesce(c.relacl, acldefault('r', c.relowner))::text AS acl, c.relpersistence AS persistence,
  c.reloptions::text AS options
FROM pg_class c
  ]] .. comment_join("c.oid", "pg_class") .. IN_SCHEMAS,

  -- A default never mentions a column, so it is printed without opening its table
  -- (relid 0), several times faster; a generated column's expression needs the table.
  columns = [[
SELECT a.attrelid AS oid, a.attnum AS num, a.attname AS name,
  format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
  CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, 0)
       ELSE pg_get_expr(ad.adbin, ad.adrelid) END AS default_expr,
  a.attidentity AS identity, a.attgenerated AS generated, d.description AS comment,
  s.seq AS sequence, a.attacl::text AS acl,
  CASE WHEN a.attcollation NOT IN (0, 100) THEN a.attcollation::regcollation::text END AS collation
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
  CASE WHEN con.contype = 'c' THEN pg_get_expr(con.conbin, con.conrelid, true) END AS expr,
  CASE WHEN $2 THEN pg_get_constraintdef(con.oid, true) END AS def,
  CASE WHEN $2 THEN obj_description(con.oid, 'pg_constraint') END AS comment
FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  LEFT JOIN pg_class rc ON rc.oid = con.confrelid
  LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
]] .. IN_SCHEMAS .. [[ AND con.contype IN ('p', 'u', 'f', 'c', 'x')
ORDER BY con.conrelid, con.conname]],

  -- Key columns by number (named from the columns query); pg_get_indexdef for the first
  -- two expressions only, and for the whole index only when it has more or something
  -- op.create_index cannot say (an operator class, INCLUDE), or for a snapshot: a
  -- subquery per index would cost more than all the rest.
  indexes = [[
SELECT i.indrelid AS oid, ic.relname AS name, i.indisunique AS is_unique, am.amname AS method,
  pg_get_expr(i.indpred, i.indrelid, true) AS predicate, i.indkey::text AS keys,
  i.indnkeyatts AS nkeys, i.indoption::text AS options, x.custom,
  CASE WHEN $2 OR x.custom OR cardinality(x.ex) > 2 THEN pg_get_indexdef(i.indexrelid, 0, true) END AS def,
  CASE WHEN NOT x.custom AND cardinality(x.ex) BETWEEN 1 AND 2
       THEN pg_get_indexdef(i.indexrelid, x.ex[1] + 1, true) END AS expr1,
  CASE WHEN NOT x.custom AND cardinality(x.ex) = 2
       THEN pg_get_indexdef(i.indexrelid, x.ex[2] + 1, true) END AS expr2,
  CASE WHEN $2 THEN obj_description(i.indexrelid, 'pg_class') END AS comment
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

  -- full only: triggers, sequences, views, functions, types, extensions
  triggers = [[
SELECT t.tgrelid AS oid, t.tgname AS name, pg_get_triggerdef(t.oid, true) AS def,
  t.tgenabled AS enabled, obj_description(t.oid, 'pg_trigger') AS comment
FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
]] .. IN_SCHEMAS .. [[ AND NOT t.tgisinternal
ORDER BY t.tgrelid, t.tgname]],

  -- owner: the column a serial or identity column's sequence belongs to
  sequences = [[
SELECT n.nspname AS schema, c.relname AS name, format_type(s.seqtypid, NULL) AS type,
  s.seqstart AS start, s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max,
  s.seqcache AS cache, s.seqcycle AS cycle,
  coalesce(c.relacl, acldefault('s', c.relowner))::text AS acl, d.description AS comment,
  own.schema AS owner_schema, own.table AS owner_table, own.column AS owner_column
FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  ]] .. comment_join("c.oid", "pg_class") .. [[
  LEFT JOIN LATERAL (
    SELECT tn.nspname AS schema, tc.relname AS table, a.attname AS column
    FROM pg_depend dep
      JOIN pg_class tc ON tc.oid = dep.refobjid
      JOIN pg_namespace tn ON tn.oid = tc.relnamespace
      JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
    WHERE dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
      AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
    LIMIT 1) own ON true
WHERE n.nspname = ANY ($1::text[]) AND ]] .. not_extension_member("c.oid", "pg_class") .. [[
ORDER BY 1, 2]],

  views = [[
SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind,
  pg_get_viewdef(c.oid, true) AS def, coalesce(c.relacl, acldefault('r', c.relowner))::text AS acl,
  d.description AS comment, c.reloptions::text AS options
FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  ]] .. comment_join("c.oid", "pg_class") .. [[
WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('v', 'm')
  AND ]] .. not_extension_member("c.oid", "pg_class") .. [[
ORDER BY 1, 2]],

  functions = [[
SELECT n.nspname AS schema, p.proname AS name, pg_get_function_identity_arguments(p.oid) AS args,
  p.prokind AS kind, CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END AS def,
  coalesce(p.proacl, acldefault('f', p.proowner))::text AS acl, d.description AS comment
FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  ]] .. comment_join("p.oid", "pg_proc") .. [[
WHERE n.nspname = ANY ($1::text[]) AND ]] .. not_extension_member("p.oid", "pg_proc") .. [[
ORDER BY 1, 2, 3]],

  -- domains, composite types, and enums (their values come from the enums query)
  types = [[
SELECT n.nspname AS schema, t.typname AS name, t.typtype AS kind,
  CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base,
  t.typnotnull AS notnull, t.typdefault AS default_expr,
  (SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid, true), '; ' ORDER BY k.conname)
   FROM pg_constraint k WHERE k.contypid = t.oid) AS checks,
  (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
   FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attributes,
  coalesce(t.typacl, acldefault('T', t.typowner))::text AS acl, d.description AS comment
FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace
  LEFT JOIN pg_class rc ON rc.oid = t.typrelid
  ]] .. comment_join("t.oid", "pg_type") .. [[
WHERE n.nspname = ANY ($1::text[]) AND (t.typtype IN ('d', 'e') OR rc.relkind = 'c')
  AND ]] .. not_extension_member("t.oid", "pg_type") .. [[
ORDER BY 1, 2]],

  extensions = [[
SELECT e.extname AS name, n.nspname AS schema, e.extversion AS version
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
ORDER BY 1]],
}


-- The ordering of an index key by its pg_index.indoption bits (1: DESC, 2: NULLS
-- FIRST), as pg_get_indexdef writes it after the key.
local function ordering(o)
  if o & 1 ~= 0 then return o & 2 ~= 0 and " DESC" or " DESC NULLS LAST" end
  return o & 2 ~= 0 and " NULLS FIRST" or ""
end

-- The schemas to read, as a text[] literal, and db with current_schema, schemas (and,
-- when full, schema_info) set.
local function read_schemas(conn, db, opts)
  local wanted = {}
  for _, s in ipairs(opts.schemas or {}) do wanted[#wanted + 1] = s end
  local rows = opts.full and conn:query(I.queries.all_schemas)
    or conn:query(I.queries.schemas, I.array_literal(wanted))
  for _, r in ipairs(rows) do
    if r.current_schema then db.current_schema = r.current_schema end
    if r.name then
      db.schemas[r.name] = true
      if opts.full then db.schema_info[r.name] = { acl = r.acl, comment = r.comment } end
    end
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
local function read_tables(rows, db, ignore)
  local by_oid, all_by_oid = {}, {}
  for _, r in ipairs(rows.tables) do
    local key = r.schema .. "." .. r.name
    local t = { schema = r.schema, name = r.name, key = key, comment = r.comment, acl = r.acl,
                persistence = r.persistence, options = r.options,
                columns = {}, col = {}, uniques = {}, checks = {}, fks = {}, indexes = {},
                excludes = {}, triggers = {}, by_num = {} }
    all_by_oid[r.oid] = t
    if not ignore[key] then
      db.tables[key] = t
      by_oid[r.oid] = t
    end
  end
  return by_oid, all_by_oid
end

local function read_columns(rows, all_by_oid)
  for _, r in ipairs(rows.columns) do
    local t = all_by_oid[r.oid]
    if t then
      local c = { name = r.name, type = r.type, nullable = not r.notnull, comment = r.comment,
                  sequence = r.sequence, acl = r.acl, collation = r.collation }
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

-- attribute numbers ("{1,2}") -> names, from the columns read
local function column_names(nums, t)
  local out = {}
  for num in nums:gmatch("%d+") do out[#out + 1] = t.by_num[tonumber(num)] end
  return out
end

local function read_constraints(rows, by_oid, all_by_oid)
  for _, r in ipairs(rows.constraints) do
    local t = by_oid[r.oid]
    if t then
      local cols = column_names(r.columns, t)
      local extra = { def = r.def, comment = r.comment }
      if r.type == "p" then
        t.pk = { name = r.name, columns = cols, def = extra.def, comment = extra.comment }
      elseif r.type == "u" then
        t.uniques[r.name] = { name = r.name, columns = cols, def = extra.def, comment = extra.comment }
      elseif r.type == "c" then
        t.checks[r.name] = { name = r.name, expr = r.expr, def = extra.def, comment = extra.comment }
      elseif r.type == "x" then
        t.excludes[r.name] = { name = r.name, columns = cols, def = extra.def, comment = extra.comment }
      elseif r.type == "f" then
        local rt = all_by_oid[r.ref_oid]
        local ref_cols = r.ref_names and I.parse_array(r.ref_names)
          or column_names(r.ref_nums, rt or { by_num = {} })
        t.fks[r.name] = { name = r.name, columns = cols, ref_schema = r.ref_schema,
                          ref_table = r.ref_table, ref_columns = ref_cols,
                          on_delete = types.FK_CODES[r.on_delete], on_update = types.FK_CODES[r.on_update],
                          def = extra.def, comment = extra.comment }
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

local function read_indexes(rows, by_oid)
  for _, r in ipairs(rows.indexes) do
    local t = by_oid[r.oid]
    if t then
      t.indexes[r.name] = { name = r.name, columns = index_columns(t, r), unique = r.is_unique,
                            where = r.predicate, using = r.method, def = r.def, custom = r.custom,
                            comment = r.comment }
    end
  end
end

local function read_enums(rows, db)
  for _, r in ipairs(rows.enums) do
    local key = r.schema .. "." .. r.name
    local e = db.enums[key]
    if not e then
      e = { schema = r.schema, name = r.name, key = key, values = {} }
      db.enums[key] = e
    end
    e.values[#e.values + 1] = r.label
  end
end

-- What only a snapshot compares: triggers, sequences, views, functions, types (an
-- enum's privileges and comment go to db.enums), extensions. Each keyed "schema.name"
-- (a function "schema.name(args)"); sequences owned by an ignored table are left out.
local function read_full(rows, db, by_oid, ignore)
  for _, r in ipairs(rows.triggers) do
    local t = by_oid[r.oid]
    if t then t.triggers[r.name] = { name = r.name, def = r.def, enabled = r.enabled, comment = r.comment } end
  end
  local function keyed(list, key_of, keep)
    local out = {}
    for _, r in ipairs(list) do
      if not keep or keep(r) then
        r.key = key_of(r)
        out[r.key] = r
      end
    end
    return out
  end
  local function plain(r) return r.schema .. "." .. r.name end
  db.sequences = keyed(rows.sequences, plain, function(r)
    return not (r.owner_table and ignore[r.owner_schema .. "." .. r.owner_table])
  end)
  db.views = keyed(rows.views, plain)
  db.functions = keyed(rows.functions, function(r) return ("%s.%s(%s)"):format(r.schema, r.name, r.args) end)
  db.types = keyed(rows.types, plain)
  for key, ty in pairs(db.types) do
    if ty.kind == "e" then
      if db.enums[key] then db.enums[key].acl, db.enums[key].comment = ty.acl, ty.comment end
      db.types[key] = nil
    end
  end
  db.extensions = {}
  for _, r in ipairs(rows.extensions) do db.extensions[r.name] = r end
end

-- The queries after the schemas', by name: each { sql, parameters... }.
local function object_queries(arg, full)
  local q = I.queries
  local list = { tables = { q.tables, arg }, columns = { q.columns, arg },
                 constraints = { q.constraints, arg, full }, indexes = { q.indexes, arg, full },
                 enums = { q.enums, arg } }
  if full then
    for _, k in ipairs { "triggers", "sequences", "views", "functions", "types" } do list[k] = { q[k], arg } end
    list.extensions = { q.extensions }
  end
  return list
end

-- The rows of each query of list (name -> { sql, parameters... }), by name: in one round
-- trip through batch(conn, queries) when given, else one query after another.
local function fetch(conn, list, batch)
  local names, rows = {}, {}
  for k in pairs(list) do names[#names + 1] = k end
  table.sort(names)
  if batch then
    local queries = {}
    for i, k in ipairs(names) do queries[i] = list[k] end
    for i, r in ipairs(batch(conn, queries)) do rows[names[i]] = r end
  else
    for _, k in ipairs(names) do rows[k] = conn:query(table.unpack(list[k])) end
  end
  return rows
end

-- opts.schemas: the schemas the models name (the current schema is always added);
-- opts.full: every user schema, and all a snapshot compares (see the top);
-- opts.ignore: { [schema .. "." .. table] = true } (the version and log tables),
-- where a nil schema part means the current schema; opts.batch(conn, queries) -> the
-- rows of each: the queries after the schemas' in one round trip.
function I.read(conn, opts)
  local db = { schemas = {}, tables = {}, enums = {}, schema_info = {} }
  local arg = read_schemas(conn, db, opts)
  local ignore = {}
  for k in pairs(opts.ignore or {}) do
    ignore[k:sub(1, 1) == "." and (db.current_schema .. k) or k] = true
  end
  local full = opts.full == true
  local rows = fetch(conn, object_queries(arg, full), opts.batch)
  local by_oid, all_by_oid = read_tables(rows, db, ignore)
  read_columns(rows, all_by_oid)
  read_constraints(rows, by_oid, all_by_oid)
  read_indexes(rows, by_oid)
  read_enums(rows, db)
  if full then read_full(rows, db, by_oid, ignore) end
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

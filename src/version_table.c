/*
 * version_table.c: the table of applied heads (one row per head, like
 * alembic_version). Statements go through the op context, so an offline
 * --sql script carries exactly the version-table changes a live run makes.
 */
#include <stdio.h>
#include <string.h>

#include "luamig.h"

/* Pushes schema.table quoted (the version table, or its audit log beside it). */
static const char *push_qualified(lua_State *L, const luamig_vtable *vt, const char *table) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_quote_qualified(L, &b, vt->schema, table);
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Whether the version table and its log exist, asked once per run in one
 * query (a plain CREATE TABLE IF NOT EXISTS would make the server print a
 * NOTICE), in the lock's round trip when there is one; the answer is kept in
 * vt and updated when luamig creates them. */
void luamig_vtable_probe_add(lua_State *L, const luamig_vtable *vt, luamig_stmt *st, int *n) {
  const char **names = lua_newuserdatauv(L, 2 * sizeof *names, 2);
  names[0] = push_qualified(L, vt, vt->name);
  lua_setiuservalue(L, -2, 1);       /* the names live as long as the array */
  names[1] = push_qualified(L, vt, vt->log_name);
  lua_setiuservalue(L, -2, 2);
  st[(*n)++] = (luamig_stmt){ "SELECT to_regclass($1) IS NOT NULL AS versions, "
                              "to_regclass($2) IS NOT NULL AS log", 2, names, false };
}

void luamig_vtable_probed(lua_State *L, luamig_vtable *vt, int idx) {
  lua_geti(L, idx, 1);
  lua_getfield(L, -1, "versions");
  lua_getfield(L, -2, "log");
  vt->present = lua_toboolean(L, -2);
  vt->log_present = lua_toboolean(L, -1);
  vt->probed = true;
  lua_pop(L, 3);
}

static void probe(lua_State *L, luamig_conn *c, luamig_vtable *vt) {
  if (vt->probed) return;
  luamig_stmt st[1];
  int n = 0;
  luamig_vtable_probe_add(L, vt, st, &n);
  luamig_batch(L, c, 1, st, NULL, true, NULL);
  luamig_vtable_probed(L, vt, -1);
  lua_pop(L, 2);
}

static int exec_protected(lua_State *L) {
  luamig_exec(L, lua_touserdata(L, 1), lua_tostring(L, 2), 0, NULL);
  return 0;
}

/* CREATE TABLE IF NOT EXISTS of the statement at the top (popped). It is not
 * safe against a concurrent CREATE of the same name (a run of another project
 * sharing the table): that fails with 23505, 42P07 or 42710, and means the
 * table is there, which is all we want. */
static void create_table(lua_State *L, luamig_opctx *ctx) {
  if (ctx->conn == NULL) {
    luamig_emit(L, ctx, lua_tostring(L, -1), 0, NULL);
    lua_pop(L, 1);
    return;
  }
  lua_pushcfunction(L, exec_protected);
  lua_pushlightuserdata(L, ctx->conn);
  lua_rotate(L, -3, -1);             /* the statement last */
  if (lua_pcall(L, 2, 0, 0) == LUA_OK) return;
  const char *msg = lua_tostring(L, -1);
  static const char *const raced[] = { "23505:", "42P07:", "42710:" };
  bool ok = false;
  for (int i = 0; i < 3 && msg; i++) ok = ok || strncmp(msg, raced[i], 6) == 0;
  if (!ok) lua_error(L);
  lua_pop(L, 1);
}

void luamig_vtable_ensure(lua_State *L, luamig_opctx *ctx, luamig_vtable *vt) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "CREATE TABLE IF NOT EXISTS ");
  luamig_quote_qualified(L, &b, vt->schema, vt->name);
  luaL_addstring(&b, " (version_num varchar(32) NOT NULL, CONSTRAINT ");
  lua_pushfstring(L, "%s_pkc", vt->name);
  if (lua_rawlen(L, -1) > LUAMIG_MAX_IDENT) {  /* keep the name PostgreSQL would use */
    lua_pop(L, 1);
    lua_pushfstring(L, "%.*s_pkc", LUAMIG_MAX_IDENT - 4, vt->name);
  }
  const char *pk = lua_tostring(L, -1);
  luaL_Buffer q;                     /* quote the pk name outside b's stack slot */
  luaL_buffinit(L, &q);
  luamig_quote_ident(L, &q, pk);
  luaL_pushresult(&q);
  lua_remove(L, -2);
  luaL_addvalue(&b);
  luaL_addstring(&b, " PRIMARY KEY (version_num))");
  luaL_pushresult(&b);
  create_table(L, ctx);
  vt->present = true;
}

static int query_column(lua_State *L) {
  luamig_query_column(L, lua_touserdata(L, 1), lua_tostring(L, 2), 0, NULL);
  return 1;
}

/* The rows read without asking first whether the table exists: one round
 * trip where there is no lock's to ride in; "does not exist" (42P01) is -1. */
static int read_directly(lua_State *L, luamig_conn *c, luamig_vtable *vt, const char *sql) {
  lua_pushcfunction(L, query_column);
  lua_pushlightuserdata(L, c);
  lua_pushstring(L, sql);
  if (lua_pcall(L, 2, 1, 0) == LUA_OK) {
    vt->present = true;
    return (int)lua_rawlen(L, -1);
  }
  if (strncmp(luaL_optstring(L, -1, ""), "42P01:", 6) != 0) lua_error(L);
  lua_pop(L, 1);
  vt->present = false;
  lua_newtable(L);
  return -1;
}

/* The digest of the log as luamig_push_findings checks it, and the rows,
 * pushed as one array of strings. */
static int read_with_digest(lua_State *L, luamig_conn *c, luamig_vtable *vt, const char *sql) {
  const char *log = push_qualified(L, vt, vt->log_name);
  const char *digest = lua_pushfstring(L, "SELECT encode(sha256(convert_to(coalesce(string_agg("
    "revision || ' ' || coalesce(checksum, '-'), E'\\n' ORDER BY revision COLLATE \"C\") "
    "FILTER (WHERE direction IN ('upgrade', 'stamp', 'downgrade-started')), ''), 'UTF8')), "
    "'hex') AS applied, count(*) FILTER (WHERE direction LIKE '%%-started') AS started "
    "FROM (SELECT DISTINCT ON (revision) revision, direction, checksum FROM %s "
    "ORDER BY revision, id DESC) l", log);
  luamig_stmt st[2] = { { sql, 0, NULL, false }, { digest, 0, NULL, false } };
  luamig_batch(L, c, 2, st, NULL, true, NULL);
  lua_geti(L, -1, 1);
  lua_getfield(L, -1, "applied");
  lua_getfield(L, -2, "started");
  snprintf(vt->log_digest, sizeof vt->log_digest, "%s", luaL_optstring(L, -2, ""));
  vt->log_started = (long)lua_tointeger(L, -1);
  vt->digested = true;
  lua_pop(L, 4);
  int n = (int)lua_rawlen(L, -1);
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, -2, i);
    lua_getfield(L, -1, "version_num");
    lua_rawseti(L, -3, i);
    lua_pop(L, 1);
  }
  lua_replace(L, -4);                /* over the log's name */
  lua_pop(L, 2);
  return n;
}

int luamig_vtable_read(lua_State *L, luamig_conn *c, luamig_vtable *vt) {
  const char *name = push_qualified(L, vt, vt->name);
  const char *sql = lua_pushfstring(L, "SELECT version_num FROM %s ORDER BY version_num", name);
  int n;
  if (!vt->probed && !vt->want_digest) {
    n = read_directly(L, c, vt, sql);
  } else {
    probe(L, c, vt);
    if (!vt->present) {
      lua_newtable(L);
      n = -1;
    } else if (vt->want_digest && vt->log_present) {
      n = read_with_digest(L, c, vt, sql);
    } else {
      n = luamig_query_column(L, c, sql, 0, NULL);
    }
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
  return n;
}

/* Appends to st (from *n on) the statements of move m; their SQL is pushed. */
void luamig_vtable_move_add(lua_State *L, const luamig_vtable *vt, luamig_move *m,
                            luamig_stmt *st, int *n) {
  const char *name = push_qualified(L, vt, vt->name);
  if (m->nfrom == 1 && m->nto == 1) {   /* one head replaces another: an UPDATE, as Alembic */
    m->update[0] = m->to[0];
    m->update[1] = m->from[0];
    st[(*n)++] = (luamig_stmt){ lua_pushfstring(L, "UPDATE %s SET version_num = $1 WHERE "
                                                "version_num = $2", name), 2, m->update, true };
    return;
  }
  const char *del = lua_pushfstring(L, "DELETE FROM %s WHERE version_num = $1", name);
  const char *ins = lua_pushfstring(L, "INSERT INTO %s (version_num) VALUES ($1)", name);
  for (int i = 0; i < m->nfrom; i++) st[(*n)++] = (luamig_stmt){ del, 1, &m->from[i], true };
  for (int i = 0; i < m->nto; i++) st[(*n)++] = (luamig_stmt){ ins, 1, &m->to[i], true };
}

void luamig_vtable_move_check(lua_State *L, const luamig_move *m, const long *counts) {
  bool one = m->nfrom == 1 && m->nto == 1;
  int n = one ? 1 : m->nfrom + m->nto;
  for (int i = 0; i < n; i++)
    if (counts[i] != 1)
      luaL_error(L, "version table: %s of '%s' changed %d rows, expected 1 (was the table "
                 "changed by hand?)", one ? "update" : i < m->nfrom ? "delete" : "insert",
                 i < m->nfrom ? m->from[i] : m->to[i - m->nfrom], (int)counts[i]);
}

void luamig_log_add(lua_State *L, const luamig_vtable *vt, luamig_logrow *row,
                    luamig_stmt *st, int *n) {
  snprintf(row->dur, sizeof row->dur, "%.3f", row->ms);
  row->params[0] = row->rev;
  row->params[1] = row->direction ? row->direction
                 : row->started ? (row->up ? "upgrade-started" : "downgrade-started")
                 : (row->up ? "upgrade" : "downgrade");
  row->params[2] = *row->checksum ? row->checksum : NULL;
  row->params[3] = row->started || row->ms < 0 ? NULL : row->dur;
  row->params[4] = LUAMIG_VERSION;
  const char *name = push_qualified(L, vt, vt->log_name);
  if (row->expect == NULL) {
    st[(*n)++] = (luamig_stmt){ lua_pushfstring(L, "INSERT INTO %s (revision, direction, "
                                                "checksum, duration_ms, luamig_version) VALUES "
                                                "($1, $2, $3, $4, $5)", name), 5, row->params,
                                true };
    lua_remove(L, -2);
    return;
  }
  snprintf(row->key, sizeof row->key, "%lld", vt->lock_key);
  row->params[5] = row->key;
  row->params[6] = row->expect;
  /* the guard rides in the row (no statement more per revision): a failing
   * cast is the one way plain SQL can refuse, and the reason is the text it
   * could not read as an integer. Whether the session holds the lock: each
   * of its two modes released and taken back in turn (CASE keeps the order),
   * the other mode keeping every other run out meanwhile; a few lookups in
   * the lock table, where reading pg_locks copied all of it (0.15 ms). */
  const char *vtname = push_qualified(L, vt, vt->name);
  st[(*n)++] = (luamig_stmt){ lua_pushfstring(L, "INSERT INTO %s (revision, direction, checksum, "
    "duration_ms, luamig_version) SELECT $1, $2, $3, $4, $5 WHERE (CASE "
    "WHEN NOT pg_catalog.pg_advisory_unlock_shared($6::bigint) THEN 'luamig:lock' "
    "WHEN NOT pg_catalog.pg_try_advisory_lock_shared($6::bigint) THEN 'luamig:lock' "
    "WHEN NOT pg_catalog.pg_advisory_unlock($6::bigint) THEN 'luamig:lock' "
    "WHEN NOT pg_catalog.pg_try_advisory_lock($6::bigint) THEN 'luamig:lock' "
    "WHEN (SELECT coalesce(string_agg(version_num, E'\\n' ORDER BY version_num COLLATE \"C\"), '') "
    "FROM %s) <> $7 THEN 'luamig:rows' END)::int IS NULL", name, vtname), 7, row->params, true };
  lua_remove(L, -2);
  lua_remove(L, -2);
}

void luamig_vtable_move(lua_State *L, luamig_opctx *ctx, const luamig_vtable *vt,
                        luamig_move *m, luamig_logrow *log) {
  int top = lua_gettop(L), n = 0;
  luamig_stmt *st = lua_newuserdatauv(L, (size_t)(m->nfrom + m->nto + 1) * sizeof *st, 0);
  luamig_vtable_move_add(L, vt, m, st, &n);
  if (log) luamig_log_add(L, vt, log, st, &n);
  long *counts = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *counts, 0);
  luamig_emit_batch(L, ctx, n, st, counts);
  if (ctx->conn != NULL) luamig_vtable_move_check(L, m, counts);
  lua_settop(L, top);
}

/* ---- the guard after each revision ---- */

/* The server's words in msg, without "; SQL: ..." (whose text has the reasons too). */
static size_t server_part(const char *msg) {
  const char *sql = strstr(msg, "; SQL: ");
  return sql ? (size_t)(sql - msg) : strlen(msg);
}

static bool says(const char *msg, const char *reason) {
  const char *p = strstr(msg, reason);
  return p != NULL && (size_t)(p - msg) < server_part(msg);
}

bool luamig_guard_failed(const char *msg, bool at_row) {
  return at_row || says(msg, "luamig:lock") || says(msg, "luamig:rows");
}

const char *luamig_guard_explain(lua_State *L, const luamig_vtable *vt, const char *expect,
                                 const char *msg, bool committed) {
  size_t len = server_part(msg);
  const char *outcome = committed
    ? "its statements have committed: check the database, then 'luamig stamp' the revision it is at"
    : "it was rolled back: nothing of it was applied";
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (*expect == '\0') {
    luaL_addstring(&b, "no row");
  } else {
    luaL_addchar(&b, '\'');
    for (const char *p = expect; *p; p++)
      if (*p == '\n') luaL_addstring(&b, "', '");
      else luaL_addchar(&b, *p);
    luaL_addchar(&b, '\'');
  }
  luaL_pushresult(&b);
  const char *rows = lua_tostring(L, -1), *found = NULL;
  lua_pushlstring(L, msg, len);
  const char *server = lua_tostring(L, -1);
  if (says(msg, "luamig:lock"))
    found = lua_pushfstring(L, "it released luamig's migration lock (pg_advisory_unlock), so "
                            "another run could start; %s", outcome);
  else if (says(msg, "luamig:rows"))
    found = lua_pushfstring(L, "it changed the version table %s behind luamig (it must hold %s "
                            "now; a revision must not write the version table); %s", vt->name,
                            rows, outcome);
  else
    found = lua_pushfstring(L, "the version table %s or the audit log %s is gone or unreadable "
                            "after it (%s); %s", vt->name, vt->log_name, server, outcome);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return found;
}

/* ---- the audit log ---- */

void luamig_log_ensure(lua_State *L, luamig_opctx *ctx, luamig_vtable *vt) {
  if (ctx->conn != NULL) probe(L, ctx->conn, vt);
  if (ctx->conn != NULL && vt->log_present) return;
  const char *name = push_qualified(L, vt, vt->log_name);
  lua_pushfstring(L, "CREATE TABLE IF NOT EXISTS %s (id bigserial PRIMARY KEY, "
                  "revision varchar(32) NOT NULL, direction text NOT NULL, checksum text, "
                  "applied_at timestamptz NOT NULL DEFAULT now(), duration_ms double precision, "
                  "db_user text NOT NULL DEFAULT current_user, luamig_version text)", name);
  create_table(L, ctx);
  lua_pop(L, 1);
  vt->log_present = true;
}

const PGresult *luamig_log_rows(lua_State *L, luamig_conn *c, luamig_vtable *vt) {
  probe(L, c, vt);
  if (!vt->log_present) { lua_pushnil(L); return NULL; }
  const char *name = push_qualified(L, vt, vt->log_name);
  const char *sql = lua_pushfstring(L, "SELECT revision, direction, checksum FROM %s "
                                    "ORDER BY id", name);
  const PGresult *res = luamig_query_result(L, c, sql, 0, NULL);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return res;
}

/*
 * version_table.c: the table of applied heads (one row per head, like
 * alembic_version). Statements go through the op context, so an offline
 * --sql script carries exactly the version-table changes a live run makes.
 */
#include <stdio.h>
#include <string.h>

#include "luamig.h"

/* Whether the version table and its log exist, asked once per run in one
 * query (a plain CREATE TABLE IF NOT EXISTS would make the server print a
 * NOTICE), in the lock's round trip when there is one; the answer is kept in
 * vt and updated when luamig creates them. */
void luamig_vtable_probe_add(lua_State *L, const luamig_vtable *vt, luamig_stmt *st, int *n) {
  const char **names = lua_newuserdatauv(L, 2 * sizeof *names, 2);
  names[0] = luamig_sql_vt_qualified(L, vt, vt->name);
  lua_setiuservalue(L, -2, 1);       /* the names live as long as the array */
  names[1] = luamig_sql_vt_qualified(L, vt, vt->log_name);
  lua_setiuservalue(L, -2, 2);
  st[(*n)++] = (luamig_stmt){ luamig_sql_vt_probe, 2, names, false };
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
  luamig_sqlerror e;
  if (!luamig_sqlerror_of(L, lua_tostring(L, -1), &e)) lua_error(L);
  static const char *const raced[] = { "23505", "42P07", "42710" };
  bool ok = false;
  for (int i = 0; i < 3; i++) ok = ok || strcmp(e.sqlstate, raced[i]) == 0;
  if (!ok) lua_error(L);
  lua_pop(L, 1);
}

void luamig_vtable_ensure(lua_State *L, luamig_opctx *ctx, luamig_vtable *vt) {
  luamig_sql_vt_create(L, vt);
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
  luamig_sqlerror e;
  if (!luamig_sqlerror_of(L, lua_tostring(L, -1), &e) || strcmp(e.sqlstate, "42P01") != 0)
    lua_error(L);
  lua_pop(L, 1);
  vt->present = false;
  lua_newtable(L);
  return -1;
}

/* The array of rows at the top ({ version_num = id } each) replaced by the
 * array of the ids; returns their count. */
static int rows_to_ids(lua_State *L) {
  int n = (int)lua_rawlen(L, -1);
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, -2, i);
    lua_getfield(L, -1, "version_num");
    lua_rawseti(L, -3, i);
    lua_pop(L, 1);
  }
  lua_remove(L, -2);
  return n;
}

/* The log's fingerprint in the row at the top (popped) into vt, as its SHA-256. */
static void set_print(lua_State *L, luamig_vtable *vt) {
  size_t len;
  lua_getfield(L, -1, "print");
  const char *print = lua_tolstring(L, -1, &len);
  vt->printed = print != NULL;
  if (print != NULL) luamig_sha256_hex(print, len, vt->log_print);
  lua_pop(L, 2);
}

/* The digest's row at the top (popped) into vt. */
static void set_digest(lua_State *L, luamig_vtable *vt) {
  lua_getfield(L, -1, "applied");
  lua_getfield(L, -2, "started");
  snprintf(vt->log_digest, sizeof vt->log_digest, "%s", luaL_optstring(L, -2, ""));
  vt->log_started = (long)lua_tointeger(L, -1);
  vt->digested = true;
  lua_pop(L, 2);
  set_print(L, vt);
}

/* Pushes the parameter of the log's fingerprint and digest (its qualified name). */
static const char **push_log_param(lua_State *L, const luamig_vtable *vt) {
  const char **p = lua_newuserdatauv(L, sizeof *p, 1);
  *p = luamig_sql_vt_qualified(L, vt, vt->log_name);
  lua_setiuservalue(L, -2, 1);       /* the name lives as long as p */
  return p;
}

void luamig_vtable_ahead_add(lua_State *L, const luamig_vtable *vt, luamig_stmt *st, int *n) {
  lua_createtable(L, 3, 0);          /* what the statements point into */
  const char **log = push_log_param(L, vt);
  lua_rawseti(L, -2, 1);
  st[(*n)++] = (luamig_stmt){ luamig_sql_vt_change(L, vt, LUAMIG_VT_SELECT), 0, NULL, false };
  lua_rawseti(L, -2, 2);
  st[(*n)++] = (luamig_stmt){ luamig_sql_log_print(L, vt), 1, log, false };
  lua_rawseti(L, -2, 3);
}

bool luamig_vtable_ahead(lua_State *L, luamig_vtable *vt, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) return false;
  lua_geti(L, idx, 2);
  lua_geti(L, -1, 1);
  set_print(L, vt);
  lua_pop(L, 1);
  lua_geti(L, idx, 1);
  rows_to_ids(L);
  lua_replace(L, idx);
  vt->present = vt->log_present = true;
  return vt->printed;
}

void luamig_vtable_digest(lua_State *L, luamig_conn *c, luamig_vtable *vt) {
  const char **log = push_log_param(L, vt);
  luamig_query(L, c, luamig_sql_log_digest(L, vt), 1, log);
  lua_geti(L, -1, 1);
  set_digest(L, vt);
  lua_pop(L, 3);
}

/* The rows with the log's digest and fingerprint (luamig_push_findings checks
 * them), in one round trip; pushes the array of ids. */
static int read_with_digest(lua_State *L, luamig_conn *c, luamig_vtable *vt, const char *sql) {
  const char **log = push_log_param(L, vt);
  const char *digest = luamig_sql_log_digest(L, vt);
  luamig_stmt st[2] = { { sql, 0, NULL, false }, { digest, 1, log, false } };
  luamig_batch(L, c, 2, st, NULL, true, NULL);
  lua_geti(L, -1, 1);
  set_digest(L, vt);
  lua_pop(L, 1);                     /* the digest's rows */
  int n = rows_to_ids(L);
  lua_replace(L, -3);                /* over the parameter */
  lua_pop(L, 1);                     /* the digest's text */
  return n;
}

int luamig_vtable_read(lua_State *L, luamig_conn *c, luamig_vtable *vt) {
  const char *sql = luamig_sql_vt_change(L, vt, LUAMIG_VT_SELECT);
  int n;
  if (vt->ahead != 0) {              /* read with the lock: used once */
    lua_pushvalue(L, vt->ahead);
    vt->ahead = 0;
    n = (int)lua_rawlen(L, -1);
  } else if (!vt->probed && !vt->want_digest) {
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
  lua_remove(L, -2);
  return n;
}

/* Appends to st (from *n on) the statements of move m; their SQL is pushed. */
void luamig_vtable_move_add(lua_State *L, const luamig_vtable *vt, luamig_move *m,
                            luamig_stmt *st, int *n) {
  if (m->nfrom == 1 && m->nto == 1) {   /* one head replaces another: an UPDATE, as Alembic */
    m->update[0] = m->to[0];
    m->update[1] = m->from[0];
    st[(*n)++] = (luamig_stmt){ luamig_sql_vt_change(L, vt, LUAMIG_VT_UPDATE), 2, m->update,
                                true };
    return;
  }
  const char *del = luamig_sql_vt_change(L, vt, LUAMIG_VT_DELETE);
  const char *ins = luamig_sql_vt_change(L, vt, LUAMIG_VT_INSERT);
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
  if (row->expect != NULL) {
    snprintf(row->key, sizeof row->key, "%lld", vt->lock_key);
    row->params[5] = row->key;
    row->params[6] = row->expect;
  }
  bool guarded = row->expect != NULL;
  st[(*n)++] = (luamig_stmt){ luamig_sql_log_insert(L, vt, guarded), guarded ? 7 : 5, row->params,
                              true };
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

/* The server's words in msg, without "; SQL: ...". */
static size_t server_part(const char *msg) {
  const char *sql = strstr(msg, "; SQL: ");
  return sql ? (size_t)(sql - msg) : strlen(msg);
}

/* The guard's reason in the server's refusal e (NULL: not the server's): its
 * cast fails with 22P02, the text it could not read in the primary message. */
static const char *guard_reason(const luamig_sqlerror *e) {
  if (e == NULL || strcmp(e->sqlstate, "22P02") != 0) return NULL;
  if (strstr(e->primary, LUAMIG_GUARD_LOCK) != NULL) return LUAMIG_GUARD_LOCK;
  if (strstr(e->primary, LUAMIG_GUARD_ROWS) != NULL) return LUAMIG_GUARD_ROWS;
  return NULL;
}

bool luamig_guard_failed(const luamig_sqlerror *e, bool at_row) {
  return at_row || guard_reason(e) != NULL;
}

const char *luamig_guard_explain(lua_State *L, const luamig_vtable *vt, const char *expect,
                                 const char *msg, const luamig_sqlerror *e, bool committed) {
  size_t len = server_part(msg);
  const char *reason = guard_reason(e);
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
  if (reason != NULL && strcmp(reason, LUAMIG_GUARD_LOCK) == 0)
    found = lua_pushfstring(L, "it released luamig's migration lock (pg_advisory_unlock), so "
                            "another run could start; %s", outcome);
  else if (reason != NULL)
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
  luamig_sql_log_create(L, vt);
  create_table(L, ctx);
  vt->log_present = true;
}

const PGresult *luamig_log_rows(lua_State *L, luamig_conn *c, luamig_vtable *vt) {
  probe(L, c, vt);
  if (!vt->log_present) { lua_pushnil(L); return NULL; }
  const PGresult *res = luamig_query_result(L, c, luamig_sql_log_select(L, vt), 0, NULL);
  lua_remove(L, -2);
  return res;
}

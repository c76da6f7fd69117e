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

/* Whether the quoted, qualified table exists (a plain CREATE TABLE IF NOT
 * EXISTS would make the server print a NOTICE). */
static bool table_exists(lua_State *L, luamig_conn *c, const char *qualified) {
  luamig_query(L, c, "SELECT to_regclass($1) IS NOT NULL AS present", 1, &qualified);
  lua_geti(L, -1, 1);
  lua_getfield(L, -1, "present");
  bool present = lua_toboolean(L, -1);
  lua_pop(L, 3);
  return present;
}

void luamig_vtable_ensure(lua_State *L, luamig_opctx *ctx, const luamig_vtable *vt) {
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
  luamig_emit(L, ctx, lua_tostring(L, -1), 0, NULL);
  lua_pop(L, 1);
}

int luamig_vtable_read(lua_State *L, luamig_conn *c, const luamig_vtable *vt) {
  const char *name = push_qualified(L, vt, vt->name);
  if (!table_exists(L, c, name)) {
    lua_pop(L, 1);
    lua_newtable(L);
    return -1;
  }
  lua_pushfstring(L, "SELECT version_num FROM %s ORDER BY version_num", name);
  int n = luamig_query(L, c, lua_tostring(L, -1), 0, NULL);
  lua_newtable(L);                   /* flatten rows to an array of ids */
  for (int i = 1; i <= n; i++) {
    lua_geti(L, -2, i);
    lua_getfield(L, -1, "version_num");
    lua_rawseti(L, -3, i);
    lua_pop(L, 1);
  }
  lua_replace(L, -4);
  lua_pop(L, 2);
  return n;
}

static void one_row(lua_State *L, luamig_opctx *ctx, long n, const char *what,
                    const char *id) {
  if (ctx->conn != NULL && n != 1)
    luaL_error(L, "version table: %s of '%s' changed %d rows, expected 1 "
               "(was the table changed by hand?)", what, id, (int)n);
}

void luamig_vtable_move(lua_State *L, luamig_opctx *ctx, const luamig_vtable *vt,
                        const char *const *from, int nfrom,
                        const char *const *to, int nto) {
  const char *name = push_qualified(L, vt, vt->name);
  if (nfrom == 1 && nto == 1) {
    lua_pushfstring(L, "UPDATE %s SET version_num = $1 WHERE version_num = $2", name);
    const char *p[2] = { to[0], from[0] };
    one_row(L, ctx, luamig_emit(L, ctx, lua_tostring(L, -1), 2, p), "update", from[0]);
    lua_pop(L, 2);
    return;
  }
  lua_pushfstring(L, "DELETE FROM %s WHERE version_num = $1", name);
  for (int i = 0; i < nfrom; i++)
    one_row(L, ctx, luamig_emit(L, ctx, lua_tostring(L, -1), 1, &from[i]), "delete", from[i]);
  lua_pushfstring(L, "INSERT INTO %s (version_num) VALUES ($1)", name);
  for (int i = 0; i < nto; i++)
    one_row(L, ctx, luamig_emit(L, ctx, lua_tostring(L, -1), 1, &to[i]), "insert", to[i]);
  lua_pop(L, 3);
}

/* ---- the audit log ---- */

void luamig_log_ensure(lua_State *L, luamig_opctx *ctx, const luamig_vtable *vt) {
  const char *name = push_qualified(L, vt, vt->log_name);
  if (ctx->conn != NULL && table_exists(L, ctx->conn, name)) {
    lua_pop(L, 1);
    return;
  }
  lua_pushfstring(L, "CREATE TABLE IF NOT EXISTS %s (id bigserial PRIMARY KEY, "
                  "revision varchar(32) NOT NULL, direction text NOT NULL, checksum text, "
                  "applied_at timestamptz NOT NULL DEFAULT now(), duration_ms double precision, "
                  "db_user text NOT NULL DEFAULT current_user, luamig_version text)", name);
  luamig_emit(L, ctx, lua_tostring(L, -1), 0, NULL);
  lua_pop(L, 2);
}

void luamig_log_record(lua_State *L, luamig_opctx *ctx, const luamig_vtable *vt,
                       const char *rev, bool up, const char *checksum, double ms) {
  push_qualified(L, vt, vt->log_name);
  lua_pushfstring(L, "INSERT INTO %s (revision, direction, checksum, duration_ms, "
                  "luamig_version) VALUES ($1, $2, $3, $4, $5)", lua_tostring(L, -1));
  char dur[32];
  snprintf(dur, sizeof dur, "%.3f", ms);
  const char *p[5] = { rev, up ? "upgrade" : "downgrade", checksum, dur, LUAMIG_VERSION };
  luamig_emit(L, ctx, lua_tostring(L, -1), 5, p);
  lua_pop(L, 2);
}

void luamig_log_latest(lua_State *L, luamig_conn *c, const luamig_vtable *vt) {
  const char *name = push_qualified(L, vt, vt->log_name);
  bool present = table_exists(L, c, name);
  lua_newtable(L);
  if (!present) { lua_remove(L, -2); return; }
  lua_pushfstring(L, "SELECT DISTINCT ON (revision) revision, direction, checksum FROM %s "
                  "ORDER BY revision, id DESC", name);
  int n = luamig_query(L, c, lua_tostring(L, -1), 0, NULL);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, -1, i);
    lua_getfield(L, -1, "revision");
    lua_pushvalue(L, -2);
    lua_settable(L, -6);             /* result[revision] = row */
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  lua_remove(L, -2);
}

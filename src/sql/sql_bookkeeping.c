/*
 * sql_bookkeeping.c: the text of luamig's own statements, beside the DDL
 * builders and as pure (no connection): the version table and its audit log,
 * the guard in a revision's audit row, the migration lock, a run's session
 * settings, and the questions asked when a lock is not had. Values go as
 * parameters ($n, numbered as each function says); names are quoted by quote.c.
 */
#include <string.h>

#include "luamig.h"

const char *luamig_sql_vt_qualified(lua_State *L, const luamig_vtable *vt, const char *table) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_quote_qualified(L, &b, vt->schema, table);
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* ---- the version table ---- */

const char luamig_sql_vt_probe[] =
  "SELECT to_regclass($1) IS NOT NULL AS versions, to_regclass($2) IS NOT NULL AS log";

/* Pushes the quoted name of its primary key, Alembic's <table>_pkc: the
 * table's name cut (at a character boundary) so that it fits in 63 bytes. */
static void push_pk_name(lua_State *L, const luamig_vtable *vt) {
  size_t keep = strlen(vt->name);
  if (keep > LUAMIG_MAX_IDENT - 4) {
    keep = LUAMIG_MAX_IDENT - 4;
    while (keep > 0 && ((unsigned char)vt->name[keep] & 0xC0) == 0x80) keep--;
  }
  lua_pushlstring(L, vt->name, keep);
  lua_pushliteral(L, "_pkc");
  lua_concat(L, 2);
  const char *pk = lua_tostring(L, -1);
  luaL_Buffer q;
  luaL_buffinit(L, &q);
  luamig_quote_ident(L, &q, pk);
  luaL_pushresult(&q);
  lua_remove(L, -2);
}

const char *luamig_sql_vt_create(lua_State *L, const luamig_vtable *vt) {
  const char *name = luamig_sql_vt_qualified(L, vt, vt->name);
  push_pk_name(L, vt);
  lua_pushfstring(L, "CREATE TABLE IF NOT EXISTS %s (version_num varchar(32) NOT NULL, "
                  "CONSTRAINT %s PRIMARY KEY (version_num))", name, lua_tostring(L, -1));
  lua_replace(L, -3);
  lua_pop(L, 1);
  return lua_tostring(L, -1);
}

const char *luamig_sql_vt_change(lua_State *L, const luamig_vtable *vt, luamig_vt_stmt stmt) {
  static const char *const forms[] = {
    [LUAMIG_VT_SELECT] = "SELECT version_num FROM %s ORDER BY version_num",
    [LUAMIG_VT_UPDATE] = "UPDATE %s SET version_num = $1 WHERE version_num = $2",
    [LUAMIG_VT_DELETE] = "DELETE FROM %s WHERE version_num = $1",
    [LUAMIG_VT_INSERT] = "INSERT INTO %s (version_num) VALUES ($1)",
    [LUAMIG_VT_PURGE] = "DELETE FROM %s",
  };
  lua_pushfstring(L, forms[stmt], luamig_sql_vt_qualified(L, vt, vt->name));
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

/* ---- the audit log ---- */

const char *luamig_sql_log_create(lua_State *L, const luamig_vtable *vt) {
  lua_pushfstring(L, "CREATE TABLE IF NOT EXISTS %s (id bigserial PRIMARY KEY, "
                  "revision varchar(32) NOT NULL, direction text NOT NULL, checksum text, "
                  "applied_at timestamptz NOT NULL DEFAULT now(), duration_ms double precision, "
                  "db_user text NOT NULL DEFAULT current_user, luamig_version text)",
                  luamig_sql_vt_qualified(L, vt, vt->log_name));
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

const char *luamig_sql_log_select(lua_State *L, const luamig_vtable *vt) {
  lua_pushfstring(L, "SELECT revision, direction, checksum FROM %s ORDER BY id",
                  luamig_sql_vt_qualified(L, vt, vt->log_name));
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

/* The guard rides in the row (no statement more per revision): a failing
 * cast is the one way plain SQL can refuse, and the reason is the text it
 * could not read as an integer. Whether the session holds the lock ($6): each
 * of its two modes released and taken back in turn (CASE keeps the order),
 * the other mode keeping every other run out meanwhile; a few lookups in the
 * lock table, where reading pg_locks copied all of it (0.15 ms). $7: the rows
 * the version table must hold. */
const char *luamig_sql_log_insert(lua_State *L, const luamig_vtable *vt, bool guarded) {
  const char *log = luamig_sql_vt_qualified(L, vt, vt->log_name);
  if (!guarded) {
    lua_pushfstring(L, "INSERT INTO %s (revision, direction, checksum, duration_ms, "
                    "luamig_version) VALUES ($1, $2, $3, $4, $5)", log);
    lua_remove(L, -2);
    return lua_tostring(L, -1);
  }
  const char *versions = luamig_sql_vt_qualified(L, vt, vt->name);
  lua_pushfstring(L, "INSERT INTO %s (revision, direction, checksum, duration_ms, luamig_version) "
    "SELECT $1, $2, $3, $4, $5 WHERE (CASE "
    "WHEN NOT pg_catalog.pg_advisory_unlock_shared($6::bigint) THEN '" LUAMIG_GUARD_LOCK "' "
    "WHEN NOT pg_catalog.pg_try_advisory_lock_shared($6::bigint) THEN '" LUAMIG_GUARD_LOCK "' "
    "WHEN NOT pg_catalog.pg_advisory_unlock($6::bigint) THEN '" LUAMIG_GUARD_LOCK "' "
    "WHEN NOT pg_catalog.pg_try_advisory_lock($6::bigint) THEN '" LUAMIG_GUARD_LOCK "' "
    "WHEN (SELECT coalesce(string_agg(version_num, E'\\n' ORDER BY version_num COLLATE \"C\"), '') "
    "FROM %s) <> $7 THEN '" LUAMIG_GUARD_ROWS "' END)::int IS NULL", log, versions);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return lua_tostring(L, -1);
}

/* The log's fingerprint, cheap where its digest is not (a third of the
 * server's time): which log (the database, the log's oid: $1 is its
 * qualified name), then the count, the last id and the sum of a 64-bit hash
 * of each row's id, revision, direction and checksum, which any change to a
 * row moves. A digest read with it (logseen.c) holds for as long as it is the
 * same: the digest is a function of those rows. (The cluster's system
 * identifier would cost a fifth more, pg_control_system() reading a file.) */
#define LOG_PRINT "SELECT concat_ws(' ', pg_catalog.current_database(), $1::regclass::oid, " \
  "count(*), max(id), sum(pg_catalog.hashtextextended(revision || ' ' || direction || ' ' || " \
  "coalesce(checksum, '-'), id))) AS print FROM %s"

const char *luamig_sql_log_print(lua_State *L, const luamig_vtable *vt) {
  lua_pushfstring(L, LOG_PRINT, luamig_sql_vt_qualified(L, vt, vt->log_name));
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

/* The log's digest as luamig_push_findings checks it (the SHA-256 of each
 * applied revision's last row and checksum), how many runs it says stopped
 * inside a revision, and its fingerprint, all of one snapshot ($1 as above). */
const char *luamig_sql_log_digest(lua_State *L, const luamig_vtable *vt) {
  const char *log = luamig_sql_vt_qualified(L, vt, vt->log_name);
  lua_pushfstring(L, "SELECT d.applied, d.started, p.print FROM (SELECT encode(sha256(convert_to("
    "coalesce(string_agg(revision || ' ' || coalesce(checksum, '-'), E'\\n' ORDER BY revision "
    "COLLATE \"C\") FILTER (WHERE direction IN ('upgrade', 'stamp', 'downgrade-started')), ''), "
    "'UTF8')), 'hex') AS applied, count(*) FILTER (WHERE direction LIKE '%%-started') AS started "
    "FROM (SELECT DISTINCT ON (revision) revision, direction, checksum FROM %s "
    "ORDER BY revision, id DESC) l) d, (" LOG_PRINT ") p", log, log);
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

/* ---- the migration lock (its key: $1 table, $2 the pid as topology.c has it, $3 schema) ---- */

const char luamig_sql_check_interval[] =
  "SELECT set_config('client_connection_check_interval', '1000', false) "
  "WHERE current_setting('server_version_num')::int >= 140000 AND " LUAMIG_TOPOLOGY_OK("$1");

const char luamig_sql_lock_first[] =
  "SELECT k, CASE WHEN NOT (" LUAMIG_TOPOLOGY_OK("$2") ") THEN false "
  "WHEN pg_try_advisory_lock(k) THEN pg_try_advisory_lock_shared(k) ELSE false END "
  "AS locked FROM (SELECT pg_catalog.hashtextextended('luamig:' || "
  "coalesce($3, current_schema(), '') || '.' || $1, 0) AS k) s";

/* The exclusive and the shared mode both: the guard asks whether this session
 * holds the lock by releasing and retaking one mode at a time (luamig_sql_log_insert). */
const char luamig_sql_lock_try[] = "SELECT 1 WHERE CASE WHEN pg_try_advisory_lock($1::bigint) "
                                   "THEN pg_try_advisory_lock_shared($1::bigint) END";

const char luamig_sql_lock_release[] =
  "SELECT pg_advisory_unlock_shared($1::bigint), pg_advisory_unlock($1::bigint)";

const char luamig_sql_lock_holder[] =
  "SELECT a.pid, coalesce(nullif(a.application_name, ''), '?') AS app, "
  "coalesce(a.state, '?') AS state, coalesce(a.usename, '?') AS usr "
  "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
  "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid "
  "AND l.objid = $2::oid AND l.objsubid = 1";

/* ---- a run's session ---- */

const char *luamig_sql_setting(lua_State *L, const char *name, const char *value) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "SET %s = ", name);
  luaL_addvalue(&b);
  luamig_quote_literal(&b, value);   /* SET takes no parameters */
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

const char luamig_sql_table_blockers[] =
  "SELECT a.pid, coalesce(nullif(a.application_name, ''), '?') AS app, "
  "coalesce(a.state, '?') AS state, "
  "left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120) AS query "
  "FROM pg_stat_activity a WHERE a.datname = current_database() "
  "AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL AND EXISTS ("
  "SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.granted) "
  "ORDER BY a.xact_start LIMIT 3";

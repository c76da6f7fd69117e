/*
 * findings.c: what luamig verify reports, and what upgrade and downgrade warn
 * about before they start: the audit log compared with the files (a file
 * edited after it ran, a revision no file has) and with the version table (a
 * row set ahead or back by hand, a stale ancestor row, a log that is gone).
 * stamp writes the audit rows that keep the two in agreement.
 *
 * The log's state of a revision is its last row: "upgrade" or "stamp" means
 * applied, "downgrade" or "unstamp" not. The version table's state is every
 * ancestor of its rows.
 */
#include <stdlib.h>
#include <string.h>

#include "luamig.h"

/* A downgrade that a run stopped inside ("downgrade-started") left the revision applied. */
static bool applies(const char *direction) {
  return strcmp(direction, "upgrade") == 0 || strcmp(direction, "stamp") == 0 ||
         strcmp(direction, "downgrade-started") == 0;
}

/* Reads the log (pushes its holder, or nil) and sets latest[i] to the row + 1
 * of revision i's last row; ids no file has go to the table at others (id ->
 * row + 1). A "backfill ..." row (op.backfill's count) is a note, not a state.
 * Returns the result, NULL without a log. */
static const PGresult *read_log(luamig_run *r, int *latest, int others) {
  lua_State *L = r->L;
  const PGresult *res = luamig_log_rows(L, r->c, &r->vt);
  for (int k = 0; res && k < PQntuples(res); k++) {
    const char *id = PQgetvalue(res, k, 0);
    int i = luamig_graph_find(r->g, id);
    if (strncmp(PQgetvalue(res, k, 1), "backfill ", 9) == 0) continue;
    if (i >= 0) {
      latest[i] = k + 1;
    } else if (others) {
      lua_pushinteger(L, k + 1);
      lua_setfield(L, others, id);
    }
  }
  return res;
}

/* Whether the log says revision i is applied. */
static bool logged(const PGresult *res, const int *latest, int i) {
  return latest[i] > 0 && applies(PQgetvalue(res, latest[i] - 1, 1));
}

static void append(lua_State *L, int list, const char *id) {
  lua_pushstring(L, id);
  lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
}

/* missing: ids the log says are applied and no file has, then the version
 * table's rows no file has (unknown, when not 0), each once. */
static void add_missing(lua_State *L, const PGresult *res, int others, int unknown, int out) {
  lua_newtable(L);
  int list = lua_gettop(L);
  lua_newtable(L);                   /* ids listed */
  int seen = list + 1;
  for (int k = 0; res && k < PQntuples(res); k++) {   /* log order */
    const char *id = PQgetvalue(res, k, 0);
    bool last = lua_getfield(L, others, id) == LUA_TNUMBER && lua_tointeger(L, -1) == k + 1;
    lua_pop(L, 1);
    if (!last || !applies(PQgetvalue(res, k, 1))) continue;
    append(L, list, id);
    lua_pushboolean(L, 1);
    lua_setfield(L, seen, id);
  }
  for (lua_Integer i = 1; unknown && i <= (lua_Integer)lua_rawlen(L, unknown); i++) {
    lua_rawgeti(L, unknown, i);
    if (lua_rawget(L, seen) == LUA_TNIL) {
      lua_rawgeti(L, unknown, i);
      append(L, list, lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_setfield(L, out, "missing");
}

/* stale: rows of cur that another row of cur builds on. */
static void add_stale(luamig_run *r, const int *cur, int ncur, int out) {
  lua_State *L = r->L;
  luamig_graph *g = r->g;
  int *stale = luamig_scratch(L, g->n), *reach = luamig_scratch(L, g->n);
  for (int k = 0; k < ncur && ncur > 1; k++) {
    memset(reach, 0, (size_t)g->n * sizeof *reach);
    luamig_mark_reach(L, g, &cur[k], 1, reach, true);
    for (int j = 0; j < ncur; j++)
      if (j != k && reach[cur[j]]) stale[cur[j]] = 1;
  }
  lua_newtable(L);
  for (int k = 0; k < g->n; k++)
    if (stale[g->order[k]]) append(L, lua_gettop(L), g->revs[g->order[k]].id);
  lua_setfield(L, out, "stale");
  lua_pop(L, 2);
}

static int cmp_ids(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The log's digest the files and the rows would give: the SHA-256 of each
 * applied revision's "id checksum", in C order (as luamig_sql_log_digest). */
static void files_digest(luamig_run *r, const int *applied, char sum[65]) {
  lua_State *L = r->L;
  const luamig_graph *g = r->g;
  const char **ids = lua_newuserdatauv(L, (size_t)(g->n + 1) * sizeof *ids, 0);
  int n = 0;
  for (int i = 0; i < g->n; i++)
    if (applied[i]) ids[n++] = g->revs[i].id;
  qsort(ids, (size_t)n, sizeof *ids, cmp_ids);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int k = 0; k < n; k++) {
    const luamig_rev *rv = &g->revs[luamig_graph_find(g, ids[k])];
    if (k) luaL_addchar(&b, '\n');
    luaL_addstring(&b, rv->id);
    luaL_addchar(&b, ' ');
    luaL_addstring(&b, *rv->sum ? rv->sum : "-");
  }
  luaL_pushresult(&b);
  size_t len;
  const char *text = lua_tolstring(L, -1, &len);
  luamig_sha256_hex(text, len, sum);
  lua_pop(L, 2);
}

/* Whether the log's digest is the one the files and the rows would give:
 * every applied revision's last row applies it with its file's checksum, no
 * other revision's row does, and no run stopped inside one. Then the full
 * read would find nothing (but stale rows, which come from the version table
 * alone), and is skipped: a no-op run reads a digest, not every row of the
 * log. With only the log's fingerprint read (with the lock), the digest is
 * the one this directory's runs last read with that fingerprint (logseen.c),
 * else it is read now. */
static bool log_agrees(luamig_run *r, const int *applied) {
  lua_State *L = r->L;
  luamig_vtable *vt = &r->vt;
  char sum[65], seen[65];
  files_digest(r, applied, sum);
  const char *dir = luamig_run_cache_dir(r);
  bool agrees = false;
  if (!vt->digested && vt->printed && luamig_logseen_find(L, dir, vt->log_print, seen)) {
    agrees = strcmp(sum, seen) == 0;
  } else {
    if (!vt->digested && vt->printed) luamig_vtable_digest(L, r->c, vt);
    if (vt->digested && vt->printed && vt->log_started == 0)   /* the fingerprint says that too */
      luamig_logseen_add(L, dir, vt->log_print, vt->log_digest);
    agrees = vt->digested && vt->log_started == 0 && strcmp(sum, vt->log_digest) == 0;
  }
  lua_pop(L, 1);
  return agrees;
}

int luamig_push_findings(luamig_run *r, const int *cur, int ncur, int unknown) {
  lua_State *L = r->L;
  luamig_graph *g = r->g;
  int top = lua_gettop(L);
  int *latest = luamig_scratch(L, g->n);
  lua_newtable(L);                   /* ids no file has: id -> their last row + 1 */
  int others = lua_gettop(L);
  int *applied = luamig_scratch(L, g->n);
  luamig_mark_reach(L, g, cur, ncur, applied, true);
  bool agrees = (unknown == 0 || lua_rawlen(L, unknown) == 0) && log_agrees(r, applied);
  const PGresult *res = agrees ? NULL : read_log(r, latest, others);
  if (agrees) lua_pushnil(L);        /* where read_log leaves its holder */
  lua_createtable(L, 0, 6);
  int out = lua_gettop(L);
  lua_newtable(L);
  for (int k = 0; k < g->n; k++) {   /* upgrade order */
    int i = g->order[k], row = latest[i] - 1;
    if (!applied[i] || row < 0 || PQgetisnull(res, row, 2)) continue;
    if (strcmp(PQgetvalue(res, row, 2), g->revs[i].sum) == 0) continue;
    luamig_push_rev_info(L, g, i);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  }
  lua_setfield(L, out, "changed");
  add_missing(L, res, others, unknown, out);
  lua_newtable(L);                   /* ahead */
  lua_newtable(L);                   /* behind */
  for (int k = 0; res && k < g->n; k++) {
    int i = g->order[k];
    if (applied[i] && !logged(res, latest, i)) append(L, out + 1, g->revs[i].id);
    if (!applied[i] && logged(res, latest, i)) append(L, out + 2, g->revs[i].id);
  }
  lua_setfield(L, out, "behind");
  lua_setfield(L, out, "ahead");
  add_stale(r, cur, ncur, out);
  lua_newtable(L);                   /* non-transactional revisions a run stopped inside */
  for (int k = 0; res && k < g->n; k++) {
    int i = g->order[k], row = latest[i] - 1;
    if (row < 0 || strstr(PQgetvalue(res, row, 1), "-started") == NULL) continue;
    luamig_push_rev_info(L, g, i);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  }
  lua_setfield(L, out, "interrupted");
  bool rows = ncur > 0 || (unknown && lua_rawlen(L, unknown) > 0);
  if (res == NULL && rows && !agrees) {
    lua_pushfstring(L, "the audit log %s is missing (dropped?) while the version table %s has "
                    "rows: nothing records what ran", r->vt.log_name, r->vt.name);
    lua_setfield(L, out, "log");
  }
  int n = res == NULL && rows && !agrees;
  static const char *const lists[] = { "changed", "missing", "ahead", "behind", "stale" };
  for (int i = 0; i < 5; i++) {
    lua_getfield(L, out, lists[i]);
    n += (int)lua_rawlen(L, -1);
    lua_pop(L, 1);
  }
  lua_replace(L, top + 1);           /* over the scratch: the log's holder goes with it */
  lua_settop(L, top + 1);
  return n;
}

/* One warning for a list of ids: "<n> <what> (a, b, c, d, e, ...)<advice>". */
static void warn_list(luamig_run *r, int res, const char *key, const char *what,
                      const char *advice) {
  lua_State *L = r->L;
  lua_getfield(L, res, key);
  int n = (int)lua_rawlen(L, -1);
  if (n == 0) { lua_pop(L, 1); return; }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, what, n, n == 1 ? "" : "s", n == 1 ? "is" : "are");
  luaL_addvalue(&b);
  luaL_addstring(&b, " (");
  for (int i = 1; i <= n && i <= 5; i++) {
    lua_rawgeti(L, -2, i);
    if (i > 1) luaL_addstring(&b, ", ");
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, n > 5 ? ", ...)" : ")");
  luaL_addstring(&b, advice);
  luaL_pushresult(&b);
  luamig_run_log(r, "warn", lua_tostring(L, -1), 0);
  lua_pop(L, 2);
}

void luamig_warn_findings(luamig_run *r, int nfound) {
  lua_State *L = r->L;
  int res = lua_gettop(L);
  lua_getfield(L, res, "changed");
  for (int i = 1; i <= (int)lua_rawlen(L, -1); i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "revision");
    lua_getfield(L, -2, "path");
    luamig_run_log(r, "warn", lua_pushfstring(L, "revision %s (%s) was changed after it was applied",
              lua_tostring(L, -2), lua_tostring(L, -1)), 0);
    lua_pop(L, 4);
  }
  lua_getfield(L, res, "missing");
  for (int i = 1; i <= (int)lua_rawlen(L, -1); i++) {
    lua_rawgeti(L, -1, i);
    luamig_run_log(r, "warn", lua_pushfstring(L, "revision %s is applied but no revision file has it",
              lua_tostring(L, -1)), 0);
    lua_pop(L, 2);
  }
  lua_getfield(L, res, "interrupted");
  for (int i = 1; i <= (int)lua_rawlen(L, -1); i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "revision");
    lua_getfield(L, -2, "path");
    luamig_run_log(r, "warn", lua_pushfstring(L, "an earlier run stopped inside revision %s (%s), "
              "which is not transactional: what it did before it stopped was not rolled back "
              "(a CREATE INDEX CONCURRENTLY that stopped leaves an INVALID index); check the "
              "database against the file before the revision runs again",
              lua_tostring(L, -2), lua_tostring(L, -1)), 0);
    lua_pop(L, 4);
  }
  warn_list(r, res, "ahead", "the version table says %d revision%s %s applied that the audit log "
            "never recorded", ": 'luamig verify' lists them; 'luamig stamp REV' records a change "
            "made by hand");
  warn_list(r, res, "behind", "the audit log says %d revision%s %s applied that the version table "
            "does not", ": 'luamig verify' lists them");
  warn_list(r, res, "stale", "the version table has %d row%s that another row builds on",
            ": 'luamig stamp --purge' the right heads");
  if (lua_getfield(L, res, "log") == LUA_TSTRING) luamig_run_log(r, "warn", lua_tostring(L, -1), 0);
  lua_settop(L, res);
  if (nfound > 0 && luamig_opt_flag(L, r->opts, "strict"))
    luaL_error(L, "%d finding%s about the revision files, the version table or the audit log "
               "(see 'luamig verify'); --strict refuses to go on", nfound, nfound == 1 ? "" : "s");
}

void luamig_log_stamp(luamig_run *r, luamig_opctx *ctx, const int *cur, int ncur,
                      const luamig_move *m) {
  lua_State *L = r->L;
  luamig_graph *g = r->g;
  int top = lua_gettop(L);
  int *rows = luamig_scratch(L, g->n + m->nto), nrows = 0;
  for (int i = 0; i < ncur; i++) {   /* the rows after m: cur without from, with to */
    bool gone = false;
    for (int k = 0; k < m->nfrom && !gone; k++) gone = strcmp(g->revs[cur[i]].id, m->from[k]) == 0;
    if (!gone) rows[nrows++] = cur[i];
  }
  for (int k = 0; k < m->nto; k++) rows[nrows++] = luamig_graph_find(g, m->to[k]);
  int *after = luamig_scratch(L, g->n);
  luamig_mark_reach(L, g, rows, nrows, after, true);
  int *latest = luamig_scratch(L, g->n), *before = luamig_scratch(L, g->n);
  const PGresult *res = ctx->conn ? read_log(r, latest, 0) : NULL;
  if (res == NULL) luamig_mark_reach(L, g, cur, ncur, before, true);   /* offline: no log to read */
  for (int i = 0; res && i < g->n; i++) before[i] = logged(res, latest, i);
  luamig_logrow *log = lua_newuserdatauv(L, (size_t)(g->n + 1) * sizeof *log, 0);
  luamig_stmt *st = lua_newuserdatauv(L, (size_t)(g->n + 1) * sizeof *st, 0);
  int n = 0;
  for (int k = 0; k < g->n; k++) {
    int i = g->order[k];
    if (after[i] == before[i]) continue;
    luaL_checkstack(L, 1, "too many revisions to stamp");   /* each statement's SQL */
    log[n] = (luamig_logrow){ .rev = g->revs[i].id, .direction = after[i] ? "stamp" : "unstamp",
                              .checksum = g->revs[i].sum };
    luamig_log_add(L, &r->vt, &log[n], st, &n);
  }
  if (n > 0) luamig_emit_batch(L, ctx, n, st, NULL);
  lua_settop(L, top);
}

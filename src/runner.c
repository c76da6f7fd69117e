/*
 * runner.c: the commands shared by the CLI and the Lua API. Each takes one
 * options table and returns Lua values; it prints nothing. Progress goes to
 * opts.log(event, text, ms) when given ("start", "done", "fail", "info"; and
 * "heads", the version rows before and after each revision, for a fleet's report).
 *
 * A run: config -> graph -> connection -> lock -> current heads -> plan ->
 * one transaction per revision (its statements and its version-table row
 * together) -> unlock. The connection is a to-be-closed slot, so any error
 * closes it, which rolls back the open transaction and drops the lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luamig.h"

/* The database URL of the config (NULL: libpq's PG* environment). */
static const char *config_url(luamig_run *r) {
  lua_getfield(r->L, r->cfg, "url");
  const char *url = lua_tostring(r->L, -1);
  lua_pop(r->L, 1);                  /* the config table keeps it */
  return url;
}

/* Pushes a connection whose handshake is under way, in a to-be-closed slot:
 * any error closes it, which rolls back an open transaction and drops the lock. */
static void start_connecting(luamig_run *r) {
  r->c = luamig_conn_start(r->L, config_url(r));
  r->c->direct = r->direct;
  lua_toclose(r->L, -1);
  r->conn = lua_gettop(r->L);
}

void luamig_run_init(lua_State *L, luamig_run *r, int flags) {
  memset(r, 0, sizeof *r);
  r->L = L;
  if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  r->opts = 1;
  luamig_config_load(L, 1);
  r->cfg = lua_gettop(L);
  lua_getfield(L, r->cfg, "version_table");
  r->vt.name = lua_tostring(L, -1);  /* anchored by cfg */
  lua_getfield(L, r->cfg, "version_table_schema");
  r->vt.schema = lua_tostring(L, -1);
  lua_getfield(L, r->cfg, "log_table");
  r->vt.log_name = lua_tostring(L, -1);
  lua_getfield(L, r->cfg, "lock_timeout");
  r->lock_timeout = lua_tostring(L, -1);
  lua_getfield(L, r->cfg, "statement_timeout");
  r->statement_timeout = lua_tostring(L, -1);
  lua_getfield(L, r->cfg, "lock_retries");
  r->lock_retries = (int)lua_tointeger(L, -1);
  lua_getfield(L, r->cfg, "lock_wait");
  r->lock_wait = lua_tonumber(L, -1);
  lua_pop(L, 7);
  if ((flags & LUAMIG_RUN_MIGRATE) && lua_getfield(L, r->cfg, "direct_url") == LUA_TSTRING) {
    lua_setfield(L, r->cfg, "url");  /* migrations (and --backup) go through direct_url */
    r->direct = true;
  } else if (flags & LUAMIG_RUN_MIGRATE) {
    lua_pop(L, 1);
  }
  /* the server starts the session while the revision files are read */
  if (flags & LUAMIG_RUN_CONNECT) start_connecting(r);
  r->g = luamig_load_revisions(L, r->cfg, (flags & LUAMIG_RUN_SUMS) != 0, r->c);
  r->graph = lua_gettop(L);
}

void luamig_run_connect(luamig_run *r) {
  if (r->c == NULL) start_connecting(r);
  luamig_conn_finish(r->L, r->c, config_url(r));
}

void luamig_run_log(luamig_run *r, const char *event, const char *text, double ms) {
  lua_State *L = r->L;
  if (lua_getfield(L, r->opts, "log") != LUA_TFUNCTION) { lua_pop(L, 1); return; }
  lua_pushstring(L, event);
  lua_pushstring(L, text);
  lua_pushnumber(L, ms);
  lua_pushinteger(L, r->step);
  lua_pushinteger(L, r->nsteps);
  lua_call(L, 5, 0);
}

bool luamig_opt_flag(lua_State *L, int opts, const char *name) {
  lua_getfield(L, opts, name);
  bool b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

bool luamig_opt_preset(lua_State *L, const char *name) {
  return lua_type(L, 1) == LUA_TTABLE && luamig_opt_flag(L, 1, name);
}

int *luamig_scratch(lua_State *L, int n) {
  int *p = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof(int), 0);
  memset(p, 0, (size_t)(n + 1) * sizeof(int));
  return p;
}

/* Reads the version table into cur (indices); raises on an id no file has.
 * *present tells whether the table exists. */
int luamig_read_current(luamig_run *r, int *cur, bool *present) {
  lua_State *L = r->L;
  int n = luamig_vtable_read(L, r->c, &r->vt);
  if (present) *present = n >= 0;
  if (n < 0) n = 0;
  for (int i = 0; i < n; i++) {
    lua_geti(L, -1, i + 1);
    const char *id = lua_tostring(L, -1);
    int k = luamig_graph_find(r->g, id);
    if (k < 0)
      luaL_error(L, "Can't locate revision identified by '%s': the version table %s "
                 "names it but no file in the versions directory has it (a file was "
                 "removed, or the database belongs to another project; 'luamig stamp "
                 "--purge REV' fixes the table once you know the right revision)",
                 id, r->vt.name);
    cur[i] = k;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n;
}

/* Server WARNINGs held during the run go to the log as "warn" events. */
static void log_warnings(luamig_run *r) {
  lua_State *L = r->L;
  if (r->c == NULL || r->c->pg == NULL || (r->c->nwarnings == 0 && r->c->dropped_warnings == 0))
    return;
  int n = luamig_conn_warnings(L, r->c);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    luamig_run_log(r, "warn", lua_pushfstring(L, "server: %s", lua_tostring(L, -1)), 0);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* Offline: hands the statements gathered so far to the log as "sql" events. */
static void drain_script(luamig_run *r, int ctxidx) {
  lua_State *L = r->L;
  lua_getiuservalue(L, ctxidx, 1);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    luamig_run_log(r, "sql", lua_tostring(L, -1), 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_setiuservalue(L, ctxidx, 1);
}

void luamig_push_rev_info(lua_State *L, const luamig_graph *g, int i) {
  const luamig_rev *rv = &g->revs[i];
  lua_createtable(L, 0, 8);
  lua_pushstring(L, rv->id);
  lua_setfield(L, -2, "revision");
  lua_createtable(L, rv->ndown, 0);
  for (int k = 0; k < rv->ndown; k++) {
    lua_pushstring(L, rv->down[k]);
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "down_revision");
  if (rv->message) { lua_pushstring(L, rv->message); lua_setfield(L, -2, "message"); }
  lua_pushstring(L, rv->path);
  lua_setfield(L, -2, "path");
  lua_pushboolean(L, rv->nchildren == 0 && rv->ndependents == 0);
  lua_setfield(L, -2, "head");
  lua_pushboolean(L, rv->nchildren == 0 && rv->ndependents > 0);
  lua_setfield(L, -2, "effective_head");
  lua_pushboolean(L, rv->nparents == 0);
  lua_setfield(L, -2, "base");
  lua_pushboolean(L, rv->nchildren > 1);
  lua_setfield(L, -2, "branchpoint");
  lua_pushboolean(L, rv->nparents > 1);
  lua_setfield(L, -2, "mergepoint");
}

/* "a, b" of the ids in list (or "" for base), pushed. */
static const char *push_ids(lua_State *L, const luamig_graph *g, const int *list, int n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; i < n; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, g->revs[list[i]].id);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* One try at one revision: its transaction, timeouts, statements, version
 * row and audit row. Runs under lua_pcall so a lock timeout can be retried;
 * its arguments are the attempt, the op context, the revision's environment
 * and the metatable of its op (whose __index is the run's op table: building
 * the ~50 closures once per run, not once per revision). */
typedef struct attempt {
  luamig_run *r;
  const luamig_step *s;
  luamig_move *m;                    /* this revision's version move */
  luamig_move *next;                 /* the next revision's, to open with this COMMIT (or NULL) */
  long *next_counts;                 /* its row counts, for that revision's check */
  bool opened;                       /* this revision was opened with the previous COMMIT */
  const char *checksum;
  double t0;
  bool final_sent;                   /* its last batch (audit row, COMMIT, next) went out */
} attempt;

/* Pushes SET name = 'value' (SET takes no parameters: the value is a quoted literal). */
static const char *push_setting(lua_State *L, const char *name, const char *value) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "SET %s = ", name);
  luaL_addvalue(&b);
  luamig_quote_literal(&b, value);
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* The revisions' timeouts (config lock_timeout, statement_timeout), set once
 * for the session after the migration lock is taken: every revision runs
 * under them, transactional or not, and the connection is the run's own. */
static void set_timeouts(lua_State *L, luamig_run *r, luamig_opctx *ctx) {
  luamig_stmt st[2];
  int n = 0, top = lua_gettop(L);
  if (r->lock_timeout)
    st[n++] = (luamig_stmt){ push_setting(L, "lock_timeout", r->lock_timeout), 0, NULL };
  if (r->statement_timeout)
    st[n++] = (luamig_stmt){ push_setting(L, "statement_timeout", r->statement_timeout), 0, NULL };
  if (n > 0) luamig_emit_batch(L, ctx, n, st, NULL);
  lua_settop(L, top);
}

/* Appends a revision's opening: BEGIN, then its version move m (whose row
 * counts follow BEGIN's in the batch's counts). */
static void add_opening(lua_State *L, luamig_run *r, luamig_move *m, luamig_stmt *st, int *n) {
  st[(*n)++] = (luamig_stmt){ "BEGIN", 0, NULL };
  luamig_vtable_move_add(L, &r->vt, m, st, n);
}

/* A revision's opening on its own, in one round trip, checked. */
static void open_revision(lua_State *L, luamig_run *r, luamig_opctx *ctx, luamig_move *m) {
  int top = lua_gettop(L), n = 0;
  luamig_stmt *st = lua_newuserdatauv(L, (size_t)(1 + m->nfrom + m->nto) * sizeof *st, 0);
  add_opening(L, r, m, st, &n);
  long *counts = lua_newuserdatauv(L, (size_t)n * sizeof *counts, 0);
  luamig_emit_batch(L, ctx, n, st, counts);
  if (ctx->conn != NULL) luamig_vtable_move_check(L, m, counts + 1);
  lua_settop(L, top);
}

/* A transactional revision opens with BEGIN and its version move (whose row
 * then stays locked until COMMIT); its DDL waits in the context and goes with
 * its audit row and COMMIT. When the next revision is transactional too, its
 * BEGIN and version move ride along after that COMMIT, so a run of DDL-only
 * revisions takes one round trip each. A non-transactional revision runs each
 * statement as it comes, then moves the version and writes the audit row. */
enum { PRE_OPEN = 2 };               /* after the audit row (the guard) and COMMIT */

static int run_attempt(lua_State *L) {
  attempt *a = lua_touserdata(L, 1);
  luamig_run *r = a->r;
  luamig_opctx *ctx = lua_touserdata(L, 2);
  const int env = 3;
  const luamig_rev *rv = &r->g->revs[a->s->rev];
  bool tx = rv->transactional;
  luamig_opctx_reset(L, ctx);        /* nothing left from a failed try */
  if (tx && a->opened) luamig_vtable_move_check(L, a->m, a->next_counts);
  else if (tx) open_revision(L, r, ctx, a->m);
  ctx->defer = tx && ctx->conn != NULL;
  if (!tx) {                         /* its start row: if the run stops inside, the next says so */
    luamig_logrow start = { .rev = rv->id, .up = a->s->up, .checksum = a->checksum,
                            .started = true };
    luamig_stmt st[1];
    int n = 0;
    luamig_log_add(L, &r->vt, &start, st, &n);
    luamig_emit_batch(L, ctx, n, st, NULL);
    lua_pop(L, 1);
  }
  lua_newtable(L);                   /* the revision's own op: reads fall through to the run's */
  lua_pushvalue(L, 4);
  lua_setmetatable(L, -2);
  lua_setfield(L, env, "op");
  lua_getfield(L, env, a->s->up ? "upgrade" : "downgrade");
  if (luamig_revision_pcall(L, 0, 0, rv->path, a->s->up ? "upgrade()" : "downgrade()") != LUA_OK)
    lua_error(L);
  lua_pushnil(L);
  lua_setfield(L, env, "op");
  luamig_logrow log = { .rev = rv->id, .up = a->s->up, .checksum = a->checksum,
                        .ms = ctx->conn == NULL ? -1 : luamig_now_ms() - a->t0,
                        .expect = ctx->conn != NULL ? a->m->expect : NULL };
  if (tx) {
    int top = lua_gettop(L), n = 0, nnext = a->next ? a->next->nfrom + a->next->nto : 0;
    luamig_stmt *tail = lua_newuserdatauv(L, (size_t)(3 + nnext) * sizeof *tail, 0);
    long *counts = lua_newuserdatauv(L, (size_t)(3 + nnext) * sizeof *counts, 0);
    luamig_log_add(L, &r->vt, &log, tail, &n);
    tail[n++] = (luamig_stmt){ "COMMIT", 0, NULL };
    if (a->next) add_opening(L, r, a->next, tail, &n);   /* at PRE_OPEN */
    a->final_sent = true;
    luamig_flush(L, ctx, n, tail, counts);
    if (a->next) memcpy(a->next_counts, counts + PRE_OPEN + 1, (size_t)nnext * sizeof *counts);
    lua_settop(L, top);
  } else {
    luamig_vtable_move(L, ctx, &r->vt, a->m, &log);
  }
  ctx->defer = false;
  return 0;
}

/* After a lock timeout: the oldest other transactions holding table locks here. */
static const char *push_blockers(lua_State *L, luamig_conn *c) {
  int n = luamig_query(L, c,
    "SELECT a.pid, coalesce(nullif(a.application_name, ''), '?') AS app, "
    "coalesce(a.state, '?') AS state, "
    "left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120) AS query "
    "FROM pg_stat_activity a WHERE a.datname = current_database() "
    "AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL AND EXISTS ("
    "SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.granted) "
    "ORDER BY a.xact_start LIMIT 3", 0, NULL);
  int rows = lua_gettop(L);
  lua_pushliteral(L, "");
  for (int i = 1; i <= n; i++) {
    lua_geti(L, rows, i);
    lua_getfield(L, -1, "pid");
    lua_getfield(L, -2, "app");
    lua_getfield(L, -3, "state");
    lua_getfield(L, -4, "query");
    lua_pushfstring(L, "%spid %s (application '%s', %s): %s", i > 1 ? "; " : "",
                    lua_tostring(L, -4), lua_tostring(L, -3), lua_tostring(L, -2),
                    lua_tostring(L, -1));
    lua_replace(L, -6);              /* over the row */
    lua_pop(L, 4);
    lua_concat(L, 2);
  }
  if (n == 0) lua_pushliteral(L, "(no other transaction holds a table lock now)");
  if (n == 0) lua_concat(L, 2);
  lua_remove(L, rows);
  return lua_tostring(L, -1);
}

static void sleep_ms(double ms) {
  struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
  nanosleep(&ts, NULL);
}

/* The version-table move of step s (heads out, heads in), into m, whose
 * arrays have room for g->n; heads and applied follow it. The rows stay the
 * heads of what is applied: where Alembic's HeadMaintainer writes a row below
 * another, or fails at a merge, luamig differs on purpose (README). */
static void plan_move(luamig_run *r, const luamig_step *s, int *heads, int *applied,
                      luamig_move *m, const char **from, const char **to) {
  luamig_graph *g = r->g;
  const luamig_rev *rv = &g->revs[s->rev];
  int nrel = rv->nparents + rv->ndeps, nfrom = 0, nto = 0;
  if (s->up) {
    for (int k = 0; k < nrel; k++) {
      int p = k < rv->nparents ? rv->parents[k] : rv->deps[k - rv->nparents];
      if (heads[p]) { heads[p] = 0; from[nfrom++] = g->revs[p].id; }
    }
    to[nto++] = rv->id;
    heads[s->rev] = 1;
    applied[s->rev] = 1;
  } else {
    from[nfrom++] = rv->id;
    heads[s->rev] = 0;
    applied[s->rev] = 0;
    for (int k = 0; k < nrel; k++) {  /* a parent becomes a head again when nothing applied sits on it */
      int p = k < rv->nparents ? rv->parents[k] : rv->deps[k - rv->nparents];
      const luamig_rev *pr = &g->revs[p];
      bool covered = heads[p] || !applied[p];
      for (int j = 0; j < pr->nchildren && !covered; j++) covered = applied[pr->children[j]];
      for (int j = 0; j < pr->ndependents && !covered; j++) covered = applied[pr->dependents[j]];
      if (!covered) { heads[p] = 1; to[nto++] = pr->id; }
    }
  }
  *m = (luamig_move){ from, nfrom, to, nto, { NULL, NULL }, NULL };
}

static int compare_ids(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Moves the head ids in list (*n of them) as m does, and sets m->expect to
 * them sorted, one per line (kept in the table at anchors, key k). */
static void track_heads(lua_State *L, const char **list, int *n, luamig_move *m, int anchors,
                        int k) {
  for (int i = 0; i < m->nfrom; i++)
    for (int j = 0; j < *n; j++)
      if (strcmp(list[j], m->from[i]) == 0) { list[j] = list[--*n]; break; }
  for (int i = 0; i < m->nto; i++) list[(*n)++] = m->to[i];
  const char **sorted = lua_newuserdatauv(L, (size_t)(*n + 1) * sizeof *sorted, 0);
  memcpy(sorted, list, (size_t)*n * sizeof *sorted);
  qsort(sorted, (size_t)*n, sizeof *sorted, compare_ids);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; i < *n; i++) {
    if (i) luaL_addchar(&b, '\n');
    luaL_addstring(&b, sorted[i]);
  }
  luaL_pushresult(&b);
  m->expect = lua_tostring(L, -1);
  lua_rawseti(L, anchors, k);
  lua_pop(L, 1);
}

/* One revision, one transaction: its statements and its version-table move
 * m, retried with back-off when it times out waiting for a table lock. next
 * (with its step), when not NULL, is the following revision's move, to be
 * opened with this COMMIT; opened says this one was opened that way. Returns
 * whether next was opened. */
static bool run_step(luamig_run *r, int ctxidx, const luamig_step *s, luamig_move *m,
                     const luamig_step *next_step, luamig_move *next, long *next_counts,
                     bool opened) {
  lua_State *L = r->L;
  luamig_graph *g = r->g;
  luamig_opctx *ctx = lua_touserdata(L, ctxidx);
  const luamig_rev *rv = &g->revs[s->rev];
  int top = lua_gettop(L);

  /* the line Alembic prints, "Running upgrade a -> b, message": on screen with
   * the message's first line, in a --sql comment with all of it on one line */
  const char *message = rv->message ? rv->message : "";
  size_t msglen = ctx->conn == NULL ? strlen(message) : strcspn(message, "\r\n");
  const char *parents = push_ids(L, g, rv->parents, rv->nparents);
  const char *line = s->up
    ? lua_pushfstring(L, "Running upgrade %s -> %s, %s", parents, rv->id,
                      luamig_push_oneline(L, message, msglen))
    : lua_pushfstring(L, "Running downgrade %s -> %s, %s", rv->id, parents,
                      luamig_push_oneline(L, message, msglen));
  if (!rv->transactional) line = lua_pushfstring(L, "%s (non-transactional)", line);
  int lineidx = lua_gettop(L);
  if (ctx->conn == NULL) luamig_run_log(r, "sql", lua_pushfstring(L, "-- %s", line), 0);
  else luamig_run_log(r, "start", line, 0);

  ctx->transactional = rv->transactional;
  luamig_opctx_bind_revision(L, ctxidx, rv->id);
  luamig_load_body(L, g, r->graph, s->rev);
  lua_getiuservalue(L, r->graph, 1);
  lua_rawgeti(L, -1, s->rev + 1);    /* the revision's environment */
  int env = lua_gettop(L);
  lua_pushnil(L);                    /* dropped once fetched: 10,000 at once would not fit in 30 MB */
  lua_rawseti(L, env - 1, s->rev + 1);
  /* only live, and only from one transactional revision to another */
  if (ctx->conn == NULL || !rv->transactional || next_step == NULL ||
      !g->revs[next_step->rev].transactional)
    next = NULL;
  attempt a = { r, s, m, next, next_counts, opened, rv->sum, luamig_now_ms(), false };
  for (int tries = 0;; tries++) {
    lua_pushcfunction(L, run_attempt);
    lua_pushlightuserdata(L, &a);
    lua_pushvalue(L, ctxidx);
    lua_pushvalue(L, env);
    lua_pushvalue(L, r->ops);
    if (lua_pcall(L, 4, 0, 0) == LUA_OK) break;
    a.opened = false;                /* a retry opens itself */
    const char *msg = luaL_tolstring(L, -1, NULL);
    if (a.final_sent && a.next && ctx->conn->failed_at - ctx->tail_at >= PRE_OPEN) {
      /* this revision committed; the next one's BEGIN or version move failed */
      luamig_run_log(r, "done", lua_tostring(L, lineidx), luamig_now_ms() - a.t0);
      log_warnings(r);
      luaL_error(L, "%s %s failed: %s", next_step->up ? "upgrade" : "downgrade",
                 g->revs[next_step->rev].id, msg);
    }
    if (ctx->conn != NULL && luamig_guard_failed(msg, a.final_sent && ctx->conn->failed_at == ctx->tail_at))
      msg = lua_pushfstring(L, "%s: %s", rv->path,
                            luamig_guard_explain(L, &r->vt, m->expect, msg, !rv->transactional));
    bool lock_timeout = ctx->conn != NULL && rv->transactional && strstr(msg, "55P03") != NULL;
    if (lock_timeout) luamig_exec(L, ctx->conn, "ROLLBACK", 0, NULL);
    if (lock_timeout && tries < r->lock_retries) {
      double wait = 500.0 * (1 << tries);
      char secs[16];
      snprintf(secs, sizeof secs, "%.1f", wait / 1000);
      luamig_run_log(r, "info", lua_pushfstring(L, "\n  lock timeout in %s (try %d of %d): "
                "retrying in %s s", rv->id, tries + 1, r->lock_retries + 1, secs), 0);
      lua_pop(L, 3);
      sleep_ms(wait);
      continue;
    }
    if (lock_timeout)
      msg = lua_pushfstring(L, "%s; blocked by: %s", msg, push_blockers(L, ctx->conn));
    luamig_run_log(r, "fail", lua_tostring(L, lineidx), luamig_now_ms() - a.t0);
    log_warnings(r);
    luaL_error(L, "%s %s failed: %s", s->up ? "upgrade" : "downgrade", rv->id, msg);
  }
  double ms = luamig_now_ms() - a.t0;
  if (ctx->conn == NULL) drain_script(r, ctxidx);
  else luamig_run_log(r, "done", lua_tostring(L, lineidx), ms);
  if (ctx->conn != NULL) luamig_run_log(r, "heads", m->expect, 0);
  log_warnings(r);

  /* result entry, appended to the results table just below the scratch */
  lua_settop(L, top);
  luamig_push_rev_info(L, g, s->rev);
  lua_pushstring(L, s->up ? "upgrade" : "downgrade");
  lua_setfield(L, -2, "direction");
  lua_pushnumber(L, ms);
  lua_setfield(L, -2, "ms");
  lua_rawseti(L, top, (lua_Integer)lua_rawlen(L, top) + 1);
  return next != NULL;
}

/* Connects and takes the lock, or (opts.sql) prepares an offline script;
 * pushes the op context and returns its stack index. */
static int open_context(luamig_run *r, bool offline) {
  lua_State *L = r->L;
  int connidx = 0;
  if (!offline) {
    luamig_run_connect(r);
    connidx = r->conn;
    /* with a log to take them, server WARNINGs go there, not to stderr */
    if (lua_getfield(L, r->opts, "log") == LUA_TFUNCTION) r->c->hold_warnings = true;
    lua_pop(L, 1);
    luamig_lock_acquire(L, r->c, &r->vt, r->lock_wait);
  }
  luamig_opctx_new(L, connidx);
  luamig_opctx_bind_run(L, -1, r->opts, &r->vt);
  return lua_gettop(L);
}

/* upgrade / downgrade: returns the list of steps run (empty when up to date).
 * Offline (opts.sql), TARGET may be FROM:TO and the statements go to the log. */
static int migrate(lua_State *L, bool up) {
  luamig_run r;
  luamig_run_init(L, &r, LUAMIG_RUN_SUMS | LUAMIG_RUN_MIGRATE |
                  (luamig_opt_preset(L, "sql") ? 0 : LUAMIG_RUN_CONNECT));
  lua_getfield(L, r.opts, "target");
  const char *target = lua_tostring(L, -1);
  bool offline = luamig_opt_flag(L, r.opts, "sql");
  if (target == NULL && !up)
    return luaL_error(L, "downgrade needs a target: -1, a revision id, or base");
  if (target == NULL) target = "head";
  const char *from = NULL;
  const char *colon = strchr(target, ':');
  if (colon && !offline)
    return luaL_error(L, "a FROM:TO range ('%s') is for offline mode: add --sql", target);
  if (colon) {
    from = lua_pushlstring(L, target, (size_t)(colon - target));
    target = colon + 1;
  } else if (offline && !up) {
    return luaL_error(L, "offline downgrade needs a start revision: "
                      "luamig downgrade FROM:TO --sql");
  }
  int ctxidx = open_context(&r, offline);
  luamig_opctx *ctx = lua_touserdata(L, ctxidx);
  lua_createtable(L, 0, 1);          /* { __index = op table }: one op table per run */
  luamig_ops_push(L, ctxidx);
  lua_setfield(L, -2, "__index");
  r.ops = lua_gettop(L);
  lua_getfield(L, r.opts, "backup");
  if (lua_isstring(L, -1) && !offline) luamig_backup(&r, lua_tostring(L, -1));
  lua_pop(L, 1);

  int *cur = luamig_scratch(L, r.g->n);
  int ncur = 0;
  bool present = false;
  if (offline) {
    set_timeouts(L, &r, ctx);        /* first: a reviewer (or squawk) sees them before any DDL */
    if (from && *from) ncur = luamig_resolve(L, r.g, NULL, 0, from, cur);
    if (up) {
      luamig_vtable_ensure(L, ctx, &r.vt);
      luamig_log_ensure(L, ctx, &r.vt);
    }
    drain_script(&r, ctxidx);
  } else {
    ncur = luamig_read_current(&r, cur, &present);
    luamig_run_log(&r, "heads", push_ids(L, r.g, cur, ncur), 0);
    lua_pop(L, 1);
    luamig_warn_findings(&r, luamig_push_findings(&r, cur, ncur, 0));   /* before the log is made */
    lua_pop(L, 1);
    if (!present && up) luamig_vtable_ensure(L, ctx, &r.vt);
    luamig_log_ensure(L, ctx, &r.vt);
  }
  luamig_step *steps;
  int nsteps = luamig_plan(L, r.g, cur, ncur, target, up, &steps);
  if (up) luamig_lint_plan(&r, steps, nsteps);   /* loads what it lints: no second compile */
  for (int i = 0; i < nsteps; i++) {  /* a syntax error anywhere stops the run before any step */
    if (nsteps <= LUAMIG_KEEP_BODIES) luamig_load_body(L, r.g, r.graph, steps[i].rev);
    else luamig_check_body(L, r.g, r.graph, steps[i].rev);
  }
  if (nsteps > 0 && !offline) set_timeouts(L, &r, ctx);
  int *heads = luamig_scratch(L, r.g->n), *applied = luamig_scratch(L, r.g->n);
  for (int i = 0; i < ncur; i++) heads[cur[i]] = 1;
  luamig_mark_reach(L, r.g, cur, ncur, applied, true);
  /* two moves: this step's and the next one's (planned a step ahead, so it
   * can open with this step's COMMIT) */
  const char **ids = lua_newuserdatauv(L, (size_t)4 * (size_t)(r.g->n + 1) * sizeof *ids, 0);
  long *next_counts = lua_newuserdatauv(L, (size_t)(r.g->n + 1) * sizeof *next_counts, 0);
  luamig_move moves[2];
  int n1 = r.g->n + 1;
  /* the rows each step leaves, for its guard */
  const char **rows = lua_newuserdatauv(L, (size_t)n1 * sizeof *rows, 0);
  int nrows = 0;
  for (int i = 0; i < ncur; i++) rows[nrows++] = r.g->revs[cur[i]].id;
  lua_createtable(L, nsteps, 0);
  int expects = lua_gettop(L);
  if (nsteps > 0) {
    plan_move(&r, &steps[0], heads, applied, &moves[0], ids, ids + n1);
    track_heads(L, rows, &nrows, &moves[0], expects, 1);
  }

  lua_createtable(L, nsteps, 0);
  int results = lua_gettop(L);
  r.nsteps = nsteps;
  bool opened = false;
  for (int i = 0; i < nsteps; i++) {
    r.step = i + 1;
    luamig_move *m = &moves[i % 2], *next = NULL;
    if (i + 1 < nsteps) {
      next = &moves[(i + 1) % 2];
      const char **buf = ids + (size_t)((i + 1) % 2) * 2 * (size_t)n1;
      plan_move(&r, &steps[i + 1], heads, applied, next, buf, buf + n1);
      track_heads(L, rows, &nrows, next, expects, i + 2);
    }
    opened = run_step(&r, ctxidx, &steps[i], m, next ? &steps[i + 1] : NULL, next, next_counts,
                      opened);
    lua_settop(L, results);
  }
  if (!offline) luamig_lock_release(L, r.c, &r.vt);
  log_warnings(&r);
  return 1;
}

/* stamp: sets the version table to TARGET without running any revision, as
 * Alembic's stamp would (luamig_stamp); opts.purge empties the table first
 * (even of ids no file has). Returns the revisions the table then holds. */
static int cmd_stamp(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, LUAMIG_RUN_SUMS | LUAMIG_RUN_MIGRATE |
                         (luamig_opt_preset(L, "sql") ? 0 : LUAMIG_RUN_CONNECT));
  lua_getfield(L, r.opts, "target");
  const char *target = lua_tostring(L, -1);
  if (target == NULL) return luaL_error(L, "stamp needs a target: a revision, heads or base");
  bool purge = luamig_opt_flag(L, r.opts, "purge"), offline = luamig_opt_flag(L, r.opts, "sql");
  luamig_graph *g = r.g;
  int ctxidx = open_context(&r, offline);
  luamig_opctx *ctx = lua_touserdata(L, ctxidx);
  int *cur = luamig_scratch(L, g->n), ncur = 0;
  bool present = false;
  if (!offline && purge) {          /* ids no file has are fine: they go */
    present = luamig_vtable_read(L, r.c, &r.vt) >= 0;
    lua_pop(L, 1);
  } else if (!offline) {
    ncur = luamig_read_current(&r, cur, &present);
  }
  if (!present) luamig_vtable_ensure(L, ctx, &r.vt);
  luamig_log_ensure(L, ctx, &r.vt);
  int *rows = luamig_scratch(L, g->n), nrows = luamig_stamp(L, g, cur, ncur, target, rows);

  luamig_emit(L, ctx, "BEGIN", 0, NULL);
  if (purge) {
    lua_pushliteral(L, "DELETE FROM ");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luamig_quote_qualified(L, &b, r.vt.schema, r.vt.name);
    luaL_pushresult(&b);
    lua_concat(L, 2);
    luamig_emit(L, ctx, lua_tostring(L, -1), 0, NULL);
    lua_pop(L, 1);
  }
  int *was = luamig_scratch(L, g->n), *now = luamig_scratch(L, g->n);
  for (int i = 0; i < ncur; i++) was[cur[i]] = 1;
  for (int i = 0; i < nrows; i++) now[rows[i]] = 1;
  const char **from = lua_newuserdatauv(L, (size_t)(ncur + 1) * sizeof *from, 0);
  const char **to = lua_newuserdatauv(L, (size_t)(nrows + 1) * sizeof *to, 0);
  int nfrom = 0, nto = 0;
  for (int i = 0; i < ncur; i++) if (!now[cur[i]]) from[nfrom++] = g->revs[cur[i]].id;
  for (int i = 0; i < nrows; i++) if (!was[rows[i]]) to[nto++] = g->revs[rows[i]].id;
  const char *line = lua_pushfstring(L, "Running stamp_revision %s -> %s",
                                     push_ids(L, g, cur, ncur), push_ids(L, g, rows, nrows));
  luamig_run_log(&r, offline ? "sql" : "info", offline ? lua_pushfstring(L, "-- %s", line) : line, 0);
  luamig_move m = { from, nfrom, to, nto, { NULL, NULL }, NULL };
  luamig_vtable_move(L, ctx, &r.vt, &m, NULL);
  luamig_log_stamp(&r, ctx, cur, ncur, &m);
  luamig_emit(L, ctx, "COMMIT", 0, NULL);
  if (offline) drain_script(&r, ctxidx);
  else luamig_lock_release(L, r.c, &r.vt);
  log_warnings(&r);
  lua_createtable(L, nrows, 0);
  for (int i = 0; i < nrows; i++) {
    luamig_push_rev_info(L, g, rows[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int cmd_upgrade(lua_State *L) { return migrate(L, true); }
static int cmd_downgrade(lua_State *L) { return migrate(L, false); }

static const luaL_Reg runner_funcs[] = {
  { "upgrade", cmd_upgrade },
  { "downgrade", cmd_downgrade },
  { "stamp", cmd_stamp },
  { NULL, NULL }
};

int luamig_open_runner(lua_State *L) {
  luaL_newlib(L, runner_funcs);
  return 1;
}

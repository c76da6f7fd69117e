/*
 * runner.c: upgrade and downgrade, and the retry engine under them. Like every
 * command (run.c) each takes one options table and returns Lua values; it
 * prints nothing. Progress goes to opts.log(event, text, ms) when given
 * ("start", "done", "fail", "info"; and "heads", the version rows before and
 * after each revision, for a fleet's report).
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
  const char *parents = luamig_push_ids(L, g, rv->parents, rv->nparents);
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
      luamig_run_warnings(r);
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
    luamig_run_warnings(r);
    luaL_error(L, "%s %s failed: %s", s->up ? "upgrade" : "downgrade", rv->id, msg);
  }
  double ms = luamig_now_ms() - a.t0;
  if (ctx->conn == NULL) luamig_run_drain(r, ctxidx);
  else luamig_run_log(r, "done", lua_tostring(L, lineidx), ms);
  if (ctx->conn != NULL) luamig_run_log(r, "heads", m->expect, 0);
  luamig_run_warnings(r);

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
  int ctxidx = luamig_run_open(&r, offline);
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
    luamig_run_drain(&r, ctxidx);
  } else {
    ncur = luamig_read_current(&r, cur, &present);
    luamig_run_log(&r, "heads", luamig_push_ids(L, r.g, cur, ncur), 0);
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
  luamig_run_warnings(&r);
  return 1;
}

static int cmd_upgrade(lua_State *L) { return migrate(L, true); }
static int cmd_downgrade(lua_State *L) { return migrate(L, false); }

static const luaL_Reg runner_funcs[] = {
  { "upgrade", cmd_upgrade },
  { "downgrade", cmd_downgrade },
  { NULL, NULL }
};

int luamig_open_runner(lua_State *L) {
  luaL_newlib(L, runner_funcs);
  return 1;
}

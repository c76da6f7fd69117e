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
#include "cmd.h"

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

/* The revisions' timeouts (config lock_timeout, statement_timeout), set once
 * for the session after the migration lock is taken: every revision runs
 * under them, transactional or not, and the connection is the run's own.
 * Live, the session's dead-client check too (PostgreSQL 14+ then notices a
 * killed run during a long statement and rolls back at once, freeing its
 * locks in a second): the revisions are where the long statements are, so a
 * run with nothing to do does not pay for it. */
static void set_timeouts(lua_State *L, luamig_run *r, luamig_opctx *ctx) {
  luamig_stmt st[3];
  int n = 0, top = lua_gettop(L);
  char buf[16];
  const char *pid = ctx->conn != NULL ? luamig_topology_pid(ctx->conn, buf) : NULL;
  if (ctx->conn != NULL) st[n++] = (luamig_stmt){ luamig_sql_check_interval, 1, &pid, false };
  if (r->lock_timeout)
    st[n++] = (luamig_stmt){ luamig_sql_setting(L, "lock_timeout", r->lock_timeout), 0, NULL, false };
  if (r->statement_timeout)
    st[n++] = (luamig_stmt){ luamig_sql_setting(L, "statement_timeout", r->statement_timeout), 0,
                             NULL, false };
  if (n > 0) luamig_emit_batch(L, ctx, n, st, NULL);
  lua_settop(L, top);
}

/* Appends a revision's opening: BEGIN, then its version move m (whose row
 * counts follow BEGIN's in the batch's counts). */
static void add_opening(lua_State *L, luamig_run *r, luamig_move *m, luamig_stmt *st, int *n) {
  st[(*n)++] = (luamig_stmt){ "BEGIN", 0, NULL, false };
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
    luamig_stmt st[2];
    int n = 0;
    luamig_durable_restore(r, st, &n);   /* each of its statements flushed */
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
    luamig_durable_commit(r, tail, &n);   /* the last COMMIT flushes them all */
    tail[n++] = (luamig_stmt){ "COMMIT", 0, NULL, false };
    if (a->next) add_opening(L, r, a->next, tail, &n);   /* at PRE_OPEN */
    a->final_sent = true;
    luamig_flush(L, ctx, n, tail, counts);
    if (a->next) memcpy(a->next_counts, counts + PRE_OPEN + 1, (size_t)nnext * sizeof *counts);
    lua_settop(L, top);
  } else {
    if (ctx->conn) luamig_conn_forget_prepared(ctx->conn);   /* it may have run DISCARD ALL */
    luamig_vtable_move(L, ctx, &r->vt, a->m, &log);
    if (r->step < r->nsteps) luamig_durable_relax(L, r, ctx);
  }
  ctx->defer = false;
  return 0;
}

/* After a lock timeout: the oldest other transactions holding table locks here. */
static const char *push_blockers(lua_State *L, luamig_conn *c) {
  int n = luamig_query(L, c, luamig_sql_table_blockers, 0, NULL);
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

/* Pushes the line Alembic prints for step s, "Running upgrade a -> b,
 * message", and logs it: on screen with the message's first line, in a --sql
 * comment with all of it on one line. */
static const char *push_step_line(luamig_run *r, const luamig_opctx *ctx, const luamig_step *s) {
  lua_State *L = r->L;
  const luamig_rev *rv = &r->g->revs[s->rev];
  int top = lua_gettop(L);
  const char *message = rv->message ? rv->message : "";
  size_t msglen = ctx->conn == NULL ? strlen(message) : strcspn(message, "\r\n");
  const char *parents = luamig_push_ids(L, r->g, rv->parents, rv->nparents);
  const char *oneline = luamig_push_oneline(L, message, msglen);
  const char *line = s->up
    ? lua_pushfstring(L, "Running upgrade %s -> %s, %s", parents, rv->id, oneline)
    : lua_pushfstring(L, "Running downgrade %s -> %s, %s", rv->id, parents, oneline);
  if (!rv->transactional) line = lua_pushfstring(L, "%s (non-transactional)", line);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  if (ctx->conn == NULL) luamig_run_log(r, "sql", lua_pushfstring(L, "-- %s", line), 0);
  else luamig_run_log(r, "start", line, 0);
  lua_settop(L, top + 1);
  return line;
}

/* Pushes step s's environment (compiled now if it was only scanned), which
 * the graph then lets go: 10,000 held at once would not fit in 30 MB. */
static void push_env(luamig_run *r, const luamig_step *s) {
  lua_State *L = r->L;
  luamig_load_body(L, r->g, r->graph, s->rev);
  lua_getiuservalue(L, r->graph, 1);
  lua_rawgeti(L, -1, s->rev + 1);
  lua_pushnil(L);
  lua_rawseti(L, -3, s->rev + 1);
  lua_remove(L, -2);
}

/* After try number tries of a (its error at the top) failed: returns true
 * when it is to be tried again (a lock timeout with tries left: the wait is
 * over), else raises "upgrade X failed: ...", X being the next revision when
 * this one committed and the next one's opening failed. line: the step's
 * "Running ..." line. */
static bool retry_or_raise(attempt *a, luamig_opctx *ctx, const luamig_step *next_step,
                           int tries, const char *line) {
  luamig_run *r = a->r;
  lua_State *L = r->L;
  const luamig_rev *rv = &r->g->revs[a->s->rev];
  int top = lua_gettop(L) - 1;
  a->opened = false;                 /* a retry opens itself */
  const char *msg = luaL_tolstring(L, -1, NULL);
  if (a->final_sent && a->next && ctx->conn->failed_at - ctx->tail_at >= PRE_OPEN) {
    /* this revision committed; the next one's BEGIN or version move failed */
    luamig_run_log(r, "done", line, luamig_now_ms() - a->t0);
    luamig_run_warnings(r);
    luaL_error(L, "%s %s failed: %s", next_step->up ? "upgrade" : "downgrade",
               r->g->revs[next_step->rev].id, msg);
  }
  luamig_sqlerror e;                 /* the server's failure, unless the revision raised its own */
  const luamig_sqlerror *server = ctx->conn != NULL && luamig_sqlerror_of(L, msg, &e) ? &e : NULL;
  if (ctx->conn != NULL
      && luamig_guard_failed(server, a->final_sent && ctx->conn->failed_at == ctx->tail_at))
    msg = lua_pushfstring(L, "%s: %s", rv->path, luamig_guard_explain(L, &r->vt, a->m->expect,
                                                                   msg, server, !rv->transactional));
  bool lock_timeout = server && rv->transactional && strcmp(server->sqlstate, "55P03") == 0;
  if (lock_timeout) luamig_exec(L, ctx->conn, "ROLLBACK", 0, NULL);
  if (lock_timeout && tries < r->lock_retries) {
    double wait = 500.0 * (1 << tries);
    char secs[16];
    snprintf(secs, sizeof secs, "%.1f", wait / 1000);
    luamig_run_log(r, "info", lua_pushfstring(L, "\n  lock timeout in %s (try %d of %d): "
              "retrying in %s s", rv->id, tries + 1, r->lock_retries + 1, secs), 0);
    lua_settop(L, top);
    sleep_ms(wait);
    return true;
  }
  if (lock_timeout)
    msg = lua_pushfstring(L, "%s; blocked by: %s", msg, push_blockers(L, ctx->conn));
  luamig_run_log(r, "fail", line, luamig_now_ms() - a->t0);
  luamig_run_warnings(r);
  return luaL_error(L, "%s %s failed: %s", a->s->up ? "upgrade" : "downgrade", rv->id, msg);
}

/* One revision, one transaction: its statements and its version-table move
 * m, retried with back-off when it times out waiting for a table lock. next
 * (with its step), when not NULL, is the following revision's move, to be
 * opened with this COMMIT; opened says this one was opened that way. Appends
 * the step's entry to the results table at the top. Returns whether next was
 * opened. */
static bool run_step(luamig_run *r, int ctxidx, const luamig_step *s, luamig_move *m,
                     const luamig_step *next_step, luamig_move *next, long *next_counts,
                     bool opened) {
  lua_State *L = r->L;
  luamig_opctx *ctx = lua_touserdata(L, ctxidx);
  const luamig_rev *rv = &r->g->revs[s->rev];
  int top = lua_gettop(L);
  const char *line = push_step_line(r, ctx, s);
  ctx->transactional = rv->transactional;
  luamig_opctx_bind_revision(L, ctxidx, rv->id);
  push_env(r, s);
  int env = lua_gettop(L);
  /* only live, and only from one transactional revision to another */
  if (ctx->conn == NULL || !rv->transactional || next_step == NULL ||
      !r->g->revs[next_step->rev].transactional)
    next = NULL;
  attempt a = { r, s, m, next, next_counts, opened, rv->sum, luamig_now_ms(), false };
  for (int tries = 0;; tries++) {
    lua_pushcfunction(L, run_attempt);
    lua_pushlightuserdata(L, &a);
    lua_pushvalue(L, ctxidx);
    lua_pushvalue(L, env);
    lua_pushvalue(L, r->ops);
    if (lua_pcall(L, 4, 0, 0) == LUA_OK) break;
    retry_or_raise(&a, ctx, next_step, tries, line);
  }
  double ms = luamig_now_ms() - a.t0;
  if (ctx->conn == NULL) luamig_run_drain(r, ctxidx);
  else luamig_run_log(r, "done", line, ms);
  if (ctx->conn != NULL) luamig_run_log(r, "heads", m->expect, 0);
  luamig_run_warnings(r);

  lua_settop(L, top);                /* the results table */
  luamig_push_rev_info(L, r->g, s->rev);
  lua_pushstring(L, s->up ? "upgrade" : "downgrade");
  lua_setfield(L, -2, "direction");
  lua_pushnumber(L, ms);
  lua_setfield(L, -2, "ms");
  lua_rawseti(L, top, (lua_Integer)lua_rawlen(L, top) + 1);
  return next != NULL;
}

/* TARGET of opts (default head; downgrade needs one). Offline it may be
 * FROM:TO, and an offline downgrade needs FROM: *from is then pushed. */
static const char *read_target(luamig_run *r, bool up, bool offline, const char **from) {
  lua_State *L = r->L;
  lua_getfield(L, r->opts, "target");
  const char *target = lua_tostring(L, -1);
  *from = NULL;
  if (target == NULL && !up)
    luaL_error(L, "downgrade needs a target: -1, a revision id, or base");
  if (target == NULL) return "head";
  const char *colon = strchr(target, ':');
  if (colon && !offline)
    luaL_error(L, "a FROM:TO range ('%s') is for offline mode: add --sql", target);
  if (colon) {
    *from = lua_pushlstring(L, target, (size_t)(colon - target));
    return colon + 1;
  }
  if (offline && !up)
    luaL_error(L, "offline downgrade needs a start revision: luamig downgrade FROM:TO --sql");
  return target;
}

/* The revisions the run starts from, into cur (returns how many): the
 * version table's (after its findings are logged), or offline FROM's. Makes
 * the version table and the audit log when an upgrade needs them (offline:
 * their CREATEs go first in the script, after the session's timeouts). */
static int read_start(luamig_run *r, int ctxidx, bool up, bool offline, const char *from,
                      int *cur) {
  lua_State *L = r->L;
  luamig_opctx *ctx = lua_touserdata(L, ctxidx);
  int ncur = 0;
  bool present = false;
  if (offline) {
    set_timeouts(L, r, ctx);         /* first: a reviewer (or squawk) sees them before any DDL */
    if (from && *from) ncur = luamig_resolve(L, r->g, NULL, 0, from, cur);
    if (up) {
      luamig_vtable_ensure(L, ctx, &r->vt);
      luamig_log_ensure(L, ctx, &r->vt);
    }
    luamig_run_drain(r, ctxidx);
    return ncur;
  }
  ncur = luamig_read_current(r, cur, &present);
  luamig_run_log(r, "heads", luamig_push_ids(L, r->g, cur, ncur), 0);
  lua_pop(L, 1);
  luamig_warn_findings(r, luamig_push_findings(r, cur, ncur, 0));   /* before the log is made */
  lua_pop(L, 1);
  if (!present && up) luamig_vtable_ensure(L, ctx, &r->vt);
  luamig_log_ensure(L, ctx, &r->vt);
  return ncur;
}

/* Runs the planned steps from the rows cur; pushes the results table. Each
 * step's version move is planned one step ahead, so it can open with the
 * previous step's COMMIT, with the rows it leaves (its guard's). */
static void run_steps(luamig_run *r, int ctxidx, const int *cur, int ncur,
                      const luamig_step *steps, int nsteps) {
  lua_State *L = r->L;
  luamig_graph *g = r->g;
  int n1 = g->n + 1;
  int *heads = luamig_scratch(L, g->n), *applied = luamig_scratch(L, g->n);
  for (int i = 0; i < ncur; i++) heads[cur[i]] = 1;
  luamig_mark_reach(L, g, cur, ncur, applied, true);
  const char **ids = lua_newuserdatauv(L, (size_t)4 * (size_t)n1 * sizeof *ids, 0);
  long *next_counts = lua_newuserdatauv(L, (size_t)n1 * sizeof *next_counts, 0);
  luamig_move moves[2];
  const char **rows = lua_newuserdatauv(L, (size_t)n1 * sizeof *rows, 0);
  int nrows = 0;
  for (int i = 0; i < ncur; i++) rows[nrows++] = g->revs[cur[i]].id;
  lua_createtable(L, nsteps, 0);
  int expects = lua_gettop(L);
  if (nsteps > 0) {
    plan_move(r, &steps[0], heads, applied, &moves[0], ids, ids + n1);
    track_heads(L, rows, &nrows, &moves[0], expects, 1);
  }
  lua_createtable(L, nsteps, 0);
  int results = lua_gettop(L);
  r->nsteps = nsteps;
  bool opened = false;
  for (int i = 0; i < nsteps; i++) {
    r->step = i + 1;
    luamig_move *m = &moves[i % 2], *next = NULL;
    if (i + 1 < nsteps) {
      next = &moves[(i + 1) % 2];
      const char **buf = ids + (size_t)((i + 1) % 2) * 2 * (size_t)n1;
      plan_move(r, &steps[i + 1], heads, applied, next, buf, buf + n1);
      track_heads(L, rows, &nrows, next, expects, i + 2);
    }
    opened = run_step(r, ctxidx, &steps[i], m, next ? &steps[i + 1] : NULL, next, next_counts,
                      opened);
    lua_settop(L, results);
  }
}

/* upgrade / downgrade: returns the list of steps run (empty when up to date).
 * Offline (opts.sql), TARGET may be FROM:TO and the statements go to the log. */
static int migrate(lua_State *L, bool up) {
  luamig_run r;
  luamig_run_init(L, &r, LUAMIG_RUN_SUMS | LUAMIG_RUN_MIGRATE |
                  (luamig_opt_preset(L, "sql") ? 0 : LUAMIG_RUN_CONNECT));
  bool offline = luamig_opt_flag(L, r.opts, "sql");
  const char *from, *target = read_target(&r, up, offline, &from);
  int ctxidx = luamig_run_open(&r, offline);
  lua_createtable(L, 0, 1);          /* { __index = op table }: one op table per run */
  luamig_ops_push(L, ctxidx);
  lua_setfield(L, -2, "__index");
  r.ops = lua_gettop(L);
  lua_getfield(L, r.opts, "backup");
  if (lua_isstring(L, -1) && !offline) luamig_backup(&r, lua_tostring(L, -1));
  lua_pop(L, 1);

  int *cur = luamig_scratch(L, r.g->n);
  int ncur = read_start(&r, ctxidx, up, offline, from, cur);
  luamig_step *steps;
  int nsteps = luamig_plan(L, r.g, cur, ncur, target, up, &steps);
  if (up) luamig_lint_plan(&r, steps, nsteps);   /* loads what it lints: no second compile */
  for (int i = 0; i < nsteps; i++) {  /* a syntax error anywhere stops the run before any step */
    if (nsteps <= LUAMIG_KEEP_BODIES) luamig_load_body(L, r.g, r.graph, steps[i].rev);
    else luamig_check_body(L, r.g, r.graph, steps[i].rev);
  }
  if (nsteps > 0 && !offline) set_timeouts(L, &r, lua_touserdata(L, ctxidx));
  if (nsteps > 1) luamig_durable_relax(L, &r, lua_touserdata(L, ctxidx));
  if (offline) luamig_run_drain(&r, ctxidx);   /* the SET before the first step's comment */
  run_steps(&r, ctxidx, cur, ncur, steps, nsteps);
  luamig_durable_done(&r);
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

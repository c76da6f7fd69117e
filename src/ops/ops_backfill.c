/*
 * ops_backfill.c: op.backfill(table, { set =, where =, key =, batch =, sleep =,
 * schema = }), an UPDATE of a big table that never holds the application up.
 *
 * It walks the table in key order, `batch` rows at a time, each batch one
 * statement and so one short transaction of its own (the revision must be
 * transactional = false), under the session's lock_timeout. A batch that
 * times out waiting for a row lock (or loses a deadlock) is tried again after
 * a pause: the application's writes wait at most for one batch. A run killed
 * half-way loses at most the batch under way; running it again walks from the
 * start and finds exactly the rows WHERE still matches. Offline (--sql), the
 * same batch statement loops in a DO block that commits after each batch.
 *
 * The runner binds a context to its run (user value 4): the log function
 * (progress on a terminal, the final count), the audit log the count goes to,
 * and the revision running.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luamig.h"
#include "ops.h"

#define MAX_BATCH 1000000
#define RETRIES 10                   /* lock timeouts and deadlocks in a row, per batch */
#define PROGRESS_MS 200              /* at most this often */

typedef struct backfill {
  const char *table, *key;           /* quoted (anchored on the stack) */
  const char *key_name;              /* as written */
  const char *set, *where;           /* SQL text; where is "true" when not given */
  const char *label;                 /* [schema.]table as written, for messages */
  lua_Integer batch;
  double sleep_ms;
} backfill;

/* ---- binding a context to its run ---- */

/* Pushes the context's run table (user value 4), made when missing. */
static void push_run(lua_State *L, int ctxidx) {
  if (lua_getiuservalue(L, ctxidx, 4) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, ctxidx, 4);
}

void luamig_opctx_bind_run(lua_State *L, int ctxidx, int opts, const luamig_vtable *vt) {
  ctxidx = lua_absindex(L, ctxidx);
  push_run(L, ctxidx);
  lua_getfield(L, opts, "log");
  lua_setfield(L, -2, "log");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_quote_qualified(L, &b, vt->schema, vt->log_name);
  luaL_pushresult(&b);
  lua_setfield(L, -2, "audit");
  lua_pop(L, 1);
}

void luamig_opctx_bind_revision(lua_State *L, int ctxidx, const char *rev) {
  push_run(L, lua_absindex(L, ctxidx));
  lua_pushstring(L, rev);
  lua_setfield(L, -2, "revision");
  lua_pop(L, 1);
}

/* Pushes field k of the run table (nil when the context is unbound); returns its type. */
static int push_run_field(lua_State *L, const char *k) {
  if (lua_getiuservalue(L, lua_upvalueindex(1), 4) != LUA_TTABLE) return LUA_TNIL;
  int t = lua_getfield(L, -1, k);
  lua_remove(L, -2);
  return t;
}

/* The run table's field k as a string, or NULL; the table keeps it. */
static const char *run_field(lua_State *L, const char *k) {
  const char *s = push_run_field(L, k) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1);
  return s;
}

/* log(event, text) of the run, when it has one. */
static void run_log(lua_State *L, const char *event, const char *text) {
  if (push_run_field(L, "log") != LUA_TFUNCTION) { lua_pop(L, 1); return; }
  lua_pushstring(L, event);
  lua_pushstring(L, text);
  lua_pushnumber(L, 0);
  lua_call(L, 3, 0);
}

/* ---- the arguments ---- */

/* opts[k] as SQL text meant as one expression (pushed), or NULL (nothing pushed). */
static const char *opt_fragment(lua_State *L, const char *what, const char *k,
                                const char *expected) {
  if (!luamig_push_opt_string(L, what, 2, k, expected)) return NULL;
  const char *s = lua_tostring(L, -1), *why = luamig_sql_fragment_problem(s);
  if (why) luamig_op_error(L, what, "%s: %s", k, why);
  if (strspn(s, " \t\r\n\f\v") == lua_rawlen(L, -1)) luamig_op_error(L, what, "%s: empty SQL", k);
  return s;
}

static void read_args(lua_State *L, const char *what, backfill *bf) {
  if (lua_gettop(L) > 2)
    luamig_op_error(L, what, "takes at most 2 arguments (got %d)", lua_gettop(L));
  lua_settop(L, 2);
  if (!lua_istable(L, 2))
    luamig_op_error(L, what, "needs its options: op.backfill(table, { set = \"col = expr\", "
                    "where = \"col IS NULL\" })");
  luamig_op_check(L, &(luamig_opcall){ lua_touserdata(L, lua_upvalueindex(2)), what, 1 });
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_add_relation(L, &b, what, 1, 2, "table name");
  luaL_pushresult(&b);
  bf->table = lua_tostring(L, -1);
  bf->label = lua_tostring(L, 1);
  if (luamig_push_opt(L, 2, "schema") == LUA_TSTRING)
    bf->label = lua_pushfstring(L, "%s.%s", lua_tostring(L, -1), bf->label);
  bf->set = opt_fragment(L, what, "set", "SQL text (\"col = expr\")");
  if (bf->set == NULL) luamig_op_error(L, what, "set is required: { set = \"col = expr\" }");
  bf->where = opt_fragment(L, what, "where", "SQL text (\"col IS NULL\")");
  if (bf->where == NULL) bf->where = "true";
  const char *key = "id";
  if (luamig_push_opt_string(L, what, 2, "key", "a column name")) key = lua_tostring(L, -1);
  luaL_buffinit(L, &b);
  luamig_add_ident(L, &b, what, "key", key, strlen(key));
  luaL_pushresult(&b);
  bf->key = lua_tostring(L, -1);
  bf->key_name = key;
  bf->batch = 1000;
  if (luamig_push_opt(L, 2, "batch") != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > MAX_BATCH)
      luamig_op_error(L, what, "batch must be a whole number of rows from 1 to %d (got %s)",
                      MAX_BATCH, luaL_tolstring(L, -1, NULL));
    bf->batch = lua_tointeger(L, -1);
  }
  bf->sleep_ms = 0;
  int t = luamig_push_opt(L, 2, "sleep");
  if (t != LUA_TNIL &&
      (t != LUA_TSTRING || !luamig_parse_duration(lua_tostring(L, -1), &bf->sleep_ms)))
    luamig_op_error(L, what, "sleep must be a duration such as \"50ms\" or \"1s\" (got %s)",
                    luaL_tolstring(L, -1, NULL));
}

/* ---- the statement ---- */

/* Pushes the statement of one batch: the next `batch` rows after the key
 * `after` (NULL: from the start; "$1" live, a variable in the DO block) that
 * WHERE matches, updated where WHERE still matches (a row the application
 * changed meanwhile is left as it made it). Its own names start with luamig_,
 * out of the way of the names in SET and WHERE. The rows are picked in key order
 * and updated through `= ANY (ARRAY(...))`, which the planner answers with
 * index lookups, never a scan of the table. Answers picked (0: the end),
 * last (the cursor) and done (rows updated). */
static const char *push_batch_sql(lua_State *L, const backfill *bf, const char *after) {
  const char *bound = after ? lua_pushfstring(L, "%s > %s AND ", bf->key, after)
                            : lua_pushfstring(L, "%s IS NOT NULL AND ", bf->key);
  const char *sql = lua_pushfstring(L,
    "WITH luamig_batch AS MATERIALIZED (SELECT %s AS luamig_k FROM %s WHERE %s(%s) ORDER BY %s "
    "LIMIT %I), luamig_done AS (UPDATE %s SET %s WHERE %s = ANY (ARRAY(SELECT luamig_k FROM "
    "luamig_batch)) AND (%s) RETURNING 1) SELECT (SELECT count(*) FROM luamig_batch) AS picked, "
    "(SELECT luamig_k FROM luamig_batch ORDER BY luamig_k DESC LIMIT 1) AS last, "
    "(SELECT count(*) FROM luamig_done) AS done",
    bf->key, bf->table, bound, bf->where, bf->key, bf->batch,
    bf->table, bf->set, bf->key, bf->where);
  lua_remove(L, -2);
  return sql;
}

/* The row the audit log gets for the final count: "backfill <table>: N rows". */
static const char *push_direction(lua_State *L, const backfill *bf, long long rows) {
  lua_pushfstring(L, "backfill %s: ", bf->label);
  const char *one = luamig_push_oneline(L, lua_tostring(L, -1), lua_rawlen(L, -1));
  lua_pushfstring(L, "%s%I rows", one, (lua_Integer)rows);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return lua_tostring(L, -1);
}

/* ---- offline: a DO block ---- */

/* Pushes the DO block that does what the live op does: the batch statement in
 * a loop, COMMIT after each batch (PostgreSQL 11+, when the script runs outside
 * a transaction block, as psql runs it), lock timeouts tried again, and the
 * audit row with the count. */
static const char *push_do_block(lua_State *L, const backfill *bf, const char *audit,
                                 const char *rev) {
  int top = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "DECLARE\n  luamig_last %s.%s%%TYPE;\n  luamig_picked bigint;\n"
                  "  luamig_done bigint;\n  luamig_total bigint := 0;\n  luamig_tries int := 0;\n"
                  "BEGIN\n  LOOP\n    BEGIN\n      IF luamig_last IS NULL THEN\n        ",
                  bf->table, bf->key);
  luaL_addvalue(&b);
  push_batch_sql(L, bf, NULL);
  luaL_addvalue(&b);
  luaL_addstring(&b, "\n          INTO luamig_picked, luamig_last, luamig_done;\n"
                    "      ELSE\n        ");
  push_batch_sql(L, bf, "luamig_last");
  luaL_addvalue(&b);
  lua_pushfstring(L, "\n          INTO luamig_picked, luamig_last, luamig_done;\n      END IF;\n"
                  "    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN\n"
                  "      luamig_tries := luamig_tries + 1;\n"
                  "      IF luamig_tries > %d THEN RAISE; END IF;\n"
                  "      PERFORM pg_sleep(least(0.1 * 2 ^ (luamig_tries - 1), 2));\n"
                  "      CONTINUE;\n    END;\n    luamig_tries := 0;\n"
                  "    EXIT WHEN luamig_picked = 0;\n"
                  "    luamig_total := luamig_total + luamig_done;\n    COMMIT;\n", RETRIES);
  luaL_addvalue(&b);
  if (bf->sleep_ms > 0) {
    char secs[32];
    snprintf(secs, sizeof secs, "%.3f", bf->sleep_ms / 1000);
    lua_pushfstring(L, "    PERFORM pg_sleep(%s);\n", secs);
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, "  END LOOP;\n");
  if (audit && rev) {
    lua_pushfstring(L, "  INSERT INTO %s (revision, direction, luamig_version) VALUES (", audit);
    luaL_addvalue(&b);
    luamig_quote_literal(&b, rev);
    luaL_addstring(&b, ", ");
    lua_pushfstring(L, "backfill %s: ", bf->label);
    luamig_push_oneline(L, lua_tostring(L, -1), lua_rawlen(L, -1));
    lua_remove(L, -2);
    luamig_quote_literal(&b, lua_tostring(L, -1));
    lua_pop(L, 1);
    luaL_addstring(&b, " || luamig_total || ' rows', ");
    luamig_quote_literal(&b, LUAMIG_VERSION);
    luaL_addstring(&b, ");\n");
  }
  luaL_addstring(&b, "END");
  luaL_pushresult(&b);
  /* a dollar quote that the body does not contain */
  const char *body = lua_tostring(L, -1);
  const char *tag = "$luamig$";
  for (int i = 1; strstr(body, tag); i++) tag = lua_pushfstring(L, "$luamig%d$", i);
  lua_pushfstring(L, "DO %s\n%s\n%s", tag, body, tag);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return lua_tostring(L, -1);
}

/* ---- live ---- */

typedef struct batch_result { long long picked, done; } batch_result;

/* (ctx, sql, after, result) -> the last key picked (nil when none) */
static int query_protected(lua_State *L) {
  luamig_opctx *ctx = lua_touserdata(L, 1);
  const char *after = lua_tostring(L, 3);
  batch_result *out = lua_touserdata(L, 4);
  const PGresult *res = luamig_query_result(L, ctx->conn, lua_tostring(L, 2), after ? 1 : 0,
                                            &after);
  out->picked = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  out->done = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
  if (PQgetisnull(res, 0, 1)) lua_pushnil(L);
  else lua_pushstring(L, PQgetvalue(res, 0, 1));
  return 1;
}

/* Runs one batch (after: the cursor, NULL at the start), tried again after a
 * lock timeout or a deadlock; pushes the new cursor (nil at the end). */
static void run_batch(lua_State *L, luamig_opctx *ctx, const char *what, const char *sql,
                      const char *after, batch_result *out) {
  for (int tries = 0;; tries++) {
    double t0 = luamig_now_ms();
    lua_pushcfunction(L, query_protected);
    lua_pushlightuserdata(L, ctx);
    lua_pushstring(L, sql);
    if (after) lua_pushstring(L, after);
    else lua_pushnil(L);
    lua_pushlightuserdata(L, out);
    int status = lua_pcall(L, 4, 1, 0);
    luamig_budget_pause(L, luamig_now_ms() - t0);   /* the server's time is not the revision's */
    if (status == LUA_OK) return;
    const char *msg = lua_tostring(L, -1);
    bool again = msg && (strncmp(msg, "55P03:", 6) == 0 || strncmp(msg, "40P01:", 6) == 0);
    if (!again || tries >= RETRIES)
      luamig_op_error(L, what, "%s%s", msg ? msg : "error",
                      again ? lua_pushfstring(L, " (given up after %d tries)", RETRIES + 1) : "");
    lua_pop(L, 1);
    double ms = 100.0 * (1 << tries);
    if (ms > 2000) ms = 2000;
    nanosleep(&(struct timespec){ (time_t)(ms / 1000), ((long)ms % 1000) * 1000000L }, NULL);
    luamig_budget_pause(L, ms);
  }
}

/* The table's estimated rows (pg_class.reltuples), or -1 when never counted.
 * Raises unless the key is unique (one column of a unique index): the cursor
 * would skip the rows that share the key a batch ends on. A table that is not
 * there is left to the first batch, to fail with the server's words. */
static double estimate(lua_State *L, luamig_opctx *ctx, const char *what, const backfill *bf) {
  const char *p[2] = { bf->table, bf->key_name };
  int n = luamig_query(L, ctx->conn, "SELECT c.reltuples::float8 AS n, EXISTS (SELECT FROM "
    "pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
    "AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1 "
    "AND i.indpred IS NULL AND a.attname = $2) AS unique FROM pg_catalog.pg_class c "
    "WHERE c.oid = pg_catalog.to_regclass($1)", 2, p);
  double v = -1;
  if (n == 1) {
    lua_geti(L, -1, 1);
    lua_getfield(L, -1, "n");
    v = lua_tonumber(L, -1);
    lua_getfield(L, -2, "unique");
    if (!lua_toboolean(L, -1))
      luamig_op_error(L, what, "key \"%s\" of %s is not unique (no unique index on that "
                      "column alone): batches walk the table in key order and need a unique "
                      "key, such as the primary key (key = \"id\")", bf->key_name, bf->label);
    lua_pop(L, 3);
  }
  lua_pop(L, 1);
  return v > 0 ? v : -1;
}

/* "users: 120000 of ~1000000 rows, 45000 rows/s, ETA 19 s" to the run's log. */
static void progress(lua_State *L, const backfill *bf, long long rows, double est, double ms) {
  double rate = ms > 0 ? rows * 1000.0 / ms : 0;
  char buf[160];
  if (est > 0 && rate > 0)
    snprintf(buf, sizeof buf, "%lld of ~%.0f rows, %.0f rows/s, ETA %.0f s", rows, est, rate,
             est > rows ? (est - (double)rows) / rate : 0.0);
  else
    snprintf(buf, sizeof buf, "%lld rows, %.0f rows/s", rows, rate);
  lua_pushfstring(L, "backfill %s: %s", bf->label, buf);
  run_log(L, "progress", lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* Live: the batches, then the count to the log and the audit log; returns it. */
static long long run_live(lua_State *L, luamig_opctx *ctx, const char *what, const backfill *bf) {
  int top = lua_gettop(L);
  const char *first = push_batch_sql(L, bf, NULL), *next = push_batch_sql(L, bf, "$1");
  double est = estimate(L, ctx, what, bf), t0 = luamig_now_ms(), shown = t0;
  long long rows = 0, batches = 0;
  const char *after = NULL;
  int cursor = lua_gettop(L) + 1;
  lua_pushnil(L);
  for (;;) {
    batch_result res;
    run_batch(L, ctx, what, after ? next : first, after, &res);
    lua_replace(L, cursor);          /* the new cursor, anchored for the next batch */
    after = lua_tostring(L, cursor);
    if (res.picked == 0 || after == NULL) break;
    rows += res.done;
    batches++;
    double now = luamig_now_ms();
    if (now - shown >= PROGRESS_MS) { progress(L, bf, rows, est, now - t0); shown = now; }
    if (bf->sleep_ms > 0) {
      nanosleep(&(struct timespec){ (time_t)(bf->sleep_ms / 1000),
                                    (long)(bf->sleep_ms * 1e6) % 1000000000L }, NULL);
      luamig_budget_pause(L, bf->sleep_ms);
    }
  }
  double secs = (luamig_now_ms() - t0) / 1000;
  char took[32];
  snprintf(took, sizeof took, "%.1f", secs);
  run_log(L, "info", lua_pushfstring(L, "\n  backfill %s: %I rows in %I batches, %s s", bf->label,
                                     (lua_Integer)rows, (lua_Integer)batches, took));
  const char *audit = run_field(L, "audit"), *rev = run_field(L, "revision");
  if (audit && rev) {
    char ms[32];
    snprintf(ms, sizeof ms, "%.3f", secs * 1000);
    const char *params[4] = { rev, push_direction(L, bf, rows), ms, LUAMIG_VERSION };
    lua_pushfstring(L, "INSERT INTO %s (revision, direction, duration_ms, luamig_version) "
                    "VALUES ($1, $2, $3, $4)", audit);
    luamig_op_send(L, ctx, what, lua_tostring(L, -1), 4, params, false);
  }
  lua_settop(L, top);
  return rows;
}

/* op.backfill(table, opts) -> rows updated (0 offline) */
int luamig_op_backfill(lua_State *L) {
  static const char what[] = "op.backfill";
  luamig_opctx *ctx = lua_touserdata(L, lua_upvalueindex(1));
  backfill bf;
  read_args(L, what, &bf);
  if (ctx->transactional)
    luamig_op_error(L, what, "needs a revision with transactional = false: each batch commits "
                    "on its own, so the rows it has done stay done and no lock outlives a batch");
  if (ctx->conn == NULL) {
    push_do_block(L, &bf, run_field(L, "audit"), run_field(L, "revision"));
    luamig_op_send(L, ctx, what, lua_tostring(L, -1), 0, NULL, false);
    lua_pushinteger(L, 0);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)run_live(L, ctx, what, &bf));
  return 1;
}

/*
 * sink.c: where statements go. An op context is a live connection (user
 * value 2 keeps it alive) or, offline, its script table (user value 1) of
 * statement texts for --sql; the ops (ops.c), the runner and the version
 * table all send through it, so the live run and the offline script get the
 * same statements.
 *
 * luamig_emit takes a bare context pointer (the runner and the version table
 * call it too); a weak registry map from pointer to userdata finds the
 * script table again.
 */
#include <string.h>

#include "luamig.h"
#include "ops.h"

#define CTX_INDEX "luamig.opctx.index"   /* registry: ctx pointer -> ctx userdata (weak) */

/* ---- contexts ---- */

static int ctx_tostring(lua_State *L) {
  luamig_opctx *ctx = luaL_checkudata(L, 1, LUAMIG_OPCTX_MT);
  if (ctx->conn != NULL) {
    lua_pushliteral(L, "luamig.opctx (live)");
  } else {
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "luamig.opctx (offline, %d statements)", (int)lua_rawlen(L, -1));
  }
  return 1;
}

static const luaL_Reg ctx_metameth[] = {
  { "__tostring", ctx_tostring },
  { NULL, NULL }
};

static void pushmeta(lua_State *L) {
  if (luaL_newmetatable(L, LUAMIG_OPCTX_MT)) luaL_setfuncs(L, ctx_metameth, 0);
}

/* Pushes the weak pointer -> context map. */
static void push_index(lua_State *L) {
  if (!luaL_getsubtable(L, LUA_REGISTRYINDEX, CTX_INDEX)) {
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
}

luamig_opctx *luamig_opctx_new(lua_State *L, int conn_idx) {
  luamig_conn *c = NULL;
  if (conn_idx != 0 && !lua_isnoneornil(L, conn_idx)) {
    conn_idx = lua_absindex(L, conn_idx);
    c = luamig_conn_check(L, conn_idx);
  }
  luamig_opctx *ctx = lua_newuserdatauv(L, sizeof *ctx, 4);
  ctx->conn = c;
  ctx->transactional = true;
  ctx->defer = false;
  pushmeta(L);
  lua_setmetatable(L, -2);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 3);
  if (c != NULL) {
    lua_pushvalue(L, conn_idx);
    lua_setiuservalue(L, -2, 2);
  }
  push_index(L);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, ctx);
  lua_pop(L, 1);
  return ctx;
}

/* Replaces the offline statement at the top with its script form: trailing
 * space trimmed, ending in ";" (on a line of its own when the statement ends
 * inside a "--" comment, which would swallow it). */
static void terminate(lua_State *L) {
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  while (n > 0 && luamig_is_space(s[n - 1])) n--;
  lua_pushlstring(L, s, n);
  lua_remove(L, -2);
  s = lua_tostring(L, -1);
  bool comment = luamig_sql_ends_in_comment(s);
  if (!comment && n > 0 && s[n - 1] == ';') return;
  lua_pushstring(L, comment ? "\n;" : ";");
  lua_concat(L, 2);
}

/* Pushes the index and the context's userdata. */
static void push_ctx(lua_State *L, luamig_opctx *ctx) {
  push_index(L);
  if (lua_rawgetp(L, -1, ctx) != LUA_TUSERDATA)
    luaL_error(L, "luamig_emit: unknown op context");
}

/* ---- the queue of a transactional revision ----
 *
 * While ctx->defer is set (a transactional revision, live), DDL does not go
 * at once: it waits in the context's user value 3 as { sql1, where1, sql2,
 * where2, ... } and leaves with the next statement that needs an answer
 * (op.execute, op.query, op.bulk_insert) or with the revision's audit row and
 * COMMIT, in one round trip. Nothing is lost by waiting: the statements run
 * in order and in the same transaction, and a failure still names the file,
 * line and op of the statement that failed. */

static int queue_len(lua_State *L, luamig_opctx *ctx) {
  push_ctx(L, ctx);
  lua_getiuservalue(L, -1, 3);
  int n = (int)lua_rawlen(L, -1) / 2;
  lua_pop(L, 3);
  return n;
}

void luamig_queue_add(lua_State *L, luamig_opctx *ctx, const char *sql, const char *what) {
  push_ctx(L, ctx);
  lua_getiuservalue(L, -1, 3);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  lua_pushstring(L, sql);
  lua_rawseti(L, -2, n + 1);
  luaL_where(L, 1);                  /* the revision's line (level 0 is the op) */
  lua_pushfstring(L, "%s: ", what);
  lua_concat(L, 2);
  lua_rawseti(L, -2, n + 2);
  lua_pop(L, 3);
}

void luamig_opctx_reset(lua_State *L, luamig_opctx *ctx) {
  ctx->defer = false;
  push_ctx(L, ctx);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 3);
  lua_pop(L, 2);
}

void luamig_flush(lua_State *L, luamig_opctx *ctx, int ntail, const luamig_stmt *tail,
                  long *counts) {
  int top = lua_gettop(L);
  push_ctx(L, ctx);
  lua_getiuservalue(L, -1, 3);
  int queue = lua_gettop(L), nq = (int)lua_rawlen(L, queue) / 2, n = nq + ntail;
  ctx->tail_at = nq;
  lua_newtable(L);                   /* emptied first: a failure leaves nothing to resend */
  lua_setiuservalue(L, queue - 1, 3);
  if (n == 0) { lua_settop(L, top); return; }
  luamig_stmt *st = lua_newuserdatauv(L, (size_t)n * sizeof *st, 0);
  const char **where = lua_newuserdatauv(L, (size_t)n * sizeof *where, 0);
  long *got = lua_newuserdatauv(L, (size_t)n * sizeof *got, 0);
  for (int i = 0; i < nq; i++) {     /* the strings stay in the queue table, on the stack */
    lua_rawgeti(L, queue, 2 * i + 1);
    lua_rawgeti(L, queue, 2 * i + 2);
    st[i] = (luamig_stmt){ lua_tostring(L, -2), 0, NULL, false };
    where[i] = lua_tostring(L, -1);
    lua_pop(L, 2);
  }
  for (int i = 0; i < ntail; i++) {
    st[nq + i] = tail[i];
    where[nq + i] = NULL;
  }
  if (ctx->conn != NULL) luamig_batch(L, ctx->conn, n, st, got, false, where);
  else luamig_emit_batch(L, ctx, n, st, got);
  for (int i = 0; counts && i < ntail; i++) counts[i] = got[nq + i];
  lua_settop(L, top);
}

long luamig_emit(lua_State *L, luamig_opctx *ctx, const char *sql,
                 int nparams, const char *const *params) {
  if (ctx->conn != NULL) return luamig_exec(L, ctx->conn, sql, nparams, params);
  push_ctx(L, ctx);
  lua_getiuservalue(L, -1, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_sql_inline(L, &b, sql, nparams, params);
  luaL_pushresult(&b);
  terminate(L);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 3);
  return 0;
}

void luamig_emit_batch(lua_State *L, luamig_opctx *ctx, int n, const luamig_stmt *st,
                       long *counts) {
  if (ctx->conn != NULL) {
    luamig_batch(L, ctx->conn, n, st, counts, false, NULL);
    return;
  }
  for (int i = 0; i < n; i++) {
    luamig_emit(L, ctx, st[i].sql, st[i].nparams, st[i].params);
    if (counts) counts[i] = 0;
  }
}

/* ---- emitting from an op: errors get the revision's position and the op ---- */

struct emit_call {
  luamig_opctx *ctx;
  const char *sql;
  int nparams;
  const char *const *params;
  bool query;                        /* push the rows (luamig_query) */
  long count;
};

static int emit_protected(lua_State *L) {
  struct emit_call *e = lua_touserdata(L, 1);
  if (e->query) {
    e->count = luamig_query(L, e->ctx->conn, e->sql, e->nparams, e->params);
    return 1;
  }
  e->count = luamig_emit(L, e->ctx, e->sql, e->nparams, e->params);
  return 0;
}

long luamig_op_send(lua_State *L, luamig_opctx *ctx, const char *what, const char *sql,
                    int nparams, const char *const *params, bool query) {
  double t0 = luamig_now_ms();       /* the server's time is not the revision's */
  if (ctx->defer && queue_len(L, ctx) > 0) luamig_flush(L, ctx, 0, NULL, NULL);
  struct emit_call e = { ctx, sql, nparams, params, query, 0 };
  lua_pushcfunction(L, emit_protected);
  lua_pushlightuserdata(L, &e);
  int status = lua_pcall(L, 1, query ? 1 : 0, 0);
  luamig_budget_pause(L, luamig_now_ms() - t0);
  if (status == LUA_OK) return e.count;
  if (status == LUA_ERRRUN && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);                /* we are the op again: level 1 is the revision */
    lua_pushfstring(L, "%s: ", what);
    lua_rotate(L, -3, -1);
    lua_concat(L, 3);
  }
  return lua_error(L);
}

long luamig_op_emit_all(lua_State *L, luamig_opctx *ctx, const char *what,
                        int nparams, const char *const *params, bool may_wait) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len), *end = s + len;
  long count = 0;
  for (const char *p = s; p <= end; p += strlen(p) + 1) {
    if (ctx->defer && may_wait) luamig_queue_add(L, ctx, p, what);
    else count += luamig_op_send(L, ctx, what, p, nparams, params, false);
  }
  lua_pop(L, 1);
  return count;
}

/* ---- module functions (for the Lua API and the specs) ---- */

/* new_context([conn [, {transactional=}]]) -> ctx: live on conn, offline
 * without; transactional = false as for a revision that sets it (the caller
 * sends no BEGIN either way). */
static int mod_new_context(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luamig_conn_check(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  int transactional = lua_istable(L, 2) ? luamig_opt_bool(L, "new_context", 2, "transactional") : -1;
  luamig_opctx *ctx = luamig_opctx_new(L, lua_isnoneornil(L, 1) ? 0 : 1);
  ctx->transactional = transactional != 0;
  return 1;
}

/* script(ctx) -> a copy of the offline statements, each ending in ";" */
static int mod_script(lua_State *L) {
  luaL_checkudata(L, 1, LUAMIG_OPCTX_MT);
  lua_getiuservalue(L, 1, 1);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

static const luaL_Reg sinklib[] = {
  { "new_context", mod_new_context },
  { "script", mod_script },
  { NULL, NULL }
};

int luamig_open_sink(lua_State *L) {
  pushmeta(L);
  lua_pop(L, 1);
  luaL_newlib(L, sinklib);
  return 1;
}

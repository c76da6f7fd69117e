/*
 * conn.c: libpq connections (statements and their errors: conn_exec.c).
 *
 * Modelled on liolib.c: the handle is a userdata created closed (pg == NULL)
 * with its metatable set before PQconnectdbParams, and one idempotent close
 * serves __gc, __close and close().
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luamig.h"
#include "db.h"

/* ---- the connection handle ---- */

/* Server messages below ERROR: NOTICEs ("relation already exists, skipping")
 * are expected chatter of IF [NOT] EXISTS and go nowhere; a WARNING is worth
 * a line on stderr, or, while c->hold_warnings is set, a place in c->warnings
 * for luamig_conn_warnings (this runs inside libpq: it must not call Lua).
 * libpq's default receiver would print them all. */
static void notice_receiver(void *arg, const PGresult *res) {
  luamig_conn *c = arg;
  const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  if (severity == NULL || strcmp(severity, "WARNING") != 0 || primary == NULL) return;
  if (!c->hold_warnings) {
    fprintf(stderr, "luamig: server warning: %s\n", primary);
  } else if (c->nwarnings < LUAMIG_HELD_WARNINGS) {
    char *copy = malloc(strlen(primary) + 1);
    if (copy != NULL) c->warnings[c->nwarnings++] = strcpy(copy, primary);
  } else {
    c->dropped_warnings++;
  }
}

static void free_warnings(luamig_conn *c) {
  for (int i = 0; i < c->nwarnings; i++) free(c->warnings[i]);
  c->nwarnings = 0;
  c->dropped_warnings = 0;
}

int luamig_conn_warnings(lua_State *L, luamig_conn *c) {
  int n = c->nwarnings;
  lua_createtable(L, n + 1, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, c->warnings[i]);
    lua_rawseti(L, -2, i + 1);
  }
  if (c->dropped_warnings > 0) {
    lua_pushfstring(L, "(%d more warnings)", c->dropped_warnings);
    lua_rawseti(L, -2, ++n);
  }
  free_warnings(c);
  return n;
}

static luamig_conn *newconn(lua_State *L);

/* After a run that stopped early with commits made with synchronous_commit off
 * (durable.c): a transaction that takes an id commits with the session's own
 * setting, and its flush takes every commit before it along. A failed
 * revision's transaction is rolled back first. Errors are ignored: the
 * connection is going away. */
static void flush_commits(PGconn *pg) {
  if (PQstatus(pg) != CONNECTION_OK || PQtransactionStatus(pg) == PQTRANS_ACTIVE) return;
  if (PQtransactionStatus(pg) != PQTRANS_IDLE) PQclear(PQexec(pg, "ROLLBACK"));
  PQclear(PQexec(pg, "BEGIN; SET LOCAL synchronous_commit TO DEFAULT; "
                     "SELECT pg_catalog.txid_current(); COMMIT"));
}

/* Reads the results of a batch sent ahead that an error left unread, so the
 * server is done writing them before the socket closes (it would log a broken
 * pipe otherwise). Bounded: 2 s. */
static void drain_ahead(luamig_conn *c) {
  double deadline = luamig_now_ms() + 2000;
  while (c->inflight_syncs > 0 && PQstatus(c->pg) == CONNECTION_OK) {
    if (PQisBusy(c->pg)) {
      double left = deadline - luamig_now_ms();
      struct pollfd p = { PQsocket(c->pg), POLLIN, 0 };
      if (left <= 0 || poll(&p, 1, (int)left + 1) <= 0 || !PQconsumeInput(c->pg)) break;
      continue;
    }
    PGresult *res = PQgetResult(c->pg);
    if (res != NULL && PQresultStatus(res) == PGRES_PIPELINE_SYNC) c->inflight_syncs--;
    PQclear(res);
  }
  c->inflight_syncs = 0;
}

void luamig_conn_close(luamig_conn *c) {
  if (c != NULL && c->pg != NULL) {
    c->ahead = NULL;
    if (c->inflight_syncs > 0) drain_ahead(c);
    PGconn *pg = c->pg;
    c->pg = NULL;                    /* closed first: never finished twice */
    if (c->unflushed) flush_commits(pg);
    c->unflushed = false;
    PQfinish(pg);
  }
  if (c != NULL) free_warnings(c);
  if (c != NULL) luamig_conn_forget_prepared(c);
}

/* ---- connecting: started early, finished when needed ----
 *
 * A new session costs the server a fork and its start-up (~5 ms here), time
 * the client can spend reading revision files. luamig_conn_start sends the
 * start-up packet without waiting (libpq's PQconnectStartParams and
 * PQconnectPoll); luamig_conn_pump moves the handshake on when the socket is
 * ready, without blocking; luamig_conn_finish waits for the rest. libpq leaves
 * connect_timeout to the caller in this mode, so finish applies it (10 s
 * unless the URL or PGCONNECT_TIMEOUT says otherwise). */

double luamig_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The connect_timeout libpq settled on, in ms; 0: wait for ever (as libpq: at
 * least 2 s). *hosts tells whether the settings list several servers. */
static double timeout_ms(PGconn *pg, bool *hosts) {
  PQconninfoOption *opts = PQconninfo(pg);
  double ms = 0;
  *hosts = false;
  for (PQconninfoOption *o = opts; o && o->keyword; o++) {
    if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && *o->val) {
      long s = strtol(o->val, NULL, 10);
      ms = s <= 0 ? 0 : (double)(s < 2 ? 2 : s) * 1e3;
    }
    if ((strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) && o->val)
      *hosts = *hosts || strchr(o->val, ',') != NULL;
  }
  PQconninfoFree(opts);
  return ms;
}

/* One move of the handshake once the socket is ready, waiting up to wait_ms. */
static void step(luamig_conn *c, int wait_ms) {
  if (c->polling == PGRES_POLLING_OK || c->polling == PGRES_POLLING_FAILED) return;
  struct pollfd p = { PQsocket(c->pg), c->polling == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0 };
  if (p.fd < 0) { c->polling = PGRES_POLLING_FAILED; return; }
  int n = poll(&p, 1, wait_ms);
  if (n > 0 || (n < 0 && errno != EINTR)) c->polling = PQconnectPoll(c->pg);
  if (c->polling == PGRES_POLLING_OK && c->ahead != NULL) {
    void (*send)(luamig_conn *, void *) = c->ahead;
    c->ahead = NULL;
    send(c, c->ahead_arg);
  }
}

luamig_conn *luamig_conn_start(lua_State *L, const char *url) {
  /* dbname last and expanded: settings in the URL win over these defaults */
  static const char *const keys[] = {
    "connect_timeout", "fallback_application_name", "dbname", NULL
  };
  const char *const vals[] = { "10", "luamig", (url && *url) ? url : NULL, NULL };
  luamig_conn *c = newconn(L);
  c->pg = PQconnectStartParams(keys, vals, 1);
  if (c->pg == NULL) luaL_error(L, "could not connect: out of memory");
  PQsetNoticeReceiver(c->pg, notice_receiver, c);   /* a userdata: it does not move */
  c->polling = PQstatus(c->pg) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
  if (c->polling == PGRES_POLLING_FAILED) return c;
  bool hosts;
  double t = timeout_ms(c->pg, &hosts);
  if (hosts) {
    /* libpq applies connect_timeout to each server and then tries the next
     * one only in its own blocking loop: a dead first server must not fail
     * the run, so several servers are connected to the blocking way. */
    PQfinish(c->pg);
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (c->pg == NULL) luaL_error(L, "could not connect: out of memory");
    PQsetNoticeReceiver(c->pg, notice_receiver, c);
    c->polling = PQstatus(c->pg) == CONNECTION_OK ? PGRES_POLLING_OK : PGRES_POLLING_FAILED;
    return c;
  }
  c->deadline = t > 0 ? luamig_now_ms() + t : 0;
  step(c, 0);                        /* send the start-up packet now */
  return c;
}

void luamig_conn_pump(luamig_conn *c) {
  if (c != NULL && c->pg != NULL) step(c, 0);
}

void luamig_conn_finish(lua_State *L, luamig_conn *c, const char *url) {
  bool timed_out = false;
  while (c->polling != PGRES_POLLING_OK && c->polling != PGRES_POLLING_FAILED) {
    double left = c->deadline > 0 ? c->deadline - luamig_now_ms() : -1;
    if (c->deadline > 0 && left <= 0) { timed_out = true; break; }
    step(c, left < 0 ? -1 : (int)left + 1);
  }
  if (!timed_out && PQstatus(c->pg) == CONNECTION_OK) return;
  bool given = url && *url;
  bool shown = luamig_push_redacted(L, given ? url : NULL);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (timed_out) luaL_addstring(&b, "timeout expired (connect_timeout)");
  else luamig_add_collapsed(&b, PQerrorMessage(c->pg), 0);
  luaL_pushresult(&b);
  if (!shown)      /* libpq's words may quote the part of it that is the password */
    lua_pushliteral(L, "could not connect: invalid connection string or URL (not shown: check "
                    "its syntax, and percent-encode a password's '@', '/', ':', '?', '&', '=' "
                    "and '%' as %40, %2F, %3A, %3F, %26, %3D and %25)");
  else if (!given)
    lua_pushfstring(L, "could not connect to the default server (PG* environment): %s",
                    lua_tostring(L, -1));
  else
    lua_pushfstring(L, "could not connect to %s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
  luamig_conn_close(c);
  lua_error(L);
}

luamig_conn *luamig_conn_connect(lua_State *L, const char *url) {
  luamig_conn *c = luamig_conn_start(L, url);
  luamig_conn_finish(L, c, url);
  return c;
}

/* Like liolib's tofile: a closed handle is an error for everything but close. */
luamig_conn *luamig_conn_check(lua_State *L, int idx) {
  luamig_conn *c = luaL_checkudata(L, idx, LUAMIG_CONN_MT);
  if (c->pg == NULL) luaL_error(L, "attempt to use a closed connection");
  return c;
}

/* ---- the Lua face ---- */

/* conn:exec(sql, ...) -> affected rows */
static int conn_exec(lua_State *L) {
  luamig_conn *c = luamig_conn_check(L, 1);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  luaL_argcheck(L, strlen(sql) == len, 2, "SQL contains a NUL byte");
  int n = lua_gettop(L) - 2;
  const char **p = luamig_params(L, 3, n, NULL);
  lua_pushinteger(L, luamig_exec(L, c, sql, n, p));
  return 1;
}

/* conn:query(sql, ...) -> array of rows */
static int conn_query(lua_State *L) {
  luamig_conn *c = luamig_conn_check(L, 1);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  luaL_argcheck(L, strlen(sql) == len, 2, "SQL contains a NUL byte");
  int n = lua_gettop(L) - 2;
  const char **p = luamig_params(L, 3, n, NULL);
  luamig_query(L, c, sql, n, p);
  return 1;
}

/* close(), __gc and __close: idempotent */
static int conn_close(lua_State *L) {
  luamig_conn_close(luaL_checkudata(L, 1, LUAMIG_CONN_MT));
  return 0;
}

static int conn_tostring(lua_State *L) {
  luamig_conn *c = luaL_checkudata(L, 1, LUAMIG_CONN_MT);
  if (c->pg == NULL)
    lua_pushliteral(L, "luamig.conn (closed)");
  else if (PQstatus(c->pg) != CONNECTION_OK)
    lua_pushliteral(L, "luamig.conn (lost)");
  else
    lua_pushfstring(L, "luamig.conn (%s@%s:%s/%s)", PQuser(c->pg), PQhost(c->pg),
                    PQport(c->pg), PQdb(c->pg));
  return 1;
}

static const luaL_Reg meth[] = {
  { "exec", conn_exec },
  { "query", conn_query },
  { "close", conn_close },
  { NULL, NULL }
};

static const luaL_Reg metameth[] = {
  { "__index", NULL },               /* placeholder: the methods table */
  { "__gc", conn_close },
  { "__close", conn_close },
  { "__tostring", conn_tostring },
  { NULL, NULL }
};

/* Pushes the connection metatable, creating it on first use (so a handle made
 * before luamig_open_conn still gets its __gc). */
static void pushmeta(lua_State *L) {
  if (luaL_newmetatable(L, LUAMIG_CONN_MT)) {
    luaL_setfuncs(L, metameth, 0);
    luaL_newlibtable(L, meth);
    luaL_setfuncs(L, meth, 0);
    lua_setfield(L, -2, "__index");
  }
}

static luamig_conn *newconn(lua_State *L) {
  luamig_conn *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);           /* no prepared statements, flushed */
  c->pg = NULL;                      /* closed until PQconnectStartParams returns */
  c->polling = PGRES_POLLING_FAILED;
  c->deadline = 0;
  c->hold_warnings = false;
  c->failed_at = -1;
  c->direct = false;
  c->nwarnings = c->dropped_warnings = 0;
  pushmeta(L);
  lua_setmetatable(L, -2);
  return c;
}

/* connect([url]) -> conn */
static int mod_connect(lua_State *L) {
  const char *url = luaL_optstring(L, 1, NULL);
  luamig_conn_connect(L, url);
  return 1;
}

/* redact(url) -> url with passwords as ***, or "(not shown)" */
static int mod_redact(lua_State *L) {
  luamig_push_redacted(L, luaL_checkstring(L, 1));
  return 1;
}

/* sqlstate(err) -> the SQLSTATE of the server failure err carries (see
 * luamig_sqlerror_of), or nil: the Lua API's third value. */
static int mod_sqlstate(lua_State *L) {
  luamig_sqlerror e;
  if (lua_type(L, 1) == LUA_TSTRING && luamig_sqlerror_of(L, lua_tostring(L, 1), &e) && e.sqlstate[0])
    lua_pushstring(L, e.sqlstate);
  else
    lua_pushnil(L);
  return 1;
}

static const luaL_Reg connlib[] = {
  { "connect", mod_connect },
  { "sqlstate", mod_sqlstate },
  { "redact", mod_redact },
  { NULL, NULL }
};

int luamig_open_conn(lua_State *L) {
  pushmeta(L);
  lua_pop(L, 1);
  luaL_newlib(L, connlib);
  return 1;
}

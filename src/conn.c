/*
 * conn.c: libpq connections, statements, and errors with SQLSTATE.
 *
 * Modelled on liolib.c: the handle is a userdata created closed (pg == NULL)
 * with its metatable set before PQconnectdbParams, and one idempotent close
 * serves __gc, __close and close(). A PGresult is held by a small userdata
 * from the moment it exists, so a raise at any point (out of memory while
 * converting rows) cannot leak it; errors are built on the Lua stack, the
 * result is cleared, then lua_error.
 *
 * Statements without parameters go through PQexec (the simple protocol, which
 * also runs a script of several statements); with parameters, PQexecParams
 * with every parameter as text.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "luamig.h"

#define RESULT_MT "luamig.result"
#define ERR_SQL_MAX 1024               /* bytes of a statement quoted in an error */

/* Type OIDs from pg_type.h (a server header). */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23,
       OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_NUMERIC = 1700 };

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Appends s on one line: whitespace runs become one space, the ends are
 * trimmed; past max bytes (0: no limit) it stops at a character boundary with "...". */
static void add_collapsed(luaL_Buffer *b, const char *s, size_t max) {
  bool space = false, any = false;
  size_t used = 0;
  for (; *s; s++) {
    if (is_space(*s)) { space = true; continue; }
    if (max && used >= max && ((unsigned char)*s & 0xC0) != 0x80) {
      luaL_addstring(b, " ...");
      return;
    }
    if (space && any) luaL_addchar(b, ' ');
    space = false;
    any = true;
    luaL_addchar(b, *s);
    used++;
  }
}

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

void luamig_conn_close(luamig_conn *c) {
  if (c != NULL && c->pg != NULL) {
    PGconn *pg = c->pg;
    c->pg = NULL;                    /* closed first: never finished twice */
    if (c->unflushed) luamig_durable_flush(pg);   /* a run that stopped early */
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
  else add_collapsed(&b, PQerrorMessage(c->pg), 0);
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

/* ---- C memory owned by Lua ---- */

typedef struct owned { void *p; void (*release)(void *); } owned;

static int owned_gc(lua_State *L) {
  luamig_owned_free(lua_touserdata(L, 1));
  return 0;
}

void **luamig_push_owned(lua_State *L, void (*release)(void *)) {
  owned *o = lua_newuserdatauv(L, sizeof *o, 0);
  *o = (owned){ NULL, release };
  if (luaL_newmetatable(L, "luamig.owned")) {
    lua_pushcfunction(L, owned_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return &o->p;
}

void luamig_owned_free(void **slot) {
  owned *o = (owned *)slot;          /* p is the first member */
  if (o->p != NULL) {
    void *p = o->p;
    o->p = NULL;                     /* released once, by hand or by __gc */
    o->release(p);
  }
}

/* ---- statements ---- */

typedef struct holder { PGresult *res; } holder;

static int holder_gc(lua_State *L) {
  holder *h = lua_touserdata(L, 1);
  if (h->res != NULL) {
    PGresult *res = h->res;
    h->res = NULL;
    PQclear(res);
  }
  return 0;
}

/* Pushes an empty holder. */
static holder *new_holder(lua_State *L) {
  holder *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->res = NULL;
  if (luaL_newmetatable(L, RESULT_MT)) {
    lua_pushcfunction(L, holder_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return h;
}

static void holder_clear(holder *h) {
  PQclear(h->res);
  h->res = NULL;
}

/* The schema X of "permission denied for schema X" (42501), or NULL. */
static const char *schema_denied(const char *state, const char *primary) {
  static const char prefix[] = "permission denied for schema ";
  if (state == NULL || primary == NULL || strcmp(state, "42501") != 0) return NULL;
  if (strncmp(primary, prefix, sizeof prefix - 1) != 0) return NULL;
  const char *schema = primary + sizeof prefix - 1;
  return *schema ? schema : NULL;
}

/* What to do about it (PostgreSQL 15 took CREATE on public from PUBLIC), in
 * luamig's words: which user lacks what, and the GRANT a superuser runs. */
static void add_grant_hint(lua_State *L, luaL_Buffer *b, const char *user, const char *schema,
                           const char *sql) {
  if (user == NULL || *user == '\0' || strlen(user) > LUAMIG_MAX_IDENT
      || strlen(schema) > LUAMIG_MAX_IDENT) {
    luaL_addstring(b, "HINT: the user lacks a privilege on this schema");
    return;
  }
  /* creating needs CREATE on the schema; using what is in it, USAGE */
  while (is_space(*sql)) sql++;
  bool creating = strncasecmp(sql, "CREATE", 6) == 0;
  lua_pushfstring(L, "HINT: user \"%s\" lacks the %s privilege on schema \"%s\"; as a "
                  "superuser or the schema's owner run: GRANT ALL ON SCHEMA ", user,
                  creating ? "CREATE" : "USAGE or CREATE", schema);
  luaL_addvalue(b);
  luamig_quote_ident(L, b, schema);
  luaL_addstring(b, " TO ");
  luamig_quote_ident(L, b, user);
  luaL_addchar(b, ';');
}

/* Pushes the one-line error for a failed statement; h->res may be NULL. */
static void push_error(lua_State *L, luamig_conn *c, holder *h, const char *sql) {
  const PGresult *res = h->res;
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
  const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
  bool lost = PQstatus(c->pg) == CONNECTION_BAD;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (state == NULL && lost) state = "08006";   /* connection_failure */
  if (state) { luaL_addstring(&b, state); luaL_addstring(&b, ": "); }
  if (lost) luaL_addstring(&b, "connection to the server was lost: ");
  if (primary == NULL) {             /* a client-side failure: libpq's own message */
    primary = res ? PQresultErrorMessage(res) : "";
    if (*primary == '\0') primary = PQerrorMessage(c->pg);
    if (*primary == '\0') primary = "unknown error";
  }
  add_collapsed(&b, primary, 0);
  const char *schema = schema_denied(state, primary);
  if (detail || hint || schema) {
    luaL_addstring(&b, " (");
    if (detail) { luaL_addstring(&b, "DETAIL: "); add_collapsed(&b, detail, 0); }
    if (detail && hint) luaL_addstring(&b, "; ");
    if (hint) { luaL_addstring(&b, "HINT: "); add_collapsed(&b, hint, 0); }
    if ((detail || hint) && schema) luaL_addstring(&b, "; ");
    if (schema) add_grant_hint(L, &b, PQuser(c->pg), schema, sql);
    luaL_addchar(&b, ')');
  }
  luaL_addstring(&b, "; SQL: ");
  add_collapsed(&b, sql, ERR_SQL_MAX);
  luaL_pushresult(&b);
}

/* A COPY we cannot feed or read: end it so the connection stays usable. */
static void abandon_copy(luamig_conn *c, ExecStatusType st) {
  if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
    PQputCopyEnd(c->pg, "luamig does not run COPY FROM STDIN");
  if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    char *buf;
    while (PQgetCopyData(c->pg, &buf, 0) > 0) PQfreemem(buf);
  }
  PGresult *r;
  while ((r = PQgetResult(c->pg)) != NULL) PQclear(r);
}

/* Runs sql; pushes a holder of its successful result, or raises. */
static holder *run(lua_State *L, luamig_conn *c, const char *sql, int nparams,
                   const char *const *params) {
  if (c == NULL || c->pg == NULL) luaL_error(L, "attempt to use a closed connection");
  holder *h = new_holder(L);
  h->res = nparams > 0
    ? PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0)
    : PQexec(c->pg, sql);
  ExecStatusType st = h->res ? PQresultStatus(h->res) : PGRES_FATAL_ERROR;
  switch (st) {
  case PGRES_COMMAND_OK: case PGRES_TUPLES_OK: case PGRES_EMPTY_QUERY:
    return h;
  case PGRES_COPY_IN: case PGRES_COPY_OUT: case PGRES_COPY_BOTH:
    holder_clear(h);
    abandon_copy(c, st);
    lua_pushfstring(L, "COPY to or from the client is not supported; SQL: %s", sql);
    lua_error(L);
    return NULL;
  default:
    push_error(L, c, h, sql);
    holder_clear(h);
    lua_error(L);
    return NULL;
  }
}

const PGresult *luamig_query_result(lua_State *L, luamig_conn *c, const char *sql,
                                    int nparams, const char *const *params) {
  return run(L, c, sql, nparams, params)->res;
}

int luamig_query_column(lua_State *L, luamig_conn *c, const char *sql,
                        int nparams, const char *const *params) {
  const PGresult *res = luamig_query_result(L, c, sql, nparams, params);
  int n = 0;
  lua_createtable(L, PQntuples(res), 0);
  for (int i = 0; i < PQntuples(res); i++) {
    if (PQgetisnull(res, i, 0)) continue;
    lua_pushstring(L, PQgetvalue(res, i, 0));
    lua_rawseti(L, -2, ++n);
  }
  lua_remove(L, -2);                 /* the holder: the result is cleared when collected */
  return n;
}

long luamig_exec(lua_State *L, luamig_conn *c, const char *sql,
                 int nparams, const char *const *params) {
  holder *h = run(L, c, sql, nparams, params);
  const char *n = PQcmdTuples(h->res);
  long count = *n ? strtol(n, NULL, 10) : 0;
  holder_clear(h);
  lua_pop(L, 1);
  return count;
}

/* Pushes one field as the Lua value its type suggests. */
static void push_field(lua_State *L, Oid type, const char *v, int len) {
  switch (type) {
  case OID_INT2: case OID_INT4: case OID_INT8:
    if (lua_stringtonumber(L, v) == 0) lua_pushlstring(L, v, (size_t)len);
    return;
  case OID_FLOAT4: case OID_FLOAT8: case OID_NUMERIC:
    if (lua_stringtonumber(L, v) != 0) {
      lua_Number d = lua_tonumber(L, -1);    /* "10" is still a float here */
      lua_pop(L, 1);
      lua_pushnumber(L, d);
    } else if (strcmp(v, "NaN") == 0) {
      lua_pushnumber(L, (lua_Number)NAN);
    } else if (strcmp(v, "Infinity") == 0 || strcmp(v, "-Infinity") == 0) {
      lua_pushnumber(L, v[0] == '-' ? -(lua_Number)HUGE_VAL : (lua_Number)HUGE_VAL);
    } else {
      lua_pushlstring(L, v, (size_t)len);
    }
    return;
  case OID_BOOL:
    lua_pushboolean(L, v[0] == 't');
    return;
  default:
    lua_pushlstring(L, v, (size_t)len);
  }
}

/* Pushes the rows of res as an array of { column = value } tables. */
static int push_rows(lua_State *L, const PGresult *res) {
  int nrows = PQntuples(res), ncols = PQnfields(res);
  lua_createtable(L, nrows, 0);
  for (int r = 0; r < nrows; r++) {
    lua_createtable(L, 0, ncols);
    for (int f = 0; f < ncols; f++) {
      if (PQgetisnull(res, r, f)) continue;
      push_field(L, PQftype(res, f), PQgetvalue(res, r, f), PQgetlength(res, r, f));
      lua_setfield(L, -2, PQfname(res, f));
    }
    lua_rawseti(L, -2, r + 1);
  }
  return nrows;
}

int luamig_query(lua_State *L, luamig_conn *c, const char *sql,
                 int nparams, const char *const *params) {
  holder *h = run(L, c, sql, nparams, params);
  int nrows = push_rows(L, h->res);
  holder_clear(h);
  lua_remove(L, -2);
  return nrows;
}

/* ---- batches: several statements, one round trip ----
 *
 * libpq's pipeline mode sends them all, then one Sync; the server runs them
 * in order (in one implicit transaction when none is open) and skips the
 * rest after a failure. Every result is read and the connection is back out
 * of pipeline mode before anything is raised. */

/* ---- prepared statements ----
 *
 * The statements luamig sends for every revision (the version-table move, the
 * audit row with its guard) are the same text each time: a connection keeps
 * them prepared, as luamig_G_0, luamig_G_1, ..., so the server parses each
 * once and plans it once it has settled on a generic plan. A prepared
 * statement outlives a rollback. A non-transactional revision may DISCARD
 * them: the runner then starts a new generation G (luamig_conn_forget_prepared);
 * a transactional one that runs DEALLOCATE ALL fails, and rolls back. */

/* The slot of sql among c's prepared statements, or the free slot it takes
 * (*parse set: a Parse must go first); -1 when every slot is taken. */
static int prepared_slot(luamig_conn *c, const char *sql, bool *parse) {
  *parse = false;
  for (int i = 0; i < LUAMIG_PREPARED; i++)
    if (c->prepared[i] && strcmp(c->prepared[i], sql) == 0) return i;
  for (int i = 0; i < LUAMIG_PREPARED; i++) {
    if (c->prepared[i]) continue;
    c->prepared[i] = strdup(sql);
    *parse = c->prepared[i] != NULL;
    return *parse ? i : -1;
  }
  return -1;
}

static void forget_prepared(luamig_conn *c, int slot) {
  free(c->prepared[slot]);
  c->prepared[slot] = NULL;
}

void luamig_conn_forget_prepared(luamig_conn *c) {
  for (int i = 0; i < LUAMIG_PREPARED; i++) forget_prepared(c, i);
  c->prepared_gen++;
}

/* Sends statement st: by name when it is to be prepared (its Parse first the
 * first time: its slot in *parsed, else -1), else as it is. */
static bool send_stmt(luamig_conn *c, const luamig_stmt *st, int *parsed) {
  char name[32];
  bool parse = false;
  int slot = st->prepare ? prepared_slot(c, st->sql, &parse) : -1;
  *parsed = parse ? slot : -1;
  if (slot < 0)
    return PQsendQueryParams(c->pg, st->sql, st->nparams, NULL, st->params, NULL, NULL, 0);
  snprintf(name, sizeof name, "luamig_%d_%d", c->prepared_gen, slot);
  if (parse && !PQsendPrepare(c->pg, name, st->sql, st->nparams, NULL)) {
    forget_prepared(c, slot);
    *parsed = -1;
    return false;
  }
  return PQsendQueryPrepared(c->pg, name, st->nparams, st->params, NULL, NULL, 0);
}

/* Reads the result of the Parse of statement slot (when one was sent): keeps
 * the slot when it succeeded; else returns its result (NULL: aborted). */
static PGresult *read_parse(luamig_conn *c, int slot, bool *broke) {
  PGresult *res = PQgetResult(c->pg), *end;
  if (res == NULL) { *broke = true; forget_prepared(c, slot); return NULL; }
  while ((end = PQgetResult(c->pg)) != NULL) PQclear(end);
  if (PQresultStatus(res) == PGRES_COMMAND_OK) { PQclear(res); return NULL; }
  forget_prepared(c, slot);
  if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED) { PQclear(res); return NULL; }
  return res;
}

/* Reads the results up to and including the Sync; false if the connection broke. */
static bool drain_to_sync(PGconn *pg) {
  for (int nulls = 0; nulls < 2;) {
    PGresult *res = PQgetResult(pg);
    if (res == NULL) { nulls++; continue; }
    nulls = 0;
    bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
    PQclear(res);
    if (sync) return true;
  }
  return false;
}

void luamig_batch(lua_State *L, luamig_conn *c, int n, const luamig_stmt *st, long *counts,
                  bool rows, const char *const *prefixes) {
  if (c == NULL || c->pg == NULL) luaL_error(L, "attempt to use a closed connection");
  if (rows) luaL_checkstack(L, n + LUA_MINSTACK, "too many statements in one batch");
  PGconn *pg = c->pg;
  holder *h = new_holder(L);         /* the first failure, kept for its message */
  int top = lua_gettop(L);
  c->failed_at = -1;
  if (!PQenterPipelineMode(pg)) {
    push_error(L, c, h, st[0].sql);
    lua_error(L);
  }
  int sent = 0, parsed[LUAMIG_PREPARED], nparsed = 0, parsed_at[LUAMIG_PREPARED];
  for (int slot; sent < n && send_stmt(c, &st[sent], &slot); sent++)
    if (slot >= 0) { parsed[nparsed] = slot; parsed_at[nparsed++] = sent; }
  bool ok = PQpipelineSync(pg) == 1, broke = false;
  int failed = sent < n ? sent : -1;   /* a statement libpq could not send */
  for (int i = 0, p = 0; i < sent && ok && !broke; i++) {
    if (p < nparsed && parsed_at[p] == i) {   /* its Parse, sent first */
      PGresult *pres = read_parse(c, parsed[p++], &broke);
      if (pres != NULL && failed < 0) { failed = i; h->res = pres; }
      else PQclear(pres);
      if (broke) break;
    }
    PGresult *res = PQgetResult(pg);
    if (res == NULL) { broke = true; break; }
    ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      if (counts) {
        const char *k = PQcmdTuples(res);
        counts[i] = *k ? strtol(k, NULL, 10) : 0;
      }
      if (rows) {                    /* converted now: the result is cleared at once */
        h->res = res;
        push_rows(L, res);
        holder_clear(h);
        res = NULL;
      }
    } else if (status != PGRES_PIPELINE_ABORTED && failed < 0) {
      failed = i;
      h->res = res;
      res = NULL;
    }
    PQclear(res);
    while ((res = PQgetResult(pg)) != NULL) PQclear(res);   /* end of statement i */
  }
  if (ok && !broke) ok = drain_to_sync(pg);
  PQexitPipelineMode(pg);
  if (failed < 0 && ok && !broke) {
    lua_remove(L, top);              /* the holder, under the row arrays */
    return;
  }
  lua_settop(L, top);
  int at = failed < 0 ? 0 : failed;
  c->failed_at = at;
  if (prefixes && prefixes[at]) lua_pushstring(L, prefixes[at]);
  push_error(L, c, h, st[at].sql);
  holder_clear(h);
  if (prefixes && prefixes[at]) lua_concat(L, 2);
  lua_error(L);
}

/* ---- parameters from Lua ---- */

/* Pushes a number as PostgreSQL input text: integral values without ".0",
 * others in the fewest digits that read back the same. */
static void push_number_text(lua_State *L, int idx) {
  lua_Integer i;
  if (lua_isinteger(L, idx)) {
    lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
    return;
  }
  lua_Number d = lua_tonumber(L, idx);
  if (isnan(d)) { lua_pushliteral(L, "NaN"); return; }
  if (isinf(d)) { lua_pushstring(L, d > 0 ? "Infinity" : "-Infinity"); return; }
  if (lua_numbertointeger(d, &i) && (lua_Number)i == d) {
    lua_pushfstring(L, "%I", (LUAI_UACINT)i);
    return;
  }
  char buf[64];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, (double)d);
    if (strtod(buf, NULL) == (double)d) break;
  }
  lua_pushstring(L, buf);
}

const char **luamig_params(lua_State *L, int first, int n, const char *what) {
  static const char expected[] = "nil, boolean, number or string";
  first = lua_absindex(L, first);
  if (n > 65535) {
    if (what) luaL_error(L, "%s: too many parameters (%d; at most 65535)", what, n);
    luaL_error(L, "too many parameters (%d; at most 65535)", n);
  }
  for (int i = 0; i < n; i++) {
    int idx = first + i;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
      break;
    case LUA_TBOOLEAN:
      lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
      lua_replace(L, idx);
      break;
    case LUA_TNUMBER:
      push_number_text(L, idx);
      lua_replace(L, idx);
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (strlen(s) < len) {
        if (what) luamig_op_error(L, what, "parameter %d contains a NUL byte", i + 1);
        luaL_argerror(L, idx, "contains a NUL byte");
      }
      break;
    }
    default:
      if (what) luamig_op_error(L, what, "parameter %d must be nil, a boolean, a number or "
                                "a string (got %s)", i + 1, luaL_typename(L, idx));
      luaL_typeerror(L, idx, expected);
    }
  }
  const char **p = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *p, 0);
  for (int i = 0; i < n; i++) p[i] = lua_tostring(L, first + i);  /* NULL for nil */
  return p;
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

/* quote_ident(name) -> "name" */
static int mod_quote_ident(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, strlen(name) == len, 1, "contains a NUL byte");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_quote_ident(L, &b, name);
  luaL_pushresult(&b);
  return 1;
}

static const luaL_Reg connlib[] = {
  { "connect", mod_connect },
  { "redact", mod_redact },
  { "quote_ident", mod_quote_ident },
  { NULL, NULL }
};

int luamig_open_conn(lua_State *L) {
  pushmeta(L);
  lua_pop(L, 1);
  luaL_newlib(L, connlib);
  return 1;
}

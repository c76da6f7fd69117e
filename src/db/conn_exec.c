/*
 * conn_exec.c: statements on a connection, and errors with SQLSTATE.
 *
 * A PGresult is held by a small userdata from the moment it exists, so a raise
 * at any point (out of memory while converting rows) cannot leak it; errors are
 * built on the Lua stack, the result is cleared, then lua_error.
 *
 * Statements without parameters go through PQexec (the simple protocol, which
 * also runs a script of several statements); with parameters, PQexecParams
 * with every parameter as text.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "luamig.h"
#include "db.h"

#define RESULT_MT "luamig.result"
#define ERR_SQL_MAX 1024               /* bytes of a statement quoted in an error */
#define LAST_ERROR "luamig.sqlerror"   /* registry: { text, sqlstate, primary } of the last
                                          statement failure raised */

/* Type OIDs from pg_type.h (a server header). */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23,
       OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_NUMERIC = 1700 };

/* Appends s on one line: whitespace runs become one space, the ends are
 * trimmed; past max bytes (0: no limit) it stops at a character boundary with "...". */
void luamig_add_collapsed(luaL_Buffer *b, const char *s, size_t max) {
  bool space = false, any = false;
  size_t used = 0;
  for (; *s; s++) {
    if (luamig_is_space(*s)) { space = true; continue; }
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
  while (luamig_is_space(*sql)) sql++;
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

/* Keeps the failure whose text is at the top as data (its SQLSTATE and
 * primary message may be NULL) for luamig_sqlerror_of. */
static void record_error(lua_State *L, const char *state, const char *primary) {
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "text");
  lua_pushstring(L, state);
  lua_setfield(L, -2, "sqlstate");
  lua_pushstring(L, primary);
  lua_setfield(L, -2, "primary");
  lua_setfield(L, LUA_REGISTRYINDEX, LAST_ERROR);
}

/* The record's field key as a C string into out (size bytes, cut there); "" when absent. */
static void copy_field(lua_State *L, int t, const char *key, char *out, size_t size) {
  lua_getfield(L, t, key);
  const char *v = lua_tostring(L, -1);
  snprintf(out, size, "%s", v ? v : "");
  lua_pop(L, 1);
}

bool luamig_sqlerror_of(lua_State *L, const char *err, luamig_sqlerror *e) {
  int top = lua_gettop(L);
  bool found = false;
  if (err != NULL && lua_getfield(L, LUA_REGISTRYINDEX, LAST_ERROR) == LUA_TTABLE) {
    lua_getfield(L, -1, "text");
    found = strstr(err, lua_tostring(L, -1)) != NULL;   /* that failure, or a wrapping of it */
    if (found) {
      copy_field(L, top + 1, "sqlstate", e->sqlstate, sizeof e->sqlstate);
      copy_field(L, top + 1, "primary", e->primary, sizeof e->primary);
    }
  }
  lua_settop(L, top);
  return found;
}

/* Pushes the one-line error for a failed statement (and records it); h->res may be NULL. */
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
  luamig_add_collapsed(&b, primary, 0);
  const char *schema = schema_denied(state, primary);
  if (detail || hint || schema) {
    luaL_addstring(&b, " (");
    if (detail) { luaL_addstring(&b, "DETAIL: "); luamig_add_collapsed(&b, detail, 0); }
    if (detail && hint) luaL_addstring(&b, "; ");
    if (hint) { luaL_addstring(&b, "HINT: "); luamig_add_collapsed(&b, hint, 0); }
    if ((detail || hint) && schema) luaL_addstring(&b, "; ");
    if (schema) add_grant_hint(L, &b, PQuser(c->pg), schema, sql);
    luaL_addchar(&b, ')');
  }
  luaL_addstring(&b, "; SQL: ");
  luamig_add_collapsed(&b, sql, ERR_SQL_MAX);
  luaL_pushresult(&b);
  record_error(L, state, res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL);
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

/* The results of the m statements sent after the batch's own Sync, of the
 * mall of luamig_batch_tail: pushes an array of their row arrays, or nil when
 * one failed or was not sent. */
static void read_tail(lua_State *L, luamig_conn *c, holder *h, int m, int mall, bool *ok) {
  bool failed = !*ok || m < mall;
  lua_createtable(L, m, 0);
  for (int i = 0; i < m && *ok; i++) {
    PGresult *res = PQgetResult(c->pg);
    if (res == NULL) { *ok = false; break; }
    if (PQresultStatus(res) == PGRES_TUPLES_OK && !failed) {
      h->res = res;
      push_rows(L, res);
      lua_rawseti(L, -2, i + 1);
      holder_clear(h);
    } else {
      failed = true;
      PQclear(res);
    }
    while ((res = PQgetResult(c->pg)) != NULL) PQclear(res);
  }
  if (*ok) *ok = drain_to_sync(c->pg);
  if (failed || !*ok) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

void luamig_batch_send(luamig_conn *c, luamig_pending *p, int n, const luamig_stmt *st, int m,
                       const luamig_stmt *tail) {
  PGconn *pg = c->pg;
  memset(p, 0, sizeof *p);
  p->n = n;
  p->m = m;
  p->entered = PQenterPipelineMode(pg) == 1;
  if (!p->entered) return;
  for (int slot; p->sent < n && luamig_prepared_send(c, &st[p->sent], &slot); p->sent++)
    if (slot >= 0) { p->parsed[p->nparsed] = slot; p->parsed_at[p->nparsed++] = p->sent; }
  p->ok = PQpipelineSync(pg) == 1;
  while (p->ok && p->tsent < m && PQsendQueryParams(pg, tail[p->tsent].sql, tail[p->tsent].nparams,
                                                    NULL, tail[p->tsent].params, NULL, NULL, 0))
    p->tsent++;
  if (m > 0 && p->ok) p->ok = PQpipelineSync(pg) == 1;
  c->inflight_syncs = p->ok ? 1 + (m > 0) : 0;
}

void luamig_batch_recv(lua_State *L, luamig_conn *c, luamig_pending *p, const luamig_stmt *st,
                       long *counts, bool rows, const char *const *prefixes) {
  if (rows) luaL_checkstack(L, p->n + LUA_MINSTACK, "too many statements in one batch");
  PGconn *pg = c->pg;
  holder *h = new_holder(L);         /* the first failure, kept for its message */
  int top = lua_gettop(L);
  c->failed_at = -1;
  c->inflight_syncs = 0;
  if (!p->entered) {
    push_error(L, c, h, st[0].sql);
    lua_error(L);
  }
  bool ok = p->ok, broke = false;
  int failed = p->sent < p->n ? p->sent : -1;   /* a statement libpq could not send */
  for (int i = 0, k = 0; i < p->sent && ok && !broke; i++) {
    if (k < p->nparsed && p->parsed_at[k] == i) {   /* its Parse, sent first (prepared.c) */
      PGresult *pres = luamig_prepared_parsed(c, p->parsed[k++], &broke);
      if (pres != NULL && failed < 0) { failed = i; h->res = pres; }
      else PQclear(pres);
      if (broke) break;
    }
    PGresult *res = PQgetResult(pg);
    if (res == NULL) { broke = true; break; }
    ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      if (counts) {
        const char *n = PQcmdTuples(res);
        counts[i] = *n ? strtol(n, NULL, 10) : 0;
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
  if (p->m > 0) {                    /* a failure there is the caller's to handle, not raised */
    bool tail_read = ok && !broke;
    read_tail(L, c, failed < 0 ? h : new_holder(L), p->tsent, p->m, &tail_read);
    ok = ok && tail_read;
  }
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

/* luamig_batch, and after its Sync the m statements of tail (0: none). */
static void batch(lua_State *L, luamig_conn *c, int n, const luamig_stmt *st, long *counts,
                  bool rows, const char *const *prefixes, int m, const luamig_stmt *tail) {
  if (c == NULL || c->pg == NULL) luaL_error(L, "attempt to use a closed connection");
  luamig_pending p;
  luamig_batch_send(c, &p, n, st, m, tail);
  luamig_batch_recv(L, c, &p, st, counts, rows, prefixes);
}

void luamig_batch(lua_State *L, luamig_conn *c, int n, const luamig_stmt *st, long *counts,
                  bool rows, const char *const *prefixes) {
  batch(L, c, n, st, counts, rows, prefixes, 0, NULL);
}

void luamig_batch_tail(lua_State *L, luamig_conn *c, int n, const luamig_stmt *st, int m,
                       const luamig_stmt *tail) {
  batch(L, c, n, st, NULL, true, NULL, m, tail);
  if (m == 0) lua_pushnil(L);
}

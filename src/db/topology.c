/*
 * topology.c: where a migration is about to run. upgrade, downgrade and
 * stamp refuse two places up front, in the round trip that takes the
 * migration lock (so a normal run pays nothing for the check):
 *
 * - a hot standby (pg_is_in_recovery()): it takes no writes, so the run
 *   would fail at its first statement; current, history and status still
 *   work there.
 * - a connection pooler such as PgBouncer, found by the backend pid: libpq
 *   is told one at start-up (BackendKeyData), and a pooler announces its
 *   own, so pg_backend_pid() differs. The session-level lock is only safe
 *   when the pool keeps one server session for the whole run (session
 *   pooling); in transaction pooling it would stay on a server connection
 *   other clients get, and luamig's later transactions would run without
 *   it. No probe tells the two modes apart: with no other client about, a
 *   transaction pool hands the same server back every time (its pid and
 *   session settings survive), and the danger only shows once another
 *   client takes it. So a pool must be vouched for: direct_url names the
 *   server itself or a session-mode pool, and migrations go through it.
 */
#include <stdio.h>

#include "luamig.h"

const char *luamig_topology_pid(const luamig_conn *c, char buf[16]) {
  if (c->direct) return NULL;
  snprintf(buf, 16, "%d", PQbackendPID(c->pg));
  return buf;
}

/* "host:port" of the server the connection reached (a socket directory for host). */
static const char *push_server(lua_State *L, luamig_conn *c) {
  return lua_pushfstring(L, "%s:%s", PQhost(c->pg), PQport(c->pg));
}

void luamig_topology_check(lua_State *L, luamig_conn *c, int idx) {
  lua_geti(L, idx, 1);
  lua_getfield(L, -1, "standby");
  lua_getfield(L, -2, "pooled");
  bool standby = lua_toboolean(L, -2), pooled = lua_toboolean(L, -1);
  lua_pop(L, 3);
  if (standby)
    luaL_error(L, "the server is a read-only standby (%s is in recovery): upgrade, downgrade "
               "and stamp must run on the primary; point the URL at it, or list both servers "
               "with target_session_attrs=read-write", push_server(L, c));
  if (pooled)
    luaL_error(L, "the connection to %s goes through a connection pooler such as PgBouncer (the "
               "server's backend pid is not the one announced at start-up), where the migration "
               "lock is unsafe in transaction pooling; set direct_url in luamig.lua or "
               "--direct-url to the server itself, or to a session-mode pool (this same URL if "
               "it is one); nothing was changed", push_server(L, c));
}

/*
 * lock.c: one PostgreSQL advisory lock per version table. Session-level, so
 * it outlives the per-revision transactions and is dropped by the server if
 * the process dies. The wait is bounded (lock_wait), so a stuck holder gives
 * a clear error instead of a hang.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "luamig.h"

void luamig_lock_halves(const luamig_vtable *vt, char hi[16], char lo[16]) {
  uint64_t k = (uint64_t)vt->lock_key;
  snprintf(hi, 16, "%u", (unsigned)(k >> 32));
  snprintf(lo, 16, "%u", (unsigned)(k & 0xffffffffu));
}

static const char *push_key(lua_State *L, const luamig_vtable *vt) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", vt->lock_key);
  return lua_pushstring(L, buf);
}

/* The first try, in one round trip and one implicit transaction: where the
 * connection went (topology.c: neither a standby nor a pooler may take the
 * lock, and the refusal is raised here), the session's dead-client check
 * (PostgreSQL 14+ then notices a killed run during a long statement and
 * rolls back at once, freeing its locks in a second), then the lock, if it
 * is free (exclusive, then shared: see luamig.h). The key is the server's
 * hash of "luamig:" + schema + "." + table, the schema the table is in
 * (current_schema() when the config names none): "public" written in the
 * config and left to the search path take the same lock, with no round trip
 * more. Sets vt->lock_key; returns whether it was taken. */
static bool first_try(lua_State *L, luamig_conn *c, luamig_vtable *vt) {
  int top = lua_gettop(L);
  const char *pid = luamig_topology_pid(L, c);
  const char *lock_params[3] = { vt->name, pid, vt->schema };
  luamig_stmt st[] = {
    { LUAMIG_TOPOLOGY_SQL, 1, &pid, false },
    { luamig_sql_check_interval, 1, &pid, false },
    { luamig_sql_lock_first, 3, lock_params, false },
    { NULL, 0, NULL, false },        /* whether the version table and the log exist */
  };
  int n = 3;
  luamig_vtable_probe_add(L, vt, st, &n);
  luamig_batch(L, c, n, st, NULL, true, NULL);
  luamig_vtable_probed(L, vt, -1);
  lua_pop(L, 1);
  luamig_topology_check(L, c, -3);
  lua_geti(L, -1, 1);
  lua_getfield(L, -1, "k");
  vt->lock_key = (long long)lua_tointeger(L, -1);   /* int8: a Lua integer */
  lua_getfield(L, -2, "locked");
  bool locked = lua_toboolean(L, -1);
  lua_settop(L, top);
  return locked;
}

/* Waiting is a try every 100 ms, not pg_advisory_lock blocked in a
 * statement: a blocked statement holds a snapshot, and a CREATE INDEX
 * CONCURRENTLY in the holder's run waits for every older snapshot to go,
 * a deadlock the server ends by failing one of the two runs. */
void luamig_lock_acquire(lua_State *L, luamig_conn *c, luamig_vtable *vt, double wait_s) {
  int top = lua_gettop(L);
  double deadline = luamig_now_ms() + wait_s * 1000;
  bool locked = first_try(L, c, vt), first = locked;
  const char *key = push_key(L, vt);
  while (!locked) {
    double left = deadline - luamig_now_ms();
    if (left <= 0) break;
    long ms = left < 100 ? (long)left + 1 : 100;
    nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L }, NULL);
    locked = luamig_exec(L, c, luamig_sql_lock_try, 1, &key) == 1;
  }
  vt->probed = vt->probed && first;  /* another run may have made the tables meanwhile */
  if (locked) { lua_settop(L, top); return; }

  /* timed out: name who holds it (the key's high and low halves are classid and objid) */
  char hi[16], lo[16];
  luamig_lock_halves(vt, hi, lo);
  const char *p[2] = { hi, lo };
  int n = luamig_query(L, c, luamig_sql_lock_holder, 2, p);
  if (n == 0)
    luaL_error(L, "could not take the migration lock within %d s (its holder has just "
               "gone: run again)", (int)(wait_s + 0.5));
  lua_geti(L, -1, 1);
  lua_getfield(L, -1, "pid");
  lua_getfield(L, -2, "app");
  lua_getfield(L, -3, "state");
  lua_getfield(L, -4, "usr");
  luaL_error(L, "could not take the migration lock within %d s: it is held by pid %s "
             "(application '%s', user %s, %s); another migration is running, or that "
             "session is stuck (--lock-wait SECONDS waits longer)", (int)(wait_s + 0.5),
             lua_tostring(L, -4), lua_tostring(L, -3), lua_tostring(L, -1),
             lua_tostring(L, -2));
}

void luamig_lock_release(lua_State *L, luamig_conn *c, const luamig_vtable *vt) {
  const char *key = push_key(L, vt);
  luamig_exec(L, c, luamig_sql_lock_release, 1, &key);
  lua_pop(L, 1);
}

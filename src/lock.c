/*
 * lock.c: one PostgreSQL advisory lock per version table. Session-level, so
 * it outlives the per-revision transactions and is dropped by the server if
 * the process dies.
 */
#include <stdint.h>
#include <stdio.h>

#include "luamig.h"

/* A stable 64-bit key: FNV-1a of "luamig:" + schema + "." + table. */
static void push_key(lua_State *L, const luamig_vtable *vt) {
  uint64_t h = 1469598103934665603ull;
  const char *parts[] = { "luamig:", vt->schema ? vt->schema : "", ".", vt->name };
  for (int i = 0; i < 4; i++)
    for (const char *s = parts[i]; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", (long long)(int64_t)h);
  lua_pushstring(L, buf);
}

void luamig_lock_acquire(lua_State *L, luamig_conn *c, const luamig_vtable *vt) {
  push_key(L, vt);
  const char *key = lua_tostring(L, -1);
  luamig_exec(L, c, "SELECT pg_advisory_lock($1::bigint)", 1, &key);
  lua_pop(L, 1);
}

void luamig_lock_release(lua_State *L, luamig_conn *c, const luamig_vtable *vt) {
  push_key(L, vt);
  const char *key = lua_tostring(L, -1);
  luamig_exec(L, c, "SELECT pg_advisory_unlock($1::bigint)", 1, &key);
  lua_pop(L, 1);
}

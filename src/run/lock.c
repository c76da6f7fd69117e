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
 * lock, and the refusal is raised here), then the lock, if it is free
 * (exclusive, then shared: see include/luamig_run.h). The key is the
 * server's hash of "luamig:" + schema + "." + table, the schema the table is
 * in (current_schema() when the config names none): "public" written in the
 * config and left to the search path take the same lock, with no round trip
 * more. With vt->want_digest, the version rows and the log's fingerprint ride
 * in the same round trip after the transaction (luamig_vtable_ahead): kept
 * when the lock was taken (they were read after it), else dropped.
 *
 * It is sent as soon as the handshake is done (luamig_lock_prepare), so the
 * server runs it while the client reads the revision files. */
typedef struct first {
  luamig_stmt st[3], tail[2];
  int n, m;
  const char *pid, *lock_params[3];
  char pidbuf[16];
  luamig_pending p;
  bool sent;
} first;

static void send_first(luamig_conn *c, void *arg) {
  first *f = arg;
  f->pid = luamig_topology_pid(c, f->pidbuf);
  f->lock_params[1] = f->pid;
  f->sent = true;
  luamig_batch_send(c, &f->p, f->n, f->st, f->m, f->tail);
}

void luamig_lock_prepare(lua_State *L, luamig_conn *c, const luamig_vtable *vt) {
  first *f = lua_newuserdatauv(L, sizeof *f, 1);
  memset(f, 0, sizeof *f);
  lua_createtable(L, 2, 0);          /* what the statements point into */
  f->lock_params[0] = vt->name;      /* anchored by the config */
  f->lock_params[2] = vt->schema;
  f->st[f->n++] = (luamig_stmt){ LUAMIG_TOPOLOGY_SQL, 1, &f->pid, false };
  f->st[f->n++] = (luamig_stmt){ luamig_sql_lock_first, 3, f->lock_params, false };
  luamig_vtable_probe_add(L, vt, f->st, &f->n);   /* whether the version table and the log exist */
  lua_rawseti(L, -2, 1);
  if (vt->want_digest) {
    luamig_vtable_ahead_add(L, vt, f->tail, &f->m);
    lua_rawseti(L, -2, 2);
  }
  lua_setiuservalue(L, -2, 1);
  c->ahead = send_first;             /* connected already (several hosts): first_try sends it */
  c->ahead_arg = f;
}

/* Reads the first try's results (sending it first if the handshake has not);
 * sets vt->lock_key; pushes the rows read ahead (or nil); returns whether the
 * lock was taken. */
static bool first_try(lua_State *L, luamig_conn *c, luamig_vtable *vt) {
  if (c->ahead_arg == NULL) luamig_lock_prepare(L, c, vt);
  else lua_pushnil(L);               /* its place: the run anchors it */
  int top = lua_gettop(L);
  first *f = c->ahead_arg;
  if (!f->sent) send_first(c, f);
  c->ahead = NULL;
  c->ahead_arg = NULL;
  luamig_batch_recv(L, c, &f->p, f->st, NULL, true, NULL);
  if (f->m == 0) lua_pushnil(L);
  int ahead = lua_gettop(L);
  luamig_vtable_probed(L, vt, ahead - 1);
  luamig_topology_check(L, c, ahead - 3);
  lua_geti(L, ahead - 2, 1);
  lua_getfield(L, -1, "k");
  vt->lock_key = (long long)lua_tointeger(L, -1);   /* int8: a Lua integer */
  lua_getfield(L, -2, "locked");
  bool locked = lua_toboolean(L, -1);
  lua_settop(L, ahead);
  if (!locked || !luamig_vtable_ahead(L, vt, ahead)) {
    lua_pushnil(L);
    lua_replace(L, ahead);
  }
  lua_replace(L, top);
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
  bool locked = first_try(L, c, vt), at_once = locked;
  const char *key = push_key(L, vt);
  top++;                             /* the read ahead stays */
  while (!locked) {
    double left = deadline - luamig_now_ms();
    if (left <= 0) break;
    long ms = left < 100 ? (long)left + 1 : 100;
    nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L }, NULL);
    locked = luamig_exec(L, c, luamig_sql_lock_try, 1, &key) == 1;
  }
  vt->probed = vt->probed && at_once;   /* another run may have made the tables meanwhile */
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

/*
 * run.c: what every command shares: its options, config, graph and
 * connection (a luamig_run on the Lua stack), its progress log, the version
 * table read as revisions, and the op context a migration or a stamp runs in.
 */
#include <string.h>

#include "luamig.h"

/* The database URL of the config (NULL: libpq's PG* environment). */
static const char *config_url(luamig_run *r) {
  lua_getfield(r->L, r->cfg, "url");
  const char *url = lua_tostring(r->L, -1);
  lua_pop(r->L, 1);                  /* the config table keeps it */
  return url;
}

/* Pushes a connection whose handshake is under way, in a to-be-closed slot:
 * any error closes it, which rolls back an open transaction and drops the lock. */
static void start_connecting(luamig_run *r) {
  r->c = luamig_conn_start(r->L, config_url(r));
  r->c->direct = r->direct;
  lua_toclose(r->L, -1);
  r->conn = lua_gettop(r->L);
}

void luamig_run_init(lua_State *L, luamig_run *r, int flags) {
  memset(r, 0, sizeof *r);
  r->L = L;
  if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  r->opts = 1;
  luamig_config_load(L, 1);
  r->cfg = lua_gettop(L);
  lua_getfield(L, r->cfg, "version_table");
  r->vt.name = lua_tostring(L, -1);  /* anchored by cfg */
  lua_getfield(L, r->cfg, "version_table_schema");
  r->vt.schema = lua_tostring(L, -1);
  lua_getfield(L, r->cfg, "log_table");
  r->vt.log_name = lua_tostring(L, -1);
  r->vt.want_digest = (flags & LUAMIG_RUN_SUMS) != 0;   /* the commands that check the log */
  lua_getfield(L, r->cfg, "lock_timeout");
  r->lock_timeout = lua_tostring(L, -1);
  lua_getfield(L, r->cfg, "statement_timeout");
  r->statement_timeout = lua_tostring(L, -1);
  lua_getfield(L, r->cfg, "lock_retries");
  r->lock_retries = (int)lua_tointeger(L, -1);
  lua_getfield(L, r->cfg, "lock_wait");
  r->lock_wait = lua_tonumber(L, -1);
  lua_pop(L, 7);
  if ((flags & LUAMIG_RUN_MIGRATE) && lua_getfield(L, r->cfg, "direct_url") == LUA_TSTRING) {
    lua_setfield(L, r->cfg, "url");  /* migrations (and --backup) go through direct_url */
    r->direct = true;
  } else if (flags & LUAMIG_RUN_MIGRATE) {
    lua_pop(L, 1);
  }
  /* the server starts the session while the revision files are read */
  if (flags & LUAMIG_RUN_CONNECT) start_connecting(r);
  if ((flags & LUAMIG_RUN_CONNECT) && (flags & LUAMIG_RUN_MIGRATE))
    luamig_lock_prepare(L, r->c, &r->vt);   /* the lock's round trip goes as soon as it can */
  r->g = luamig_load_revisions(L, r->cfg, (flags & LUAMIG_RUN_SUMS) != 0, r->c);
  r->graph = lua_gettop(L);
}

void luamig_run_connect(luamig_run *r) {
  if (r->c == NULL) start_connecting(r);
  luamig_conn_finish(r->L, r->c, config_url(r));
}

const char *luamig_run_cache_dir(luamig_run *r) {
  lua_getfield(r->L, r->cfg, "versions");
  lua_geti(r->L, -1, 1);
  lua_remove(r->L, -2);
  return lua_tostring(r->L, -1);
}

void luamig_run_log(luamig_run *r, const char *event, const char *text, double ms) {
  lua_State *L = r->L;
  if (lua_getfield(L, r->opts, "log") != LUA_TFUNCTION) { lua_pop(L, 1); return; }
  lua_pushstring(L, event);
  lua_pushstring(L, text);
  lua_pushnumber(L, ms);
  lua_pushinteger(L, r->step);
  lua_pushinteger(L, r->nsteps);
  lua_call(L, 5, 0);
}

bool luamig_opt_flag(lua_State *L, int opts, const char *name) {
  lua_getfield(L, opts, name);
  bool b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

bool luamig_opt_preset(lua_State *L, const char *name) {
  return lua_type(L, 1) == LUA_TTABLE && luamig_opt_flag(L, 1, name);
}

/* Reads the version table into cur (indices); raises on an id no file has.
 * *present tells whether the table exists. */
int luamig_read_current(luamig_run *r, int *cur, bool *present) {
  lua_State *L = r->L;
  int n = luamig_vtable_read(L, r->c, &r->vt);
  if (present) *present = n >= 0;
  if (n < 0) n = 0;
  for (int i = 0; i < n; i++) {
    lua_geti(L, -1, i + 1);
    const char *id = lua_tostring(L, -1);
    int k = luamig_graph_find(r->g, id);
    if (k < 0)
      luaL_error(L, "Can't locate revision identified by '%s': the version table %s "
                 "names it but no file in the versions directory has it (a file was "
                 "removed, or the database belongs to another project; 'luamig stamp "
                 "--purge REV' fixes the table once you know the right revision)",
                 id, r->vt.name);
    cur[i] = k;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n;
}

/* Server WARNINGs held during the run go to the log as "warn" events. */
void luamig_run_warnings(luamig_run *r) {
  lua_State *L = r->L;
  if (r->c == NULL || r->c->pg == NULL || (r->c->nwarnings == 0 && r->c->dropped_warnings == 0))
    return;
  int n = luamig_conn_warnings(L, r->c);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    luamig_run_log(r, "warn", lua_pushfstring(L, "server: %s", lua_tostring(L, -1)), 0);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* Offline: hands the statements gathered so far to the log as "sql" events. */
void luamig_run_drain(luamig_run *r, int ctxidx) {
  lua_State *L = r->L;
  lua_getiuservalue(L, ctxidx, 1);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    luamig_run_log(r, "sql", lua_tostring(L, -1), 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_setiuservalue(L, ctxidx, 1);
}

void luamig_push_rev_info(lua_State *L, const luamig_graph *g, int i) {
  const luamig_rev *rv = &g->revs[i];
  lua_createtable(L, 0, 8);
  lua_pushstring(L, rv->id);
  lua_setfield(L, -2, "revision");
  lua_createtable(L, rv->ndown, 0);
  for (int k = 0; k < rv->ndown; k++) {
    lua_pushstring(L, rv->down[k]);
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "down_revision");
  if (rv->message) { lua_pushstring(L, rv->message); lua_setfield(L, -2, "message"); }
  lua_pushstring(L, rv->path);
  lua_setfield(L, -2, "path");
  lua_pushboolean(L, rv->nchildren == 0 && rv->ndependents == 0);
  lua_setfield(L, -2, "head");
  lua_pushboolean(L, rv->nchildren == 0 && rv->ndependents > 0);
  lua_setfield(L, -2, "effective_head");
  lua_pushboolean(L, rv->nparents == 0);
  lua_setfield(L, -2, "base");
  lua_pushboolean(L, rv->nchildren > 1);
  lua_setfield(L, -2, "branchpoint");
  lua_pushboolean(L, rv->nparents > 1);
  lua_setfield(L, -2, "mergepoint");
}

/* "a, b" of the ids in list (or "" for base), pushed. */
const char *luamig_push_ids(lua_State *L, const luamig_graph *g, const int *list, int n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; i < n; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, g->revs[list[i]].id);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Connects and takes the lock, or (opts.sql) prepares an offline script;
 * pushes the op context and returns its stack index. */
int luamig_run_open(luamig_run *r, bool offline) {
  lua_State *L = r->L;
  int connidx = 0;
  if (!offline) {
    luamig_run_connect(r);
    connidx = r->conn;
    /* with a log to take them, server WARNINGs go there, not to stderr */
    if (lua_getfield(L, r->opts, "log") == LUA_TFUNCTION) r->c->hold_warnings = true;
    lua_pop(L, 1);
    luamig_lock_acquire(L, r->c, &r->vt, r->lock_wait);
    if (lua_isnil(L, -1)) lua_pop(L, 1);
    else r->vt.ahead = lua_gettop(L);   /* the rows read with the lock, for luamig_read_current */
  }
  luamig_opctx_new(L, connidx);
  luamig_opctx_bind_run(L, -1, r->opts, &r->vt);   /* op.backfill's progress and count */
  return lua_gettop(L);
}

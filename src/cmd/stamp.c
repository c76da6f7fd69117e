/*
 * stamp.c: `stamp`, the version table set to a target without running any
 * revision, with the audit rows that keep the log in agreement.
 */
#include <string.h>

#include "luamig.h"
#include "cmd.h"

/* stamp: sets the version table to TARGET without running any revision, as
 * Alembic's stamp would (luamig_stamp); opts.purge empties the table first
 * (even of ids no file has). Returns the revisions the table then holds. */
static int cmd_stamp(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, LUAMIG_RUN_SUMS | LUAMIG_RUN_MIGRATE |
                         (luamig_opt_preset(L, "sql") ? 0 : LUAMIG_RUN_CONNECT));
  lua_getfield(L, r.opts, "target");
  const char *target = lua_tostring(L, -1);
  if (target == NULL) return luaL_error(L, "stamp needs a target: a revision, heads or base");
  bool purge = luamig_opt_flag(L, r.opts, "purge"), offline = luamig_opt_flag(L, r.opts, "sql");
  luamig_graph *g = r.g;
  int ctxidx = luamig_run_open(&r, offline);
  luamig_opctx *ctx = lua_touserdata(L, ctxidx);
  int *cur = luamig_scratch(L, g->n), ncur = 0;
  bool present = false;
  if (!offline && purge) {          /* ids no file has are fine: they go */
    present = luamig_vtable_read(L, r.c, &r.vt) >= 0;
    lua_pop(L, 1);
  } else if (!offline) {
    ncur = luamig_read_current(&r, cur, &present);
  }
  if (!present) luamig_vtable_ensure(L, ctx, &r.vt);
  luamig_log_ensure(L, ctx, &r.vt);
  int *rows = luamig_scratch(L, g->n), nrows = luamig_stamp(L, g, cur, ncur, target, rows);

  luamig_emit(L, ctx, "BEGIN", 0, NULL);
  if (purge) {
    luamig_emit(L, ctx, luamig_sql_vt_change(L, &r.vt, LUAMIG_VT_PURGE), 0, NULL);
    lua_pop(L, 1);
  }
  int *was = luamig_scratch(L, g->n), *now = luamig_scratch(L, g->n);
  for (int i = 0; i < ncur; i++) was[cur[i]] = 1;
  for (int i = 0; i < nrows; i++) now[rows[i]] = 1;
  const char **from = lua_newuserdatauv(L, (size_t)(ncur + 1) * sizeof *from, 0);
  const char **to = lua_newuserdatauv(L, (size_t)(nrows + 1) * sizeof *to, 0);
  int nfrom = 0, nto = 0;
  for (int i = 0; i < ncur; i++) if (!now[cur[i]]) from[nfrom++] = g->revs[cur[i]].id;
  for (int i = 0; i < nrows; i++) if (!was[rows[i]]) to[nto++] = g->revs[rows[i]].id;
  const char *line = lua_pushfstring(L, "Running stamp_revision %s -> %s",
                                     luamig_push_ids(L, g, cur, ncur), luamig_push_ids(L, g, rows, nrows));
  luamig_run_log(&r, offline ? "sql" : "info", offline ? lua_pushfstring(L, "-- %s", line) : line, 0);
  luamig_move m = { from, nfrom, to, nto, { NULL, NULL }, NULL };
  luamig_vtable_move(L, ctx, &r.vt, &m, NULL);
  luamig_log_stamp(&r, ctx, cur, ncur, &m);
  luamig_emit(L, ctx, "COMMIT", 0, NULL);
  if (offline) luamig_run_drain(&r, ctxidx);
  else luamig_lock_release(L, r.c, &r.vt);
  luamig_run_warnings(&r);
  lua_createtable(L, nrows, 0);
  for (int i = 0; i < nrows; i++) {
    luamig_push_rev_info(L, g, rows[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static const luaL_Reg stamp_funcs[] = {
  { "stamp", cmd_stamp },
  { NULL, NULL }
};

int luamig_open_stamp(lua_State *L) {
  luaL_newlib(L, stamp_funcs);
  return 1;
}

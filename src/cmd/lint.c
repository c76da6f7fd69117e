/*
 * lint.c: core.lint(opts), the migration safety lint, and the check upgrade
 * makes before it applies anything. The rules live in Lua (luamig.lint);
 * this file picks the revisions: a RANGE as upgrade --sql takes it (no database),
 * or the pending ones (read from the version table). Their ancestors go too,
 * marked lint = false: they only build the lint's model of the schema, so a
 * table created earlier in the range counts as new and one created before
 * it as existing.
 */
#include <string.h>

#include "luamig.h"
#include "cmd.h"

/* rev.load() -> the revision's environment, compiled and run now (upvalues:
 * the graph, the revision's index, whether to keep it for the run: a step of a
 * plan of at most LUAMIG_KEEP_BODIES; else it is dropped after the lint looked
 * at it). A file that does not load is
 * the user's error, not the lint's: it is raised as { load_error = msg }, so
 * luamig_lint_plan passes it on as it is even in warn mode. */
/* (graph, g, rev, keep) -> env, for lint_load's protected call. */
static int call_push_body(lua_State *L) {
  luamig_graph *g = lua_touserdata(L, 2);
  int rev = (int)lua_tointeger(L, 3);
  if (lua_toboolean(L, 4)) luamig_load_body(L, g, 1, rev);   /* kept for the run */
  luamig_push_body(L, g, 1, rev);
  return 1;
}

static int lint_load(lua_State *L) {
  luamig_graph *g = luamig_graph_check(L, lua_upvalueindex(1));
  int rev = (int)lua_tointeger(L, lua_upvalueindex(2));
  lua_pushcfunction(L, call_push_body);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushlightuserdata(L, g);
  lua_pushinteger(L, rev);
  lua_pushvalue(L, lua_upvalueindex(3));
  if (lua_pcall(L, 4, 1, 0) == LUA_OK) return 1;
  lua_createtable(L, 0, 1);
  lua_insert(L, -2);
  lua_setfield(L, -2, "load_error");
  return lua_error(L);
}

/* rev.pcall(fn, what) -> true | false, message: fn (the revision's upgrade or
 * downgrade, with the lint's recording op) as any call into the revision at
 * upvalue 1's path: under its time budget, errors as "file:line: message". */
static int lint_pcall(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  const char *what = luaL_optstring(L, 2, "upgrade()");
  lua_pushvalue(L, 1);
  if (luamig_revision_pcall(L, 0, 0, lua_tostring(L, lua_upvalueindex(1)), what) != LUA_OK) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* (revisions, opts, stored, magic) -> findings, text:
 * require("luamig.lint_cache").analyze(...), the lint from the model it kept */
static int call_analyze(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luamig.lint_cache");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "analyze");
  for (int i = 1; i <= 4; i++) lua_pushvalue(L, i);
  lua_call(L, 4, 2);
  return 2;
}

#define LINT_CACHE LUAMIG_CACHE_DIR "/lint"

/* Pushes the findings for the revisions marked in mark, with their ancestors
 * as context, in topological (upgrade) order. Protected, a failure of the lint
 * itself pushes its message instead and returns false; a revision file that
 * does not load raises its own error either way. */
static bool analyze(luamig_run *r, const int *mark, bool protect) {
  lua_State *L = r->L;
  luamig_graph *g = r->g;
  int top = lua_gettop(L);
  int *from = luamig_scratch(L, g->n), nfrom = 0;
  for (int i = 0; i < g->n; i++)
    if (mark[i]) from[nfrom++] = i;
  int *ctx = luamig_scratch(L, g->n);
  luamig_mark_reach(L, g, from, nfrom, ctx, true);
  const char *dir = luamig_run_cache_dir(r);   /* stays on the stack, under the call */
  bool keyed = true;                 /* every revision's SHA-256 known: the model may be kept */
  lua_pushcfunction(L, call_analyze);
  lua_getiuservalue(L, r->graph, 1);  /* envs */
  int envs = lua_gettop(L);
  lua_createtable(L, nfrom, 0);
  int n = 0;
  for (int k = 0; k < g->n; k++) {
    int i = g->order[k];
    if (!ctx[i]) continue;
    const luamig_rev *rv = &g->revs[i];
    lua_createtable(L, 0, 7);
    lua_pushstring(L, rv->id);
    lua_setfield(L, -2, "id");
    keyed = keyed && *rv->sum;
    lua_pushfstring(L, "%s %s", rv->id, rv->sum);
    lua_setfield(L, -2, "key");
    lua_pushstring(L, rv->path);
    lua_setfield(L, -2, "path");
    if (rv->message) { lua_pushstring(L, rv->message); lua_setfield(L, -2, "message"); }
    lua_pushboolean(L, rv->transactional);
    lua_setfield(L, -2, "transactional");
    lua_pushboolean(L, mark[i]);
    lua_setfield(L, -2, "lint");
    lua_pushstring(L, rv->path);
    lua_pushcclosure(L, lint_pcall, 1);
    lua_setfield(L, -2, "pcall");
    if (lua_rawgeti(L, envs, i + 1) != LUA_TNIL) {  /* ran when it was read */
      lua_setfield(L, -2, "env");
    } else {                         /* loaded by the lint when it gets there, then dropped */
      lua_pop(L, 1);
      lua_pushvalue(L, r->graph);
      lua_pushinteger(L, i);
      lua_pushboolean(L, mark[i] && nfrom <= LUAMIG_KEEP_BODIES);
      lua_pushcclosure(L, lint_load, 3);
      lua_setfield(L, -2, "load");
    }
    lua_rawseti(L, -2, ++n);
  }
  lua_remove(L, envs);
  lua_createtable(L, 0, 1);          /* lint --style: the style rules too */
  lua_pushboolean(L, luamig_opt_flag(L, r->opts, "style"));
  lua_setfield(L, -2, "style");
  if (!keyed || !dir || !luamig_cache_read(L, dir, LINT_CACHE)) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  lua_pushfstring(L, "%s lint 1\n", luamig_build_id());
  bool quiet = luamig_sandbox_quiet(L, true);   /* the run prints what the revision prints */
  bool ok = lua_pcall(L, 4, 2, 0) == LUA_OK;
  luamig_sandbox_quiet(L, quiet);
  if (!ok && lua_istable(L, -1)) {   /* a revision file that does not load: the user's error */
    lua_getfield(L, -1, "load_error");
    lua_error(L);
  }
  if (!ok && !protect) lua_error(L);
  if (ok && keyed && dir && lua_isstring(L, -1)) luamig_cache_write(L, dir, LINT_CACHE, -1);
  if (ok) lua_pop(L, 1);             /* the text: the findings are on top */
  lua_replace(L, top + 1);           /* over the scratch */
  lua_settop(L, top + 1);
  return ok;
}

/* Marks the revisions of range "START:END" as upgrade --sql START:END takes
 * them: those after START (empty or base: from the beginning) up to END
 * (empty: the heads). A bare REV is that revision (or those revisions) alone. */
static void mark_range(luamig_run *r, const char *range, int *mark) {
  lua_State *L = r->L;
  luamig_graph *g = r->g;
  int top = lua_gettop(L);
  const char *colon = strchr(range, ':');
  int *revs = luamig_scratch(L, g->n + 1);
  if (colon == NULL) {
    int n = luamig_resolve(L, g, NULL, 0, range, revs);
    for (int i = 0; i < n; i++) mark[revs[i]] = 1;
  } else {
    const char *start = lua_pushlstring(L, range, (size_t)(colon - range));
    int nstart = *start ? luamig_resolve(L, g, NULL, 0, start, revs) : 0;
    luamig_step *steps;
    int nsteps = luamig_plan(L, g, revs, nstart, colon[1] ? colon + 1 : "heads", true, &steps);
    for (int i = 0; i < nsteps; i++) mark[steps[i].rev] = 1;
  }
  lua_settop(L, top);
}

/* lint: opts.range ("START:END" or one REV; without it, the pending revisions,
 * which needs the database). Returns the findings (see luamig.lint). */
static int cmd_lint(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, LUAMIG_RUN_SUMS | (luamig_opt_preset(L, "range") ? 0 : LUAMIG_RUN_CONNECT));
  luamig_graph *g = r.g;
  int *mark = luamig_scratch(L, g->n);
  lua_getfield(L, r.opts, "range");
  const char *range = lua_tostring(L, -1);
  if (range) {
    mark_range(&r, range, mark);
  } else {
    luamig_run_connect(&r);
    int *cur = luamig_scratch(L, g->n);
    int ncur = luamig_read_current(&r, cur, NULL);
    luamig_step *steps;
    int nsteps = luamig_plan(L, g, cur, ncur, "heads", true, &steps);
    for (int i = 0; i < nsteps; i++) mark[steps[i].rev] = 1;
  }
  analyze(&r, mark, false);
  return 1;
}

void luamig_lint_plan(luamig_run *r, const luamig_step *steps, int nsteps) {
  lua_State *L = r->L;
  lua_getfield(L, r->opts, "lint");
  const char *mode = luaL_optstring(L, -1, "warn");
  bool strict = strcmp(mode, "strict") == 0;
  if (!strict && strcmp(mode, "warn") != 0 && strcmp(mode, "off") != 0)
    luaL_error(L, "lint must be strict, warn or off (not '%s')", mode);
  int top = lua_gettop(L);
  if (strcmp(mode, "off") == 0 || nsteps == 0) { lua_pop(L, 1); return; }
  int *mark = luamig_scratch(L, r->g->n);
  for (int i = 0; i < nsteps; i++) mark[steps[i].rev] = steps[i].up;
  if (!analyze(r, mark, !strict)) {  /* warn: a broken lint must not stop a deploy */
    luamig_run_log(r, "warn", lua_pushfstring(L, "the lint could not run: %s",
                   luaL_tolstring(L, -1, NULL)), 0);
    lua_settop(L, top - 1);
    return;
  }
  int findings = lua_gettop(L), n = 0;
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, findings); i++) {
    lua_rawgeti(L, findings, i);
    lua_getfield(L, -1, "allowed");
    if (!lua_toboolean(L, -1)) {
      n++;
      lua_getfield(L, -2, "file");
      lua_getfield(L, -3, "line");
      lua_getfield(L, -4, "rule");
      lua_getfield(L, -5, "message");
      luamig_run_log(r, "warn", lua_pushfstring(L, "%s:%s: %s: %s", lua_tostring(L, -4),
                     luaL_optstring(L, -3, "?"), lua_tostring(L, -2), lua_tostring(L, -1)), 0);
    }
    lua_settop(L, findings);
  }
  if (n > 0 && strict)
    luaL_error(L, "%d lint finding%s in the revisions to apply (see 'luamig lint' for the "
               "locks and the recipes); --lint strict refuses to run them", n, n == 1 ? "" : "s");
  if (n > 0)
    luamig_run_log(r, "warn", lua_pushfstring(L, "%d lint finding%s: 'luamig lint' shows the "
                   "locks and the safe recipes", n, n == 1 ? "" : "s"), 0);
  lua_settop(L, top - 1);
}

static const luaL_Reg lint_funcs[] = {
  { "lint", cmd_lint },
  { NULL, NULL }
};

int luamig_open_lint(lua_State *L) {
  luaL_newlib(L, lint_funcs);
  return 1;
}

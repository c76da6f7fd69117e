/*
 * cli_lib.c: what every part of the luamig command shares: its state (-q,
 * --json, a terminal, colour), the call into the core and the progress log,
 * the output helpers. The lowest layer of the CLI: it calls no other part.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "luamig.h"
#include "cli.h"

luamig_cli_state luamig_cli = { false, false, false, false, false, 0 };

const char *luamig_cli_paint(const char *code) { return luamig_cli.colour ? code : ""; }

bool luamig_cli_json(lua_State *L, const char *key, int res) {
  if (!luamig_cli.json) return false;
  if (key) {
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, res);
    lua_setfield(L, -2, key);
  } else {
    lua_pushvalue(L, res);
  }
  printf("%s\n", luamig_push_json(L, -1));
  lua_pop(L, 2);
  return true;
}

void luamig_cli_call(lua_State *L, const char *name) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "luamig.core");
  lua_getfield(L, -1, name);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

bool luamig_cli_flag(lua_State *L, const char *name) {
  lua_getfield(L, 1, name);
  bool b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

const char *luamig_cli_field(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  const char *str = lua_tostring(L, -1);
  lua_pop(L, 1);                     /* the table keeps it */
  return str;
}

void luamig_cli_print_list(lua_State *L, int t, const char *key, const char *prefix) {
  if (key) lua_getfield(L, t, key);
  else lua_pushvalue(L, t);
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -1); i++) {
    lua_rawgeti(L, -1, i);
    printf("%s%s\n", prefix, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static bool line_open;                /* a progress line waits for its "3.1 ms" or FAILED */

/* Progress from the runner: "Running upgrade a -> b, msg ... 3.1 ms"; on a
 * terminal, long runs get a "[12/340]" counter (NO_COLOR or not: it is no colour). */
static int cli_log(lua_State *L) {
  const char *event = luaL_checkstring(L, 1), *text = luaL_checkstring(L, 2);
  double ms = luaL_checknumber(L, 3);
  lua_Integer step = luaL_optinteger(L, 4, 0), nsteps = luaL_optinteger(L, 5, 0);
  if (strcmp(event, "sql") == 0) {   /* even when quiet; a script cut short must stop the run */
    if (printf("%s\n", text) < 0) luaL_error(L, "could not write the script: %s", strerror(errno));
    return 0;
  }
  if (strcmp(event, "warn") == 0) {
    fflush(stdout);
    fprintf(stderr, "%sluamig: warning: %s%s\n", luamig_cli_paint(YELLOW), text, luamig_cli_paint(RESET));
    return 0;
  }
  if (luamig_cli.quiet || luamig_cli.json) return 0;
  if (strcmp(event, "heads") == 0) return 0;   /* for a fleet's report (fleet_child.c) */
  if (strcmp(event, "progress") == 0) {   /* a terminal's line, drawn again in place */
    if (luamig_cli.tty) luamig_cli_progress(text);
    return 0;
  }
  luamig_cli_progress_end();
  if (strcmp(event, "start") == 0) {
    luamig_cli_progress_head(text);
    if (luamig_cli.tty && nsteps > 1)
      printf("%s[%lld/%lld]%s ", luamig_cli_paint(DIM), (long long)step, (long long)nsteps,
             luamig_cli_paint(RESET));
    printf("%s ... ", text);
    line_open = true;
  } else if (strcmp(event, "done") == 0) {
    printf("%s%.1f ms%s\n", luamig_cli_paint(DIM), ms, luamig_cli_paint(RESET));
    line_open = false;
    luamig_cli_progress_head(NULL);
  } else if (strcmp(event, "fail") == 0) {
    /* ends the progress line; with --sql there is none, and the error says it on stderr */
    if (line_open) printf("%sFAILED%s\n", luamig_cli_paint(RED), luamig_cli_paint(RESET));
    line_open = false;
    luamig_cli_progress_head(NULL);
  } else {
    printf("%s\n", text);
  }
  fflush(stdout);
  return 0;
}

int luamig_cli_run(lua_State *L, const luamig_cli_command *c) {
  if (c->needs & CLI_LOG) {
    lua_pushcfunction(L, cli_log);
    lua_setfield(L, 1, "log");
  }
  luamig_cli_call(L, c->core);
  return c->print(L, lua_gettop(L));
}

/* Levenshtein distance of a and b (99 past 30 bytes): for "did you mean". */
int luamig_cli_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 30 || lb > 30) return 99;
  int d[31][31];
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  return d[la][lb];
}

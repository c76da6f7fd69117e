/*
 * cli_test.c: how the luamig command prints `luamig test` (core.test, whose
 * checks are lua/luamig/testrun.lua): a line per check as soon as it is known
 * (PASS, FAIL, SKIP), for a failure its revision, file:line and each
 * difference; with --json one object per check, one per line. Exit 0 when
 * every check passed, 1 when one failed, 2 when the run itself could not
 * happen (the config, the server, the scratch database), 128 + N after signal
 * N (130: ^C, 143: SIGTERM).
 */
#include <stdio.h>
#include <string.h>

#include "luamig.h"
#include "cli.h"

#define GREEN "\033[32m"

/* text on one line, as every line the command prints about a revision */
static void print_oneline(lua_State *L, const char *text) {
  fputs(luamig_push_oneline(L, text, strlen(text)), stdout);
  lua_pop(L, 1);
}

/* opts.log: where the run happens; per-revision progress on a terminal;
 * warnings always. */
static int test_log(lua_State *L) {
  const char *event = luaL_checkstring(L, 1), *text = luaL_checkstring(L, 2);
  if (strcmp(event, "warn") == 0) {
    fflush(stdout);
    fprintf(stderr, "%sluamig: warning: %s%s\n", luamig_cli_paint(YELLOW), text, luamig_cli_paint(RESET));
  } else if (strcmp(event, "info") == 0 && !luamig_cli.quiet && !luamig_cli.json) {
    print_oneline(L, text);
    putchar('\n');
  } else if (strcmp(event, "progress") == 0 && luamig_cli.tty && !luamig_cli.quiet && !luamig_cli.json) {
    printf("%s  ", luamig_cli_paint(DIM));
    print_oneline(L, text);
    printf("%s\n", luamig_cli_paint(RESET));
    fflush(stdout);
  }
  return 0;
}

/* opts.on_check: one check's result, as text or one JSON object. */
static int test_report(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (luamig_cli.json) {
    printf("%s\n", luamig_push_json(L, 1));
    fflush(stdout);
    return 0;
  }
  const char *status = luamig_cli_field(L, 1, "status");
  bool pass = strcmp(status, "pass") == 0, fail = strcmp(status, "fail") == 0;
  printf("%s%s%s %s: ", luamig_cli_paint(pass ? GREEN : fail ? RED : YELLOW),
         pass ? "PASS" : fail ? "FAIL" : "SKIP", luamig_cli_paint(RESET),
         luamig_cli_field(L, 1, "check"));
  print_oneline(L, luamig_cli_field(L, 1, "summary"));
  putchar('\n');
  const char *file = luamig_cli_field(L, 1, "file");
  if (file) {
    lua_getfield(L, 1, "line");
    if (lua_isinteger(L, -1)) printf("    %s:%lld: downgrade()", file, (long long)lua_tointeger(L, -1));
    else printf("    %s", file);
    lua_pop(L, 1);
    putchar('\n');
  }
  lua_getfield(L, 1, "differences");
  int n = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    printf("    ");
    print_oneline(L, lua_tostring(L, -1));
    putchar('\n');
    lua_pop(L, 1);
  }
  fflush(stdout);
  return 0;
}

/* core.test, in a protected call: an error exits 2, or 128 + N after signal N. */
static int run_test(lua_State *L) {
  luamig_cli_call(L, "test");
  return 1;
}

/* The handler (cli_table.c): opts.range from the arguments; errors exit 2, set by cli.c. */
int luamig_cli_run_test(lua_State *L, const luamig_cli_command *c) {
  (void)c;
  lua_pushcfunction(L, test_log);
  lua_setfield(L, 1, "log");
  lua_pushcfunction(L, test_report);
  lua_setfield(L, 1, "on_check");
  lua_pushcfunction(L, run_test);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "luamig.core");
    lua_getfield(L, -1, "scratch");
    lua_getfield(L, -1, "interrupted");
    lua_call(L, 0, 1);
    luamig_cli.error_status = lua_isinteger(L, -1) ? 128 + (int)lua_tointeger(L, -1) : 2;
    lua_pop(L, 4);
    return lua_error(L);
  }
  int res = lua_gettop(L);
  lua_getfield(L, res, "failed");
  int failed = (int)lua_tointeger(L, -1);
  if (!luamig_cli.json && !luamig_cli.quiet) {
    lua_getfield(L, res, "passed");
    lua_getfield(L, res, "skipped");
    printf("%d passed, %d failed, %d skipped\n", (int)lua_tointeger(L, -2), failed,
           (int)lua_tointeger(L, -1));
  }
  return failed > 0 ? 1 : 0;
}

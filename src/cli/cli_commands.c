/*
 * cli_commands.c: how the luamig command prints what the commands that write
 * return (upgrade, downgrade, stamp, init, revision, merge) and the lint and
 * check reports, and the handlers of the commands that do more than call the
 * core (revision --autogenerate, history, config). The table names them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "cli.h"

static int print_migrate(lua_State *L, int res, const char *done) {
  if (luamig_cli_json(L, "steps", res)) return 0;
  int n = (int)lua_rawlen(L, res);
  if (!luamig_cli.quiet && !luamig_cli.sql) {
    if (n == 0) printf("Nothing to do: the database is already at the target.\n");
    else printf("%s: %d revision%s.\n", done, n, n == 1 ? "" : "s");
  }
  return 0;
}

int luamig_cli_print_upgrade(lua_State *L, int res) { return print_migrate(L, res, "Upgraded"); }
int luamig_cli_print_downgrade(lua_State *L, int res) { return print_migrate(L, res, "Downgraded"); }

/* stamp: its progress line says it all; --json gives the rows it left. */
int luamig_cli_print_stamp(lua_State *L, int res) {
  luamig_cli_json(L, "current", res);
  return 0;
}

int luamig_cli_print_init(lua_State *L, int res) {
  if (luamig_cli_json(L, "created", res)) return 0;
  luamig_cli_print_list(L, res, NULL, "Created ");
  printf("Edit luamig.lua (or set DATABASE_URL), then: luamig revision -m \"first revision\"\n");
  return 0;
}

int luamig_cli_print_generated(lua_State *L, int res) {
  if (luamig_cli_json(L, NULL, res)) return 0;
  printf("Generating %s ... done\n", luamig_cli_field(L, res, "path"));
  return 0;
}

/* revision --autogenerate: each difference as Alembic prints it ("Detected added
 * column 'sessions.description'"), then the file; none when nothing changed,
 * unless --allow-empty. */
static int print_autogenerate(lua_State *L, int res) {
  if (luamig_cli_json(L, NULL, res)) return 0;
  lua_getfield(L, res, "changes");
  int n = (int)lua_rawlen(L, -1);
  lua_pop(L, 1);
  if (!luamig_cli.quiet) luamig_cli_print_list(L, res, "changes", "Detected ");
  if (n == 0) printf("No changes in schema detected.\n");
  const char *path = luamig_cli_field(L, res, "path");
  if (path) printf("Generating %s ... done\n", path);
  else printf("No revision written (--allow-empty writes an empty one).\n");
  return 0;
}

/* Before a new revision goes on top: the head(s)' lint findings as warnings
 * (the revision just written is the one worth a second look). Never fails. */
static void warn_head_findings(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "luamig.core");
  lua_getfield(L, -1, "lint");
  lua_createtable(L, 0, 2);
  lua_getfield(L, 1, "config");
  lua_setfield(L, -2, "config");
  lua_pushliteral(L, "heads");
  lua_setfield(L, -2, "range");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    int res = lua_gettop(L);
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, res); i++) {
      lua_rawgeti(L, res, i);
      int f = lua_gettop(L);
      lua_getfield(L, f, "allowed");
      lua_getfield(L, f, "line");
      if (!lua_toboolean(L, -2))
        fprintf(stderr, "%sluamig: warning: %s:%lld: %s: %s%s\n", luamig_cli_paint(YELLOW),
                luamig_cli_field(L, f, "file"), (long long)lua_tointeger(L, -1),
                luamig_cli_field(L, f, "rule"), luamig_cli_field(L, f, "message"),
                luamig_cli_paint(RESET));
      lua_settop(L, res);
    }
  }
  lua_pop(L, 3);
}

int luamig_cli_run_revision(lua_State *L, const luamig_cli_command *c) {
  if (luamig_cli_flag(L, "autogenerate")) {
    luamig_cli_call(L, "autogenerate");
    return print_autogenerate(L, lua_gettop(L));
  }
  if (!luamig_cli.json) warn_head_findings(L);
  return luamig_cli_run(L, c);
}

/* Pushes require("luamig.lint")[fn]. */
static void push_lint_fn(lua_State *L, const char *fn) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luamig.lint");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
}

/* lint: the findings with their locks and recipes; exit 0 when none is left
 * (allowed ones do not count), 2 otherwise. */
int luamig_cli_print_lint(lua_State *L, int res) {
  push_lint_fn(L, "count");
  lua_pushvalue(L, res);
  lua_call(L, 1, 1);
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (!luamig_cli_json(L, "findings", res)) {
    push_lint_fn(L, "format");
    lua_pushvalue(L, res);
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, luamig_cli_flag(L, "verbose"));
    lua_setfield(L, -2, "verbose");
    lua_call(L, 2, 1);
    fputs(lua_tostring(L, -1), stdout);
  }
  return n > 0 ? 2 : 0;
}

/* check: exit 0 when the models and the database agree, 1 with the list of
 * differences (for CI), as `alembic check`. */
int luamig_cli_print_check(lua_State *L, int res) {
  lua_getfield(L, res, "changes");
  int n = (int)lua_rawlen(L, -1);
  if (luamig_cli_json(L, "changes", lua_gettop(L))) return n > 0;
  if (n == 0) {
    printf("No new upgrade operations detected: the database matches the models.\n");
    return 0;
  }
  printf("New upgrade operations detected (%d):\n", n);
  luamig_cli_print_list(L, res, "changes", "  ");
  printf("Write them into a revision with: luamig revision --autogenerate -m MESSAGE\n");
  return 1;
}

/* history: (current) marks need the database: shown when a URL is
 * configured, or asked for. */
int luamig_cli_run_history(lua_State *L, const luamig_cli_command *c) {
  if (!luamig_cli_flag(L, "indicate_current")) {
    lua_getfield(L, 1, "url");
    bool url = lua_isstring(L, -1) || getenv("DATABASE_URL") != NULL;
    lua_pop(L, 1);
    lua_pushboolean(L, url);
    lua_setfield(L, 1, "indicate_current");
  }
  return luamig_cli_run(L, c);
}

/* config --print-url: the database URL a command would use, masked as every
 * message masks it. Hidden from help: for scripts/lib.sh, which shows the URL
 * it works on without a masking of its own. */
int luamig_cli_run_config(lua_State *L, const luamig_cli_command *c) {
  (void)c;
  if (!luamig_cli_flag(L, "print_url"))
    return luaL_error(L, "config: only --print-url is supported");
  luamig_config_load(L, 1);
  lua_getfield(L, -1, "url");
  if (lua_isnil(L, -1)) {
    printf("(none: libpq's defaults, PGHOST, PGPORT, PGUSER, PGDATABASE)\n");
    return 0;
  }
  luamig_push_redacted(L, lua_tostring(L, -1));
  printf("%s\n", lua_tostring(L, -1));
  return 0;
}

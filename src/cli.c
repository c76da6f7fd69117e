/*
 * cli.c: the luamig command. Parses argv into the same options table the
 * Lua API takes, calls the core's command, formats its result. All work runs
 * inside one protected Lua call, so every error becomes one line on stderr
 * and exit status 1, and every resource is released by its __gc/__close.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "luamig.h"
#include "cli.h"

typedef struct command {
  const char *name;
  int (*handler)(lua_State *L);      /* opts table at 1, positional args at 2 */
  const char *usage;
  const char *summary;
} command;

luamig_cli_state luamig_cli = { false, false, false, false };

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

int luamig_cli_nargs(lua_State *L) { return (int)lua_rawlen(L, 2); }

const char *luamig_cli_arg(lua_State *L, int i) {
  lua_rawgeti(L, 2, i);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);                     /* the args table keeps it */
  return s;
}

void luamig_cli_at_most(lua_State *L, int n, const char *cmd) {
  if (luamig_cli_nargs(L) > n)
    luaL_error(L, "%s: unexpected argument '%s' (see 'luamig %s --help')", cmd,
               luamig_cli_arg(L, n + 1), cmd);
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

static bool line_open;                /* a progress line waits for its "3.1 ms" or FAILED */

/* Progress from the runner: "Running upgrade a -> b, msg ... 3.1 ms"; on a
 * terminal, long runs get a "[12/340]" counter. */
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
    luamig_cli_progress(text);
    return 0;
  }
  luamig_cli_progress_end();
  if (strcmp(event, "start") == 0) {
    luamig_cli_progress_head(text);
    if (luamig_cli.colour && nsteps > 1)
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

/* ---- commands ---- */

static int migrate(lua_State *L, const char *cmd) {
  luamig_cli_at_most(L, 1, cmd);
  if (luamig_cli_nargs(L) == 1) {
    lua_pushstring(L, luamig_cli_arg(L, 1));
    lua_setfield(L, 1, "target");
  }
  lua_pushcfunction(L, cli_log);
  lua_setfield(L, 1, "log");
  luamig_cli_call(L, cmd);
  if (luamig_cli_json(L, "steps", lua_gettop(L))) return 0;
  int n = (int)lua_rawlen(L, -1);
  if (!luamig_cli.quiet && !luamig_cli_flag(L, "sql")) {
    if (n == 0) printf("Nothing to do: the database is already at the target.\n");
    else printf("%s: %d revision%s.\n", strcmp(cmd, "upgrade") == 0 ? "Upgraded" : "Downgraded",
                n, n == 1 ? "" : "s");
  }
  return 0;
}

static int cmd_upgrade(lua_State *L) { return migrate(L, "upgrade"); }

static int cmd_downgrade(lua_State *L) {
  if (luamig_cli_nargs(L) == 0)
    return luaL_error(L, "downgrade needs a target: -1, a revision id, or base");
  return migrate(L, "downgrade");
}

static int cmd_init(lua_State *L) {
  luamig_cli_at_most(L, 1, "init");
  if (luamig_cli_nargs(L) == 1) {
    lua_pushstring(L, luamig_cli_arg(L, 1));
    lua_setfield(L, 1, "dir");
  }
  luamig_cli_call(L, "init");
  int n = (int)lua_rawlen(L, -1);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    printf("Created %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  printf("Edit luamig.lua (or set DATABASE_URL), then: luamig revision -m \"first revision\"\n");
  return 0;
}

/* revision --autogenerate: each difference as Alembic prints it ("Detected added
 * column 'sessions.description'"), then the file; none when nothing changed,
 * unless --allow-empty. */
static int autogenerate(lua_State *L) {
  luamig_cli_call(L, "autogenerate");
  int res = lua_gettop(L);
  if (luamig_cli_json(L, NULL, res)) return 0;
  lua_getfield(L, res, "changes");
  int n = (int)lua_rawlen(L, -1);
  for (int i = 1; i <= n && !luamig_cli.quiet; i++) {
    lua_rawgeti(L, -1, i);
    printf("Detected %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (n == 0) printf("No changes in schema detected.\n");
  const char *path = luamig_cli_field(L, res, "path");
  if (path) printf("Generating %s ... done\n", path);
  else printf("No revision written (--allow-empty writes an empty one).\n");
  return 0;
}

/* Pushes require("luamig.lint")[fn]. */
static void push_lint_fn(lua_State *L, const char *fn) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luamig.lint");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
}

/* lint [RANGE]: the findings with their locks and recipes; exit 0 when none is
 * left (allowed ones do not count), 2 otherwise. */
static int cmd_lint(lua_State *L) {
  luamig_cli_at_most(L, 1, "lint");
  if (luamig_cli_nargs(L) == 1) {
    lua_pushstring(L, luamig_cli_arg(L, 1));
    lua_setfield(L, 1, "range");
  }
  luamig_cli_call(L, "lint");
  int res = lua_gettop(L);
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

static int cmd_revision(lua_State *L) {
  luamig_cli_at_most(L, 0, "revision");
  if (luamig_cli_flag(L, "autogenerate")) return autogenerate(L);
  warn_head_findings(L);
  luamig_cli_call(L, "revision");
  printf("Generating %s ... done\n", luamig_cli_field(L, -1, "path"));
  return 0;
}

static int cmd_stamp(lua_State *L) {
  luamig_cli_at_most(L, 1, "stamp");
  if (luamig_cli_nargs(L) == 0) return luaL_error(L, "stamp needs a target: a revision, heads or base");
  lua_pushstring(L, luamig_cli_arg(L, 1));
  lua_setfield(L, 1, "target");
  lua_pushcfunction(L, cli_log);
  lua_setfield(L, 1, "log");
  luamig_cli_call(L, "stamp");
  return 0;
}

/* check: exit 0 when the models and the database agree, 1 with the list of
 * differences (for CI), as `alembic check`. */
static int cmd_check(lua_State *L) {
  luamig_cli_at_most(L, 0, "check");
  luamig_cli_call(L, "check");
  lua_getfield(L, -1, "changes");
  int n = (int)lua_rawlen(L, -1);
  if (luamig_cli_json(L, "changes", lua_gettop(L))) return n > 0;
  if (n == 0) {
    printf("No new upgrade operations detected: the database matches the models.\n");
    return 0;
  }
  printf("New upgrade operations detected (%d):\n", n);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    printf("  %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  printf("Write them into a revision with: luamig revision --autogenerate -m MESSAGE\n");
  return 1;
}

static int cmd_merge(lua_State *L) {
  lua_pushvalue(L, 2);
  lua_setfield(L, 1, "revisions");
  luamig_cli_call(L, "merge");
  printf("Generating %s ... done\n", luamig_cli_field(L, -1, "path"));
  return 0;
}

/* config --print-url: the database URL a command would use, masked as every
 * message masks it. Hidden from help: for scripts/lib.sh, which shows the URL
 * it works on without a masking of its own. */
static int cmd_config(lua_State *L) {
  luamig_cli_at_most(L, 0, "config");
  if (!luamig_cli_flag(L, "print_url")) return luaL_error(L, "config: only --print-url is supported");
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

static int cmd_help(lua_State *L);

/* The options of a fleet run (fleet.c), on the commands that take them. */
#define FLEET_USAGE "\n         [--targets FILE | --all-databases | --all-schemas] [--match PATTERN]" \
                    "\n         [--jobs N] [--continue-on-error]"

/* Alphabetical, like git's commands[]: help and "did you mean" read it. */
static const command commands[] = {
  { "branches", luamig_cli_branches, "branches [-v]", "Show the branch points" },
  { "check", cmd_check, "check [--models MODULE]",
    "Compare the models with the database; exit 1 when they differ" },
  { "config", cmd_config, "config --print-url", NULL },        /* hidden: for scripts */
  { "current", luamig_cli_current, "current [-v]" FLEET_USAGE, "Show the revision(s) the database is at" },
  { "downgrade", cmd_downgrade, "downgrade TARGET [--sql FROM:TO]" FLEET_USAGE,
    "Revert revisions: -1, REV, REV-N, LABEL@-N, LABEL@base, base" },
  { "heads", luamig_cli_heads, "heads [-v]", "Show the head revision(s) of the scripts" },
  { "help", cmd_help, "help [COMMAND]", "Show help for luamig or one command" },
  { "history", luamig_cli_history, "history [-v] [-i] [-r START:END]",
    "List revisions, newest first" },
  { "init", cmd_init, "init [DIR]", "Create luamig.lua, versions/ and the revision template" },
  { "lint", cmd_lint, "lint [RANGE] [-v] [--json] [--style]",
    "Find changes that lock busy tables or break the running release; exit 2 on findings" },
  { "merge", cmd_merge, "merge [-m MESSAGE] [--rev-id ID] [heads | REV REV ...]",
    "Create a merge revision joining two or more heads" },
  { "revision", cmd_revision, "revision [-m MESSAGE] [--rev-id ID] [--head REV [--splice]]\n"
    "         [--autogenerate [--allow-empty] [--models MODULE]]\n"
    "         [--branch-label NAME] [--depends-on REV]... [--version-path DIR]",
    "Create a new revision file on top of the head" },
  { "show", luamig_cli_show, "show REV", "Show one revision: header, parents, children, path, doc" },
  { "stamp", cmd_stamp, "stamp [--purge] [--sql] TARGET",
    "Set the version table to TARGET without running revisions" },
  { "status", luamig_cli_status, "status" FLEET_USAGE,
    "Pending revisions; exit 0 at head, 3 when some are pending" },
  { "verify", luamig_cli_verify, "verify [--strict]" FLEET_USAGE,
    "Check applied revisions against their files (checksums in the audit log)" },
  { "upgrade", cmd_upgrade, "upgrade [TARGET] [--sql [FROM:]TO] [--lint strict|warn|off]\n"
    "         [--backup FILE] [--revision-timeout DURATION]" FLEET_USAGE,
    "Apply revisions up to TARGET: head (default), heads, +N, REV, REV+N, LABEL@head" },
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static const char global_usage[] =
  "usage: luamig [-c FILE] [--url URL] [--direct-url URL] [-q] COMMAND [ARGS]\n"
  "\n"
  "Options:\n"
  "  -c, --config FILE   configuration file (default: luamig.lua)\n"
  "  --url URL           database URL (default: url in the config, then $DATABASE_URL)\n"
  "  --direct-url URL    for upgrade, downgrade and stamp: the server itself or a\n"
  "                      session-mode pool, when URL goes through a pooler\n"
  "  -q, --quiet         no progress lines\n"
  "  --json              one JSON document on stdout (current, heads, history, status,\n"
  "                      upgrade, downgrade, verify); errors as {\"error\": ...}\n"
  "  -h, --help          this help; 'luamig COMMAND --help' for one command\n"
  "  --version           print the version\n";

static const command *find_command(const char *name) {
  for (int i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

/* Shown by "luamig help COMMAND" after the usage line. */
static const struct { const char *name, *text; } examples[] = {
  { "upgrade", "  luamig upgrade                   # to head\n"
               "  luamig upgrade +1                # one more revision\n"
               "  luamig upgrade 3f2a              # a revision, by unique prefix\n"
               "  luamig upgrade heads             # every branch\n"
               "  luamig upgrade head --sql > up.sql\n"
               "  luamig upgrade --backup before.sql --lint strict\n"
               "  luamig upgrade --all-databases --match 'tenant_%' --jobs 8\n"
               "  luamig upgrade --all-schemas --match 'tenant_%'   # search_path and version table per schema\n"
               "  luamig upgrade --targets tenants.txt --continue-on-error   # one URL a line\n"
               "\nMany databases: --targets FILE, --all-databases (templates excluded) or --all-schemas\n"
               "(--match: a LIKE pattern), or targets = {...} / schemas = {...} in luamig.lua; --jobs N\n"
               "at once (default 4); a failure stops new starts unless --continue-on-error.\n" },
  { "downgrade", "  luamig downgrade -1              # undo the newest revision\n"
                 "  luamig downgrade a1b2c3d4e5f6\n"
                 "  luamig downgrade billing@base     # one branch only\n"
                 "  luamig downgrade head:base --sql > down.sql\n" },
  { "revision", "  luamig revision -m \"Add email index\"\n"
                "  luamig revision --autogenerate -m \"Add description to sessions\"\n"
                "  luamig revision -m \"Billing\" --head base --branch-label billing\n" },
  { "history", "  luamig history -r -3:current\n  luamig history --verbose -r base:head\n" },
  { "merge", "  luamig merge -m \"merge migrations\"\n  luamig merge 4be1f0 9e8d7c\n" },
  { "stamp", "  luamig stamp head                # adopt a database built by hand\n"
             "  luamig stamp --purge 3f2a9c1b7e4d\n" },
  { "status", "  luamig status || test $? -eq 3   # CI: 3 means pending revisions\n" },
  { "current", "  luamig current --verbose\n  luamig current --json\n" },
  { "lint", "  luamig lint                      # the pending revisions\n"
            "  luamig lint base:head --verbose\n" },
  { "check", "  luamig check                     # CI: models and database agree?\n" },
};

static void print_help(const command *c) {
  if (c) {
    printf("usage: luamig %s\n", c->usage);
    if (c->summary) printf("\n%s.\n", c->summary);
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++)
      if (strcmp(examples[i].name, c->name) == 0) printf("\nExamples:\n%s", examples[i].text);
    return;
  }
  fputs(global_usage, stdout);
  printf("\nCommands:\n");
  for (int i = 0; i < NCOMMANDS; i++)
    if (commands[i].summary) printf("  %-11s %s\n", commands[i].name, commands[i].summary);
}

static int cmd_help(lua_State *L) {
  luamig_cli_at_most(L, 1, "help");
  const char *name = luamig_cli_nargs(L) ? luamig_cli_arg(L, 1) : NULL;
  const command *c = name ? find_command(name) : NULL;
  if (name && !c) return luaL_error(L, "help: no command '%s'", name);
  print_help(c);
  return 0;
}

static int edit_distance(const char *a, const char *b) {
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

/* ---- argument parsing ---- */

typedef struct option {
  const char *shortname, *longname, *key;
  bool takes_value;
} option;

static const option options[] = {
  { "-c", "--config", "config", true },
  { NULL, "--url", "url", true },
  { NULL, "--direct-url", "direct_url", true },
  { "-q", "--quiet", "quiet", false },
  { "-h", "--help", "help", false },
  { NULL, "--version", "version", false },
  { "-v", "--verbose", "verbose", false },
  { "-m", "--message", "message", true },
  { NULL, "--rev-id", "rev_id", true },
  { NULL, "--head", "head", true },
  { "-r", "--rev-range", "range", true },
  { "-i", "--indicate-current", "indicate_current", false },
  { NULL, "--sql", "sql", false },
  { NULL, "--json", "json", false },
  { NULL, "--style", "style", false },
  { NULL, "--backup", "backup", true },
  { NULL, "--strict", "strict", false },
  { NULL, "--lint", "lint", true },
  { NULL, "--lock-wait", "lock_wait", true },
  { NULL, "--revision-timeout", "revision_timeout", true },
  { NULL, "--purge", "purge", false },
  { NULL, "--splice", "splice", false },
  { NULL, "--branch-label", "branch_label", true },
  { NULL, "--depends-on", "depends_on", true },   /* repeatable: gathered in a list */
  { NULL, "--version-path", "version_path", true },
  { NULL, "--autogenerate", "autogenerate", false },
  { NULL, "--allow-empty", "allow_empty", false },
  { NULL, "--models", "models", true },
  { NULL, "--print-url", "print_url", false },
  { NULL, "--targets", "targets_file", true },        /* fleet runs (fleet.c) */
  { NULL, "--all-databases", "all_databases", false },
  { NULL, "--all-schemas", "all_schemas", false },
  { NULL, "--match", "match", true },
  { NULL, "--jobs", "jobs", true },
  { NULL, "--continue-on-error", "continue_on_error", false },
  { NULL, "--fleet-child", "fleet_child", false },    /* hidden: a fleet run's own children */
};

/* A relative target such as "-1" is an argument, not an option. */
static bool is_negative_number(const char *s) {
  if (s[0] != '-' || s[1] == '\0') return false;
  for (s++; *s; s++) if (*s < '0' || *s > '9') return false;
  return true;
}

/* Fills opts (at 1) and args (at 2) from argv; returns the command name or NULL. */
static const char *parse_args(lua_State *L, int argc, char **argv) {
  const char *cmd = NULL;
  int nargs = 0;
  bool only_args = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_args || a[0] != '-' || a[1] == '\0' || is_negative_number(a)) {
      if (cmd == NULL) cmd = a;
      else { lua_pushstring(L, a); lua_rawseti(L, 2, ++nargs); }
      continue;
    }
    if (strcmp(a, "--") == 0) { only_args = true; continue; }
    const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    const option *o = NULL;
    for (size_t k = 0; k < sizeof options / sizeof options[0]; k++) {
      const option *c = &options[k];
      if ((c->shortname && strlen(c->shortname) == len && strncmp(a, c->shortname, len) == 0) ||
          (strlen(c->longname) == len && strncmp(a, c->longname, len) == 0))
        o = c;
    }
    if (o == NULL) luaL_error(L, "unknown option '%s' (see 'luamig --help')", a);
    if (o->takes_value) {
      const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
      if (v == NULL) luaL_error(L, "option '%s' needs a value", a);
      if (strcmp(o->key, "depends_on") == 0) {
        if (lua_getfield(L, 1, o->key) != LUA_TTABLE) {
          lua_pop(L, 1);
          lua_newtable(L);
        }
        lua_pushstring(L, v);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      } else {
        lua_pushstring(L, v);
      }
    } else {
      if (eq) luaL_error(L, "option '%.*s' takes no value", (int)len, a);
      lua_pushboolean(L, 1);
    }
    lua_setfield(L, 1, o->key);
  }
  return cmd;
}

static int cli_main(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  lua_settop(L, 0);
  lua_newtable(L);                   /* 1: opts */
  lua_newtable(L);                   /* 2: positional args */
  const char *name = parse_args(L, argc, argv);
  luamig_cli.quiet = luamig_cli_flag(L, "quiet");
  luamig_cli.json = luamig_cli_flag(L, "json");
  luamig_cli.sql = luamig_cli_flag(L, "sql");
  luamig_cli.colour = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL && !luamig_cli.json;
  if (luamig_cli_flag(L, "version")) {
    printf("luamig %s (%s, libpq %d)\n", LUAMIG_VERSION, LUA_RELEASE, PQlibVersion());
    return 0;
  }
  if (name == NULL) {
    print_help(NULL);
    lua_pushinteger(L, luamig_cli_flag(L, "help") ? 0 : 1);
    return 1;
  }
  const command *c = find_command(name);
  if (c == NULL) {
    const char *best = NULL;
    int bestd = 3;
    for (int i = 0; i < NCOMMANDS; i++) {
      int d = commands[i].summary ? edit_distance(name, commands[i].name) : 99;
      if (d < bestd) { bestd = d; best = commands[i].name; }
    }
    if (best) return luaL_error(L, "unknown command '%s'; did you mean '%s'?", name, best);
    return luaL_error(L, "unknown command '%s' (see 'luamig --help')", name);
  }
  if (luamig_cli_flag(L, "help")) {
    print_help(c);
    return 0;
  }
  int status = luamig_fleet_maybe(L, c->name, argc, argv);   /* -1: not a fleet run */
  if (status < 0) status = c->handler(L);
  lua_pushinteger(L, status);
  return 1;
}

/* "luamig: error: ..." on stderr, "error:" in red on a terminal. */
static void print_error(const char *fmt, ...) {
  bool tty = isatty(STDERR_FILENO) && getenv("NO_COLOR") == NULL;
  fprintf(stderr, "%sluamig: error:%s ", tty ? RED : "", tty ? RESET : "");
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* Flushes and closes stdout: a script or a listing cut short (a full disk, a
 * closed pipe) must not end in exit 0. Returns the exit status. */
static int check_stdout(int status) {
  errno = 0;
  bool ok = fflush(stdout) == 0 && !ferror(stdout);
  int err = errno;
  if (fclose(stdout) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok) return status;
  if (status == 0)                   /* a failed command has said what went wrong already */
    print_error("could not write the %s: %s", luamig_cli.sql ? "script" : "output",
                err ? strerror(err) : "write error");
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fputs("luamig: error: out of memory\n", stderr);
    return 1;
  }
  luaL_openlibs(L);
  /* Most of what a run allocates dies young (op calls, SQL text, lint records):
   * Lua's generational collector took a 1,000-revision apply from ~200 to ~165 ms
   * of CPU and --sql on 10,000 revisions from 30 to 27 MB. The host application
   * of the Lua API keeps its own choice. */
  lua_gc(L, LUA_GCGEN, 0, 0);
  luamig_open_embedded(L);           /* luamig.schema, luamig.autogen, ... */
  luaL_requiref(L, "luamig.core", luaopen_luamig_core, 0);
  lua_pop(L, 1);
  lua_pushcfunction(L, cli_main);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status;
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    fflush(stdout);
    const char *msg = lua_type(L, -1) == LUA_TNIL ? "nil error value" : luaL_tolstring(L, -1, NULL);
    if (luamig_cli.json) {               /* the document CI reads says what went wrong */
      lua_createtable(L, 0, 1);
      lua_pushstring(L, msg);
      lua_setfield(L, -2, "error");
      printf("%s\n", luamig_push_json(L, -1));
      lua_pop(L, 2);
    }
    print_error("%s", msg);
    status = 1;
  } else {
    status = (int)lua_tointeger(L, -1);
  }
  lua_close(L);
  return check_stdout(status);
}

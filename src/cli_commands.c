/*
 * cli_commands.c: the luamig command's table (git's commands[] in git.c):
 * each command's core function, needs, own options, arguments, summary,
 * examples and printer. Help, "did you mean", --list-cmds/--list-opts (which
 * the shell completions read) and the option parser all read it. Below it,
 * the printers of the commands that write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "cli.h"

/* ---- printers and handlers ---- */

static int print_migrate(lua_State *L, int res, const char *done) {
  if (luamig_cli_json(L, "steps", res)) return 0;
  int n = (int)lua_rawlen(L, res);
  if (!luamig_cli.quiet && !luamig_cli.sql) {
    if (n == 0) printf("Nothing to do: the database is already at the target.\n");
    else printf("%s: %d revision%s.\n", done, n, n == 1 ? "" : "s");
  }
  return 0;
}

static int print_upgrade(lua_State *L, int res) { return print_migrate(L, res, "Upgraded"); }
static int print_downgrade(lua_State *L, int res) { return print_migrate(L, res, "Downgraded"); }

/* stamp: its progress line says it all; --json gives the rows it left. */
static int print_stamp(lua_State *L, int res) {
  luamig_cli_json(L, "current", res);
  return 0;
}

static int print_init(lua_State *L, int res) {
  if (luamig_cli_json(L, "created", res)) return 0;
  luamig_cli_print_list(L, res, NULL, "Created ");
  printf("Edit luamig.lua (or set DATABASE_URL), then: luamig revision -m \"first revision\"\n");
  return 0;
}

static int print_generated(lua_State *L, int res) {
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

static int run_revision(lua_State *L, const luamig_cli_command *c) {
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
static int print_lint(lua_State *L, int res) {
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
static int print_check(lua_State *L, int res) {
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
static int run_history(lua_State *L, const luamig_cli_command *c) {
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
static int run_config(lua_State *L, const luamig_cli_command *c) {
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

static int run_help(lua_State *L, const luamig_cli_command *c) {
  (void)c;
  const char *name = luamig_cli_field(L, 1, "command");
  const luamig_cli_command *which = name ? luamig_cli_find(name) : NULL;
  if (name && !which) {
    const char *best = luamig_cli_nearest_command(name);
    if (best) return luaL_error(L, "help: no command '%s'; did you mean '%s'?", name, best);
    return luaL_error(L, "help: no command '%s' (see 'luamig --help')", name);
  }
  luamig_cli_help(which);
  return 0;
}

/* ---- the options ---- */

/* An option: -s/--long setting opts[key], a flag or taking a value named arg. */
#define FLAG(s, long, key, help) { s, long, key, NULL, help, false, 0 }
#define VALUE(s, long, key, arg, help) { s, long, key, arg, help, false, 0 }
/* One that a single command has, written in its list. */
#define OWN(...) &(const luamig_cli_option)__VA_ARGS__

static const luamig_cli_option
  o_verbose = FLAG('v', "verbose", "verbose", "more detail: each revision's header in full"),
  o_message = VALUE('m', "message", "message", "MESSAGE", "the new revision's message"),
  o_rev_id = VALUE(0, "rev-id", "rev_id", "ID", "the new revision's id instead of a random one"),
  o_sql = FLAG(0, "sql", "sql", "print the SQL instead of running it (offline: no database)"),
  o_lock_wait = VALUE(0, "lock-wait", "lock_wait", "SECONDS",
                      "how long to wait for another run's lock (default 60)"),
  o_backup = VALUE(0, "backup", "backup", "FILE",
                   "pg_dump the database into FILE before changing anything"),
  o_strict = FLAG(0, "strict", "strict",
                  "stop before changing anything on a finding 'luamig verify' would report"),
  o_models = VALUE(0, "models", "models", "MODULE",
                   "the models module or file (default: models in luamig.lua)");

static const luamig_cli_option *const branches_opts[] = { &o_verbose, NULL };
static const luamig_cli_option *const check_opts[] = { &o_models, NULL };
static const luamig_cli_option *const config_opts[] = {
  OWN(FLAG(0, "print-url", "print_url", "the database URL, masked")), NULL };
static const luamig_cli_option *const current_opts[] = { &o_verbose, NULL };
static const luamig_cli_option *const downgrade_opts[] = {
  &o_sql, &o_backup, &o_lock_wait, &o_strict, NULL };
static const luamig_cli_option *const heads_opts[] = { &o_verbose, NULL };
static const luamig_cli_option *const history_opts[] = {
  &o_verbose,
  OWN(FLAG('i', "indicate-current", "indicate_current",
           "mark the revision(s) the database is at with (current)")),
  OWN(VALUE('r', "rev-range", "range", "START:END",
            "only the revisions in this range (either end may be empty)")),
  NULL };
static const luamig_cli_option *const lint_opts[] = {
  &o_verbose,
  OWN(FLAG(0, "style", "style", "the style rules too (bigint keys, identity, timestamptz, text)")),
  NULL };
static const luamig_cli_option *const merge_opts[] = { &o_message, &o_rev_id, NULL };
static const luamig_cli_option *const revision_opts[] = {
  &o_message, &o_rev_id,
  OWN(VALUE(0, "head", "head", "REV", "base the revision on REV (default: the head)")),
  OWN(FLAG(0, "splice", "splice", "allow a --head that is not a head")),
  OWN(VALUE(0, "branch-label", "branch_label", "NAME", "a branch label for the new revision")),
  OWN({ 0, "depends-on", "depends_on", "REV",
        "a revision of another branch this one depends on (repeatable)", true, 0 }),
  OWN(VALUE(0, "version-path", "version_path", "DIR",
            "the versions directory to write the file into")),
  OWN(FLAG(0, "autogenerate", "autogenerate",
           "the operations that take the database to the models")),
  OWN(FLAG(0, "allow-empty", "allow_empty",
           "with --autogenerate: write the file even when nothing changed")),
  &o_models, NULL };
static const luamig_cli_option *const stamp_opts[] = {
  OWN(FLAG(0, "purge", "purge", "empty the version table first")), &o_sql, &o_lock_wait, NULL };
static const luamig_cli_option *const upgrade_opts[] = {
  &o_sql,
  OWN(VALUE(0, "lint", "lint", "strict|warn|off",
            "lint the revisions first: refuse, warn (default) or skip")),
  &o_backup, &o_lock_wait, &o_strict, NULL };
static const luamig_cli_option *const verify_opts[] = {
  OWN(FLAG(0, "strict", "strict", "exit 1 when anything is found")), NULL };
static const luamig_cli_option *const no_opts[] = { NULL };

/* Every command takes these; needs: help COMMAND shows one with the commands needing that. */
const luamig_cli_option *const luamig_cli_globals[] = {
  OWN({ 'c', "config", "config", "FILE", "configuration file (default: luamig.lua)", false,
        CLI_REVS | CLI_DB }),
  OWN({ 0, "url", "url", "URL", "database URL (default: url in the config, then $DATABASE_URL)",
        false, CLI_DB }),
  OWN({ 0, "direct-url", "direct_url", "URL", "for the commands that take the lock: the server "
        "itself or a session-mode pool, when URL goes through a pooler", false, CLI_LOCK }),
  OWN({ 0, "revision-timeout", "revision_timeout", "DURATION",
        "time budget of each call into a revision (default 10min; 0: none)", false, CLI_REVS }),
  OWN({ 'q', "quiet", "quiet", NULL, "no progress lines", false, CLI_LOG }),
  OWN({ 0, "json", "json", NULL,
        "one JSON document on stdout (every command but help); errors as {\"error\": ...}",
        false, CLI_JSON }),
  OWN(FLAG('h', "help", "help", "this help; 'luamig help COMMAND' for one command")),
  OWN(FLAG(0, "version", "version", "print the version")),
  NULL };

/* ---- the commands, alphabetical ---- */

#define NO_ARGS { NULL, NULL, 0, NULL }
#define READS (CLI_JSON | CLI_REVS)
#define MIGRATES (CLI_JSON | CLI_REVS | CLI_DB | CLI_LOCK | CLI_LOG)

const luamig_cli_command luamig_cli_commands[] = {
  { "branches", NULL, "branches", luamig_cli_print_branches, READS, branches_opts, NO_ARGS,
    "Show the branch points", "  luamig branches --verbose\n" },
  { "check", NULL, "check", print_check, READS | CLI_DB, check_opts, NO_ARGS,
    "Compare the models with the database; exit 1 when they differ",
    "  luamig check                     # CI: models and database agree?\n" },
  { "config", run_config, NULL, NULL, CLI_HIDDEN, config_opts, NO_ARGS,
    NULL, "  luamig config --print-url\n" },
  { "current", NULL, "current", luamig_cli_print_current, READS | CLI_DB, current_opts,
    NO_ARGS,
    "Show the revision(s) the database is at",
    "  luamig current --verbose\n  luamig current --json\n" },
  { "downgrade", NULL, "downgrade", print_downgrade, MIGRATES, downgrade_opts,
    { "TARGET", "target", 1, "base" },
    "Revert revisions: -1, REV, REV-N, LABEL@-N, LABEL@base, base",
    "  luamig downgrade -1              # undo the newest revision\n"
    "  luamig downgrade a1b2c3d4e5f6\n"
    "  luamig downgrade billing@base    # one branch only\n"
    "  luamig downgrade head:base --sql > down.sql\n" },
  { "heads", NULL, "heads", luamig_cli_print_heads, READS, heads_opts, NO_ARGS,
    "Show the head revision(s) of the scripts", "  luamig heads --verbose\n" },
  { "help", run_help, NULL, NULL, 0, no_opts,
    { "[COMMAND]", "command", 1, NULL },
    "Show help for luamig or one command", "  luamig help upgrade\n" },
  { "history", run_history, "history", luamig_cli_print_history, READS | CLI_DB, history_opts,
    NO_ARGS,
    "List revisions, newest first",
    "  luamig history -r -3:current\n  luamig history --verbose -r base:head\n" },
  { "init", NULL, "init", print_init, CLI_JSON, no_opts,
    { "[DIR]", "dir", 1, NULL },
    "Create luamig.lua, versions/ and the revision template",
    "  luamig init\n  luamig init db                   # the project in db/\n" },
  { "lint", NULL, "lint", print_lint, READS | CLI_DB, lint_opts,
    { "[RANGE]", "range", 1, "base:head" },
    "Find changes that lock busy tables or break the release; exit 2",
    "  luamig lint                      # the pending revisions\n"
    "  luamig lint base:head --verbose\n" },
  { "merge", NULL, "merge", print_generated, READS, merge_opts,
    { "[heads | REV REV ...]", "revisions", -1, "heads" },
    "Create a merge revision joining two or more heads",
    "  luamig merge -m \"merge migrations\"\n  luamig merge 4be1f0 9e8d7c\n" },
  { "revision", run_revision, "revision", print_generated, READS | CLI_DB, revision_opts, NO_ARGS,
    "Create a new revision file on top of the head",
    "  luamig revision -m \"Add email index\"\n"
    "  luamig revision --autogenerate -m \"Add description to sessions\"\n"
    "  luamig revision -m \"Billing\" --head base --branch-label billing\n" },
  { "show", NULL, "show", luamig_cli_print_show, READS, no_opts,
    { "[REV]", "target", 1, "head heads base" },
    "Show one revision in full: header, path, description",
    "  luamig show head\n  luamig show 3f2a\n" },
  { "stamp", NULL, "stamp", print_stamp, MIGRATES, stamp_opts,
    { "TARGET", "target", 1, "head heads base" },
    "Set the version table to TARGET without running revisions",
    "  luamig stamp head                # adopt a database built by hand\n"
    "  luamig stamp --purge 3f2a9c1b7e4d\n" },
  { "status", NULL, "status", luamig_cli_print_status, READS | CLI_DB, no_opts, NO_ARGS,
    "Pending revisions; exit 0 at head, 3 when some are pending",
    "  luamig status || test $? -eq 3   # CI: 3 means pending revisions\n" },
  { "upgrade", NULL, "upgrade", print_upgrade, MIGRATES, upgrade_opts,
    { "[TARGET]", "target", 1, "head heads" },
    "Apply revisions: head (default), heads, +N, REV+N, LABEL@head",
    "  luamig upgrade                   # to head\n"
    "  luamig upgrade +1                # one more revision\n"
    "  luamig upgrade 3f2a              # a revision, by unique prefix\n"
    "  luamig upgrade heads             # every branch\n"
    "  luamig upgrade head --sql > up.sql\n"
    "  luamig upgrade --backup before.sql --lint strict\n" },
  { "verify", NULL, "verify", luamig_cli_print_verify, READS | CLI_DB, verify_opts, NO_ARGS,
    "Check applied revisions against their files and the audit log",
    "  luamig verify --strict           # CI: exit 1 on any finding\n" },
};
const int luamig_cli_ncommands = (int)(sizeof luamig_cli_commands / sizeof luamig_cli_commands[0]);

/*
 * cli_table.c: the luamig command's table (git's commands[] in git.c): each
 * command's core function, needs, own options, arguments, summary, examples
 * and printer; the global options. Help, "did you mean", the parser in cli.c
 * and --list-cmds/--list-opts (which the shell completions read) all read it.
 */
#include <stdio.h>
#include <string.h>

#include "luamig.h"
#include "cli.h"

static int run_help(lua_State *L, const luamig_cli_command *c);

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
                   "the models module or file (default: models in luamig.lua)"),
  /* many databases at once (fleet.c): upgrade, downgrade, current, status, verify */
  o_targets = VALUE(0, "targets", "targets_file", "FILE",
                    "run on each database of FILE (one URL a line, # comments)"),
  o_all_databases = FLAG(0, "all-databases", "all_databases",
                         "run on every database of the server (templates excluded)"),
  o_all_schemas = FLAG(0, "all-schemas", "all_schemas",
                       "run on every schema of the database, each with its search_path and "
                       "version table"),
  o_match = VALUE(0, "match", "match", "PATTERN",
                  "with --all-databases or --all-schemas: only the names LIKE PATTERN"),
  o_jobs = VALUE(0, "jobs", "jobs", "N", "targets at once (default 4)"),
  o_continue = FLAG(0, "continue-on-error", "continue_on_error",
                    "start the remaining targets after one failed");
#define FLEET &o_targets, &o_all_databases, &o_all_schemas, &o_match, &o_jobs, &o_continue

static const luamig_cli_option *const branches_opts[] = { &o_verbose, NULL };
static const luamig_cli_option *const check_opts[] = { &o_models, NULL };
static const luamig_cli_option *const config_opts[] = {
  OWN(FLAG(0, "print-url", "print_url", "the database URL, masked")), NULL };
static const luamig_cli_option *const current_opts[] = { &o_verbose, FLEET, NULL };
static const luamig_cli_option *const downgrade_opts[] = {
  &o_sql, &o_backup, &o_lock_wait, &o_strict, FLEET, NULL };
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
static const luamig_cli_option *const test_opts[] = {
  OWN(FLAG(0, "scratch", "scratch",
           "start a throwaway server of its own (initdb, pg_ctl) instead of CREATE DATABASE")),
  OWN(VALUE(0, "lint", "lint", "strict|warn|off",
            "the lint check: findings fail, are listed (default), or it is skipped")),
  &o_models, NULL };
static const luamig_cli_option *const upgrade_opts[] = {
  &o_sql,
  OWN(VALUE(0, "lint", "lint", "strict|warn|off",
            "lint the revisions first: refuse, warn (default) or skip")),
  &o_backup, &o_lock_wait, &o_strict, FLEET, NULL };
static const luamig_cli_option *const verify_opts[] = {
  OWN(FLAG(0, "strict", "strict", "exit 1 when anything is found")), FLEET, NULL };
static const luamig_cli_option *const status_opts[] = { FLEET, NULL };
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
  { "check", NULL, "check", luamig_cli_print_check, READS | CLI_DB, check_opts, NO_ARGS,
    "Compare the models with the database; exit 1 when they differ",
    "  luamig check                     # CI: models and database agree?\n" },
  { "config", luamig_cli_run_config, NULL, NULL, CLI_HIDDEN, config_opts, NO_ARGS,
    NULL, "  luamig config --print-url\n" },
  { "current", luamig_fleet_run, "current", luamig_cli_print_current, READS | CLI_DB, current_opts,
    NO_ARGS,
    "Show the revision(s) the database is at",
    "  luamig current --verbose\n  luamig current --json\n" },
  { "downgrade", luamig_fleet_run, "downgrade", luamig_cli_print_downgrade, MIGRATES, downgrade_opts,
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
  { "history", luamig_cli_run_history, "history", luamig_cli_print_history, READS | CLI_DB, history_opts,
    NO_ARGS,
    "List revisions, newest first",
    "  luamig history -r -3:current\n  luamig history --verbose -r base:head\n" },
  { "init", NULL, "init", luamig_cli_print_init, CLI_JSON, no_opts,
    { "[DIR]", "dir", 1, NULL },
    "Create luamig.lua, versions/ and the revision template",
    "  luamig init\n  luamig init db                   # the project in db/\n" },
  { "lint", NULL, "lint", luamig_cli_print_lint, READS | CLI_DB, lint_opts,
    { "[RANGE]", "range", 1, "base:head" },
    "Find changes that lock busy tables or break the release; exit 2",
    "  luamig lint                      # the pending revisions\n"
    "  luamig lint base:head --verbose\n" },
  { "merge", NULL, "merge", luamig_cli_print_generated, READS, merge_opts,
    { "[heads | REV REV ...]", "revisions", -1, "heads" },
    "Create a merge revision joining two or more heads",
    "  luamig merge -m \"merge migrations\"\n  luamig merge 4be1f0 9e8d7c\n" },
  { "revision", luamig_cli_run_revision, "revision", luamig_cli_print_generated, READS | CLI_DB, revision_opts, NO_ARGS,
    "Create a new revision file on top of the head",
    "  luamig revision -m \"Add email index\"\n"
    "  luamig revision --autogenerate -m \"Add description to sessions\"\n"
    "  luamig revision -m \"Billing\" --head base --branch-label billing\n" },
  { "show", NULL, "show", luamig_cli_print_show, READS, no_opts,
    { "[REV]", "target", 1, "head heads base" },
    "Show one revision in full: header, path, description",
    "  luamig show head\n  luamig show 3f2a\n" },
  { "stamp", NULL, "stamp", luamig_cli_print_stamp, MIGRATES, stamp_opts,
    { "TARGET", "target", 1, "head heads base" },
    "Set the version table to TARGET without running revisions",
    "  luamig stamp head                # adopt a database built by hand\n"
    "  luamig stamp --purge 3f2a9c1b7e4d\n" },
  { "status", luamig_fleet_run, "status", luamig_cli_print_status, READS | CLI_DB, status_opts,
    NO_ARGS,
    "Pending revisions; exit 0 at head, 3 when some are pending",
    "  luamig status || test $? -eq 3   # CI: 3 means pending revisions\n" },
  { "test", luamig_cli_run_test, "test", NULL, MIGRATES | CLI_ERRORS_2, test_opts,
    { "[RANGE]", "range", 1, "base:head" },
    "Prove every revision reversible and the models in sync",
    "  luamig test                      # in <db>_luamig_test_<pid>, dropped after\n"
    "  luamig test --scratch            # CI: on a throwaway server (initdb, pg_ctl)\n"
    "  luamig test 7c9e2d4f1b3a:head    # only the revisions after 7c9e2d4f1b3a\n"
    "  luamig test --json | jq -c 'select(.status == \"fail\")'\n" },
  { "upgrade", luamig_fleet_run, "upgrade", luamig_cli_print_upgrade, MIGRATES, upgrade_opts,
    { "[TARGET]", "target", 1, "head heads" },
    "Apply revisions: head (default), heads, +N, REV+N, LABEL@head",
    "  luamig upgrade                   # to head\n"
    "  luamig upgrade +1                # one more revision\n"
    "  luamig upgrade 3f2a              # a revision, by unique prefix\n"
    "  luamig upgrade heads             # every branch\n"
    "  luamig upgrade head --sql > up.sql\n"
    "  luamig upgrade --backup before.sql --lint strict\n"
    "  luamig upgrade --all-databases --match 'tenant_%' --jobs 8\n"
    "  luamig upgrade --all-schemas --match 'tenant_%'  # a version table each\n"
    "  luamig upgrade --targets tenants.txt --continue-on-error\n" },
  { "verify", luamig_fleet_run, "verify", luamig_cli_print_verify, READS | CLI_DB, verify_opts, NO_ARGS,
    "Check applied revisions against their files and the audit log",
    "  luamig verify --strict           # CI: exit 1 on any finding\n" },
};
const int luamig_cli_ncommands = (int)(sizeof luamig_cli_commands / sizeof luamig_cli_commands[0]);

/* ---- lookups ---- */

const luamig_cli_command *luamig_cli_find(const char *name) {
  for (int i = 0; i < luamig_cli_ncommands; i++)
    if (strcmp(luamig_cli_commands[i].name, name) == 0) return &luamig_cli_commands[i];
  return NULL;
}

const char *luamig_cli_nearest_command(const char *name) {
  const char *best = NULL;
  int bestd = 3;
  for (int i = 0; i < luamig_cli_ncommands; i++) {
    const luamig_cli_command *c = &luamig_cli_commands[i];
    int d = c->needs & CLI_HIDDEN ? 99 : luamig_cli_distance(name, c->name);
    if (d < bestd) { bestd = d; best = c->name; }
  }
  return best;
}

const luamig_cli_option *luamig_cli_option_named(const luamig_cli_option *const *list,
                                                 const char *a, size_t len) {
  for (; list && *list; list++) {
    const luamig_cli_option *o = *list;
    if (a[1] != '-' ? len == 2 && o->shortname == a[1]
                    : len - 2 == strlen(o->longname) && strncmp(a + 2, o->longname, len - 2) == 0)
      return o;
  }
  return NULL;
}

/* ---- help ---- */

/* Prints word after a space, or on a new line indented by indent when the
 * line would pass 79 columns; returns the column after it. */
static int put_word(const char *word, int col, int indent) {
  int len = (int)strlen(word);
  if (col + 1 + len > 79) {
    printf("\n%*s", indent, "");
    col = indent;
  } else {
    putchar(' ');
    col++;
  }
  fputs(word, stdout);
  return col + len;
}

/* Prints the words of text after column col, wrapped at 79 columns with
 * indent; returns the column after the last. */
static int put_words(const char *text, int col, int indent) {
  char word[160];
  for (const char *p = text; *p;) {
    size_t n = strcspn(p, " ");
    if (n > 0 && n < sizeof word) {
      memcpy(word, p, n);
      word[n] = '\0';
      col = put_word(word, col, indent);
    }
    p += n + (p[n] == ' ');
  }
  return col;
}

/* "  -m, --message MESSAGE     the new revision's message" (help: o's own when NULL) */
static void print_option(const luamig_cli_option *o, const char *help) {
  int n = printf("  ");
  if (o->shortname) n += printf("-%c, ", o->shortname);
  n += printf("--%s%s%s", o->longname, o->arg ? " " : "", o->arg ? o->arg : "");
  if (n > 25) n = printf("\n%25s", "") - 1;
  else n += printf("%*s", 25 - n, "");
  put_words(help ? help : o->help, n, 26);
  putchar('\n');
}

/* "usage: luamig upgrade [--sql] [--lint strict|warn|off] ... [TARGET]", as
 * argparse writes it, from the table (name NULL: luamig's global options,
 * but -h and --version). */
static void print_usage(const char *name, const luamig_cli_option *const *opts, const char *args) {
  int col = printf("usage: luamig%s%s", name ? " " : "", name ? name : ""), indent = col + 1;
  char word[128];
  for (const luamig_cli_option *const *o = opts; *o; o++) {
    if (name == NULL && (*o)->needs == 0) continue;
    if ((*o)->shortname) snprintf(word, sizeof word, "[-%c", (*o)->shortname);
    else snprintf(word, sizeof word, "[--%s", (*o)->longname);
    size_t n = strlen(word);
    snprintf(word + n, sizeof word - n, "%s%s]%s", (*o)->arg ? " " : "", (*o)->arg ? (*o)->arg : "",
             (*o)->list ? "..." : "");
    col = put_word(word, col, indent);
  }
  if (args) put_words(args, col, indent);
  putchar('\n');
}

void luamig_cli_help(const luamig_cli_command *c) {
  if (c == NULL) {
    print_usage(NULL, luamig_cli_globals, "COMMAND [ARGS]");
    printf("\nOptions:\n");
    for (const luamig_cli_option *const *o = luamig_cli_globals; *o; o++) print_option(*o, NULL);
    printf("\nCommands:\n");
    for (int i = 0; i < luamig_cli_ncommands; i++)
      if (!(luamig_cli_commands[i].needs & CLI_HIDDEN))
        printf("  %-11s %s\n", luamig_cli_commands[i].name, luamig_cli_commands[i].summary);
    return;
  }
  print_usage(c->name, c->options, c->args.name);
  if (c->summary) printf("\n%s.\n", c->summary);
  printf("\nOptions:\n");
  for (const luamig_cli_option *const *o = c->options; *o; o++) print_option(*o, NULL);
  print_option(luamig_cli_option_named(luamig_cli_globals, "-h", 2), "this help");
  int col = -1, left = 0;            /* the global options it takes, on one wrapped line */
  for (const luamig_cli_option *const *o = luamig_cli_globals; *o; o++)
    left += ((*o)->needs & c->needs) != 0;
  char word[128];
  for (const luamig_cli_option *const *o = luamig_cli_globals; *o; o++) {
    if (!((*o)->needs & c->needs)) continue;
    if (col < 0) col = printf("\nGlobal options:") - 1;
    const char *sep = --left ? "," : "";
    if ((*o)->shortname) snprintf(word, sizeof word, "-%c%s%s%s", (*o)->shortname,
                                  (*o)->arg ? " " : "", (*o)->arg ? (*o)->arg : "", sep);
    else snprintf(word, sizeof word, "--%s%s%s%s", (*o)->longname, (*o)->arg ? " " : "",
                  (*o)->arg ? (*o)->arg : "", sep);
    col = put_word(word, col, 2);
  }
  if (col >= 0) {
    put_words("(see 'luamig --help')", col, 2);
    putchar('\n');
  }
  if (c->examples) printf("\nExamples:\n%s", c->examples);
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

/* ---- what the shell completions read ---- */

/* --list-cmds: the commands, one a line; =summary adds a tab and the
 * summary; =api: the core functions they call (init.lua must expose them). */
void luamig_cli_list_commands(const char *how) {
  for (int i = 0; i < luamig_cli_ncommands; i++) {
    const luamig_cli_command *c = &luamig_cli_commands[i];
    if (strcmp(how, "api") == 0) {
      if (c->core) printf("%s\n", c->core);
    } else if (!(c->needs & CLI_HIDDEN)) {
      printf("%s%s%s\n", c->name, *how ? "\t" : "", *how ? c->summary : "");
    }
  }
}

/* --list-opts [CMD]: a command's own options (the global ones without CMD),
 * one a line: "--long -s ARG help..." with "-" for no short name and no
 * value; then "args KEY WORDS..." for its positional arguments: KEY is dir,
 * command or a revision kind, WORDS the symbolic targets it takes. */
int luamig_cli_list_options(lua_State *L, const char *name) {
  const luamig_cli_command *c = name ? luamig_cli_find(name) : NULL;
  if (name && !c) return luaL_error(L, "--list-opts: no command '%s'", name);
  for (const luamig_cli_option *const *o = c ? c->options : luamig_cli_globals; *o; o++)
    printf("--%s %s%c %s %s\n", (*o)->longname, (*o)->shortname ? "-" : "",
           (*o)->shortname ? (*o)->shortname : '-', (*o)->arg ? (*o)->arg : "-", (*o)->help);
  if (c && c->args.key)
    printf("args %s%s%s\n", c->args.key, c->args.words ? " " : "",
           c->args.words ? c->args.words : "");
  return 0;
}

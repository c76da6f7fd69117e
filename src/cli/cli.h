/*
 * cli.h: what the parts of the luamig command share, in layers that call
 * downwards only: cli.c parses argv and runs a command of the table in
 * cli_table.c (git's commands[] in git.c), whose handlers and printers are in
 * cli_commands.c (the commands that write) and cli_report.c (the read-only
 * ones), all over cli_lib.c. Handlers take the options table at stack index 1.
 */
#ifndef LUAMIG_CLI_H
#define LUAMIG_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

typedef struct luamig_cli_state {
  bool quiet;                        /* -q: no progress lines */
  bool json;                         /* --json: one document on stdout, errors included */
  bool sql;                          /* --sql: stdout is a script */
  bool tty;                          /* stdout is a terminal: the [i/N] counter */
  bool colour;                       /* ... and NO_COLOR unset */
  int error_status;                  /* the exit status of an error (0: 1, the default) */
} luamig_cli_state;

extern luamig_cli_state luamig_cli;

#define RED "\033[31m"
#define YELLOW "\033[33m"
#define DIM "\033[2m"
#define RESET "\033[0m"
const char *luamig_cli_paint(const char *code);    /* code on a terminal, "" elsewhere */

/* What a command needs and takes besides its own options. */
enum {
  CLI_JSON = 1,                      /* --json: one document on stdout */
  CLI_REVS = 2,                      /* loads the revision files (--revision-timeout) */
  CLI_DB = 4,                        /* connects to the database (--url) */
  CLI_LOCK = 8,                      /* takes the migration lock (--direct-url) */
  CLI_LOG = 16,                      /* progress lines through the core's log */
  CLI_HIDDEN = 32,                   /* for scripts: not in help nor completion */
  CLI_ERRORS_2 = 64,                 /* its errors exit 2: 1 is one of its results (test) */
};

/* One option: -v/--verbose sets opts.verbose = true; --message MESSAGE sets
 * opts.message = "..."; a list option (--depends-on) gathers its values. */
typedef struct luamig_cli_option {
  char shortname;                    /* 'v' for -v; 0 for none */
  const char *longname;              /* "verbose" for --verbose */
  const char *key;                   /* the options-table field it sets */
  const char *arg;                   /* the value's name ("MESSAGE"); NULL for a flag */
  const char *help;                  /* one line */
  bool list;                         /* repeatable: the values gathered in a list */
  unsigned needs;                    /* a global one: shown with the commands needing this */
} luamig_cli_option;

/* The positional arguments: into opts[key], a string (max 1) or a list (the
 * core says what a missing one means). */
typedef struct luamig_cli_args {
  const char *name;                  /* for usage: "TARGET", "[REV ...]" */
  const char *key;
  int max;                           /* -1: any number */
  const char *words;                 /* what completion offers besides revision ids */
} luamig_cli_args;

typedef struct luamig_cli_command luamig_cli_command;
struct luamig_cli_command {
  const char *name;
  int (*handler)(lua_State *L, const luamig_cli_command *c);  /* NULL: luamig_cli_run */
  const char *core;                  /* the luamig.core function it calls; NULL: none */
  int (*print)(lua_State *L, int res);   /* prints core's result; returns the exit status */
  unsigned needs;                    /* CLI_* */
  const luamig_cli_option *const *options;   /* its own, NULL-terminated */
  luamig_cli_args args;
  const char *summary;               /* one line, for help and completion */
  const char *examples;              /* lines of "  luamig ...", for help COMMAND */
};

/* ---- cli_table.c: the table, alphabetical; the options every command takes ---- */
extern const luamig_cli_command luamig_cli_commands[];
extern const int luamig_cli_ncommands;
extern const luamig_cli_option *const luamig_cli_globals[];
const luamig_cli_command *luamig_cli_find(const char *name);
/* The command nearest to name (at most 2 edits away), or NULL. */
const char *luamig_cli_nearest_command(const char *name);
/* The option a names ("-v", "--verbose", "--message" of "--message=x": len
 * bytes of a) in list, or NULL. */
const luamig_cli_option *luamig_cli_option_named(const luamig_cli_option *const *list,
                                                 const char *a, size_t len);
/* The help of c (NULL: luamig's own) on stdout. */
void luamig_cli_help(const luamig_cli_command *c);
/* --list-cmds[=summary|api] and --list-opts [CMD], for the shell completions. */
void luamig_cli_list_commands(const char *how);
int luamig_cli_list_options(lua_State *L, const char *name);

/* ---- cli_lib.c: what every part shares (calls no other part) ---- */
/* Calls core[c->core](opts), with the progress log when c needs one, and
 * c->print on its result: the handler of most commands. */
int luamig_cli_run(lua_State *L, const luamig_cli_command *c);
void luamig_cli_call(lua_State *L, const char *name);      /* core[name](opts), result on top */
bool luamig_cli_flag(lua_State *L, const char *name);
const char *luamig_cli_field(lua_State *L, int t, const char *k);
/* With --json prints { key = value at res } (the value itself when key is NULL). */
bool luamig_cli_json(lua_State *L, const char *key, int res);
/* Prints the strings of the list t[key] (t itself when key is NULL), one line each after prefix. */
void luamig_cli_print_list(lua_State *L, int t, const char *key, const char *prefix);
/* Levenshtein distance of a and b (99 past 30 bytes): for "did you mean". */
int luamig_cli_distance(const char *a, const char *b);

/* ---- cli_progress.c: the progress line of a terminal (calls no other part) ---- */
/* head is the open line it follows (NULL: none); progress draws head and text
 * on a terminal (nothing elsewhere: the caller leaves it out with -q and
 * --json); end erases the progress and draws the head again. */
void luamig_cli_progress_head(const char *head);
void luamig_cli_progress(const char *text);
void luamig_cli_progress_end(void);

/* ---- fleet.c: one command on many databases or tenant schemas (fleet.h) ---- */
/* The handler of upgrade, downgrade, current, status and verify: a fleet run
 * when the options or the config name several targets (--targets,
 * --all-databases, --all-schemas, targets/schemas in luamig.lua), a fleet's
 * child with opts.fleet_child, else luamig_cli_run. */
int luamig_fleet_run(lua_State *L, const luamig_cli_command *c);

/* ---- cli_commands.c: the commands that write, lint and check ---- */
int luamig_cli_print_upgrade(lua_State *L, int res);
int luamig_cli_print_downgrade(lua_State *L, int res);
int luamig_cli_print_stamp(lua_State *L, int res);
int luamig_cli_print_init(lua_State *L, int res);
int luamig_cli_print_generated(lua_State *L, int res);     /* revision, merge */
int luamig_cli_print_lint(lua_State *L, int res);
int luamig_cli_print_check(lua_State *L, int res);
int luamig_cli_run_revision(lua_State *L, const luamig_cli_command *c);
int luamig_cli_run_history(lua_State *L, const luamig_cli_command *c);
int luamig_cli_run_config(lua_State *L, const luamig_cli_command *c);

/* ---- cli_test.c: luamig test, a line (or JSON object) per check ---- */
int luamig_cli_run_test(lua_State *L, const luamig_cli_command *c);

/* ---- cli_report.c: the read-only commands ---- */
int luamig_cli_print_current(lua_State *L, int res);
int luamig_cli_print_heads(lua_State *L, int res);
int luamig_cli_print_history(lua_State *L, int res);
int luamig_cli_print_show(lua_State *L, int res);
int luamig_cli_print_branches(lua_State *L, int res);
int luamig_cli_print_status(lua_State *L, int res);
int luamig_cli_print_verify(lua_State *L, int res);

/* ---- json.c: --json output (the CLI) ---- */

/* Pushes the JSON text of the value at idx (arrays for sequences, objects
 * with sorted keys); returns it. */
const char *luamig_push_json(lua_State *L, int idx);
/* Pushes the Lua value of the JSON text s (null: nil); false (nothing pushed)
 * when it is not one JSON value. */
bool luamig_json_decode(lua_State *L, const char *s, size_t len);

/* ---- testcmd.c: luamig test (the checks are lua/luamig/testrun.lua) ---- */

/* build/gen/embedded_lua.c (written by scripts/embed.c), linked into the command only:
 * registers the Lua modules autogenerate needs (luamig.schema, luamig.autogen,
 * ...) in package.preload, so the command needs no Lua files on disk. */
void luamig_open_embedded(lua_State *L);

#endif

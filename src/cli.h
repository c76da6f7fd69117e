/*
 * cli.h: what the two halves of the luamig command share (cli.c parses and
 * runs commands; cli_report.c prints the read-only ones). Handlers take the
 * options table at stack index 1 and the positional arguments at 2.
 */
#ifndef LUAMIG_CLI_H
#define LUAMIG_CLI_H

#include <stdbool.h>

#include <lua.h>

typedef struct luamig_cli_state {
  bool quiet;                        /* -q: no progress lines */
  bool json;                         /* --json: one document on stdout, errors included */
  bool sql;                          /* --sql: stdout is a script */
  bool colour;                       /* a terminal, and NO_COLOR unset */
} luamig_cli_state;

extern luamig_cli_state luamig_cli;

#define RED "\033[31m"
#define YELLOW "\033[33m"
#define DIM "\033[2m"
#define RESET "\033[0m"
const char *luamig_cli_paint(const char *code);    /* code on a terminal, "" elsewhere */

void luamig_cli_call(lua_State *L, const char *name);      /* core[name](opts), result on top */
int luamig_cli_nargs(lua_State *L);
const char *luamig_cli_arg(lua_State *L, int i);
void luamig_cli_at_most(lua_State *L, int n, const char *cmd);
bool luamig_cli_flag(lua_State *L, const char *name);
const char *luamig_cli_field(lua_State *L, int t, const char *k);
/* cli_progress.c: the progress line of a terminal (nothing elsewhere, nor with
 * -q, --json or --sql). head is the open line it follows (NULL: none); end
 * erases the progress and draws the head again. */
void luamig_cli_progress_head(const char *head);
void luamig_cli_progress(const char *text);
void luamig_cli_progress_end(void);

/* With --json prints { key = value at res } (the value itself when key is NULL). */
bool luamig_cli_json(lua_State *L, const char *key, int res);

/* fleet.c: runs cmd on every target when the options or the config name
 * several (--targets, --all-databases, --all-schemas, targets/schemas in
 * luamig.lua), or as one of a fleet's children (--fleet-child); returns the
 * exit status, or -1 when the command is a plain run. */
int luamig_fleet_maybe(lua_State *L, const char *cmd, int argc, char **argv);

int luamig_cli_current(lua_State *L);
int luamig_cli_heads(lua_State *L);
int luamig_cli_history(lua_State *L);
int luamig_cli_show(lua_State *L);
int luamig_cli_branches(lua_State *L);
int luamig_cli_status(lua_State *L);
int luamig_cli_verify(lua_State *L);

#endif

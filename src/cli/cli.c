/*
 * cli.c: the luamig command. Parses argv, with the options of the command
 * named there (the table in cli_table.c), into the same options table the
 * Lua API takes, and runs the command's handler. All work runs
 * inside one protected Lua call, so every error becomes one line on stderr
 * and exit status 1, and every resource is released by its __gc/__close.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "luamig.h"
#include "cli.h"

/* The option a names for command c: its own or a global one. */
static const luamig_cli_option *find_option(const luamig_cli_command *c, const char *a,
                                            size_t len) {
  const luamig_cli_option *o = luamig_cli_option_named(luamig_cli_globals, a, len);
  return o ? o : c ? luamig_cli_option_named(c->options, a, len) : NULL;
}

/* ---- argument parsing ---- */

/* A relative target such as "-1" is an argument, not an option. */
static bool is_negative_number(const char *s) {
  if (s[0] != '-' || s[1] == '\0') return false;
  for (s++; *s; s++) if (*s < '0' || *s > '9') return false;
  return true;
}

static bool is_option(const char *a) {
  return a[0] == '-' && a[1] != '\0' && !is_negative_number(a);
}

static size_t option_len(const char *a) {
  const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
  return eq ? (size_t)(eq - a) : strlen(a);
}

/* Whether option a takes a value for some command: tells an option's value
 * from the command's name before the command is known ("-m MSG revision"). */
static bool takes_value(const char *a, size_t len) {
  const luamig_cli_option *o = find_option(NULL, a, len);
  for (int i = 0; o == NULL && i < luamig_cli_ncommands; i++)
    o = luamig_cli_option_named(luamig_cli_commands[i].options, a, len);
  return o && o->arg && a[len] != '=';
}

/* The command argv names: its first word that is neither an option nor an option's value. */
static const char *command_name(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) return i + 1 < argc ? argv[i + 1] : NULL;
    if (!is_option(argv[i])) return argv[i];
    if (takes_value(argv[i], option_len(argv[i]))) i++;
  }
  return NULL;
}

/* The error for option a (len bytes) that c does not take: the nearest one it
 * does take, or the commands that take it. */
static int unknown_option(lua_State *L, const luamig_cli_command *c, const char *a, size_t len) {
  if (c == NULL) return luaL_error(L, "unknown option '%s' (see 'luamig --help')", a);
  const char *best = NULL;
  int bestd = 3;
  const luamig_cli_option *const *lists[] = { c->options, luamig_cli_globals };
  for (int k = 0; k < 2 && a[1] == '-'; k++)
    for (const luamig_cli_option *const *o = lists[k]; *o; o++) {
      lua_pushlstring(L, a + 2, len - 2);
      int d = luamig_cli_distance(lua_tostring(L, -1), (*o)->longname);
      lua_pop(L, 1);
      if (d < bestd) { bestd = d; best = (*o)->longname; }
    }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; i < luamig_cli_ncommands; i++) {
    const luamig_cli_command *other = &luamig_cli_commands[i];
    if (other->needs & CLI_HIDDEN || !luamig_cli_option_named(other->options, a, len)) continue;
    luaL_addstring(&b, luaL_bufflen(&b) ? ", " : "; it is an option of ");
    luaL_addstring(&b, other->name);
  }
  luaL_pushresult(&b);
  if (best)
    return luaL_error(L, "%s: unknown option '%s'; did you mean '--%s'? (see 'luamig help %s')",
                      c->name, lua_pushlstring(L, a, len), best, c->name);
  return luaL_error(L, "%s: unknown option '%s' (see 'luamig help %s'%s)", c->name,
                    lua_pushlstring(L, a, len), c->name, lua_tostring(L, -1));
}

/* Sets opts[o->key] from option a (argv[*i]), taking its value from "=value"
 * or the next word. */
static void set_option(lua_State *L, const luamig_cli_option *o, int argc, char **argv, int *i) {
  const char *a = argv[*i];
  size_t len = option_len(a);
  if (o->arg == NULL) {
    if (a[len] == '=') luaL_error(L, "option '%s' takes no value", lua_pushlstring(L, a, len));
    lua_pushboolean(L, 1);
    lua_setfield(L, 1, o->key);
    return;
  }
  const char *v = a[len] == '=' ? a + len + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
  if (v == NULL) luaL_error(L, "option '%s' needs a value", a);
  if (o->list) {
    if (lua_getfield(L, 1, o->key) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
    }
    lua_pushstring(L, v);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  } else {
    lua_pushstring(L, v);
  }
  lua_setfield(L, 1, o->key);
}

/* Fills opts (at 1) from argv's options, the ones of c (NULL: no command) and
 * the global ones, and the list at 2 from the other words but the command's
 * name. */
static void parse_args(lua_State *L, const luamig_cli_command *c, int argc, char **argv) {
  bool only_args = false, named = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_args || !is_option(a)) {
      if (!named && c) named = true;       /* the command's own name */
      else { lua_pushstring(L, a); lua_rawseti(L, 2, (lua_Integer)lua_rawlen(L, 2) + 1); }
      continue;
    }
    if (strcmp(a, "--") == 0) { only_args = true; continue; }
    size_t len = option_len(a);
    const luamig_cli_option *o = find_option(c, a, len);
    if (o == NULL) unknown_option(L, c, a, len);
    set_option(L, o, argc, argv, &i);
  }
}

/* The positional arguments (list at 2) into opts[c->args.key]. */
static void take_args(lua_State *L, const luamig_cli_command *c) {
  int n = (int)lua_rawlen(L, 2), max = c->args.key ? c->args.max : 0;
  if (max >= 0 && n > max) {
    lua_rawgeti(L, 2, max + 1);
    luaL_error(L, "%s: unexpected argument '%s' (see 'luamig help %s')", c->name,
               lua_tostring(L, -1), c->name);
  }
  if (n == 0 && c->args.name && c->args.name[0] != '[') {   /* "TARGET": a required one */
    luaL_Buffer b;                   /* "downgrade needs a target" */
    luaL_buffinit(L, &b);
    for (const char *p = c->args.name; *p; p++) luaL_addchar(&b, (char)tolower((unsigned char)*p));
    luaL_pushresult(&b);
    luaL_error(L, "%s needs a %s (see 'luamig help %s')", c->name, lua_tostring(L, -1), c->name);
  }
  if (n == 0) return;
  if (max < 0) lua_pushvalue(L, 2);
  else lua_rawgeti(L, 2, 1);
  lua_setfield(L, 1, c->args.key);
}

static int cli_main(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  lua_settop(L, 0);
  const char *first = argc >= 2 ? argv[1] : "";   /* hidden, for the completions */
  if (strcmp(first, "--list-cmds") == 0 || strncmp(first, "--list-cmds=", 12) == 0) {
    luamig_cli_list_commands(first[11] ? first + 12 : "");
    return 0;
  }
  if (strcmp(first, "--list-opts") == 0) return luamig_cli_list_options(L, argc > 2 ? argv[2] : NULL);
  bool child = strcmp(first, "--fleet-child") == 0;   /* a fleet run's own (fleet_pool.c) */
  if (child) { argc--; argv++; }
  lua_newtable(L);                   /* 1: opts */
  lua_newtable(L);                   /* 2: positional args */
  const char *name = command_name(argc, argv);
  const luamig_cli_command *c = name ? luamig_cli_find(name) : NULL;
  if (c && c->needs & CLI_ERRORS_2) luamig_cli.error_status = 2;   /* a wrong option too */
  if (name && c == NULL) {
    const char *best = luamig_cli_nearest_command(name);
    if (best) return luaL_error(L, "unknown command '%s'; did you mean '%s'?", name, best);
    return luaL_error(L, "unknown command '%s' (see 'luamig --help')", name);
  }
  parse_args(L, c, argc, argv);
  if (child) { lua_pushboolean(L, 1); lua_setfield(L, 1, "fleet_child"); }
  luamig_cli.quiet = luamig_cli_flag(L, "quiet");
  luamig_cli.json = luamig_cli_flag(L, "json");
  luamig_cli.sql = luamig_cli_flag(L, "sql");
  luamig_cli.tty = isatty(STDOUT_FILENO);
  luamig_cli.colour = luamig_cli.tty && getenv("NO_COLOR") == NULL && !luamig_cli.json;
  if (luamig_cli_flag(L, "version")) {
    printf("luamig %s (%s, libpq %d)\n", LUAMIG_VERSION, LUA_RELEASE, PQlibVersion());
    return 0;
  }
  if (c == NULL || luamig_cli_flag(L, "help")) {
    luamig_cli_help(c);
    lua_pushinteger(L, c || luamig_cli_flag(L, "help") ? 0 : 1);
    return 1;
  }
  if (luamig_cli.json && !(c->needs & CLI_JSON))
    return luaL_error(L, "--json is not supported by %s", c->name);
  if (!child) take_args(L, c);       /* a fleet's child gets its arguments with its options */
  int status = c->handler ? c->handler(L, c) : luamig_cli_run(L, c);
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
    status = luamig_cli.error_status ? luamig_cli.error_status : 1;
  } else {
    status = (int)lua_tointeger(L, -1);
  }
  lua_close(L);
  return check_stdout(status);
}

/*
 * cli.c: the luamig command. Parses argv, with the options of the command
 * named there (the table in cli_commands.c), into the same options table the
 * Lua API takes, calls the core's command, prints its result. All work runs
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

luamig_cli_state luamig_cli = { false, false, false, false, false };

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
  if (strcmp(event, "start") == 0) {
    if (luamig_cli.tty && nsteps > 1)
      printf("%s[%lld/%lld]%s ", luamig_cli_paint(DIM), (long long)step, (long long)nsteps,
             luamig_cli_paint(RESET));
    printf("%s ... ", text);
    line_open = true;
  } else if (strcmp(event, "done") == 0) {
    printf("%s%.1f ms%s\n", luamig_cli_paint(DIM), ms, luamig_cli_paint(RESET));
    line_open = false;
  } else if (strcmp(event, "fail") == 0) {
    /* ends the progress line; with --sql there is none, and the error says it on stderr */
    if (line_open) printf("%sFAILED%s\n", luamig_cli_paint(RED), luamig_cli_paint(RESET));
    line_open = false;
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

/* ---- the table's lookups ---- */

const luamig_cli_command *luamig_cli_find(const char *name) {
  for (int i = 0; i < luamig_cli_ncommands; i++)
    if (strcmp(luamig_cli_commands[i].name, name) == 0) return &luamig_cli_commands[i];
  return NULL;
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

const char *luamig_cli_nearest_command(const char *name) {
  const char *best = NULL;
  int bestd = 3;
  for (int i = 0; i < luamig_cli_ncommands; i++) {
    const luamig_cli_command *c = &luamig_cli_commands[i];
    int d = c->needs & CLI_HIDDEN ? 99 : edit_distance(name, c->name);
    if (d < bestd) { bestd = d; best = c->name; }
  }
  return best;
}

/* The option a names ("-v", "--verbose", "--message" of "--message=x": len
 * bytes of a) in list, or NULL. */
static const luamig_cli_option *match(const luamig_cli_option *const *list, const char *a,
                                      size_t len) {
  for (; list && *list; list++) {
    const luamig_cli_option *o = *list;
    if (a[1] != '-' ? len == 2 && o->shortname == a[1]
                    : len - 2 == strlen(o->longname) && strncmp(a + 2, o->longname, len - 2) == 0)
      return o;
  }
  return NULL;
}

/* The option a names for command c: its own or a global one. */
static const luamig_cli_option *find_option(const luamig_cli_command *c, const char *a,
                                            size_t len) {
  const luamig_cli_option *o = match(luamig_cli_globals, a, len);
  return o ? o : c ? match(c->options, a, len) : NULL;
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
  print_option(match(luamig_cli_globals, "-h", 2), "this help");
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

/* ---- what the shell completions read ---- */

/* --list-cmds: the commands, one a line; =summary adds a tab and the
 * summary; =api: the core functions they call (init.lua must expose them). */
static void list_commands(const char *how) {
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
static int list_options(lua_State *L, const char *name) {
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
    o = match(luamig_cli_commands[i].options, a, len);
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
      int d = edit_distance(lua_tostring(L, -1), (*o)->longname);
      lua_pop(L, 1);
      if (d < bestd) { bestd = d; best = (*o)->longname; }
    }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; i < luamig_cli_ncommands; i++) {
    const luamig_cli_command *other = &luamig_cli_commands[i];
    if (other->needs & CLI_HIDDEN || !match(other->options, a, len)) continue;
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
    list_commands(first[11] ? first + 12 : "");
    return 0;
  }
  if (strcmp(first, "--list-opts") == 0) return list_options(L, argc > 2 ? argv[2] : NULL);
  lua_newtable(L);                   /* 1: opts */
  lua_newtable(L);                   /* 2: positional args */
  const char *name = command_name(argc, argv);
  const luamig_cli_command *c = name ? luamig_cli_find(name) : NULL;
  if (name && c == NULL) {
    const char *best = luamig_cli_nearest_command(name);
    if (best) return luaL_error(L, "unknown command '%s'; did you mean '%s'?", name, best);
    return luaL_error(L, "unknown command '%s' (see 'luamig --help')", name);
  }
  parse_args(L, c, argc, argv);
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
  take_args(L, c);
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
    status = 1;
  } else {
    status = (int)lua_tointeger(L, -1);
  }
  lua_close(L);
  return check_stdout(status);
}

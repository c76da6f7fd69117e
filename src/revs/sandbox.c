/*
 * sandbox.c: what a revision's code may do, and for how long.
 *
 * Every revision file runs in an environment of its own whose reads fall
 * through to one shared table of the standard libraries, with three changes:
 *  - print, io.write and io.stdout write to stderr (print with the file:line in
 *    front), so nothing a revision prints lands in a --sql script or a --json
 *    document; they are silent while the lint records a revision, so a message
 *    is seen once although upgrade() runs twice (the lint, then the run);
 *  - os.exit raises "os.exit is not allowed in a revision": a revision cannot
 *    end the run with a status of its choosing, half applied;
 *  - each call into a revision (its file's top level, upgrade(), downgrade(),
 *    the lint's recording run) has a time budget, revision_timeout, kept by a
 *    count hook; the time its statements spend on the server does not count
 *    (statement_timeout bounds that).
 * Whatever value a revision raises comes back as one "file:line: message"
 * string (a table with __tostring, nil, a string raised at level 0).
 */
#include <stdio.h>
#include <string.h>

#include "luamig.h"
#include "revs.h"

#define HOOK_EVERY 10000             /* instructions between two looks at the clock */

typedef struct budget {
  double limit_ms;                   /* 0: no limit */
  char label[32];                    /* the limit as configured, for messages */
  bool armed, quiet;
  double deadline;                   /* while armed */
  const char *what;                  /* "upgrade()", "the file", ... (static strings) */
} budget;

static const char budget_key = 0;    /* its address keys the state's budget in the registry */

static budget *get_budget(lua_State *L) {
  budget *b;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &budget_key) == LUA_TUSERDATA) {
    b = lua_touserdata(L, -1);
  } else {
    lua_pop(L, 1);
    b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &budget_key);
  }
  lua_pop(L, 1);                     /* the registry keeps it */
  return b;
}

void luamig_budget_limit(lua_State *L, double ms, const char *label) {
  budget *b = get_budget(L);
  b->limit_ms = ms;
  snprintf(b->label, sizeof b->label, "%s", label);
}

void luamig_budget_pause(lua_State *L, double ms) {
  budget *b = get_budget(L);
  if (b->armed) b->deadline += ms;
}

bool luamig_sandbox_quiet(lua_State *L, bool quiet) {
  budget *b = get_budget(L);
  bool was = b->quiet;
  b->quiet = quiet;
  return was;
}

void luamig_error_path(lua_State *L, const char *path) {
  if (lua_type(L, -1) != LUA_TSTRING) return;
  lua_Debug ar;
  const char *name = lua_pushfstring(L, "@%s", path);
  if (luaL_loadbuffer(L, "", 0, name) != LUA_OK) { lua_pop(L, 2); return; }
  lua_getinfo(L, ">S", &ar);         /* pops the empty chunk: ar.short_src is Lua's cut */
  lua_pop(L, 1);
  if (strcmp(ar.short_src, path) == 0) return;
  const char *cut = lua_pushfstring(L, "%s:", ar.short_src);
  const char *whole = lua_pushfstring(L, "%s:", path);
  luaL_gsub(L, lua_tostring(L, -3), cut, whole);
  lua_replace(L, -4);
  lua_pop(L, 2);
}

/* The count hook: past the deadline, raises at the line that is running; then
 * at every instruction, so a revision that catches the error (pcall in a loop)
 * meets it again at once in the frame around that pcall, and so on outwards. */
static void budget_hook(lua_State *L, lua_Debug *ar) {
  budget *b = get_budget(L);
  if (!b->armed || luamig_now_ms() <= b->deadline) return;
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  lua_getinfo(L, "Sl", ar);
  lua_pushfstring(L, "%s:%d: %s ran longer than revision_timeout (%s): an endless loop? "
                  "(--revision-timeout or revision_timeout in luamig.lua sets the limit)",
                  ar->source[0] == '@' ? ar->source + 1 : ar->short_src, ar->currentline,
                  b->what, b->label);
  lua_error(L);
}

/* Pushes the error value at idx as text: strings and numbers as they are,
 * __tostring when there is one, else what was raised. */
static const char *push_error_text(lua_State *L, int idx) {
  int t = lua_type(L, idx);
  if (t == LUA_TNIL) return lua_pushliteral(L, "nil error value");
  if (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN ||
      luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
    if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN) lua_pop(L, 1);
    return luaL_tolstring(L, idx, NULL);
  }
  return lua_pushfstring(L, "a %s value was raised as the error (give it a __tostring "
                         "metamethod)", luaL_typename(L, idx));
}

/* The message handler of a call into a revision (upvalue: its path): the
 * error as text, with "file:line: " of the revision's innermost line in
 * front unless it already starts there. */
static int render_error(lua_State *L) {
  const char *path = lua_tostring(L, lua_upvalueindex(1));
  push_error_text(L, 1);
  luamig_error_path(L, path);
  const char *msg = lua_tostring(L, -1);
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.source[0] != '@' || strcmp(ar.source + 1, path) != 0 || ar.currentline <= 0)
      continue;
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':') return 1;
    lua_pushfstring(L, "%s:%d: %s", path, ar.currentline, msg);
    return 1;
  }
  return 1;                          /* not raised from the revision's code: as it is */
}

int luamig_revision_pcall(lua_State *L, int nargs, int nresults, const char *path,
                          const char *what) {
  budget *b = get_budget(L);
  budget saved = *b;
  lua_Hook old_hook = lua_gethook(L);
  int old_mask = lua_gethookmask(L), old_count = lua_gethookcount(L);
  int fn = lua_gettop(L) - nargs;
  lua_pushstring(L, path);
  lua_pushcclosure(L, render_error, 1);
  lua_insert(L, fn);
  b->what = what;
  b->armed = b->limit_ms > 0;
  b->deadline = luamig_now_ms() + b->limit_ms;
  if (b->armed) lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
  int status = lua_pcall(L, nargs, nresults, fn);
  lua_sethook(L, old_hook, old_mask, old_count);
  b = get_budget(L);
  b->armed = saved.armed;
  b->deadline = saved.deadline;
  b->what = saved.what;
  lua_remove(L, fn);
  return status;
}

/* ---- the environment's base ---- */

/* Writes s to stderr after what stdout holds, so the two keep their order. */
static void to_stderr(const char *s, size_t n) {
  fflush(stdout);
  fwrite(s, 1, n, stderr);
  fflush(stderr);
}

/* print(...): "file:line: a\tb\n" on stderr. */
static int sandbox_print(lua_State *L) {
  if (get_budget(L)->quiet) return 0;
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_where(L, 1);                  /* the revision's line, before the buffer */
  luaL_buffinit(L, &b);
  lua_pushvalue(L, n + 1);
  luaL_addvalue(&b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  to_stderr(s, len);
  return 0;
}

/* io.write(...) and io.stdout:write(...): to stderr (upvalue 1: io.stderr),
 * nothing while quiet; returns the file written to, as io.write does. */
static int sandbox_write(lua_State *L) {
  int first = lua_istable(L, 1) ? 2 : 1;   /* called as a method of the stdout stand-in */
  lua_pushvalue(L, lua_upvalueindex(1));
  if (get_budget(L)->quiet) return 1;
  int out = lua_gettop(L);
  for (int i = first; i < out; i++) {
    size_t len;
    const char *s = luaL_checklstring(L, i, &len);
    to_stderr(s, len);
  }
  return 1;
}

static int sandbox_flush(lua_State *L) {
  fflush(stderr);
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

/* io.output(f) and io.close() would reach the real standard output. */
static int sandbox_output(lua_State *L) {
  if (!lua_isnoneornil(L, 1))
    return luaL_error(L, "io.output is not allowed in a revision (its output would go "
                      "into the --sql script); write to a file with io.open");
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

static int sandbox_close(lua_State *L) {
  if (lua_isnoneornil(L, 1))
    return luaL_error(L, "io.close() without a file is not allowed in a revision");
  lua_getfield(L, lua_upvalueindex(1), "close");
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static int sandbox_exit(lua_State *L) {
  return luaL_error(L, "os.exit is not allowed in a revision (raise an error to stop the "
                    "run: the revision is then rolled back)");
}

/* Pushes a copy of the library table `name` of the global table. */
static void push_library_copy(lua_State *L, const char *name) {
  lua_newtable(L);
  lua_getglobal(L, name);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, -5);
  }
  lua_pop(L, 1);
}

/* The sandbox's io: the library, with writes to standard output sent to stderr. */
static void push_io(lua_State *L) {
  push_library_copy(L, "io");
  int io = lua_gettop(L);
  lua_createtable(L, 0, 2);          /* io.stdout's stand-in: write and flush */
  int out = lua_gettop(L);
  lua_getfield(L, io, "stderr");
  lua_pushcclosure(L, sandbox_write, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, out, "write");
  lua_setfield(L, io, "write");
  lua_pushvalue(L, out);
  lua_pushcclosure(L, sandbox_flush, 1);
  lua_setfield(L, out, "flush");
  lua_pushvalue(L, out);
  lua_pushcclosure(L, sandbox_output, 1);
  lua_setfield(L, io, "output");
  lua_getglobal(L, "io");
  lua_pushcclosure(L, sandbox_close, 1);
  lua_setfield(L, io, "close");
  lua_setfield(L, io, "stdout");
}

static const char *const sandbox_names[] = {
  "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall",
  "rawequal", "rawget", "rawlen", "rawset", "require", "select", "setmetatable",
  "tonumber", "tostring", "type", "xpcall", "_VERSION",
  "coroutine", "math", "string", "table", "utf8", NULL
};

void luamig_push_sandbox(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, "luamig.sandbox") == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  int box = lua_gettop(L);
  for (int i = 0; sandbox_names[i]; i++) {
    lua_getglobal(L, sandbox_names[i]);
    lua_setfield(L, box, sandbox_names[i]);
  }
  lua_pushcfunction(L, sandbox_print);
  lua_setfield(L, box, "print");
  push_io(L);
  lua_setfield(L, box, "io");
  push_library_copy(L, "os");
  lua_pushcfunction(L, sandbox_exit);
  lua_setfield(L, -2, "exit");
  lua_setfield(L, box, "os");
  lua_pushvalue(L, box);
  lua_setfield(L, LUA_REGISTRYINDEX, "luamig.sandbox");
}

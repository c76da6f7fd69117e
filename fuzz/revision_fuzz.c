/*
 * revision_fuzz.c: the revision-file reader (luamig_load_revisions) on
 * arbitrary files. The input is split at NUL bytes into up to 8 files of a
 * temporary versions directory, so fuzzed revisions can name each other;
 * then the plans to heads and back to base are made, and each loaded
 * revision's upgrade() and downgrade() run against an offline op context
 * (the --sql sink), which reaches the op API and the SQL builders.
 *
 * Fuzzed Lua runs with the process's rights, so the state it runs in has
 * no io, no os.execute/remove/exit, no require, no print, and no __gc
 * metamethods (finalizers run with hooks off, out of the instruction budget).
 */
#include <sys/stat.h>
#include <time.h>

#include "fuzz.h"

#define MAX_FILES 8

static int refuse(lua_State *L) {
  return luaL_error(L, "fuzz: not available");
}

static int quiet(lua_State *L) {
  (void)L;
  return 0;
}

/* setmetatable without finalizers. */
static int safe_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) return luaL_error(L, "fuzz: no __gc");
    lua_pop(L, 1);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

static void lock_down(lua_State *L) {
  lua_newtable(L);                   /* os: only the clock and the environment */
  lua_getglobal(L, "os");
  static const char *const keep[] = { "clock", "date", "difftime", "getenv", "time", NULL };
  for (int i = 0; keep[i]; i++) {
    lua_getfield(L, -1, keep[i]);
    lua_setfield(L, -3, keep[i]);
  }
  lua_pop(L, 1);
  lua_setglobal(L, "os");
  lua_newtable(L);
  lua_setglobal(L, "io");
  lua_pushcfunction(L, refuse);
  lua_setglobal(L, "require");
  lua_pushcfunction(L, quiet);
  lua_setglobal(L, "print");
  lua_pushcfunction(L, safe_setmetatable);
  lua_setglobal(L, "setmetatable");
}

/* The instruction budget plus a wall-clock one (0.1 s: a real revision file
 * loads and runs in a few ms); the hook fires every 1000 instructions. */
static struct timespec started;
static unsigned long calls;

static void time_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double s = (double)(now.tv_sec - started.tv_sec) + (now.tv_nsec - started.tv_nsec) / 1e9;
  if (s > 0.1 || ++calls > FUZZ_INSN_CAP / 1000)
    luaL_error(L, "fuzz: budget exhausted");
}

typedef struct job { const char *dir; } job;

/* Runs fn ("upgrade"/"downgrade") of revision r, whose environment is at env,
 * as the runner does: op set in the environment, bound to a context of its own. */
static void run_fn(lua_State *L, int env, const luamig_rev *r, const char *fn) {
  int top = lua_gettop(L);
  luamig_opctx_new(L, 0)->transactional = r->transactional;
  luamig_ops_push(L, -1);
  lua_setfield(L, env, "op");
  lua_pushstring(L, fn);
  if (lua_rawget(L, env) == LUA_TFUNCTION && lua_pcall(L, 0, 0, 0) != LUA_OK &&
      getenv("FUZZ_VERBOSE"))
    fprintf(stderr, "fuzz: (expected) %s: %s\n", fn, lua_tostring(L, -1));
  lua_settop(L, top);
}

static int load(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushstring(L, j->dir);
  lua_rawseti(L, -2, 1);
  lua_setfield(L, -2, "versions");
  luamig_graph *g = luamig_load_revisions(L, -1, true, NULL);
  int gidx = lua_gettop(L);
  luamig_step *steps;
  int n = luamig_plan(L, g, NULL, 0, "heads", true, &steps);
  if (n != g->n) abort();            /* from base, heads means every revision */
  lua_pop(L, 1);
  int *cur = g->nheads ? g->heads : NULL;
  n = luamig_plan(L, g, cur, g->nheads, "base", false, &steps);
  if (n != g->n) abort();
  lua_pop(L, 1);
  lua_getiuservalue(L, gidx, 1);     /* envs */
  for (int i = 1; i <= g->n; i++) {
    luamig_load_body(L, g, gidx, i - 1);   /* plain files are compiled on demand */
    lua_rawgeti(L, -1, i);
    int env = lua_gettop(L);
    run_fn(L, env, &g->revs[i - 1], "upgrade");
    run_fn(L, env, &g->revs[i - 1], "downgrade");
    lua_pop(L, 1);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char dir[4200];
  static char paths[MAX_FILES][4300];
  if (dir[0] == '\0') {
    snprintf(dir, sizeof dir, "%s/versions", fuzz_dir());
    if (mkdir(dir, 0700) != 0) { perror(dir); abort(); }
    for (int i = 0; i < MAX_FILES; i++)
      snprintf(paths[i], sizeof paths[i], "%s/r%d.lua", dir, i);
  }
  for (int i = 0; i < MAX_FILES; i++) unlink(paths[i]);
  size_t start = 0;
  for (int i = 0; i < MAX_FILES && start <= size; i++) {
    const uint8_t *nul = i < MAX_FILES - 1 ? memchr(data + start, 0, size - start) : NULL;
    size_t end = nul ? (size_t)(nul - data) : size;
    fuzz_write(paths[i], data + start, end - start);
    start = end + 1;
  }
  fuzz_mem mem;
  lua_State *L = fuzz_state(&mem);
  lock_down(L);
  luamig_sandbox_quiet(L, true);     /* the revisions' print and io.write: not on the fuzzer's stderr */
  clock_gettime(CLOCK_MONOTONIC, &started);
  calls = 0;
  lua_sethook(L, time_hook, LUA_MASKCOUNT, 1000);
  job j = { dir };
  fuzz_pcall(L, load, &j);
  lua_close(L);
  return 0;
}

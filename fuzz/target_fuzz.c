/*
 * target_fuzz.c: luamig_resolve, luamig_plan and luamig_stamp on arbitrary target strings,
 * over a fixed graph with a branch, a merge, labels, a second base and a
 * depends_on, from several sets of current heads, both directions. Errors
 * are expected (most inputs name nothing); crashes, leaks and UB are not.
 */
#include "fuzz.h"

/* id, down_revision ("a,b" for a merge, "" for a base), depends_on, labels */
static const char *const revs[][4] = {
  { "1a2b3c4d5e6f", "", "", "main" },
  { "1a2b99990000", "1a2b3c4d5e6f", "", "" },       /* shares a prefix with the base */
  { "c3", "1a2b99990000", "", "left" },
  { "d4", "1a2b99990000", "", "right,spare" },
  { "e5", "c3,d4", "", "" },                        /* the merge */
  { "f6", "e5", "", "" },
  { "x1", "", "", "other" },                        /* a second base */
  { "x2", "x1", "c3", "" },                         /* depends on the left branch */
  { "abc", "x2", "right", "" },
  { "abcd", "abc", "", "" },
};
#define NREVS ((int)(sizeof revs / sizeof revs[0]))

/* Current-head sets, by id; NULL ends one. */
static const char *const currents[][4] = {
  { NULL },
  { "c3", NULL },
  { "d4", "x1", NULL },
  { "e5", "abc", NULL },
  { "f6", "abcd", NULL },
};
#define NCURRENTS ((int)(sizeof currents / sizeof currents[0]))

typedef struct call {
  luamig_graph *g;
  const char *target;
  const int *cur; int ncur;
  int mode;                          /* 0/1: plan up/down, 2: resolve, 3: stamp */
} call;

/* Pushes "a,b" as a Lua list (nil when empty). */
static void push_list(lua_State *L, const char *s) {
  if (*s == '\0') { lua_pushnil(L); return; }
  lua_newtable(L);
  int n = 0;
  while (*s) {
    size_t len = strcspn(s, ",");
    lua_pushlstring(L, s, len);
    lua_rawseti(L, -2, ++n);
    s += len + (s[len] == ',');
  }
}

static int build(lua_State *L) {
  luamig_graph *g = luamig_graph_new(L);
  for (int i = 0; i < NREVS; i++) {
    luamig_rev *r = luamig_graph_add(L, g, revs[i][0], "versions/fuzz.lua");
    char ***dst[] = { &r->down, &r->depends, &r->labels };
    int *cnt[] = { &r->ndown, &r->ndepends, &r->nlabels };
    for (int k = 0; k < 3; k++) {
      push_list(L, revs[i][k + 1]);
      luamig_graph_strings(L, -1, "fuzz", dst[k], cnt[k]);
      lua_pop(L, 1);
    }
  }
  luamig_graph_link(L, g);
  return 1;
}

static int run(lua_State *L) {
  call *c = lua_touserdata(L, 1);
  int n;
  if (c->mode < 2) {
    luamig_step *steps;
    n = luamig_plan(L, c->g, c->cur, c->ncur, c->target, c->mode == 0, &steps);
    for (int i = 0; i < n; i++)      /* every step names a revision of the graph */
      if (steps[i].rev < 0 || steps[i].rev >= c->g->n || steps[i].up != (c->mode == 0)) abort();
  } else {
    int *out = lua_newuserdatauv(L, (size_t)(c->g->n + 1) * sizeof(int), 0);
    n = c->mode == 2 ? luamig_resolve(L, c->g, c->cur, c->ncur, c->target, out)
                     : luamig_stamp(L, c->g, c->cur, c->ncur, c->target, out);
    for (int i = 0; i < n; i++)
      if (out[i] < 0 || out[i] >= c->g->n) abort();
  }
  if (n < 0 || n > c->g->n) abort();
  return 0;
}

/* One state and graph for the whole run (an input only reads them): a fresh
 * state per input would spend most of the time in luaL_openlibs. */
static lua_State *L;
static luamig_graph *g;
static int cur[NCURRENTS][4], ncur[NCURRENTS];

static void setup(void) {
  static fuzz_mem mem;
  L = fuzz_state(&mem);
  lua_pushcfunction(L, build);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz: the fixed graph does not link: %s\n", lua_tostring(L, -1));
    abort();
  }
  g = luamig_graph_check(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.graph");   /* anchored for good */
  for (int k = 0; k < NCURRENTS; k++)
    for (int j = 0; currents[k][j]; j++) {
      cur[k][ncur[k]] = luamig_graph_find(g, currents[k][j]);
      if (cur[k][ncur[k]++] < 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) setup();
  char *target = fuzz_cstring(data, size);
  for (int k = 0; k < NCURRENTS; k++)
    for (int mode = 0; mode < 4; mode++) {
      call c = { g, target, cur[k], ncur[k], mode };
      fuzz_pcall(L, run, &c);
    }
  if (lua_gettop(L) != 0) abort();   /* nothing may stay on the stack */
  lua_gc(L, LUA_GCCOLLECT);          /* frees as many blocks as the input made, so
                                        libFuzzer runs no leak check after it */
  free(target);
  return 0;
}

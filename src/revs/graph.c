/*
 * graph.c: the revision DAG. Pure: no connection, no file I/O.
 *
 * Revisions live in one array owned by a userdata (freed by __gc), with an
 * open-addressing index from id to position, so lookups stay O(1) and the
 * whole graph is built and linked in linear time even for 10,000 revisions.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "revs.h"

static void *xrealloc(lua_State *L, void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) luaL_error(L, "out of memory");
  return q;
}

char *luamig_graph_strdup(lua_State *L, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = xrealloc(L, NULL, n);
  memcpy(d, s, n);
  return d;
}

static uint32_t hash_id(const char *s) {  /* FNV-1a */
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static void free_list(char **list, int n) {
  for (int i = 0; i < n; i++) free(list[i]);
  free(list);
}

static int graph_gc(lua_State *L) {
  luamig_graph *g = luaL_checkudata(L, 1, LUAMIG_GRAPH_MT);
  for (int i = 0; i < g->n; i++) {
    luamig_rev *r = &g->revs[i];
    free(r->id); free(r->message); free(r->path);
    free_list(r->down, r->ndown);
    free_list(r->depends, r->ndepends);
    free_list(r->labels, r->nlabels);
    free(r->parents); free(r->deps); free(r->children); free(r->dependents);
    free(r->normdeps);
  }
  free(g->revs); free(g->slots); free(g->heads); free(g->bases); free(g->order);
  free(g->realheads);
  memset(g, 0, sizeof *g);
  return 0;
}

luamig_graph *luamig_graph_new(lua_State *L) {
  luamig_graph *g = lua_newuserdatauv(L, sizeof *g, 1);
  memset(g, 0, sizeof *g);
  if (luaL_newmetatable(L, LUAMIG_GRAPH_MT)) {
    lua_pushcfunction(L, graph_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_newtable(L);                   /* envs */
  lua_setiuservalue(L, -2, 1);
  return g;
}

luamig_graph *luamig_graph_check(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, LUAMIG_GRAPH_MT);
}

int luamig_graph_find(const luamig_graph *g, const char *id) {
  if (g->nslots == 0) return -1;
  size_t mask = g->nslots - 1;
  for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
    int s = g->slots[i];
    if (s == 0) return -1;
    if (strcmp(g->revs[s - 1].id, id) == 0) return s - 1;
  }
}

static void index_insert(luamig_graph *g, int pos) {
  size_t mask = g->nslots - 1;
  size_t i = hash_id(g->revs[pos].id) & mask;
  while (g->slots[i] != 0) i = (i + 1) & mask;
  g->slots[i] = pos + 1;
}

static void index_grow(lua_State *L, luamig_graph *g) {
  size_t n = g->nslots ? g->nslots * 2 : 64;
  int *slots = xrealloc(L, NULL, n * sizeof *slots);
  memset(slots, 0, n * sizeof *slots);
  free(g->slots);
  g->slots = slots;
  g->nslots = n;
  for (int i = 0; i < g->n; i++) index_insert(g, i);
}

luamig_rev *luamig_graph_add(lua_State *L, luamig_graph *g, const char *id,
                             const char *path) {
  int dup = luamig_graph_find(g, id);
  if (dup >= 0)
    luaL_error(L, "duplicate revision id '%s' in %s and %s", id,
               g->revs[dup].path, path);
  if (g->n == g->cap) {
    int cap = g->cap ? g->cap * 2 : 16;
    g->revs = xrealloc(L, g->revs, (size_t)cap * sizeof *g->revs);
    g->cap = cap;
  }
  if ((size_t)(g->n + 1) * 2 > g->nslots) index_grow(L, g);
  luamig_rev *r = &g->revs[g->n];
  memset(r, 0, sizeof *r);
  r->transactional = true;
  g->n++;                            /* counted now, so __gc frees what follows */
  r->id = luamig_graph_strdup(L, id);
  r->path = luamig_graph_strdup(L, path);
  index_insert(g, g->n - 1);
  g->linked = false;
  return r;
}

void luamig_graph_strings(lua_State *L, int idx, const char *what,
                          char ***list, int *n) {
  idx = lua_absindex(L, idx);
  int count;
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) == LUA_TSTRING) count = 1;
  else if (lua_type(L, idx) == LUA_TTABLE) {
    /* raw: a header list is plain data, and no metamethod may make it endless */
    size_t len = lua_rawlen(L, idx);
    if (len > INT_MAX / sizeof(char *))
      luaL_error(L, "%s: a list of %I entries is too long", what, (lua_Integer)len);
    count = (int)len;
    for (int i = 1; i <= count; i++) {   /* one value on the stack at a time: any length fits */
      if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
        luaL_error(L, "%s must be a string or a list of strings (item %d is %s)",
                   what, i, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  } else {
    luaL_error(L, "%s must be a string or a list of strings, not %s", what,
               luaL_typename(L, idx));
    return;
  }
  char **l = xrealloc(L, NULL, (size_t)count * sizeof *l);
  memset(l, 0, (size_t)count * sizeof *l);
  *list = l;                         /* owned by the revision from here on */
  for (int i = 0; i < count; i++) {
    if (lua_type(L, idx) == LUA_TSTRING) lua_pushvalue(L, idx);
    else lua_rawgeti(L, idx, i + 1);
    l[i] = luamig_graph_strdup(L, lua_tostring(L, -1));
    *n = i + 1;
    lua_pop(L, 1);
  }
}

const char *luamig_rev_id_problem(const char *id, size_t len) {
  static const char *const reserved[] = { "head", "heads", "base", "current", NULL };
  if (len == 0 || len > LUAMIG_REV_MAX || strspn(id, "abcdefghijklmnopqrstuvwxyz"
      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != len)
    return "must be 1 to 32 letters, digits or '_'";
  for (int i = 0; reserved[i]; i++)
    if (strcmp(id, reserved[i]) == 0)
      return "is reserved (head, heads, base and current are targets, not ids)";
  return NULL;
}

int luamig_graph_lookup(const luamig_graph *g, const char *key) {
  int i = luamig_graph_find(g, key);
  if (i >= 0) return i;
  for (int k = 0; k < g->n; k++)
    for (int j = 0; j < g->revs[k].nlabels; j++)
      if (strcmp(g->revs[k].labels[j], key) == 0) return k;
  return -1;
}

static int *push_edge(lua_State *L, int *list, int *n, int v) {
  list = xrealloc(L, list, (size_t)(*n + 1) * sizeof *list);
  list[(*n)++] = v;
  return list;
}

/* Raises naming the cycle, in Alembic's arrow direction (parent -> child). */
static void report_cycle(lua_State *L, luamig_graph *g, const int *stack,
                         int top, int entry) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "cycle in the revision graph: ");
  int from = top;
  while (from > 0 && stack[from] != entry) from--;
  for (int i = top; i >= from; i--) {
    luaL_addstring(&b, g->revs[stack[i]].id);
    luaL_addstring(&b, " -> ");
  }
  luaL_addstring(&b, g->revs[stack[top]].id);
  luaL_addstring(&b, " (");
  luaL_addstring(&b, g->revs[entry].path);
  luaL_addstring(&b, ")");
  luaL_pushresult(&b);
  lua_error(L);
}

/* Iterative DFS over parents and dependencies: post-order is a topological
 * order (parents first), and a grey node met again closes a cycle. */
static void sort_topologically(lua_State *L, luamig_graph *g) {
  int n = g->n, k = 0;
  free(g->order);
  g->order = xrealloc(L, NULL, (size_t)n * sizeof(int));
  /* one scratch block, anchored in Lua so an error cannot leak it */
  int *scratch = lua_newuserdatauv(L, (size_t)n * 3 * sizeof(int) + 1, 0);
  int *color = scratch, *stack = scratch + n, *edge = scratch + 2 * n;
  memset(color, 0, (size_t)n * sizeof(int));
  for (int s = 0; s < n; s++) {
    if (color[s]) continue;
    int top = 0;
    stack[0] = s; edge[0] = 0; color[s] = 1;
    while (top >= 0) {
      luamig_rev *r = &g->revs[stack[top]];
      int e = edge[top]++;
      if (e < r->nparents + r->ndeps) {
        int p = e < r->nparents ? r->parents[e] : r->deps[e - r->nparents];
        if (color[p] == 1) report_cycle(L, g, stack, top, p);
        if (color[p] == 0) {
          color[p] = 1;
          stack[++top] = p; edge[top] = 0;
        }
      } else {
        color[stack[top]] = 2;
        g->revs[stack[top]].topo = k;
        g->order[k++] = stack[top--];
      }
    }
  }
  lua_pop(L, 1);
}

/* Alembic's _normalize_depends_on: a revision's dependencies, less those that
 * a revision below it (by down_revision) already depends on. They decide the
 * order revisions run in (target.c), as Alembic's do. Runs after the sort, so
 * the graph has no cycle. */
static void normalize_deps(lua_State *L, luamig_graph *g) {
  int *seen = NULL, *stack = NULL, *dropped = NULL;
  for (int i = 0; i < g->n; i++) {
    luamig_rev *r = &g->revs[i];
    if (r->ndeps == 0) continue;
    if (seen == NULL) {               /* anchored in Lua: an error cannot leak them */
      seen = lua_newuserdatauv(L, (size_t)g->n * 3 * sizeof(int), 0);
      stack = seen + g->n;
      dropped = stack + g->n;
      memset(seen, 0xff, (size_t)g->n * sizeof(int));
      memset(dropped, 0xff, (size_t)g->n * sizeof(int));
    }
    int top = 0;                      /* seen[k] == i: pushed for revision i */
    for (int k = 0; k < r->nparents; k++)
      if (seen[r->parents[k]] != i) { seen[r->parents[k]] = i; stack[top++] = r->parents[k]; }
    while (top > 0) {
      const luamig_rev *ar = &g->revs[stack[--top]];
      for (int k = 0; k < ar->ndeps; k++) dropped[ar->deps[k]] = i;
      for (int k = 0; k < ar->nparents; k++)
        if (seen[ar->parents[k]] != i) { seen[ar->parents[k]] = i; stack[top++] = ar->parents[k]; }
    }
    for (int k = 0; k < r->ndeps; k++) {
      int d = r->deps[k];
      bool dup = false;
      for (int j = 0; j < r->nnormdeps; j++) dup = dup || r->normdeps[j] == d;
      if (dropped[d] != i && !dup) r->normdeps = push_edge(L, r->normdeps, &r->nnormdeps, d);
    }
  }
  if (seen) lua_pop(L, 1);
}

void luamig_graph_link(lua_State *L, luamig_graph *g) {
  for (int i = 0; i < g->n; i++) {
    luamig_rev *r = &g->revs[i];
    free(r->parents); free(r->deps); free(r->children); free(r->dependents); free(r->normdeps);
    r->parents = r->deps = r->children = r->dependents = r->normdeps = NULL;
    r->nparents = r->ndeps = r->nchildren = r->ndependents = r->nnormdeps = 0;
  }
  for (int i = 0; i < g->n; i++) {   /* a label names one revision, never an id */
    luamig_rev *r = &g->revs[i];
    for (int j = 0; j < r->nlabels; j++) {
      int other = luamig_graph_lookup(g, r->labels[j]);
      if (other != i)
        luaL_error(L, "branch label '%s' of revision %s (%s) is already %s %s (%s)",
                   r->labels[j], r->id, r->path,
                   luamig_graph_find(g, r->labels[j]) >= 0 ? "the id of" : "claimed by",
                   g->revs[other].id, g->revs[other].path);
      for (int k = 0; k < j; k++)
        if (strcmp(r->labels[k], r->labels[j]) == 0)
          luaL_error(L, "revision %s (%s) lists branch label '%s' twice", r->id, r->path,
                     r->labels[j]);
    }
  }
  for (int i = 0; i < g->n; i++) {
    luamig_rev *r = &g->revs[i];
    for (int j = 0; j < r->ndown; j++) {
      int p = luamig_graph_find(g, r->down[j]);
      if (p < 0)
        luaL_error(L, "revision %s (%s): down_revision '%s' names no revision file",
                   r->id, r->path, r->down[j]);
      r->parents = push_edge(L, r->parents, &r->nparents, p);
      g->revs[p].children = push_edge(L, g->revs[p].children, &g->revs[p].nchildren, i);
    }
    for (int j = 0; j < r->ndepends; j++) {
      int p = luamig_graph_lookup(g, r->depends[j]);
      if (p < 0)
        luaL_error(L, "revision %s (%s): depends_on '%s' names no revision or branch label",
                   r->id, r->path, r->depends[j]);
      r->deps = push_edge(L, r->deps, &r->ndeps, p);
      g->revs[p].dependents = push_edge(L, g->revs[p].dependents, &g->revs[p].ndependents, i);
    }
  }
  free(g->heads); free(g->bases); free(g->realheads);
  g->heads = g->bases = g->realheads = NULL;
  g->nheads = g->nbases = g->nrealheads = 0;
  for (int i = 0; i < g->n; i++) {
    const luamig_rev *r = &g->revs[i];
    if (r->nchildren == 0) g->heads = push_edge(L, g->heads, &g->nheads, i);
    if (r->nchildren == 0 && r->ndependents == 0)
      g->realheads = push_edge(L, g->realheads, &g->nrealheads, i);
    if (r->nparents == 0) g->bases = push_edge(L, g->bases, &g->nbases, i);
  }
  sort_topologically(L, g);
  normalize_deps(L, g);
  g->linked = true;
}

int *luamig_scratch(lua_State *L, int n) {
  int *p = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof(int), 0);
  memset(p, 0, (size_t)(n + 1) * sizeof(int));
  return p;
}

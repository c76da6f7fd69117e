/*
 * target.c: what "upgrade X" / "downgrade X" means, as a list of steps.
 * Pure: works from the graph and the current heads only, so the same plan
 * serves a live run and an offline --sql script. Semantics and wording
 * follow Alembic (see ALEMBIC-SEMANTICS.md).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"

/* A set of revisions being resolved; n == 0 means base. */
typedef struct revset {
  int *v; int n;
} revset;

static int *scratch(lua_State *L, int n) {  /* popped by the caller's lua_settop */
  int *p = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof(int), 0);
  memset(p, 0, (size_t)(n > 0 ? n : 1) * sizeof(int));
  return p;
}

/* Marks every revision reachable from `from` through `parents`+`deps`
 * (ancestors, self included) or through `children`+`dependents`. */
void luamig_mark_reach(lua_State *L, const luamig_graph *g, const int *from,
                       int nfrom, int *mark, bool down) {
  int *stack = scratch(L, g->n), top = 0;
  for (int i = 0; i < nfrom; i++)
    if (!mark[from[i]]) { mark[from[i]] = 1; stack[top++] = from[i]; }
  while (top > 0) {
    const luamig_rev *r = &g->revs[stack[--top]];
    int na = down ? r->nparents : r->nchildren, nb = down ? r->ndeps : r->ndependents;
    const int *a = down ? r->parents : r->children, *b = down ? r->deps : r->dependents;
    for (int i = 0; i < na + nb; i++) {
      int x = i < na ? a[i] : b[i - na];
      if (!mark[x]) { mark[x] = 1; stack[top++] = x; }
    }
  }
  lua_pop(L, 1);
}

static int resolve_id(lua_State *L, const luamig_graph *g, const char *s) {
  int i = luamig_graph_find(g, s);
  if (i >= 0) return i;
  size_t len = strlen(s);
  int found = -1, count = 0;
  for (int k = 0; k < g->n; k++)
    if (strncmp(g->revs[k].id, s, len) == 0) { found = k; count++; }
  if (count == 1 && len > 0) return found;
  if (count == 0 || len == 0)
    luaL_error(L, "Can't locate revision identified by '%s'", s);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "Multiple revisions start with '%s': ", s);
  luaL_addvalue(&b);
  int shown = 0;
  for (int k = 0; k < g->n && shown < 10; k++)
    if (strncmp(g->revs[k].id, s, len) == 0) {
      if (shown++) luaL_addstring(&b, ", ");
      lua_pushfstring(L, "'%s'", g->revs[k].id);
      luaL_addvalue(&b);
    }
  if (count > shown) luaL_addstring(&b, ", ...");
  luaL_addstring(&b, "; give more characters");
  luaL_pushresult(&b);
  return lua_error(L);
}

static void multiple_heads(lua_State *L, const luamig_graph *g, const char *arg) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "Multiple head revisions are present for given argument '%s'; "
                  "please specify a specific target revision, '<branchname>@head' to "
                  "narrow to a specific head, or 'heads' for all heads (heads: ", arg);
  luaL_addvalue(&b);
  for (int i = 0; i < g->nheads; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, g->revs[g->heads[i]].id);
  }
  luaL_addstring(&b, "; 'luamig merge heads' joins them)");
  luaL_pushresult(&b);
  lua_error(L);
}

/* Splits "REV+N" / "-N": returns the offset, and the length of the base part. */
static long split_relative(const char *t, size_t *baselen) {
  size_t len = strlen(t), i = len;
  while (i > 0 && isdigit((unsigned char)t[i - 1])) i--;
  if (i == len || i == 0 || (t[i - 1] != '+' && t[i - 1] != '-') || len - i > 9) {
    *baselen = len;
    return 0;
  }
  long n = strtol(t + i, NULL, 10);
  *baselen = i - 1;
  return t[i - 1] == '-' ? -n : n;
}

/* The branch a "LABEL@..." target narrows to: the labelled revision and
 * everything built on it. */
typedef struct branch {
  int root;                          /* -1: no label */
  int *in;                           /* in[i]: revs[i] is root or descends from it */
} branch;

static int find_label(const luamig_graph *g, const char *label) {
  for (int k = 0; k < g->n; k++)
    for (int j = 0; j < g->revs[k].nlabels; j++)
      if (strcmp(g->revs[k].labels[j], label) == 0) return k;
  return -1;
}

/* Walks |steps| revisions up (children) or down (parents) from a single
 * revision, staying inside the branch when there is one. */
static void walk(lua_State *L, const luamig_graph *g, const branch *br, revset *s,
                 long steps, const char *target) {
  long want = steps < 0 ? -steps : steps;
  for (long i = 0; i < want; i++) {
    if (s->n > 1)
      luaL_error(L, "Ambiguous %s from multiple revisions at '%s' (%s, ...); "
                 "name a revision instead", steps > 0 ? "upgrade" : "downgrade",
                 target, g->revs[s->v[0]].id);
    if (steps > 0) {
      if (s->n == 0 && br->root >= 0) {   /* the branch's first revision */
        s->v[0] = br->root; s->n = 1;
        continue;
      }
      const int *next = s->n ? g->revs[s->v[0]].children : g->bases;
      int nnext = s->n ? g->revs[s->v[0]].nchildren : g->nbases, pick = -1, count = 0;
      for (int k = 0; k < nnext; k++)
        if (br->root < 0 || br->in[next[k]]) { pick = next[k]; count++; }
      if (count == 0)
        luaL_error(L, "Relative revision %s didn't produce %d migrations", target, (int)want);
      if (count > 1)
        luaL_error(L, "Ambiguous upgrade at '%s': %s has %d children; use LABEL@+N "
                   "or name a revision", target, s->n ? g->revs[s->v[0]].id : "base", count);
      s->v[0] = pick; s->n = 1;
    } else {
      if (s->n == 0)
        luaL_error(L, "Relative revision %s didn't produce %d migrations (that is below base)",
                   target, (int)want);
      const luamig_rev *r = &g->revs[s->v[0]];
      for (int k = 0; k < r->nparents; k++) s->v[k] = r->parents[k];
      s->n = r->nparents;
    }
  }
}

/* Keeps the members of s inside the branch (all of them without a label). */
static void narrow(const branch *br, revset *s) {
  if (br->root < 0) return;
  int n = 0;
  for (int i = 0; i < s->n; i++) if (br->in[s->v[i]]) s->v[n++] = s->v[i];
  s->n = n;
}

/* Resolves a target to the set of revisions that should be the heads after
 * the run; *root is set to the branch root for "LABEL@base" (what a
 * downgrade must stay inside), else -1. */
static void resolve(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                    const char *target, bool up, revset *out, int *root) {
  int top = lua_gettop(L);
  branch br = { -1, NULL };
  const char *at = luamig_graph_find(g, target) >= 0 ? NULL : strchr(target, '@');
  const char *spec = target;
  *root = -1;
  if (at) {
    const char *label = lua_pushlstring(L, target, (size_t)(at - target));
    br.root = find_label(g, label);
    if (br.root < 0) br.root = resolve_id(L, g, label);   /* REV@head works too */
    br.in = lua_newuserdatauv(L, (size_t)g->n * sizeof(int) + 1, 0);
    memset(br.in, 0, (size_t)g->n * sizeof(int));
    luamig_mark_reach(L, g, &br.root, 1, br.in, false);
    spec = at + 1;
  }
  size_t baselen;
  long rel = luamig_graph_find(g, spec) >= 0 ? 0 : split_relative(spec, &baselen);
  if (rel == 0) baselen = strlen(spec);
  const char *base = lua_pushlstring(L, spec, baselen);
  out->n = 0;
  if (baselen == 0 || strcmp(base, "current") == 0) {
    for (int i = 0; i < ncur; i++) out->v[out->n++] = cur[i];
    narrow(&br, out);
    if (rel != 0 && out->n > 1)
      luaL_error(L, "Ambiguous %s from multiple current revisions (%d heads applied); "
                 "use LABEL@%s or name a revision", up ? "upgrade" : "downgrade",
                 out->n, spec);
  } else if (strcmp(base, "base") == 0) {
    if (br.root >= 0) {              /* below the branch's first revision */
      const luamig_rev *r = &g->revs[br.root];
      for (int k = 0; k < r->nparents; k++) out->v[out->n++] = r->parents[k];
      *root = br.root;
    }
  } else if (strcmp(base, "head") == 0 || strcmp(base, "heads") == 0) {
    for (int i = 0; i < g->nheads; i++) out->v[out->n++] = g->heads[i];
    narrow(&br, out);
    if (base[4] == '\0' && out->n > 1) multiple_heads(L, g, target);
  } else {
    int k = br.root < 0 ? find_label(g, base) : -1;       /* a plain label: its revision */
    out->v[out->n++] = k >= 0 ? k : resolve_id(L, g, base);
  }
  if (rel != 0) walk(L, g, &br, out, rel, target);
  lua_settop(L, top);
}

int luamig_resolve(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                   const char *target, bool up, int *out) {
  revset r = { out, 0 };
  int root;
  resolve(L, g, cur, ncur, target, up, &r, &root);
  return r.n;
}

int luamig_plan(lua_State *L, luamig_graph *g, const int *cur, int ncur,
                const char *target, bool up, luamig_step **steps) {
  luamig_step *s = lua_newuserdatauv(L, (size_t)(g->n + 1) * sizeof *s, 0);
  int top = lua_gettop(L);           /* the result stays; scratch above it goes */
  revset dest = { scratch(L, g->n + 1), 0 };
  int root;
  resolve(L, g, cur, ncur, target, up, &dest, &root);
  int *applied = scratch(L, g->n), *keep = scratch(L, g->n);
  int *chosen = scratch(L, g->n), nchosen = 0;
  luamig_mark_reach(L, g, cur, ncur, applied, true);
  luamig_mark_reach(L, g, dest.v, dest.n, keep, true);
  if (up) {
    /* parents and dependencies first, one target's branch walked down before the next */
    int *done = scratch(L, g->n), *stack = scratch(L, g->n), *edge = scratch(L, g->n);
    for (int t = 0; t < dest.n; t++) {
      int sp = 0;
      if (applied[dest.v[t]] || done[dest.v[t]]) continue;
      stack[0] = dest.v[t]; edge[0] = 0; done[dest.v[t]] = 1;
      while (sp >= 0) {
        const luamig_rev *r = &g->revs[stack[sp]];
        int e = edge[sp]++;
        if (e < r->nparents + r->ndeps) {
          int p = e < r->nparents ? r->parents[e] : r->deps[e - r->nparents];
          if (!applied[p] && !done[p]) { done[p] = 1; stack[++sp] = p; edge[sp] = 0; }
        } else {
          chosen[nchosen++] = stack[sp--];
        }
      }
    }
  } else {
    for (int i = 0; i < dest.n; i++)
      if (!applied[dest.v[i]])
        luaL_error(L, "Destination %s is not a valid downgrade target from the current "
                   "head(s): it is not applied", g->revs[dest.v[i]].id);
    int *below = NULL;
    if (root >= 0) {                 /* LABEL@base: that branch only */
      below = scratch(L, g->n);
      luamig_mark_reach(L, g, &root, 1, below, false);
    } else if (dest.n > 0) {         /* only what was built on top of the destination */
      below = scratch(L, g->n);
      luamig_mark_reach(L, g, dest.v, dest.n, below, false);
    }
    for (int k = g->n - 1; k >= 0; k--) {   /* children and dependents first */
      int i = g->order[k];
      if (applied[i] && !keep[i] && (below == NULL || below[i])) chosen[nchosen++] = i;
    }
  }
  for (int i = 0; i < nchosen; i++) { s[i].rev = chosen[i]; s[i].up = up; }
  lua_settop(L, top);
  *steps = s;
  return nchosen;
}

/*
 * revmap.c: Alembic's rules for reading a revision graph, as target.c uses
 * them: lineage, naming a revision (id, unique prefix, branch label,
 * head/heads/base), walking +N/-N, the current revisions, the branch labels a
 * revision shows, and the order revisions run in. Each function follows the
 * method of alembic/script/revision.py (1.8) named in its comment, so a
 * difference from Alembic is a bug here. Pure: the graph only.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "revs.h"

int luamig_copy_revs(int *out, const int *src, int n) {
  if (n > 0) memcpy(out, src, (size_t)n * sizeof(int));   /* src may be NULL when n is 0 */
  return n;
}

/* Marks from[] and what is reachable from them toward the bases (down) or
 * the heads, through depends_on too when deps. */
static void reach(lua_State *L, const luamig_graph *g, const int *from, int nfrom, int *mark,
                  bool down, bool deps) {
  int *stack = luamig_scratch(L, g->n), top = 0;
  for (int i = 0; i < nfrom; i++)
    if (!mark[from[i]]) { mark[from[i]] = 1; stack[top++] = from[i]; }
  while (top > 0) {
    const luamig_rev *r = &g->revs[stack[--top]];
    int na = down ? r->nparents : r->nchildren;
    int nb = !deps ? 0 : down ? r->ndeps : r->ndependents;
    const int *a = down ? r->parents : r->children, *b = down ? r->deps : r->dependents;
    for (int i = 0; i < na + nb; i++) {
      int x = i < na ? a[i] : b[i - na];
      if (!mark[x]) { mark[x] = 1; stack[top++] = x; }
    }
  }
  lua_pop(L, 1);
}

void luamig_mark_reach(lua_State *L, const luamig_graph *g, const int *from, int nfrom,
                       int *mark, bool toward_base) {
  reach(L, g, from, nfrom, mark, toward_base, true);
}

void luamig_mark_line(lua_State *L, const luamig_graph *g, const int *from, int nfrom,
                      int *mark, bool toward_base) {
  reach(L, g, from, nfrom, mark, toward_base, false);
}

/* Alembic's _shares_lineage, for many targets against the same revisions:
 * marks what is an ancestor or a descendant of one of against (self included). */
void luamig_mark_lineage(lua_State *L, const luamig_graph *g, const int *against, int n,
                         int *mark, bool deps) {
  int *down = luamig_scratch(L, g->n);
  reach(L, g, against, n, mark, false, deps);
  reach(L, g, against, n, down, true, deps);
  for (int i = 0; i < g->n; i++) mark[i] = mark[i] || down[i];
  lua_pop(L, 1);
}

/* Keeps the members of revs[] that share a lineage with rev (no depends_on). */
static int keep_lineage(lua_State *L, const luamig_graph *g, int *revs, int n, int rev) {
  int *mark = luamig_scratch(L, g->n), k = 0;
  luamig_mark_lineage(L, g, &rev, 1, mark, false);
  for (int i = 0; i < n; i++) if (revs[i] >= 0 && mark[revs[i]]) revs[k++] = revs[i];
  lua_pop(L, 1);
  return k;
}

/* "Multiple head revisions are present for given argument ...", listing heads. */
int luamig_multiple_heads(lua_State *L, const luamig_graph *g, const char *arg,
                          const int *heads, int n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "Multiple head revisions are present for given argument '%s'; "
                  "please specify a specific target revision, '<branchname>@head' to "
                  "narrow to a specific head, or 'heads' for all heads (heads: ", arg);
  luaL_addvalue(&b);
  for (int i = 0; i < n; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, g->revs[heads[i]].id);
  }
  luaL_addstring(&b, "; 'luamig merge heads' joins them)");
  luaL_pushresult(&b);
  return lua_error(L);
}

/* Whether key (an id or a branch label) starts with s; Alembic's prefix match
 * skips keys of 3 characters or fewer. */
static bool key_matches(const char *key, const char *s, size_t len) {
  return strlen(key) > 3 && strncmp(key, s, len) == 0;
}

/* "Multiple revisions start with 'ab': 'ab12...', ..." over the matching revisions. */
static int ambiguous_prefix(lua_State *L, const luamig_graph *g, const char *s,
                            const int *cand, int n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "Multiple revisions start with '%s': ", s);
  luaL_addvalue(&b);
  for (int k = 0; k < n && k < 10; k++) {
    lua_pushfstring(L, "%s'%s'", k ? ", " : "", g->revs[cand[k]].id);
    luaL_addvalue(&b);
  }
  if (n > 10) luaL_addstring(&b, ", ...");
  luaL_addstring(&b, "; give more characters");
  luaL_pushresult(&b);
  return lua_error(L);
}

/* Alembic's _revision_for_ident: an exact id or label, else the one key that
 * starts with ident. With branch (a label or revision; NULL: none), keys off
 * the branch's lineage are not candidates, and the result must be on it. */
int luamig_ident(lua_State *L, const luamig_graph *g, const char *ident, const char *branch) {
  int top = lua_gettop(L);
  int brev = branch ? luamig_ident(L, g, branch, NULL) : -1;
  int r = luamig_graph_lookup(g, ident);
  if (r < 0) {
    size_t len = strlen(ident);
    int keys = g->n, n = 0;          /* ids and labels: the keys a prefix may match */
    for (int k = 0; k < g->n; k++) keys += g->revs[k].nlabels;
    int *cand = luamig_scratch(L, keys);
    for (int k = 0; k < g->n && len > 0; k++) {
      if (key_matches(g->revs[k].id, ident, len)) cand[n++] = k;
      for (int j = 0; j < g->revs[k].nlabels; j++)
        if (key_matches(g->revs[k].labels[j], ident, len)) cand[n++] = k;
    }
    if (brev >= 0) n = keep_lineage(L, g, cand, n, brev);
    if (n == 0 && branch)
      luaL_error(L, "Can't locate revision identified by '%s' on branch '%s'", ident, branch);
    if (n == 0) luaL_error(L, "Can't locate revision identified by '%s'", ident);
    if (n > 1) ambiguous_prefix(L, g, ident, cand, n);
    r = cand[0];
  }
  if (brev >= 0 && keep_lineage(L, g, &r, 1, brev) == 0)
    luaL_error(L, "Revision %s is not a member of branch '%s'", g->revs[r].id, branch);
  lua_settop(L, top);
  return r;
}

/* Splits "LABEL@rest" at the first '@': pushes the label (or nothing) and
 * returns it (NULL without one); *rest points after the '@'. */
static const char *split_label(lua_State *L, const char *target, const char **rest) {
  const char *at = strchr(target, '@');
  *rest = at ? at + 1 : target;
  return at ? lua_pushlstring(L, target, (size_t)(at - target)) : NULL;
}

/* The heads a "[LABEL@]heads" names: every real head (no child, no dependent),
 * or the versioned heads (no child) on the label's lineage. */
static int named_heads(lua_State *L, const luamig_graph *g, const char *label, int *out) {
  if (label == NULL) {
    return luamig_copy_revs(out, g->realheads, g->nrealheads);
  }
  luamig_copy_revs(out, g->heads, g->nheads);
  return keep_lineage(L, g, out, g->nheads, luamig_ident(L, g, label, NULL));
}

/* Alembic's get_current_head: the one versioned head (of the label's lineage),
 * or LUAMIG_NOREV when there is none; raises when there are several. */
static int current_head(lua_State *L, const luamig_graph *g, const char *label,
                        const char *arg) {
  int *heads = luamig_scratch(L, g->n), n = luamig_copy_revs(heads, g->heads, g->nheads);
  if (label) n = keep_lineage(L, g, heads, n, luamig_ident(L, g, label, NULL));
  if (n > 1) luamig_multiple_heads(L, g, arg, heads, n);
  int h = n ? heads[0] : LUAMIG_NOREV;
  lua_pop(L, 1);
  return h;
}

long luamig_steps(const char *s) {
  bool minus = *s == '-';
  if (*s == '-' || *s == '+') s++;
  long n = 0;
  for (; isdigit((unsigned char)*s); s++) n = n < 1000000000L ? n * 10 + (*s - '0') : n;
  return minus ? -n : n;
}

/* Python's int() would read s as a negative number. */
static bool negative_int(const char *s) {
  if (*s++ != '-' || !isdigit((unsigned char)*s)) return false;
  while (isdigit((unsigned char)*s)) s++;
  return *s == '\0';
}

/* The revisions "[LABEL@]heads", "[LABEL@]head" and "[LABEL@]base" name, in
 * out; -1 when id is none of those words. */
static int named(lua_State *L, const luamig_graph *g, const char *label, const char *id,
                 const char *target, int *out) {
  if (strcmp(id, "heads") == 0) return named_heads(L, g, label, out);
  if (strcmp(id, "base") == 0) return 0;
  if (strcmp(id, "head") != 0) return -1;
  int h = current_head(L, g, label, target);
  if (h >= 0) out[0] = h;
  return h >= 0;
}

/* Alembic's get_revisions for one target: the revisions it names into out
 * (room for g->n), their count (0: base). "[LABEL@]-N" walks down from the
 * real heads (those carrying LABEL): its results may be LUAMIG_BELOW or
 * LUAMIG_NOREV. */
int luamig_get_revisions(lua_State *L, const luamig_graph *g, const char *target, int *out) {
  int top = lua_gettop(L);
  const char *id, *label = split_label(L, target, &id);
  int n = named(L, g, label, id, target, out);
  if (n < 0 && negative_int(id)) {
    long steps = luamig_steps(id);
    int *mark = NULL;
    if (label) {
      mark = luamig_scratch(L, g->n);
      luamig_label_span(L, g, luamig_ident(L, g, label, NULL), mark);
    }
    n = 0;
    for (int i = 0; i < g->nrealheads; i++)
      if (mark == NULL || mark[g->realheads[i]])
        out[n++] = luamig_walk(L, g, g->realheads[i], steps, NULL, NULL, target);
  } else if (n < 0) {
    out[0] = luamig_ident(L, g, id, label);
    n = 1;
  }
  lua_settop(L, top);
  return n;
}

/* What filter_for_lineage judges a stamp target's lineage against
 * (_resolve_revision_number, each part resolved on its own): the label's
 * revision and the revisions the rest names; none for base. */
int luamig_lineage_refs(lua_State *L, const luamig_graph *g, const char *target, int *out) {
  int top = lua_gettop(L);
  const char *id, *label = split_label(L, target, &id);
  int n = named(L, g, label, id, target, out);
  if (n < 0) {
    out[0] = luamig_ident(L, g, id, NULL);
    n = 1;
  }
  if (label) out[n++] = luamig_ident(L, g, label, NULL);
  lua_settop(L, top);
  return n;
}

/* Alembic's get_revision: the one revision a target names, or LUAMIG_NOREV
 * for base; raises when it names several. */
int luamig_get_revision(lua_State *L, const luamig_graph *g, const char *target) {
  int top = lua_gettop(L), r;
  const char *id, *label = split_label(L, target, &id);
  int *revs = luamig_scratch(L, g->n), n = named(L, g, label, id, target, revs);
  if (n > 1) luamig_multiple_heads(L, g, target, revs, n);
  r = n < 0 ? luamig_ident(L, g, id, label) : n ? revs[0] : LUAMIG_NOREV;
  if (r == LUAMIG_NOREV && label) luamig_ident(L, g, label, NULL);   /* the label must exist */
  lua_settop(L, top);
  return r;
}

/* Alembic's _walk: |steps| revisions up (children; only those on the
 * branch's lineage when branch is not NULL) or down (down_revision) from
 * start (a revision, or LUAMIG_NOREV: below the bases going up, above the
 * heads going down). Returns where it ends: a revision, LUAMIG_BELOW (one
 * step below a base), or LUAMIG_NOREV when it runs off the graph; raises when
 * a step has several ways to go. With merge not NULL, a last step down from
 * a merge point lands on its parents instead: *merge is set to it and the
 * result is LUAMIG_UNMERGE (luamig's relative downgrade onto a merge). */
int luamig_walk(lua_State *L, const luamig_graph *g, int start, long steps,
                const char *branch, int *merge, const char *target) {
  int top = lua_gettop(L), cur = start;
  long want = steps < 0 ? -steps : steps;
  int *line = NULL;
  if (branch && steps > 0) {
    line = luamig_scratch(L, g->n);
    int brev = luamig_ident(L, g, branch, NULL);
    luamig_mark_lineage(L, g, &brev, 1, line, false);
  }
  for (long i = 0; i < want; i++) {
    const int *next = NULL;
    int nnext = 0, pick = LUAMIG_NOREV, count = 0;
    if (steps > 0 && cur == LUAMIG_BELOW) {
      luaL_error(L, "Relative revision %s walks up from below base", target);
    } else if (steps > 0) {
      next = cur == LUAMIG_NOREV ? g->bases : g->revs[cur].children;
      nnext = cur == LUAMIG_NOREV ? g->nbases : g->revs[cur].nchildren;
    } else if (cur != LUAMIG_BELOW) {
      next = cur == LUAMIG_NOREV ? g->heads : g->revs[cur].parents;
      nnext = cur == LUAMIG_NOREV ? g->nheads : g->revs[cur].nparents;
      if (nnext == 0) { pick = LUAMIG_BELOW; count = 1; }
    }
    for (int k = 0; k < nnext; k++)
      if (line == NULL || line[next[k]]) { pick = next[k]; count++; }
    if (count == 0) { cur = LUAMIG_NOREV; break; }
    if (count > 1 && merge && steps < 0 && i == want - 1 && cur >= 0) {
      *merge = cur;
      cur = LUAMIG_UNMERGE;
      break;
    }
    if (count > 1)
      luaL_error(L, "Ambiguous walk at '%s': %s has %d %s; name a revision instead", target,
                 cur >= 0 ? g->revs[cur].id : steps > 0 ? "base" : "the top", count,
                 steps > 0 ? "children on the way" : "parents");
    cur = pick;
  }
  lua_settop(L, top);
  return cur;
}

/* Alembic's _get_all_current: the applied revisions (the rows and what they
 * build on) that no applied revision has as its down_revision; in file
 * order, into out. What `current` shows. */
int luamig_current_set(lua_State *L, const luamig_graph *g, const int *cur, int ncur, int *out) {
  int *applied = luamig_scratch(L, g->n), n = 0;
  luamig_mark_reach(L, g, cur, ncur, applied, true);
  for (int i = 0; i < g->n; i++) {
    if (!applied[i]) continue;
    bool covered = false;
    for (int k = 0; k < g->revs[i].nchildren && !covered; k++)
      covered = applied[g->revs[i].children[k]];
    if (!covered) out[n++] = i;
  }
  lua_pop(L, 1);
  return n;
}

/* Alembic's _is_real_branch_point: more than one revision builds on r
 * (children and dependents, each counted once). */
static bool real_branch_point(const luamig_rev *r) {
  int n = r->nchildren;
  for (int k = 0; k < r->ndependents && n < 2; k++) {
    bool child = false;
    for (int j = 0; j < r->nchildren; j++) child = child || r->children[j] == r->dependents[k];
    n += !child;
  }
  return n > 1;
}

/* Alembic's _add_branches for one labelled revision: marks the revisions that
 * show its labels: it and its descendants (by down_revision), and the
 * revisions Alembic reaches walking down from the last descendant it visits,
 * until a branch point (children or dependents) or a merge point. That walk
 * only gets below rev when its descendants form one line, whose tip is then
 * the last one visited in any order. */
void luamig_label_span(lua_State *L, const luamig_graph *g, int rev, int *mark) {
  int *stack = luamig_scratch(L, g->n), top = 0, last = rev;
  mark[rev] = 1;
  stack[top++] = rev;
  while (top > 0) {
    const luamig_rev *r = &g->revs[last = stack[--top]];
    for (int k = 0; k < r->nchildren; k++)
      if (!mark[r->children[k]]) { mark[r->children[k]] = 1; stack[top++] = r->children[k]; }
  }
  for (int p = last; p >= 0;) {
    const luamig_rev *r = &g->revs[p];
    if (real_branch_point(r) || r->nparents > 1) break;
    mark[p] = 1;
    p = r->nparents ? r->parents[0] : -1;
  }
  lua_pop(L, 1);
}

/* ---- the order revisions run in ---- */

typedef uint64_t word;
#define BIT(set, i) (((set)[(i) / 64] >> ((i) % 64)) & 1u)

/* The ancestors of rev (self and depends_on included), as a bit set anchored
 * in the table at keep. */
static word *ancestors(lua_State *L, const luamig_graph *g, int rev, int keep) {
  size_t words = (size_t)(g->n + 63) / 64;
  word *set = lua_newuserdatauv(L, words * sizeof(word) + 1, 0);
  memset(set, 0, words * sizeof(word));
  lua_rawseti(L, keep, (lua_Integer)lua_rawlen(L, keep) + 1);
  int *stack = luamig_scratch(L, g->n), top = 0;
  set[rev / 64] |= (word)1 << (rev % 64);
  stack[top++] = rev;
  while (top > 0) {
    const luamig_rev *r = &g->revs[stack[--top]];
    for (int i = 0; i < r->nparents + r->ndeps; i++) {
      int x = i < r->nparents ? r->parents[i] : r->deps[i - r->nparents];
      if (!BIT(set, x)) { set[x / 64] |= (word)1 << (x % 64); stack[top++] = x; }
    }
  }
  lua_pop(L, 1);
  return set;
}

/* The walk of one topological sort: slot[k] is a revision being walked down
 * from, anc[k] its ancestors. */
typedef struct sorter {
  int *slot, *inslot;
  word **anc;
  int nslots, keep;
} sorter;

static void add_slot(lua_State *L, const luamig_graph *g, sorter *s, int rev) {
  s->slot[s->nslots] = rev;
  s->anc[s->nslots++] = ancestors(L, g, rev, s->keep);
  s->inslot[rev] = 1;
}

/* Alembic's _topological_sort: the revisions marked in todo (cleared as they
 * go), each before the revisions it builds on. It walks down from heads (in
 * file order), one line at a time, and leaves a line for another whose
 * ancestors still need the revision in hand. Writes out; returns the count.
 * Reversed, this is the order of an upgrade. */
int luamig_topo_sort(lua_State *L, const luamig_graph *g, int *todo, const int *heads,
                     int nheads, int *out) {
  int top = lua_gettop(L), nout = 0;
  sorter s = { luamig_scratch(L, g->n), luamig_scratch(L, g->n),
               lua_newuserdatauv(L, (size_t)(g->n + 1) * sizeof(word *), 0), 0, 0 };
  lua_newtable(L);
  s.keep = lua_gettop(L);
  int *ishead = luamig_scratch(L, g->n), *add = luamig_scratch(L, g->n);
  for (int i = 0; i < nheads; i++) if (heads[i] >= 0) ishead[heads[i]] = 1;
  for (int i = 0; i < g->n; i++) if (ishead[i] && todo[i]) add_slot(L, g, &s, i);
  int idx = 0;
  while (s.nslots > 0) {
    int cand = s.slot[idx], j;
    for (j = 0; j < s.nslots; j++) if (j != idx && BIT(s.anc[j], cand)) break;
    if (j < s.nslots) { idx = j; continue; }   /* another line needs it first */
    if (todo[cand]) { out[nout++] = cand; todo[cand] = 0; }
    const luamig_rev *r = &g->revs[cand];
    int nadd = 0;
    for (int k = 0; k < r->nparents + r->nnormdeps; k++) {
      int p = k < r->nparents ? r->parents[k] : r->normdeps[k - r->nparents];
      bool dup = false;
      for (int q = 0; q < nadd; q++) dup = dup || add[q] == p;
      if (todo[p] && !s.inslot[p] && !dup) add[nadd++] = p;
    }
    s.inslot[cand] = 0;
    if (nadd == 0) {                 /* this line is done */
      memmove(s.slot + idx, s.slot + idx + 1, (size_t)(s.nslots - idx - 1) * sizeof(int));
      memmove(s.anc + idx, s.anc + idx + 1, (size_t)(s.nslots - idx - 1) * sizeof(word *));
      s.nslots--;
      idx = idx > 0 ? idx - 1 : 0;
      continue;
    }
    s.slot[idx] = add[0];
    s.inslot[add[0]] = 1;
    if (r->nnormdeps == 0 && r->nparents == 1) {
      s.anc[idx][cand / 64] &= ~((word)1 << (cand % 64));
    } else {
      s.anc[idx] = ancestors(L, g, add[0], s.keep);
      for (int k = 1; k < nadd; k++) add_slot(L, g, &s, add[k]);
    }
  }
  lua_settop(L, top);
  return nout;
}

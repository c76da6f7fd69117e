/*
 * target.c: what "upgrade X", "downgrade X" and "stamp X" do, as Alembic 1.8
 * decides it (alembic/script/revision.py: _parse_upgrade_target,
 * _parse_downgrade_target, _collect_upgrade_revisions,
 * _collect_downgrade_revisions; script/base.py: _stamp_revs; runtime/
 * migration.py: HeadMaintainer), over the rules in revmap.c. Pure: works from
 * the graph and the current rows only, so the same plan serves a live run and
 * an offline --sql script. Where luamig differs on purpose, README.md's "Where
 * luamig differs from Alembic" lists it and the code says so.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "revs.h"

/* Alembic's _relative_destination, (?:(.+?)@)?(\w+)?((?:\+|-)\d+), matched at
 * the start of a target: [LABEL@][SYMBOL](+|-)N. */
typedef struct relative {
  const char *label, *symbol;        /* pushed, or NULL */
  long n;
} relative;

static bool match_rest(lua_State *L, const char *s, relative *rel) {
  const char *p = s;
  while (isalnum((unsigned char)*p) || *p == '_') p++;
  if ((*p != '+' && *p != '-') || !isdigit((unsigned char)p[1])) return false;
  rel->symbol = p > s ? lua_pushlstring(L, s, (size_t)(p - s)) : NULL;
  rel->n = luamig_steps(p);
  return true;
}

static bool parse_relative(lua_State *L, const char *t, relative *rel) {
  for (const char *at = strchr(t, '@'); at; at = strchr(at + 1, '@'))
    if (at > t && match_rest(L, at + 1, rel)) {
      rel->label = lua_pushlstring(L, t, (size_t)(at - t));
      return true;
    }
  rel->label = NULL;
  return match_rest(L, t, rel);
}

static int didnt_produce(lua_State *L, const char *target, long n) {
  return luaL_error(L, "Relative revision %s didn't produce %d migrations", target,
                    (int)(n < 0 ? -n : n));
}

/* Raises when one of revs is below another (depends_on included): Alembic
 * refuses such a set of targets, or of current rows. */
static void check_overlap(lua_State *L, const luamig_graph *g, const int *revs, int n,
                          const char *what) {
  int top = lua_gettop(L);
  int *below = luamig_scratch(L, g->n), *from = luamig_scratch(L, 2 * g->n), nfrom = 0;
  for (int i = 0; i < n; i++) {
    const luamig_rev *r = &g->revs[revs[i]];
    for (int k = 0; k < r->nparents + r->ndeps; k++)
      from[nfrom++] = k < r->nparents ? r->parents[k] : r->deps[k - r->nparents];
    if (nfrom > g->n) {              /* keep the list short: reach() dedups */
      luamig_mark_reach(L, g, from, nfrom, below, true);
      nfrom = 0;
    }
  }
  luamig_mark_reach(L, g, from, nfrom, below, true);
  for (int i = 0; i < n; i++)
    if (below[revs[i]])
      luaL_error(L, "Requested revision %s overlaps with other requested revisions: it is "
                 "below another of the %s", g->revs[revs[i]].id, what);
  lua_settop(L, top);
}

/* Where "[LABEL@]+N" starts: the one current row (on the label's lineage);
 * with a label and no row on it, the tips of what is applied on its lineage;
 * LUAMIG_NOREV (below the bases) when nothing is. */
static int upgrade_start(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                         const char *label) {
  int top = lua_gettop(L);
  int *start = luamig_scratch(L, g->n), n = luamig_copy_revs(start, cur, ncur);
  if (label) {
    int *line = luamig_scratch(L, g->n), brev = luamig_ident(L, g, label, NULL);
    luamig_mark_lineage(L, g, &brev, 1, line, false);
    n = 0;
    for (int i = 0; i < ncur; i++) if (line[cur[i]]) start[n++] = cur[i];
    if (n == 0 && ncur > 0) {        /* the branch is not at a row: the tips applied on it */
      int *applied = luamig_scratch(L, g->n), *under = luamig_scratch(L, g->n);
      luamig_mark_reach(L, g, cur, ncur, applied, true);
      for (int i = 0; i < g->n; i++) {
        const luamig_rev *r = &g->revs[i];
        if (!applied[i] || !line[i]) continue;
        for (int k = 0; k < r->nparents + r->nnormdeps; k++)
          under[k < r->nparents ? r->parents[k] : r->normdeps[k - r->nparents]] = 1;
      }
      for (int i = 0; i < g->n; i++) if (applied[i] && line[i] && !under[i]) start[n++] = i;
    }
  }
  if (n > 1)
    luaL_error(L, "Ambiguous upgrade from multiple current revisions (%d heads applied%s); "
               "use LABEL@+N or name a revision", n, label ? " on the branch" : "");
  int r = n ? start[0] : LUAMIG_NOREV;
  lua_settop(L, top);
  return r;
}

/* Alembic's _parse_upgrade_target: the revisions an upgrade goes to, into out
 * (room for g->n); their count (0: base). */
static int upgrade_targets(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                           const char *target, int *out) {
  int top = lua_gettop(L), r;
  relative rel;
  if (!parse_relative(L, target, &rel)) {
    int n = luamig_get_revisions(L, g, target, out);
    for (int i = 0; i < n; i++)
      if (out[i] < 0) luaL_error(L, "Relative revision %s walks below base", target);
    lua_settop(L, top);
    return n;
  }
  if (rel.n > 0) {
    int start = rel.symbol ? luamig_get_revision(L, g, rel.symbol)
                           : upgrade_start(L, g, cur, ncur, rel.label);
    r = luamig_walk(L, g, start, rel.n, rel.label, NULL, target);
  } else {
    if (rel.symbol == NULL) didnt_produce(L, target, rel.n);
    const char *from = rel.label ? lua_pushfstring(L, "%s@%s", rel.label, rel.symbol) : rel.symbol;
    r = luamig_walk(L, g, luamig_get_revision(L, g, from), rel.n, NULL, NULL, target);
  }
  if (r == LUAMIG_BELOW) luaL_error(L, "Relative revision %s walks below base", target);
  if (r < 0) didnt_produce(L, target, rel.n);
  out[0] = r;
  lua_settop(L, top);
  return 1;
}

/* A downgrade's destination, as _parse_downgrade_target finds it. */
typedef struct dest {
  const char *label;                 /* narrows the roots (pushed), or NULL */
  int rev;                           /* the revision to stay at; LUAMIG_NOREV: base */
  int merge;                         /* luamig: -N ended on a merge's parents: undo it */
  int branch;                        /* luamig: LABEL@base: that branch's revision */
} dest;

/* The one current row "[LABEL@]-N" walks down from. */
static const char *downgrade_start(lua_State *L, const luamig_graph *g, const int *cur,
                                   int ncur, const relative *rel, const char *target) {
  if (rel->label == NULL) {
    if (ncur == 0) didnt_produce(L, target, rel->n);
    /* luamig refuses (Alembic 1.8 warns "will be disallowed" and takes the first row) */
    if (ncur > 1)
      luaL_error(L, "Ambiguous downgrade from multiple current revisions (%d heads applied); "
                 "use LABEL@%s or name a revision", ncur, target);
    return g->revs[cur[0]].id;
  }
  int *on = luamig_scratch(L, g->n), *line = luamig_scratch(L, g->n), n = 0;
  int brev = luamig_ident(L, g, rel->label, NULL);
  luamig_mark_lineage(L, g, &brev, 1, line, false);
  for (int i = 0; i < ncur; i++) if (line[cur[i]]) on[n++] = cur[i];
  if (n == 0) {                      /* the branch's tips among what is applied */
    int *all = luamig_scratch(L, g->n), nall = luamig_current_set(L, g, cur, ncur, all);
    for (int i = 0; i < nall; i++) if (line[all[i]]) on[n++] = all[i];
  }
  if (n == 0)
    luaL_error(L, "Relative revision %s: nothing on branch '%s' is applied", target, rel->label);
  if (n > 1)
    luaL_error(L, "Ambiguous downgrade at '%s': %d current revisions are on branch '%s' "
               "(%s, %s, ...); name a revision", target, n, rel->label, g->revs[on[0]].id,
               g->revs[on[1]].id);
  return g->revs[on[0]].id;
}

static dest downgrade_dest(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                           const char *target) {
  dest d = { NULL, LUAMIG_NOREV, -1, -1 };
  relative rel;
  if (parse_relative(L, target, &rel)) {
    d.label = rel.label;
    if (rel.n >= 0) {
      if (rel.symbol == NULL) didnt_produce(L, target, rel.n);
      d.rev = luamig_walk(L, g, luamig_get_revision(L, g, rel.symbol), rel.n, rel.label, NULL,
                          target);
      if (d.rev == LUAMIG_NOREV) luaL_error(L, "Relative revision %s walked too far", target);
    } else {
      const char *symbol = rel.symbol;
      if (symbol == NULL) {
        symbol = downgrade_start(L, g, cur, ncur, &rel, target);
        if (d.label == NULL) d.label = symbol;   /* Alembic narrows to that row's line */
      }
      const char *from = d.label ? lua_pushfstring(L, "%s@%s", d.label, symbol) : symbol;
      d.rev = luamig_walk(L, g, luamig_get_revision(L, g, from), rel.n, NULL, &d.merge, target);
      if (d.rev == LUAMIG_NOREV && rel.symbol == NULL) didnt_produce(L, target, rel.n);
      if (d.rev == LUAMIG_NOREV) luaL_error(L, "Relative revision %s walked too far", target);
    }
    if (d.rev == LUAMIG_BELOW || d.rev == LUAMIG_UNMERGE) d.rev = LUAMIG_NOREV;
    return d;
  }
  const char *at = strrchr(target, '@');
  const char *symbol = at ? at + 1 : target;
  d.label = at && at > target ? lua_pushlstring(L, target, (size_t)(at - target)) : NULL;
  /* luamig: LABEL@base undoes that branch only (Alembic: everything down to its base) */
  if (d.label && strcmp(symbol, "base") == 0) d.branch = luamig_ident(L, g, d.label, NULL);
  else d.rev = luamig_get_revision(L, g, symbol);
  return d;
}

/* Alembic's _collect_downgrade_revisions: marks in todo the applied revisions
 * that go (what builds on the destination's children, or on the roots). */
static void downgrade_set(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                          const char *target, int *todo) {
  int top = lua_gettop(L);
  dest d = downgrade_dest(L, g, cur, ncur, target);
  int *roots = luamig_scratch(L, g->n), n = 0;
  if (d.merge >= 0) roots[n++] = d.merge;
  else if (d.branch >= 0) roots[n++] = d.branch;
  else if (d.rev == LUAMIG_NOREV) n = luamig_copy_revs(roots, g->bases, g->nbases);
  else n = luamig_copy_revs(roots, g->revs[d.rev].children, g->revs[d.rev].nchildren);
  if (d.label && n > 1 && d.merge < 0 && d.branch < 0) {
    int *below = luamig_scratch(L, g->n), k = 0, brev = luamig_ident(L, g, d.label, NULL);
    luamig_mark_line(L, g, &brev, 1, below, true);
    for (int i = 0; i < n; i++) if (below[roots[i]]) roots[k++] = roots[i];
    if ((n = k) == 0)
      luaL_error(L, "Destination %s is not a valid downgrade target from the current head(s): "
                 "no revision after it leads to branch '%s'", target, d.label);
  }
  int *active = luamig_scratch(L, g->n), any = 0;
  luamig_mark_reach(L, g, roots, n, todo, false);
  luamig_mark_reach(L, g, cur, ncur, active, true);
  for (int i = 0; i < g->n; i++) any |= (todo[i] = todo[i] && active[i]);
  bool at_row = false;
  for (int i = 0; i < ncur; i++) at_row = at_row || cur[i] == d.rev;
  if (!any && (d.rev >= 0 || d.merge >= 0) && !at_row)
    luaL_error(L, "Destination %s is not a valid downgrade target from the current head(s): "
               "nothing applied builds on it", target);
  lua_settop(L, top);
}

int luamig_plan(lua_State *L, luamig_graph *g, const int *cur, int ncur,
                const char *target, bool up, luamig_step **steps) {
  luamig_step *s = lua_newuserdatauv(L, (size_t)(g->n + 1) * sizeof *s, 0);
  int top = lua_gettop(L);           /* the result stays; scratch above it goes */
  int *todo = luamig_scratch(L, g->n), *order = luamig_scratch(L, g->n), n;
  if (up) {
    int *targets = luamig_scratch(L, g->n), *applied = luamig_scratch(L, g->n);
    int ntargets = upgrade_targets(L, g, cur, ncur, target, targets);
    check_overlap(L, g, targets, ntargets, "targets");
    check_overlap(L, g, cur, ncur, "current revisions");
    luamig_mark_reach(L, g, targets, ntargets, todo, true);
    luamig_mark_reach(L, g, cur, ncur, applied, true);
    for (int i = 0; i < g->n; i++) todo[i] = todo[i] && !applied[i];
    n = luamig_topo_sort(L, g, todo, targets, ntargets, order);
    for (int i = 0; i < n; i++) s[i] = (luamig_step){ order[n - 1 - i], true };
  } else {
    downgrade_set(L, g, cur, ncur, target, todo);
    n = luamig_topo_sort(L, g, todo, cur, ncur, order);
    for (int i = 0; i < n; i++) s[i] = (luamig_step){ order[i], false };
  }
  lua_settop(L, top);
  *steps = s;
  return n;
}

int luamig_resolve(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                   const char *target, int *out) {
  int top = lua_gettop(L), n = 0;
  relative rel;
  if (strcmp(target, "current") == 0) {
    n = luamig_copy_revs(out, cur, ncur);
  } else if (parse_relative(L, target, &rel) && rel.n < 0 && rel.symbol == NULL) {
    dest d = downgrade_dest(L, g, cur, ncur, target);
    if (d.merge >= 0) {
      n = luamig_copy_revs(out, g->revs[d.merge].parents, g->revs[d.merge].nparents);
    } else if (d.rev >= 0) {
      out[n++] = d.rev;
    }
  } else {
    n = upgrade_targets(L, g, cur, ncur, target, out);
  }
  lua_settop(L, top);
  return n;
}

/* ---- stamp: Alembic's _stamp_revs and HeadMaintainer.update_to_step ---- */

static void unrow(lua_State *L, const luamig_graph *g, int *rows, int rev, const char *target) {
  if (!rows[rev])
    luaL_error(L, "Can't stamp %s: %s is no longer a current row at that point (Alembic's "
               "stamp fails here too)", target, g->revs[rev].id);
  rows[rev] = 0;
}

static void row(lua_State *L, const luamig_graph *g, int *rows, int rev, const char *target) {
  if (rows[rev])
    luaL_error(L, "Can't stamp %s: %s is a current row already (Alembic's stamp fails here "
               "too)", target, g->revs[rev].id);
  rows[rev] = 1;
}

/* One StampStep: the rows from[] give way to to, as an upgrade or a
 * downgrade; with branch_move, a row goes (to < 0) or comes on its own. */
static void stamp_step(lua_State *L, const luamig_graph *g, int *rows, const int *from,
                       int nfrom, int to, bool up, bool branch_move, const char *target) {
  bool gone = false;
  for (int i = 0; i < nfrom; i++) gone = gone || !rows[from[i]];
  if (!up && branch_move) {
    unrow(L, g, rows, from[0], target);
  } else if (up && (branch_move || gone) && !rows[to]) {
    rows[to] = 1;
  } else if (nfrom >= 1) {           /* the last one is updated; the others are deleted */
    for (int i = 0; i < nfrom - 1; i++) unrow(L, g, rows, from[i], target);
    row(L, g, rows, to, target);
    unrow(L, g, rows, from[nfrom - 1], target);
  } else {
    luaL_error(L, "Can't stamp %s: no current row to move to %s", target, g->revs[to].id);
  }
}

/* Whether any of revs is marked. */
static bool any_marked(const int *mark, const int *revs, int n) {
  for (int i = 0; i < n; i++) if (mark[revs[i]]) return true;
  return false;
}

int luamig_stamp(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                 const char *target, int *out) {
  int top = lua_gettop(L);
  int *rows = luamig_scratch(L, g->n), *filtered = luamig_scratch(L, g->n), nf = 0;
  for (int i = 0; i < ncur; i++) rows[cur[i]] = 1;
  if (*target && ncur > 0) {         /* the rows on the target's lineage */
    int *refs = luamig_scratch(L, g->n), nrefs = luamig_lineage_refs(L, g, target, refs);
    int *line = luamig_scratch(L, g->n);
    luamig_mark_lineage(L, g, refs, nrefs, line, true);
    for (int i = 0; i < ncur; i++) if (nrefs == 0 || line[cur[i]]) filtered[nf++] = cur[i];
  }
  int *dests = luamig_scratch(L, g->n), nd = luamig_get_revisions(L, g, target, dests);
  if (nd == 0) dests[nd++] = LUAMIG_NOREV;
  int *above = luamig_scratch(L, g->n), *below = luamig_scratch(L, g->n);
  for (int k = 0; k < nd; k++) {
    int d = dests[k];
    if (d == LUAMIG_BELOW) luaL_error(L, "Can't stamp %s: it walks below base", target);
    if (d == LUAMIG_NOREV) {         /* base: each row on the lineage goes */
      for (int i = 0; i < nf; i++) stamp_step(L, g, rows, &filtered[i], 1, -1, false, true, target);
      continue;
    }
    bool row_already = false;
    for (int i = 0; i < nf; i++) row_already = row_already || filtered[i] == d;
    if (row_already) continue;
    memset(above, 0, (size_t)g->n * sizeof(int));
    memset(below, 0, (size_t)g->n * sizeof(int));
    luamig_mark_reach(L, g, &d, 1, above, false);
    luamig_mark_reach(L, g, &d, 1, below, true);
    if (any_marked(above, filtered, nf)) {
      if (any_marked(below, filtered, nf))
        luaL_error(L, "Can't stamp %s: current rows lie both above and below %s", target,
                   g->revs[d].id);
      stamp_step(L, g, rows, filtered, nf, d, false, false, target);
    } else if (any_marked(below, filtered, nf)) {
      stamp_step(L, g, rows, filtered, nf, d, true, false, target);
    } else {                         /* a line no row is on: a new row */
      stamp_step(L, g, rows, NULL, 0, d, true, true, target);
    }
  }
  int n = 0;
  for (int i = 0; i < g->n; i++) if (rows[i]) out[n++] = i;
  lua_settop(L, top);
  return n;
}

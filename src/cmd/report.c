/*
 * report.c: the commands that only look: current, heads, history, show,
 * branches, status and verify. Shared by the CLI and the Lua API; each takes
 * an options table and returns Lua values. Only status, verify and current
 * (and history with indicate_current) need the database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "cmd.h"

/* The INVALID indexes (a failed CREATE INDEX CONCURRENTLY leaves one) in the
 * schemas of the search path and the version table's, as schema.name. */
static void push_invalid_indexes(luamig_run *r) {
  lua_State *L = r->L;
  const char *schema = r->vt.schema;
  luamig_query_column(L, r->c,
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_index i "
    "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE NOT i.indisvalid AND (n.nspname = ANY (pg_catalog.current_schemas(false)) "
    "OR n.nspname = $1) ORDER BY 1", 1, &schema);
}

static void add_details(lua_State *L, const luamig_graph *g, int i, int labels);
static int push_shown_labels(lua_State *L, const luamig_graph *g);

/* opts.verbose: each revision with its details (add_details) */
static bool verbose(lua_State *L, int opts) {
  lua_getfield(L, opts, "verbose");
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* verify: the audit log against the files and the version table; a row no
 * file has is a finding (missing), not an error. */
static int cmd_verify(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, LUAMIG_RUN_CONNECT | LUAMIG_RUN_SUMS);
  luamig_run_connect(&r);
  int n = luamig_vtable_read(L, r.c, &r.vt), rows = lua_gettop(L);
  int *cur = luamig_scratch(L, r.g->n), ncur = 0;
  lua_newtable(L);
  int unknown = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, rows, i);
    int k = luamig_graph_find(r.g, lua_tostring(L, -1));
    if (k >= 0 && ncur < r.g->n) cur[ncur++] = k;
    if (k < 0) lua_rawseti(L, unknown, (lua_Integer)lua_rawlen(L, unknown) + 1);
    else lua_pop(L, 1);
  }
  luamig_push_findings(&r, cur, ncur, unknown);
  push_invalid_indexes(&r);
  lua_setfield(L, -2, "invalid_indexes");
  return 1;
}

/* status: what the database is at and what is pending up to the heads;
 * returns { current = {...}, pending = {...} } (pending in upgrade order). */
static int cmd_status(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, LUAMIG_RUN_CONNECT);
  luamig_run_connect(&r);
  int *cur = luamig_scratch(L, r.g->n);
  int ncur = luamig_read_current(&r, cur, NULL);
  luamig_step *steps;
  int nsteps = luamig_plan(L, r.g, cur, ncur, "heads", true, &steps);
  lua_createtable(L, 0, 2);
  lua_createtable(L, ncur, 0);
  for (int i = 0; i < ncur; i++) {
    luamig_push_rev_info(L, r.g, cur[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "current");
  lua_createtable(L, nsteps, 0);
  for (int i = 0; i < nsteps; i++) {
    luamig_push_rev_info(L, r.g, steps[i].rev);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "pending");
  return 1;
}

/* current: what the version table's rows stand for, as Alembic's current
 * shows it: the applied revisions nothing applied builds on (a row, or a
 * revision a row depends on), then any row no file has ({ unknown = true }). */
static int cmd_current(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, LUAMIG_RUN_CONNECT);
  luamig_run_connect(&r);
  int n = luamig_vtable_read(L, r.c, &r.vt), rows = lua_gettop(L);
  if (n < 0) n = 0;
  int *cur = luamig_scratch(L, n), ncur = 0, nunknown = 0;
  lua_newtable(L);
  int unknown = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, rows, i);
    int k = luamig_graph_find(r.g, lua_tostring(L, -1));
    if (k >= 0) cur[ncur++] = k;
    else lua_rawseti(L, unknown, ++nunknown);
    lua_settop(L, unknown);
  }
  int *set = luamig_scratch(L, r.g->n), nset = luamig_current_set(L, r.g, cur, ncur, set);
  bool details = verbose(L, r.opts);
  int labels = details ? push_shown_labels(L, r.g) : 0;
  lua_createtable(L, nset + nunknown, 0);
  for (int i = 0; i < nset; i++) {
    luamig_push_rev_info(L, r.g, set[i]);
    if (details) add_details(L, r.g, set[i], labels);
    lua_rawseti(L, -2, i + 1);
  }
  for (int i = 1; i <= nunknown; i++) {
    lua_createtable(L, 0, 2);
    lua_rawgeti(L, unknown, i);
    lua_setfield(L, -2, "revision");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "unknown");
    lua_rawseti(L, -2, nset + i);
  }
  return 1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Pushes { [i + 1] = { label, ... } }: the branch labels revision i shows,
 * sorted (Alembic spreads a label beyond its revision: see luamig_label_span);
 * revisions that show none have no entry. Returns its stack index. */
static int push_shown_labels(lua_State *L, const luamig_graph *g) {
  lua_newtable(L);
  int t = lua_gettop(L), most = 0;
  int *span = luamig_scratch(L, g->n);
  for (int k = 0; k < g->n; k++) {
    if (g->revs[k].nlabels == 0) continue;
    most += g->revs[k].nlabels;
    memset(span, 0, (size_t)g->n * sizeof(int));
    luamig_label_span(L, g, k, span);
    for (int i = 0; i < g->n; i++) {
      if (!span[i]) continue;
      if (lua_rawgeti(L, t, i + 1) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawseti(L, t, i + 1);
      }
      for (int j = 0; j < g->revs[k].nlabels; j++) {
        lua_pushstring(L, g->revs[k].labels[j]);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      }
      lua_pop(L, 1);
    }
  }
  const char **names = lua_newuserdatauv(L, (size_t)(most + 1) * sizeof *names, 0);
  lua_pushnil(L);
  while (lua_next(L, t)) {           /* sorts each list in place */
    int n = (int)lua_rawlen(L, -1);
    for (int j = 0; j < n; j++) {
      lua_rawgeti(L, -1, j + 1);
      names[j] = lua_tostring(L, -1);  /* anchored by the list until rewritten below */
      lua_pop(L, 1);
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    lua_createtable(L, n, 0);
    for (int j = 0; j < n; j++) {
      lua_pushstring(L, names[j]);
      lua_rawseti(L, -2, j + 1);
    }
    lua_pushvalue(L, -3);
    lua_insert(L, -2);
    lua_rawset(L, t);                /* an existing key: allowed while traversing */
    lua_pop(L, 1);
  }
  lua_settop(L, t);
  return t;
}

/* Sets field "branches" of the table at the top: the labels revision i shows
 * (labels: push_shown_labels' table). */
static void set_shown_labels(lua_State *L, int labels, int i) {
  if (lua_rawgeti(L, labels, i + 1) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lua_setfield(L, -2, "branches");
}

/* heads: the revisions no revision names as down_revision (file order), each
 * with the branch labels it shows as `branches`. */
static int cmd_heads(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, 0);
  luamig_graph *g = r.g;
  int labels = push_shown_labels(L, g);
  bool details = verbose(L, r.opts);
  lua_createtable(L, g->nheads, 0);
  for (int i = 0; i < g->nheads; i++) {
    luamig_push_rev_info(L, g, g->heads[i]);
    if (details) add_details(L, g, g->heads[i], labels);
    else set_shown_labels(L, labels, g->heads[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* history: newest first; opts.range "START:END"; opts.indicate_current. */
static int cmd_history(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, luamig_opt_preset(L, "indicate_current") ? LUAMIG_RUN_CONNECT : 0);
  luamig_graph *g = r.g;
  int *cur = luamig_scratch(L, g->n), ncur = 0;
  int *iscur = luamig_scratch(L, g->n);
  lua_getfield(L, r.opts, "indicate_current");
  bool indicate = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (indicate) {
    luamig_run_connect(&r);
    ncur = luamig_read_current(&r, cur, NULL);
    for (int i = 0; i < ncur; i++) iscur[cur[i]] = 1;
  }
  int *inrange = luamig_scratch(L, g->n);
  lua_getfield(L, r.opts, "range");
  const char *range = lua_tostring(L, -1);
  if (range) {
    const char *colon = strchr(range, ':');
    if (colon == NULL)
      return luaL_error(L, "history range '%s' must be START:END (either may be empty)", range);
    const char *start = lua_pushlstring(L, range, (size_t)(colon - range));
    const char *end = colon + 1;
    int *ends = luamig_scratch(L, g->n), nend = 0;
    int *starts = luamig_scratch(L, g->n), nstart = 0;
    if (*end) nend = luamig_resolve(L, g, cur, ncur, end, ends);
    else { nend = g->nheads; memcpy(ends, g->heads, (size_t)nend * sizeof(int)); }
    if (*start) nstart = luamig_resolve(L, g, cur, ncur, start, starts);
    luamig_mark_reach(L, g, ends, nend, inrange, true);
    if (nstart > 0) {
      int *above = luamig_scratch(L, g->n);
      luamig_mark_reach(L, g, starts, nstart, above, false);
      for (int i = 0; i < g->n; i++) inrange[i] = inrange[i] && above[i];
    }
  } else {
    for (int i = 0; i < g->n; i++) inrange[i] = 1;
  }
  bool details = verbose(L, r.opts);
  int labels = details ? push_shown_labels(L, g) : 0;
  lua_newtable(L);
  int n = 0;
  for (int k = g->n - 1; k >= 0; k--) {
    int i = g->order[k];
    if (!inrange[i]) continue;
    luamig_push_rev_info(L, g, i);
    if (details) add_details(L, g, i, labels);
    lua_pushboolean(L, iscur[i]);
    lua_setfield(L, -2, "current");
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* Pushes the list of ids at list as an array. */
static void push_id_list(lua_State *L, const luamig_graph *g, const int *list, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, g->revs[list[i]].id);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Adds children, depends_on, branch_labels (its own), branches (the labels it
 * shows: set_shown_labels), transactional and doc (the comment the file opens
 * with, as Alembic's module docstring) to the rev info at the top. */
static void add_details(lua_State *L, const luamig_graph *g, int i, int labels) {
  const luamig_rev *rv = &g->revs[i];
  set_shown_labels(L, labels, i);
  push_id_list(L, g, rv->children, rv->nchildren);
  lua_setfield(L, -2, "children");
  push_id_list(L, g, rv->deps, rv->ndeps);
  lua_setfield(L, -2, "depends_on");
  lua_createtable(L, rv->nlabels, 0);
  for (int k = 0; k < rv->nlabels; k++) {
    lua_pushstring(L, rv->labels[k]);
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "branch_labels");
  lua_pushboolean(L, rv->transactional);
  lua_setfield(L, -2, "transactional");
  FILE *f = fopen(rv->path, "r");   /* the doc: the comment block the file opens with */
  if (f == NULL) return;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char line[1024];
  bool start = true;                 /* line starts a line of the file (longer ones come in parts) */
  while (fgets(line, sizeof line, f) && (!start || strncmp(line, "--", 2) == 0)) {
    const char *text = line;
    if (start) text += line[2] == ' ' ? 3 : 2;
    luaL_addstring(&b, text);
    start = strchr(line, '\n') != NULL;
  }
  fclose(f);
  luaL_pushresult(&b);
  lua_setfield(L, -2, "doc");
}

/* show: one revision (any target form that names one) in full. */
static int cmd_show(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, 0);
  lua_getfield(L, r.opts, "target");
  const char *target = luaL_optstring(L, -1, "head");
  int *dest = luamig_scratch(L, r.g->n);
  int n = luamig_resolve(L, r.g, NULL, 0, target, dest);
  int labels = push_shown_labels(L, r.g);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    luamig_push_rev_info(L, r.g, dest[i]);
    add_details(L, r.g, dest[i], labels);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* branches: the branch points, each with its children. */
static int cmd_branches(lua_State *L) {
  luamig_run r;
  luamig_run_init(L, &r, 0);
  int labels = push_shown_labels(L, r.g);
  lua_newtable(L);
  int n = 0;
  for (int k = 0; k < r.g->n; k++) {
    int i = r.g->order[k];
    if (r.g->revs[i].nchildren < 2) continue;
    luamig_push_rev_info(L, r.g, i);
    add_details(L, r.g, i, labels);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

static const luaL_Reg report_funcs[] = {
  { "branches", cmd_branches },
  { "current", cmd_current },
  { "heads", cmd_heads },
  { "history", cmd_history },
  { "show", cmd_show },
  { "status", cmd_status },
  { "verify", cmd_verify },
  { NULL, NULL }
};

int luamig_open_report(lua_State *L) {
  luaL_newlib(L, report_funcs);
  return 1;
}

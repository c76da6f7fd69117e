/*
 * revs.h: what only the files of src/revs/ share (what other folders use is in
 * include/luamig_revs.h).
 */
#ifndef LUAMIG_SRC_REVS_H
#define LUAMIG_SRC_REVS_H

#include "luamig.h"

/* ---- graph.c: the revision DAG (pure: no connection) ---- */

#define LUAMIG_GRAPH_MT "luamig.graph"
/* An exact id, else the revision carrying that branch label; -1 when neither. */
int luamig_graph_lookup(const luamig_graph *g, const char *key);

/* ---- sandbox.c: what a revision's code may do, and for how long ---- */

/* Pushes the shared, read-through base of every revision environment: the
 * standard libraries, with print/io.write/io.stdout going to stderr and os.exit
 * refused. */
void luamig_push_sandbox(lua_State *L);
/* Sets the time budget of each call into a revision (revision_timeout; 0: none);
 * label is the limit as configured, for the message. */
void luamig_budget_limit(lua_State *L, double ms, const char *label);
/* Lua cuts a file name in its messages to LUA_IDSIZE ("...tail.lua:3: msg"):
 * puts path back whole in the error message at the top. */
void luamig_error_path(lua_State *L, const char *path);

/* ---- revmap.c: Alembic's rules for reading the graph (pure) ---- */

/* Results besides a revision index: Alembic's None (base, or nothing: a walk
 * that ran off the graph), its "base" (a walk one step below a base), and
 * luamig's "the parents of this merge" (luamig_walk's merge). */
enum { LUAMIG_NOREV = -1, LUAMIG_BELOW = -2, LUAMIG_UNMERGE = -3 };

/* The number in "+N" / "-N" (digits after a sign), kept to at most 10^10. */
long luamig_steps(const char *s);
/* Copies n revision indices (src may be NULL when n is 0); returns n. */
int luamig_copy_revs(int *out, const int *src, int n);
/* luamig_mark_reach through parents or children only (down_revision). */
void luamig_mark_line(lua_State *L, const luamig_graph *g, const int *from,
                      int nfrom, int *mark, bool toward_base);
/* Marks the ancestors and descendants of against[] (Alembic's lineage). */
void luamig_mark_lineage(lua_State *L, const luamig_graph *g, const int *against, int n,
                         int *mark, bool deps);
/* An id, branch label or unique prefix; with branch (NULL: none), on that
 * branch's lineage. Raises "Can't locate revision identified by ...". */
int luamig_ident(lua_State *L, const luamig_graph *g, const char *ident, const char *branch);
/* Alembic's get_revisions / get_revision for one target string (see revmap.c). */
int luamig_get_revisions(lua_State *L, const luamig_graph *g, const char *target, int *out);
int luamig_get_revision(lua_State *L, const luamig_graph *g, const char *target);
int luamig_lineage_refs(lua_State *L, const luamig_graph *g, const char *target, int *out);
/* |steps| up (branch: staying on its lineage) or down from start; see revmap.c. */
int luamig_walk(lua_State *L, const luamig_graph *g, int start, long steps,
                const char *branch, int *merge, const char *target);
/* Raises Alembic's "Multiple head revisions are present ..." naming heads. */
int luamig_multiple_heads(lua_State *L, const luamig_graph *g, const char *arg,
                          const int *heads, int n);
/* Alembic's topological sort of the revisions marked in todo (cleared),
 * walking down from heads: each comes before what it builds on. */
int luamig_topo_sort(lua_State *L, const luamig_graph *g, int *todo, const int *heads,
                     int nheads, int *out);

#endif

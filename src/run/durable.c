/*
 * durable.c: a transaction per revision without a flush to disk per revision.
 *
 * With synchronous_commit on, every COMMIT waits for its WAL to reach the
 * disk: a run of 1,000 small revisions spent most of its time there. A run of
 * several revisions commits them with synchronous_commit off (the commit
 * record is written, its flush follows within a few hundred ms) and the last
 * one with the session's own setting, whose flush (and, with synchronous
 * standbys, their confirmation) covers every commit before it. A crash of the
 * server in between loses whole trailing revisions, never part of one: each
 * is one transaction, its version row inside, so the next run finds them
 * pending and applies them again. A non-transactional revision runs with the
 * session's setting, so none of its statements is lost after a later one. A
 * run that stops early flushes what it committed as its connection closes
 * (conn.c, as luamig_conn.unflushed says).
 */

#include "luamig.h"

void luamig_durable_relax(lua_State *L, luamig_run *r, luamig_opctx *ctx) {
  if (r->relaxed) return;
  luamig_emit(L, ctx, "SET synchronous_commit = off", 0, NULL);
  r->relaxed = true;
  if (ctx->conn) ctx->conn->unflushed = true;
}

void luamig_durable_restore(luamig_run *r, luamig_stmt *st, int *n) {
  if (!r->relaxed) return;
  st[(*n)++] = (luamig_stmt){ "SET synchronous_commit TO DEFAULT", 0, NULL, false };
  r->relaxed = false;
}

void luamig_durable_commit(const luamig_run *r, luamig_stmt *st, int *n) {
  /* LOCAL: a rolled-back try (a lock timeout) leaves the session as it was */
  if (r->relaxed && r->step == r->nsteps)
    st[(*n)++] = (luamig_stmt){ "SET LOCAL synchronous_commit TO DEFAULT", 0, NULL, false };
}

void luamig_durable_done(luamig_run *r) {
  if (r->c != NULL) r->c->unflushed = false;
}

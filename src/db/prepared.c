/*
 * prepared.c: the statements a connection keeps prepared.
 *
 * The statements luamig sends for every revision (the version-table move, the
 * audit row with its guard) are the same text each time: a connection keeps
 * them prepared, as luamig_G_0, luamig_G_1, ..., so the server parses each
 * once and plans it once it has settled on a generic plan; a batch
 * (luamig_batch) sends a luamig_stmt marked prepare by name, its Parse first
 * the first time. A prepared statement outlives a rollback. A
 * non-transactional revision may DISCARD them: the runner then starts a new
 * generation G (luamig_conn_forget_prepared); a transactional one that runs
 * DEALLOCATE ALL fails, and rolls back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "db.h"

/* The slot of sql among c's prepared statements, or the free slot it takes
 * (*parse set: a Parse must go first); -1 when every slot is taken. */
static int prepared_slot(luamig_conn *c, const char *sql, bool *parse) {
  *parse = false;
  for (int i = 0; i < LUAMIG_PREPARED; i++)
    if (c->prepared[i] && strcmp(c->prepared[i], sql) == 0) return i;
  for (int i = 0; i < LUAMIG_PREPARED; i++) {
    if (c->prepared[i]) continue;
    c->prepared[i] = strdup(sql);
    *parse = c->prepared[i] != NULL;
    return *parse ? i : -1;
  }
  return -1;
}

static void forget(luamig_conn *c, int slot) {
  free(c->prepared[slot]);
  c->prepared[slot] = NULL;
}

void luamig_conn_forget_prepared(luamig_conn *c) {
  for (int i = 0; i < LUAMIG_PREPARED; i++) forget(c, i);
  c->prepared_gen++;
}

bool luamig_prepared_send(luamig_conn *c, const luamig_stmt *st, int *parsed) {
  char name[32];
  bool parse = false;
  int slot = st->prepare ? prepared_slot(c, st->sql, &parse) : -1;
  *parsed = parse ? slot : -1;
  if (slot < 0)
    return PQsendQueryParams(c->pg, st->sql, st->nparams, NULL, st->params, NULL, NULL, 0);
  snprintf(name, sizeof name, "luamig_%d_%d", c->prepared_gen, slot);
  if (parse && !PQsendPrepare(c->pg, name, st->sql, st->nparams, NULL)) {
    forget(c, slot);
    *parsed = -1;
    return false;
  }
  return PQsendQueryPrepared(c->pg, name, st->nparams, st->params, NULL, NULL, 0);
}

PGresult *luamig_prepared_parsed(luamig_conn *c, int slot, bool *broke) {
  PGresult *res = PQgetResult(c->pg), *end;
  if (res == NULL) { *broke = true; forget(c, slot); return NULL; }
  while ((end = PQgetResult(c->pg)) != NULL) PQclear(end);
  if (PQresultStatus(res) == PGRES_COMMAND_OK) { PQclear(res); return NULL; }
  forget(c, slot);
  if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED) { PQclear(res); return NULL; }
  return res;
}

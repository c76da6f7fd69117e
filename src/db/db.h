/*
 * db.h: what only the files of src/db/ share (what other folders use is in
 * include/luamig_db.h).
 */
#ifndef LUAMIG_SRC_DB_H
#define LUAMIG_SRC_DB_H

#include "luamig.h"

/* ---- conn.c, conn_exec.c: libpq connections, statements, errors with SQLSTATE ---- */

#define LUAMIG_CONN_MT "luamig.conn"

/* Sends st in a pipeline: by name when st->prepare (its Parse first the first
 * time: its slot in *parsed, else -1), else as it is. luamig_prepared_parsed
 * reads that Parse's result: NULL when it went through (or was skipped after
 * an earlier failure), else the failure. */
bool luamig_prepared_send(luamig_conn *c, const luamig_stmt *st, int *parsed);
PGresult *luamig_prepared_parsed(luamig_conn *c, int slot, bool *broke);
/* Appends s on one line: whitespace runs become one space, the ends are
 * trimmed; past max bytes (0: no limit) it stops at a character boundary with "...". */
void luamig_add_collapsed(luaL_Buffer *b, const char *s, size_t max);

#endif

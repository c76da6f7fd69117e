/*
 * loader.h: what the loader's files share (loader.c builds the graph,
 * loader_scan.c reads headers without running files, loader_read.c reads
 * files, ahead on a second thread). Nothing here is used outside them.
 */
#ifndef LUAMIG_LOADER_H
#define LUAMIG_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <lua.h>

/* ---- loader_scan.c ---- */

/* Scans the text of a revision file into the table at tbl (its header
 * fields). True when the file is plain: only literal assignments and
 * function definitions at the top level, a revision id, and global
 * upgrade() and downgrade() functions. */
bool luamig_scan_header(lua_State *L, const char *text, size_t len, int tbl);

/* ---- loader_read.c ---- */

/* A file as read: its stat before the read, and whether the header cache may
 * keep it (luamig_cache_fresh, asked right after the read). */
typedef struct luamig_readstat {
  struct stat st;
  bool fresh;
} luamig_readstat;

/* Pushes the buffer files are read into: one per state, kept in the registry,
 * as large as the largest file read so far. Returns its stack index. */
int luamig_push_filebuf(lua_State *L);
/* Reads path whole into the buffer at buf (replaced by a larger one when
 * needed); returns the text, or NULL when it cannot be read (then Lua's own
 * loader reports why). The descriptor is closed before anything can raise. */
const char *luamig_read_file(lua_State *L, int buf, const char *path, size_t *len,
                             luamig_readstat *rs);

typedef struct luamig_prefetch luamig_prefetch;
/* Pushes a prefetcher of the n names of the array at idx (names in dir) in
 * a to-be-closed slot and starts its reader; without a descriptor or a
 * thread it reads nothing ahead and luamig_prefetch_take says so. */
luamig_prefetch *luamig_prefetch_start(lua_State *L, const char *dir, int idx, int n,
                                       bool sums);
/* File i (in order) into the buffer at buf, its SHA-256 into sum when the
 * reader took it; NULL when it was not read ahead or could not be read (the
 * caller reads it itself, or lets Lua say why). */
const char *luamig_prefetch_take(lua_State *L, luamig_prefetch *p, int i, int buf, size_t *len,
                                 char sum[65], luamig_readstat *rs);

#endif

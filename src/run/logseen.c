/*
 * logseen.c: the audit logs a versions directory's runs have seen, so a no-op
 * upgrade asks the server for a cheap fingerprint of the log, not its digest
 * (a third of the server's time in a run with nothing to do).
 *
 * `.luamig-cache/logs` maps the SHA-256 of a log's fingerprint (the
 * database's identity, the log's row count, last id and sum of a 64-bit hash
 * of each row: luamig_sql_log_print) to the log's digest read in the same
 * snapshot: a fact about that log, whatever the files say, which the files'
 * checksums are then compared with on every run as before. Any change to the
 * log (a row added, deleted or edited by hand, a -started row) changes the
 * fingerprint, and a fingerprint not listed costs one digest read. A cache
 * from another build, a torn or corrupt one, or a foreign one is not used or
 * says nothing about this log: it only costs that read. The newest entries
 * first, at most MAX_LOGS (the databases of a fleet sharing the directory).
 */
#include <string.h>

#include "luamig.h"

#define LOGS_CACHE LUAMIG_CACHE_DIR "/logs"
#define MAX_LOGS 256
#define LINE (64 + 1 + 64 + 1)         /* "<print> <digest>\n" */

/* Pushes the cache's entries ("" when none can be trusted); returns them. */
static const char *push_entries(lua_State *L, const char *dir, size_t *len) {
  const char *head = luamig_build_id();
  size_t hlen = strlen(head);
  const char *text = NULL;
  if (luamig_cache_read(L, dir, LOGS_CACHE)) {
    text = lua_tolstring(L, -1, len);
    if (*len < hlen + 1 || memcmp(text, head, hlen) != 0 || text[hlen] != '\n' ||
        (*len - hlen - 1) % LINE != 0)
      text = NULL;
  }
  if (text == NULL) {
    lua_pop(L, 1);
    *len = 0;
    return lua_pushliteral(L, "");
  }
  lua_pushlstring(L, text + hlen + 1, *len - hlen - 1);
  lua_remove(L, -2);
  return lua_tolstring(L, -1, len);
}

bool luamig_logseen_find(lua_State *L, const char *dir, const char *print, char digest[65]) {
  size_t len;
  const char *e = dir ? push_entries(L, dir, &len) : lua_pushliteral(L, "");
  bool found = false;
  for (size_t off = 0; dir && off < len && !found; off += LINE) {
    if (memcmp(e + off, print, 64) != 0) continue;
    memcpy(digest, e + off + 65, 64);
    digest[64] = '\0';
    found = true;
  }
  lua_pop(L, 1);
  return found;
}

void luamig_logseen_add(lua_State *L, const char *dir, const char *print, const char *digest) {
  if (dir == NULL || strlen(print) != 64 || strlen(digest) != 64) return;
  size_t len;
  const char *e = push_entries(L, dir, &len);
  if (len >= LINE && memcmp(e, print, 64) == 0 && memcmp(e + 65, digest, 64) == 0) {
    lua_pop(L, 1);                   /* the newest already: nothing to write */
    return;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, luamig_build_id());
  luaL_addchar(&b, '\n');
  lua_pushfstring(L, "%s %s\n", print, digest);
  luaL_addvalue(&b);
  int kept = 1;
  for (size_t off = 0; off < len && kept < MAX_LOGS; off += LINE)
    if (memcmp(e + off, print, 64) != 0) {
      luaL_addlstring(&b, e + off, LINE);
      kept++;
    }
  luaL_pushresult(&b);
  luamig_cache_write(L, dir, LOGS_CACHE, -1);
  lua_pop(L, 2);
}

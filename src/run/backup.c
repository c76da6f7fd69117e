/*
 * backup.c: --backup FILE, the guide's "backup before migrating": pg_dump of
 * the database before anything changes, spawned without a shell (no quoting).
 *
 * A command line is there for every user of the machine to read (ps), so
 * pg_dump does not get the URL: it gets its settings as key=value pairs
 * without the password, and the password in a passfile of its own (mode 0600
 * from mkstemp, "*:*:*:*:password"), removed as soon as pg_dump ends.
 * sslpassword has no such channel: it is left out (docs/safety.md).
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "luamig.h"

extern char **environ;

static void free_conninfo(void *p) { PQconninfoFree(p); }

/* The passfile: removed, then its name freed. */
static void remove_passfile(void *path) {
  unlink(path);
  free(path);
}

/* Writes a passfile for pw (':' and '\' escaped, as libpq reads them) into
 * *slot's ownership; returns its path. */
static const char *write_passfile(lua_State *L, void **slot, const char *pw) {
  const char *tmp = getenv("TMPDIR");
  char *path = malloc(strlen(tmp && *tmp ? tmp : "/tmp") + 32);
  if (path == NULL) luaL_error(L, "--backup: out of memory");
  sprintf(path, "%s/luamig-pgpass.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int fd = mkstemp(path);            /* 0600: only this user reads it */
  if (fd < 0) {
    free(path);
    luaL_error(L, "--backup: cannot make a passfile for pg_dump: %s; nothing was changed",
               strerror(errno));
  }
  *slot = path;                      /* from here on, removed whatever happens */
  FILE *f = fdopen(fd, "w");
  bool ok = f != NULL && fputs("*:*:*:*:", f) >= 0;
  for (const char *p = pw; ok && *p; p++)
    ok = ((*p == ':' || *p == '\\') ? fputc('\\', f) >= 0 : true) && fputc(*p, f) >= 0;
  ok = ok && fputc('\n', f) >= 0;
  if (f ? fclose(f) != 0 : close(fd) != 0) ok = false;
  if (!ok) luaL_error(L, "--backup: cannot write a passfile for pg_dump; nothing was changed");
  return path;
}

/* Pushes pg_dump's -d argument: url's settings but its passwords, with a
 * passfile (owned by the userdata pushed below it) when url has a password. */
static const char *push_conninfo(lua_State *L, const char *url) {
  void **pass = luamig_push_owned(L, remove_passfile);
  if (!luamig_is_conninfo(url)) return lua_pushstring(L, url);   /* a database name */
  void **opts = luamig_push_owned(L, free_conninfo);
  *opts = PQconninfoParse(url, NULL);
  if (*opts == NULL)
    luaL_error(L, "--backup: pg_dump cannot be given this connection string (not shown); "
               "nothing was changed");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *pw = NULL;
  for (PQconninfoOption *o = *opts; o->keyword; o++) {
    if (o->val == NULL || strcmp(o->keyword, "sslpassword") == 0) continue;
    if (strcmp(o->keyword, "password") == 0) { pw = o->val; continue; }
    luamig_add_setting(&b, o->keyword, o->val);
  }
  if (pw && *pw) luamig_add_setting(&b, "passfile", write_passfile(L, pass, pw));
  luaL_pushresult(&b);
  luamig_owned_free(opts);
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

void luamig_backup(luamig_run *r, const char *file) {
  lua_State *L = r->L;
  int top = lua_gettop(L);
  lua_getfield(L, r->cfg, "url");
  const char *url = lua_tostring(L, -1);
  const char *conninfo = url ? push_conninfo(L, url) : NULL;
  char *argv[] = { "pg_dump", "--no-password", "-f", (char *)file, conninfo ? "-d" : NULL,
                   (char *)conninfo, NULL };
  pid_t pid;
  int err = posix_spawnp(&pid, "pg_dump", NULL, NULL, argv, environ);
  if (err != 0) luaL_error(L, "--backup: cannot run pg_dump: %s (install the PostgreSQL "
                           "client); nothing was changed", strerror(err));
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) luaL_error(L, "--backup: waiting for pg_dump: %s", strerror(errno));
  if (url) luamig_owned_free(lua_touserdata(L, top + 2));   /* the passfile goes now */
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    luaL_error(L, "--backup: pg_dump failed (see its message above); nothing was changed");
  lua_settop(L, top);
  luamig_run_log(r, "info", lua_pushfstring(L, "Backed up the database to %s (pg_dump)", file), 0);
  lua_pop(L, 1);
}

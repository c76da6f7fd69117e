/*
 * testcmd.c: core.test(opts), `luamig test`. The checks are Lua
 * (luamig.testrun); this file gives them what Lua cannot do by itself, in
 * core.scratch: a connection string for another database on the same server,
 * starting initdb and pg_ctl (as the postgres user when we are root: PostgreSQL
 * will not run as root) without a shell, a private directory for a throwaway
 * cluster, and ^C as an error that still lets the scratch database be dropped.
 */
#define _DEFAULT_SOURCE                /* setgroups */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "luamig.h"
#include "cmd.h"

#define SOCKET_DIR_MAX 80              /* sun_path is 108 bytes; ".s.PGSQL.NNNNN" and slack */

static void free_options(void *p) { PQconninfoFree(p); }

/* conninfo(url, overrides) -> "host='...' dbname='...'": url's settings (a URL
 * or key=value; nil: none, libpq's defaults apply) with those of the table
 * overrides (keyword -> string) in their place. */
static int scratch_conninfo(lua_State *L) {
  const char *url = luaL_optstring(L, 1, "");
  luaL_checktype(L, 2, LUA_TTABLE);
  char *err = NULL;
  void **slot = luamig_push_owned(L, free_options);
  PQconninfoOption *opts = PQconninfoParse(url, &err);
  *slot = opts;
  if (opts == NULL) {
    luamig_push_redacted(L, url);
    lua_pushfstring(L, "cannot read the database URL %s: %s", lua_tostring(L, -1),
                    err ? err : "out of memory");
    PQfreemem(err);
    return lua_error(L);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    lua_getfield(L, 2, o->keyword);  /* a string stays anchored in the table */
    const char *val = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : o->val;
    lua_pop(L, 1);
    if (val) luamig_add_setting(&b, o->keyword, val);
  }
  luaL_pushresult(&b);
  luamig_owned_free(slot);
  return 1;
}

/* The user PostgreSQL's programs run as: ourselves, or postgres when we are
 * root. Pushes its name; returns its entry (NULL when not root). */
static const struct passwd *server_user(lua_State *L) {
  if (geteuid() != 0) {
    const struct passwd *pw = getpwuid(geteuid());
    lua_pushstring(L, pw ? pw->pw_name : "postgres");
    return NULL;
  }
  const struct passwd *pw = getpwnam("postgres");
  if (pw == NULL)
    luaL_error(L, "PostgreSQL will not run as root and there is no postgres user "
               "(apt-get install postgresql)");
  lua_pushstring(L, "postgres");
  return pw;
}

/* In the child: become pw (when not NULL), leave the current directory (the
 * server's user may not enter it), send output to log, run argv. Never returns. */
static void exec_child(const struct passwd *pw, uid_t uid, gid_t gid, const char *log,
                       char **argv) {
  if (pw && (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) _exit(126);
  if (chdir("/") != 0) _exit(126);
  int in = open("/dev/null", O_RDONLY);
  if (in >= 0) dup2(in, 0);
  if (log) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0) _exit(126);
    dup2(fd, 1);
    dup2(fd, 2);
  }
  execvp(argv[0], argv);
  _exit(127);
}

/* spawn(argv, log) -> exit status (128 + N when signal N ended it): argv[1]
 * run (found on PATH) as server_user's user, its output appended to the file
 * log (nil: ours). No shell: the arguments reach it as they are. */
static int scratch_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *log = luaL_optstring(L, 2, NULL);
  lua_Integer n = luamig_check_array(L, "spawn", 1, "argv");
  luaL_argcheck(L, n > 0, 1, "an empty command");
  char **argv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    argv[i - 1] = (char *)luaL_checkstring(L, -1);   /* anchored in the table */
    lua_pop(L, 1);
  }
  argv[n] = NULL;
  const struct passwd *pw = server_user(L);
  uid_t uid = pw ? pw->pw_uid : 0;
  gid_t gid = pw ? pw->pw_gid : 0;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return luaL_error(L, "cannot start %s: %s", argv[0], strerror(errno));
  if (pid == 0) exec_child(pw, uid, gid, log, argv);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return luaL_error(L, "waiting for %s: %s", argv[0], strerror(errno));
  lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return 1;
}

/* tempdir() -> path, user: a new 0700 directory for a throwaway cluster, owned
 * by the user its server runs as (named second). Under $TMPDIR (or /tmp); as
 * root always /tmp, which the postgres user can enter; /tmp too when $TMPDIR
 * would make the socket path too long. */
static int scratch_tempdir(lua_State *L) {
  const struct passwd *pw = server_user(L);
  const char *base = getenv("TMPDIR");
  if (pw || base == NULL || *base == '\0' || strlen(base) > SOCKET_DIR_MAX - 20) base = "/tmp";
  char *path = (char *)lua_pushfstring(L, "%s/luamig-scratch-XXXXXX", base);
  if (mkdtemp(path) == NULL)
    return luaL_error(L, "cannot create a directory in %s: %s", base, strerror(errno));
  if (pw && chown(path, pw->pw_uid, pw->pw_gid) != 0) {
    int e = errno;
    rmdir(path);
    return luaL_error(L, "cannot give %s to postgres: %s", path, strerror(e));
  }
  lua_insert(L, -2);
  return 2;
}

/* ---- ^C: an error at the next Lua instruction, and a flag to see it by ---- */

static volatile sig_atomic_t caught;   /* the signal, 0 while none came */
static lua_State *trapped;
static struct sigaction saved_int, saved_term;

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lua_pushliteral(L, "interrupted");
  lua_error(L);
}

/* As lua.c's: lua_sethook is safe in a signal handler. A statement the server
 * runs finishes first (libpq resumes its wait); the Lua code after it stops. */
static void on_signal(int sig) {
  caught = sig;
  if (trapped) lua_sethook(trapped, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* trap(on): while on, SIGINT and SIGTERM raise "interrupted" in this thread
 * instead of ending the process; off restores what was there. */
static int scratch_trap(lua_State *L) {
  bool on = lua_toboolean(L, 1);
  if (on && trapped == NULL) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    caught = 0;
    trapped = L;
    sigaction(SIGINT, NULL, &saved_int);
    if (saved_int.sa_handler != SIG_IGN)   /* a background job's: the shell wants it ignored */
      sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, &saved_term);
  } else if (!on && trapped != NULL) {
    sigaction(SIGINT, &saved_int, NULL);
    sigaction(SIGTERM, &saved_term, NULL);
    lua_sethook(trapped, NULL, 0, 0);
    trapped = NULL;
  }
  return 0;
}

/* interrupted() -> the signal that came while trapped (2: ^C), or false. */
static int scratch_interrupted(lua_State *L) {
  if (caught) lua_pushinteger(L, caught);
  else lua_pushboolean(L, 0);
  return 1;
}

static int scratch_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

/* batch(conn, queries) -> { rows... }: each query { sql, parameters... } (as
 * conn:query takes them), all in one round trip; the rows of each, in order.
 * A snapshot's dozen catalog queries cost one wait for the server, not twelve. */
static int scratch_batch(lua_State *L) {
  luamig_conn *c = luamig_conn_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luamig_check_array(L, "batch", 2, "queries");
  luamig_stmt *st = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *st, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    luaL_argcheck(L, lua_istable(L, -1), 2, "each query is { sql, parameters... }");
    int q = lua_gettop(L), np = (int)lua_rawlen(L, q) - 1;
    luaL_checkstack(L, np + 4, "batch");
    lua_rawgeti(L, q, 1);
    const char *sql = luaL_checkstring(L, -1);   /* the query table keeps the string */
    lua_pop(L, 1);
    for (int k = 2; k <= np + 1; k++) lua_rawgeti(L, q, k);
    if (np < 0) np = 0;
    /* whole, so a field added to luamig_stmt is never left unset; asked once:
     * not worth a Parse of its own */
    st[i] = (luamig_stmt){ sql, np, luamig_params(L, q + 1, np, "batch"), false };
  }
  luaL_checkstack(L, n + 2, "batch");
  lua_createtable(L, n, 0);
  int out = lua_gettop(L);
  luamig_batch(L, c, n, st, NULL, true, NULL);
  for (int i = n; i >= 1; i--) lua_rawseti(L, out, i);
  return 1;
}

/* config(opts) -> the resolved config (luamig.lua, .env, the options). */
static int scratch_config(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luamig_config_load(L, 1);
  return 1;
}

/* test(opts) -> require("luamig.testrun").run(opts) */
static int mod_test(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luamig.testrun");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "run");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

static const luaL_Reg scratch_funcs[] = {
  { "conninfo", scratch_conninfo },
  { "spawn", scratch_spawn },
  { "tempdir", scratch_tempdir },
  { "trap", scratch_trap },
  { "interrupted", scratch_interrupted },
  { "pid", scratch_pid },
  { "config", scratch_config },
  { "batch", scratch_batch },
  { NULL, NULL }
};

int luamig_open_test(lua_State *L) {
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, mod_test);
  lua_setfield(L, -2, "test");
  luaL_newlib(L, scratch_funcs);
  lua_setfield(L, -2, "scratch");
  return 1;
}

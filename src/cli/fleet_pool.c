/*
 * fleet_pool.c: the targets of a fleet run, at most --jobs at a time. Each
 * is a child process running this same luamig (/proc/self/exe) with the
 * command's own arguments, --fleet-child and --json: a run of its own, with
 * its own connection, lock and transactions, and nothing shared with the
 * others that a failure could spoil. The target's connection string and the
 * command's options go in the child's environment, never in its argv (ps
 * shows argv to every user). The parent reads each child's JSON object and
 * its stderr through pipes, polled together so no child ever waits on a full
 * pipe. A child dies with its parent (fleet_child.c), so a killed fleet run
 * leaves none behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "luamig.h"
#include "cli.h"
#include "fleet.h"

extern char **environ;

typedef struct child {
  pid_t pid;                         /* 0: a free slot */
  int fd[2];                         /* its stdout and stderr (-1: at their end) */
  int target;                        /* 1-based */
  double t0;
} child;

typedef struct pool {
  lua_State *L;
  int targets, results, outs;        /* stack slots; outs[i] = { stdout chunks, stderr chunks } */
  child *kids;
  int jobs, ok, failed, running;
  char *argv[5];                     /* luamig --fleet-child --json COMMAND */
  const char *opts;                  /* the options, JSON */
} pool;

/* Appends the string at the top to env (at *k) and to the table below it, which keeps it. */
static void add_env(lua_State *L, char **env, int *k) {
  env[(*k)++] = (char *)lua_tostring(L, -1);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

/* The child's environment: the parent's, less any LUAMIG_FLEET_*, plus the
 * target's. Pushes it (its strings are its user value). */
static char **child_env(lua_State *L, const char *url, const char *schema, const char *opts) {
  int n = 0;
  while (environ[n]) n++;
  char **env = lua_newuserdatauv(L, (size_t)(n + 5) * sizeof *env, 1);
  int k = 0;
  for (int i = 0; i < n; i++)
    if (strncmp(environ[i], "LUAMIG_FLEET_", 13) != 0) env[k++] = environ[i];
  lua_createtable(L, 3, 0);
  lua_pushfstring(L, "%s=%s", FLEET_URL_ENV, url);
  add_env(L, env, &k);
  if (schema) {
    lua_pushfstring(L, "%s=%s", FLEET_SCHEMA_ENV, schema);
    add_env(L, env, &k);
  }
  lua_pushfstring(L, "%s=%d", FLEET_PARENT_ENV, (int)getpid());
  add_env(L, env, &k);
  lua_pushfstring(L, "%s=%s", FLEET_OPTS_ENV, opts);
  add_env(L, env, &k);
  env[k] = NULL;
  lua_setiuservalue(L, -2, 1);
  return env;
}

static void cloexec(int fd) { fcntl(fd, F_SETFD, FD_CLOEXEC); }

/* Starts target i in slot c; returns 0 or an errno. */
static int spawn(pool *p, child *c, int i) {
  lua_State *L = p->L;
  int top = lua_gettop(L);
  lua_rawgeti(L, p->targets, i);
  lua_getfield(L, -1, "url");
  lua_getfield(L, -2, "schema");
  char **env = child_env(L, lua_tostring(L, -2), lua_tostring(L, -1), p->opts);
  int out[2], err[2];
  if (pipe(out) != 0) { lua_settop(L, top); return errno; }
  if (pipe(err) != 0) {
    int e = errno;
    close(out[0]);
    close(out[1]);
    lua_settop(L, top);
    return e;
  }
  for (int k = 0; k < 2; k++) {      /* dup2 clears it on the child's 1 and 2 */
    cloexec(out[k]);
    cloexec(err[k]);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  pid_t pid;
  int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, p->argv, env);
  if (rc == ENOENT) rc = posix_spawnp(&pid, "luamig", &fa, NULL, p->argv, env);   /* no /proc */
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  lua_settop(L, top);
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    return rc;
  }
  *c = (child){ pid, { out[0], err[0] }, i, luamig_now_ms() };
  return 0;
}

/* Reads what fd `which` of c has (or its end). */
static void drain(pool *p, child *c, int which) {
  char buf[16384];
  ssize_t n = read(c->fd[which], buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    close(c->fd[which]);
    c->fd[which] = -1;
    return;
  }
  lua_State *L = p->L;
  lua_rawgeti(L, p->outs, c->target);
  lua_rawgeti(L, -1, which + 1);
  lua_pushlstring(L, buf, (size_t)n);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 2);
}

/* Pushes the chunks of the array at idx, joined. */
static const char *push_joined(lua_State *L, int idx) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, idx); i++) {
    lua_rawgeti(L, idx, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Its result: its JSON object, or a failure made from its exit and its stderr
 * when it printed none (killed, or dead before it could), or ended in a way
 * a luamig run never does (a signal, a status other than 0 or 1: a sanitizer's). */
static void push_result(lua_State *L, const char *out, const char *err, int status) {
  bool odd = WIFSIGNALED(status) || WEXITSTATUS(status) > 1;
  bool report = luamig_json_decode(L, out, strlen(out));
  if (report && !lua_istable(L, -1)) {
    lua_pop(L, 1);
    report = false;
  }
  if (report && !odd) {
    if (lua_getfield(L, -1, "status") == LUA_TNIL) {   /* an error before the command ran */
      lua_pushliteral(L, "failed");
      lua_setfield(L, -3, "status");
    }
    lua_pop(L, 1);
    return;
  }
  if (!report) lua_createtable(L, 0, 2);
  lua_pushliteral(L, "failed");
  lua_setfield(L, -2, "status");
  if (WIFSIGNALED(status)) lua_pushfstring(L, "luamig was killed by signal %d", WTERMSIG(status));
  else lua_pushfstring(L, "luamig exited with status %d", WEXITSTATUS(status));
  size_t line = strcspn(err, "\n");
  if (line > 0) {
    lua_pushliteral(L, ": ");
    luamig_push_oneline(L, err, line);
    lua_concat(L, 3);
  }
  lua_setfield(L, -2, "error");
}

/* Sets the field target of the table at the top to target i's label. */
static void set_label(pool *p, int i) {
  lua_rawgeti(p->L, p->targets, i);
  lua_getfield(p->L, -1, "label");
  lua_setfield(p->L, -3, "target");
  lua_pop(p->L, 1);
}

/* The child in c has closed both pipes: when it has exited, stores its result
 * (a child that closed them early is waited for without blocking the others). */
static void reap(pool *p, child *c) {
  lua_State *L = p->L;
  int status = 0;
  pid_t got;
  while ((got = waitpid(c->pid, &status, WNOHANG)) < 0 && errno == EINTR) {}
  if (got == 0) return;
  double ms = luamig_now_ms() - c->t0;
  lua_rawgeti(L, p->outs, c->target);
  lua_rawgeti(L, -1, 1);
  const char *out = push_joined(L, lua_gettop(L));
  lua_rawgeti(L, -3, 2);
  const char *err = push_joined(L, lua_gettop(L));
  push_result(L, out, err, status);
  set_label(p, c->target);
  lua_pushstring(L, err);
  lua_setfield(L, -2, "stderr");
  lua_pushinteger(L, (lua_Integer)(ms + 0.5));
  lua_setfield(L, -2, "ms");
  lua_getfield(L, -1, "status");
  bool failed = strcmp(lua_tostring(L, -1), "failed") == 0;
  lua_pop(L, 1);
  lua_rawseti(L, p->results, c->target);
  lua_pop(L, 5);
  if (failed) p->failed++;
  else p->ok++;
  p->running--;
  c->pid = 0;
}

/* A target that could not start, or never started (stopped after a failure). */
static void record(pool *p, int i, const char *status, const char *error) {
  lua_State *L = p->L;
  lua_createtable(L, 0, 3);
  set_label(p, i);
  lua_pushstring(L, status);
  lua_setfield(L, -2, "status");
  lua_pushstring(L, error);
  lua_setfield(L, -2, "error");
  lua_rawseti(L, p->results, i);
}

/* One wait for output (at most 250 ms, for the progress line); reaps the children done. */
static void step(pool *p) {
  struct pollfd fds[128];
  int who[128], n = 0;
  for (int k = 0; k < p->jobs; k++)
    for (int w = 0; w < 2 && p->kids[k].pid; w++)
      if (p->kids[k].fd[w] >= 0) {
        fds[n] = (struct pollfd){ p->kids[k].fd[w], POLLIN, 0 };
        who[n++] = k * 2 + w;
      }
  if (poll(n > 0 ? fds : NULL, (nfds_t)n, n > 0 ? 250 : 20) < 0 && errno != EINTR)
    luaL_error(p->L, "fleet: poll: %s", strerror(errno));
  for (int i = 0; i < n; i++)
    if (fds[i].revents) drain(p, &p->kids[who[i] / 2], who[i] % 2);
  for (int k = 0; k < p->jobs; k++)
    if (p->kids[k].pid && p->kids[k].fd[0] < 0 && p->kids[k].fd[1] < 0) reap(p, &p->kids[k]);
}

void luamig_fleet_pool(lua_State *L, const char *cmd, int targets, int opts, int jobs,
                       bool keep_going) {
  int n = (int)lua_rawlen(L, targets);
  pool p = { L, targets, 0, 0, NULL, jobs, 0, 0, 0,
             { "luamig", "--fleet-child", "--json", (char *)cmd, NULL }, lua_tostring(L, opts) };
  lua_createtable(L, n, 0);
  p.results = lua_gettop(L);
  lua_createtable(L, n, 0);
  p.outs = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    lua_createtable(L, 2, 0);
    lua_newtable(L);
    lua_rawseti(L, -2, 1);
    lua_newtable(L);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, p.outs, i);
  }
  p.kids = lua_newuserdatauv(L, (size_t)jobs * sizeof *p.kids, 0);
  memset(p.kids, 0, (size_t)jobs * sizeof *p.kids);
  int next = 1;
  for (;;) {
    for (int k = 0; k < jobs && next <= n && (keep_going || p.failed == 0); k++) {
      if (p.kids[k].pid) continue;
      int rc = spawn(&p, &p.kids[k], next);
      if (rc == 0) {
        p.running++;
      } else {
        record(&p, next, "failed", lua_pushfstring(L, "could not start luamig: %s", strerror(rc)));
        lua_pop(L, 1);
        p.failed++;
      }
      next++;
    }
    if (p.running == 0) break;
    step(&p);
    if (luamig_cli.quiet || luamig_cli.json) continue;
    luamig_cli_progress(lua_pushfstring(L, "[%d/%d] %d running, %d failed", p.ok + p.failed, n,
                                        p.running, p.failed));
    lua_pop(L, 1);
  }
  for (; next <= n; next++) record(&p, next, "not run", "not started: an earlier target failed "
                                   "(--continue-on-error runs them all)");
  luamig_cli_progress_end();
  lua_settop(L, p.results);
}

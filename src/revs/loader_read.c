/*
 * loader_read.c: reading revision files: the state's file buffer, one file
 * read whole, and a second thread that reads (and hashes) a directory's files
 * ahead of the loader (loader.c).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luamig.h"
#include "loader.h"

int luamig_push_filebuf(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, "luamig.filebuf") != LUA_TUSERDATA) {
    lua_pop(L, 1);
    lua_newuserdatauv(L, 16384, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "luamig.filebuf");
  }
  return lua_gettop(L);
}

/* Replaces the buffer at buf (and the registry's) by one of size bytes. */
static void grow_filebuf(lua_State *L, int buf, size_t size) {
  lua_newuserdatauv(L, size, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "luamig.filebuf");
  lua_replace(L, buf);
}

/* Whether fd is a regular file (its stat into *st): a FIFO or a device named
 * *.lua would be read for ever (opened with O_NONBLOCK, so a FIFO's open does
 * not wait either). */
static bool is_regular(int fd, struct stat *st) {
  return fstat(fd, st) == 0 && S_ISREG(st->st_mode);
}

const char *luamig_read_file(lua_State *L, int buf, const char *path, size_t *len,
                             luamig_readstat *rs) {
  for (;;) {
    char *data = lua_touserdata(L, buf);
    size_t cap = lua_rawlen(L, buf), n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return NULL;
    if (!is_regular(fd, &rs->st)) {
      close(fd);
      luaL_error(L, "%s: not a regular file (a FIFO, a device or a directory named *.lua); "
                 "luamig reads only regular files in the versions directories", path);
    }
    ssize_t got = 0;
    while (n < cap && (got = read(fd, data + n, cap - n)) > 0) n += (size_t)got;
    close(fd);
    if (got < 0) return NULL;
    rs->fresh = luamig_cache_fresh(&rs->st);
    if (n < cap) { *len = n; return data; }
    grow_filebuf(L, buf, cap * 2);   /* full: maybe more to come */
  }
}

/* ---- reading ahead ----
 *
 * Opening and reading a small file costs the kernel more than scanning it
 * costs us (several microseconds each here: 1,000 files were most of a no-op
 * run). So a second thread reads the files of a directory, in order and at
 * most AHEAD files in front, into malloc'd buffers, and hashes them when the
 * command wants checksums, while this thread scans them and builds the graph.
 * The reader touches no Lua state: it only fills files[i] and counts.
 * luamig_prefetch_take copies a file into the state's file buffer and frees it
 * at once, so a Lua error never strands a buffer; the userdata's __close/__gc stops and joins
 * the reader and frees what it read ahead. */

#define AHEAD 64
#define BATCH 16                     /* a waiting thread is woken for this many files, not each */

typedef struct fetched {
  char *data;
  size_t len;
  bool ok;
  char sum[65];                      /* its SHA-256, when asked for ("" otherwise) */
  luamig_readstat rs;
} fetched;

struct luamig_prefetch {
  pthread_t thread;
  bool running;                      /* the reader was started and not yet joined */
  int dirfd;
  const char **names;                /* anchored in the names table on the stack */
  int n, done, used;                 /* files; read by the reader; taken by the loader */
  int want_done, want_used;          /* what a waiting loader / reader waits for */
  bool stop, sums;
  fetched *files;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

/* Reads name (in dirfd) whole into a malloc'd buffer. */
static fetched slurp(int dirfd, const char *name) {
  fetched f = { NULL, 0, false, "", { .fresh = false } };
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return f;
  if (!is_regular(fd, &f.rs.st)) { close(fd); return f; }   /* luamig_read_file says why */
  size_t cap = 16384;
  f.data = malloc(cap);
  ssize_t got = 0;
  while (f.data != NULL && (got = read(fd, f.data + f.len, cap - f.len)) > 0) {
    f.len += (size_t)got;
    if (f.len == cap) {
      char *more = realloc(f.data, cap * 2);
      if (more == NULL) { free(f.data); f.data = NULL; break; }
      f.data = more;
      cap *= 2;
    }
  }
  close(fd);
  f.rs.fresh = luamig_cache_fresh(&f.rs.st);
  f.ok = f.data != NULL && got == 0;
  if (!f.ok) { free(f.data); f.data = NULL; f.len = 0; }
  return f;
}

static void *reader(void *arg) {
  luamig_prefetch *p = arg;
  for (int i = 0; i < p->n; i++) {
    pthread_mutex_lock(&p->mu);
    if (!p->stop && i >= p->used + AHEAD) {
      p->want_used = i - AHEAD + BATCH;
      while (!p->stop && i >= p->used + AHEAD) pthread_cond_wait(&p->cv, &p->mu);
    }
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (stop) break;
    fetched f = slurp(p->dirfd, p->names[i]);
    if (f.ok && p->sums) luamig_sha256_hex(f.data, f.len, f.sum);
    pthread_mutex_lock(&p->mu);
    p->files[i] = f;
    p->done = i + 1;
    if (p->done >= p->want_done || p->done == p->n) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  return NULL;
}

/* __close and __gc: stops and joins the reader, frees what is left. */
static int prefetch_close(lua_State *L) {
  luamig_prefetch *p = lua_touserdata(L, 1);
  if (p->running) {
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    p->running = false;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
  }
  for (int i = 0; p->files && i < p->n; i++) free(p->files[i].data);
  free(p->files);
  free(p->names);
  p->files = NULL;
  p->names = NULL;
  if (p->dirfd >= 0) close(p->dirfd);
  p->dirfd = -1;
  return 0;
}

void luamig_toclose(lua_State *L, const char *mt, lua_CFunction close) {
  if (luaL_newmetatable(L, mt)) {
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_toclose(L, -1);
}

luamig_prefetch *luamig_prefetch_start(lua_State *L, const char *dir, int idx, int n,
                                       bool sums) {
  idx = lua_absindex(L, idx);
  luamig_prefetch *p = lua_newuserdatauv(L, sizeof *p, 1);
  memset(p, 0, sizeof *p);
  p->dirfd = -1;
  luamig_toclose(L, "luamig.prefetch", prefetch_close);
  lua_pushvalue(L, idx);
  lua_setiuservalue(L, -2, 1);       /* keeps the name strings alive */
  p->n = n;
  p->sums = sums;
  p->files = calloc((size_t)n + 1, sizeof *p->files);
  p->names = calloc((size_t)n + 1, sizeof *p->names);
  if (n == 0) return p;              /* all from the header cache: no thread */
  p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (p->files == NULL || p->names == NULL || p->dirfd < 0) return p;
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    p->names[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  if (pthread_mutex_init(&p->mu, NULL) != 0) return p;
  if (pthread_cond_init(&p->cv, NULL) != 0) { pthread_mutex_destroy(&p->mu); return p; }
  p->running = pthread_create(&p->thread, NULL, reader, p) == 0;
  if (!p->running) { pthread_cond_destroy(&p->cv); pthread_mutex_destroy(&p->mu); }
  return p;
}

const char *luamig_prefetch_take(lua_State *L, luamig_prefetch *p, int i, int buf, size_t *len,
                                 char sum[65], luamig_readstat *rs) {
  if (!p->running) return NULL;
  pthread_mutex_lock(&p->mu);
  if (p->done <= i) {
    p->want_done = i + BATCH < p->n ? i + BATCH : p->n;
    while (p->done <= i) pthread_cond_wait(&p->cv, &p->mu);
  }
  fetched f = p->files[i];
  p->files[i].data = NULL;
  p->used = i + 1;
  if (p->used >= p->want_used) pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (!f.ok) return NULL;
  /* never full, as luamig_read_file leaves it */
  if (lua_rawlen(L, buf) <= f.len) grow_filebuf(L, buf, f.len * 2 + 1);
  char *data = lua_touserdata(L, buf);
  memcpy(data, f.data, f.len);
  free(f.data);
  *len = f.len;
  memcpy(sum, f.sum, sizeof f.sum);
  *rs = f.rs;
  return data;
}

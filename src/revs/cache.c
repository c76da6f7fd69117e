/*
 * cache.c: the header cache of a versions directory, as git's index is of a
 * working tree.
 *
 * `.luamig-cache`, inside each versions directory, holds for each plain
 * revision file (one the loader's scanner reads without running it) its name,
 * size, mtime and ctime in nanoseconds, inode and device, its parsed header
 * (id, message, down_revision, depends_on, branch_labels, transactional) and
 * its SHA-256. A file whose stat still matches is not opened: its revision
 * comes from the cache. Anything else falls back to reading that file: no
 * cache, one from another luamig build, a checksum that does not match (a
 * torn or corrupt file), a file added, changed or gone. The cache is then
 * written again, atomically (a temp file renamed over it), so a reader never
 * sees half of one and two writers at once leave one whole cache. A directory
 * luamig may not write keeps working without one.
 *
 * Why ctime and the inode as well as the mtime: an edit that keeps the size and
 * puts the mtime back (touch -d) still moves the ctime, which no user call
 * sets, and an editor that writes a new file and renames it over the old one
 * changes the inode. A file changed in the clock tick it was read in could keep
 * all of them, so such a file is not cached (luamig_cache_fresh says which).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "luamig.h"

#ifndef LUAMIG_BUILD
#define LUAMIG_BUILD "dev"           /* the Makefile passes a digest of the sources */
#endif

/* A directory of its own, so writing a cache (a rename) leaves the versions
 * directory's stamp as it was: an unchanged stamp says no file came or went. */
#define CACHE_NAME LUAMIG_CACHE_DIR "/headers"
#define CACHE_MT "luamig.cache"
#define CACHE_MAX (256u << 20)       /* a larger file is not ours: ignored */

static const char magic[] = "luamig-cache 2 " LUAMIG_VERSION " " LUAMIG_BUILD "\n";

/* What a cached file is known by: its stat, as compared. */
typedef struct fstamp {
  long long size, msec, mnsec, csec, cnsec;
  unsigned long long ino, dev;
} fstamp;

typedef struct entry {
  const char *name;                  /* NUL-terminated in place, in the cache's text */
  fstamp st;
  char *header;                      /* the rest of its line: id, message, lists */
  bool tx;
  bool listed;                       /* only its name: a file that is run, not scanned */
  char sum[65];
} entry;

/* One file of the directory, in file order. */
typedef struct slot {
  const entry *hit;                  /* its cache entry when the stat matches */
  fstamp st;                         /* as stat said when it was read (store) */
  int rev;                           /* its revision in the graph; -1: not cached */
} slot;

struct luamig_cache {
  int dirfd;
  const char *dir;                   /* anchored by the user value */
  char *text;                        /* the old cache, parsed in place */
  size_t len;                        /* of its entries, checked */
  entry *entries; int nentries, nheaders;
  fstamp dirst;                      /* the directory's, as cached: its list of names holds */
  struct stat dir_now;               /* the directory's before it was listed */
  bool dir_fresh;                    /* and no change since can keep its stamp */
  slot *files; int n;
  int hits;
  bool dirty;                        /* a file was read that the cache may keep */
};

static int cache_gc(lua_State *L) {
  luamig_cache *c = lua_touserdata(L, 1);
  free(c->text);
  free(c->entries);
  free(c->files);
  c->text = NULL;
  c->entries = NULL;
  c->files = NULL;
  if (c->dirfd >= 0) close(c->dirfd);
  c->dirfd = -1;
  return 0;
}

static fstamp stamp_of(const struct stat *st) {
  return (fstamp){ (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
                   (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec,
                   (unsigned long long)st->st_ino, (unsigned long long)st->st_dev };
}

static bool same_stamp(const fstamp *a, const fstamp *b) {
  return a->size == b->size && a->msec == b->msec && a->mnsec == b->mnsec &&
         a->csec == b->csec && a->cnsec == b->cnsec && a->ino == b->ino && a->dev == b->dev;
}

bool luamig_cache_fresh(const struct stat *st) {
  /* the clock file times come from ticks along with: a ctime before its
   * current tick means any later change moves the ctime */
  struct timespec now;
#ifdef CLOCK_REALTIME_COARSE
  if (clock_gettime(CLOCK_REALTIME_COARSE, &now) != 0) return false;
#else
  if (clock_gettime(CLOCK_REALTIME, &now) != 0) return false;
  now.tv_sec -= 1;                   /* no tick clock: a second's margin */
#endif
  return st->st_ctim.tv_sec < now.tv_sec ||
         (st->st_ctim.tv_sec == now.tv_sec && st->st_ctim.tv_nsec < now.tv_nsec);
}


/* ---- reading the old cache ---- */

/* The parser's cursor: every read checks the bounds; a bad byte stops it. */
typedef struct cursor { char *p, *end; bool bad; } cursor;

static long long num(cursor *k) {
  char *p = k->p;
  bool neg = p < k->end && *p == '-';
  if (neg) p++;
  unsigned long long v = 0;
  char *digits = p;
  while (p < k->end && *p >= '0' && *p <= '9' && p - digits < 19)   /* fits in a long long */
    v = v * 10 + (unsigned long long)(*p++ - '0');
  if (p == digits || p >= k->end || (*p != ' ' && *p != '\n')) { k->bad = true; return 0; }
  k->p = p + 1;
  return (long long)(neg ? 0ull - v : v);   /* two's complement, as printed */
}

/* A string written as LEN:BYTES and a separator, which becomes its NUL (the
 * first pass), so a second pass over the same entry reads it as well. */
static char *str(cursor *k) {
  char *p = k->p;
  size_t len = 0;
  while (p < k->end && *p >= '0' && *p <= '9' && len < CACHE_MAX)
    len = len * 10 + (size_t)(*p++ - '0');
  if (p == k->p || p >= k->end || *p != ':' || (size_t)(k->end - p - 1) <= len) {
    k->bad = true;
    return NULL;
  }
  char *s = p + 1;
  if (memchr(s, '\0', len) != NULL || (s[len] != ' ' && s[len] != '\n' && s[len] != '\0')) {
    k->bad = true;
    return NULL;
  }
  s[len] = '\0';
  k->p = s + len + 1;
  return s;
}

/* The header part of an entry: id, [message], down_revision, depends_on,
 * branch_labels. Without r, only checked; with it, copied into r. */
static void header(lua_State *L, cursor *k, luamig_rev *r) {
  str(k);                            /* the id: the caller's */
  const char *message = num(k) ? str(k) : NULL;
  if (r && message && !k->bad) r->message = luamig_graph_strdup(L, message);
  char ***dst[] = { r ? &r->down : NULL, r ? &r->depends : NULL, r ? &r->labels : NULL };
  int *cnt[] = { r ? &r->ndown : NULL, r ? &r->ndepends : NULL, r ? &r->nlabels : NULL };
  for (int list = 0; list < 3 && !k->bad; list++) {
    long long count = num(k);
    if (count < 0 || count > 100000) k->bad = true;
    if (r && count > 0 && !k->bad) {
      *dst[list] = calloc((size_t)count, sizeof **dst[list]);
      if (*dst[list] == NULL) luaL_error(L, "out of memory");
    }
    for (int i = 0; i < count && !k->bad; i++) {
      const char *s = str(k);
      if (r && s) {
        (*dst[list])[i] = luamig_graph_strdup(L, s);
        *cnt[list] = i + 1;
      }
    }
  }
}

/* Parses the entries of c->text (c->len bytes, checksum verified); false
 * when it is not one of this build's caches. */
static bool parse(lua_State *L, luamig_cache *c) {
  size_t mlen = sizeof magic - 1;
  if (c->len < mlen || memcmp(c->text, magic, mlen) != 0) return false;
  cursor k = { c->text + mlen, c->text + c->len, false };
  long long n = num(&k), d[6];
  for (int j = 0; j < 6; j++) d[j] = num(&k);   /* the directory's stamp */
  c->dirst = (fstamp){ 0, d[0], d[1], d[2], d[3], (unsigned long long)d[4], (unsigned long long)d[5] };
  if (k.bad || n < 0 || n > (long long)(c->len / 16)) return false;
  c->entries = malloc((size_t)(n + 1) * sizeof *c->entries);
  if (c->entries == NULL) luaL_error(L, "out of memory");
  for (long long i = 0; i < n; i++) {
    entry *e = &c->entries[i];
    e->name = str(&k);
    long long v[8];
    for (int j = 0; j < 8; j++) v[j] = num(&k);
    e->st = (fstamp){ v[0], v[1], v[2], v[3], v[4], (unsigned long long)v[5],
                      (unsigned long long)v[6] };
    e->tx = v[7] == 1;
    e->listed = v[7] == 2;
    if (i > 0 && strcmp(c->entries[i - 1].name, e->name) >= 0) return false;  /* sorted, once */
    c->nentries = (int)i + 1;
    if (e->listed) continue;
    c->nheaders++;
    const char *sum = str(&k);
    if (k.bad || strlen(sum) != 64) return false;
    memcpy(e->sum, sum, 65);
    e->header = k.p;
    header(L, &k, NULL);
    if (k.bad || k.p >= k.end || *k.p++ != '\n') return false;   /* one line each */
  }
  return k.p == k.end;
}

/* ---- checked files: a body, then "end ", its SHA-256 and a newline ---- */

#define TRAILER (4 + 64 + 1)

/* Reads name in dirfd whole into a malloc'd buffer; returns the length of its
 * body when its trailer holds (0 otherwise, and for no file). */
static size_t read_checked(int dirfd, const char *name, char **text) {
  *text = NULL;
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) return 0;
  struct stat st;
  size_t len = 0;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      (unsigned long long)st.st_size < CACHE_MAX) {
    size_t cap = (size_t)st.st_size + 1;
    *text = malloc(cap);
    ssize_t got = 1;
    while (*text != NULL && len < cap && (got = read(fd, *text + len, cap - len)) > 0)
      len += (size_t)got;
    if (got < 0 || len == cap) len = 0;   /* unreadable, or grew while read: not trusted */
  }
  close(fd);
  if (*text == NULL || len <= TRAILER) return 0;
  char *end = *text + len - TRAILER, sum[65];
  luamig_sha256_hex(*text, (size_t)(end - *text), sum);
  if (memcmp(end, "end ", 4) != 0 || memcmp(end + 4, sum, 64) != 0 || end[68] != '\n') return 0;
  return (size_t)(end - *text);
}

/* Writes the body at the top (popped) as dir/name with its trailer (making
 * the caches' directory first). */
static void write_checked(lua_State *L, const char *dir, const char *name) {
  const char *sub = lua_pushfstring(L, "%s/" LUAMIG_CACHE_DIR, dir);
  if (mkdir(sub, 0755) != 0 && errno != EEXIST) { lua_pop(L, 2); return; }
  lua_pop(L, 1);
  size_t len;
  const char *text = lua_tolstring(L, -1, &len);
  char sum[65];
  luamig_sha256_hex(text, len, sum);
  lua_pushfstring(L, "end %s\n", sum);
  lua_concat(L, 2);
  text = lua_tolstring(L, -1, &len);
  luamig_cache_replace(L, dir, name, text, len);
  lua_pop(L, 1);
}

const char *luamig_build_id(void) {
  return "luamig " LUAMIG_VERSION " " LUAMIG_BUILD;
}

int luamig_cache_read(lua_State *L, const char *dir, const char *name) {
  int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char *text = NULL;
  size_t len = dirfd < 0 ? 0 : read_checked(dirfd, name, &text);
  if (dirfd >= 0) close(dirfd);
  if (len > 0) lua_pushlstring(L, text, len);   /* memory errors only: text may leak then */
  else lua_pushnil(L);
  free(text);
  return len > 0;
}

void luamig_cache_write(lua_State *L, const char *dir, const char *name, int idx) {
  lua_pushvalue(L, idx);
  write_checked(L, dir, name);
}

/* Reads dir's cache; leaves c without entries when there is none to trust. */
static void load(lua_State *L, luamig_cache *c) {
  c->len = read_checked(c->dirfd, CACHE_NAME, &c->text);
  if (c->len > 0 && !parse(L, c)) c->nentries = c->nheaders = 0;
}

/* ---- the directory against it ---- */

luamig_cache *luamig_cache_open(lua_State *L, const char *dir) {
  luamig_cache *c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  c->dirfd = -1;
  if (luaL_newmetatable(L, CACHE_MT)) {
    lua_pushcfunction(L, cache_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  c->dir = dir;
  c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c->dirfd < 0 || fstat(c->dirfd, &c->dir_now) != 0) return c;
  load(L, c);
  return c;
}

int luamig_cache_listed(lua_State *L, luamig_cache *c) {
  fstamp now = stamp_of(&c->dir_now);
  now.size = 0;                      /* a directory's size says nothing more */
  if (c->dirfd < 0 || c->nentries == 0 || !same_stamp(&now, &c->dirst)) return -1;
  lua_createtable(L, c->nentries, 0);
  for (int i = 0; i < c->nentries; i++) {
    lua_pushstring(L, c->entries[i].name);
    lua_rawseti(L, -2, i + 1);
  }
  return c->nentries;
}

void luamig_cache_match(lua_State *L, luamig_cache *c, int names, int n, luamig_conn *pump) {
  names = lua_absindex(L, names);
  c->dir_fresh = luamig_cache_fresh(&c->dir_now);   /* asked after the listing */
  lua_pushvalue(L, names);
  lua_setiuservalue(L, -2, 1);       /* (c at the top) keeps the names alive */
  c->files = calloc((size_t)n + 1, sizeof *c->files);
  if (c->files == NULL) luaL_error(L, "out of memory");
  c->n = n;
  for (int i = 0; i < n; i++) c->files[i].rev = -1;
  int at = 0;                        /* both lists are sorted: one walk */
  for (int i = 0; i < n && at < c->nentries; i++) {
    lua_rawgeti(L, names, i + 1);
    const char *name = lua_tostring(L, -1);
    lua_pop(L, 1);
    int cmp = 1;
    while (at < c->nentries && (cmp = strcmp(c->entries[at].name, name)) < 0) at++;
    if (cmp != 0 || c->entries[at].listed) continue;
    struct stat st;
    if (i % 32 == 31) luamig_conn_pump(pump);   /* the session starts meanwhile */
    if (fstatat(c->dirfd, name, &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
    fstamp now = stamp_of(&st);
    if (same_stamp(&now, &c->entries[at].st)) c->files[i].hit = &c->entries[at];
  }
}

bool luamig_cache_usable(const luamig_cache *c) {
  return c->dirfd >= 0;
}

bool luamig_cache_hit(const luamig_cache *c, int i) {
  return c->files[i].hit != NULL;
}

void luamig_cache_load(lua_State *L, luamig_cache *c, int i, luamig_graph *g, const char *path) {
  slot *f = &c->files[i];
  const entry *e = f->hit;
  cursor k = { e->header, c->text + c->len, false };
  const char *id = str(&k);
  k.p = e->header;
  if (id == NULL || luamig_rev_id_problem(id, strlen(id)))
    luaL_error(L, "%s: bad revision id in %s/" CACHE_NAME " (remove it)", path, c->dir);
  luamig_rev *r = luamig_graph_add(L, g, id, path);
  r->transactional = e->tx;
  memcpy(r->sum, e->sum, sizeof r->sum);
  header(L, &k, r);
  f->st = e->st;
  f->rev = g->n - 1;
  c->hits++;
}

void luamig_cache_note(luamig_cache *c, int i, int rev, const struct stat *st) {
  if (st == NULL || !S_ISREG(st->st_mode)) return;
  c->files[i].st = stamp_of(st);
  c->files[i].rev = rev;
  c->dirty = true;
}

/* ---- writing it again ---- */

static void add_str(luaL_Buffer *b, const char *s, char sep) {
  size_t len = strlen(s);
  char num[24];
  snprintf(num, sizeof num, "%zu:", len);
  luaL_addstring(b, num);
  luaL_addlstring(b, s, len);
  luaL_addchar(b, sep);
}

static void add_list(luaL_Buffer *b, char **list, int n) {
  char num[16];
  snprintf(num, sizeof num, "%d ", n);
  luaL_addstring(b, num);
  for (int i = 0; i < n; i++) add_str(b, list[i], ' ');
}

/* One entry: name, stamp, transactional, SHA-256, then the header. */
static void add_entry(lua_State *L, luaL_Buffer *b, const char *name, const slot *f,
                      const luamig_rev *r) {
  add_str(b, name, ' ');
  const fstamp *s = &f->st;
  lua_pushfstring(L, "%I %I %I %I %I %I %I %d ", (lua_Integer)s->size, (lua_Integer)s->msec,
                  (lua_Integer)s->mnsec, (lua_Integer)s->csec, (lua_Integer)s->cnsec,
                  (lua_Integer)s->ino, (lua_Integer)s->dev, r->transactional ? 1 : 0);
  luaL_addvalue(b);
  add_str(b, r->sum, ' ');
  add_str(b, r->id, ' ');
  if (r->message) {
    luaL_addstring(b, "1 ");
    add_str(b, r->message, ' ');
  } else {
    luaL_addstring(b, "0 ");
  }
  add_list(b, r->down, r->ndown);
  add_list(b, r->depends, r->ndepends);
  add_list(b, r->labels, r->nlabels);
  luaL_addchar(b, '\n');
}

void luamig_cache_replace(lua_State *L, const char *dir, const char *name, const char *data,
                          size_t len) {
  const char *final = lua_pushfstring(L, "%s/%s", dir, name);
  const char *tmp = lua_pushfstring(L, "%s.XXXXXX", final);
  char *path = (char *)lua_newuserdatauv(L, strlen(tmp) + 1, 0);
  memcpy(path, tmp, strlen(tmp) + 1);
  int fd = mkstemp(path);            /* in the directory itself, so rename is atomic */
  if (fd >= 0) {
    size_t off = 0;
    ssize_t w = 0;
    while (off < len && (w = write(fd, data + off, len - off)) > 0) off += (size_t)w;
    bool ok = off == len && fchmod(fd, 0644) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(path, final) != 0) unlink(path);
  }
  lua_pop(L, 3);                     /* a directory luamig may not write: no cache */
}

void luamig_cache_save(lua_State *L, luamig_cache *c, const luamig_graph *g, int names) {
  names = lua_absindex(L, names);
  /* the directory's stamp vouches for the list of names only if no change can hide */
  fstamp dirst = { 0 };
  if (c->dir_fresh) dirst = stamp_of(&c->dir_now);
  dirst.size = 0;
  bool same = !c->dirty && c->hits == c->nheaders && c->n == c->nentries &&
              same_stamp(&dirst, &c->dirst);
  if (c->dirfd < 0 || same || (c->n == 0 && c->text == NULL)) return;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, magic);
  lua_pushfstring(L, "%d %I %I %I %I %I %I\n", c->n, (lua_Integer)dirst.msec,
                  (lua_Integer)dirst.mnsec, (lua_Integer)dirst.csec, (lua_Integer)dirst.cnsec,
                  (lua_Integer)dirst.ino, (lua_Integer)dirst.dev);
  luaL_addvalue(&b);
  for (int i = 0; i < c->n; i++) {
    lua_rawgeti(L, names, i + 1);
    const char *name = lua_tostring(L, -1);
    lua_pop(L, 1);                   /* the names table keeps it */
    if (c->files[i].rev >= 0) {
      add_entry(L, &b, name, &c->files[i], &g->revs[c->files[i].rev]);
    } else {                         /* a file that is run when loaded: its name alone */
      add_str(&b, name, ' ');
      luaL_addstring(&b, "0 0 0 0 0 0 0 2\n");
    }
  }
  luaL_pushresult(&b);
  write_checked(L, c->dir, CACHE_NAME);
}

/*
 * loader.c: revision files -> graph entries.
 *
 * Each file runs in an environment of its own whose reads fall through to a
 * table of the standard libraries (sandbox.c: print to stderr, no os.exit, a
 * time budget), so globals a revision sets never reach another file or the
 * host program. `op` is put into the environment only while the revision runs.
 *
 * Building the graph must not mean compiling every file: with 10,000
 * revisions that was most of the time of `history` and `heads`. A file whose
 * top level holds only literal assignments (revision = "...", down_revision =
 * { "a", "b" }, message, branch_labels, depends_on, transactional = false, and
 * any other name = literal) and function definitions is read by a scanner that
 * follows Lua's tokens without running anything; its chunk is compiled and
 * run later, by luamig_load_body, only when a command is about to run it.
 * Running such a chunk has no effect but defining those names, so nothing is
 * lost by waiting. Any other top-level statement (a call, a computed value,
 * an escape the scanner does not decode, a file that does not scan) falls
 * back to running the file at once, as before, so the values and the error
 * messages are those of Lua itself.
 *
 * The scanner is loader_scan.c; reading the files (ahead, on a second thread)
 * is loader_read.c.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "revs.h"
#include "loader.h"

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Pushes a sorted array of the *.lua file names in dir (raises if unreadable). */
static int list_lua_files(lua_State *L, const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return luaL_error(L, "cannot read versions directory '%s'", dir);
  lua_newtable(L);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0)
      continue;
    lua_pushstring(L, e->d_name);    /* cannot leak d: memory errors are the only raise */
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  /* sort through a C array of pointers into the anchored strings */
  const char **names = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *names, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    names[i] = lua_tostring(L, -1);
    lua_pop(L, 1);                   /* still referenced by the array */
  }
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  lua_newtable(L);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
  return n;
}

/* Compiles path as luaL_loadfilex(L, path, "t") does, from its text when it
 * was read (NULL: let Lua open it): chunk name "@path", a UTF-8 BOM and a first
 * line starting with '#' skipped, that line's newline kept so line numbers hold. */
static void load_chunk(lua_State *L, const char *path, const char *text, size_t len) {
  int status;
  if (text == NULL) {
    status = luaL_loadfilex(L, path, "t");
  } else {
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { text += 3; len -= 3; }
    if (len > 0 && *text == '#')
      while (len > 0 && *text != '\n') { text++; len--; }
    const char *name = lua_pushfstring(L, "@%s", path);
    status = luaL_loadbufferx(L, text, len, name, "t");
    lua_remove(L, -2);
  }
  if (status != LUA_OK) {            /* "path:line: message", path whole */
    luamig_error_path(L, path);
    lua_error(L);
  }
}

/* Compiles (as load_chunk) and runs path in a fresh environment; pushes the
 * environment. Raises "path:line: message" on a syntax or runtime error. */
static int run_file(lua_State *L, const char *path, const char *text, size_t len) {
  load_chunk(L, path, text, len);
  lua_newtable(L);                   /* the file's environment */
  lua_newtable(L);
  luamig_push_sandbox(L);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  int env = lua_gettop(L);
  lua_pushvalue(L, env);
  lua_setupvalue(L, env - 1, 1);     /* _ENV of the main chunk */
  lua_pushvalue(L, env - 1);
  if (luamig_revision_pcall(L, 0, 0, path, "the file") != LUA_OK) lua_error(L);
  lua_remove(L, env - 1);
  return lua_gettop(L);
}

/* Reads one field of the table at idx as an optional string. */
static const char *opt_string_field(lua_State *L, int idx, const char *field,
                                    const char *path) {
  int t = lua_getfield(L, idx, field);
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_error(L, "%s: '%s' must be a string, not %s", path, field, lua_typename(L, t));
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);                     /* the table keeps the string alive */
  return s;
}

static void check_functions(lua_State *L, int env, const char *path, const char *id) {
  static const char *const fns[] = { "upgrade", "downgrade" };
  for (int i = 0; i < 2; i++) {
    lua_pushstring(L, fns[i]);
    if (lua_rawget(L, env) != LUA_TFUNCTION)
      luaL_error(L, "%s: revision %s has no %s() function", path, id, fns[i]);
    lua_pop(L, 1);
  }
}

/* Adds the revision whose header fields are in the table at hdr: a scanned
 * header, or (env true) the environment the file ran in, kept as envs[i + 1]. */
static void add_revision(lua_State *L, luamig_graph *g, int gidx, int hdr, const char *path,
                         bool env) {
  const char *id = opt_string_field(L, hdr, "revision", path);
  if (id == NULL || *id == '\0')
    luaL_error(L, "%s: no 'revision' id set (add: revision = \"<12 hex digits>\")", path);
  lua_getfield(L, hdr, "revision");
  size_t idlen = lua_rawlen(L, -1);
  const char *problem = luamig_rev_id_problem(id, idlen);
  if (problem)
    luaL_error(L, "%s: revision id '%s' %s", path, luamig_push_oneline(L, id, idlen), problem);
  lua_pop(L, 1);
  if (env) check_functions(L, hdr, path, id);
  const char *message = opt_string_field(L, hdr, "message", path);
  luamig_rev *r = luamig_graph_add(L, g, id, path);
  if (message) r->message = luamig_graph_strdup(L, message);
  static const char *const lists[] = { "down_revision", "depends_on", "branch_labels" };
  char ***dst[] = { &r->down, &r->depends, &r->labels };
  int *cnt[] = { &r->ndown, &r->ndepends, &r->nlabels };
  for (int i = 0; i < 3; i++) {     /* a scanned list is known good: no message to build */
    const char *what = env ? lua_pushfstring(L, "%s: %s", path, lists[i]) : lists[i];
    lua_getfield(L, hdr, lists[i]);
    luamig_graph_strings(L, -1, what, dst[i], cnt[i]);
    lua_pop(L, env ? 2 : 1);
  }
  int t = lua_getfield(L, hdr, "transactional");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "%s: 'transactional' must be a boolean", path);
  r->transactional = t == LUA_TNIL || lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (env) {
    lua_getiuservalue(L, gidx, 1);
    lua_pushvalue(L, hdr);
    lua_rawseti(L, -2, g->n);        /* envs[i + 1] for revs[i] */
    lua_pop(L, 1);
  }
}

/* Adds the revision in path: text (len bytes, with its SHA-256 in sum when
 * sums) when it was read ahead, else read here. Returns whether the file is
 * plain (its header scanned, not run): then the header cache may keep it. */
static bool load_file(lua_State *L, luamig_graph *g, int gidx, int buf, const char *path,
                      bool sums, const char *text, size_t len, char sum[65],
                      luamig_readstat *rs) {
  int top = lua_gettop(L);
  if (text == NULL) text = luamig_read_file(L, buf, path, &len, rs);
  if (sums && text && *sum == '\0') luamig_sha256_hex(text, len, sum);
  lua_createtable(L, 0, 4);
  bool plain = text && luamig_scan_header(L, text, len, lua_gettop(L));
  if (plain) {
    add_revision(L, g, gidx, lua_gettop(L), path, false);
  } else {
    lua_pop(L, 1);
    add_revision(L, g, gidx, run_file(L, path, text, len), path, true);
  }
  memcpy(g->revs[g->n - 1].sum, sum, sizeof g->revs[g->n - 1].sum);
  lua_settop(L, top);
  return plain;
}

/* Pushes nothing and returns false when envs[rev + 1] is loaded; else reads
 * revs[rev]'s file and returns true with the file buffer pushed. */
static bool read_unloaded(lua_State *L, luamig_graph *g, int gidx, int rev,
                          const char **text, size_t *len) {
  lua_getiuservalue(L, gidx, 1);
  int loaded = lua_rawgeti(L, -1, rev + 1);
  lua_pop(L, 2);
  if (loaded != LUA_TNIL) return false;
  luamig_readstat rs;
  *text = luamig_read_file(L, luamig_push_filebuf(L), g->revs[rev].path, len, &rs);
  return true;
}

void luamig_check_body(lua_State *L, luamig_graph *g, int gidx, int rev) {
  gidx = lua_absindex(L, gidx);
  const char *text;
  size_t len = 0;
  if (g->revs[rev].checked || !read_unloaded(L, g, gidx, rev, &text, &len)) return;
  /* a scanned file's top level only defines names: if it compiles, it runs */
  load_chunk(L, g->revs[rev].path, text, len);
  lua_pop(L, 2);
}

void luamig_push_body(lua_State *L, luamig_graph *g, int gidx, int rev) {
  gidx = lua_absindex(L, gidx);
  const char *text;
  size_t len = 0;
  if (!read_unloaded(L, g, gidx, rev, &text, &len)) {
    lua_getiuservalue(L, gidx, 1);
    lua_rawgeti(L, -1, rev + 1);
    lua_remove(L, -2);
    return;
  }
  luamig_rev *r = &g->revs[rev];
  int env = run_file(L, r->path, text, len);
  const char *id = opt_string_field(L, env, "revision", r->path);
  if (id == NULL || strcmp(id, r->id) != 0)
    luaL_error(L, "%s: the file changed while luamig ran (revision %s is now '%s')",
               r->path, r->id, id ? id : "nil");
  check_functions(L, env, r->path, r->id);
  r->checked = true;
  lua_remove(L, env - 1);            /* the file buffer */
}

void luamig_load_body(lua_State *L, luamig_graph *g, int gidx, int rev) {
  gidx = lua_absindex(L, gidx);
  luamig_push_body(L, g, gidx, rev);
  lua_getiuservalue(L, gidx, 1);
  lua_insert(L, -2);
  lua_rawseti(L, -2, rev + 1);       /* envs[rev + 1] = env (again, when it was there) */
  lua_pop(L, 1);
}

/* Adds the revisions of dir's files, in file order: those the header cache
 * vouches for from it, the others read (ahead, on the reader thread) and
 * scanned or run; then writes the cache again if it changed. */
static void load_dir(lua_State *L, luamig_graph *g, int gidx, int buf, const char *dir,
                     bool sums, luamig_conn *pump) {
  int top = lua_gettop(L);
  luamig_cache *cache = luamig_cache_open(L, dir);
  int n = luamig_cache_listed(L, cache);   /* the directory unchanged: its names as cached */
  if (n < 0) n = list_lua_files(L, dir);
  int names = lua_gettop(L);
  lua_pushvalue(L, names - 1);
  luamig_cache_match(L, cache, names, n, pump);
  lua_pop(L, 1);
  sums = sums || luamig_cache_usable(cache);   /* the cache keeps every file's sum */
  lua_createtable(L, n, 0);          /* the names to read */
  int nread = 0;
  for (int i = 0; i < n; i++) {
    if (luamig_cache_hit(cache, i)) continue;
    lua_rawgeti(L, names, i + 1);
    lua_rawseti(L, -2, ++nread);
  }
  luamig_prefetch *ahead = luamig_prefetch_start(L, dir, -1, nread, sums);
  int slot = lua_gettop(L);
  for (int i = 0, k = 0; i < n; i++) {
    lua_rawgeti(L, names, i + 1);
    const char *path = lua_pushfstring(L, "%s/%s", dir, lua_tostring(L, -1));
    if (luamig_cache_hit(cache, i)) {
      luamig_cache_load(L, cache, i, g, path);
    } else {
      size_t len = 0;
      char sum[65] = "";
      luamig_readstat rs = { .fresh = false };
      const char *text = luamig_prefetch_take(L, ahead, k++, buf, &len, sum, &rs);
      if (load_file(L, g, gidx, buf, path, sums, text, len, sum, &rs) && rs.fresh && *sum)
        luamig_cache_note(cache, i, g->n - 1, &rs.st);
    }
    if (i % 32 == 31) luamig_conn_pump(pump);
    lua_pop(L, 2);
  }
  lua_closeslot(L, slot);            /* joins the reader */
  luamig_cache_save(L, cache, g, names);
  lua_settop(L, top);
}

luamig_graph *luamig_load_revisions(lua_State *L, int cfg_idx, bool sums, luamig_conn *pump) {
  cfg_idx = lua_absindex(L, cfg_idx);
  lua_getfield(L, cfg_idx, "revision_timeout");   /* the budget of each call into a revision */
  double limit = 0;
  if (lua_isstring(L, -1) && !luamig_parse_duration(lua_tostring(L, -1), &limit))
    luaL_error(L, "revision_timeout: bad duration '%s'", lua_tostring(L, -1));
  luamig_budget_limit(L, limit, lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
  lua_pop(L, 1);
  luamig_graph *g = luamig_graph_new(L);
  int gidx = lua_gettop(L);
  int buf = luamig_push_filebuf(L);
  lua_getfield(L, cfg_idx, "versions");
  int ndirs = (int)luaL_len(L, -1);
  for (int d = 1; d <= ndirs; d++) {
    lua_geti(L, -1, d);
    load_dir(L, g, gidx, buf, lua_tostring(L, -1), sums, pump);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  luamig_graph_link(L, g);
  return g;
}

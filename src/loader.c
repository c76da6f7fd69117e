/*
 * loader.c: revision files -> graph entries.
 *
 * Each file runs in an environment of its own whose reads fall through to a
 * table of the standard libraries, so globals a revision sets never reach
 * another file or the host program. `op` is put into the environment only
 * while the revision runs.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"

static const char *const sandbox_names[] = {
  "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print",
  "rawequal", "rawget", "rawlen", "rawset", "require", "select", "setmetatable",
  "tonumber", "tostring", "type", "xpcall", "_VERSION",
  "coroutine", "math", "os", "string", "table", "utf8", "io", NULL
};

/* Pushes the shared, read-through base of every revision environment. */
static void push_sandbox(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, "luamig.sandbox") == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushglobaltable(L);
  for (int i = 0; sandbox_names[i]; i++) {
    lua_getfield(L, -1, sandbox_names[i]);
    lua_setfield(L, -3, sandbox_names[i]);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "luamig.sandbox");
}

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

/* Reads one field of the environment at env as an optional string. */
static const char *opt_string_field(lua_State *L, int env, const char *field,
                                    const char *path) {
  int t = lua_getfield(L, env, field);
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_error(L, "%s: '%s' must be a string, not %s", path, field, lua_typename(L, t));
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);                     /* the env keeps the string alive */
  return s;
}

static void load_file(lua_State *L, luamig_graph *g, int gidx, const char *path) {
  int top = lua_gettop(L);
  if (luaL_loadfilex(L, path, "t") != LUA_OK) lua_error(L);  /* "path:line: msg" */
  lua_newtable(L);                   /* the file's environment */
  lua_newtable(L);
  push_sandbox(L);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  int env = lua_gettop(L);
  lua_pushvalue(L, env);
  lua_setupvalue(L, env - 1, 1);     /* _ENV of the main chunk */
  lua_pushvalue(L, env - 1);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) lua_error(L);

  const char *id = opt_string_field(L, env, "revision", path);
  if (id == NULL || *id == '\0')
    luaL_error(L, "%s: no 'revision' id set (add: revision = \"<12 hex digits>\")", path);
  if (strlen(id) > LUAMIG_REV_MAX)
    luaL_error(L, "%s: revision id '%s' is longer than %d characters", path, id,
               LUAMIG_REV_MAX);
  static const char *const fns[] = { "upgrade", "downgrade" };
  for (int i = 0; i < 2; i++) {
    lua_pushstring(L, fns[i]);
    if (lua_rawget(L, env) != LUA_TFUNCTION)
      luaL_error(L, "%s: revision %s has no %s() function", path, id, fns[i]);
    lua_pop(L, 1);
  }
  const char *message = opt_string_field(L, env, "message", path);
  luamig_rev *r = luamig_graph_add(L, g, id, path);
  if (message) r->message = luamig_graph_strdup(L, message);
  static const char *const lists[] = { "down_revision", "depends_on", "branch_labels" };
  char ***dst[] = { &r->down, &r->depends, &r->labels };
  int *cnt[] = { &r->ndown, &r->ndepends, &r->nlabels };
  for (int i = 0; i < 3; i++) {
    const char *what = lua_pushfstring(L, "%s: %s", path, lists[i]);
    lua_getfield(L, env, lists[i]);
    luamig_graph_strings(L, -1, what, dst[i], cnt[i]);
    lua_pop(L, 2);
  }
  int t = lua_getfield(L, env, "transactional");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "%s: 'transactional' must be a boolean", path);
  r->transactional = t == LUA_TNIL || lua_toboolean(L, -1);
  lua_getiuservalue(L, gidx, 1);
  lua_pushvalue(L, env);
  lua_rawseti(L, -2, g->n);          /* envs[i + 1] for revs[i] */
  lua_settop(L, top);
}

luamig_graph *luamig_load_revisions(lua_State *L, int cfg_idx) {
  cfg_idx = lua_absindex(L, cfg_idx);
  luamig_graph *g = luamig_graph_new(L);
  int gidx = lua_gettop(L);
  lua_getfield(L, cfg_idx, "versions");
  int ndirs = (int)luaL_len(L, -1);
  for (int d = 1; d <= ndirs; d++) {
    lua_geti(L, -1, d);
    const char *dir = lua_tostring(L, -1);
    int n = list_lua_files(L, dir);
    for (int i = 1; i <= n; i++) {
      lua_geti(L, -1, i);
      const char *path = lua_pushfstring(L, "%s/%s", dir, lua_tostring(L, -1));
      load_file(L, g, gidx, path);
      lua_pop(L, 2);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  luamig_graph_link(L, g);
  return g;
}

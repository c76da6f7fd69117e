/*
 * scaffold.c: files luamig writes for people: `init` (a config, a versions
 * directory, the revision template) and `revision` (a new revision file from
 * the template, based on the current head).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "luamig.h"
#include "cmd.h"

static const char default_template[] =
  "-- ${message}\n"
  "--\n"
  "-- Revision ID: ${revision}\n"
  "-- Revises: ${revises}\n"
  "-- Create Date: ${create_date}\n"
  "revision = \"${revision}\"\n"
  "down_revision = ${down_revision}\n"
  "branch_labels = ${branch_labels}\n"
  "depends_on = ${depends_on}\n"
  "message = ${message_literal}\n"
  "\n"
  "function upgrade()\n"
  "${upgrades}\n"
  "end\n"
  "\n"
  "function downgrade()\n"
  "${downgrades}\n"
  "end\n";

static const char default_config[] =
  "-- luamig configuration: a Lua file that returns a table.\n"
  "return {\n"
  "  -- url = \"postgresql://user@localhost/mydb\",  -- default: $DATABASE_URL, then libpq's PG* defaults\n"
  "  versions = \"versions\",          -- directory (or list of directories) of revision files\n"
  "  -- version_table = \"luamig_version\",\n"
  "  -- version_table_schema = \"public\",\n"
  "}\n";

/* Writes text to path unless it exists; returns false when it existed. */
static bool write_new(lua_State *L, const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0 && errno == EEXIST) return false;
  if (fd < 0) luaL_error(L, "cannot create %s: %s", path, strerror(errno));
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w < 0) {
      int e = errno;
      close(fd);
      luaL_error(L, "cannot write %s: %s", path, strerror(e));
    }
    off += (size_t)w;
  }
  if (close(fd) != 0) luaL_error(L, "cannot write %s: %s", path, strerror(errno));
  return true;
}

/* Creates directory path unless it exists; returns false when it existed. */
static bool make_dir(lua_State *L, const char *path) {
  if (mkdir(path, 0755) == 0) return true;
  if (errno != EEXIST) luaL_error(L, "cannot create directory %s: %s", path, strerror(errno));
  return false;
}

/* Makes git ignore luamig's caches (.luamig-cache/ in versions/): creates path
 * or adds the pattern to it; false when it was there already. */
static bool ignore_caches(lua_State *L, const char *path) {
  static const char pattern[] = ".luamig-cache*";
  FILE *f = fopen(path, "r");
  bool ends_in_newline = true;
  if (f != NULL) {
    char line[256];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
      found = strncmp(line, pattern, sizeof pattern - 1) == 0;
      ends_in_newline = strchr(line, '\n') != NULL;
    }
    fclose(f);
    if (found) return false;
  }
  f = fopen(path, "a");
  if (f == NULL) luaL_error(L, "cannot write %s: %s", path, strerror(errno));
  fprintf(f, "%s# luamig's caches in each versions directory\n%s\n",
          ends_in_newline ? "" : "\n", pattern);
  if (fclose(f) != 0) luaL_error(L, "cannot write %s: %s", path, strerror(errno));
  return true;
}

/* init: returns the list of files and directories it created. A directory
 * that has a luamig.lua is a project already: refused, as Alembic's init
 * refuses a directory that is not empty. */
static int cmd_init(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "dir");
  const char *dir = luaL_optstring(L, -1, ".");
  make_dir(L, dir);
  lua_newtable(L);
  int out = lua_gettop(L), n = 0;
  const char *p = lua_pushfstring(L, "%s/luamig.lua", dir);
  if (!write_new(L, p, default_config))
    return luaL_error(L, "Directory %s already has a luamig.lua (%s): nothing created", dir, p);
  lua_rawseti(L, out, ++n);
  p = lua_pushfstring(L, "%s/versions", dir);
  if (make_dir(L, p)) lua_rawseti(L, out, ++n); else lua_pop(L, 1);
  p = lua_pushfstring(L, "%s/revision.lua.tmpl", dir);
  if (write_new(L, p, default_template)) lua_rawseti(L, out, ++n); else lua_pop(L, 1);
  p = lua_pushfstring(L, "%s/.gitignore", dir);
  if (ignore_caches(L, p)) lua_rawseti(L, out, ++n); else lua_pop(L, 1);
  return 1;
}

/* Pushes s as a Lua string literal. */
static void push_lua_literal(lua_State *L, const char *s) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') { luaL_addchar(&b, '\\'); luaL_addchar(&b, *s); }
    else if (*s == '\n') luaL_addstring(&b, "\\n");
    else if ((unsigned char)*s < 32) { char e[8]; snprintf(e, sizeof e, "\\%03d", *s); luaL_addstring(&b, e); }
    else luaL_addchar(&b, *s);
  }
  luaL_addchar(&b, '"');
  luaL_pushresult(&b);
}

/* Pushes msg for the header comment ("-- ${message}"): each of its lines a
 * comment line, other control characters (a CR would end the comment) as spaces. */
static void push_comment_lines(lua_State *L, const char *msg) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (; *msg; msg++) {
    unsigned char c = (unsigned char)*msg;
    if (c == '\n') luaL_addstring(&b, "\n-- ");
    else luaL_addchar(&b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
  }
  luaL_pushresult(&b);
}

/* Lowercase words joined by '_', at most 40 bytes: "Add email to users" -> add_email_to_users. */
static void push_slug(lua_State *L, const char *msg) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t n = 0;
  bool gap = false;
  for (; *msg && n < 40; msg++) {
    unsigned char ch = (unsigned char)*msg;
    if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
      if (gap && n > 0) { luaL_addchar(&b, '_'); n++; }
      luaL_addchar(&b, (char)ch); n++; gap = false;
    } else if (ch >= 'A' && ch <= 'Z') {
      if (gap && n > 0) { luaL_addchar(&b, '_'); n++; }
      luaL_addchar(&b, (char)(ch - 'A' + 'a')); n++; gap = false;
    } else {
      gap = true;
    }
  }
  luaL_pushresult(&b);
}

static void push_new_id(lua_State *L) {
  unsigned char raw[6];
  FILE *f = fopen("/dev/urandom", "rb");
  if (f == NULL || fread(raw, 1, sizeof raw, f) != sizeof raw) {
    if (f) fclose(f);
    luaL_error(L, "cannot read /dev/urandom for a revision id");
  }
  fclose(f);
  char hex[13];
  for (int i = 0; i < 6; i++) snprintf(hex + 2 * i, 3, "%02x", raw[i]);
  lua_pushstring(L, hex);
}

/* Replaces ${name} by the string at the top of the stack in the text at idx. */
static void substitute(lua_State *L, int idx, const char *name) {
  const char *pat = lua_pushfstring(L, "${%s}", name);
  luaL_gsub(L, lua_tostring(L, idx), pat, lua_tostring(L, -2));
  lua_replace(L, idx);
  lua_pop(L, 2);
}

/* __close and __gc of the versions-directory lock: unlocks by closing. */
static int dirlock_close(lua_State *L) {
  int *fd = lua_touserdata(L, 1);
  if (*fd >= 0) close(*fd);
  *fd = -1;
  return 0;
}

/* Pushes an exclusive lock on the first versions directory, held (a to-be-
 * closed slot) while a revision is planned and written: concurrent `revision`
 * runs then see each other's files, so an id gets one file and each new
 * revision goes on the head the one before wrote. */
static void lock_versions(lua_State *L, int cfg) {
  int *fd = lua_newuserdatauv(L, sizeof *fd, 0);
  *fd = -1;
  luamig_toclose(L, "luamig.dirlock", dirlock_close);
  lua_getfield(L, cfg, "versions");
  lua_geti(L, -1, 1);
  const char *dir = lua_tostring(L, -1);
  *fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (*fd >= 0)                      /* no directory: loading the revisions says so */
    while (flock(*fd, LOCK_EX) != 0)
      if (errno != EINTR) luaL_error(L, "cannot lock %s: %s", dir, strerror(errno));
  lua_pop(L, 2);
}

/* Checks the id at the top (--rev-id, or a new random one) for a new revision. */
static void check_new_id(lua_State *L, const luamig_graph *g) {
  size_t len;
  const char *id = lua_tolstring(L, -1, &len);
  if (id == NULL) luaL_error(L, "revision id must be a string");
  const char *problem = luamig_rev_id_problem(id, len);
  if (problem) luaL_error(L, "revision id '%s' %s", luamig_push_oneline(L, id, len), problem);
  int other = luamig_graph_find(g, id);
  if (other >= 0) luaL_error(L, "revision id '%s' already exists in %s", id, g->revs[other].path);
}

/* Pushes branch_labels as a Lua literal: { "label" } for opts.branch_label, else nil. */
static void push_labels(lua_State *L, const luamig_graph *g) {
  if (lua_getfield(L, 1, "branch_label") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushliteral(L, "nil");
    return;
  }
  const char *label = luaL_checkstring(L, -1);
  if (luamig_graph_find(g, label) >= 0)
    luaL_error(L, "branch label '%s' is a revision id", label);
  for (int k = 0; k < g->n; k++)
    for (int j = 0; j < g->revs[k].nlabels; j++)
      if (strcmp(g->revs[k].labels[j], label) == 0)
        luaL_error(L, "branch label '%s' is already used by revision %s (%s)",
                   label, g->revs[k].id, g->revs[k].path);
  lua_pushliteral(L, "{ ");
  push_lua_literal(L, label);
  lua_pushliteral(L, " }");
  lua_concat(L, 3);
  lua_remove(L, -2);
}

/* Pushes depends_on as a Lua literal: { "id", ... } of opts.depends_on (a
 * target or a list of them, each resolved to ids), else nil. */
static void push_depends(lua_State *L, const luamig_graph *g) {
  lua_newtable(L);                   /* the resolved ids */
  int ids = lua_gettop(L), n = 0;
  if (lua_getfield(L, 1, "depends_on") != LUA_TNIL) {
    if (lua_isstring(L, -1)) { lua_newtable(L); lua_insert(L, -2); lua_rawseti(L, -2, 1); }
    luaL_checktype(L, -1, LUA_TTABLE);
    int *one = lua_newuserdatauv(L, (size_t)(g->n + 1) * sizeof(int), 0);
    lua_Integer nd = (lua_Integer)lua_rawlen(L, -2);
    for (lua_Integer a = 1; a <= nd; a++) {
      lua_rawgeti(L, -2, a);
      int k = luamig_resolve(L, g, NULL, 0, luaL_checkstring(L, -1), one);
      lua_pop(L, 1);
      for (int j = 0; j < k; j++) {
        lua_pushstring(L, g->revs[one[j]].id);
        lua_rawseti(L, ids, ++n);
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  luaL_Buffer b;                     /* one id on the stack at a time: any number fits */
  luaL_buffinit(L, &b);
  luaL_addstring(&b, n ? "{ " : "nil");
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addstring(&b, ", ");
    lua_rawgeti(L, ids, i);
    push_lua_literal(L, lua_tostring(L, -1));
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  if (n) luaL_addstring(&b, " }");
  luaL_pushresult(&b);
  lua_remove(L, ids);
}

/* The heads the array at merge names (revisions, or "heads"), each once,
 * into parents; returns how many. Each must be a head, and a merge needs two. */
static int merge_parents(lua_State *L, const luamig_graph *g, int merge, int *parents) {
  int *one = lua_newuserdatauv(L, (size_t)(g->n + 1) * sizeof(int), 0);
  int nparents = 0, nargs = (int)luaL_len(L, merge);
  for (int a = 1; a <= nargs; a++) {
    lua_geti(L, merge, a);
    const char *t = luaL_checkstring(L, -1);
    int k = luamig_resolve(L, g, NULL, 0, t, one);
    lua_pop(L, 1);
    for (int j = 0; j < k; j++) {
      if (g->revs[one[j]].nchildren > 0)
        luaL_error(L, "revision %s is not a head: merge joins heads (see 'luamig heads')",
                   g->revs[one[j]].id);
      bool dup = false;
      for (int x = 0; x < nparents; x++) dup = dup || parents[x] == one[j];
      if (!dup) parents[nparents++] = one[j];
    }
  }
  if (nparents < 2)
    luaL_error(L, "nothing to merge: a merge needs at least two heads, %s %d",
               nparents == 1 ? "there is" : "there are", nparents);
  lua_pop(L, 1);
  return nparents;
}

/* The new revision's parents (opts at 1): the heads opts.merge names, else
 * opts.head (a head, unless opts.splice), else the single head; into parents
 * (room for g->n + 1); returns how many. */
static int resolve_parents(lua_State *L, const luamig_graph *g, int *parents) {
  int top = lua_gettop(L), n = 0;
  if (lua_getfield(L, 1, "merge") == LUA_TTABLE) {
    n = merge_parents(L, g, top + 1, parents);
  } else if (lua_getfield(L, 1, "head"), lua_isstring(L, -1)) {
    n = luamig_resolve(L, g, NULL, 0, lua_tostring(L, -1), parents);
    bool splice = (lua_getfield(L, 1, "splice"), lua_toboolean(L, -1));
    for (int j = 0; j < n && !splice; j++)
      if (g->revs[parents[j]].nchildren > 0)
        luaL_error(L, "Revision %s is not a head revision; please specify --splice "
                   "to create a new branch from this revision", g->revs[parents[j]].id);
  } else {
    if (g->nheads > 1)
      luaL_error(L, "Multiple heads are present; please specify the head revision on which "
                 "the new revision should be based (--head), or run 'luamig merge heads' first");
    n = g->nheads;
    if (n) parents[0] = g->heads[0];
  }
  lua_settop(L, top);
  return n;
}

/* Pushes the template: revision.lua.tmpl beside the config (at cfg), else the built-in one. */
static void push_template(lua_State *L, int cfg) {
  lua_getfield(L, cfg, "dir");
  const char *tpath = lua_pushfstring(L, "%s/revision.lua.tmpl", lua_tostring(L, -1));
  FILE *f = fopen(tpath, "rb");
  if (f) {                           /* only an out-of-memory error can raise here */
    luaL_Buffer tb;
    luaL_buffinit(L, &tb);
    size_t got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) luaL_addlstring(&tb, chunk, got);
    fclose(f);
    luaL_pushresult(&tb);
  } else {
    lua_pushstring(L, default_template);
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* Pushes down_revision as a Lua literal: nil, "id", or { "a", "b" } for a merge. */
static void push_down_revision(lua_State *L, const luamig_graph *g, const int *parents, int n) {
  if (n == 0) {
    lua_pushliteral(L, "nil");
    return;
  }
  if (n == 1) {
    lua_pushfstring(L, "\"%s\"", g->revs[parents[0]].id);
    return;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "{ ");
  for (int i = 0; i < n; i++) {
    lua_pushfstring(L, "%s\"%s\"", i ? ", " : "", g->revs[parents[i]].id);
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, " }");
  luaL_pushresult(&b);
}

/* Fills ${upgrades} and ${downgrades} in the text at idx: autogenerate's op
 * calls (opts.upgrade_body, opts.downgrade_body), or empty for a hand-written revision. */
static void fill_bodies(lua_State *L, int text) {
  static const char *const bodies[][2] = { { "upgrade_body", "upgrades" },
                                           { "downgrade_body", "downgrades" } };
  for (int i = 0; i < 2; i++) {
    lua_getfield(L, 1, bodies[i][0]);
    const char *body = luaL_optstring(L, -1, "");
    lua_pushfstring(L, "${%s}", bodies[i][1]);
    if (*body && strstr(lua_tostring(L, text), lua_tostring(L, -1)) == NULL)
      luaL_error(L, "the revision template has no ${%s}: add it inside %s() "
                 "(see 'luamig init')", bodies[i][1], i ? "downgrade" : "upgrade");
    lua_pop(L, 2);
    lua_pushstring(L, body);         /* still referenced by opts */
    substitute(L, text, bodies[i][1]);
  }
}

/* Pushes the new revision's file: the template (config at cfg) with each
 * ${...} filled; returns its stack index. */
static int push_revision_text(lua_State *L, int cfg, const luamig_graph *g, int ididx,
                              const char *msg, const int *parents, int nparents) {
  push_labels(L, g);
  int labels_idx = lua_gettop(L);
  push_depends(L, g);
  int deps_idx = lua_gettop(L);
  push_template(L, cfg);
  int text = lua_gettop(L);
  lua_pushvalue(L, ididx);
  substitute(L, text, "revision");
  luamig_push_ids(L, g, parents, nparents);
  substitute(L, text, "revises");
  push_down_revision(L, g, parents, nparents);
  substitute(L, text, "down_revision");
  lua_pushvalue(L, labels_idx);
  substitute(L, text, "branch_labels");
  lua_pushvalue(L, deps_idx);
  substitute(L, text, "depends_on");
  push_comment_lines(L, msg);
  substitute(L, text, "message");
  push_lua_literal(L, msg);
  substitute(L, text, "message_literal");
  char date[32];
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
  lua_pushstring(L, date);
  substitute(L, text, "create_date");
  fill_bodies(L, text);
  lua_replace(L, labels_idx);
  lua_settop(L, labels_idx);
  return labels_idx;
}

/* The directory to write to: the config's (at cfg) first versions directory,
 * or the one opts.version_path names (--version-path). Anchored by the config. */
static const char *version_dir(lua_State *L, int cfg) {
  lua_getfield(L, cfg, "versions");
  lua_geti(L, -1, 1);
  const char *dir = lua_tostring(L, -1);
  if (lua_getfield(L, 1, "version_path") != LUA_TNIL) {
    const char *want = luaL_checkstring(L, -1);
    const char *found = NULL;
    int nd = (int)luaL_len(L, -3);
    for (int i = 1; i <= nd && !found; i++) {
      lua_geti(L, -3, i);
      const char *d = lua_tostring(L, -1);
      size_t wl = strlen(want);
      while (wl > 1 && want[wl - 1] == '/') wl--;
      const char *tail = d + strlen(d) >= d + wl ? d + strlen(d) - wl : d;
      if (strcmp(d, want) == 0 || (strncmp(tail, want, wl) == 0 && (tail == d || tail[-1] == '/')))
        found = d;
      lua_pop(L, 1);                 /* the versions list keeps it */
    }
    if (!found)
      luaL_error(L, "version path '%s' is not one of the versions directories in "
                 "the config", want);
    dir = found;
  }
  lua_pop(L, 3);
  return dir;
}

/* Writes the text at idx as <dir>/<id>_<slug of msg>.lua (<id>.lua without a
 * message), never over a file; pushes the path. */
static const char *write_revision(lua_State *L, int cfg, const char *id, const char *msg,
                                  int text) {
  const char *dir = version_dir(L, cfg);
  push_slug(L, msg);
  const char *slug = lua_tostring(L, -1);
  const char *path = *slug ? lua_pushfstring(L, "%s/%s_%s.lua", dir, id, slug)
                           : lua_pushfstring(L, "%s/%s.lua", dir, id);
  if (!write_new(L, path, lua_tostring(L, text))) luaL_error(L, "%s already exists", path);
  lua_remove(L, -2);
  return path;
}

/* revision: opts.message, opts.rev_id, opts.head (default: the single head),
 * opts.merge (merge's heads). Returns { path, revision }. */
static int cmd_revision(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luamig_config_load(L, 1);
  int cfg = lua_gettop(L);
  lock_versions(L, cfg);
  luamig_graph *g = luamig_load_revisions(L, cfg, false, NULL);
  /* no message is an empty one, as with Alembic: the file is then <id>.lua */
  if (lua_getfield(L, 1, "message") == LUA_TNIL) { lua_pop(L, 1); lua_pushliteral(L, ""); }
  if (!lua_isstring(L, -1)) return luaL_error(L, "revision: message must be a string");
  const char *msg = lua_tostring(L, -1);

  if (lua_getfield(L, 1, "rev_id") == LUA_TNIL) { lua_pop(L, 1); push_new_id(L); }
  check_new_id(L, g);
  const char *id = lua_tostring(L, -1);
  int ididx = lua_gettop(L);

  int *parents = lua_newuserdatauv(L, (size_t)(g->n + 1) * sizeof(int), 0);
  int nparents = resolve_parents(L, g, parents);
  int text = push_revision_text(L, cfg, g, ididx, msg, parents, nparents);
  write_revision(L, cfg, id, msg, text);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "path");
  lua_pushvalue(L, ididx);
  lua_setfield(L, -2, "revision");
  return 1;
}

/* merge: a revision whose down_revision lists the heads named in
 * opts.revisions (default: all heads). */
static int cmd_merge(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getfield(L, 1, "revisions") == LUA_TNIL || luaL_len(L, -1) == 0) {
    lua_newtable(L);
    lua_pushliteral(L, "heads");
    lua_rawseti(L, -2, 1);
  } else {
    lua_pushvalue(L, -1);
  }
  lua_setfield(L, 1, "merge");
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "message") == LUA_TNIL) {
    lua_pushliteral(L, "merge heads");
    lua_setfield(L, 1, "message");
  }
  lua_pop(L, 1);
  return cmd_revision(L);
}

static const luaL_Reg scaffold_funcs[] = {
  { "init", cmd_init },
  { "merge", cmd_merge },
  { "revision", cmd_revision },
  { NULL, NULL }
};

int luamig_open_scaffold(lua_State *L) {
  luaL_newlib(L, scaffold_funcs);
  return 1;
}

/*
 * fleet.c: luamig upgrade (downgrade, current, status, verify) on many
 * databases or tenant schemas at once. Each target is a run of its own, with
 * its own connection, advisory lock, transactions and audit log: the luamig
 * command runs itself once per target (fleet_pool.c). This file decides
 * whether a command is a fleet run, and which targets it has:
 *   --targets FILE       one URL a line (# comments)
 *   --all-databases      every database of the server that allows connections,
 *                        templates excluded, matching --match (SQL LIKE)
 *   --all-schemas        every schema of the database matching --match, each
 *                        with search_path and the version table set to it
 *   targets = {...} or a function, schemas = {...} or a function, in luamig.lua
 * The config's targets and schemas count when no --url names one database.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "cli.h"
#include "fleet.h"

/* ---- connection strings ---- */

static void free_conninfo(void *p) { PQconninfoFree(p); }

/* Pushes the options setting that puts schema first on the search path: old
 * (the URL's own options, or NULL) and "-c search_path=<schema quoted>", with
 * spaces and backslashes escaped as libpq splits options. */
static const char *push_options(lua_State *L, const char *old, const char *schema) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_quote_ident(L, &b, schema);
  luaL_pushresult(&b);
  const char *quoted = lua_tostring(L, -1);
  luaL_buffinit(L, &b);
  if (old && *old) { luaL_addstring(&b, old); luaL_addchar(&b, ' '); }
  luaL_addstring(&b, "-c search_path=");
  for (const char *p = quoted; *p; p++) {
    if (*p == ' ' || *p == '\\') luaL_addchar(&b, '\\');
    luaL_addchar(&b, *p);
  }
  luaL_pushresult(&b);
  lua_remove(L, -2);                 /* quoted */
  return lua_tostring(L, -1);
}

/* Pushes base (a URL or key=value settings; NULL: libpq's defaults) as
 * key=value settings, with dbname replaced (when not NULL) and schema first on
 * the search path (when not NULL). libpq's own parser reads base, so every
 * setting it has (hosts, SSL, timeouts, the password) carries over. */
static const char *push_conninfo(lua_State *L, const char *base, const char *dbname,
                                 const char *schema) {
  int top = lua_gettop(L);
  void **slot = luamig_push_owned(L, free_conninfo);
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(base ? base : "", &err);
  *slot = opts;
  if (opts == NULL) {
    luamig_push_redacted(L, base);
    lua_pushstring(L, err ? err : "out of memory");
    PQfreemem(err);
    luaL_error(L, "cannot read the database URL %s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
  }
  const char *old_options = NULL;
  for (PQconninfoOption *o = opts; o->keyword; o++)
    if (strcmp(o->keyword, "options") == 0) old_options = o->val;
  const char *options = schema ? push_options(L, old_options, schema) : NULL;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    if (o->val == NULL || (dbname && strcmp(o->keyword, "dbname") == 0) ||
        (options && strcmp(o->keyword, "options") == 0))
      continue;
    luamig_add_setting(&b, o->keyword, o->val);
  }
  if (dbname) luamig_add_setting(&b, "dbname", dbname);
  if (options) luamig_add_setting(&b, "options", options);
  luaL_pushresult(&b);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return lua_tostring(L, -1);
}

/* ---- the targets ---- */

/* Appends { label, url, schema } to the array at list. */
static void add_target(lua_State *L, int list, const char *label, const char *url,
                       const char *schema) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, label);
  lua_setfield(L, -2, "label");
  lua_pushstring(L, url);
  lua_setfield(L, -2, "url");
  lua_pushstring(L, schema);
  lua_setfield(L, -2, "schema");
  lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
}

/* A URL target: its label is the URL, password masked. */
static void add_url(lua_State *L, int list, const char *url, const char *name) {
  if (name == NULL) luamig_push_redacted(L, url);
  add_target(L, list, name ? name : lua_tostring(L, -1), url, NULL);
  if (name == NULL) lua_pop(L, 1);
}

/* --targets FILE: one URL a line; blank lines and # comments skipped. */
static void targets_from_file(lua_State *L, int list, const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) luaL_error(L, "--targets %s: %s", path, strerror(errno));
  char line[8192];
  int lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    size_t n = strlen(line);
    if (n == sizeof line - 1 && line[n - 1] != '\n') {
      fclose(f);
      luaL_error(L, "%s:%d: line too long", path, lineno);
    }
    char *s = line + strspn(line, " \t");
    n = strlen(s);
    while (n > 0 && strchr(" \t\r\n", s[n - 1])) s[--n] = '\0';
    if (n == 0 || s[0] == '#') continue;
    lua_pushstring(L, s);            /* memory errors are the only raise here */
    add_url(L, list, lua_tostring(L, -1), NULL);
    lua_pop(L, 1);
  }
  fclose(f);
}

/* db.query(sql [, params]) for a config function: on the config's database,
 * connected at the first call (upvalue 1: the URL, 2: the connection). */
static int lazy_query(lua_State *L) {
  const char *sql = luaL_checkstring(L, 1);
  if (lua_isnil(L, lua_upvalueindex(2))) {
    luamig_conn_connect(L, lua_tostring(L, lua_upvalueindex(1)));
    lua_replace(L, lua_upvalueindex(2));
  }
  luamig_conn *c = luamig_conn_check(L, lua_upvalueindex(2));
  int n = lua_istable(L, 2) ? (int)luaL_len(L, 2) : 0;
  luaL_checkstack(L, n + LUA_MINSTACK, "too many parameters");
  for (int i = 1; i <= n; i++) lua_geti(L, 2, i);
  const char **params = luamig_params(L, 3, n, "db.query");
  luamig_query(L, c, sql, n, params);
  return 1;
}

/* The config's targets or schemas (field k): an array, or a function(db)
 * returning one; pushes the array. */
static void push_config_list(lua_State *L, int cfg, const char *k, const char *base) {
  int t = lua_getfield(L, cfg, k);
  if (t == LUA_TFUNCTION) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, base);
    lua_pushnil(L);
    lua_pushcclosure(L, lazy_query, 2);
    lua_setfield(L, -2, "query");
    lua_call(L, 1, 1);
    t = lua_type(L, -1);
  }
  if (t != LUA_TTABLE)
    luaL_error(L, "config: '%s' must be a list (or a function returning one), not %s", k,
               lua_typename(L, t));
}

static void targets_from_config(lua_State *L, int cfg, int list, const char *base) {
  if (lua_getfield(L, cfg, "targets") != LUA_TNIL) {
    push_config_list(L, cfg, "targets", base);
    for (lua_Integer i = 1; i <= (lua_Integer)luaL_len(L, -1); i++) {
      int t = lua_geti(L, -1, i);
      if (t == LUA_TTABLE) {
        lua_getfield(L, -1, "url");
        lua_getfield(L, -2, "name");
      } else {
        lua_pushvalue(L, -1);
        lua_pushnil(L);
      }
      if (lua_type(L, -2) != LUA_TSTRING || (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING))
        luaL_error(L, "config: targets[%d] must be a URL or { url = URL, name = NAME }", (int)i);
      add_url(L, list, lua_tostring(L, -2), lua_tostring(L, -1));
      lua_pop(L, 3);
    }
    lua_pop(L, 1);
  }
  if (lua_getfield(L, cfg, "schemas") != LUA_TNIL) {
    push_config_list(L, cfg, "schemas", base);
    for (lua_Integer i = 1; i <= (lua_Integer)luaL_len(L, -1); i++) {
      if (lua_geti(L, -1, i) != LUA_TSTRING)
        luaL_error(L, "config: schemas[%d] must be a schema name", (int)i);
      const char *schema = lua_tostring(L, -1);
      add_target(L, list, schema, push_conninfo(L, base, NULL, schema), schema);
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* --all-databases or --all-schemas: asks the server at base for the names. */
static void targets_from_server(lua_State *L, int list, const char *base, bool schemas,
                                const char *match) {
  luamig_conn_connect(L, base);
  luamig_conn *c = luamig_conn_check(L, -1);
  const char *sql = schemas
    ? "SELECT nspname AS name FROM pg_catalog.pg_namespace WHERE nspname LIKE $1 "
      "AND nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1"
    : "SELECT datname AS name FROM pg_catalog.pg_database WHERE datname LIKE $1 "
      "AND NOT datistemplate AND datallowconn ORDER BY 1";
  int n = luamig_query_column(L, c, sql, 1, &match);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    const char *name = lua_tostring(L, -1);
    add_target(L, list, name, push_conninfo(L, base, schemas ? NULL : name, schemas ? name : NULL),
               schemas ? name : NULL);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  luamig_conn_close(c);
  lua_pop(L, 1);
}

/* Pushes the targets the options and the config (slot cfg) name. */
static void push_targets(lua_State *L, int cfg) {
  lua_newtable(L);
  int list = lua_gettop(L);
  /* the server itself: migrations go through direct_url when the config has one */
  if (lua_getfield(L, cfg, "direct_url") != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_getfield(L, cfg, "url");
  }
  const char *base = lua_tostring(L, -1);
  const char *file = luamig_cli_field(L, 1, "targets_file");
  const char *match = luamig_cli_field(L, 1, "match");
  bool dbs = luamig_cli_flag(L, "all_databases"), schemas = luamig_cli_flag(L, "all_schemas");
  if ((file != NULL) + dbs + schemas > 1)
    luaL_error(L, "--targets, --all-databases and --all-schemas each name the targets: use one");
  if (match && !dbs && !schemas)
    luaL_error(L, "--match goes with --all-databases or --all-schemas");
  if (file) targets_from_file(L, list, file);
  else if (dbs || schemas) targets_from_server(L, list, base, schemas, match ? match : "%");
  else targets_from_config(L, cfg, list, base);
  lua_pop(L, 1);
  if (lua_rawlen(L, list) > 0) return;
  if (file) luaL_error(L, "--targets %s: no URL in the file", file);
  if (!dbs && !schemas) luaL_error(L, "config: targets and schemas name no target");
  luaL_error(L, "%s%s%s: no %s matches", dbs ? "--all-databases" : "--all-schemas",
             match ? " --match " : "", match ? match : "", dbs ? "database" : "schema");
}

/* ---- the entry ---- */

/* The fleet's own options, which its children do not get (nor the URLs). */
static const char *const flags[] = { "targets_file", "all_databases", "all_schemas", "match",
                                     "jobs", "continue_on_error", NULL };

/* Whether any fleet option was given. */
static bool fleet_option(lua_State *L) {
  bool any = false;
  for (int i = 0; flags[i] && !any; i++) any = luamig_cli_flag(L, flags[i]);
  return any;
}

/* --jobs N: 1 to 64, default 4. */
static int jobs(lua_State *L) {
  const char *s = luamig_cli_field(L, 1, "jobs");
  if (s == NULL) return 4;
  char *end;
  long n = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || n < 1 || n > 64)
    luaL_error(L, "--jobs must be a number of targets at once from 1 to 64, not '%s'", s);
  return (int)n;
}

/* Pushes the options the children get, as JSON: the command's, less the
 * fleet's own, the URLs and what the parent alone uses. */
static const char *push_child_opts(lua_State *L) {
  static const char *const parent_only[] = { "url", "direct_url", "json", "log", "quiet",
                                             "fleet_child", NULL };
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    bool drop = lua_type(L, -2) != LUA_TSTRING;
    for (int i = 0; !drop && flags[i]; i++) drop = strcmp(lua_tostring(L, -2), flags[i]) == 0;
    for (int i = 0; !drop && parent_only[i]; i++)
      drop = strcmp(lua_tostring(L, -2), parent_only[i]) == 0;
    if (drop) { lua_pop(L, 1); continue; }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, -4);
  }
  luamig_push_json(L, -1);
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

int luamig_fleet_run(lua_State *L, const luamig_cli_command *c) {
  if (luamig_cli_flag(L, "fleet_child")) return luamig_fleet_child(L, c->core);
  bool opt = fleet_option(L);
  if (!opt && luamig_cli_field(L, 1, "url")) return luamig_cli_run(L, c);   /* that database alone */
  luamig_config_load(L, 1);
  int cfg = lua_gettop(L);
  lua_getfield(L, cfg, "targets");
  lua_getfield(L, cfg, "schemas");
  bool configured = !lua_isnil(L, -1) || !lua_isnil(L, -2);
  lua_pop(L, 2);
  if (!opt && !configured) {
    lua_pop(L, 1);
    return luamig_cli_run(L, c);
  }
  if (luamig_cli_flag(L, "sql"))
    luaL_error(L, "--sql writes one script, for one database: run it on each, or drop --sql "
               "to migrate the targets");
  if (luamig_cli_flag(L, "backup"))
    luaL_error(L, "--backup writes one file, for one database: back the targets up before "
               "the fleet run");
  int n = jobs(L);
  push_child_opts(L);
  int opts = lua_gettop(L);
  push_targets(L, cfg);
  luamig_fleet_pool(L, c->name, lua_gettop(L), opts, n, luamig_cli_flag(L, "continue_on_error"));
  return luamig_fleet_report(L, c->name, lua_gettop(L));
}

/*
 * config.c: luamig.lua, .env and the options of one command, merged into one
 * table. Precedence: explicit options (--url, API arguments) > luamig.lua >
 * the environment (DATABASE_URL) > libpq's own defaults and PG* variables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "luamig.h"
#include "revs.h"

/* Directory part of path ("." when none), pushed. */
static const char *push_dirname(lua_State *L, const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) return lua_pushliteral(L, ".");
  if (slash == path) return lua_pushliteral(L, "/");
  return lua_pushlstring(L, path, (size_t)(slash - path));
}

/* Joins dir and a relative path (absolute paths and "." dirs stay as given). */
static const char *push_joined(lua_State *L, const char *dir, const char *p) {
  if (p[0] == '/' || strcmp(dir, ".") == 0) return lua_pushstring(L, p);
  return lua_pushfstring(L, "%s/%s", dir, p);
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
    s[--n] = '\0';
  return s;
}

/* KEY=value lines (optionally "export KEY=value", values optionally quoted),
 * pushed as a table; the first line of a key wins. Returns the number of keys,
 * or -1 (with an empty table) when the file cannot be opened. */
int luamig_dotenv_parse(lua_State *L, const char *path) {
  lua_newtable(L);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  char line[4096];
  int lineno = 0, n = 0;
  while (fgets(line, sizeof line, f)) {   /* memory errors are the only raise below */
    lineno++;
    char *s = trim(line);
    if (*s == '\0' || *s == '#') continue;
    if (strncmp(s, "export ", 7) == 0) s = trim(s + 7);
    char *eq = strchr(s, '=');
    if (eq == NULL || eq == s) {
      fclose(f);
      luaL_error(L, "%s:%d: expected KEY=value", path, lineno);
    }
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    size_t len = strlen(val);
    if (len >= 2 && (val[0] == '"' || val[0] == '\'') && val[len - 1] == val[0]) {
      val[len - 1] = '\0';
      val++;
    }
    if (lua_getfield(L, -1, key) == LUA_TNIL) {
      lua_pushstring(L, val);
      lua_setfield(L, -3, key);
      n++;
    }
    lua_pop(L, 1);
  }
  fclose(f);
  return n;
}

/* Variables already in the environment win, as with every dotenv. */
static void load_dotenv(lua_State *L, const char *path) {
  luamig_dotenv_parse(L, path);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    const char *key = lua_tostring(L, -2);
    if (getenv(key) == NULL) setenv(key, lua_tostring(L, -1), 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Runs the config file in an environment that can read the standard
 * libraries; pushes the table it returns. */
static void run_config(lua_State *L, const char *path) {
  if (luaL_loadfilex(L, path, "t") != LUA_OK) {
    luamig_error_path(L, path);
    lua_error(L);
  }
  lua_newtable(L);
  lua_newtable(L);
  lua_pushglobaltable(L);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_setupvalue(L, -2, 1);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    luamig_error_path(L, path);
    lua_error(L);
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "%s: must return a table (return { url = ..., versions = \"versions\" })", path);
}

bool luamig_parse_duration(const char *s, double *ms) {
  static const struct { const char *unit; double ms; } units[] = {
    { "us", 0.001 }, { "ms", 1 }, { "s", 1000 }, { "min", 60000 }, { "h", 3600000 },
    { "d", 86400000 }, { "", 1 },
  };
  while (*s == ' ') s++;
  if (!((*s >= '0' && *s <= '9') || *s == '.')) return false;  /* no sign, no "inf" */
  char *end;
  double v = strtod(s, &end);
  while (*end == ' ') end++;
  size_t n = strlen(end);
  while (n > 0 && end[n - 1] == ' ') n--;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strlen(units[i].unit) != n || strncmp(end, units[i].unit, n) != 0) continue;
    v *= units[i].ms;
    if (!(v >= 0 && v <= 2147483647.0)) return false;   /* also NaN */
    *ms = v;
    return true;
  }
  return false;
}

enum { DURATION = -2 };              /* a setting kind beside LUA_TSTRING and LUA_TNUMBER */

/* Checks the value at the top as setting key (a DURATION, a string, or one of
 * the numbers below) and leaves its normal form there: one clear line now
 * rather than an overflow or a server error in the middle of a run. */
static void check_setting(lua_State *L, const char *key, int type) {
  static const struct { const char *key, *what; double max; bool whole; } numbers[] = {
    { "lock_wait", "lock_wait (--lock-wait) must be a number of seconds from 0 to 2147483",
      2147483, false },
    { "lock_retries", "lock_retries must be a whole number from 0 to 20", 20, true },
  };
  int t = lua_type(L, -1);
  double v, ms;
  if (type == DURATION && (t != LUA_TSTRING || !luamig_parse_duration(lua_tostring(L, -1), &ms)))
    luaL_error(L, "%s%s must be a duration such as \"5s\", \"500ms\" or \"10min\" (up to "
               "24 days; 0 turns it off), not '%s'", key,
               strcmp(key, "revision_timeout") == 0 ? " (--revision-timeout)" : "",
               luaL_tolstring(L, -1, NULL));
  if (type == LUA_TSTRING && t != LUA_TSTRING)
    luaL_error(L, "config: '%s' must be a string", key);
  if (type != LUA_TNUMBER) return;
  for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
    if (strcmp(key, numbers[i].key) != 0) continue;
    v = lua_tonumber(L, -1);
    if (!lua_isnumber(L, -1) || !(v >= 0 && v <= numbers[i].max) ||
        (numbers[i].whole && v != (double)(long)v))
      luaL_error(L, "%s, not '%s'", numbers[i].what, luaL_tolstring(L, -1, NULL));
    lua_pushnumber(L, v);
    lua_replace(L, -2);
  }
}

/* Copies field k from table `from` to `to` when `to` lacks it. */
static void inherit(lua_State *L, int to, int from, const char *k) {
  if (lua_getfield(L, to, k) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_getfield(L, from, k);
    lua_setfield(L, to, k);
  } else {
    lua_pop(L, 1);
  }
}

/* The audit log belongs to its version table: "<version_table>_log" (cut to
 * 63 bytes at a character boundary, as PostgreSQL would), except that the
 * default table keeps the log it always had, luamig_log. */
static void default_log_table(lua_State *L, int cfg) {
  int t = lua_getfield(L, cfg, "log_table");
  lua_pop(L, 1);
  if (t != LUA_TNIL) return;       /* set: checked with the other strings below */
  lua_getfield(L, cfg, "version_table");
  const char *vt = lua_tostring(L, -1);
  if (strcmp(vt, "luamig_version") == 0) {
    lua_pushliteral(L, "luamig_log");
  } else {
    size_t n = strlen(vt), max = LUAMIG_MAX_IDENT - 4;
    if (n > max) for (n = max; n > 0 && ((unsigned char)vt[n] & 0xC0) == 0x80; n--) {}
    lua_pushfstring(L, "%s_log", lua_pushlstring(L, vt, n));
    lua_remove(L, -2);
  }
  lua_setfield(L, cfg, "log_table");
  lua_pop(L, 1);
}

/* The keys the options (explicit first) and the config file give. */
static const char *const keys[] = { "url", "direct_url", "versions", "version_table",
                                    "version_table_schema", "log_table", "lock_wait",
                                    "lock_timeout", "statement_timeout", "lock_retries",
                                    "revision_timeout", "targets", "schemas", NULL };

/* Fills cfg from the options at opts_idx (they win over everything below),
 * then the config file (opts.config, else ./luamig.lua when there is one);
 * loads the .env beside it and sets cfg.dir, and cfg.config to the file read. */
static void read_sources(lua_State *L, int cfg, int opts_idx) {
  for (int i = 0; keys[i]; i++) inherit(L, cfg, opts_idx, keys[i]);
  lua_getfield(L, opts_idx, "config");
  const char *given = lua_tostring(L, -1);
  const char *path = given ? given : "luamig.lua";
  const char *dir = push_dirname(L, path);
  lua_pushvalue(L, -1);
  lua_setfield(L, cfg, "dir");
  load_dotenv(L, push_joined(L, dir, ".env"));
  lua_pop(L, 1);
  if (access(path, F_OK) == 0) {
    lua_pushstring(L, path);
    lua_setfield(L, cfg, "config");
    run_config(L, path);
    for (int i = 0; keys[i]; i++) inherit(L, cfg, lua_gettop(L), keys[i]);
    lua_pop(L, 1);
  } else if (given) {
    luaL_error(L, "config file '%s' not found", given);
  } else if (getenv("DATABASE_URL") == NULL && lua_getfield(L, cfg, "url") == LUA_TNIL) {
    luaL_error(L, "no luamig.lua here and no URL: run 'luamig init', pass -c FILE, "
               "or set --url / DATABASE_URL");
  }
  lua_settop(L, cfg);
}

/* url (else $DATABASE_URL) and direct_url: strings when set. */
static void check_urls(lua_State *L, int cfg) {
  if (lua_getfield(L, cfg, "url") == LUA_TNIL) {
    const char *env = getenv("DATABASE_URL");
    if (env) { lua_pushstring(L, env); lua_setfield(L, cfg, "url"); }
  } else if (!lua_isstring(L, -1)) {
    luaL_error(L, "config: 'url' must be a string");
  }
  lua_pop(L, 1);
  int dt = lua_getfield(L, cfg, "direct_url");   /* false: none (a fleet's child, its own target) */
  if (dt != LUA_TNIL && dt != LUA_TSTRING && !(dt == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
    luaL_error(L, "config: 'direct_url' must be a string");
  lua_pop(L, 1);
}

/* versions: a directory or a list of them, relative to the config's
 * directory, becomes the list of their paths (default: versions). */
static void resolve_versions(lua_State *L, int cfg) {
  lua_getfield(L, cfg, "dir");
  const char *dir = lua_tostring(L, -1);
  lua_newtable(L);
  int t = lua_getfield(L, cfg, "versions");
  if (t == LUA_TNIL) {
    push_joined(L, dir, "versions");
    lua_rawseti(L, -3, 1);
  } else if (t == LUA_TSTRING) {
    push_joined(L, dir, lua_tostring(L, -1));
    lua_rawseti(L, -3, 1);
  } else if (t == LUA_TTABLE) {
    int n = (int)luaL_len(L, -1);
    for (int i = 1; i <= n; i++) {
      if (lua_geti(L, -1, i) != LUA_TSTRING)
        luaL_error(L, "config: 'versions' must be a directory or a list of directories");
      push_joined(L, dir, lua_tostring(L, -1));
      lua_rawseti(L, -4, i);
      lua_pop(L, 1);
    }
  } else {
    luaL_error(L, "config: 'versions' must be a directory or a list of directories");
  }
  lua_pop(L, 1);
  lua_setfield(L, cfg, "versions");
  lua_pop(L, 1);
}

/* version_table (default luamig_version), its schema, its log's name. */
static void check_version_table(lua_State *L, int cfg) {
  if (lua_getfield(L, cfg, "version_table") == LUA_TNIL) {
    lua_pushliteral(L, "luamig_version");
    lua_setfield(L, cfg, "version_table");
  } else if (lua_type(L, -1) != LUA_TSTRING) {
    luaL_error(L, "config: 'version_table' must be a string");
  }
  lua_pop(L, 1);
  int t = lua_getfield(L, cfg, "version_table_schema");
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_error(L, "config: 'version_table_schema' must be a string");
  lua_pop(L, 1);
  default_log_table(L, cfg);
}

/* The safety settings, checked or defaulted: strings are PostgreSQL
 * durations ("5s", "500ms"). */
static void check_safety(lua_State *L, int cfg) {
  static const struct { const char *key, *def; int type; } defaults[] = {
    { "lock_timeout", "5s", DURATION },
    { "statement_timeout", NULL, DURATION },
    { "revision_timeout", "10min", DURATION },
    { "lock_retries", "3", LUA_TNUMBER },
    { "lock_wait", "60", LUA_TNUMBER },
  };
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
    int t = lua_getfield(L, cfg, defaults[i].key);
    if (t == LUA_TNIL && defaults[i].def) {
      lua_pushstring(L, defaults[i].def);
      if (defaults[i].type == LUA_TNUMBER) lua_pushnumber(L, lua_tonumber(L, -1));
      lua_setfield(L, cfg, defaults[i].key);
    } else if (t != LUA_TNIL) {
      check_setting(L, defaults[i].key, defaults[i].type);
      lua_setfield(L, cfg, defaults[i].key);
    }
    lua_settop(L, cfg);
  }
}

void luamig_config_load(lua_State *L, int opts_idx) {
  opts_idx = lua_absindex(L, opts_idx);
  lua_newtable(L);
  int cfg = lua_gettop(L);
  read_sources(L, cfg, opts_idx);
  check_urls(L, cfg);
  resolve_versions(L, cfg);
  check_version_table(L, cfg);
  check_safety(L, cfg);
}

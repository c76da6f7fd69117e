/*
 * fleet_child.c: both ends of a fleet run's report. A child (--fleet-child)
 * runs the command on the one target its environment names and prints one
 * JSON object: from and to (the revisions before and after, "a, b" or
 * "<base>"), count (revisions applied, pending or findings), status, error,
 * warnings, and the command's own result. The parent prints them as one
 * summary table, or with --json one object a line, and picks the exit status.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "luamig.h"
#include "cli.h"
#include "fleet.h"

/* ---- the child ---- */

/* Pushes the version rows of a "heads" event ("a, b" or "a\nb") as "a, b",
 * "<base>" for none. */
static const char *push_heads(lua_State *L, const char *text) {
  if (*text == '\0') return lua_pushliteral(L, "<base>");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (; *text; text++)
    if (*text == '\n') luaL_addstring(&b, ", ");
    else luaL_addchar(&b, *text);
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* The run's log (upvalue 1: the warnings, 2: the report): "warn" events
 * gathered, "done" ones counted (applied: revisions that ran, a failed run's
 * too), "heads" ones kept as from (the first) and to (the last). */
static int child_log(lua_State *L) {
  const char *event = luaL_checkstring(L, 1);
  if (strcmp(event, "heads") == 0) {
    push_heads(L, luaL_checkstring(L, 2));
    if (lua_getfield(L, lua_upvalueindex(2), "from") == LUA_TNIL) {
      lua_pushvalue(L, -2);
      lua_setfield(L, lua_upvalueindex(2), "from");
    }
    lua_pop(L, 1);
    lua_setfield(L, lua_upvalueindex(2), "to");
  } else if (strcmp(event, "warn") == 0) {
    lua_pushvalue(L, 2);
    lua_rawseti(L, lua_upvalueindex(1), (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)) + 1);
  } else if (strcmp(event, "done") == 0) {
    lua_getfield(L, lua_upvalueindex(2), "applied");
    lua_pushinteger(L, lua_tointeger(L, -1) + 1);
    lua_setfield(L, lua_upvalueindex(2), "applied");
  }
  return 0;
}

/* Pushes "a, b" of the revisions of the list at idx ({ revision = ... } each),
 * only the heads with heads_only; "<base>" for none. */
static const char *push_ids(lua_State *L, int idx, bool heads_only) {
  idx = lua_absindex(L, idx);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int n = 0;
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, idx); i++) {
    lua_rawgeti(L, idx, i);
    lua_getfield(L, -1, "head");
    bool skip = heads_only && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "revision");
    lua_remove(L, -2);
    if (skip) { lua_pop(L, 1); continue; }
    if (n++) { lua_pushliteral(L, ", "); lua_insert(L, -2); lua_concat(L, 2); }
    luaL_addvalue(&b);
  }
  if (n == 0) luaL_addstring(&b, "<base>");
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

static int count_findings(lua_State *L, int res) {
  static const char *const lists[] = { "changed", "missing", "ahead", "behind", "stale",
                                       "invalid_indexes", NULL };
  int n = 0;
  for (const char *const *k = lists; *k; k++) {
    lua_getfield(L, res, *k);
    n += (int)lua_rawlen(L, -1);
    lua_pop(L, 1);
  }
  lua_getfield(L, res, "log");
  n += !lua_isnil(L, -1);
  lua_pop(L, 1);
  return n;
}

/* (opts, args, report, cmd): runs the command, filling the report (slot 3). */
static int child_run(lua_State *L) {
  const char *cmd = lua_tostring(L, 4);
  const int rep = 3;
  lua_settop(L, 4);
  bool migrate = strcmp(cmd, "upgrade") == 0 || strcmp(cmd, "downgrade") == 0;
  luamig_cli_call(L, cmd);           /* an upgrade's from and to come with its "heads" events */
  int res = lua_gettop(L);
  const char *status = "ok";
  int count = 0;
  if (migrate) {
    count = (int)lua_rawlen(L, res);
  } else if (strcmp(cmd, "status") == 0) {
    lua_getfield(L, res, "current");
    push_ids(L, -1, false);
    lua_setfield(L, rep, "from");
    lua_getfield(L, res, "pending");
    count = (int)lua_rawlen(L, -1);
    if (count > 0) push_ids(L, -1, true);
    else lua_getfield(L, rep, "from");
    lua_setfield(L, rep, "to");
    status = count > 0 ? "pending" : "up to date";
  } else if (strcmp(cmd, "verify") == 0) {
    count = count_findings(L, res);
    status = count > 0 ? "findings" : "ok";
  } else {                           /* current */
    push_ids(L, res, false);
    lua_pushvalue(L, -1);
    lua_setfield(L, rep, "from");
    lua_setfield(L, rep, "to");
  }
  lua_pushinteger(L, count);
  lua_setfield(L, rep, "count");
  lua_pushvalue(L, res);
  lua_setfield(L, rep, "result");
  lua_pushstring(L, status);
  lua_setfield(L, rep, "status");
  return 0;
}

/* Dies with the parent (Linux): a killed fleet run leaves no child migrating on. */
static void follow_parent(void) {
#ifdef __linux__
  const char *parent = getenv(FLEET_PARENT_ENV);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (parent && getppid() != (pid_t)atoi(parent)) _exit(1);   /* it died before prctl */
#endif
}

int luamig_fleet_child(lua_State *L, const char *cmd) {
  follow_parent();
  const char *url = getenv(FLEET_URL_ENV), *schema = getenv(FLEET_SCHEMA_ENV);
  const char *opts = getenv(FLEET_OPTS_ENV);
  if (url == NULL || opts == NULL || !luamig_json_decode(L, opts, strlen(opts)) || !lua_istable(L, -1))
    luaL_error(L, "--fleet-child is for luamig's own fleet runs");
  lua_pushnil(L);                    /* the parent's options */
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, 1);
  }
  lua_pop(L, 1);
  lua_pushstring(L, url);            /* the target, whatever the config names */
  lua_setfield(L, 1, "url");
  lua_pushboolean(L, 0);
  lua_setfield(L, 1, "direct_url");
  if (schema) { lua_pushstring(L, schema); lua_setfield(L, 1, "version_table_schema"); }
  lua_newtable(L);                   /* 3: the report */
  int rep = lua_gettop(L);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, rep, "warnings");
  lua_pushvalue(L, rep);
  lua_pushcclosure(L, child_log, 2);
  lua_setfield(L, 1, "log");
  lua_pushcfunction(L, child_run);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, rep);
  lua_pushstring(L, cmd);
  if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
    lua_setfield(L, rep, "error");
    lua_pushliteral(L, "failed");
    lua_setfield(L, rep, "status");
    lua_getfield(L, rep, "applied");
    lua_pushinteger(L, lua_tointeger(L, -1));   /* nil (none ran): 0 */
    lua_setfield(L, rep, "count");
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  lua_setfield(L, rep, "applied");
  printf("%s\n", luamig_push_json(L, rep));
  lua_getfield(L, rep, "error");
  return lua_isnil(L, -1) ? 0 : 1;
}

/* ---- the parent's report ---- */

typedef struct column { const char *title, *field; } column;

/* The columns of cmd's table, NULL-terminated. */
static const column *columns(const char *cmd) {
  static const column migrate[] = { { "TARGET", "target" }, { "FROM", "from" }, { "TO", "to" },
    { "APPLIED", "count" }, { "TIME", "ms" }, { "STATUS", "status" }, { NULL, NULL } };
  static const column status[] = { { "TARGET", "target" }, { "CURRENT", "from" },
    { "HEAD", "to" }, { "PENDING", "count" }, { "TIME", "ms" }, { "STATUS", "status" },
    { NULL, NULL } };
  static const column current[] = { { "TARGET", "target" }, { "CURRENT", "from" },
    { "TIME", "ms" }, { "STATUS", "status" }, { NULL, NULL } };
  static const column verify[] = { { "TARGET", "target" }, { "FINDINGS", "count" },
    { "TIME", "ms" }, { "STATUS", "status" }, { NULL, NULL } };
  if (strcmp(cmd, "status") == 0) return status;
  if (strcmp(cmd, "current") == 0) return current;
  if (strcmp(cmd, "verify") == 0) return verify;
  return migrate;
}

/* Pushes the text of field k of the result at r ("-" when it has none). */
static const char *push_cell(lua_State *L, int r, const char *k) {
  int t = lua_getfield(L, r, k);
  if (t == LUA_TNIL) { lua_pop(L, 1); return lua_pushliteral(L, "-"); }
  if (strcmp(k, "ms") == 0) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.0f ms", lua_tonumber(L, -1));
    lua_pop(L, 1);
    return lua_pushstring(L, buf);
  }
  const char *s = luaL_tolstring(L, -1, NULL);
  s = luamig_push_oneline(L, s, strlen(s));
  lua_replace(L, -3);
  lua_pop(L, 1);
  return s;
}

/* The table: a header, a row per target, columns as wide as their widest cell. */
static void print_table(lua_State *L, const column *cols, int res) {
  int n = (int)lua_rawlen(L, res), ncols = 0;
  size_t width[8] = { 0 };
  for (; cols[ncols].title; ncols++) width[ncols] = strlen(cols[ncols].title);
  lua_createtable(L, n, 0);          /* the cells, row by row */
  int cells = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, res, i);
    lua_createtable(L, ncols, 0);
    for (int c = 0; c < ncols; c++) {
      size_t len = strlen(push_cell(L, lua_gettop(L) - 1, cols[c].field));
      if (len > width[c]) width[c] = len;
      lua_rawseti(L, -2, c + 1);
    }
    lua_rawseti(L, cells, i);
    lua_pop(L, 1);
  }
  for (int c = 0; c < ncols; c++)
    printf("%-*s%s", c + 1 < ncols ? (int)width[c] : 0, cols[c].title, c + 1 < ncols ? "  " : "\n");
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, cells, i);
    for (int c = 0; c < ncols; c++) {
      lua_rawgeti(L, -1, c + 1);
      const char *s = lua_tostring(L, -1);
      bool red = c + 1 == ncols && strcmp(s, "up to date") != 0 && strcmp(s, "ok") != 0;
      printf("%s%-*s%s%s", red ? luamig_cli_paint(strcmp(s, "pending") == 0 ? YELLOW : RED) : "",
             c + 1 < ncols ? (int)width[c] : 0, s, red ? luamig_cli_paint(RESET) : "",
             c + 1 < ncols ? "  " : "\n");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* What the children said on stderr besides luamig's own lines (those are in
 * their JSON): a revision's print(), say; kept as result.output. */
static void keep_output(lua_State *L, int r) {
  lua_getfield(L, r, "stderr");
  const char *s = lua_tostring(L, -1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *p = s; p && *p;) {
    size_t len = strcspn(p, "\n");
    if (strncmp(p, "luamig: ", 8) != 0 && len > 0) {
      luaL_addlstring(&b, p, len);
      luaL_addchar(&b, '\n');
    }
    p += len + (p[len] == '\n');
  }
  luaL_pushresult(&b);
  if (lua_rawlen(L, -1) > 0) lua_setfield(L, r, "output");
  else lua_pop(L, 1);
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setfield(L, r, "stderr");
}

/* Each distinct warning once, naming its target, or how many targets had it. */
static void print_warnings(lua_State *L, int res) {
  int n = (int)lua_rawlen(L, res);
  lua_newtable(L);                   /* text -> count */
  lua_newtable(L);                   /* texts in order */
  lua_newtable(L);                   /* text -> the first target */
  int counts = lua_gettop(L) - 2, order = counts + 1, first = counts + 2;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, res, i);
    lua_getfield(L, -1, "warnings");
    for (lua_Integer k = 1; k <= (lua_Integer)lua_rawlen(L, -1) && lua_istable(L, -1); k++) {
      lua_rawgeti(L, -1, k);
      lua_pushvalue(L, -1);
      lua_Integer c = lua_rawget(L, counts) == LUA_TNUMBER ? lua_tointeger(L, -1) : 0;
      lua_pop(L, 1);
      if (c == 0) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, order, (lua_Integer)lua_rawlen(L, order) + 1);
        lua_pushvalue(L, -1);
        lua_getfield(L, -4, "target");
        lua_rawset(L, first);
      }
      lua_pushinteger(L, c + 1);
      lua_rawset(L, counts);
    }
    lua_pop(L, 2);
  }
  for (lua_Integer k = 1; k <= (lua_Integer)lua_rawlen(L, order); k++) {
    lua_rawgeti(L, order, k);
    lua_pushvalue(L, -1);
    lua_rawget(L, counts);
    lua_pushvalue(L, -2);
    lua_rawget(L, first);
    fprintf(stderr, "%sluamig: warning: ", luamig_cli_paint(YELLOW));
    if (lua_tointeger(L, -2) == 1)
      fprintf(stderr, "%s: %s", lua_tostring(L, -1), lua_tostring(L, -3));
    else fprintf(stderr, "%s (%lld targets)", lua_tostring(L, -3), (long long)lua_tointeger(L, -2));
    fprintf(stderr, "%s\n", luamig_cli_paint(RESET));
    lua_pop(L, 3);
  }
  lua_pop(L, 3);
}

int luamig_fleet_report(lua_State *L, const char *cmd, int res) {
  static const char *const order[] = { "ok", "up to date", "pending", "findings", "failed",
                                       "not run", NULL };
  int n = (int)lua_rawlen(L, res), tally[6] = { 0 };
  fflush(stdout);
  print_warnings(L, res);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, res, i);
    int r = lua_gettop(L);
    keep_output(L, r);
    if (!luamig_cli.json && lua_getfield(L, r, "output") == LUA_TSTRING) {
      for (const char *p = lua_tostring(L, -1); *p;) {
        size_t len = strcspn(p, "\n");
        fprintf(stderr, "%s: %.*s\n", luamig_cli_field(L, r, "target"), (int)len, p);
        p += len + (p[len] == '\n');
      }
    }
    lua_settop(L, r);
    const char *status = luamig_cli_field(L, r, "status");
    for (int k = 0; order[k]; k++) if (strcmp(order[k], status) == 0) tally[k]++;
    if (luamig_cli.json) printf("%s\n", luamig_push_json(L, r));
    lua_settop(L, res);
  }
  if (!luamig_cli.json) {
    print_table(L, columns(cmd), res);
    fflush(stdout);
    for (int i = 1; i <= n; i++) {   /* each failure in full, as a single run says it */
      lua_rawgeti(L, res, i);
      const char *error = luamig_cli_field(L, -1, "error");
      if (error && strcmp(luamig_cli_field(L, -1, "status"), "failed") == 0)
        fprintf(stderr, "%sluamig: error:%s %s: %s\n", luamig_cli_paint(RED),
                luamig_cli_paint(RESET), luamig_cli_field(L, -1, "target"), error);
      lua_pop(L, 1);
    }
    printf("%d target%s:", n, n == 1 ? "" : "s");
    for (int k = 0, shown = 0; order[k]; k++)
      if (tally[k]) printf("%s %d %s", shown++ ? "," : "", tally[k], order[k]);
    printf("\n");
  }
  if (tally[4] || tally[5]) return 1;
  if (tally[3] && luamig_cli_flag(L, "strict")) return 1;
  return tally[2] ? 3 : 0;
}

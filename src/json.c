/*
 * json.c: Lua values -> JSON for the CLI's --json output. Tables with a
 * sequence part are arrays, others objects with keys sorted, so the same
 * result always prints the same document (stable for CI tools to diff).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"

/* Output goes to an array of pieces (at slot `out`), joined at the end:
 * no luaL_Buffer is open while the walk pushes values. */
typedef struct json {
  lua_State *L;
  int out, n;
} json;

static void put(json *j, const char *s, size_t len) {
  lua_pushlstring(j->L, s, len);
  lua_rawseti(j->L, j->out, ++j->n);
}

static void puts_(json *j, const char *s) { put(j, s, strlen(s)); }

static void add_string(json *j, const char *s, size_t n) {
  size_t start = 0;
  puts_(j, "\"");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char hex[8];
    if (c == '"') esc = "\\\"";
    else if (c == '\\') esc = "\\\\";
    else if (c == '\n') esc = "\\n";
    else if (c == '\r') esc = "\\r";
    else if (c == '\t') esc = "\\t";
    else if (c < 0x20) { snprintf(hex, sizeof hex, "\\u%04x", c); esc = hex; }
    if (esc) {
      if (i > start) put(j, s + start, i - start);
      puts_(j, esc);
      start = i + 1;
    }
  }
  if (n > start) put(j, s + start, n - start);
  puts_(j, "\"");
}

static int cmp_keys(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void add_value(json *j, int idx, int depth);

static void add_table(json *j, int idx, int depth) {
  lua_State *L = j->L;
  luaL_checkstack(L, 8, "json: nesting too deep");   /* a few slots per level of nesting */
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  bool has_keys = false;
  lua_pushnil(L);
  if (lua_next(L, idx)) { lua_pop(L, 2); has_keys = true; }
  if (n > 0 || !has_keys) {          /* sequences, and {} as an empty array */
    puts_(j, "[");
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1) puts_(j, ",");
      lua_rawgeti(L, idx, i);
      add_value(j, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
    }
    puts_(j, "]");
    return;
  }
  lua_newtable(L);                   /* the string keys, sorted */
  int keys = lua_gettop(L), nkeys = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, keys, ++nkeys);
    }
  }
  const char **names = lua_newuserdatauv(L, (size_t)(nkeys + 1) * sizeof *names, 0);
  for (int i = 0; i < nkeys; i++) {
    lua_rawgeti(L, keys, i + 1);
    names[i] = lua_tostring(L, -1);  /* anchored by keys */
    lua_pop(L, 1);
  }
  qsort(names, (size_t)nkeys, sizeof *names, cmp_keys);
  puts_(j, "{");
  int written = 0;
  for (int i = 0; i < nkeys; i++) {
    lua_getfield(L, idx, names[i]);
    int t = lua_type(L, -1);
    if (t != LUA_TFUNCTION && t != LUA_TUSERDATA && t != LUA_TLIGHTUSERDATA) {
      if (written++) puts_(j, ",");
      add_string(j, names[i], strlen(names[i]));
      puts_(j, ":");
      add_value(j, lua_gettop(L), depth + 1);
    }
    lua_pop(L, 1);
  }
  puts_(j, "}");
  lua_pop(L, 2);
}

static void add_value(json *j, int idx, int depth) {
  lua_State *L = j->L;
  if (depth > 32) luaL_error(L, "json: nesting too deep");
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      add_string(j, s, n);
      break;
    }
    case LUA_TNUMBER: {
      char num[64];
      if (lua_isinteger(L, idx)) snprintf(num, sizeof num, LUA_INTEGER_FMT, lua_tointeger(L, idx));
      else if (!isfinite(lua_tonumber(L, idx))) snprintf(num, sizeof num, "null");
      else snprintf(num, sizeof num, "%.17g", lua_tonumber(L, idx));
      puts_(j, num);
      break;
    }
    case LUA_TBOOLEAN: puts_(j, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TTABLE: add_table(j, idx, depth); break;
    default: puts_(j, "null");
  }
}

const char *luamig_push_json(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  json j = { L, lua_gettop(L), 0 };
  add_value(&j, idx, 0);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= j.n; i++) {
    lua_rawgeti(L, j.out, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_remove(L, j.out);
  return lua_tostring(L, -1);
}

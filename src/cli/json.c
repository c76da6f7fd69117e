/*
 * json.c: Lua values -> JSON for the CLI's --json output, and back for what a
 * fleet run's children print (luamig_json_decode). Tables with a sequence part
 * are arrays, others objects with keys sorted, so the same result always
 * prints the same document (stable for CI tools to diff).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "cli.h"

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

/* ---- JSON -> Lua values (the fleet reads what its children print) ---- */

typedef struct reader {
  lua_State *L;
  const char *p, *end;
  bool ok;
} reader;

static void skip_space(reader *r) {
  while (r->p < r->end && strchr(" \t\r\n", *r->p) && *r->p) r->p++;
}

static bool literal(reader *r, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return false;
  r->p += n;
  return true;
}

/* Appends code point cp as UTF-8. */
static void add_utf8(luaL_Buffer *b, unsigned long cp) {
  char s[4];
  int n;
  if (cp < 0x80) { s[0] = (char)cp; n = 1; }
  else if (cp < 0x800) {
    s[0] = (char)(0xC0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3F)); n = 2;
  }
  else if (cp < 0x10000) {
    s[0] = (char)(0xE0 | (cp >> 12)); s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    s[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    s[0] = (char)(0xF0 | (cp >> 18)); s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    s[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); s[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  luaL_addlstring(b, s, (size_t)n);
}

static bool hex4(reader *r, unsigned long *cp) {
  if (r->end - r->p < 4) return false;
  char h[5] = { r->p[0], r->p[1], r->p[2], r->p[3], 0 };
  char *e;
  *cp = strtoul(h, &e, 16);
  r->p += 4;
  return *e == '\0';
}

/* A string (the opening quote already read), pushed. */
static bool read_string(reader *r) {
  luaL_Buffer b;
  luaL_buffinit(r->L, &b);
  while (r->p < r->end && *r->p != '"') {
    const char *run = r->p;
    while (r->p < r->end && *r->p != '"' && *r->p != '\\') r->p++;
    luaL_addlstring(&b, run, (size_t)(r->p - run));
    if (r->p >= r->end || *r->p == '"') break;
    if (++r->p >= r->end) return false;
    char c = *r->p++;
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *k = strchr(from, c);
    unsigned long cp, lo;
    if (k && c) {
      luaL_addchar(&b, to[k - from]);
    } else if (c == 'u' && hex4(r, &cp)) {
      if (cp >= 0xD800 && cp < 0xDC00 && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u') {
        r->p += 2;
        if (!hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      add_utf8(&b, cp);
    } else {
      return false;
    }
  }
  if (r->p >= r->end) return false;
  r->p++;
  luaL_pushresult(&b);
  return true;
}

static bool read_value(reader *r, int depth);

/* An array or object (its bracket already read), pushed as a table. */
static bool read_container(reader *r, bool object, int depth) {
  lua_State *L = r->L;
  lua_newtable(L);
  lua_Integer n = 0;
  skip_space(r);
  if (r->p < r->end && *r->p == (object ? '}' : ']')) { r->p++; return true; }
  for (;;) {
    skip_space(r);
    if (object) {
      if (r->p >= r->end || *r->p++ != '"' || !read_string(r)) return false;
      skip_space(r);
      if (r->p >= r->end || *r->p++ != ':') return false;
    }
    if (!read_value(r, depth + 1)) return false;
    if (object) lua_rawset(L, -3);
    else lua_rawseti(L, -2, ++n);
    skip_space(r);
    if (r->p >= r->end) return false;
    char c = *r->p++;
    if (c == (object ? '}' : ']')) return true;
    if (c != ',') return false;
  }
}

static bool read_value(reader *r, int depth) {
  lua_State *L = r->L;
  if (depth > 64 || !lua_checkstack(L, 4)) return false;
  skip_space(r);
  if (r->p >= r->end) return false;
  char c = *r->p;
  if (c == '{' || c == '[') { r->p++; return read_container(r, c == '{', depth); }
  if (c == '"') { r->p++; return read_string(r); }
  if (literal(r, "true")) { lua_pushboolean(L, 1); return true; }
  if (literal(r, "false")) { lua_pushboolean(L, 0); return true; }
  if (literal(r, "null")) { lua_pushnil(L); return true; }
  char num[64];
  size_t n = strspn(r->p, "+-0123456789.eE");
  if (n == 0 || n >= sizeof num || (size_t)(r->end - r->p) < n) return false;
  memcpy(num, r->p, n);
  num[n] = '\0';
  r->p += n;
  return lua_stringtonumber(L, num) != 0;
}

bool luamig_json_decode(lua_State *L, const char *s, size_t len) {
  int top = lua_gettop(L);
  reader r = { L, s, s + len, true };
  bool ok = read_value(&r, 0);
  skip_space(&r);
  if (ok && r.p == r.end) return true;
  lua_settop(L, top);
  return false;
}

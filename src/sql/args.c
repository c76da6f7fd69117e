/*
 * args.c: reading an op's Lua arguments (strings, identifiers, option tables,
 * arrays), each failure raised as "file:line: op.x: ..." at the revision's line;
 * and a call's arguments by the op's registry row (ops_registry.c): by name,
 * their kinds checked before the builder runs.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "sql.h"

int luamig_op_error(lua_State *L, const char *what, const char *fmt, ...) {
  va_list ap;
  luaL_where(L, 1);
  lua_pushstring(L, what);
  lua_pushliteral(L, ": ");
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 4);
  return lua_error(L);
}

/* The string at the top, checked to be a string without NUL bytes. */
const char *luamig_top_string(lua_State *L, const char *what, const char *label) {
  if (lua_type(L, -1) != LUA_TSTRING)
    luamig_op_error(L, what, "%s must be a string (got %s)", label, luaL_typename(L, -1));
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (strlen(s) < len) luamig_op_error(L, what, "%s contains a NUL byte", label);
  return s;
}

const char *luamig_arg_ident(lua_State *L, const char *what, int idx, const char *label) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luamig_op_error(L, what, "%s must be a string (got %s)", label, luaL_typename(L, idx));
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (len == 0) luamig_op_error(L, what, "empty identifier (%s)", label);
  if (strlen(s) < len) luamig_op_error(L, what, "%s contains a NUL byte", label);
  if (len > LUAMIG_MAX_IDENT)
    luamig_op_error(L, what, "identifier \"%s\" is longer than %d bytes", s, LUAMIG_MAX_IDENT);
  return s;
}

int luamig_push_opt(lua_State *L, int opts, const char *key) {
  if (!lua_istable(L, opts)) { lua_pushnil(L); return LUA_TNIL; }
  return lua_getfield(L, opts, key);
}

int luamig_opt_bool(lua_State *L, const char *what, int opts, const char *key) {
  int type = luamig_push_opt(L, opts, key);
  int v = type == LUA_TNIL ? -1 : lua_toboolean(L, -1);
  if (type != LUA_TNIL && type != LUA_TBOOLEAN)
    luamig_op_error(L, what, "%s must be a boolean (got %s)", key, lua_typename(L, type));
  lua_pop(L, 1);
  return v;
}

bool luamig_push_opt_string(lua_State *L, const char *what, int opts, const char *key,
                            const char *expected) {
  int type = luamig_push_opt(L, opts, key);
  if (type == LUA_TNIL) { lua_pop(L, 1); return false; }
  if (type != LUA_TSTRING)
    luamig_op_error(L, what, "%s must be %s (got %s)", key, expected, lua_typename(L, type));
  luamig_top_string(L, what, key);
  return true;
}

lua_Integer luamig_check_array(lua_State *L, const char *what, int idx, const char *label) {
  if (!lua_istable(L, idx))
    luamig_op_error(L, what, "%s must be a table (an array) (got %s)", label, luaL_typename(L, idx));
  /* raw: a proxy's __len or __index could make the list endless */
  if (luaL_getmetafield(L, idx, "__index") != LUA_TNIL || luaL_getmetafield(L, idx, "__len") != LUA_TNIL)
    luamig_op_error(L, what, "%s must be a plain array (a table without __index or __len)", label);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n)
      luamig_op_error(L, what, "%s must be an array (found key %s)", label, luaL_tolstring(L, -1, NULL));
  }
  return n;
}

/* ---- statement parameters from Lua values ---- */

/* Pushes a number as PostgreSQL input text: integral values without ".0",
 * others in the fewest digits that read back the same. */
static void push_number_text(lua_State *L, int idx) {
  lua_Integer i;
  if (lua_isinteger(L, idx)) {
    lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
    return;
  }
  lua_Number d = lua_tonumber(L, idx);
  if (isnan(d)) { lua_pushliteral(L, "NaN"); return; }
  if (isinf(d)) { lua_pushstring(L, d > 0 ? "Infinity" : "-Infinity"); return; }
  if (lua_numbertointeger(d, &i) && (lua_Number)i == d) {
    lua_pushfstring(L, "%I", (LUAI_UACINT)i);
    return;
  }
  char buf[64];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, (double)d);
    if (strtod(buf, NULL) == (double)d) break;
  }
  lua_pushstring(L, buf);
}

const char **luamig_params(lua_State *L, int first, int n, const char *what) {
  static const char expected[] = "nil, boolean, number or string";
  first = lua_absindex(L, first);
  if (n > 65535) {
    if (what) luaL_error(L, "%s: too many parameters (%d; at most 65535)", what, n);
    luaL_error(L, "too many parameters (%d; at most 65535)", n);
  }
  for (int i = 0; i < n; i++) {
    int idx = first + i;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
      break;
    case LUA_TBOOLEAN:
      lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
      lua_replace(L, idx);
      break;
    case LUA_TNUMBER:
      push_number_text(L, idx);
      lua_replace(L, idx);
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (strlen(s) < len) {
        if (what) luamig_op_error(L, what, "parameter %d contains a NUL byte", i + 1);
        luaL_argerror(L, idx, "contains a NUL byte");
      }
      break;
    }
    default:
      if (what) luamig_op_error(L, what, "parameter %d must be nil, a boolean, a number or "
                                "a string (got %s)", i + 1, luaL_typename(L, idx));
      luaL_typeerror(L, idx, expected);
    }
  }
  const char **p = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *p, 0);
  for (int i = 0; i < n; i++) p[i] = lua_tostring(L, first + i);  /* NULL for nil */
  return p;
}

/* ---- reading a call by the registry ---- */

int luamig_op_nargs(const luamig_opspec *spec) {
  int n = 0;
  while (spec->params[n].name) n++;
  return n + (spec->options != NULL);
}

int luamig_arg(lua_State *L, const luamig_opcall *op, const char *name) {
  int i = 0;
  for (const luamig_param *p = op->spec->params; p->name; p++, i++)
    if (strcmp(p->name, name) == 0) return op->base + i;
  if (op->spec->options && strcmp(name, "options") == 0) return op->base + i;
  return luaL_error(L, "%s has no argument '%s' (ops_registry.c)", op->what, name);
}

/* Raises unless the table at opts (or nil) has only the op's option keys,
 * and its boolean options are booleans. */
static void check_options(lua_State *L, const luamig_opcall *op, int opts) {
  if (lua_isnil(L, opts)) return;
  if (!lua_istable(L, opts))
    luamig_op_error(L, op->what, "options must be a table (got %s)", luaL_typename(L, opts));
  lua_pushnil(L);
  while (lua_next(L, opts) != 0) {
    lua_pop(L, 1);
    const luamig_option *o = op->spec->options;
    if (lua_type(L, -1) == LUA_TSTRING)
      while (o->name && strcmp(o->name, lua_tostring(L, -1)) != 0) o++;
    if (lua_type(L, -1) != LUA_TSTRING || o->name == NULL)
      luamig_op_error(L, op->what, "unknown option '%s'", luaL_tolstring(L, -1, NULL));
  }
  for (const luamig_option *o = op->spec->options; o->name; o++)
    if (o->kind == LUAMIG_BOOL) luamig_opt_bool(L, op->what, opts, o->name);
}

/* Raises unless the argument at slot is what p says: the kinds the builders
 * read without looking (identifiers, tables, strings), in argument order. */
static void check_param(lua_State *L, const luamig_opcall *op, const luamig_param *p, int slot) {
  const char *label = p->label ? p->label : p->name, *what = op->what;
  switch (p->kind) {
  case LUAMIG_NAMED:
    if (lua_isnil(L, slot))
      luamig_op_error(L, what, "Constraint must have a name: PostgreSQL named it when it "
                      "was created (<table>_<columns>_key, _fkey, _check, <table>_pkey); find it "
                      "with \\d <table> and pass it");
    /* fallthrough */
  case LUAMIG_IDENT:
    luamig_arg_ident(L, what, slot, label);
    break;
  case LUAMIG_NAME:
    if (!lua_isnil(L, slot)) luamig_arg_ident(L, what, slot, label);
    break;
  case LUAMIG_COLUMN:
    if (!lua_istable(L, slot))
      luamig_op_error(L, what, "%s must be a table such as { \"name\", \"text\" } (got %s)",
                      label, luaL_typename(L, slot));
    break;
  case LUAMIG_IDENTS: case LUAMIG_ELEMENTS: case LUAMIG_STRINGS: case LUAMIG_COLUMNS:
  case LUAMIG_ROWS:
    luamig_check_array(L, what, slot, label);
    break;
  case LUAMIG_TEXT:
    if (lua_type(L, slot) != LUA_TSTRING)
      luamig_op_error(L, what, "%s must be a SQL expression string (got %s)", label,
                      luaL_typename(L, slot));
    break;
  case LUAMIG_STRING:
    if (lua_type(L, slot) != LUA_TSTRING)
      luamig_op_error(L, what, "%s must be a string (got %s)", label, luaL_typename(L, slot));
    break;
  default:
    break;
  }
}

void luamig_op_check(lua_State *L, const luamig_opcall *op) {
  int slot = op->base;
  for (const luamig_param *p = op->spec->params; p->name; p++, slot++)
    check_param(L, op, p, slot);
  /* an op that needs its options says itself what to give */
  if (op->spec->options && (lua_istable(L, slot) || !(op->spec->flags & LUAMIG_OP_OPTS_NEEDED)))
    check_options(L, op, slot);
}

/*
 * owned.c: C memory owned by Lua: what libpq or malloc hands over while Lua
 * may raise is released once, by hand or by the holder's __gc.
 */
#include "luamig.h"

typedef struct owned { void *p; void (*release)(void *); } owned;

static int owned_gc(lua_State *L) {
  luamig_owned_free(lua_touserdata(L, 1));
  return 0;
}

void **luamig_push_owned(lua_State *L, void (*release)(void *)) {
  owned *o = lua_newuserdatauv(L, sizeof *o, 0);
  *o = (owned){ NULL, release };
  if (luaL_newmetatable(L, "luamig.owned")) {
    lua_pushcfunction(L, owned_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return &o->p;
}

void luamig_owned_free(void **slot) {
  owned *o = (owned *)slot;          /* p is the first member */
  if (o->p != NULL) {
    void *p = o->p;
    o->p = NULL;                     /* released once, by hand or by __gc */
    o->release(p);
  }
}

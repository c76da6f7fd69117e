/*
 * fuzz.h: what the libFuzzer targets share: a lua_State with a memory cap
 * and an instruction budget, so a fuzzed input can raise but never exhaust
 * the machine or loop forever; and a private temp directory per process.
 */
#ifndef LUAMIG_FUZZ_H
#define LUAMIG_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "luamig.h"

#define FUZZ_MEM_CAP ((size_t)256 << 20)   /* bytes a state may hold */
#define FUZZ_INSN_CAP 200000               /* Lua instructions per input */

typedef struct fuzz_mem { size_t used; } fuzz_mem;

/* lua_Alloc with a cap: past it, Lua sees an allocation failure and raises. */
static inline void *fuzz_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  fuzz_mem *m = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    m->used -= old;
    return NULL;
  }
  if (nsize > old && m->used - old + nsize > FUZZ_MEM_CAP) return NULL;
  void *p = realloc(ptr, nsize);
  if (p != NULL) m->used = m->used - old + nsize;
  return p;
}

static inline void fuzz_count_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  luaL_error(L, "fuzz: instruction budget exhausted");
}

/* A fresh state with the standard libraries and the caps; close with lua_close. */
static inline lua_State *fuzz_state(fuzz_mem *m) {
  m->used = 0;
  lua_State *L = lua_newstate(fuzz_alloc, m);
  if (L == NULL) abort();
  luaL_openlibs(L);
  lua_sethook(L, fuzz_count_hook, LUA_MASKCOUNT, FUZZ_INSN_CAP);
  return L;
}

/* Calls f(L) with ud as a light userdata under lua_pcall: errors are fine
 * (FUZZ_VERBOSE=1 prints them, to check that a seed gets as far as meant). */
static inline void fuzz_pcall(lua_State *L, lua_CFunction f, void *ud) {
  int top = lua_gettop(L);
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, ud);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK && getenv("FUZZ_VERBOSE"))
    fprintf(stderr, "fuzz: (expected) %s\n", lua_tostring(L, -1));
  lua_settop(L, top);
}

/* A directory of this process's own under TMPDIR, made once, removed at exit. */
static char fuzz_dir_path[4096];

static inline void fuzz_dir_remove(void) {
  char cmd[4200];
  if (fuzz_dir_path[0] == '\0') return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
  if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
}

static inline const char *fuzz_dir(void) {
  if (fuzz_dir_path[0] == '\0') {
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/luamig-fuzz.XXXXXX",
             tmp && *tmp && !strchr(tmp, '\'') ? tmp : "/tmp");
    if (mkdtemp(fuzz_dir_path) == NULL) { perror("fuzz: mkdtemp"); abort(); }
    atexit(fuzz_dir_remove);
  }
  return fuzz_dir_path;
}

/* Writes data to path (truncating); aborts on failure, which is the harness's fault. */
static inline void fuzz_write(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

/* A NUL-terminated copy of the input (the caller frees it). */
static inline char *fuzz_cstring(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL) abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

#endif

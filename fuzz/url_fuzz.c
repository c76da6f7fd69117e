/*
 * url_fuzz.c: luamig_redact_url and the .env reader on arbitrary bytes.
 * Besides crashes, leaks and UB, checks the one promise redaction makes:
 * when libpq itself would find a password in the input (PQconninfoParse, the
 * parser libpq uses to connect), the redacted text still parses and its
 * password is "***".
 */
#include "fuzz.h"

static const char *option(const PQconninfoOption *o, const char *key) {
  for (; o->keyword; o++)
    if (strcmp(o->keyword, key) == 0) return o->val;
  return NULL;
}

static void check_masked(const char *url, const char *out) {
  char *err = NULL;
  PQconninfoOption *in = PQconninfoParse(url, &err);
  PQfreemem(err);
  if (in == NULL) return;
  const char *pw = option(in, "password");
  if (pw != NULL && *pw != '\0') {
    err = NULL;
    PQconninfoOption *red = PQconninfoParse(out, &err);
    const char *masked = red ? option(red, "password") : NULL;
    if (masked == NULL || strcmp(masked, "***") != 0) {
      fprintf(stderr, "fuzz: password not masked\n  input:    %s\n  password: %s\n"
              "  redacted: %s\n  parsed:   %s\n", url, pw, out,
              red ? (masked ? masked : "(no password)") : err);
      abort();
    }
    PQconninfoFree(red);
    PQfreemem(err);
  }
  PQconninfoFree(in);
}

static int redact(lua_State *L) {
  const char *url = lua_touserdata(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luamig_redact_url(&b, url);
  luaL_pushresult(&b);
  check_masked(url, lua_tostring(L, -1));
  return 0;
}

static int dotenv(lua_State *L) {
  const char *path = lua_touserdata(L, 1);
  int n = luamig_dotenv_parse(L, path), count = 0;
  if (!lua_istable(L, -1)) abort();
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) abort();
    count++;
    lua_pop(L, 1);
  }
  if (n != count) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lua_State *L;               /* shared: an input only reads it */
  static fuzz_mem mem;
  static char path[4200];
  if (L == NULL) {
    L = fuzz_state(&mem);
    snprintf(path, sizeof path, "%s/.env", fuzz_dir());
  }
  char *url = fuzz_cstring(data, size);
  fuzz_write(path, data, size);
  fuzz_pcall(L, redact, url);
  fuzz_pcall(L, dotenv, path);
  if (lua_gettop(L) != 0) abort();
  lua_gc(L, LUA_GCCOLLECT);          /* as many frees as mallocs: no leak check */
  free(url);
  return 0;
}

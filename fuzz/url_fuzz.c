/*
 * url_fuzz.c: luamig_push_redacted and the .env reader on arbitrary bytes.
 * Besides crashes, leaks and UB, checks the promise redaction makes, twice:
 *  - on the input as it is: when libpq itself finds a password in it
 *    (PQconninfoParse, the parser libpq connects with), the redacted text is
 *    "(not shown)" or parses with the password "***";
 *  - on a connection string built from the input: a random password (letters
 *    that no template has, and the characters that break URLs: @ / : ? & = %
 *    space quote backslash) put in one of the places a password goes, written
 *    raw or percent-encoded, in a URL or key=value string of any case; no four
 *    letters in a row of the password may show in the output, nor in the output
 *    percent-decoded.
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
  if (pw != NULL && *pw != '\0' && strcmp(out, "(not shown)") != 0) {
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

/* ---- a built string with a known password ---- */

/* Letters no template uses (not in POSTGRESQL, PASSWORD, SSLMODE, ...), and
 * the characters that end a URL's parts or a key=value value. */
#define LETTERS "BCFHIJKMNUVXYZ"
#define BREAKERS "@/:?&=% '\\#,"

typedef struct bytes { const uint8_t *p; size_t n; } bytes;

static unsigned take(bytes *b, unsigned range) {
  if (b->n == 0) return 0;
  b->n--;
  return *b->p++ % range;
}

static void pct(char *out, size_t *k, unsigned char c) {
  static const char hex[] = "0123456789ABCDEF";
  out[(*k)++] = '%';
  out[(*k)++] = hex[c >> 4];
  out[(*k)++] = hex[c & 15];
}

/* The password written for a URL: raw, or with every non-letter encoded. */
static void put_password(char *out, size_t *k, const char *pw, bool encode) {
  for (const char *p = pw; *p; p++) {
    if (encode && !strchr(LETTERS, *p)) pct(out, k, (unsigned char)*p);
    else out[(*k)++] = *p;
  }
}

static const char *const templates[] = {
  "postgresql://bob:%P@localhost:5432/app",
  "postgres://bob:%P@db.example/app?sslmode=require",
  "postgresql://bob@localhost/app?password=%P&sslmode=disable",
  "postgresql://localhost/app?user=bob&passwor%64=%P",
  "postgresql://bob@localhost/app?sslpassword=%P",
  "postgresql://bob:%P@h1:5432,h2:5433/app?target_session_attrs=any",
  "host=localhost password=%P dbname=app",
  "host=localhost password='%P' dbname=app",
  "dbname=app password = %P user=bob",
  "host=localhost PASSWORD=%P",
  "POSTGRESQL://bob:%P@localhost/app",
  " postgresql://bob:%P@localhost/app",
  "postgresql://bob:%P@/app?host=/tmp",
  "bob:%P@localhost/app",
};

/* Builds into out (room for 1024) a connection string around a password of
 * 8..31 characters (into pw, room for 32) taken from the input. */
static void build(bytes *b, char *out, char *pw) {
  size_t n = 8 + take(b, 24);
  for (size_t i = 0; i < n; i++)
    pw[i] = take(b, 4) ? LETTERS[take(b, sizeof LETTERS - 1)] : BREAKERS[take(b, sizeof BREAKERS - 1)];
  pw[n] = '\0';
  const char *t = templates[take(b, sizeof templates / sizeof templates[0])];
  bool encode = take(b, 2);
  size_t k = 0;
  for (const char *p = t; *p; p++) {
    if (p[0] == '%' && p[1] == 'P') { put_password(out, &k, pw, encode); p++; }
    else out[k++] = *p;
  }
  out[k] = '\0';
}

static int hexval(char c) {
  const char *d = strchr("0123456789abcdef", c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
  return c && d ? (int)(d - "0123456789abcdef") : -1;
}

static void decode(const char *s, char *out) {
  size_t k = 0;
  for (; *s; s++) {
    if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
      out[k++] = (char)(hexval(s[1]) * 16 + hexval(s[2]));
      s += 2;
    } else {
      out[k++] = *s;
    }
  }
  out[k] = '\0';
}

/* Aborts when out shows four letters in a row of pw. */
static void check_hidden(const char *url, const char *pw, const char *out) {
  char plain[2048];
  decode(out, plain);
  for (const char *p = pw; p[0] && p[1] && p[2] && p[3]; p++) {
    if (strspn(p, LETTERS) < 4) continue;
    char four[5] = { p[0], p[1], p[2], p[3], '\0' };
    if (strstr(out, four) || strstr(plain, four)) {
      fprintf(stderr, "fuzz: part of the password shown\n  input:    %s\n  password: %s\n"
              "  redacted: %s\n  shown:    %s\n", url, pw, out, four);
      abort();
    }
  }
}

typedef struct job { const char *url, *pw; } job;

static int redact(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  luamig_push_redacted(L, j->url);
  if (j->pw) check_hidden(j->url, j->pw, lua_tostring(L, -1));
  else check_masked(j->url, lua_tostring(L, -1));
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
  job raw = { url, NULL };
  fuzz_pcall(L, redact, &raw);
  char built[1024], pw[32];
  bytes b = { data, size };
  build(&b, built, pw);
  job known = { built, pw };
  fuzz_pcall(L, redact, &known);
  fuzz_pcall(L, dotenv, path);
  if (lua_gettop(L) != 0) abort();
  lua_gc(L, LUA_GCCOLLECT);          /* as many frees as mallocs: no leak check */
  free(url);
  return 0;
}

/*
 * redact.c: connection strings with their passwords masked, for every message,
 * JSON document and API result that shows one. libpq's own parser
 * (PQconninfoParse, what libpq connects with) decides what a string means:
 * each password is replaced by "***" in place, so the string keeps the form
 * its owner wrote, and the result is kept only when libpq reads it back as
 * the same settings with every password "***". A string libpq cannot read,
 * or whose password it would read only in part (an unencoded '@' or '/' in
 * it leaves the rest in the host, port or database name), is "(not shown)".
 */
#include <stdlib.h>
#include <string.h>

#include "luamig.h"

#define NOT_SHOWN "(not shown)"

/* A growing C string: the masked text is built and checked before any of it
 * reaches a Lua buffer (which may raise), so nothing leaks. */
typedef struct text {
  char *p;
  size_t n, cap;
  bool failed;                       /* out of memory: nothing is shown */
} text;

static void add(text *t, const char *s, size_t n) {
  if (t->failed) return;
  if (t->n + n + 1 > t->cap) {
    size_t cap = (t->n + n + 1) * 2;
    char *p = realloc(t->p, cap);
    if (p == NULL) { t->failed = true; return; }
    t->p = p;
    t->cap = cap;
  }
  memcpy(t->p + t->n, s, n);
  t->n += n;
  t->p[t->n] = '\0';
}

static void adds(text *t, const char *s) { add(t, s, strlen(s)); }

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A secret parameter? The key is compared percent-decoded, as libpq reads it. */
static bool secret_key(const char *key, size_t len, bool encoded) {
  char k[16];
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = key[i];
    if (encoded && ch == '%' && i + 2 < len && hexval(key[i + 1]) >= 0 &&
        hexval(key[i + 2]) >= 0) {
      ch = (char)(hexval(key[i + 1]) * 16 + hexval(key[i + 2]));
      i += 2;
    }
    if (n == sizeof k - 1) return false;
    k[n++] = ch;
  }
  k[n] = '\0';
  return strcmp(k, "password") == 0 || strcmp(k, "sslpassword") == 0;
}

/* postgresql://user:secret@host/db?password=secret&... */
static void mask_uri(text *t, const char *url) {
  const char *p = strstr(url, "://") + 3;
  const char *at = p + strcspn(p, "@/");   /* libpq's own scan for the credentials */
  if (*at == '@') {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon != NULL) {
      add(t, url, (size_t)(colon + 1 - url));
      adds(t, "***");
      url = at;
    }
  }
  const char *q = strchr(url, '?');
  if (q == NULL) { adds(t, url); return; }
  add(t, url, (size_t)(q + 1 - url));
  for (p = q + 1; *p; ) {
    size_t len = strcspn(p, "&");
    const char *eq = memchr(p, '=', len);
    if (eq && secret_key(p, (size_t)(eq - p), true)) {
      add(t, p, (size_t)(eq + 1 - p));
      adds(t, "***");
    } else {
      add(t, p, len);
    }
    p += len;
    if (*p == '&') { adds(t, "&"); p++; }
  }
}

/* host=x password='se cret' dbname=y: libpq's key = value syntax. */
static void mask_conninfo(text *t, const char *s) {
  const char *p = s;
  while (*p) {
    while (luamig_is_space(*p)) p++;
    const char *key = p;
    while (*p && *p != '=' && !luamig_is_space(*p)) p++;
    size_t keylen = (size_t)(p - key);
    while (luamig_is_space(*p)) p++;
    if (*p != '=') break;            /* malformed: libpq refused it already */
    p++;
    while (luamig_is_space(*p)) p++;
    const char *val = p;
    if (*p == '\'') {
      for (p++; *p && *p != '\''; p++)
        if (*p == '\\' && p[1]) p++;
      if (*p) p++;
    } else {
      for (; *p && !luamig_is_space(*p); p++)
        if (*p == '\\' && p[1]) p++;
    }
    if (secret_key(key, keylen, false)) {
      add(t, s, (size_t)(val - s));
      adds(t, "***");
      s = p;
    }
  }
  adds(t, s);
}

static bool is_uri(const char *s) {
  return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/* Whether the masked text out reads as the settings of in, every password "***". */
static bool same_settings(const PQconninfoOption *in, const char *out) {
  char *err = NULL;
  PQconninfoOption *o = PQconninfoParse(out, &err), *first = o;
  PQfreemem(err);
  bool same = o != NULL;
  for (; same && in->keyword; in++, o++) {
    const char *a = in->val, *b = o->val;
    if (o->keyword == NULL || strcmp(in->keyword, o->keyword) != 0) same = false;
    else if (a == NULL || b == NULL) same = a == b;
    else if (secret_key(in->keyword, strlen(in->keyword), false))
      same = strcmp(b, "***") == 0 || (*a == '\0' && *b == '\0');
    else same = strcmp(a, b) == 0;
  }
  PQconninfoFree(first);
  return same;
}

/* Whether libpq's reading of the URI could hold a part of a password outside
 * the password: a second '@' (the first ended the credentials), an '@' after
 * a '/' (no credentials then: "user:pa/ss@host" is host "user", port "pa"),
 * or a port that is not a number. */
static bool ambiguous_uri(const char *url, const PQconninfoOption *o) {
  const char *p = strstr(url, "://") + 3;
  const char *stop = p + strcspn(p, "@/");
  const char *rest = *stop == '@' ? stop + 1 : p;
  if (memchr(rest, '@', strcspn(rest, "?")) != NULL) return true;
  for (; o->keyword; o++)
    if (strcmp(o->keyword, "port") == 0 && o->val && o->val[strspn(o->val, "0123456789,")])
      return true;
  return false;
}

void luamig_add_setting(luaL_Buffer *b, const char *key, const char *value) {
  luaL_addstring(b, key);
  luaL_addstring(b, "='");
  for (; *value; value++) {
    if (*value == '\\' || *value == '\'') luaL_addchar(b, '\\');
    luaL_addchar(b, *value);
  }
  luaL_addstring(b, "' ");
}

bool luamig_is_conninfo(const char *s) {
  return is_uri(s) || strchr(s, '=') != NULL;
}

/* The masked text of url (malloc'd), or NULL when it is not to be shown. */
static char *masked(const char *url) {
  if (!luamig_is_conninfo(url))      /* libpq takes it for a database name */
    return strpbrk(url, ":@") ? NULL : strdup(url);
  char *err = NULL;
  PQconninfoOption *in = PQconninfoParse(url, &err);
  PQfreemem(err);
  text t = { NULL, 0, 0, false };
  if (in != NULL && !(is_uri(url) && ambiguous_uri(url, in))) {
    if (is_uri(url)) mask_uri(&t, url);
    else mask_conninfo(&t, url);
  }
  if (t.p != NULL && (t.failed || !same_settings(in, t.p))) {
    free(t.p);
    t.p = NULL;
  }
  PQconninfoFree(in);
  return t.p;
}

bool luamig_push_redacted(lua_State *L, const char *url) {
  if (url == NULL) { lua_pushliteral(L, ""); return true; }
  void **out = luamig_push_owned(L, free);
  *out = masked(url);                /* raises nothing */
  bool shown = *out != NULL;
  lua_pushstring(L, shown ? *out : NOT_SHOWN);
  luamig_owned_free(out);
  lua_remove(L, -2);
  return shown;
}

/*
 * quote.c: identifiers and literals as PostgreSQL reads them, for every
 * statement luamig writes (pure: no connection).
 *
 * Identifiers are always quoted ("users", not users), by luamig_add_ident and
 * nothing else: a name reaches the catalog exactly as written (case, spaces,
 * keywords, unicode), no keyword list has to track the server's grammar, and a
 * name over 63 bytes is an error instead of the server's silent truncation.
 * Values go as parameters; a literal is for what takes none (SET, COMMENT,
 * enum labels) and for the offline script.
 */
#include <string.h>

#include "luamig.h"

/* luamig_op_error, or a plain luaL_error when there is no op (what == NULL). */
static int fail(lua_State *L, const char *what, const char *fmt, const char *a, int n) {
  if (what != NULL) return luamig_op_error(L, what, fmt, a, n);
  return luaL_error(L, fmt, a, n);
}

static void add_quoted(luaL_Buffer *b, const char *s, size_t len, char q) {
  luaL_addchar(b, q);
  for (size_t i = 0; i < len; i++) {
    if (s[i] == q) luaL_addchar(b, q);
    luaL_addchar(b, s[i]);
  }
  luaL_addchar(b, q);
}

void luamig_add_ident(lua_State *L, luaL_Buffer *b, const char *what, const char *label,
                      const char *s, size_t len) {
  if (len == 0)
    fail(L, what, what ? "empty identifier (%s)" : "empty identifier", label, 0);
  if (strlen(s) < len)
    fail(L, what, "%s contains a NUL byte", label, 0);
  if (len > LUAMIG_MAX_IDENT)
    fail(L, what, "identifier \"%s\" is longer than %d bytes",
         lua_pushlstring(L, s, len), LUAMIG_MAX_IDENT);
  add_quoted(b, s, len, '"');
}

void luamig_quote_ident(lua_State *L, luaL_Buffer *b, const char *name) {
  luamig_add_ident(L, b, NULL, "identifier", name, strlen(name));
}

void luamig_quote_qualified(lua_State *L, luaL_Buffer *b, const char *schema,
                            const char *name) {
  if (schema != NULL) {
    luamig_quote_ident(L, b, schema);
    luaL_addchar(b, '.');
  }
  luamig_quote_ident(L, b, name);
}

/* '...' with ' doubled; a string with a backslash is written E'...' with \
 * doubled too, so it reads the same whatever standard_conforming_strings is. */
void luamig_quote_literal(luaL_Buffer *b, const char *s) {
  if (strchr(s, '\\') == NULL) {
    add_quoted(b, s, strlen(s), '\'');
    return;
  }
  luaL_addstring(b, "E'");
  for (; *s; s++) {
    if (*s == '\'' || *s == '\\') luaL_addchar(b, *s);
    luaL_addchar(b, *s);
  }
  luaL_addchar(b, '\'');
}

const char *luamig_push_oneline(lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, len);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    p[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
  }
  luaL_pushresultsize(&b, len);
  return lua_tostring(L, -1);
}

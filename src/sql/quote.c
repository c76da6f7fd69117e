/*
 * quote.c: identifiers and literals as PostgreSQL reads them, for every
 * statement luamig writes (pure: no connection).
 *
 * Identifiers are always quoted ("users", not users), by luamig_add_ident and
 * nothing else: a name reaches the catalog exactly as written (case, spaces,
 * keywords, unicode), and a name over 63 bytes is an error instead of the
 * server's silent truncation. Only SQL meant to be read (the revisions
 * autogenerate writes, through core.quote_ident) leaves a name bare where
 * luamig_ident_is_plain says PostgreSQL reads it back unchanged.
 * Values go as parameters; a literal is for what takes none (SET, COMMENT,
 * enum labels) and for the offline script.
 */
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "sql.h"

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

/* PostgreSQL's reserved words and those that cannot name a column: a name that is
 * one needs quotes even where a plain name may go bare. Sorted, for bsearch. */
static const char *const reserved[] = {
  "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
  "authorization", "binary", "both", "case", "cast", "check", "collate", "collation", "column",
  "concurrently", "constraint", "create", "cross", "current_catalog", "current_date",
  "current_role", "current_schema", "current_time", "current_timestamp", "current_user",
  "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false", "fetch",
  "for", "foreign", "freeze", "from", "full", "grant", "group", "having", "ilike", "in",
  "initially", "inner", "intersect", "into", "is", "isnull", "join", "lateral", "leading", "left",
  "like", "limit", "localtime", "localtimestamp", "natural", "not", "notnull", "null", "offset",
  "on", "only", "or", "order", "outer", "overlaps", "placing", "primary", "references",
  "returning", "right", "select", "session_user", "similar", "some", "symmetric", "system_user",
  "table", "tablesample", "then", "to", "trailing", "true", "union", "unique", "user", "using",
  "variadic", "verbose", "when", "where", "window", "with"
};

static int compare_word(const void *key, const void *elem) {
  return strcmp(key, *(const char *const *)elem);
}

bool luamig_ident_is_plain(const char *s, size_t len) {
  if (len == 0 || len > LUAMIG_MAX_IDENT || !((*s >= 'a' && *s <= 'z') || *s == '_')) return false;
  for (size_t i = 1; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$')) return false;
  }
  char word[LUAMIG_MAX_IDENT + 1];
  memcpy(word, s, len);
  word[len] = '\0';
  return bsearch(word, reserved, sizeof reserved / sizeof reserved[0], sizeof reserved[0],
                 compare_word) == NULL;
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

/*
 * sql_lex.c: the one scanner of SQL text, in C and, through core.sql_tokens, in
 * Lua (lua/luamig/sqltext.lua). It splits text into lexemes as PostgreSQL's
 * scanner does where it matters to luamig: quoted strings ('..', E'..' with
 * backslash escapes, $tag$..$tag$), quoted names, comments (/ * nested * / and
 * --), words, parameters ($1), numbers and operators. On top of it: the offline
 * form of a parameterized statement, where a ';' may go, the statements of a
 * text (with psql's rule for CREATE FUNCTION ... BEGIN ATOMIC bodies) and what
 * a transactional revision must not run. Pure: no Lua state but for the errors
 * of luamig_sql_inline and the tokens it pushes for Lua.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "luamig.h"
#include "sql.h"

enum { LEX_CHAR, LEX_WORD, LEX_STRING, LEX_NAME, LEX_COMMENT, LEX_PARAM, LEX_NUMBER, LEX_OP };

typedef struct lexeme {
  const char *start, *end;
  int kind;
  bool open;                         /* a quote or comment still open at the end of the text */
} lexeme;

static bool ident_char(unsigned char c) {
  return c == '_' || c == '$' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
      || (c >= '0' && c <= '9');
}

/* Past the quoted text starting at p (at the opening q); backslash escapes when
 * esc. *open is set when the text ends first. */
static const char *skip_quoted(const char *p, char q, bool esc, bool *open) {
  for (p++; *p; p++) {
    if (esc && *p == '\\' && p[1]) p++;
    else if (*p == q) {
      if (p[1] != q) return p + 1;
      p++;
    }
  }
  *open = true;
  return p;
}

/* Past a dollar-quoted string at p ("$tag$...$tag$"), or NULL when p starts no tag. */
static const char *skip_dollar(const char *p, bool *open) {
  const char *t = p + 1;
  if (*t >= '0' && *t <= '9') return NULL;
  while (*t != '$' && *t && ident_char((unsigned char)*t)) t++;
  if (*t != '$') return NULL;
  size_t taglen = (size_t)(t - p) + 1;
  for (const char *q = t + 1; *q; q++)
    if (*q == '$' && strncmp(q, p, taglen) == 0) return q + taglen;
  *open = true;
  return p + strlen(p);
}

static bool digit(char c) { return c >= '0' && c <= '9'; }

static bool op_char(char c) { return c && strchr("+-*/<>=~!@#%^&|`?", c) != NULL; }

/* Past the number at p: 12, 1.5, .5, 1e-3 (a digit, or '.' and a digit, at p). */
static const char *skip_number(const char *p) {
  while (digit(*p)) p++;
  if (*p == '.' && p[1] != '.') for (p++; digit(*p); p++) {}
  if ((*p == 'e' || *p == 'E') && (digit(p[1]) || ((p[1] == '+' || p[1] == '-') && digit(p[2]))))
    for (p += 2; digit(*p); p++) {}
  return p;
}

/* Past the operator at p, by PostgreSQL's rule: no "--" or "/ *" inside (a comment
 * starts there), and a trailing + or - only after one of ~!@#%^&|`? ("=-1" is "=",
 * then "-1"). */
static const char *skip_operator(const char *p) {
  const char *end = p;
  while (op_char(*end) && (end == p || !((end[0] == '-' && end[1] == '-')
                                         || (end[0] == '/' && end[1] == '*'))))
    end++;
  bool special = false;
  for (const char *q = p; q < end; q++) special = special || strchr("~!@#%^&|`?", *q);
  while (end - p > 1 && !special && (end[-1] == '+' || end[-1] == '-')) end--;
  return end;
}

/* The lexeme at p (not at the end of the text): quoted text, a comment, a
 * dollar-quoted string, a word, a parameter ($1), a number, an operator (or
 * "::"), or one character. */
static const char *lex(const char *p, lexeme *x) {
  unsigned char c = (unsigned char)*p;
  *x = (lexeme){ p, p + 1, LEX_CHAR, false };
  if (c == '\'' || c == '"') {
    x->kind = c == '"' ? LEX_NAME : LEX_STRING;
    x->end = skip_quoted(p, (char)c, false, &x->open);
  } else if (c == '-' && p[1] == '-') {
    x->kind = LEX_COMMENT;
    x->end = p + strcspn(p, "\n");
    x->open = *x->end == '\0';
  } else if (c == '/' && p[1] == '*') {   /* comments nest in PostgreSQL */
    int depth = 0;
    do {
      if (p[0] == '/' && p[1] == '*') { depth++; p += 2; }
      else if (p[0] == '*' && p[1] == '/') { depth--; p += 2; }
      else p++;
    } while (*p && depth > 0);
    *x = (lexeme){ x->start, p, LEX_COMMENT, depth > 0 };
  } else if (c == '$' && p[1] >= '0' && p[1] <= '9') {
    x->kind = LEX_PARAM;
    for (x->end = p + 1; *x->end >= '0' && *x->end <= '9'; x->end++) {}
  } else if (c == '$') {
    const char *end = skip_dollar(p, &x->open);
    if (end) *x = (lexeme){ x->start, end, LEX_STRING, x->open };
  } else if (digit((char)c) || (c == '.' && digit(p[1]))) {
    x->kind = LEX_NUMBER;
    x->end = skip_number(p);
  } else if (op_char((char)c)) {
    x->kind = LEX_OP;
    x->end = skip_operator(p);
  } else if (c == ':' && p[1] == ':') {
    x->kind = LEX_OP;
    x->end = p + 2;
  } else if (ident_char(c)) {        /* a word: "a$1" is a name, E'..' has escapes */
    const char *w = p;
    while (ident_char((unsigned char)*p)) p++;
    x->kind = LEX_WORD;
    x->end = p;
    if (p - w == 1 && (*w == 'E' || *w == 'e') && *p == '\'') {
      x->kind = LEX_STRING;
      x->end = skip_quoted(p, '\'', true, &x->open);
    }
  }
  return x->end;
}

static bool word_is(const lexeme *x, const char *w) {
  size_t n = (size_t)(x->end - x->start);
  return x->kind == LEX_WORD && strlen(w) == n && strncasecmp(x->start, w, n) == 0;
}

/* ---- offline parameters ---- */

void luamig_sql_inline(lua_State *L, luaL_Buffer *b, const char *sql, int nparams,
                       const char *const *params) {
  const char *copied = sql;
  lexeme x;
  for (const char *p = sql; *p; p = x.end) {
    if (lex(p, &x) && x.kind != LEX_PARAM) continue;
    long k = 0;
    for (const char *d = p + 1; d < x.end; d++)
      if (k < 100000) k = k * 10 + (*d - '0');
    if (k < 1 || k > nparams)
      luaL_error(L, "SQL refers to $%d but %d parameter(s) were given", (int)k, nparams);
    luaL_addlstring(b, copied, (size_t)(p - copied));
    if (params[k - 1] == NULL) luaL_addstring(b, "NULL");
    else luamig_quote_literal(b, params[k - 1]);
    copied = x.end;
  }
  luaL_addstring(b, copied);
}

bool luamig_sql_ends_in_comment(const char *sql) {
  lexeme x = { NULL, NULL, LEX_CHAR, false };
  for (const char *p = sql; *p; p = lex(p, &x)) {}
  return x.open && x.kind == LEX_COMMENT;
}

const char *luamig_sql_fragment_problem(const char *sql) {
  lexeme x;
  for (const char *p = sql; *p; p = x.end) {
    lex(p, &x);
    if (x.kind == LEX_CHAR && *p == ';')
      return "a ';' would end the statement (an option holds one SQL expression; "
             "op.execute runs more statements)";
    if (x.open && x.kind == LEX_COMMENT)
      return "a comment runs to its end and would swallow the rest of the statement";
    if (x.open)
      return "a quoted string or name is not closed";
  }
  return NULL;
}

/* ---- statements ---- */

/* One statement of a text: its first two words and whether it calls an
 * advisory unlock function (pg_advisory_unlock, _shared, _all). */
typedef struct statement {
  lexeme first, second;
  const char *unlock;                /* the function's name (as written), or NULL */
  size_t unlock_len;
  bool empty;                        /* only spaces, comments and ';' */
} statement;

/* Whether x names an advisory unlock function (words fold to lower case,
 * quoted names keep theirs). */
static bool is_unlock(const lexeme *x) {
  static const char fn[] = "pg_advisory_unlock";
  size_t n = sizeof fn - 1;
  if (x->kind == LEX_WORD)
    return (size_t)(x->end - x->start) >= n && strncasecmp(x->start, fn, n) == 0;
  return x->kind == LEX_NAME && (size_t)(x->end - x->start) >= n + 2
      && strncmp(x->start + 1, fn, n) == 0;
}

/* The statement starting at p, into st; returns where the next one starts.
 * A ';' ends it outside parentheses and outside the BEGIN ... END body of a
 * CREATE [OR REPLACE] FUNCTION|PROCEDURE (psql's heuristic, psqlscan.l). */
static const char *next_statement(const char *p, statement *st) {
  *st = (statement){ .empty = true };
  int words = 0, parens = 0, begins = 0;
  bool routine = false;
  lexeme x;
  for (; *p; p = x.end) {
    lex(p, &x);
    if (x.kind == LEX_COMMENT || (x.kind == LEX_CHAR && luamig_is_space(*p))) continue;
    if (x.kind == LEX_CHAR && *p == ';' && parens == 0 && begins == 0) return x.end;
    st->empty = false;
    if (x.kind == LEX_CHAR && *p == '(') parens++;
    if (x.kind == LEX_CHAR && *p == ')' && parens > 0) parens--;
    if (is_unlock(&x) && st->unlock == NULL) {
      st->unlock = x.start;
      st->unlock_len = (size_t)(x.end - x.start);
    }
    if (x.kind != LEX_WORD) { words += words < 2; continue; }
    if (words == 0) st->first = x;
    if (words == 1) st->second = x;
    /* CREATE [OR REPLACE] FUNCTION|PROCEDURE: BEGIN and CASE open what END closes */
    if (words <= 3 && (word_is(&x, "function") || word_is(&x, "procedure")))
      routine = word_is(&st->first, "create");
    if (routine && parens == 0 && word_is(&x, "begin")) begins++;
    else if (routine && parens == 0 && begins > 0 && word_is(&x, "case")) begins++;
    else if (routine && parens == 0 && begins > 0 && word_is(&x, "end")) begins--;
    words++;
  }
  return p;
}

int luamig_sql_count_statements(const char *sql) {
  int n = 0;
  statement st;
  for (const char *p = sql; *p; ) {
    p = next_statement(p, &st);
    n += !st.empty;
  }
  return n;
}

/* The statements that end or split a transaction, by their first words. */
static const struct { const char *first, *second, *shown; } txn_control[] = {
  { "begin", NULL, "BEGIN" }, { "start", "transaction", "START TRANSACTION" },
  { "commit", NULL, "COMMIT" }, { "end", NULL, "END" }, { "rollback", NULL, "ROLLBACK" },
  { "abort", NULL, "ABORT" }, { "savepoint", NULL, "SAVEPOINT" },
  { "release", NULL, "RELEASE" }, { "prepare", "transaction", "PREPARE TRANSACTION" },
};

const char *luamig_sql_txn_control(const char *sql, char *buf, size_t size) {
  statement st;
  for (const char *p = sql; *p; ) {
    p = next_statement(p, &st);
    if (st.unlock) {
      snprintf(buf, size, "%.*s", (int)st.unlock_len, st.unlock);
      return buf;
    }
    for (size_t i = 0; i < sizeof txn_control / sizeof txn_control[0]; i++) {
      if (!word_is(&st.first, txn_control[i].first)) continue;
      if (txn_control[i].second && !word_is(&st.second, txn_control[i].second)) continue;
      bool to = word_is(&st.first, "rollback") && word_is(&st.second, "to");
      snprintf(buf, size, "%s", to ? "ROLLBACK TO" : txn_control[i].shown);
      return buf;
    }
  }
  return NULL;
}

/* ---- tokens for Lua ---- */

/* Sets field key of the table at the top to s (len bytes); ASCII letters folded
 * to lower case when fold (PostgreSQL's rule for a bare word). */
static void set_text(lua_State *L, const char *key, const char *s, size_t len, bool fold) {
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, len);
  for (size_t i = 0; i < len; i++)
    p[i] = fold && s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
  luaL_pushresultsize(&b, len);
  lua_setfield(L, -2, key);
}

/* A quoted name's text: the quotes off, "" made one. */
static void set_name(lua_State *L, const lexeme *x) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *end = x->open ? x->end : x->end - 1;
  for (const char *p = x->start + 1; p < end; p++) {
    luaL_addchar(&b, *p);
    if (*p == '"' && p + 1 < end && p[1] == '"') p++;
  }
  luaL_pushresult(&b);
  lua_setfield(L, -2, "v");
}

int luamig_push_sql_tokens(lua_State *L, const char *sql) {
  static const char *const kinds[] = { NULL, "word", "str", "ident", NULL, "param", "num", "op" };
  lua_newtable(L);
  int n = 0;
  lexeme x;
  for (const char *p = sql; *p; p = x.end) {
    lex(p, &x);
    if (x.kind == LEX_COMMENT || (x.kind == LEX_CHAR && luamig_is_space(*p))) continue;
    size_t len = (size_t)(x.end - x.start);
    bool cast = x.kind == LEX_OP && len == 2 && p[0] == ':';
    lua_createtable(L, 0, 5);
    if (x.kind == LEX_CHAR || cast) set_text(L, "k", p, len, false);
    else set_text(L, "k", kinds[x.kind], strlen(kinds[x.kind]), false);
    if (x.kind == LEX_NAME) set_name(L, &x);
    else set_text(L, "v", p, len, x.kind == LEX_WORD);
    lua_pushinteger(L, p - sql + 1);
    lua_setfield(L, -2, "s");
    lua_pushinteger(L, x.end - sql);
    lua_setfield(L, -2, "e");
    if (x.open) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "open");
    }
    lua_rawseti(L, -2, ++n);
  }
  return n;
}

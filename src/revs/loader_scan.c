/*
 * loader_scan.c: a revision file's header, read without running the file.
 *
 * A scanner that follows Lua's tokens (no evaluation) over a file whose top
 * level holds only literal assignments and function definitions, and pushes
 * the header fields (revision, down_revision, message, branch_labels,
 * depends_on, transactional). Anything else makes the file "not plain": the
 * loader (loader.c) then runs it, so values and errors are Lua's own.
 */
#include <string.h>

#include "luamig.h"
#include "loader.h"

/* ---- the header scanner: Lua's tokens, no evaluation ---- */

enum { TK_EOF, TK_NAME, TK_STRING, TK_LONGSTRING, TK_NUMBER, TK_OTHER, TK_BAD };

typedef struct scan {
  const char *p, *end;               /* the rest of the file */
  int tk;                            /* current token: a TK_* or a punctuation char */
  const char *ts; size_t tl;         /* its text (a string's, without the quotes) */
  bool escaped;                      /* a TK_STRING with a backslash in it */
} scan;

static bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* At '[': the level of a long bracket ([[ is 1, [=[ is 2, ...), or 0. */
static size_t long_level(const char *p, const char *end) {
  size_t n = 1;
  while (p + n < end && p[n] == '=') n++;
  return p + n < end && p[n] == '[' ? n : 0;
}

/* Skips a long bracket of that level opening at p; NULL when it never closes. */
static const char *skip_long(const char *p, const char *end, size_t level) {
  for (p += level + 1; p < end; p++) {
    if (*p != ']') continue;
    size_t n = 1;
    while (p + n < end && p[n] == '=') n++;
    if (n == level && p + n < end && p[n] == ']') return p + n + 1;
  }
  return NULL;
}

/* Reads the next token into s->tk (TK_BAD for what Lua would refuse, or what
 * the scanner does not follow). */
static void next(scan *s) {
  const char *p = s->p, *e = s->end;
  for (;;) {                         /* blanks and comments */
    while (p < e && luamig_is_space(*p)) p++;
    if (e - p < 2 || p[0] != '-' || p[1] != '-') break;
    p += 2;
    size_t level = p < e && *p == '[' ? long_level(p, e) : 0;
    if (level) {
      p = skip_long(p, e, level);
      if (p == NULL) { s->tk = TK_BAD; return; }
    } else {
      while (p < e && *p != '\n' && *p != '\r') p++;
    }
  }
  s->ts = p;
  s->escaped = false;
  if (p == e) {
    s->tk = TK_EOF;
  } else if (is_alpha(*p)) {
    while (p < e && (is_alpha(*p) || is_digit(*p))) p++;
    s->tk = TK_NAME;
  } else if (is_digit(*p) || (*p == '.' && p + 1 < e && is_digit(p[1]))) {
    for (p++; p < e; p++) {          /* loosely, as Lua's read_numeral: checked when compiled */
      if ((*p == '+' || *p == '-') && strchr("eEpP", p[-1])) continue;
      if (!is_alpha(*p) && !is_digit(*p) && *p != '.') break;
    }
    s->tk = TK_NUMBER;
  } else if (*p == '"' || *p == '\'') {
    char q = *p++;
    s->ts = p;
    while (p < e && *p != q) {
      if (*p == '\n' || *p == '\r') { s->tk = TK_BAD; return; }
      if (*p == '\\') { s->escaped = true; p++; }
      p++;
    }
    if (p >= e) { s->tk = TK_BAD; return; }
    s->tl = (size_t)(p - s->ts);
    s->tk = TK_STRING;
    s->p = p + 1;
    return;
  } else if (*p == '[' && long_level(p, e)) {
    p = skip_long(p, e, long_level(p, e));
    s->tk = p ? TK_LONGSTRING : TK_BAD;
    if (p == NULL) return;
  } else if ((*p == '=' || *p == '.' || *p == ':') && p + 1 < e && p[1] == *p) {
    p += 2;                          /* == .. ... :: are not the '=' of an assignment */
    if (p < e && *p == '.') p++;
    s->tk = TK_OTHER;
  } else {                           /* punctuation: its own char, above every TK_* */
    unsigned char c = (unsigned char)*p++;
    s->tk = c < 0x21 || c > 0x7e ? TK_BAD : c;
  }
  s->tl = (size_t)(p - s->ts);
  s->p = p;
}

static bool is_name(const scan *s, const char *name) {
  return s->tk == TK_NAME && strncmp(s->ts, name, s->tl) == 0 && name[s->tl] == '\0';
}

/* Lua's reserved words: all lowercase, 2 to 8 letters. */
static bool is_keyword(const scan *s) {
  static const char *const keywords[] = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
    "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while", NULL
  };
  if (s->tl < 2 || s->tl > 8 || *s->ts < 'a' || *s->ts > 'w') return false;
  for (int i = 0; keywords[i]; i++)
    if (keywords[i][0] == *s->ts && is_name(s, keywords[i])) return true;
  return false;
}

/* A name that can be assigned: not a keyword, not _ENV. */
static bool is_plain_name(const scan *s) {
  return s->tk == TK_NAME && !is_keyword(s) && !is_name(s, "_ENV");
}

/* Skips a function's parameters and body, from '(' to its 'end': blocks open
 * with function, do (also of while and for), if and repeat, close with end
 * and until. */
static bool skip_function(scan *s) {
  if (s->tk != '(') return false;
  int depth = 1;
  while (depth > 0) {
    next(s);
    if (s->tk == TK_EOF || s->tk == TK_BAD) return false;
    if (s->tk != TK_NAME || s->tl < 2 || s->tl > 8) continue;
    if (is_name(s, "function") || is_name(s, "do") || is_name(s, "if") || is_name(s, "repeat"))
      depth++;
    else if (is_name(s, "end") || is_name(s, "until"))
      depth--;
  }
  next(s);
  return true;
}

/* A literal whose value nothing reads (any top-level name but the header's):
 * nil, booleans, numbers, strings, and table constructors of those. */
static bool skip_literal(scan *s, int depth) {
  if (s->tk == '-') {                /* only a number: -"x" or -{} would raise when run */
    next(s);
    if (s->tk != TK_NUMBER) return false;
  }
  if (s->tk == TK_STRING || s->tk == TK_LONGSTRING || s->tk == TK_NUMBER ||
      is_name(s, "nil") || is_name(s, "true") || is_name(s, "false")) {
    next(s);
    return true;
  }
  if (s->tk != '{' || depth > 32) return false;
  next(s);
  while (s->tk != '}') {
    if (is_plain_name(s)) {          /* name = value, or (a variable) not a literal */
      scan at = *s;
      next(&at);
      if (at.tk != '=') return false;
      next(&at);
      *s = at;
    }
    if (!skip_literal(s, depth + 1)) return false;
    if (s->tk == ',' || s->tk == ';') next(s);
    else if (s->tk != '}') return false;
  }
  next(s);
  return true;
}

/* Pushes the current TK_STRING's value; false (nothing pushed) for an escape
 * other than the common ones, which Lua's compiler is left to decode. */
static bool push_string(lua_State *L, scan *s) {
  if (s->tk != TK_STRING) return false;
  if (!s->escaped) {
    lua_pushlstring(L, s->ts, s->tl);
    next(s);
    return true;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *p = s->ts, *e = s->ts + s->tl; p < e; p++) {
    char c = *p;
    if (c == '\\') {
      const char *from = "nt\\\"'rabfv", *to = "\n\t\\\"'\r\a\b\f\v";
      const char *k = strchr(from, *++p);
      if (*p == '\0' || k == NULL) {
        luaL_pushresult(&b);
        lua_pop(L, 1);
        return false;
      }
      c = to[k - from];
    }
    luaL_addchar(&b, c);
  }
  luaL_pushresult(&b);
  next(s);
  return true;
}

/* Pushes a header value: a string, or for a list field also nil or
 * { "a", "b" }; transactional: nil, true or false. False when it is not one. */
static bool push_field(lua_State *L, scan *s, const char *field) {
  if (strcmp(field, "transactional") == 0) {
    if (!is_name(s, "nil") && !is_name(s, "true") && !is_name(s, "false")) return false;
    if (is_name(s, "nil")) lua_pushnil(L);
    else lua_pushboolean(L, is_name(s, "true"));
    next(s);
    return true;
  }
  if (strcmp(field, "revision") == 0) return push_string(L, s);
  if (is_name(s, "nil")) {
    lua_pushnil(L);
    next(s);
    return true;
  }
  if (strcmp(field, "message") == 0 || s->tk != '{') return push_string(L, s);
  lua_newtable(L);
  next(s);
  for (int n = 1; s->tk != '}'; n++) {
    if (!push_string(L, s)) { lua_pop(L, 1); return false; }
    lua_rawseti(L, -2, n);
    if (s->tk == ',' || s->tk == ';') next(s);
    else if (s->tk != '}') { lua_pop(L, 1); return false; }
  }
  next(s);
  return true;
}

static const char *const header_fields[] = {
  "revision", "down_revision", "message", "branch_labels", "depends_on", "transactional", NULL
};

/* Scans the text of a revision file into the table at tbl (its header
 * fields). True when the file is plain: only literal assignments and
 * function definitions at the top level, a revision id, and global
 * upgrade() and downgrade() functions. */
bool luamig_scan_header(lua_State *L, const char *text, size_t len, int tbl) {
  scan s = { text, text + len, TK_EOF, text, 0, false };
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) s.p += 3;  /* as luaL_loadfilex */
  if (s.p < s.end && *s.p == '#')
    while (s.p < s.end && *s.p != '\n') s.p++;
  bool up = false, down = false;
  next(&s);
  while (s.tk != TK_EOF) {
    if (s.tk == ';') {
      next(&s);
    } else if (is_name(&s, "function")) {  /* function name(...) ... end */
      next(&s);
      if (!is_plain_name(&s)) return false;
      for (int i = 0; header_fields[i]; i++)
        if (is_name(&s, header_fields[i])) return false;
      bool is_up = is_name(&s, "upgrade"), is_down = is_name(&s, "downgrade");
      next(&s);
      if (!skip_function(&s)) return false;
      up = up || is_up;
      down = down || is_down;
    } else if (is_name(&s, "local")) {     /* local function f(...) ... end, local x [= literal] */
      next(&s);
      bool fn = is_name(&s, "function");
      if (fn) next(&s);
      /* a local named like a global the loader reads would hide that global */
      if (!is_plain_name(&s) || is_name(&s, "upgrade") || is_name(&s, "downgrade")) return false;
      for (int i = 0; header_fields[i]; i++)
        if (is_name(&s, header_fields[i])) return false;
      next(&s);
      if (fn) {
        if (!skip_function(&s)) return false;
      } else {
        if (s.tk == '=') {
          next(&s);
          if (!skip_literal(&s, 0)) return false;
        }
      }
    } else if (is_plain_name(&s)) {        /* name = literal */
      const char *field = NULL;
      for (int i = 0; header_fields[i]; i++)
        if (is_name(&s, header_fields[i])) field = header_fields[i];
      if (is_name(&s, "upgrade") || is_name(&s, "downgrade")) return false;
      next(&s);
      if (s.tk != '=') return false;
      next(&s);
      if (field == NULL) {
        if (!skip_literal(&s, 0)) return false;
      } else {
        if (!push_field(L, &s, field)) return false;
        lua_setfield(L, tbl, field);
      }
    } else {
      return false;
    }
  }
  if (!up || !down) return false;
  lua_getfield(L, tbl, "revision");
  bool has_id = lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0;
  lua_pop(L, 1);
  return has_id;
}

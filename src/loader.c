/*
 * loader.c: revision files -> graph entries.
 *
 * Each file runs in an environment of its own whose reads fall through to a
 * table of the standard libraries (sandbox.c: print to stderr, no os.exit, a
 * time budget), so globals a revision sets never reach another file or the
 * host program. `op` is put into the environment only while the revision runs.
 *
 * Building the graph must not mean compiling every file: with 10,000
 * revisions that was most of the time of `history` and `heads`. A file whose
 * top level holds only literal assignments (revision = "...", down_revision =
 * { "a", "b" }, message, branch_labels, depends_on, transactional = false, and
 * any other name = literal) and function definitions is read by a scanner that
 * follows Lua's tokens without running anything; its chunk is compiled and
 * run later, by luamig_load_body, only when a command is about to run it.
 * Running such a chunk has no effect but defining those names, so nothing is
 * lost by waiting. Any other top-level statement (a call, a computed value,
 * an escape the scanner does not decode, a file that does not scan) falls
 * back to running the file at once, as before, so the values and the error
 * messages are those of Lua itself.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luamig.h"

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Pushes a sorted array of the *.lua file names in dir (raises if unreadable). */
static int list_lua_files(lua_State *L, const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return luaL_error(L, "cannot read versions directory '%s'", dir);
  lua_newtable(L);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0)
      continue;
    lua_pushstring(L, e->d_name);    /* cannot leak d: memory errors are the only raise */
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  /* sort through a C array of pointers into the anchored strings */
  const char **names = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *names, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    names[i] = lua_tostring(L, -1);
    lua_pop(L, 1);                   /* still referenced by the array */
  }
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  lua_newtable(L);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
  return n;
}

/* ---- the header scanner: Lua's tokens, no evaluation ---- */

enum { TK_EOF, TK_NAME, TK_STRING, TK_LONGSTRING, TK_NUMBER, TK_OTHER, TK_BAD };

typedef struct scan {
  const char *p, *end;               /* the rest of the file */
  int tk;                            /* current token: a TK_* or a punctuation char */
  const char *ts; size_t tl;         /* its text (a string's, without the quotes) */
  bool escaped;                      /* a TK_STRING with a backslash in it */
} scan;

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
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
    while (p < e && is_space(*p)) p++;
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
static bool scan_header(lua_State *L, const char *text, size_t len, int tbl) {
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

/* ---- revision files ---- */

/* Pushes the buffer files are read into: one per state, kept in the registry,
 * as large as the largest file read so far. */
static int push_filebuf(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, "luamig.filebuf") != LUA_TUSERDATA) {
    lua_pop(L, 1);
    lua_newuserdatauv(L, 16384, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "luamig.filebuf");
  }
  return lua_gettop(L);
}

/* Replaces the buffer at buf (and the registry's) by one of size bytes. */
static void grow_filebuf(lua_State *L, int buf, size_t size) {
  lua_newuserdatauv(L, size, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "luamig.filebuf");
  lua_replace(L, buf);
}

/* Whether fd is a regular file: a FIFO or a device named *.lua would be read
 * for ever (opened with O_NONBLOCK, so a FIFO's open does not wait either). */
static bool is_regular(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads path whole into the buffer at buf (replaced by a larger one when
 * needed); returns the text, or NULL when it cannot be read (then Lua's own
 * loader reports why). The descriptor is closed before anything can raise. */
static const char *read_file(lua_State *L, int buf, const char *path, size_t *len) {
  for (;;) {
    char *data = lua_touserdata(L, buf);
    size_t cap = lua_rawlen(L, buf), n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return NULL;
    if (!is_regular(fd)) {
      close(fd);
      luaL_error(L, "%s: not a regular file (a FIFO, a device or a directory named *.lua); "
                 "luamig reads only regular files in the versions directories", path);
    }
    ssize_t got = 0;
    while (n < cap && (got = read(fd, data + n, cap - n)) > 0) n += (size_t)got;
    close(fd);
    if (got < 0) return NULL;
    if (n < cap) { *len = n; return data; }
    grow_filebuf(L, buf, cap * 2);   /* full: maybe more to come */
  }
}

/* Compiles path as luaL_loadfilex(L, path, "t") does, from its text when it
 * was read (NULL: let Lua open it): chunk name "@path", a UTF-8 BOM and a first
 * line starting with '#' skipped, that line's newline kept so line numbers hold. */
static void load_chunk(lua_State *L, const char *path, const char *text, size_t len) {
  int status;
  if (text == NULL) {
    status = luaL_loadfilex(L, path, "t");
  } else {
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { text += 3; len -= 3; }
    if (len > 0 && *text == '#')
      while (len > 0 && *text != '\n') { text++; len--; }
    const char *name = lua_pushfstring(L, "@%s", path);
    status = luaL_loadbufferx(L, text, len, name, "t");
    lua_remove(L, -2);
  }
  if (status != LUA_OK) {            /* "path:line: message", path whole */
    luamig_error_path(L, path);
    lua_error(L);
  }
}

/* Compiles (as load_chunk) and runs path in a fresh environment; pushes the
 * environment. Raises "path:line: message" on a syntax or runtime error. */
static int run_file(lua_State *L, const char *path, const char *text, size_t len) {
  load_chunk(L, path, text, len);
  lua_newtable(L);                   /* the file's environment */
  lua_newtable(L);
  luamig_push_sandbox(L);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  int env = lua_gettop(L);
  lua_pushvalue(L, env);
  lua_setupvalue(L, env - 1, 1);     /* _ENV of the main chunk */
  lua_pushvalue(L, env - 1);
  if (luamig_revision_pcall(L, 0, 0, path, "the file") != LUA_OK) lua_error(L);
  lua_remove(L, env - 1);
  return lua_gettop(L);
}

/* Reads one field of the table at idx as an optional string. */
static const char *opt_string_field(lua_State *L, int idx, const char *field,
                                    const char *path) {
  int t = lua_getfield(L, idx, field);
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_error(L, "%s: '%s' must be a string, not %s", path, field, lua_typename(L, t));
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);                     /* the table keeps the string alive */
  return s;
}

static void check_functions(lua_State *L, int env, const char *path, const char *id) {
  static const char *const fns[] = { "upgrade", "downgrade" };
  for (int i = 0; i < 2; i++) {
    lua_pushstring(L, fns[i]);
    if (lua_rawget(L, env) != LUA_TFUNCTION)
      luaL_error(L, "%s: revision %s has no %s() function", path, id, fns[i]);
    lua_pop(L, 1);
  }
}

/* Adds the revision whose header fields are in the table at hdr: a scanned
 * header, or (env true) the environment the file ran in, kept as envs[i + 1]. */
static void add_revision(lua_State *L, luamig_graph *g, int gidx, int hdr, const char *path,
                         bool env) {
  const char *id = opt_string_field(L, hdr, "revision", path);
  if (id == NULL || *id == '\0')
    luaL_error(L, "%s: no 'revision' id set (add: revision = \"<12 hex digits>\")", path);
  lua_getfield(L, hdr, "revision");
  size_t idlen = lua_rawlen(L, -1);
  const char *problem = luamig_rev_id_problem(id, idlen);
  if (problem)
    luaL_error(L, "%s: revision id '%s' %s", path, luamig_push_oneline(L, id, idlen), problem);
  lua_pop(L, 1);
  if (env) check_functions(L, hdr, path, id);
  const char *message = opt_string_field(L, hdr, "message", path);
  luamig_rev *r = luamig_graph_add(L, g, id, path);
  if (message) r->message = luamig_graph_strdup(L, message);
  static const char *const lists[] = { "down_revision", "depends_on", "branch_labels" };
  char ***dst[] = { &r->down, &r->depends, &r->labels };
  int *cnt[] = { &r->ndown, &r->ndepends, &r->nlabels };
  for (int i = 0; i < 3; i++) {     /* a scanned list is known good: no message to build */
    const char *what = env ? lua_pushfstring(L, "%s: %s", path, lists[i]) : lists[i];
    lua_getfield(L, hdr, lists[i]);
    luamig_graph_strings(L, -1, what, dst[i], cnt[i]);
    lua_pop(L, env ? 2 : 1);
  }
  int t = lua_getfield(L, hdr, "transactional");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "%s: 'transactional' must be a boolean", path);
  r->transactional = t == LUA_TNIL || lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (env) {
    lua_getiuservalue(L, gidx, 1);
    lua_pushvalue(L, hdr);
    lua_rawseti(L, -2, g->n);        /* envs[i + 1] for revs[i] */
    lua_pop(L, 1);
  }
}

/* ---- reading ahead ----
 *
 * Opening and reading a small file costs the kernel more than scanning it
 * costs us (several microseconds each here: 1,000 files were most of a no-op
 * run). So a second thread reads the files of a directory, in order and at
 * most AHEAD files in front, into malloc'd buffers, and hashes them when the
 * command wants checksums, while this thread scans them and builds the graph.
 * The reader touches no Lua state: it only fills files[i] and counts. take()
 * copies a file into the state's file buffer and frees it at once, so a Lua
 * error never strands a buffer; the userdata's __close/__gc stops and joins
 * the reader and frees what it read ahead. */

#define AHEAD 64
#define BATCH 16                     /* a waiting thread is woken for this many files, not each */

typedef struct fetched {
  char *data;
  size_t len;
  bool ok;
  char sum[65];                      /* its SHA-256, when asked for ("" otherwise) */
} fetched;

typedef struct prefetch {
  pthread_t thread;
  bool running;                      /* the reader was started and not yet joined */
  int dirfd;
  const char **names;                /* anchored in the names table on the stack */
  int n, done, used;                 /* files; read by the reader; taken by the loader */
  int want_done, want_used;          /* what a waiting loader / reader waits for */
  bool stop, sums;
  fetched *files;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} prefetch;

/* Reads name (in dirfd) whole into a malloc'd buffer. */
static fetched slurp(int dirfd, const char *name) {
  fetched f = { NULL, 0, false, "" };
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return f;
  if (!is_regular(fd)) { close(fd); return f; }   /* read_file says why */
  size_t cap = 16384;
  f.data = malloc(cap);
  ssize_t got = 0;
  while (f.data != NULL && (got = read(fd, f.data + f.len, cap - f.len)) > 0) {
    f.len += (size_t)got;
    if (f.len == cap) {
      char *more = realloc(f.data, cap * 2);
      if (more == NULL) { free(f.data); f.data = NULL; break; }
      f.data = more;
      cap *= 2;
    }
  }
  close(fd);
  f.ok = f.data != NULL && got == 0;
  if (!f.ok) { free(f.data); f.data = NULL; f.len = 0; }
  return f;
}

static void *reader(void *arg) {
  prefetch *p = arg;
  for (int i = 0; i < p->n; i++) {
    pthread_mutex_lock(&p->mu);
    if (!p->stop && i >= p->used + AHEAD) {
      p->want_used = i - AHEAD + BATCH;
      while (!p->stop && i >= p->used + AHEAD) pthread_cond_wait(&p->cv, &p->mu);
    }
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (stop) break;
    fetched f = slurp(p->dirfd, p->names[i]);
    if (f.ok && p->sums) luamig_sha256_hex(f.data, f.len, f.sum);
    pthread_mutex_lock(&p->mu);
    p->files[i] = f;
    p->done = i + 1;
    if (p->done >= p->want_done || p->done == p->n) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  return NULL;
}

/* __close and __gc: stops and joins the reader, frees what is left. */
static int prefetch_close(lua_State *L) {
  prefetch *p = lua_touserdata(L, 1);
  if (p->running) {
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    p->running = false;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
  }
  for (int i = 0; p->files && i < p->n; i++) free(p->files[i].data);
  free(p->files);
  free(p->names);
  p->files = NULL;
  p->names = NULL;
  if (p->dirfd >= 0) close(p->dirfd);
  p->dirfd = -1;
  return 0;
}

void luamig_toclose(lua_State *L, const char *mt, lua_CFunction close) {
  if (luaL_newmetatable(L, mt)) {
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_toclose(L, -1);
}

/* Pushes a prefetcher of the n names of the array at idx (names in dir) in
 * a to-be-closed slot and starts its reader; without a descriptor or a
 * thread it reads nothing ahead and take() says so. */
static prefetch *prefetch_start(lua_State *L, const char *dir, int idx, int n, bool sums) {
  idx = lua_absindex(L, idx);
  prefetch *p = lua_newuserdatauv(L, sizeof *p, 1);
  memset(p, 0, sizeof *p);
  p->dirfd = -1;
  luamig_toclose(L, "luamig.prefetch", prefetch_close);
  lua_pushvalue(L, idx);
  lua_setiuservalue(L, -2, 1);       /* keeps the name strings alive */
  p->n = n;
  p->sums = sums;
  p->files = calloc((size_t)n + 1, sizeof *p->files);
  p->names = calloc((size_t)n + 1, sizeof *p->names);
  p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (p->files == NULL || p->names == NULL || p->dirfd < 0) return p;
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    p->names[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  if (pthread_mutex_init(&p->mu, NULL) != 0) return p;
  if (pthread_cond_init(&p->cv, NULL) != 0) { pthread_mutex_destroy(&p->mu); return p; }
  p->running = pthread_create(&p->thread, NULL, reader, p) == 0;
  if (!p->running) { pthread_cond_destroy(&p->cv); pthread_mutex_destroy(&p->mu); }
  return p;
}

/* File i (in order) into the buffer at buf, its SHA-256 into sum when the
 * reader took it; NULL when it was not read ahead or could not be read (the
 * caller reads it itself, or lets Lua say why). */
static const char *take(lua_State *L, prefetch *p, int i, int buf, size_t *len, char sum[65]) {
  if (!p->running) return NULL;
  pthread_mutex_lock(&p->mu);
  if (p->done <= i) {
    p->want_done = i + BATCH < p->n ? i + BATCH : p->n;
    while (p->done <= i) pthread_cond_wait(&p->cv, &p->mu);
  }
  fetched f = p->files[i];
  p->files[i].data = NULL;
  p->used = i + 1;
  if (p->used >= p->want_used) pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (!f.ok) return NULL;
  if (lua_rawlen(L, buf) <= f.len) grow_filebuf(L, buf, f.len * 2 + 1);  /* never full: as read_file */
  char *data = lua_touserdata(L, buf);
  memcpy(data, f.data, f.len);
  free(f.data);
  *len = f.len;
  memcpy(sum, f.sum, sizeof f.sum);
  return data;
}

/* Adds the revision in path: text (len bytes, with its SHA-256 in sum when
 * sums) when it was read ahead, else read here. */
static void load_file(lua_State *L, luamig_graph *g, int gidx, int buf, const char *path,
                      bool sums, const char *text, size_t len, char sum[65]) {
  int top = lua_gettop(L);
  if (text == NULL) text = read_file(L, buf, path, &len);
  if (sums && text && *sum == '\0') luamig_sha256_hex(text, len, sum);
  lua_createtable(L, 0, 4);
  if (text && scan_header(L, text, len, lua_gettop(L))) {
    add_revision(L, g, gidx, lua_gettop(L), path, false);
  } else {
    lua_pop(L, 1);
    add_revision(L, g, gidx, run_file(L, path, text, len), path, true);
  }
  memcpy(g->revs[g->n - 1].sum, sum, sizeof g->revs[g->n - 1].sum);
  lua_settop(L, top);
}

/* Pushes nothing and returns false when envs[rev + 1] is loaded; else reads
 * revs[rev]'s file and returns true with the file buffer pushed. */
static bool read_unloaded(lua_State *L, luamig_graph *g, int gidx, int rev,
                          const char **text, size_t *len) {
  lua_getiuservalue(L, gidx, 1);
  int loaded = lua_rawgeti(L, -1, rev + 1);
  lua_pop(L, 2);
  if (loaded != LUA_TNIL) return false;
  *text = read_file(L, push_filebuf(L), g->revs[rev].path, len);
  return true;
}

void luamig_check_body(lua_State *L, luamig_graph *g, int gidx, int rev) {
  gidx = lua_absindex(L, gidx);
  const char *text;
  size_t len = 0;
  if (g->revs[rev].checked || !read_unloaded(L, g, gidx, rev, &text, &len)) return;
  /* a scanned file's top level only defines names: if it compiles, it runs */
  load_chunk(L, g->revs[rev].path, text, len);
  lua_pop(L, 2);
}

void luamig_push_body(lua_State *L, luamig_graph *g, int gidx, int rev) {
  gidx = lua_absindex(L, gidx);
  const char *text;
  size_t len = 0;
  if (!read_unloaded(L, g, gidx, rev, &text, &len)) {
    lua_getiuservalue(L, gidx, 1);
    lua_rawgeti(L, -1, rev + 1);
    lua_remove(L, -2);
    return;
  }
  luamig_rev *r = &g->revs[rev];
  int env = run_file(L, r->path, text, len);
  const char *id = opt_string_field(L, env, "revision", r->path);
  if (id == NULL || strcmp(id, r->id) != 0)
    luaL_error(L, "%s: the file changed while luamig ran (revision %s is now '%s')",
               r->path, r->id, id ? id : "nil");
  check_functions(L, env, r->path, r->id);
  r->checked = true;
  lua_remove(L, env - 1);            /* the file buffer */
}

void luamig_load_body(lua_State *L, luamig_graph *g, int gidx, int rev) {
  gidx = lua_absindex(L, gidx);
  luamig_push_body(L, g, gidx, rev);
  lua_getiuservalue(L, gidx, 1);
  lua_insert(L, -2);
  lua_rawseti(L, -2, rev + 1);       /* envs[rev + 1] = env (again, when it was there) */
  lua_pop(L, 1);
}

luamig_graph *luamig_load_revisions(lua_State *L, int cfg_idx, bool sums, luamig_conn *pump) {
  cfg_idx = lua_absindex(L, cfg_idx);
  lua_getfield(L, cfg_idx, "revision_timeout");   /* the budget of each call into a revision */
  double limit = 0;
  if (lua_isstring(L, -1) && !luamig_parse_duration(lua_tostring(L, -1), &limit))
    luaL_error(L, "revision_timeout: bad duration '%s'", lua_tostring(L, -1));
  luamig_budget_limit(L, limit, lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
  lua_pop(L, 1);
  luamig_graph *g = luamig_graph_new(L);
  int gidx = lua_gettop(L);
  int buf = push_filebuf(L);
  lua_getfield(L, cfg_idx, "versions");
  int ndirs = (int)luaL_len(L, -1);
  for (int d = 1; d <= ndirs; d++) {
    lua_geti(L, -1, d);
    const char *dir = lua_tostring(L, -1);
    int n = list_lua_files(L, dir);
    prefetch *ahead = prefetch_start(L, dir, -1, n, sums);
    int slot = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
      lua_geti(L, -2, i);
      const char *path = lua_pushfstring(L, "%s/%s", dir, lua_tostring(L, -1));
      size_t len = 0;
      char sum[65] = "";
      const char *text = take(L, ahead, i - 1, buf, &len, sum);
      load_file(L, g, gidx, buf, path, sums, text, len, sum);
      if (i % 32 == 0) luamig_conn_pump(pump);
      lua_pop(L, 2);
    }
    lua_closeslot(L, slot);          /* joins the reader */
    lua_pop(L, 3);
  }
  lua_pop(L, 2);
  luamig_graph_link(L, g);
  return g;
}

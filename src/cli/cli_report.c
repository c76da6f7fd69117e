/*
 * cli_report.c: how the luamig command prints what the read-only commands
 * return (current, heads, history, show, branches, status, verify): the
 * lines Alembic users know, or --json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luamig.h"
#include "cli.h"

/* A revision's message on one line: its first line, control characters as
 * spaces (a message cannot move the cursor or break the line). */
static void print_first_line(const char *msg) {
  for (; msg && *msg && *msg != '\n' && *msg != '\r'; msg++)
    putchar((unsigned char)*msg < 0x20 || *msg == 0x7f ? ' ' : *msg);
}

/* Every line of the n bytes of text indented by four spaces (an empty line
 * stays empty), without the spaces, tabs and CR it ends with, other control
 * characters but tabs as spaces. */
static void print_indented(const char *text, size_t n) {
  for (const char *p = text, *end = text + n; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p), shown = len;
    while (shown > 0 && strchr("\r\t ", p[shown - 1])) shown--;
    if (shown > 0) fputs("    ", stdout);
    for (size_t i = 0; i < shown; i++) {
      unsigned char c = (unsigned char)p[i];
      putchar((c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char)c);
    }
    putchar('\n');
    p += len + (nl != NULL);
  }
}

/* Alembic's marks, in its order. A line (history, current, heads): " (head)"
 * or " (effective head)" (no child, but a revision depends on it), then
 * " (current)", and with tree " (branchpoint) (mergepoint)". An entry ("Rev:",
 * as in Alembic's log_entry): " (head)" for either kind of head, then
 * " (branchpoint) (mergepoint) (current)". */
enum { LINE, LINE_TREE, ENTRY };
static void print_marks(lua_State *L, int rev, int how) {
  static const struct { const char *field, *text; } line[] = {
    { "head", "head" }, { "effective_head", "effective head" }, { "current", "current" },
    { "branchpoint", "branchpoint" }, { "mergepoint", "mergepoint" } }, entry[] = {
    { "head", "head" }, { "branchpoint", "branchpoint" }, { "mergepoint", "mergepoint" },
    { "current", "current" } };
  int n = how == LINE ? 3 : how == LINE_TREE ? 5 : 4;
  for (int i = 0; i < n; i++) {
    const char *field = how == ENTRY ? entry[i].field : line[i].field;
    lua_getfield(L, rev, field);
    bool on = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (how == ENTRY && i == 0) {    /* Alembic's is_head: no child, dependents or not */
      lua_getfield(L, rev, "effective_head");
      on = on || lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
    if (on) printf(" (%s)", how == ENTRY ? entry[i].text : line[i].text);
  }
}

/* "a, b -> c (head) (current), message", as Alembic's history prints it. */
static void print_line(lua_State *L, int rev) {
  lua_getfield(L, rev, "down_revision");
  int n = (int)lua_rawlen(L, -1);
  if (n == 0) fputs("<base>", stdout);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    printf("%s%s", i > 1 ? ", " : "", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  printf(" -> %s", luamig_cli_field(L, rev, "revision"));
  print_marks(L, rev, LINE_TREE);
  fputs(", ", stdout);
  print_first_line(luamig_cli_field(L, rev, "message"));
  putchar('\n');
}

/* Prints "label a, b\n" for the strings of the list t[key]; nothing when it is empty. */
static void print_ids(lua_State *L, int t, const char *key, const char *label) {
  lua_getfield(L, t, key);
  int n = (int)lua_rawlen(L, -1);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    printf("%s%s%s", i > 1 ? ", " : label, lua_tostring(L, -1), i == n ? "\n" : "");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static bool is_set(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  bool b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

/* A revision in full, as Alembic's log_entry (history -v, show): "Rev:" and
 * its marks, "Parent:" (or "Merges:"), "Also depends on:", "Branches into:",
 * "Branch names:", "Path:", then its description indented: the comment the
 * file opens with (the template's message, Revision ID, Revises, Create Date),
 * or its message when it has none. */
static void print_entry(lua_State *L, int rev) {
  printf("Rev: %s", luamig_cli_field(L, rev, "revision"));
  print_marks(L, rev, ENTRY);
  lua_getfield(L, rev, "down_revision");
  bool base = lua_rawlen(L, -1) == 0;
  lua_pop(L, 1);
  if (base) printf("\nParent: <base>\n");
  else print_ids(L, rev, "down_revision",
                 is_set(L, rev, "mergepoint") ? "\nMerges: " : "\nParent: ");
  print_ids(L, rev, "depends_on", "Also depends on: ");
  if (is_set(L, rev, "branchpoint")) print_ids(L, rev, "children", "Branches into: ");
  print_ids(L, rev, "branches", "Branch names: ");
  printf("Path: %s\n", luamig_cli_field(L, rev, "path"));
  lua_getfield(L, rev, "transactional");
  if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) printf("Transactional: no\n");
  lua_pop(L, 1);
  const char *doc = luamig_cli_field(L, rev, "doc");
  size_t len = doc ? strlen(doc) : 0;
  while (len > 0 && (doc[len - 1] == '\n' || doc[len - 1] == '\r' || doc[len - 1] == ' ')) len--;
  if (len == 0) {
    doc = luamig_cli_field(L, rev, "message");
    len = doc ? strlen(doc) : 0;
  }
  putchar('\n');
  if (len > 0) print_indented(doc, len);
  else putchar('\n');
  putchar('\n');
}

/* --verbose: each revision in full; otherwise one line each. */
static int print_revisions(lua_State *L, int res, const char *key) {
  if (luamig_cli_json(L, key, res)) return 0;
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, res); i++) {
    lua_rawgeti(L, res, i);
    if (luamig_cli_flag(L, "verbose")) print_entry(L, lua_gettop(L));
    else print_line(L, lua_gettop(L));
    lua_settop(L, res);
  }
  return 0;
}

int luamig_cli_print_history(lua_State *L, int res) { return print_revisions(L, res, "history"); }

int luamig_cli_print_current(lua_State *L, int res) {
  if (luamig_cli_json(L, "current", res)) return 0;
  int n = (int)lua_rawlen(L, res);
  bool verbose = luamig_cli_flag(L, "verbose");
  if (verbose) printf("Current revision(s):%s\n", n ? "" : " none (nothing applied)");
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, res, i);
    int rev = lua_gettop(L);
    bool unknown = is_set(L, rev, "unknown");
    if (verbose && !unknown) {
      print_entry(L, rev);
    } else {
      printf("%s", luamig_cli_field(L, rev, "revision"));
      print_marks(L, rev, LINE_TREE);
      printf("%s\n", unknown ? " (unknown: no revision file has it)" : "");
    }
    lua_settop(L, res);
  }
  return 0;
}

/* heads: "3f2a9c1b7e4d (billing, core) (head)", as Alembic prints them: the
 * branch labels the head shows, then (head) or (effective head). */
int luamig_cli_print_heads(lua_State *L, int res) {
  if (luamig_cli_flag(L, "verbose") || luamig_cli.json) return print_revisions(L, res, "heads");
  int n = (int)lua_rawlen(L, res);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, res, i);
    printf("%s", luamig_cli_field(L, -1, "revision"));
    lua_getfield(L, -1, "branches");
    int nb = (int)lua_rawlen(L, -1);
    for (int k = 1; k <= nb; k++) {
      lua_rawgeti(L, -1, k);
      printf("%s%s%s", k == 1 ? " (" : ", ", lua_tostring(L, -1), k == nb ? ")" : "");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    print_marks(L, lua_gettop(L), LINE);
    printf("\n");
    lua_settop(L, res);
  }
  return 0;
}

/* status: exit 0 at head, 3 with revisions pending (for CI), 1 on error. */
int luamig_cli_print_status(lua_State *L, int res) {
  lua_getfield(L, res, "pending");
  bool pending = lua_rawlen(L, -1) > 0;
  lua_pop(L, 1);
  lua_pushboolean(L, !pending);
  lua_setfield(L, res, "up_to_date");
  if (luamig_cli_json(L, NULL, res)) return pending ? 3 : 0;
  lua_getfield(L, res, "current");
  int ncur = (int)lua_rawlen(L, -1);
  printf("Current: ");
  if (ncur == 0) printf("<base> (nothing applied)");
  for (int i = 1; i <= ncur; i++) {
    lua_rawgeti(L, -1, i);
    printf("%s%s", i > 1 ? ", " : "", luamig_cli_field(L, -1, "revision"));
    lua_pop(L, 1);
  }
  lua_getfield(L, res, "pending");
  int n = (int)lua_rawlen(L, -1);
  if (n == 0) {
    printf("\nUp to date: no pending revisions.\n");
    return 0;
  }
  printf("\nPending: %d revision%s\n", n, n == 1 ? "" : "s");
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    printf("  ");
    print_line(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  return 3;
}

/* show: each revision the target names, in full. */
int luamig_cli_print_show(lua_State *L, int res) {
  if (luamig_cli_json(L, "revisions", res)) return 0;
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, res); i++) {
    lua_rawgeti(L, res, i);
    print_entry(L, lua_gettop(L));
    lua_settop(L, res);
  }
  return 0;
}

/* branches: "a1b2 (branchpoint), message" then "    -> child" per child. */
int luamig_cli_print_branches(lua_State *L, int res) {
  if (luamig_cli_flag(L, "verbose") || luamig_cli.json) return print_revisions(L, res, "branches");
  int n = (int)lua_rawlen(L, res);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, res, i);
    int rev = lua_gettop(L);
    printf("%s (branchpoint), ", luamig_cli_field(L, rev, "revision"));
    print_first_line(luamig_cli_field(L, rev, "message"));
    putchar('\n');
    luamig_cli_print_list(L, rev, "children", "    -> ");
    lua_settop(L, res);
  }
  return 0;
}

/* Prints "<key>: ID: <text>" for each id of the list res[key]; returns how many. */
static int print_findings(lua_State *L, int res, const char *key, const char *text) {
  lua_getfield(L, res, key);
  int n = (int)lua_rawlen(L, -1);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    printf("%s: %s: %s\n", key, lua_tostring(L, -1), text);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n;
}

/* How many findings verify's result holds. */
static int count_findings(lua_State *L, int res) {
  static const char *const lists[] = { "changed", "missing", "ahead", "behind", "stale",
                                       "invalid_indexes" };
  lua_getfield(L, res, "log");
  int found = !lua_isnil(L, -1);
  lua_pop(L, 1);
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
    lua_getfield(L, res, lists[i]);
    found += (int)lua_rawlen(L, -1);
    lua_pop(L, 1);
  }
  return found;
}

/* verify: exit 0 when nothing is found (or without --strict), 1 with --strict
 * when anything is. */
int luamig_cli_print_verify(lua_State *L, int res) {
  int status = count_findings(L, res) > 0 && luamig_cli_flag(L, "strict") ? 1 : 0;
  if (luamig_cli_json(L, NULL, res)) return status;
  int found = 0;
  lua_getfield(L, res, "changed");
  for (int i = 1; i <= (int)lua_rawlen(L, -1); i++, found++) {
    lua_rawgeti(L, -1, i);
    printf("changed: %s (%s): the file was edited after it was applied\n",
           luamig_cli_field(L, -1, "revision"), luamig_cli_field(L, -1, "path"));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  found += print_findings(L, res, "missing",
                          "applied to the database, but no revision file has it");
  found += print_findings(L, res, "ahead", "applied per the version table, but the audit log never "
                          "recorded it (set by hand? 'luamig stamp' records such a change)");
  found += print_findings(L, res, "behind", "applied per the audit log, but the version table does "
                          "not say so (set back by hand?)");
  found += print_findings(L, res, "stale", "a version table row that another row builds on (left "
                          "behind by a hand edit?)");
  const char *log = luamig_cli_field(L, res, "log");
  if (log) { printf("no log: %s\n", log); found++; }
  lua_getfield(L, res, "invalid_indexes");
  for (int i = 1; i <= (int)lua_rawlen(L, -1); i++, found++) {
    lua_rawgeti(L, -1, i);
    printf("invalid index: %s: a failed CREATE INDEX CONCURRENTLY left it unusable (drop it with "
           "DROP INDEX CONCURRENTLY, then build it again)\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (found == 0) printf("OK: every applied revision matches its file.\n");
  return status;
}

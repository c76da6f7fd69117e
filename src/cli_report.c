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

/* Every line of text indented by four spaces (an empty line stays empty), a
 * CR before a newline dropped, other control characters but tabs as spaces. */
static void print_indented(const char *text) {
  for (const char *p = text; p && *p;) {
    size_t len = strcspn(p, "\n");
    size_t shown = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
    if (shown > 0) fputs("    ", stdout);
    for (size_t i = 0; i < shown; i++) {
      unsigned char c = (unsigned char)p[i];
      putchar((c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char)c);
    }
    putchar('\n');
    p += len + (p[len] == '\n');
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

static void print_verbose(lua_State *L, int rev) {
  printf("Rev: %s", luamig_cli_field(L, rev, "revision"));
  print_marks(L, rev, ENTRY);
  printf("\nParent: ");
  lua_getfield(L, rev, "down_revision");
  int n = (int)lua_rawlen(L, -1);
  if (n == 0) fputs("<base>", stdout);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    printf("%s%s", i > 1 ? ", " : "", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  printf("\nPath: %s\n\n", luamig_cli_field(L, rev, "path"));
  const char *msg = luamig_cli_field(L, rev, "message");
  if (msg && *msg) print_indented(msg);
  else putchar('\n');
  putchar('\n');
}

int luamig_cli_current(lua_State *L) {
  luamig_cli_at_most(L, 0, "current");
  luamig_cli_call(L, "current");
  if (luamig_cli_json(L, "current", lua_gettop(L))) return 0;
  int res = lua_gettop(L), n = (int)lua_rawlen(L, res);
  bool verbose = luamig_cli_flag(L, "verbose");
  if (verbose) printf("Current revision(s):%s\n", n ? "" : " none (nothing applied)");
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, res, i);
    int rev = lua_gettop(L);
    lua_getfield(L, rev, "unknown");
    bool unknown = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (verbose && !unknown) {
      print_verbose(L, rev);
    } else {
      printf("%s", luamig_cli_field(L, rev, "revision"));
      print_marks(L, rev, LINE_TREE);
      printf("%s\n", unknown ? " (unknown: no revision file has it)" : "");
    }
    lua_settop(L, res);
  }
  return 0;
}

static int list_revisions(lua_State *L, const char *core) {
  luamig_cli_call(L, core);
  if (luamig_cli_json(L, core, lua_gettop(L))) return 0;
  int res = lua_gettop(L), n = (int)lua_rawlen(L, res);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, res, i);
    if (luamig_cli_flag(L, "verbose")) print_verbose(L, lua_gettop(L));
    else print_line(L, lua_gettop(L));
    lua_settop(L, res);
  }
  return 0;
}

int luamig_cli_history(lua_State *L) {
  luamig_cli_at_most(L, 0, "history");
  /* (current) marks need the database: shown when a URL is configured, or asked for */
  if (!luamig_cli_flag(L, "indicate_current")) {
    lua_getfield(L, 1, "url");
    bool url = lua_isstring(L, -1) || getenv("DATABASE_URL") != NULL;
    lua_pop(L, 1);
    lua_pushboolean(L, url);
    lua_setfield(L, 1, "indicate_current");
  }
  return list_revisions(L, "history");
}

/* heads: "3f2a9c1b7e4d (billing, core) (head)", as Alembic prints them: the
 * branch labels the head shows, then (head) or (effective head). */
int luamig_cli_heads(lua_State *L) {
  luamig_cli_at_most(L, 0, "heads");
  if (luamig_cli_flag(L, "verbose") || luamig_cli.json) return list_revisions(L, "heads");
  luamig_cli_call(L, "heads");
  int res = lua_gettop(L), n = (int)lua_rawlen(L, res);
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
int luamig_cli_status(lua_State *L) {
  luamig_cli_at_most(L, 0, "status");
  luamig_cli_call(L, "status");
  int res = lua_gettop(L);
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

static void print_list_field(lua_State *L, int t, const char *k, const char *label) {
  lua_getfield(L, t, k);
  int n = (int)lua_rawlen(L, -1);
  if (n > 0) {
    printf("%s", label);
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      printf("%s%s", i > 1 ? ", " : "", lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    printf("\n");
  }
  lua_pop(L, 1);
}

int luamig_cli_show(lua_State *L) {
  luamig_cli_at_most(L, 1, "show");
  if (luamig_cli_nargs(L) == 1) {
    lua_pushstring(L, luamig_cli_arg(L, 1));
    lua_setfield(L, 1, "target");
  }
  luamig_cli_call(L, "show");
  int res = lua_gettop(L), n = (int)lua_rawlen(L, res);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, res, i);
    int rev = lua_gettop(L);
    printf("Rev: %s", luamig_cli_field(L, rev, "revision"));
    print_marks(L, rev, ENTRY);
    printf("\n");
    lua_getfield(L, rev, "down_revision");
    bool base = lua_rawlen(L, -1) == 0;
    lua_pop(L, 1);
    if (base) printf("Parent: <base>\n");
    else print_list_field(L, rev, "down_revision", "Parent: ");
    print_list_field(L, rev, "children", "Children: ");
    print_list_field(L, rev, "depends_on", "Depends on: ");
    print_list_field(L, rev, "branch_labels", "Branch names: ");
    printf("Path: %s\n", luamig_cli_field(L, rev, "path"));
    lua_getfield(L, rev, "transactional");
    if (!lua_toboolean(L, -1)) printf("Transactional: no\n");
    lua_pop(L, 1);
    const char *doc = luamig_cli_field(L, rev, "doc");
    if (doc && *doc) {
      printf("\n");
      print_indented(doc);
    }
    lua_settop(L, res);
  }
  return 0;
}

/* branches: "a1b2 (branchpoint)" then "    -> child (head), message". */
int luamig_cli_branches(lua_State *L) {
  luamig_cli_at_most(L, 0, "branches");
  if (luamig_cli_flag(L, "verbose")) {
    luamig_cli_call(L, "branches");
    int res = lua_gettop(L), n = (int)lua_rawlen(L, res);
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, res, i);
      print_verbose(L, lua_gettop(L));
      lua_settop(L, res);
    }
    return 0;
  }
  luamig_cli_call(L, "branches");
  int res = lua_gettop(L), n = (int)lua_rawlen(L, res);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, res, i);
    int rev = lua_gettop(L);
    printf("%s (branchpoint), ", luamig_cli_field(L, rev, "revision"));
    print_first_line(luamig_cli_field(L, rev, "message"));
    putchar('\n');
    lua_getfield(L, rev, "children");
    int nc = (int)lua_rawlen(L, -1);
    for (int k = 1; k <= nc; k++) {
      lua_rawgeti(L, -1, k);
      printf("    -> %s\n", lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    lua_settop(L, res);
  }
  return 0;
}

/* Prints "<label>: ID: <text>" for each id of the list res[key]; returns how many. */
static int print_ids(lua_State *L, int res, const char *key, const char *text) {
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

/* verify: exit 0 when nothing is found (or without --strict), 1 with --strict
 * when anything is. */
int luamig_cli_verify(lua_State *L) {
  luamig_cli_at_most(L, 0, "verify");
  luamig_cli_call(L, "verify");
  int res = lua_gettop(L), found = 0;
  if (luamig_cli_json(L, NULL, res)) {
    static const char *const lists[] = { "changed", "missing", "ahead", "behind", "stale",
                                         "invalid_indexes" };
    lua_getfield(L, res, "log");
    found = !lua_isnil(L, -1);
    lua_pop(L, 1);
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
      lua_getfield(L, res, lists[i]);
      found += (int)lua_rawlen(L, -1);
      lua_pop(L, 1);
    }
    return found > 0 && luamig_cli_flag(L, "strict") ? 1 : 0;
  }
  lua_getfield(L, res, "changed");
  for (int i = 1; i <= (int)lua_rawlen(L, -1); i++, found++) {
    lua_rawgeti(L, -1, i);
    printf("changed: %s (%s): the file was edited after it was applied\n",
           luamig_cli_field(L, -1, "revision"), luamig_cli_field(L, -1, "path"));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  found += print_ids(L, res, "missing", "applied to the database, but no revision file has it");
  found += print_ids(L, res, "ahead", "applied per the version table, but the audit log never "
                     "recorded it (set by hand? 'luamig stamp' records such a change)");
  found += print_ids(L, res, "behind", "applied per the audit log, but the version table does "
                     "not say so (set back by hand?)");
  found += print_ids(L, res, "stale", "a version table row that another row builds on (left "
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
  return found > 0 && luamig_cli_flag(L, "strict") ? 1 : 0;
}

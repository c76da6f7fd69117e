/*
 * luamig.h: the C core's shared interface.
 *
 * The same objects build the Lua module (luamig.core) and the luamig command.
 * Everything runs inside a lua_State: memory and handles are owned by Lua
 * userdata with __gc, so a function may raise (luaL_error) at any point
 * without leaking. Functions named luamig_* that take a lua_State may raise.
 */
#ifndef LUAMIG_H
#define LUAMIG_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>
#include <lauxlib.h>
#include <libpq-fe.h>

#define LUAMIG_VERSION "0.1.0"
#define LUAMIG_MAX_IDENT 63          /* PostgreSQL's NAMEDATALEN - 1 */
#define LUAMIG_REV_MAX 32            /* version_num varchar(32) */

/* ---- conn.c, conn_exec.c: libpq connections, statements, errors with SQLSTATE ---- */

#define LUAMIG_CONN_MT "luamig.conn"

#define LUAMIG_HELD_WARNINGS 16
#define LUAMIG_PREPARED 8            /* statements a connection keeps prepared (luamig_stmt.prepare) */

typedef struct luamig_conn luamig_conn;
struct luamig_conn {
  PGconn *pg;                        /* NULL once closed */
  PostgresPollingStatusType polling; /* the handshake: OK once connected */
  double deadline;                   /* of the handshake (monotonic ms; 0: none) */
  bool hold_warnings;                /* keep server WARNINGs for luamig_conn_warnings */
  int failed_at;                     /* the statement of the last batch that failed (-1: none) */
  bool direct;                       /* reached through direct_url: trusted to keep one session */
  char *warnings[LUAMIG_HELD_WARNINGS];
  int nwarnings, dropped_warnings;
  char *prepared[LUAMIG_PREPARED];   /* the SQL prepared as luamig_G_0, luamig_G_1, ... */
  int prepared_gen;                  /* G: a new one after luamig_conn_forget_prepared */
  bool unflushed;                    /* commits made with synchronous_commit off (durable.c) */
  /* sends a batch as soon as the handshake is done (the lock's: lock.c), so the
   * server runs it while the client reads the revision files; then NULL */
  void (*ahead)(luamig_conn *c, void *arg);
  void *ahead_arg;
  int inflight_syncs;                /* of a batch sent and not read yet */
};

/* prepared.c: prepares again, under new names, what a batch prepares from now
 * on: after statements that may have dropped them (DISCARD ALL in a
 * non-transactional revision). */
void luamig_conn_forget_prepared(luamig_conn *c);

/* Pushes the server WARNINGs held since the last call (an array, with a last
 * "(N more warnings)" when some did not fit) and forgets them; returns the count. */
int luamig_conn_warnings(lua_State *L, luamig_conn *c);

/* A monotonic clock in milliseconds (timeouts, durations). */
double luamig_now_ms(void);

/* Pushes a connected handle. Raises "could not connect to <url>: <msg>"
 * with the password masked. */
luamig_conn *luamig_conn_connect(lua_State *L, const char *url);
/* The same in two halves, so the server starts the session while the client
 * works: start pushes a handle whose handshake is under way (it never raises
 * but for memory), pump moves it on without waiting, finish waits for it and
 * raises as luamig_conn_connect. */
luamig_conn *luamig_conn_start(lua_State *L, const char *url);
void luamig_conn_pump(luamig_conn *c);
void luamig_conn_finish(lua_State *L, luamig_conn *c, const char *url);
luamig_conn *luamig_conn_check(lua_State *L, int idx);
void luamig_conn_close(luamig_conn *c);

/* conn_exec.c: statements and their errors. */

/* Runs one statement with text parameters (NULL entries are SQL NULL).
 * Returns the number of rows it affected. Raises on a server error with
 * "SQLSTATE: message (DETAIL: ...; HINT: ...); SQL: <statement>". */
long luamig_exec(lua_State *L, luamig_conn *c, const char *sql,
                 int nparams, const char *const *params);

/* Like luamig_exec, but pushes the rows: an array of tables keyed by column
 * name, values converted (int2/4/8 -> integer, float/numeric -> number,
 * bool -> boolean, others -> string, NULL -> absent). Returns the row count. */
int luamig_query(lua_State *L, luamig_conn *c, const char *sql,
                 int nparams, const char *const *params);

/* Like luamig_query, but pushes the first column's values only, as an array
 * of strings (NULLs left out); returns its length. */
int luamig_query_column(lua_State *L, luamig_conn *c, const char *sql,
                        int nparams, const char *const *params);

/* Runs sql; pushes a holder of its successful result (cleared when the
 * holder is collected) and returns the result, for C code that reads many
 * rows without making Lua tables of them. */
const PGresult *luamig_query_result(lua_State *L, luamig_conn *c, const char *sql,
                                    int nparams, const char *const *params);

/* One statement of a batch: SQL and its text parameters. */
typedef struct luamig_stmt {
  const char *sql;
  int nparams;
  const char *const *params;
  bool prepare;                      /* luamig's own, sent often: parsed and planned once per connection */
} luamig_stmt;

/* Sends st in a pipeline: by name when st->prepare (its Parse first the first
 * time: its slot in *parsed, else -1), else as it is. luamig_prepared_parsed
 * reads that Parse's result: NULL when it went through (or was skipped after
 * an earlier failure), else the failure. */
bool luamig_prepared_send(luamig_conn *c, const luamig_stmt *st, int *parsed);
PGresult *luamig_prepared_parsed(luamig_conn *c, int slot, bool *broke);

/* Runs n statements in one round trip (libpq pipeline mode): in order, in one
 * implicit transaction unless one is open. counts[i] (counts may be NULL)
 * gets each one's affected rows; with rows, pushes each one's rows (n arrays,
 * as luamig_query). Raises the first failure as luamig_exec does, after
 * prefixes[i] when prefixes is not NULL (a revision's "file:line: op.x: ");
 * the statements after it do not run. */
void luamig_batch(lua_State *L, luamig_conn *c, int n, const luamig_stmt *st, long *counts,
                  bool rows, const char *const *prefixes);
/* luamig_batch_tail in two halves, the connection the batch's in between:
 * send (no Lua, never raises: what went wrong is kept in p), then recv, which
 * pushes and raises as luamig_batch_tail does. */
typedef struct luamig_pending {
  int n, m, sent, tsent, nparsed;
  int parsed[LUAMIG_PREPARED], parsed_at[LUAMIG_PREPARED];
  bool entered, ok;
} luamig_pending;
void luamig_batch_send(luamig_conn *c, luamig_pending *p, int n, const luamig_stmt *st, int m,
                       const luamig_stmt *tail);
void luamig_batch_recv(lua_State *L, luamig_conn *c, luamig_pending *p, const luamig_stmt *st,
                       long *counts, bool rows, const char *const *prefixes);
/* luamig_batch with rows, then in the same round trip, after its Sync (so
 * outside its transaction), the m statements of tail (not prepared): pushes
 * an array of their row arrays, or nil when one of them failed. Their failure
 * is never raised: they are a read ahead the caller can do without. */
void luamig_batch_tail(lua_State *L, luamig_conn *c, int n, const luamig_stmt *st, int m,
                       const luamig_stmt *tail);
/* A statement failure as data: what the server said, not words found in a message. */
typedef struct luamig_sqlerror {
  char sqlstate[6];                  /* "" when there is none (a client-side failure) */
  char primary[128];                 /* the server's primary message, cut at 127 bytes */
} luamig_sqlerror;
/* Whether the error text err is the last statement failure these functions
 * raised in L, or wraps it ("file:line: op.x: ...", "upgrade X failed: ...");
 * if so, fills *e. An error a revision raises of its own carries none, even
 * after it caught a server error. */
bool luamig_sqlerror_of(lua_State *L, const char *err, luamig_sqlerror *e);
/* Appends s on one line: whitespace runs become one space, the ends are
 * trimmed; past max bytes (0: no limit) it stops at a character boundary with "...". */
void luamig_add_collapsed(luaL_Buffer *b, const char *s, size_t max);

/* owned.c: pushes a userdata owning C memory: set *slot to it, and release(*slot)
 * runs once, by luamig_owned_free or when the userdata is collected (after an
 * error too). For what libpq or malloc hands over while Lua may raise. */
void **luamig_push_owned(lua_State *L, void (*release)(void *));
void luamig_owned_free(void **slot);

/* redact.c: pushes url with every password replaced by "***" (URL and
 * key=value forms, as libpq reads them), or "(not shown)" when libpq cannot
 * read it or might find a part of a password outside the password; returns
 * whether it was shown. A NULL url pushes "". */
bool luamig_push_redacted(lua_State *L, const char *url);
/* Appends key='value' and a space: one setting of a key=value connection
 * string, the value quoted as libpq reads it (\ and ' escaped). */
void luamig_add_setting(luaL_Buffer *b, const char *key, const char *value);
/* Whether libpq reads s as settings (a URL, key=value pairs), not as a database name. */
bool luamig_is_conninfo(const char *s);

int luamig_open_conn(lua_State *L);  /* registers the metatable; pushes module functions */

/* ---- quote.c: identifiers and literals (pure: no connection) ---- */

/* Appends s (len bytes) quoted by PostgreSQL's rules ("" doubled, wrapped in "):
 * the one function every identifier goes through. Raises when s is empty, holds
 * a NUL byte or is longer than 63 bytes: "what: ..." naming label, or a plain
 * error when what is NULL. */
void luamig_add_ident(lua_State *L, luaL_Buffer *b, const char *what, const char *label,
                      const char *s, size_t len);
/* Whether PostgreSQL reads the name s (len bytes) back unchanged without quotes:
 * lower case letters, digits, _ and $, not a reserved word (its quote_ident()'s
 * rule). For SQL people read, such as the revisions autogenerate writes. */
bool luamig_ident_is_plain(const char *s, size_t len);
/* luamig_add_ident for a C string, with plain errors. */
void luamig_quote_ident(lua_State *L, luaL_Buffer *b, const char *name);
/* Appends schema.name (schema may be NULL) with both parts quoted. */
void luamig_quote_qualified(lua_State *L, luaL_Buffer *b, const char *schema,
                            const char *name);
/* Appends s as a SQL string literal: for statements that take no parameters
 * (COMMENT, enum labels) and offline scripts. */
void luamig_quote_literal(luaL_Buffer *b, const char *s);
/* C's isspace in the C locale, whatever the process's locale says. */
static inline bool luamig_is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
/* Pushes s (len bytes) on one line: each control character (newline, CR, tab,
 * escape, NUL, DEL) becomes a space. For every text that goes into a SQL comment
 * or a one-line message. */
const char *luamig_push_oneline(lua_State *L, const char *s, size_t len);

/* ---- sql_lex.c: the scanner of SQL text (quotes, dollar quotes, E'' strings,
 * nested comments), and what luamig asks of it ---- */

/* Appends sql with $1..$n replaced by params as literals (NULL entries: NULL),
 * skipping quoted text and comments: the offline form of a parameterized statement. */
void luamig_sql_inline(lua_State *L, luaL_Buffer *b, const char *sql,
                       int nparams, const char *const *params);
/* Whether sql ends inside a comment (a ";" appended would be swallowed). */
bool luamig_sql_ends_in_comment(const char *sql);
/* Why SQL text meant as one expression (a default, a WHERE) would not stay
 * one: a ';' outside quotes and comments, or a quote or comment left open; NULL when fine. */
const char *luamig_sql_fragment_problem(const char *sql);
/* How many statements sql holds (empty ones between ';'s not counted). */
int luamig_sql_count_statements(const char *sql);
/* The first statement of sql that ends or splits a transaction (BEGIN, COMMIT,
 * ROLLBACK [TO], SAVEPOINT, RELEASE, END, ABORT, START/PREPARE TRANSACTION) or
 * calls pg_advisory_unlock*: its keywords, written into buf; NULL when none. */
const char *luamig_sql_txn_control(const char *sql, char *buf, size_t size);
/* Pushes the tokens of sql, comments and spaces left out: an array of { k =
 * kind, v = value, s = first byte, e = last byte (1-based) [, open = true when a
 * quote is left open] }. Kinds: "word" (v folded to lower case), "ident" (a quoted
 * name; v without the quotes), "str" (v as written), "num", "param" ($1), "op"
 * (an operator), "::", and any other character as itself ("(", ",", ";", ...).
 * Returns their count. */
int luamig_push_sql_tokens(lua_State *L, const char *sql);

/* ---- ops_registry.c: one description per op ---- */

/* What an argument or option of an op holds. Before a DDL op runs, the registry
 * checks its arguments' kinds (what a builder reads without looking: identifiers,
 * tables, strings), its options' keys and boolean options; the builder checks the
 * rest. core.op_specs() names each kind for the lint, autogenerate and docs. */
enum {
  LUAMIG_IDENT = 1,                  /* "ident": an identifier */
  LUAMIG_NAME,                       /* "name?": a constraint name; nil: the server picks it */
  LUAMIG_NAMED,                      /* "name": a constraint name that must be given */
  LUAMIG_BOOL,                       /* "boolean" (an option) */
  LUAMIG_SCHEMA,                     /* "schema": the schema that qualifies the object */
  LUAMIG_IDENTS,                     /* "idents": an array of identifiers (columns) */
  LUAMIG_ELEMENTS,                   /* "elements": index columns or expressions */
  LUAMIG_TEXT,                       /* "text": SQL text (a type, an expression) */
  LUAMIG_STRING,                     /* "string": a value (a comment, a label, a version) */
  LUAMIG_STRINGS,                    /* "strings": an array of values */
  LUAMIG_WORD,                       /* "word": one of a few words ("cascade", "full") */
  LUAMIG_DEFAULT,                    /* "default": SQL text or a number; false: none */
  LUAMIG_COMMENT,                    /* "comment": a string; false: none */
  LUAMIG_INTEGER,                    /* "integer" */
  LUAMIG_COLUMN,                     /* "column": a column table */
  LUAMIG_COLUMNS,                    /* "columns": columns and table constraints */
  LUAMIG_ROWS,                       /* "rows": tables keyed by column name */
  LUAMIG_PARAMS,                     /* "params": statement parameters */
  LUAMIG_OPTIONAL = 0x100            /* or'ed into a kind: the argument may be left out */
};

typedef struct luamig_param {
  const char *name;                  /* as the docs write it: "source" */
  int kind;
  const char *label;                 /* in messages ("source table"); NULL: the name */
} luamig_param;

typedef struct luamig_option {
  const char *name;
  int kind;
} luamig_option;

/* What an op is, besides its kinds of arguments. */
enum {
  LUAMIG_OP_CONCURRENT = 1,          /* concurrently = true: only outside a transaction */
  LUAMIG_OP_BUILDS_INDEX = 2,        /* live and concurrent: see ops_index.c */
  LUAMIG_OP_OPTS_NEEDED = 4,         /* the options table must be given */
  LUAMIG_OP_LIVE = 8                 /* needs a live database (op.query) */
};

typedef struct luamig_opspec luamig_opspec;

/* An op call being built: its row and where its arguments are on the stack. */
typedef struct luamig_opcall {
  const luamig_opspec *spec;
  const char *what;                  /* "op.add_column": prefixes errors */
  int base;                          /* stack slot of the first argument */
} luamig_opcall;

/* One DDL builder per op: reads the op's Lua arguments by name (luamig_arg),
 * after the registry checked what it checks, and appends the statement (no ';')
 * to b, which must be at the top of the stack. An op that needs several
 * statements separates them with luamig_sql_next. sql_table.c: tables and
 * columns; sql_constraint.c: constraints; sql_object.c: indexes, sequences,
 * types, schemas, extensions, rows. */
typedef void (*luamig_sql_builder)(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);

struct luamig_opspec {
  const char *name, *what;           /* "add_column", "op.add_column" */
  const luamig_param *params;        /* the positional arguments; ends with { NULL } */
  const luamig_option *options;      /* the keys of the options table, the last argument
                                        (ends with { NULL }); NULL: it takes none */
  luamig_sql_builder build;          /* a DDL op: its statements */
  lua_CFunction call;                /* else the op itself (upvalue 1: the op context) */
  int flags;
  const char *lint;                  /* what the safety lint makes of a call (lint_actions.lua) */
  const char *inverse;               /* the op that undoes it; NULL: none */
  const char *section, *returns;     /* for the docs (scripts/opdocs.lua) */
  const char *doc, *example;
};

/* The registry: every op.* a revision gets, in the order of docs/operations.md. */
extern const luamig_opspec luamig_opspecs[];
extern const int luamig_nopspecs;

/* core.op_specs() -> the registry as Lua tables. */
int luamig_op_specs(lua_State *L);

/* ---- args.c: an op's Lua arguments, checked ---- */

/* Raises "<position>what: <formatted message>" (position of the Lua caller). */
int luamig_op_error(lua_State *L, const char *what, const char *fmt, ...);
/* The string at the top, checked to be a string without NUL bytes (label names it). */
const char *luamig_top_string(lua_State *L, const char *what, const char *label);
/* The string at stack slot idx, checked as an identifier; returns it. */
const char *luamig_arg_ident(lua_State *L, const char *what, int idx, const char *label);
/* Pushes opts[key] (nil when opts is not a table); returns its type. */
int luamig_push_opt(lua_State *L, int opts, const char *key);
/* A boolean option: -1 when absent, else 0 or 1; raises for other types. */
int luamig_opt_bool(lua_State *L, const char *what, int opts, const char *key);
/* Pushes opts[key] and returns true when it is a string (raising with expected
 * when it is neither that nor nil); pushes nothing when it is absent. */
bool luamig_push_opt_string(lua_State *L, const char *what, int opts, const char *key,
                            const char *expected);
/* Raises unless the table at idx holds only keys 1..n; returns n. */
lua_Integer luamig_check_array(lua_State *L, const char *what, int idx, const char *label);
/* Converts the n Lua values from stack index first (nil -> SQL NULL, boolean,
 * number, string) to text parameters. Numbers and booleans are replaced by their
 * text in those slots, so every string stays anchored there; pushes the array (a
 * userdata) and returns it. Raises on other types: an argument error when what is
 * NULL, else "what: parameter N ...". */
const char **luamig_params(lua_State *L, int first, int n, const char *what);
/* The stack slot of the call's argument name; "options" is the options table. */
int luamig_arg(lua_State *L, const luamig_opcall *op, const char *name);
/* How many arguments op takes (its options table included). */
int luamig_op_nargs(const luamig_opspec *spec);
/* Raises unless the call's arguments are what the registry says (see the kinds). */
void luamig_op_check(lua_State *L, const luamig_opcall *op);

/* ---- sql.c and sql_*.c: statement text (pure: no connection) ---- */

void luamig_sql_create_table(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_drop_table(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_rename_table(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_create_table_comment(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_drop_table_comment(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_add_column(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_drop_column(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_alter_column(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_create_primary_key(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_create_unique_constraint(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_create_foreign_key(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_create_check_constraint(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_drop_constraint(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_validate_constraint(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_create_index(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_drop_index(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_create_sequence(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_drop_sequence(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_create_enum(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_drop_enum(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_add_enum_value(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_create_schema(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_drop_schema(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_create_extension(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
void luamig_sql_drop_extension(lua_State *L, luaL_Buffer *b, const luamig_opcall *op);
/* op.bulk_insert's statement for rows[first .. first + count - 1] (the array at
 * rows) and the column names in the array at cols (1..ncols): VALUES ($1, ...),
 * numbered row by row, with DEFAULT where a row has no value (read raw, as the
 * caller reads the parameters); ncols 0: one INSERT ... DEFAULT VALUES per row. */
void luamig_sql_insert(lua_State *L, luaL_Buffer *b, const char *what, int table, int opts,
                       int cols, int ncols, int rows, int first, int count);

/* Constraint tables in op.create_table's columns (sql_constraint.c): whether the
 * table at t is one ({ unique = {...} }: no column name, a constraint's key), and
 * pushes its text ([CONSTRAINT "name"] UNIQUE (...) ...); k numbers it in messages. */
bool luamig_is_constraint(lua_State *L, int t);
void luamig_push_table_constraint(lua_State *L, const char *what, int t, lua_Integer k);
/* Reads a reference to a table and its columns, "table(column)", "schema.table
 * (a, b)", "table" (quoted names may hold any character): pushes schema (nil
 * when none), table and the array of columns (nil when none is given), and
 * returns NULL; when it cannot, pushes nothing and returns why ("must look like
 * ..."). Names come unquoted and may be empty: the caller judges them. */
const char *luamig_push_reference(lua_State *L, const char *ref);
/* The foreign-key actions, as messages list them. */
#define LUAMIG_FK_ACTIONS "'cascade', 'restrict', 'set null', 'set default', 'no action'"
/* The SQL of a foreign-key action ("set null" -> "SET NULL", any case), or NULL. */
const char *luamig_fk_action(const char *name);

/* The builders' helpers (sql.c). b is at the top of the stack; a "top" helper
 * takes the value just above it and pops it. */
void luamig_sql_next(luaL_Buffer *b);              /* ends one statement, starts the next */
void luamig_add_top_ident(lua_State *L, luaL_Buffer *b, const char *what, const char *label);
/* prefix, then the string at the top verbatim (SQL text: raises on a NUL byte). */
void luamig_add_top_text(lua_State *L, luaL_Buffer *b, const char *what, const char *label,
                         const char *prefix);
/* prefix, then the string at the top as a literal. */
void luamig_add_top_literal(lua_State *L, luaL_Buffer *b, const char *what, const char *label,
                            const char *prefix);
/* DROP <kind> [IF EXISTS] [schema.]name [CASCADE] for op's arguments name and
 * options (if_exists=, cascade=, and schema= when the op takes it): op.drop_table,
 * op.drop_enum, op.drop_sequence, op.drop_schema, op.drop_extension. */
void luamig_add_drop(lua_State *L, luaL_Buffer *b, const luamig_opcall *op, const char *kind);
/* [schema.]name: the name at stack slot name_idx, the schema from opts.schema. */
void luamig_add_relation(lua_State *L, luaL_Buffer *b, const char *what, int name_idx,
                         int opts, const char *label);
/* ("a", "b") from the array of names at idx; raises when it is empty. */
void luamig_add_ident_list(lua_State *L, luaL_Buffer *b, const char *what, int idx,
                           const char *label);

/* sqltext.c: quote_ident, quote_literal, sql_tokens, fk_action, parse_reference,
 * max_ident and fk_actions for the Lua modules (lua/luamig/sqltext.lua, types.lua). */
int luamig_open_sqltext(lua_State *L);

/* ---- sink.c: where statements go (a connection, or the --sql script) ---- */

#define LUAMIG_OPCTX_MT "luamig.opctx"

/* Where a revision's statements go: a live connection, or (conn == NULL)
 * the script table kept as the context's user value, for --sql output. */
typedef struct luamig_opctx {
  luamig_conn *conn;
  bool transactional;                /* false for revisions with transactional = false */
  bool defer;                        /* DDL waits for luamig_flush (a transactional revision) */
  int tail_at;                       /* where the last luamig_flush's tail began in its batch */
} luamig_opctx;

/* Pushes a new context (user value 1: script table, user value 2: the conn,
 * user value 3: the DDL waiting while defer is set, user value 4: the run it
 * serves, see luamig_opctx_bind_run). */
luamig_opctx *luamig_opctx_new(lua_State *L, int conn_idx);
/* Drops what waits in the context and stops deferring. */
void luamig_opctx_reset(lua_State *L, luamig_opctx *ctx);
/* Sends the DDL waiting in the context, then tail (counts gets the tail's
 * row counts), in one round trip; a failure of the DDL is raised as the op
 * call would have raised it ("file:line: op.x: ..."). */
void luamig_flush(lua_State *L, luamig_opctx *ctx, int ntail, const luamig_stmt *tail,
                  long *counts);
/* luamig_batch through the context (offline: each statement to the script;
 * counts are then 0). */
void luamig_emit_batch(lua_State *L, luamig_opctx *ctx, int n, const luamig_stmt *st,
                       long *counts);
/* Sends one statement to the context's sink; params as in luamig_exec. */
long luamig_emit(lua_State *L, luamig_opctx *ctx, const char *sql,
                 int nparams, const char *const *params);
/* Queues sql while the context defers (what: the op, for its errors, with the
 * revision's position), to go with the next luamig_flush. */
void luamig_queue_add(lua_State *L, luamig_opctx *ctx, const char *sql, const char *what);
/* What an op sends for an answer (query: pushes the rows), after the DDL waiting
 * in the context; a failure is raised as "file:line: what: <error>". */
long luamig_op_send(lua_State *L, luamig_opctx *ctx, const char *what, const char *sql,
                    int nparams, const char *const *params, bool query);
/* Sends the statements of the string at the top (separated by NUL bytes, see
 * luamig_sql_next) one by one as luamig_op_send does, or queues them (may_wait,
 * in a deferring context); pops it and returns the rows they affected. */
long luamig_op_emit_all(lua_State *L, luamig_opctx *ctx, const char *what,
                        int nparams, const char *const *params, bool may_wait);
int luamig_open_sink(lua_State *L);  /* new_context, script */

/* ---- ops.c: the op.* API given to revisions ---- */

/* Pushes a fresh op table whose functions are bound to the context at ctx_idx. */
void luamig_ops_push(lua_State *L, int ctx_idx);
int luamig_open_ops(lua_State *L);

/* ops_data.c: the ops that are not DDL (registry rows with a call); upvalue 1 is
 * the context, upvalue 2 the row. */
int luamig_op_execute(lua_State *L);
int luamig_op_query(lua_State *L);
int luamig_op_bulk_insert(lua_State *L);
int luamig_op_safe(lua_State *L);

/* ops_index.c: around a live op.create_index call with concurrently = true:
 * prepare drops an INVALID index of that name a failed build left, check
 * raises unless the index built is valid. */
void luamig_index_prepare(lua_State *L, luamig_opctx *ctx, const luamig_opcall *op);
void luamig_index_check(lua_State *L, luamig_opctx *ctx, const luamig_opcall *op);

/* ops_backfill.c: op.backfill (a data op: upvalue 1 is the context). A run
 * binds its context once (the log function opts.log, the audit log of vt) and
 * names each revision as it starts it, for the backfill's progress and final
 * count; an unbound context (core.new_context) reports nowhere. */
struct luamig_vtable;
int luamig_op_backfill(lua_State *L);
void luamig_opctx_bind_run(lua_State *L, int ctxidx, int opts, const struct luamig_vtable *vt);
void luamig_opctx_bind_revision(lua_State *L, int ctxidx, const char *rev);

/* ---- graph.c: the revision DAG (pure: no connection) ---- */

#define LUAMIG_GRAPH_MT "luamig.graph"

typedef struct luamig_rev {
  char *id;
  char *message;                     /* may be NULL */
  char *path;                        /* file it came from */
  char **down; int ndown;            /* down_revision ids as written */
  char **depends; int ndepends;      /* depends_on ids as written */
  char **labels; int nlabels;        /* branch_labels */
  int *parents; int nparents;        /* resolved down_revision (indices) */
  int *deps; int ndeps;              /* resolved depends_on */
  int *children; int nchildren;      /* revisions whose down_revision names this one */
  int *dependents; int ndependents;  /* revisions whose depends_on names this one */
  int *normdeps; int nnormdeps;      /* deps less those a revision below already has */
  int topo;                          /* position in g->order */
  bool transactional;
  char sum[65];                      /* SHA-256 of the file as read ("": not taken) */
  bool checked;                      /* its body compiled and ran once: no syntax error */
} luamig_rev;

typedef struct luamig_graph {
  luamig_rev *revs; int n, cap;
  int *slots; size_t nslots;         /* open-addressing index: id -> rev + 1 */
  int *heads; int nheads;            /* no child (down_revision), in file order */
  int *realheads; int nrealheads;    /* no child and no dependent */
  int *bases; int nbases;
  int *order;                        /* topological: parents and dependencies first */
  bool linked;
} luamig_graph;
/* The graph userdata's user value 1 is an array: envs[i + 1] is the
 * environment table of revs[i] (its upgrade/downgrade functions). */

luamig_graph *luamig_graph_new(lua_State *L);                       /* pushes it */
luamig_graph *luamig_graph_check(lua_State *L, int idx);
/* Adds a revision; raises on a duplicate id. The pointer is valid until the next add. */
luamig_rev *luamig_graph_add(lua_State *L, luamig_graph *g, const char *id,
                             const char *path);
/* Copies the string or array of strings at idx (nil: empty) into *list / *n. */
void luamig_graph_strings(lua_State *L, int idx, const char *what,
                          char ***list, int *n);
char *luamig_graph_strdup(lua_State *L, const char *s);
/* Why id (len bytes) cannot be a revision id, or NULL when it can: ids are
 * [A-Za-z0-9_]{1,32} and none of the target words (head, heads, base, current). */
const char *luamig_rev_id_problem(const char *id, size_t len);
int luamig_graph_find(const luamig_graph *g, const char *id);       /* exact id, or -1 */
/* An exact id, else the revision carrying that branch label; -1 when neither. */
int luamig_graph_lookup(const luamig_graph *g, const char *key);
/* Resolves down_revision/depends_on, children, heads, bases; raises on a
 * missing parent or a cycle (naming it). */
void luamig_graph_link(lua_State *L, luamig_graph *g);
/* n + 1 zeroed ints, anchored on the stack: marks and lists over the revisions. */
int *luamig_scratch(lua_State *L, int n);

/* ---- loader.c: revision files -> graph entries, each in its own environment ---- */

/* Pushes a linked graph of every *.lua file in the config's version dirs.
 * A file whose top level is plain (literal assignments and function
 * definitions) is only scanned for its header: its envs[i + 1] stays nil until
 * luamig_load_body. Other files run at once, as before. With sums, each
 * rev's sum is the SHA-256 of the text read (for the audit log, without a
 * second read); pump, when not NULL, is a connection whose handshake moves on
 * between files. */
luamig_graph *luamig_load_revisions(lua_State *L, int cfg_idx, bool sums, luamig_conn *pump);
/* Makes sure envs[rev + 1] holds revs[rev]'s environment (the graph g is at
 * stack index gidx), compiling and running its file if it was only scanned.
 * Raises "path:line: message" on a syntax error. */
void luamig_load_body(lua_State *L, luamig_graph *g, int gidx, int rev);
/* Plans of up to this many steps keep each body the pre-run checks compile
 * (the lint, the syntax check) for the run; larger ones compile it again when
 * the step runs, so 10,000 bodies are never held at once (the 30 MB budget). */
#define LUAMIG_KEEP_BODIES 1000
/* Pushes revs[rev]'s environment: envs[rev + 1] when loaded, else a fresh
 * one from its file, not kept (the lint sees each revision once: 10,000 kept
 * bodies would not fit in 30 MB). */
void luamig_push_body(lua_State *L, luamig_graph *g, int gidx, int rev);
/* Compiles revs[rev]'s file if it was only scanned and not yet checked, keeping nothing; raises as
 * luamig_load_body would. For every step of a plan before the first runs, so a
 * syntax error stops the run before anything is applied. */
void luamig_check_body(lua_State *L, luamig_graph *g, int gidx, int rev);

/* ---- cache.c: the header cache of a versions directory (as git's index) ---- */

/* The caches' directory inside a versions directory. */
#define LUAMIG_CACHE_DIR ".luamig-cache"

struct stat;
typedef struct luamig_cache luamig_cache;
/* Pushes dir's cache (.luamig-cache/headers; a foreign or corrupt one counts as
 * none). luamig_cache_listed pushes the array of the *.lua names it lists and
 * returns their count when the directory's stat is the one cached (no file
 * added, removed or renamed since), else pushes nothing and returns -1.
 * luamig_cache_match (the cache at the top) matches it against the n sorted
 * names of the array at names: a file whose stat (size, mtime, ctime, inode,
 * device) is the one cached is a hit. */
luamig_cache *luamig_cache_open(lua_State *L, const char *dir);
int luamig_cache_listed(lua_State *L, luamig_cache *c);
void luamig_cache_match(lua_State *L, luamig_cache *c, int names, int n, luamig_conn *pump);
/* Whether the cache can be read and written at all (dir could be opened). */
bool luamig_cache_usable(const luamig_cache *c);
/* Whether file i (from 0) is a hit: then luamig_cache_load adds its revision
 * (header and SHA-256, as cached) to g without opening the file. */
bool luamig_cache_hit(const luamig_cache *c, int i);
void luamig_cache_load(lua_State *L, luamig_cache *c, int i, luamig_graph *g, const char *path);
/* Whether a file whose stat before a read was st may be cached, asked right
 * after the read: its ctime is before the clock tick file times come from, so
 * any later change moves it. */
bool luamig_cache_fresh(const struct stat *st);
/* File i was read and scanned (not run) as revision rev, with stat st. */
void luamig_cache_note(luamig_cache *c, int i, int rev, const struct stat *st);
/* Writes the cache again when it changed (names: as for luamig_cache_open). */
void luamig_cache_save(lua_State *L, luamig_cache *c, const luamig_graph *g, int names);
/* Replaces dir/name with data atomically: a temp file in dir, renamed over
 * it. Does nothing when dir cannot be written. */
void luamig_cache_replace(lua_State *L, const char *dir, const char *name, const char *data,
                          size_t len);
/* Other caches in a versions directory (the lint's): pushes the body of
 * dir/name when its checksum trailer holds (returns 1), else nil (0); writes
 * the string at idx as dir/name, with its trailer, atomically. */
int luamig_cache_read(lua_State *L, const char *dir, const char *name);
void luamig_cache_write(lua_State *L, const char *dir, const char *name, int idx);
/* "luamig VERSION BUILD": what a cache written by this build is marked with. */
const char *luamig_build_id(void);

/* Gives the userdata at the top the metatable mt (made once, close as its
 * __close and __gc) and makes its slot to-be-closed: the resource is released
 * on return or on any error. */
void luamig_toclose(lua_State *L, const char *mt, lua_CFunction close);

/* ---- sandbox.c: what a revision's code may do, and for how long ---- */

/* Pushes the shared, read-through base of every revision environment: the
 * standard libraries, with print/io.write/io.stdout going to stderr and os.exit
 * refused. */
void luamig_push_sandbox(lua_State *L);
/* Sets the time budget of each call into a revision (revision_timeout; 0: none);
 * label is the limit as configured, for the message. */
void luamig_budget_limit(lua_State *L, double ms, const char *label);
/* lua_pcall of the function below nargs arguments as revision code of path
 * (what: "upgrade()", "downgrade()", "the file"): under the time budget, any
 * error value rendered as "file:line: message" (a string on top on failure).
 * Returns the lua_pcall status. */
int luamig_revision_pcall(lua_State *L, int nargs, int nresults, const char *path,
                          const char *what);
/* Lua cuts a file name in its messages to LUA_IDSIZE ("...tail.lua:3: msg"):
 * puts path back whole in the error message at the top. */
void luamig_error_path(lua_State *L, const char *path);
/* The running revision spent ms waiting on the server: not its own time. */
void luamig_budget_pause(lua_State *L, double ms);
/* Silences (or not) print and io.write in revisions, as while the lint records
 * them; returns the previous setting. */
bool luamig_sandbox_quiet(lua_State *L, bool quiet);

/* ---- revmap.c: Alembic's rules for reading the graph (pure) ---- */

/* Results besides a revision index: Alembic's None (base, or nothing: a walk
 * that ran off the graph), its "base" (a walk one step below a base), and
 * luamig's "the parents of this merge" (luamig_walk's merge). */
enum { LUAMIG_NOREV = -1, LUAMIG_BELOW = -2, LUAMIG_UNMERGE = -3 };

/* The number in "+N" / "-N" (digits after a sign), kept to at most 10^10. */
long luamig_steps(const char *s);
/* Copies n revision indices (src may be NULL when n is 0); returns n. */
int luamig_copy_revs(int *out, const int *src, int n);
/* Sets mark[i] = 1 for every revision reachable from `from` (self included)
 * through parents and dependencies (toward_base) or children and dependents;
 * luamig_mark_line through parents or children only (down_revision). */
void luamig_mark_reach(lua_State *L, const luamig_graph *g, const int *from,
                       int nfrom, int *mark, bool toward_base);
void luamig_mark_line(lua_State *L, const luamig_graph *g, const int *from,
                      int nfrom, int *mark, bool toward_base);
/* Marks the ancestors and descendants of against[] (Alembic's lineage). */
void luamig_mark_lineage(lua_State *L, const luamig_graph *g, const int *against, int n,
                         int *mark, bool deps);
/* An id, branch label or unique prefix; with branch (NULL: none), on that
 * branch's lineage. Raises "Can't locate revision identified by ...". */
int luamig_ident(lua_State *L, const luamig_graph *g, const char *ident, const char *branch);
/* Alembic's get_revisions / get_revision for one target string (see revmap.c). */
int luamig_get_revisions(lua_State *L, const luamig_graph *g, const char *target, int *out);
int luamig_get_revision(lua_State *L, const luamig_graph *g, const char *target);
int luamig_lineage_refs(lua_State *L, const luamig_graph *g, const char *target, int *out);
/* |steps| up (branch: staying on its lineage) or down from start; see revmap.c. */
int luamig_walk(lua_State *L, const luamig_graph *g, int start, long steps,
                const char *branch, int *merge, const char *target);
/* Raises Alembic's "Multiple head revisions are present ..." naming heads. */
int luamig_multiple_heads(lua_State *L, const luamig_graph *g, const char *arg,
                          const int *heads, int n);
/* What `current` shows: the applied revisions no applied revision builds on
 * by down_revision (file order); returns the count. */
int luamig_current_set(lua_State *L, const luamig_graph *g, const int *cur, int ncur, int *out);
/* Marks the revisions that show the branch labels of revision rev. */
void luamig_label_span(lua_State *L, const luamig_graph *g, int rev, int *mark);
/* Alembic's topological sort of the revisions marked in todo (cleared),
 * walking down from heads: each comes before what it builds on. */
int luamig_topo_sort(lua_State *L, const luamig_graph *g, int *todo, const int *heads,
                     int nheads, int *out);

/* ---- target.c: upgrade, downgrade and stamp targets (pure) ---- */

typedef struct luamig_step {
  int rev;                           /* index in the graph */
  bool up;                           /* upgrade or downgrade */
} luamig_step;

/* Resolves TARGET against the graph and the current heads (cur, ncur) and
 * pushes a plan userdata; returns its steps through *steps / *nsteps. */
int luamig_plan(lua_State *L, luamig_graph *g, const int *cur, int ncur,
                const char *target, bool up, luamig_step **steps);

/* The revisions one target names (history -r, show, revision --head, an
 * offline FROM) into out (room for g->n + 1 entries); returns how many; 0
 * means base. "-N" counts down from the current revision, "current" is it. */
int luamig_resolve(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                   const char *target, int *out);

/* The version rows after "stamp TARGET" from rows cur, into out (file order);
 * returns their count. Raises where Alembic's stamp would fail. */
int luamig_stamp(lua_State *L, const luamig_graph *g, const int *cur, int ncur,
                 const char *target, int *out);

/* ---- version_table.c, lock.c ---- */

typedef struct luamig_vtable {
  const char *schema;                /* NULL: the connection's search path */
  const char *name;
  const char *log_name;              /* the audit log beside it */
  bool probed, present, log_present; /* whether they exist, once asked */
  long long lock_key;                /* set by luamig_lock_acquire */
  bool want_digest;                  /* read the log's digest with the rows (findings.c) */
  bool digested;                     /* log_digest and log_started were read */
  char log_digest[65];               /* see luamig_vtable_read */
  long log_started;
  bool printed;                      /* log_print was read (with the lock, or the digest) */
  char log_print[65];                /* the SHA-256 of the log's fingerprint */
  int ahead;                         /* stack slot of the rows read with the lock (0: none) */
} luamig_vtable;

/* CREATE TABLE IF NOT EXISTS, through the context (so --sql scripts get it too). */
void luamig_vtable_ensure(lua_State *L, luamig_opctx *ctx, luamig_vtable *vt);
/* Pushes an array of the version_num rows; returns their count, or -1 (and an
 * empty array) when the table does not exist yet. With want_digest and a log,
 * reads in the same round trip the log's digest: the SHA-256 of "id checksum"
 * lines (C order) of the revisions whose last row applies them, and how many
 * revisions' last row is a -started one. */
int luamig_vtable_read(lua_State *L, luamig_conn *c, luamig_vtable *vt);
/* Appends to st the query whether the version table and the log exist (its
 * SQL and parameters pushed), for a batch; luamig_vtable_probed reads its
 * rows (the array at idx). */
void luamig_vtable_probe_add(lua_State *L, const luamig_vtable *vt, luamig_stmt *st, int *n);
void luamig_vtable_probed(lua_State *L, luamig_vtable *vt, int idx);
/* The read ahead of a no-op run, for the tail of the lock's round trip
 * (luamig_batch_tail): appends the version rows' query and the log's
 * fingerprint's (what their SQL points into is pushed). luamig_vtable_ahead
 * takes their result at idx (nil when they failed: no table yet), replaces it
 * with the array of ids and sets vt->printed; returns whether it was read. */
void luamig_vtable_ahead_add(lua_State *L, const luamig_vtable *vt, luamig_stmt *st, int *n);
bool luamig_vtable_ahead(lua_State *L, luamig_vtable *vt, int idx);
/* Reads the log's digest and, of the same snapshot, its fingerprint into vt. */
void luamig_vtable_digest(lua_State *L, luamig_conn *c, luamig_vtable *vt);

/* A revision's row in the audit log: one per applied or reverted revision
 * (id, direction, file checksum, time, duration, user, luamig version). */
typedef struct luamig_logrow {
  const char *rev;
  bool up;
  const char *direction;             /* NULL: as up and started say */
  const char *checksum;              /* "" when not taken */
  bool started;                      /* the start row of a non-transactional revision */
  double ms;                         /* < 0: unknown (an offline script), NULL in the log */
  const char *expect;                /* not NULL: the guard (see luamig_log_add) */
  char dur[32], key[24];             /* the INSERT's parameters, set by luamig_log_add */
  const char *params[8];
} luamig_logrow;

/* A change of the head rows: `from` out, `to` in. */
typedef struct luamig_move {
  const char *const *from;
  int nfrom;
  const char *const *to;
  int nto;
  const char *update[2];             /* the UPDATE's parameters, set by luamig_vtable_move_add */
  const char *expect;                /* the rows after it, sorted, one per line (for the guard) */
} luamig_move;

/* Appends to st (from *n on; room for nfrom + nto) the statements of m: an
 * UPDATE when one head replaces one (as Alembic does), else DELETEs and
 * INSERTs. Their SQL is pushed: keep it on the stack until they are sent. */
void luamig_vtable_move_add(lua_State *L, const luamig_vtable *vt, luamig_move *m,
                            luamig_stmt *st, int *n);
/* Raises unless each of m's statements (counts, in order) touched one row. */
void luamig_vtable_move_check(lua_State *L, const luamig_move *m, const long *counts);
/* Appends the audit row's INSERT (its SQL pushed; row holds its parameters).
 * With row->expect, the row is a revision's last statement before its COMMIT
 * and guards it: the INSERT fails unless the version table holds exactly
 * expect (a luamig_move's) and the session the migration lock, so the
 * revision rolls back; luamig_guard_explain then says why. */
void luamig_log_add(lua_State *L, const luamig_vtable *vt, luamig_logrow *row,
                    luamig_stmt *st, int *n);
/* m and, when log is not NULL, its audit row, in one round trip, checked. */
void luamig_vtable_move(lua_State *L, luamig_opctx *ctx, const luamig_vtable *vt,
                        luamig_move *m, luamig_logrow *log);

/* Whether a revision's failure is its guard's: the server refused with one of
 * the guard's reasons (e: the failure's record, NULL when it is not the
 * server's), or (at_row: the audit row was the statement that failed) any
 * failure of the row, which reads the version table. */
bool luamig_guard_failed(const luamig_sqlerror *e, bool at_row);
/* Pushes what the failed guard (its error: msg, its record: e) found, for
 * "upgrade X failed: ..."; committed says whether the revision's statements
 * stay (a non-transactional one). */
const char *luamig_guard_explain(lua_State *L, const luamig_vtable *vt, const char *expect,
                                 const char *msg, const luamig_sqlerror *e, bool committed);

/* The audit log table, through the context. */
void luamig_log_ensure(lua_State *L, luamig_opctx *ctx, luamig_vtable *vt);
/* Pushes a holder of the log's rows (revision, direction, checksum), oldest
 * first, and returns them; NULL (nil pushed) when there is no log. */
const PGresult *luamig_log_rows(lua_State *L, luamig_conn *c, luamig_vtable *vt);

/* Session-level advisory lock keyed by the version table's qualified name
 * (its schema: the configured one, else the session's current_schema()): held
 * for a whole upgrade/downgrade/stamp so concurrent runs apply nothing twice.
 * Taken in both modes, exclusive then shared, so the guard can ask whether the
 * session still holds it by releasing and taking back one mode at a time
 * (the other keeps every other run out meanwhile), not through pg_locks.
 * Sets vt->lock_key. Waits up to wait_s seconds, then raises naming the holder
 * (pid, application). Pushes the version rows read with the lock (see
 * luamig_vtable_ahead_add), or nil. */
void luamig_lock_acquire(lua_State *L, luamig_conn *c, luamig_vtable *vt, double wait_s);
/* Prepares the lock's first try to go as soon as c's handshake is done (c
 * being connected, at once); pushes what it needs kept until
 * luamig_lock_acquire reads it, on the same connection, of the same vt. */
void luamig_lock_prepare(lua_State *L, luamig_conn *c, const luamig_vtable *vt);
void luamig_lock_release(lua_State *L, luamig_conn *c, const luamig_vtable *vt);
/* The lock key's halves as pg_locks shows them (classid, objid), as text. */
void luamig_lock_halves(const luamig_vtable *vt, char hi[16], char lo[16]);

/* ---- sql_bookkeeping.c: the text of luamig's own statements (pure: no connection) ---- */

/* The reasons a revision's guard refuses with: the text its failing cast shows. */
#define LUAMIG_GUARD_LOCK "luamig:lock"
#define LUAMIG_GUARD_ROWS "luamig:rows"

/* The functions push their statement and return it. */
/* vt's schema.table quoted (table: vt->name or vt->log_name). */
const char *luamig_sql_vt_qualified(lua_State *L, const luamig_vtable *vt, const char *table);
/* Whether both tables exist ($1, $2: their qualified names): columns versions, log. */
extern const char luamig_sql_vt_probe[];
/* CREATE TABLE IF NOT EXISTS of the version table, its primary key Alembic's <table>_pkc. */
const char *luamig_sql_vt_create(lua_State *L, const luamig_vtable *vt);
/* Its rows in order; a head replaced ($1 the new, $2 the old), removed ($1),
 * added ($1); every row gone (stamp --purge). */
typedef enum { LUAMIG_VT_SELECT, LUAMIG_VT_UPDATE, LUAMIG_VT_DELETE, LUAMIG_VT_INSERT,
               LUAMIG_VT_PURGE } luamig_vt_stmt;
const char *luamig_sql_vt_change(lua_State *L, const luamig_vtable *vt, luamig_vt_stmt stmt);
/* The audit log: CREATE TABLE IF NOT EXISTS; its rows (revision, direction,
 * checksum), oldest first; one row ($1 revision, $2 direction, $3 checksum,
 * $4 duration_ms, $5 luamig_version), guarded: written only while the session
 * holds the lock whose key is $6 and the version table holds the rows $7
 * (sorted, one per line), else its cast fails with the reason; the log's
 * digest (columns applied, started). */
const char *luamig_sql_log_create(lua_State *L, const luamig_vtable *vt);
const char *luamig_sql_log_select(lua_State *L, const luamig_vtable *vt);
const char *luamig_sql_log_insert(lua_State *L, const luamig_vtable *vt, bool guarded);
/* The log's fingerprint (column print; $1 the log's qualified name), and its
 * digest with the fingerprint of the same snapshot (applied, started, print). */
const char *luamig_sql_log_print(lua_State *L, const luamig_vtable *vt);
const char *luamig_sql_log_digest(lua_State *L, const luamig_vtable *vt);
/* The migration lock (lock.c). The session's dead-client check ($1: the pid
 * of luamig_topology_pid); the key, hashed by the server from $1 table and $3
 * schema, and the lock taken when $2 passes LUAMIG_TOPOLOGY_OK (columns k,
 * locked); a later try (one row when taken), the release ($1 the key); who
 * holds it ($1, $2 the key's halves: pid, app, state, usr). */
extern const char luamig_sql_check_interval[];
extern const char luamig_sql_lock_first[];
extern const char luamig_sql_lock_try[];
extern const char luamig_sql_lock_release[];
extern const char luamig_sql_lock_holder[];
/* SET name = 'value' (SET takes no parameters: the value is a quoted literal). */
const char *luamig_sql_setting(lua_State *L, const char *name, const char *value);
/* The oldest three other transactions holding table locks in this database,
 * after a lock timeout: pid, app, state, query. */
extern const char luamig_sql_table_blockers[];

/* ---- topology.c: where a migration is about to run ---- */

/* The condition, on a statement of the lock's batch whose parameter p is
 * luamig_topology_pid's, under which the migration may take its lock: the
 * primary, through a session of its own (not a standby, not a pooler). */
#define LUAMIG_TOPOLOGY_OK(p) \
  "NOT pg_is_in_recovery() AND (" p "::int IS NULL OR pg_backend_pid() = " p "::int)"
/* The statement that says why not (its rows go to luamig_topology_check); $1 as above. */
#define LUAMIG_TOPOLOGY_SQL \
  "SELECT pg_is_in_recovery() AS standby, pg_backend_pid() <> $1::int AS pooled"
/* The backend pid libpq was given at start-up, as text in buf (a pooler such
 * as PgBouncer gives its own), or NULL when direct_url vouches for the session. */
const char *luamig_topology_pid(const luamig_conn *c, char buf[16]);
/* Raises "the server is a read-only standby ..." or the pooler refusal when
 * the rows (at idx) of LUAMIG_TOPOLOGY_SQL say so. */
void luamig_topology_check(lua_State *L, luamig_conn *c, int idx);

/* ---- sha256.c: checksums of revision files for the audit log ---- */

void luamig_sha256_hex(const void *data, size_t n, char out[65]);

/* ---- config.c ---- */

/* Reads opts (table at opts_idx: config=, url=, ...), the config file and .env;
 * pushes the resolved config table: url, versions (array), version_table,
 * version_table_schema, dir (of the config). */
void luamig_config_load(lua_State *L, int opts_idx);
/* A duration as PostgreSQL writes them ("500ms", "5s", "10min", "2h", "1d"; a
 * bare number is milliseconds) into *ms; false unless it is one, from 0 to
 * 2^31 - 1 ms (about 24 days, PostgreSQL's own limit). */
bool luamig_parse_duration(const char *s, double *ms);
/* Pushes the KEY=value pairs of a .env file as a table (the first of a key
 * wins); returns their count, or -1 (empty table) when the file is unreadable.
 * Raises "path:N: expected KEY=value" on a malformed line. */
int luamig_dotenv_parse(lua_State *L, const char *path);

/* ---- run.c: what every command shares (runner.c, stamp.c, report.c, lint.c, ...) ---- */

/* One command's state: its options, config, graph and connection live on
 * the Lua stack (slots below); the pointers stay valid while they do. */
typedef struct luamig_run {
  lua_State *L;
  int opts, cfg;                     /* stack slots */
  int graph;
  luamig_graph *g;
  luamig_conn *c;                    /* NULL until connecting */
  int conn;                          /* its stack slot */
  luamig_vtable vt;
  const char *lock_timeout;          /* per revision, e.g. "5s" (NULL: server default) */
  const char *statement_timeout;
  int lock_retries;
  int step, nsteps;                  /* progress: revision step of nsteps */
  double lock_wait;                  /* seconds to wait for the migration lock */
  int ops;                           /* slot of the op metatable (upgrade/downgrade) */
  bool direct;                       /* connected through the config's direct_url */
  bool relaxed;                      /* the session commits with synchronous_commit off (durable.c) */
} luamig_run;


/* What a command will need, for luamig_run_init. */
enum {
  LUAMIG_RUN_CONNECT = 1,            /* the database: start connecting before the files are read */
  LUAMIG_RUN_SUMS = 2,               /* the files' SHA-256 (audit log, changed-file warnings) */
  LUAMIG_RUN_MIGRATE = 4             /* a run that takes the lock: through direct_url when set */
};
/* The first versions directory, where the caches of its runs go (pushed; NULL: none). */
const char *luamig_run_cache_dir(luamig_run *r);
/* ---- logseen.c: the audit logs seen, by fingerprint ----
 * Whether a log whose fingerprint's SHA-256 is print was seen, with its
 * digest then; records that (dir NULL: no cache). */
bool luamig_logseen_find(lua_State *L, const char *dir, const char *print, char digest[65]);
void luamig_logseen_add(lua_State *L, const char *dir, const char *print, const char *digest);
/* Options (table at 1) -> config -> [connection under way] -> graph, all pushed. */
void luamig_run_init(lua_State *L, luamig_run *r, int flags);
/* Finishes connecting (starts, if init was not told to): r->c in slot r->conn,
 * to be closed on return or error. */
void luamig_run_connect(luamig_run *r);
/* Progress to opts.log(event, text, ms, step, nsteps); events: "start",
 * "done", "fail", "info", "warn", "sql" (offline script lines), "heads" (the
 * version rows before a live upgrade or downgrade and after each revision:
 * "a, b" or "a\nb"; "" for none), "progress" (op.backfill's, for a terminal). */
void luamig_run_log(luamig_run *r, const char *event, const char *text, double ms);
bool luamig_opt_flag(lua_State *L, int opts, const char *name);
/* The same before luamig_run_init: whether the options (argument 1, a table
 * or nil) set name to a true value. */
bool luamig_opt_preset(lua_State *L, const char *name);
/* Reads the version table into cur (indices); raises on an id no file has. */
int luamig_read_current(luamig_run *r, int *cur, bool *present);
/* Pushes { revision, down_revision, message, path, head, base, branchpoint, mergepoint }. */
void luamig_push_rev_info(lua_State *L, const luamig_graph *g, int i);
/* Pushes "a, b" of the ids in list ("" for none); returns it. */
const char *luamig_push_ids(lua_State *L, const luamig_graph *g, const int *list, int n);
/* Server WARNINGs held during the run go to the log as "warn" events. */
void luamig_run_warnings(luamig_run *r);
/* Connects and takes the lock, or (offline: opts.sql) prepares a script;
 * pushes the op context and returns its stack index. */
int luamig_run_open(luamig_run *r, bool offline);
/* Offline: hands the statements gathered in the context at ctxidx to the log
 * as "sql" events, and empties its script. */
void luamig_run_drain(luamig_run *r, int ctxidx);
/* backup.c: --backup FILE, pg_dump of the run's database; the password
 * reaches pg_dump in a passfile of its own, never on its command line. */
void luamig_backup(luamig_run *r, const char *file);

/* ---- findings.c: the audit log against the version table and the files ---- */

/* Pushes { changed = {rev info...}, missing = {id...}, ahead = {id...}, behind =
 * {id...}, stale = {id...}, interrupted = {rev info...}, log = message or nil } (see luamig verify) for the
 * version table's rows cur (those files have) and, when unknown is not 0, the
 * array of ids at that stack slot (those no file has); returns their count. */
int luamig_push_findings(luamig_run *r, const int *cur, int ncur, int unknown);
/* Logs the findings at the top as warnings; with opts.strict any is an error. */
void luamig_warn_findings(luamig_run *r, int nfound);
/* stamp: the audit rows ("stamp", "unstamp") that make the log agree with the
 * version table after move m from rows cur, through ctx (in stamp's transaction). */
void luamig_log_stamp(luamig_run *r, luamig_opctx *ctx, const int *cur, int ncur,
                      const luamig_move *m);

/* ---- runner.c, stamp.c: upgrade and downgrade (the retry engine), stamp ---- */

int luamig_open_runner(lua_State *L);
int luamig_open_stamp(lua_State *L);

/* ---- durable.c: a transaction per revision, one flush to disk per run ---- */

/* Before the first of several steps: SET synchronous_commit = off, through
 * the context (so --sql scripts carry it too). */
void luamig_durable_relax(lua_State *L, luamig_run *r, luamig_opctx *ctx);
/* Appends to st the SET that gives the session its own setting back (before
 * a non-transactional revision, whose statements must each be flushed). */
void luamig_durable_restore(luamig_run *r, luamig_stmt *st, int *n);
/* Appends, in the last step's transaction before its COMMIT, the SET LOCAL
 * that makes that COMMIT flush every one before it. */
void luamig_durable_commit(const luamig_run *r, luamig_stmt *st, int *n);
/* Every step committed, the last one flushed. */
void luamig_durable_done(luamig_run *r);

/* ---- report.c: current, heads, history, show, branches, status, verify ---- */

int luamig_open_report(lua_State *L);

/* ---- scaffold.c: init and revision (files for people) ---- */

int luamig_open_scaffold(lua_State *L);

/* ---- lint.c: the migration safety lint (rules in lua/luamig/lint_rules.lua) ---- */

/* Before upgrade applies steps: lints the revisions it will apply (opts.lint:
 * "warn", the default, logs each finding as a "warn" event; "strict" raises when
 * any finding is not allowed; "off" does nothing). */
void luamig_lint_plan(luamig_run *r, const luamig_step *steps, int nsteps);
int luamig_open_lint(lua_State *L);

/* ---- json.c: --json output (the CLI) ---- */

/* Pushes the JSON text of the value at idx (arrays for sequences, objects
 * with sorted keys); returns it. */
const char *luamig_push_json(lua_State *L, int idx);
/* Pushes the Lua value of the JSON text s (null: nil); false (nothing pushed)
 * when it is not one JSON value. */
bool luamig_json_decode(lua_State *L, const char *s, size_t len);

/* ---- autogen.c: revision --autogenerate and check (the work is lua/luamig/autogen.lua) ---- */

int luamig_open_autogen(lua_State *L);

/* ---- testcmd.c: luamig test (the checks are lua/luamig/testrun.lua) ---- */

/* Pushes { test = core.test, scratch = { conninfo, spawn, tempdir, trap, interrupted,
 * pid, config, batch } }: what the checks need from libpq and the system. */
int luamig_open_test(lua_State *L);

/* build/gen/embedded_lua.c (written by scripts/embed.c), linked into the command only:
 * registers the Lua modules autogenerate needs (luamig.schema, luamig.autogen,
 * ...) in package.preload, so the command needs no Lua files on disk. */
void luamig_open_embedded(lua_State *L);

/* core.c */
int luaopen_luamig_core(lua_State *L);

#endif

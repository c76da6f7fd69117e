/*
 * luamig_sql.h: src/sql/ as the folders above it see it: statement text without
 * a connection: quoting, the SQL scanner, what an op is (the registry's row,
 * which the builders read), its arguments checked, the statement builders, the
 * text of luamig's own statements. Part of luamig.h (include that); what only
 * src/sql/ uses is in src/sql/sql.h.
 */
#ifndef LUAMIG_SQL_H
#define LUAMIG_SQL_H

/* ---- quote.c: identifiers and literals (pure: no connection) ---- */

/* Appends s (len bytes) quoted by PostgreSQL's rules ("" doubled, wrapped in "):
 * the one function every identifier goes through. Raises when s is empty, holds
 * a NUL byte or is longer than 63 bytes: "what: ..." naming label, or a plain
 * error when what is NULL. */
void luamig_add_ident(lua_State *L, luaL_Buffer *b, const char *what, const char *label,
                      const char *s, size_t len);
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

/* ---- args.c: an op's Lua arguments, checked ---- */

/* Raises "<position>what: <formatted message>" (position of the Lua caller). */
int luamig_op_error(lua_State *L, const char *what, const char *fmt, ...);
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
/* [schema.]name: the name at stack slot name_idx, the schema from opts.schema. */
void luamig_add_relation(lua_State *L, luaL_Buffer *b, const char *what, int name_idx,
                         int opts, const char *label);

/* sqltext.c: quote_ident, quote_literal, sql_tokens, fk_action, parse_reference,
 * max_ident and fk_actions for the Lua modules (lua/luamig/sqltext.lua, types.lua). */
int luamig_open_sqltext(lua_State *L);

/* The version table and its audit log, as named by the config (luamig_run.h). */
typedef struct luamig_vtable luamig_vtable;

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
/* The migration lock (lock.c). The session's dead-client check, set before
 * the first revision ($1: the pid of luamig_topology_pid); the key, hashed by the server from $1 table and $3
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

#endif

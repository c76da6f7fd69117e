/*
 * sql.h: what only the files of src/sql/ share (what other folders use is in
 * include/luamig_sql.h).
 */
#ifndef LUAMIG_SRC_SQL_H
#define LUAMIG_SRC_SQL_H

#include "luamig.h"

/* ---- quote.c: identifiers and literals (pure: no connection) ---- */

/* Whether PostgreSQL reads the name s (len bytes) back unchanged without quotes:
 * lower case letters, digits, _ and $, not a reserved word (its quote_ident()'s
 * rule). For SQL people read, such as the revisions autogenerate writes. */
bool luamig_ident_is_plain(const char *s, size_t len);

/* ---- sql_lex.c: the scanner of SQL text (quotes, dollar quotes, E'' strings,
 * nested comments), and what luamig asks of it ---- */

/* Pushes the tokens of sql, comments and spaces left out: an array of { k =
 * kind, v = value, s = first byte, e = last byte (1-based) [, open = true when a
 * quote is left open] }. Kinds: "word" (v folded to lower case), "ident" (a quoted
 * name; v without the quotes), "str" (v as written), "num", "param" ($1), "op"
 * (an operator), "::", and any other character as itself ("(", ",", ";", ...).
 * Returns their count. */
int luamig_push_sql_tokens(lua_State *L, const char *sql);

/* ---- args.c: an op's Lua arguments, checked ---- */

/* The string at the top, checked to be a string without NUL bytes (label names it). */
const char *luamig_top_string(lua_State *L, const char *what, const char *label);
/* The string at stack slot idx, checked as an identifier; returns it. */
const char *luamig_arg_ident(lua_State *L, const char *what, int idx, const char *label);

/* ---- sql.c and sql_*.c: statement text (pure: no connection) ---- */

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
/* ("a", "b") from the array of names at idx; raises when it is empty. */
void luamig_add_ident_list(lua_State *L, luaL_Buffer *b, const char *what, int idx,
                           const char *label);

#endif

/*
 * luamig.h: the C core's shared interface: what crosses folders. The layers of
 * src/, lowest first, each calling only those before it (spec/layers_spec.lua),
 * declare what they offer in include/luamig_LAYER.h, included below in that
 * order; what only one folder uses is in its own header (src/sql/sql.h, ...).
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

#include "luamig_sql.h"
#include "luamig_db.h"
#include "luamig_revs.h"
#include "luamig_ops.h"
#include "luamig_run.h"

/* ---- src/cmd/: the commands ---- */

/* core.c: the luamig.core Lua module (the command opens it too) */
int luaopen_luamig_core(lua_State *L);

#endif

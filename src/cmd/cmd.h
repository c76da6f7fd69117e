/*
 * cmd.h: what only the files of src/cmd/ share (what other folders use is in
 * include/luamig_cmd.h).
 */
#ifndef LUAMIG_SRC_CMD_H
#define LUAMIG_SRC_CMD_H

#include "luamig.h"

/* ---- loader.c: revision files -> graph entries, each in its own environment ---- */

/* Plans of up to this many steps keep each body the pre-run checks compile
 * (the lint, the syntax check) for the run; larger ones compile it again when
 * the step runs, so 10,000 bodies are never held at once (the 30 MB budget). */
#define LUAMIG_KEEP_BODIES 1000

/* ---- runner.c, stamp.c: upgrade and downgrade (the retry engine), stamp ---- */

int luamig_open_runner(lua_State *L);
int luamig_open_stamp(lua_State *L);

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

/* ---- autogen.c: revision --autogenerate and check (the work is lua/luamig/autogen.lua) ---- */

int luamig_open_autogen(lua_State *L);

/* ---- testcmd.c: luamig test (the checks are lua/luamig/testrun.lua) ---- */

/* Pushes { test = core.test, scratch = { conninfo, spawn, tempdir, trap, interrupted,
 * pid, config, batch } }: what the checks need from libpq and the system. */
int luamig_open_test(lua_State *L);

#endif

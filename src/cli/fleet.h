/*
 * fleet.h: one command on many databases or tenant schemas at once. The parts:
 * fleet.c chooses the targets, fleet_pool.c runs the luamig command itself once
 * per target (at most --jobs at a time), fleet_child.c is what such a child does
 * and how the parent prints what they did.
 */
#ifndef LUAMIG_FLEET_H
#define LUAMIG_FLEET_H

#include <stdbool.h>

#include <lua.h>

/* The environment of a child: its target's connection string (never in argv,
 * where ps would show a password), the tenant schema, the parent's pid, and
 * the command's options (JSON: what the parent parsed, but the fleet's own). */
#define FLEET_URL_ENV "LUAMIG_FLEET_URL"
#define FLEET_SCHEMA_ENV "LUAMIG_FLEET_SCHEMA"
#define FLEET_PARENT_ENV "LUAMIG_FLEET_PARENT"
#define FLEET_OPTS_ENV "LUAMIG_FLEET_OPTS"

/* Runs cmd in every target of the array at slot targets ({ label, url,
 * schema }), jobs at a time, with the options (JSON) at slot opts; a failure
 * stops new starts unless keep_going. Pushes the array of results (each the
 * child's JSON object, with target and ms; "not run" for those never started). */
void luamig_fleet_pool(lua_State *L, const char *cmd, int targets, int opts, int jobs,
                       bool keep_going);

/* A child's run of cmd (opts at stack slot 1): prints one JSON object, returns
 * the exit status. */
int luamig_fleet_child(lua_State *L, const char *cmd);

/* Prints the summary table (or, with --json, one object per line) of the results
 * at slot res; returns the exit status of the whole run. */
int luamig_fleet_report(lua_State *L, const char *cmd, int res);

#endif

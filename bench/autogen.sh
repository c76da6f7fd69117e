#!/usr/bin/env bash
# The autogenerate benchmark (part of `make bench`): introspects and diffs a 10-table
# and a 1,000-table schema (10 columns, 2 indexes, 1 foreign key each) and prints the
# time and the number of catalog queries for each (the goal: under a second, and the
# same count at 10 tables and 1,000). Uses $PGHOST/$PGPORT when PGHOST is set, else
# starts a throwaway cluster (port $BENCH_PORT, default 5492).
#   bash bench/autogen.sh [N...]      (default: 10 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
LUA=${LUA:-lua5.4}

[[ -f build/lib/luamig/core.so ]] || make -s all
if [[ -z ${PGHOST:-} ]]; then
  source bench/lib.sh
  bench_cluster autogen "${BENCH_PORT:-5492}"
fi
LUA_PATH="$root/lua/?.lua;;" LUA_CPATH="$root/build/lib/?.so;;" "$LUA" bench/autogen.lua "$@"

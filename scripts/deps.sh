#!/usr/bin/env bash
# Checks that everything `make`/`make test` needs is installed; on a Debian
# system where we are root, installs what is missing, otherwise names the
# packages to install and fails. A fast no-op when all is present.
set -euo pipefail

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PQ_INCDIR=$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)

# Prints the Debian package of every missing piece (one per line).
missing() {
  command -v lua5.4 >/dev/null || echo lua5.4
  [[ -f /usr/include/lua5.4/lua.h ]] || echo liblua5.4-dev
  # busted must be installed for Lua 5.4 too, not only for the default 5.1.
  { command -v busted >/dev/null &&
    lua5.4 -e 'require "busted.runner"' >/dev/null 2>&1; } || echo lua-busted
  command -v luarocks >/dev/null || echo luarocks
  [[ -f $PQ_INCDIR/libpq-fe.h ]] || echo libpq-dev
  [[ -x $PG_BINDIR/initdb ]] || echo postgresql
  command -v cc >/dev/null || echo gcc
}

need=$(missing | sort -u | paste -sd ' ')
[[ -z $need ]] && exit 0

if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "deps: installing missing packages: $need" >&2
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  # Quiet on success; the whole log on failure.
  # shellcheck disable=SC2086  # $need is a word list on purpose
  if ! { apt-get update -q &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
           lua5.4 liblua5.4-dev lua-busted luarocks libpq-dev postgresql $need; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps: apt-get failed" >&2
    exit 1
  fi
  # The packaged cluster may have auto-started; harmless, the specs never use it.
  need=$(missing | sort -u | paste -sd ' ')
  [[ -z $need ]] && exit 0
fi

echo "deps: missing packages: $need" >&2
echo "deps: install them with: apt-get install $need" >&2
exit 1

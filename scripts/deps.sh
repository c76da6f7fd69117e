#!/usr/bin/env bash
# Checks that everything `make`/`make test` needs is installed; on a Debian
# system where we are root, installs what is missing, otherwise names the
# packages to install and fails. A fast no-op when all is present.
# clang (with libFuzzer) and valgrind are optional: installed when we can,
# else named in a warning; `make test` then skips the fuzz and valgrind checks.
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
  command -v pgbouncer >/dev/null || echo pgbouncer   # the pooler specs
  command -v openssl >/dev/null || echo openssl       # the SSL spec's certificate
}

# Prints the Debian package of every missing optional tool (Debian 12: clang 14).
missing_optional() {
  command -v clang >/dev/null || echo clang
  compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a' >/dev/null ||
    echo libclang-rt-14-dev
  command -v valgrind >/dev/null || echo valgrind
}

need=$(missing | sort -u | paste -sd ' ')
optional=$(missing_optional | sort -u | paste -sd ' ')
[[ -z $need && -z $optional ]] && exit 0

if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "deps: installing missing packages: $need $optional" >&2
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  # Quiet on success; the whole log on failure. The optional packages go in a
  # second apt-get, so one absent from this release cannot block the rest.
  # shellcheck disable=SC2086  # $need is a word list on purpose
  if ! { apt-get update -q &&
         { [[ -z $need ]] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
             lua5.4 liblua5.4-dev lua-busted luarocks libpq-dev postgresql $need; }; } \
       >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps: apt-get failed" >&2
    exit 1
  fi
  # shellcheck disable=SC2086
  if [[ -n $optional ]] &&
     ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q $optional >"$log" 2>&1; then
    tail -n 5 "$log" >&2
  fi
  # The packaged cluster may have auto-started; harmless, the specs never use it.
  need=$(missing | sort -u | paste -sd ' ')
  optional=$(missing_optional | sort -u | paste -sd ' ')
fi

if [[ -n $optional ]]; then
  echo "deps: WARNING: missing optional packages: $optional" >&2
  echo "deps: without them make test skips fuzzing and valgrind (apt-get install $optional)" >&2
fi
[[ -z $need ]] && exit 0

echo "deps: missing packages: $need" >&2
echo "deps: install them with: apt-get install $need" >&2
exit 1

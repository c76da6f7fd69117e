#!/usr/bin/env bash
# Checks that everything a make target needs is installed; on a Debian system where we
# are root, installs what is missing (one apt-get, announced first), otherwise names the
# packages to install and fails. A fast no-op when all is present.
#   scripts/deps.sh [SET]        SET: build, demo, test (the default) or bench
#   scripts/deps.sh --list SET   the Debian packages of SET, one a line
# build: make (the command and the module); demo: make demo and make db-*; test: make
# test; bench: make bench. The optional packages of a set are installed when we can,
# else named in a warning: make test then skips the fuzz, valgrind, zsh and Alembic
# conformance checks.
set -euo pipefail

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PQ_INCDIR=$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)

# Each set, as "package|check": the check (a shell command) succeeds when it is installed.
# The build runs no Lua interpreter (scripts/embed.c embeds the Lua modules); libpq-dev
# brings libssl-dev, whose libcrypto the build links too.
BUILD=(
  "gcc|command -v cc"
  "libc6-dev|test -f /usr/include/stdio.h"
  "make|command -v make"
  "liblua5.4-dev|test -f /usr/include/lua5.4/lua.h"
  "libpq-dev|test -f $PQ_INCDIR/libpq-fe.h && test -f /usr/include/openssl/sha.h"
)
DEMO=("${BUILD[@]}"
  "postgresql|test -x $PG_BINDIR/initdb"
)
# busted must be installed for Lua 5.4 too, not only for the default 5.1. git and unzip:
# the specs clone the tree and look into a packed rock.
TEST=("${DEMO[@]}"
  "lua5.4|command -v lua5.4"
  "lua-busted|command -v busted && lua5.4 -e 'require \"busted.runner\"'"
  "luarocks|command -v luarocks"
  "git|command -v git"
  "unzip|command -v unzip"
  "pgbouncer|command -v pgbouncer"   # the pooler specs
  "openssl|command -v openssl"       # the SSL spec's certificate
  "strace|command -v strace"         # the header cache specs: which files a run opens
)
TEST_OPTIONAL=(    # Debian 12: clang 14 and its libFuzzer
  "clang|command -v clang"
  "libclang-rt-14-dev|compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a'"
  "valgrind|command -v valgrind"
  "zsh|command -v zsh"
  # the differential test against Alembic (scripts/conformance), with Debian's python3
  "python3-alembic|/usr/bin/python3 -c 'import alembic'"
  "python3-psycopg2|/usr/bin/python3 -c 'import psycopg2'"
)
BENCH=("${DEMO[@]}"
  "lua5.4|command -v lua5.4"
  "hyperfine|command -v hyperfine"
)
BENCH_OPTIONAL=(
  "time|test -x /usr/bin/time"
)

die() { printf 'deps: %s\n' "$*" >&2; exit 1; }

# Selects the arrays of set $1 into required[] and optional[].
select_set() {
  optional=()
  case $1 in
    build) required=("${BUILD[@]}") ;;
    demo) required=("${DEMO[@]}") ;;
    test) required=("${TEST[@]}") optional=("${TEST_OPTIONAL[@]}") ;;
    bench) required=("${BENCH[@]}") optional=("${BENCH_OPTIONAL[@]}") ;;
    *) die "unknown set '$1' (build, demo, test or bench)" ;;
  esac
}

# The packages of the entries given whose check fails, space-separated.
missing() {
  local entry out=()
  for entry in "$@"; do
    bash -c "${entry#*|}" >/dev/null 2>&1 || out+=("${entry%%|*}")
  done
  printf '%s\n' "${out[@]}" | sort -u | paste -sd ' '
}

if [[ ${1:-} == --list ]]; then
  select_set "${2:-test}"
  for entry in "${required[@]}" "${optional[@]}"; do printf '%s\n' "${entry%%|*}"; done | awk '!seen[$0]++'
  exit 0
fi
set=${1:-test}
select_set "$set"

need=$(missing "${required[@]}")
maybe=$(missing "${optional[@]}")
[[ -z $need && -z $maybe ]] && exit 0

if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
  # shellcheck disable=SC2086  # word lists on purpose
  set -- $need $maybe
  printf 'deps: installing %d package%s: %s (apt-get, may take a minute)\n' \
    $# "$([[ $# == 1 ]] || echo s)" "$*" >&2
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  # Quiet on success; the whole log on failure. The optional packages go in a second
  # apt-get, so one absent from this release cannot block the rest.
  # shellcheck disable=SC2086
  if ! { apt-get update -q &&
         { [[ -z $need ]] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need; }; } \
       >"$log" 2>&1; then
    cat "$log" >&2
    die "apt-get failed (its output is above)"
  fi
  # shellcheck disable=SC2086
  if [[ -n $maybe ]] &&
     ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q $maybe >"$log" 2>&1; then
    tail -n 5 "$log" >&2
  fi
  # The packaged cluster may have auto-started; harmless, the scripts never use it.
  need=$(missing "${required[@]}")
  maybe=$(missing "${optional[@]}")
fi

if [[ -n $maybe ]]; then
  printf 'deps: WARNING: missing optional packages: %s (apt-get install %s); make %s skips what needs them\n' \
    "$maybe" "$maybe" "$set" >&2
fi
[[ -z $need ]] || die "missing packages for make $set: $need (as root: apt-get install $need)"

#!/usr/bin/env bash
# Runs the specs against a throwaway PostgreSQL: all of them with build/luamig,
# then the #cli ones again with the ASan/UBSan build (build-asan/luamig); then
# each fuzz target for 3 s (scripts/fuzz.sh), the CLI's main commands under
# valgrind, each counted as one test, and 50 seeds of the differential test
# against Alembic (scripts/conformance), one test per 10 seeds (these three
# only when no arguments are given).
#   scripts/test.sh [busted args]   (default: spec; e.g. spec/graph_spec.lua)
# The last line is always "N passed, N failed"; the exit status is 0 only when
# nothing failed and both runs ran at least one test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
specs=("$@")
[[ ${#specs[@]} -gt 0 ]] || specs=(spec)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/luamig-test.XXXXXX")
chmod 755 "$tmp"                  # postgres must reach the cluster dir inside
cleanup() {
  # servers a spec started (scripts/topology.sh) and left behind, e.g. on ^C
  for d in "$tmp"/t/topology.*/*; do bash scripts/topology.sh stop "$d" >/dev/null 2>&1 || true; done
  bash scripts/pgcluster.sh remove "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# Bash runs these only once the foreground busted returns; a terminal ^C reaches
# busted too, and helpers.lua then ends the run at once.
trap 'exit 130' INT
trap 'exit 143' TERM

eval "$(bash scripts/pgcluster.sh start "$tmp/pg")"
export PGHOST PGPORT PGUSER
# Nothing of the caller's may point the specs at a real database.
unset DATABASE_URL PGDATABASE PGHOSTADDR PGSERVICE PGPASSWORD PGOPTIONS
export LUAMIG_BIN=$root/build/luamig
mkdir "$tmp/t"
export TMPDIR=$tmp/t              # spec temp files vanish with the trap

# Any sanitizer report ends the process with exit 86, which no spec expects
# (helpers.lua also fails the spec when it sees a report on stderr).
# LeakSanitizer works in this sandbox (checked: a leaking test program and a
# libpq + Lua program run under ASan here), so leaks count as failures too.
san=halt_on_error=1:abort_on_error=0:exitcode=86:print_stacktrace=1
asan_env=(
  "ASAN_OPTIONS=$san:detect_leaks=1:check_initialization_order=1:detect_stack_use_after_return=1"
  "UBSAN_OPTIONS=$san"
)

passed=0 failed=0 problems=()
# tally NAME LOG RC [list]: counts LOG's TAP lines ("ok ...", "not ok ..."); a
# run that failed without a "not ok" line, or ran nothing, counts as one
# failure. With list, each "not ok" line goes to the summary too.
tally() {
  local name=$1 log=$2 rc=$3 ok notok line
  ok=$(grep -c '^ok ' "$log" || true)
  notok=$(grep -c '^not ok ' "$log" || true)
  passed=$((passed + ok)) failed=$((failed + notok))
  if [[ $((ok + notok)) -eq 0 || ($rc -ne 0 && $notok -eq 0) ]]; then
    failed=$((failed + 1))
    problems+=("$name: exited $rc after $((ok + notok)) tests")
  fi
  [[ ${4:-} == list ]] || return 0
  while IFS= read -r line; do
    problems+=("$name: $line (the report is above)")
  done < <(grep '^not ok ' "$log" || true)
}

# run NAME [env assignments...] -- busted args: runs busted, shows and tallies its TAP output.
run() {
  local name=$1 log=$tmp/$1.tap rc
  shift
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  echo "== $name" >&2
  set +e
  env "${envs[@]}" busted --lua=lua5.4 -o TAP "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  # busted erroring without a failing test (bad option, crash) or running nothing is a failure too.
  tally "$name" "$log" "$rc"
}

run plain -- "${specs[@]}"
if [[ -x build-asan/luamig ]]; then
  run asan "LUAMIG_BIN=$root/build-asan/luamig" "${asan_env[@]}" -- --tags=cli "${specs[@]}"
else
  failed=$((failed + 1))
  problems+=("asan: build-asan/luamig is missing (make asan)")
fi

# Fuzzing: each libFuzzer target for 3 s after replaying its regression inputs
# (scripts/fuzz.sh); one test per target. Skipped, loudly, only without clang.
# Both run only with the whole suite (no busted arguments).
loud() { printf '\n!!!! %s\n!!!! %s\n\n' "$1" "$2" >&2; }
whole=1
[[ $# -eq 0 ]] || { whole=0; echo "(fuzz and valgrind checks: only without arguments)" >&2; }
if [[ $whole -eq 0 ]]; then
  :
elif command -v clang >/dev/null; then
  echo "== fuzz" >&2
  set +e
  FUZZ_SEEDS_ONLY=1 bash scripts/fuzz.sh 3 2>&1 | tee "$tmp/fuzz.log"
  rc=${PIPESTATUS[0]}
  set -e
  tally fuzz "$tmp/fuzz.log" "$rc" list
else
  loud "SKIPPED: fuzzing (clang is missing)" "install it: apt-get install clang libclang-rt-14-dev"
fi

# valgrind on the CLI's main paths, on a copy of the example project and a fresh
# database; one test per command. Definite and indirect leaks and memory errors
# fail; "still reachable" blocks (libpq, OpenSSL) do not.
if [[ $whole -eq 0 ]]; then
  :
elif command -v valgrind >/dev/null; then
  echo "== valgrind" >&2
  vg=$tmp/valgrind
  mkdir "$vg"
  cp -r luamig.lua versions "$vg/"
  vg_cmds=("--version" "history" "heads" "upgrade head" "current" "downgrade base"
           "upgrade head --sql")
  if ! /usr/lib/postgresql/15/bin/psql -X -q -d postgres \
         -c 'CREATE DATABASE luamig_valgrind' >&2; then
    vg_cmds=()
    failed=$((failed + 1))
    problems+=("valgrind: could not create the database luamig_valgrind")
  fi
  for cmd in "${vg_cmds[@]}"; do
    log=$vg/$(printf '%s' "$cmd" | tr -c '[:alnum:]' '_').log
    # shellcheck disable=SC2086  # $cmd is the command's words
    if (cd "$vg" && DATABASE_URL=dbname=luamig_valgrind valgrind -q --leak-check=full \
          --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
          --error-exitcode=99 "$root/build/luamig" $cmd) >"$log" 2>&1; then
      echo "ok - valgrind luamig $cmd"
      passed=$((passed + 1))
    else
      rc=$?
      echo "not ok - valgrind luamig $cmd (exit $rc)"
      sed 's/^/    /' "$log" | head -n 40
      failed=$((failed + 1))
      problems+=("valgrind: luamig $cmd exited $rc (99: valgrind found errors); report above")
    fi
  done
else
  loud "SKIPPED: valgrind checks (valgrind is missing)" "install it: apt-get install valgrind"
fi

# The differential test against Alembic: 50 fixed seeds (random graphs and
# commands), two workers. Skipped, loudly, without Debian's python3-alembic and
# python3-psycopg2 (make deps installs them as root).
if [[ $whole -eq 0 ]]; then
  :
elif /usr/bin/python3 -c 'import alembic, psycopg2' 2>/dev/null; then
  echo "== conformance with Alembic" >&2
  set +e
  # a fixed hash seed: Alembic keeps some revisions in Python sets, so the run is the same each time
  PYTHONHASHSEED=0 /usr/bin/python3 scripts/conformance/conformance.py --luamig build/luamig --seeds 50 \
    --commands 20 --batch 10 --jobs 2 --tap 2>&1 | tee "$tmp/conformance.log"
  rc=${PIPESTATUS[0]}
  set -e
  tally conformance "$tmp/conformance.log" "$rc" list
else
  loud "SKIPPED: conformance with Alembic (python3-alembic or python3-psycopg2 is missing)" \
       "install them: apt-get install python3-alembic python3-psycopg2 (or make deps as root)"
fi

if [[ $failed -gt 0 ]]; then
  echo
  echo "---- failures"
  for name in plain asan; do
    [[ -f $tmp/$name.tap ]] || continue
    # Each "not ok" line with the first lines of its "#" comment block.
    awk -v run="$name" '/^not ok / { print "[" run "] " $0; n = 0; on = 1; next }
                        on && /^#/ { if (n++ < 12) print; next }
                        { on = 0 }' "$tmp/$name.tap"
  done
  for p in "${problems[@]}"; do echo "$p"; done
  echo "----"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

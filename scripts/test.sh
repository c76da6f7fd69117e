#!/usr/bin/env bash
# Runs the specs against a throwaway PostgreSQL: all of them with build/luamig,
# then the #cli ones again with the ASan/UBSan build (build-asan/luamig).
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
  bash scripts/pgcluster.sh stop "$tmp/pg" >/dev/null 2>&1 || true
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
# run NAME [env assignments...] -- busted args: runs busted, shows and tallies its TAP output.
run() {
  local name=$1 log=$tmp/$1.tap rc ok notok
  shift
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  echo "== $name" >&2
  set +e
  env "${envs[@]}" busted --lua=lua5.4 -o TAP "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  ok=$(grep -c '^ok ' "$log" || true)
  notok=$(grep -c '^not ok ' "$log" || true)
  passed=$((passed + ok)) failed=$((failed + notok))
  # busted erroring without a failing test (bad option, crash) or running nothing is a failure too.
  if [[ $((ok + notok)) -eq 0 || ($rc -ne 0 && $notok -eq 0) ]]; then
    failed=$((failed + 1))
    problems+=("$name: busted exited $rc after $((ok + notok)) tests")
  fi
}

run plain -- "${specs[@]}"
if [[ -x build-asan/luamig ]]; then
  run asan "LUAMIG_BIN=$root/build-asan/luamig" "${asan_env[@]}" -- --tags=cli "${specs[@]}"
else
  failed=$((failed + 1))
  problems+=("asan: build-asan/luamig is missing (make asan)")
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

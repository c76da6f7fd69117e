#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzz.c) with clang, ASan and UBSan from
# the core sources (the Makefile's CORE_SRC), replays every input kept in
# fuzz/regressions/TARGET/, then fuzzes each target for SECONDS.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default 60 s; every target)
# SECONDS=0 builds and replays the regressions and the corpora without fuzzing.
# The fuzzing starts from the seeds in fuzz/corpus/TARGET/ and what earlier runs
# found (build-fuzz/corpus/TARGET/); FUZZ_SEEDS_ONLY=1 (make test) from the seeds
# alone, so its time stays the same however long the corpus grows.
# One line per target: "ok - TARGET ..." or "not ok - TARGET ...". Exit status 1
# when any target crashed, leaked, hit UB or timed out (the report and the input
# are printed, and kept under build-fuzz/run.PID/), 2 when clang is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
[[ $secs =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2; }
[[ $# -gt 0 ]] && shift
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for f in fuzz/*_fuzz.c; do targets+=("$(basename "$f" .c)"); done
fi

CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null; then
  echo "fuzz: $CC is missing: apt-get install clang libclang-rt-14-dev (or make deps as root)" >&2
  exit 2
fi

B=build-fuzz
PQ_INCDIR=$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# Scratch space of this run only (make test may run beside a make fuzz): removed
# when every target passed, kept for its logs and inputs otherwise.
run=$B/run.$$
mkdir -p "$run"
failed=0
trap '[[ $failed -ne 0 ]] || rm -rf "$run"' EXIT

# The core objects (the Makefile's CORE_SRC: no CLI) through its own rule: same
# warnings, rebuilt only when a source or the header changes.
# shellcheck disable=SC2016  # $(CORE_SRC) is for make, not the shell
core=$(printf 'fuzz-core-src:\n\t@echo $(CORE_SRC)\n' |
       make -s --no-print-directory -f Makefile -f - fuzz-core-src)
objs=()
for src in $core; do objs+=("$B/obj/$(basename "$src" .c).o"); done
[[ ${#objs[@]} -gt 0 ]] || { echo "fuzz: no CORE_SRC in the Makefile" >&2; exit 1; }
if ! make -s B=$B CC="$CC" CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $SAN" "${objs[@]}" \
     >"$run/build.log" 2>&1; then
  cat "$run/build.log" >&2
  for t in "${targets[@]}"; do echo "not ok - $t: the core did not build with $CC"; done
  failed=1
  exit 1
fi

export ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
budget=(-max_total_time="$secs")
[[ $secs -gt 0 ]] || budget=(-runs=0)     # 0: run the corpus once, no fuzzing

for t in "${targets[@]}"; do
  bin=$B/$t log=$run/$t.log
  if [[ ! -f fuzz/$t.c ]]; then
    echo "not ok - $t: no fuzz/$t.c"; failed=1; continue
  fi
  stale=0
  for dep in "fuzz/$t.c" fuzz/fuzz.h include/*.h "${objs[@]}"; do
    [[ $bin -nt $dep ]] || { stale=1; break; }
  done
  if [[ $stale -eq 1 ]]; then
    # shellcheck disable=SC2086  # $SAN is a list of flags
    if ! "$CC" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -O1 -g \
           -fsanitize=fuzzer $SAN -Iinclude -I/usr/include/lua5.4 -I"$PQ_INCDIR" \
           "fuzz/$t.c" "${objs[@]}" -llua5.4 -lpq -lcrypto -lm -pthread -o "$run/$t.bin" >"$log" 2>&1; then
      sed 's/^/    /' "$log"
      echo "not ok - $t: did not build"; failed=1; continue
    fi
    mv -f "$run/$t.bin" "$bin"         # a rename: a concurrent run never sees half a binary
  fi

  # The targets' temp files go to the run's scratch dir; new finds to build-fuzz/corpus.
  mkdir -p "$run/$t/tmp" "$run/$t/artifacts" "$run/$t/pending" "$B/corpus/$t" "$run/$t/corpus"
  corpora=("$B/corpus/$t")                 # the first gets the new finds
  [[ ${FUZZ_SEEDS_ONLY:-0} == 0 ]] || corpora=("$run/$t/corpus")
  export TMPDIR=$PWD/$run/$t/tmp
  opts=(-max_len=4096 -rss_limit_mb=2048 -timeout=5 "-artifact_prefix=$run/$t/artifacts/")

  mapfile -t regs < <(find "fuzz/regressions/$t" -type f ! -name '.*' 2>/dev/null | sort)
  what=
  if [[ ${#regs[@]} -gt 0 ]] && ! "./$bin" "${opts[@]}" "${regs[@]}" >"$log" 2>&1; then
    what="a regression input fails again"
  elif ! "./$bin" "${opts[@]}" "${budget[@]}" -print_final_stats=1 \
         "${corpora[@]}" "fuzz/corpus/$t" >"$log" 2>&1; then
    what="the fuzzer found a failing input"
  fi

  # Inputs that fail in code its owner has yet to fix: reported, not counted.
  pending=0
  while IFS= read -r p; do
    if "./$bin" "${opts[@]}" "-artifact_prefix=$run/$t/pending/" "$p" >/dev/null 2>&1; then
      echo "# $t: $p passes now: git mv it to fuzz/regressions/$t/"
    else
      pending=$((pending + 1))
    fi
  done < <(find "fuzz/pending/$t" -type f ! -name '.*' 2>/dev/null | sort)
  [[ $pending -eq 0 ]] ||
    echo "# $t: $pending known failing input(s) in fuzz/pending/$t/ (see fuzz/README.md)"

  if [[ -z $what ]]; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    corp=$(find "${corpora[0]}" "fuzz/corpus/$t" -type f | wc -l)
    echo "ok - $t: ${runs:-?} runs in $secs s, coverage ${cov:-?}, corpus $corp," \
         "${#regs[@]} regression input(s) replayed"
    continue
  fi
  failed=1
  echo "not ok - $t: $what (log: $log)"
  # The sanitizer or libFuzzer report, then each input that failed.
  first=$(grep -n -m 1 -E 'ERROR: |runtime error:|^fuzz: ' "$log" | cut -d: -f1 || true)
  if [[ -n $first ]]; then sed -n "$first,$((first + 60))p" "$log"; else tail -n 30 "$log"; fi |
    sed 's/^/    /'
  for a in "$run/$t/artifacts"/*; do
    [[ -f $a ]] || continue
    echo "    input $a ($(wc -c <"$a") bytes):"
    od -A d -c "$a" | head -n 20 | sed 's/^/      /'
    echo "    replay: ./$bin $a    keep it: cp $a fuzz/regressions/$t/"
  done
  if [[ $what == "a regression"* ]]; then
    echo "    replay: ./$bin ${regs[*]}"
  fi
done
exit "$failed"

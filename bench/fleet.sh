#!/usr/bin/env bash
# The fleet figure of `make bench` (#20): DBS tenant databases (default 200), 10
# revisions each, migrated by one `luamig upgrade --all-databases` with --jobs 8
# and with --jobs 1, on a throwaway PostgreSQL of its own. Prints both times (the
# median of RUNS runs, each on freshly created databases) and the speed-up.
#   bash bench/fleet.sh
# Environment: BENCH_FLEET_DBS (default 200), BENCH_FLEET_RUNS (default 3),
# BENCH_LUAMIG (the binary, default build/luamig), BENCH_FLEET_PORT (default 5493).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

DBS=${BENCH_FLEET_DBS:-200}
RUNS=${BENCH_FLEET_RUNS:-3}
LUAMIG=${BENCH_LUAMIG:-$root/build/luamig}
PORT=${BENCH_FLEET_PORT:-5493}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PSQL=$PG_BINDIR/psql

say() { printf 'bench fleet: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ -x $LUAMIG ]] || die "no luamig binary at $LUAMIG (make)"
[[ -x $PSQL ]] || die "no psql at $PSQL (set PG_BINDIR)"

source bench/lib.sh
bench_cluster fleet "$PORT"

# The project: r01..r10, each a table with an index.
mkdir -p "$tmp/p/versions"
echo 'return { versions = "versions" }' >"$tmp/p/luamig.lua"
for i in $(seq -w 1 10); do
  prev=nil
  [[ $i == 01 ]] || prev=\"r$(printf '%02d' $((10#$i - 1)))\"
  cat >"$tmp/p/versions/r$i.lua" <<EOF
revision = "r$i"
down_revision = $prev
message = "table t$i"
function upgrade()
  op.create_table("t$i", { { "id", "bigint", primary_key = true }, { "name", "text" } })
  op.create_index("t${i}_name", "t$i", { "name" })
end
function downgrade() op.drop_table("t$i") end
EOF
done

psql_do() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
psql_do -c "CREATE DATABASE fleet_template"

# fresh: drops and creates the tenant databases (copies of an empty template), four sessions at once.
fresh() {
  local k i
  for k in 0 1 2 3; do
    for ((i = k + 1; i <= DBS; i += 4)); do
      ((i > 4)) || echo 'SET client_min_messages = warning;'   # no NOTICE for a database not there
      printf 'DROP DATABASE IF EXISTS tenant_%03d;\n' "$i"
      printf 'CREATE DATABASE tenant_%03d TEMPLATE fleet_template STRATEGY FILE_COPY;\n' "$i"
    done | psql_do -f - &
  done
  wait
}

# run JOBS: one fleet upgrade on fresh databases; prints its wall time in ms.
run() {
  fresh
  local t0 t1
  t0=$(date +%s%N)
  (cd "$tmp/p" && "$LUAMIG" -q upgrade --all-databases --match 'tenant\_%' --jobs "$1") \
    >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; die "luamig upgrade --jobs $1 failed"; }
  t1=$(date +%s%N)
  grep -q "^$DBS targets: $DBS ok$" "$tmp/out" || { cat "$tmp/out" >&2; die "not every database was migrated"; }
  (cd "$tmp/p" && "$LUAMIG" -q status --all-databases --match 'tenant\_%' --jobs 8 >"$tmp/status") ||
    { cat "$tmp/status" >&2; die "status after --jobs $1: not every database is at r10"; }
  echo $(((t1 - t0) / 1000000))
}

# median JOBS: the median of RUNS runs, in ms.
median() {
  local i times=()
  for ((i = 1; i <= RUNS; i++)); do
    times+=("$(run "$1")")
    say "--jobs $1, run $i: ${times[-1]} ms"
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p"
}

say "$DBS databases x 10 revisions, $RUNS runs each"
t8=$(median 8)
t1=$(median 1)
awk -v n="$DBS" -v a="$t1" -v b="$t8" -v c="$(nproc)" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  printf "fleet: %d databases x 10 revisions, luamig upgrade --all-databases: --jobs 1 %.1f s, --jobs 8 %.1f s: speed-up %.2fx (%d cores, load %s)\n",
         n, a / 1000, b / 1000, a / b, c, l }'

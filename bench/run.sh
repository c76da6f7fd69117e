#!/usr/bin/env bash
# The benchmarks of `make bench` (not part of `make test`): starts a throwaway
# PostgreSQL configured as a real server (fsync, full_page_writes and
# synchronous_commit on), writes the workloads (bench/gen.lua) into a temp dir,
# times luamig against psql floors (and Alembic/dbmate when installed), prints
# one markdown table, writes it to bench/results.md and into README.md's
# Performance section, then prints each goal of issue #18 as a PASS or FAIL
# line (the exit status is 1 when one fails).
#   bash bench/run.sh
# Environment: BENCH_RUNS (minimum timed runs per figure, default 5, at least 5),
# BENCH_LUAMIG (the binary, default build/luamig), BENCH_PEERS=off (no Alembic or dbmate), BENCH_OUT (default
# bench/results.md; README.md is updated only with the default), BENCH_PORT
# (default 5491; the cluster only has a Unix socket).
# Each figure is hyperfine's median of the timed runs after one warm-up run, with
# min and max; max RSS is one more run under /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

RUNS=${BENCH_RUNS:-5}
((RUNS >= 5)) || RUNS=5
LUAMIG=${BENCH_LUAMIG:-$root/build/luamig}
OUT=${BENCH_OUT:-$root/bench/results.md}
PORT=${BENCH_PORT:-5491}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PSQL=$PG_BINDIR/psql              # never /usr/bin/psql: a Perl wrapper that adds ~30 ms
LUA=${LUA:-lua5.4}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# hyperfine (the timer of every figure), lua5.4, PostgreSQL, GNU time (max RSS):
# installed when we are root, as for make bench.
bash scripts/deps.sh bench || exit 1
command -v hyperfine >/dev/null || die "hyperfine is needed (apt-get install hyperfine)"
command -v "$LUA" >/dev/null || die "$LUA is needed (apt-get install lua5.4)"
[[ -x $PSQL ]] || die "no psql at $PSQL (set PG_BINDIR)"
[[ -x /usr/bin/time ]] || say "no /usr/bin/time: the max RSS column will say n/a"
if [[ ! -x $LUAMIG ]]; then
  [[ -z ${BENCH_LUAMIG:-} ]] || die "no luamig binary at $LUAMIG"
  make -s all
fi

source bench/lib.sh
bench_cluster run "$PORT"
# The test clusters trade durability for speed; a benchmark of commits must not: every
# COMMIT waits for its WAL to reach the disk, as on a production server.
"$PSQL" -X -q -d postgres -c "ALTER SYSTEM SET fsync = on" -c "ALTER SYSTEM SET full_page_writes = on" \
  -c "ALTER SYSTEM SET synchronous_commit = on" -c "SELECT pg_reload_conf()" >/dev/null
durability=$("$PSQL" -X -A -t -d postgres -c "SELECT string_agg(name || ' ' || setting, ', ' ORDER BY name)
  FROM pg_settings WHERE name IN ('fsync', 'full_page_writes', 'synchronous_commit')")
[[ $durability == "fsync on, full_page_writes on, synchronous_commit on" ]] ||
  die "the cluster did not take the durable settings: $durability"

say "writing the workloads"
W=$tmp/w
$LUA bench/gen.lua "$W/lin1k" 1000 0
$LUA bench/gen.lua "$W/g1k" 1000 10
$LUA bench/gen.lua "$W/g10k" 10000 100

# fresh.sh NAME [TEMPLATE]: drops NAME and creates it empty (or as a copy of TEMPLATE).
cat >"$tmp/fresh.sh" <<EOF
#!/usr/bin/env bash
exec "$PSQL" -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS \$1" \\
  -c "CREATE DATABASE \$1 TEMPLATE \${2:-template0}"
EOF
fresh="bash $tmp/fresh.sh"
sql() { "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

lm() { printf '%s -q -c %s/luamig.lua' "$LUAMIG" "$W/$1"; }   # luamig on workload $1

# Alembic: its command (Debian's alembic package), or Debian's python3-alembic module.
have_alembic=false have_dbmate=false ALEMBIC=alembic
if command -v alembic >/dev/null; then
  have_alembic=true
elif /usr/bin/python3 -c 'import alembic, psycopg2' 2>/dev/null; then
  have_alembic=true ALEMBIC="/usr/bin/python3 -m alembic"
fi
command -v dbmate >/dev/null && have_dbmate=true
# BENCH_PEERS=off: luamig and the floors only (a quick check of the goals)
[[ ${BENCH_PEERS:-on} != off ]] || have_alembic=false have_dbmate=false
alembic_url() { printf 'postgresql+psycopg2://postgres@/%s?host=%s&port=%s' "$1" "$PGHOST" "$PGPORT"; }
al() {  # alembic on workload $1, database $2 (empty: offline)
  printf "env BENCH_ALEMBIC_URL='%s' %s -c %s/alembic.ini" "$(alembic_url "${2:-postgres}")" "$ALEMBIC" "$W/$1"
}
dm() {  # dbmate on the linear workload, database $1
  printf "dbmate --url 'postgres://postgres@:%s/%s?socket=%s&sslmode=disable' --migrations-dir %s --no-dump-schema" \
    "$PGPORT" "$1" "$PGHOST" "$W/lin1k/dbmate"
}

# measure ID CMD [PREPARE]: times CMD (hyperfine, no shell) into $tmp/ID.csv and
# its peak RSS into $tmp/ID.rss; PREPARE runs before every run, untimed.
# Returns non-zero when the command fails (the error is in $tmp/ID.err).
measure() {
  local id=$1 cmd=$2 prep=${3:-}
  local args=(-N --style none --warmup 1 --min-runs "$RUNS" --export-csv "$tmp/$id.csv")
  [[ -z $prep ]] || args+=(--prepare "$prep")
  say "$id: $cmd"
  if ! hyperfine "${args[@]}" "$cmd" >"$tmp/$id.err" 2>&1; then
    rm -f "$tmp/$id.csv"
    say "$id failed: $(tail -n 3 "$tmp/$id.err" | tr '\n' ' ')"
    return 1
  fi
  if [[ -x /usr/bin/time ]]; then
    [[ -z $prep ]] || eval "$prep" >/dev/null
    eval "/usr/bin/time -f %M -o '$tmp/$id.rss' $cmd" >/dev/null 2>&1 || rm -f "$tmp/$id.rss"
  fi
}
peer() { measure "$@" || true; }  # a peer that fails gets "failed", never ends the run

load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- setup (untimed) ----------------------------------------------------------
say "preparing databases"
$fresh bench_head
$LUAMIG -q -c "$W/lin1k/luamig.lua" --url dbname=bench_head upgrade head
[[ $(sql bench_head "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name ~ '^t[0-9]+$'") == 1000 ]] ||
  die "setup: luamig upgrade head did not create the 1,000 columns"
$fresh bench_noop bench_head
if $have_alembic; then
  $fresh alembic_head
  eval "$(al lin1k alembic_head) upgrade head" >"$tmp/alembic_setup.log" 2>&1 ||
    { say "alembic setup failed: $(tail -n 2 "$tmp/alembic_setup.log")"; have_alembic=broken; }
  [[ $have_alembic != true ]] || $fresh alembic_noop alembic_head
fi
if $have_dbmate; then
  $fresh dbmate_noop
  eval "$(dm dbmate_noop) migrate" >"$tmp/dbmate_setup.log" 2>&1 ||
    { say "dbmate setup failed: $(tail -n 2 "$tmp/dbmate_setup.log")"; have_dbmate=broken; }
fi

# ---- 1. no-op start-up --------------------------------------------------------
measure noop_psql "$PSQL -X -q -d bench_noop -c 'select 1'"
measure noop_current "$(lm lin1k) --url dbname=bench_noop current"
measure noop_upgrade "$(lm lin1k) --url dbname=bench_noop upgrade head"
if [[ $have_alembic == true ]]; then
  peer noop_al_current "$(al lin1k alembic_noop) current"
  peer noop_al_upgrade "$(al lin1k alembic_noop) upgrade head"
fi
if [[ $have_dbmate == true ]]; then
  peer noop_dm_status "$(dm dbmate_noop) status"
  peer noop_dm_migrate "$(dm dbmate_noop) migrate"
fi

# ---- 2. apply 1,000 revisions on a fresh database -----------------------------
measure up_1tx "$PSQL -X -q -1 -v ON_ERROR_STOP=1 -d bench_apply -f $W/lin1k/sql/up_1tx.sql" "$fresh bench_apply"
measure down_1tx "$PSQL -X -q -1 -v ON_ERROR_STOP=1 -d bench_apply -f $W/lin1k/sql/down_1tx.sql" "$fresh bench_apply bench_head"
measure up_perrev "$PSQL -X -q -v ON_ERROR_STOP=1 -d bench_apply -f $W/lin1k/sql/up_perrev.sql" "$fresh bench_apply"
# luamig's own script (--sql): the very statements it sends, extras included, through psql.
# Against it, luamig's ratio is its client-side cost alone.
if eval "$(lm lin1k) upgrade base:head --sql" >"$tmp/lm_up.sql" 2>/dev/null &&
   eval "$(lm lin1k) downgrade head:base --sql" >"$tmp/lm_down.sql" 2>/dev/null; then
  measure up_same "$PSQL -X -q -v ON_ERROR_STOP=1 -d bench_apply -f $tmp/lm_up.sql" "$fresh bench_apply"
  measure down_same "$PSQL -X -q -v ON_ERROR_STOP=1 -d bench_apply -f $tmp/lm_down.sql" "$fresh bench_apply bench_head"
fi
measure up_luamig "$(lm lin1k) --url dbname=bench_apply upgrade head" "$fresh bench_apply"
[[ $(sql bench_apply "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name ~ '^t[0-9]+$'") == 1000 ]] ||
  die "luamig upgrade head did not create the 1,000 columns"
measure down_perrev "$PSQL -X -q -v ON_ERROR_STOP=1 -d bench_apply -f $W/lin1k/sql/down_perrev.sql" "$fresh bench_apply bench_head"
measure down_luamig "$(lm lin1k) --url dbname=bench_apply downgrade base" "$fresh bench_apply bench_head"
[[ $(sql bench_apply "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name ~ '^t[0-9]+$'") == 0 ]] ||
  die "luamig downgrade base left tables behind"
if [[ $have_alembic == true ]]; then
  peer up_al "$(al lin1k bench_apply) upgrade head" "$fresh bench_apply"
  peer down_al "$(al lin1k bench_apply) downgrade base" "$fresh bench_apply alembic_head"
fi
if [[ $have_dbmate == true ]]; then
  peer up_dm "$(dm bench_apply) migrate" "$fresh bench_apply"
fi

# ---- 3. graph work, no database -------------------------------------------------
for n in 1k 10k; do
  measure "history_$n" "$(lm "g$n") history"
  measure "heads_$n" "$(lm "g$n") heads"
  if [[ $have_alembic == true ]]; then
    peer "history_al_$n" "$(al "g$n") history"
    peer "heads_al_$n" "$(al "g$n") heads"
  fi
done

# ---- 4. offline script ----------------------------------------------------------
for n in 1k 10k; do
  measure "sql_$n" "$(lm "g$n") upgrade base:head --sql"
  [[ $have_alembic != true ]] || peer "sql_al_$n" "$(al "g$n") upgrade base:head --sql"
done

# ---- the table ------------------------------------------------------------------
# stat ID FIELD: median | min | max (seconds) from hyperfine's CSV; empty if absent.
stat() {
  [[ -f $tmp/$1.csv ]] || return 0
  awk -F, -v f="$2" 'NR == 2 { print (f == "median" ? $(NF-4) : f == "min" ? $(NF-1) : $NF) }' "$tmp/$1.csv"
}
ms() {  # seconds -> "12.3 ms" / "4.21 s"
  awk -v s="$1" 'BEGIN { m = s * 1000
    if (m >= 1000) printf "%.2f s", s; else if (m >= 100) printf "%.0f ms", m; else printf "%.1f ms", m }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
rss() {
  if [[ -f $tmp/$1.rss ]]; then awk '{ printf "%.1f MB", $1 / 1024 }' "$tmp/$1.rss"; else echo "n/a"; fi
}
rss_mb() { [[ -f $tmp/$1.rss ]] && awk '{ print $1 / 1024 }' "$tmp/$1.rss"; }

rows=()
# row WORKLOAD COMMAND ID RATIO GOAL
row() {
  local med
  med=$(stat "$3" median)
  if [[ -z $med ]]; then
    rows+=("| $1 | $2 | failed | | | | | $5 |")
  else
    rows+=("| $1 | $2 | $(ms "$med") | $(ms "$(stat "$3" min)") | $(ms "$(stat "$3" max)") | $4 | $(rss "$3") | $5 |")
  fi
}
absent() { rows+=("| $1 | $2 | not installed | | | | | |"); }
# vs ID FLOOR_ID [LIMIT]: sets RATIO ("1.23x") and, with LIMIT, VERDICT for the goal column.
vs() {
  local a b
  a=$(stat "$1" median) b=$(stat "$2" median)
  RATIO="—" VERDICT="n/a"
  [[ -n $a && -n $b ]] || return 0
  RATIO="$(ratio "$a" "$b")x"
  if [[ -n ${3:-} ]]; then
    if le "${RATIO%x}" "$3"; then VERDICT="met"; else VERDICT="**missed**"; fi
  fi
}
# growth ID_1K ID_10K: sets RATIO (10,000-revision time over 1,000-revision time) and
# VERDICT (linear when at most 15x for 10x the revisions: cache effects and noise stay
# well under that; a quadratic walk would show about 100x).
growth() {
  local a b
  a=$(stat "$1" median) b=$(stat "$2" median)
  RATIO="—" VERDICT="n/a"
  [[ -n $a && -n $b ]] || return 0
  RATIO="$(ratio "$b" "$a")x"
  if le "${RATIO%x}" 15; then VERDICT="linear"; else VERDICT="**superlinear**"; fi
}
# The goals of issue #18, each "LINE|PASS" or "LINE|FAIL", printed at the end.
goals=()
# goal TEXT ID FLOOR_ID LIMIT: the ratio of ID's median to FLOOR_ID's at most LIMIT.
goal() {
  local a b r verdict=FAIL
  a=$(stat "$2" median) b=$(stat "$3" median)
  if [[ -n $a && -n $b ]]; then
    r=$(ratio "$a" "$b")
    le "$r" "$4" && verdict=PASS
    goals+=("$1: $(ms "$a") / $(ms "$b") = ${r}x (goal <= ${4}x)|$verdict")
  else
    goals+=("$1: not measured (goal <= ${4}x)|FAIL")
  fi
}
# goal_abs TEXT ID SECONDS MB: the median under SECONDS and the peak RSS under MB.
goal_abs() {
  local t m verdict=FAIL
  t=$(stat "$2" median) m=$(rss_mb "$2") || m=""
  if [[ -n $t && -n $m ]]; then
    awk -v t="$t" -v s="$3" -v m="$m" -v l="$4" 'BEGIN { exit !(t < s && m < l) }' && verdict=PASS
    goals+=("$1: $(ms "$t"), $(rss "$2") (goal < $(ms "$3"), < $4 MB)|$verdict")
  else
    goals+=("$1: not measured (goal < $(ms "$3"), < $4 MB)|FAIL")
  fi
}
verdict_of() {  # TEXT: the verdict of the goal line starting with TEXT, for the table
  local g
  for g in "${goals[@]}"; do [[ $g != "$1"* ]] || { echo "${g##*|}"; return; }; done
}

FLOOR="psql -c 'select 1'"
goal "no-op \`luamig current\`, 1,000 revs, vs $FLOOR" noop_current noop_psql 1.3
goal "no-op \`luamig upgrade head\`, 1,000 revs, vs $FLOOR" noop_upgrade noop_psql 1.3
goal "\`luamig history\`, 1,000 revs, vs $FLOOR" history_1k noop_psql 1.3
goal_abs "\`luamig history\`, 10,000 revs" history_10k 0.1 30
goal_abs "\`luamig heads\`, 10,000 revs" heads_10k 0.1 30
goal "apply 1,000 revs (\`luamig upgrade head\`) vs \`psql -1 -f\` of the same DDL" up_luamig up_1tx 1.5
goal "undo 1,000 revs (\`luamig downgrade base\`) vs \`psql -1 -f\` of the same DDL" down_luamig down_1tx 1.5

S1="1. No-op, 1,000 revs, db at head"
row "$S1" "\`psql -c 'select 1'\` (floor)" noop_psql "1.00x" ""
vs noop_current noop_psql; row "$S1" "\`luamig current\`" noop_current "$RATIO" "≤ 1.3x: $(verdict_of "no-op \`luamig current\`")"
vs noop_upgrade noop_psql; row "$S1" "\`luamig upgrade head\`" noop_upgrade "$RATIO" "≤ 1.3x: $(verdict_of "no-op \`luamig upgrade")"
if [[ $have_alembic == true ]]; then
  vs noop_al_current noop_psql; row "$S1" "\`alembic current\`" noop_al_current "$RATIO" ""
  vs noop_al_upgrade noop_psql; row "$S1" "\`alembic upgrade head\`" noop_al_upgrade "$RATIO" ""
else absent "$S1" "Alembic"; fi
if [[ $have_dbmate == true ]]; then
  vs noop_dm_status noop_psql; row "$S1" "\`dbmate status\`" noop_dm_status "$RATIO" ""
  vs noop_dm_migrate noop_psql; row "$S1" "\`dbmate migrate\`" noop_dm_migrate "$RATIO" ""
else absent "$S1" "dbmate"; fi

S2="2. Apply 1,000 revs, fresh db"
row "$S2" "\`psql -1 -f\` (floor: one transaction)" up_1tx "1.00x" ""
vs up_perrev up_1tx; row "$S2" "\`psql -f\` (a transaction per revision)" up_perrev "$RATIO" ""
vs up_same up_1tx; row "$S2" "\`psql -f\` of luamig's \`--sql\` script (same statements)" up_same "$RATIO" ""
vs up_luamig up_1tx; row "$S2" "\`luamig upgrade head\`" up_luamig "$RATIO" "≤ 1.5x: $(verdict_of "apply 1,000")"
row "$S2" "\`psql -1 -f\` downgrade (floor: one transaction)" down_1tx "1.00x" ""
vs down_perrev down_1tx; row "$S2" "\`psql -f\` downgrade (a transaction per revision)" down_perrev "$RATIO" ""
vs down_same down_1tx; row "$S2" "\`psql -f\` of luamig's downgrade \`--sql\` script" down_same "$RATIO" ""
vs down_luamig down_1tx; row "$S2" "\`luamig downgrade base\`" down_luamig "$RATIO" "≤ 1.5x: $(verdict_of "undo 1,000")"
if [[ $have_alembic == true ]]; then
  vs up_al up_1tx; row "$S2" "\`alembic upgrade head\`" up_al "$RATIO" ""
  vs down_al down_1tx; row "$S2" "\`alembic downgrade base\`" down_al "$RATIO" ""
else absent "$S2" "Alembic"; fi
if [[ $have_dbmate == true ]]; then
  vs up_dm up_1tx; row "$S2" "\`dbmate migrate\`" up_dm "$RATIO" ""
else absent "$S2" "dbmate"; fi

S3="3. Graph, no db (a branch and a merge per 100 revs)"
for c in history heads; do
  vs "${c}_1k" noop_psql
  row "$S3" "\`luamig $c\`, 1,000 revs" "${c}_1k" "$RATIO" \
    "$([[ $c == history ]] && echo "≤ 1.3x: $(verdict_of "\`luamig history\`, 1,000")")"
  growth "${c}_1k" "${c}_10k"
  row "$S3" "\`luamig $c\`, 10,000 revs" "${c}_10k" "$RATIO" \
    "< 100 ms, < 30 MB: $(verdict_of "\`luamig $c\`, 10,000"); $VERDICT"
done
if [[ $have_alembic == true ]]; then
  for c in history heads; do
    row "$S3" "\`alembic $c\`, 1,000 revs" "${c}_al_1k" "" ""
    growth "${c}_al_1k" "${c}_al_10k"; row "$S3" "\`alembic $c\`, 10,000 revs" "${c}_al_10k" "$RATIO" ""
  done
else absent "$S3" "Alembic"; fi

S4="4. Offline script, no db"
row "$S4" "\`luamig upgrade base:head --sql\`, 1,000 revs" sql_1k "" ""
growth sql_1k sql_10k
row "$S4" "\`luamig upgrade base:head --sql\`, 10,000 revs" sql_10k "$RATIO" "$VERDICT"
if [[ $have_alembic == true ]]; then
  row "$S4" "\`alembic upgrade base:head --sql\`, 1,000 revs" sql_al_1k "" ""
  growth sql_al_1k sql_al_10k
  row "$S4" "\`alembic upgrade base:head --sql\`, 10,000 revs" sql_al_10k "$RATIO" ""
else absent "$S4" "Alembic"; fi

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
pgver=$(sql postgres "SHOW server_version")
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$root" status --porcelain -- src include 2>/dev/null) ]] || rev="$rev (modified)"
{
  echo "## luamig benchmarks"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); luamig $rev; $(nproc) cores (${cpu:-unknown CPU}),"
  echo "$(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM; PostgreSQL $pgver on a Unix socket"
  echo "(throwaway cluster set as a real server: $durability); $(hyperfine --version)."
  echo "Each time is the median of at least $RUNS runs after one warm-up run, with min and max;"
  echo "max RSS is the peak resident memory of the client process (one more run). Load average"
  echo "at the start: $load_start; at the end: $load_end (other work on the machine widens min-max)."
  echo
  echo "| Workload | Command | Median | Min | Max | Ratio | Max RSS | Goal |"
  echo "|---|---|---:|---:|---:|---:|---:|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Ratios in sections 1 and 3 (1,000 revisions) are against \`psql -c 'select 1'\`; in section 2"
  echo "against \`psql -1 -f\` of each revision's DDL and its \`luamig_version\` row in one transaction"
  echo "(one commit, one flush to disk), where luamig commits each revision on its own and writes"
  echo "its audit-log row too. On a 10,000-revision row the ratio is its time over the 1,000-revision"
  echo "time (linear: at most 15x; a quadratic walk would show ~100x). The graph workloads have 10"
  echo "(1,000 revisions) and 100 (10,000 revisions) diamonds: a branch point, two arms of 3"
  echo "revisions, a merge. Peers run the same histories (Alembic: \`op.add_column\` with SQLAlchemy,"
  echo "a transaction per migration; dbmate: the same SQL, linear only, no multi-step rollback) and"
  echo "are skipped when not installed."
  echo
  echo "Goals (issue #18):"
  echo
  for g in "${goals[@]}"; do echo "- ${g##*|}: ${g%|*}"; done
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
say "wrote ${OUT#"$root/"}"

# README.md's Performance section carries the latest table, between its bench markers.
if [[ -z ${BENCH_OUT:-} ]] && grep -q '^<!-- bench:begin -->$' README.md; then
  awk -v table="$OUT" '
    /^<!-- bench:begin -->$/ { print; while ((getline line < table) > 0) if (line !~ /^## /) print line; skip = 1; next }
    /^<!-- bench:end -->$/ { skip = 0 }
    !skip' README.md >README.md.tmp && mv README.md.tmp README.md
  say "updated README.md (Performance)"
fi

echo
failed=0
for g in "${goals[@]}"; do
  printf '%s  %s\n' "${g##*|}" "${g%|*}"
  [[ ${g##*|} == PASS ]] || failed=1
done
exit $failed

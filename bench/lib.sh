# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run).

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# bench_cluster NAME PORT: a throwaway PostgreSQL in a new temp dir, $tmp (its
# luamig-bench-NAME.XXXXXX; postgres must reach the cluster dir inside), removed
# with the dir when the script exits, however it exits; nothing of the caller's
# may point a benchmark at a real database. Exports PGHOST, PGPORT, PGUSER.
bench_cluster() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/luamig-bench-$1.XXXXXX")
  chmod 755 "$tmp"
  trap 'bash "$bench_root/scripts/pgcluster.sh" remove "$tmp/pg" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  unset DATABASE_URL PGDATABASE PGHOSTADDR PGSERVICE PGPASSWORD PGOPTIONS
  printf 'bench: starting a throwaway PostgreSQL in %s/pg\n' "$tmp" >&2
  eval "$(bash "$bench_root/scripts/pgcluster.sh" start "$tmp/pg" "$2")"
  export PGHOST PGPORT PGUSER
}

#!/usr/bin/env bash
# make conformance SEEDS=N: the differential test against Alembic
# (scripts/conformance/conformance.py) on a throwaway PostgreSQL.
#   scripts/conformance/run.sh [conformance.py options]   e.g. --seeds 200
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! /usr/bin/python3 -c 'import alembic, psycopg2' 2>/dev/null; then
  echo "conformance: needs Debian's python3-alembic and python3-psycopg2" \
       "(apt-get install python3-alembic python3-psycopg2, or make deps as root)" >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/luamig-conformance.XXXXXX")
chmod 755 "$tmp"
trap 'bash scripts/pgcluster.sh stop "$tmp/pg" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
eval "$(bash scripts/pgcluster.sh start "$tmp/pg")"
export PGHOST PGPORT PGUSER
unset DATABASE_URL PGDATABASE PGHOSTADDR PGSERVICE PGPASSWORD PGOPTIONS
/usr/bin/python3 scripts/conformance/conformance.py --luamig build/luamig "$@"

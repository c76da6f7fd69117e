#!/usr/bin/env bash
# make db-TARGET: the seed project's database targets, on DATABASE_URL (environment or
# .env) or, when it is unset, on database luamig_demo of the private cluster under .demo/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat >&2 <<'EOF'
usage: make db-TARGET   (or: bash scripts/db.sh TARGET)

  setup              create the database (if absent) and grant CREATE on schema public
  migrate            apply all pending revisions            (luamig upgrade head)
  migrate-create     new revision file; message from m=..., MESSAGE=... or a prompt
  migrate-rollback   undo the newest revision                (luamig downgrade -1)
  migrate-history    show the revisions                      (luamig history --verbose)
  migrate-current    show the database's revision            (luamig current --verbose)
  reset              DROP the database and create it empty (asks; FORCE=1 to skip)

Database: DATABASE_URL, else luamig_demo on the cluster under .demo/ (port 5439).
EOF
  exit 1
}

# Grants the connecting role all rights on schema public (a no-op unless it owns the
# database or is a superuser); fails, naming the superuser's commands, if it still cannot
# create tables there (PostgreSQL 15 no longer lets every role do so).
grant_schema() {
  local conn=$1 ok
  psql_on "$conn" -c 'GRANT ALL ON SCHEMA public TO CURRENT_USER' 2>/dev/null || true
  ok=$(psql_on "$conn" -tA -c "SELECT has_schema_privilege('public', 'CREATE')") ||
    die "could not connect to $(mask_url "$conn")"
  if [[ $ok == t ]]; then
    note "Schema public: CREATE granted to $(psql_on "$conn" -tA -c 'SELECT current_user')."
  else
    local user db
    user=$(psql_on "$conn" -tA -c 'SELECT current_user')
    db=$(psql_on "$conn" -tA -c 'SELECT current_database()')
    cat >&2 <<EOF
error: $user may not create tables in schema public of $db. As a superuser, run:
  psql -U postgres -d $db -c 'GRANT ALL ON SCHEMA public TO $user;'
  psql -U postgres -d $db -c 'GRANT ALL ON ALL TABLES IN SCHEMA public TO $user;'
  psql -U postgres -d $db -c 'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO $user;'
EOF
    return 1
  fi
}

# The database DATABASE_URL names and the maintenance connection (same server, db postgres).
target_db() {
  if [[ $USING_DEMO == 1 ]]; then
    DB=$DEMO_DB
    MAINT=$(demo_url postgres)
  else
    DB=$(url_dbname "$DATABASE_URL")
    [[ -n $DB ]] || die "DATABASE_URL names no database: $(mask_url "$DATABASE_URL")"
    MAINT=$(url_with_dbname "$DATABASE_URL" postgres)
  fi
}

cmd_setup() {
  use_database
  target_db
  if [[ $USING_DEMO == 0 ]]; then
    if ! create_database "$MAINT" "$DB"; then
      note "warning: could not create database $DB through the postgres database;"
      note "         ask a superuser:  psql -U postgres -c 'CREATE DATABASE $DB OWNER <user>;'"
    fi
  fi
  grant_schema "$DATABASE_URL" || exit 1
  note "Database $DB is ready: make db-migrate applies the revisions."
}

cmd_reset() {
  local answer
  use_database
  target_db
  [[ $DB != postgres ]] || die "refusing to drop the maintenance database postgres"
  if [[ ${FORCE:-0} != 1 ]]; then
    [[ -t 0 ]] || die "db-reset drops database $DB: run it from a terminal, or with FORCE=1"
    printf 'This DROPS database %s (%s) and every table in it.\nType the database name to confirm: ' \
      "$DB" "$(mask_url "$DATABASE_URL")" >&2
    IFS= read -r answer || true
    [[ $answer == "$DB" ]] || die "not confirmed; nothing dropped"
  fi
  psql_on "$MAINT" -v db="$DB" <<'SQL'
SELECT format('DROP DATABASE IF EXISTS %I', :'db') \gexec
SQL
  note "Dropped database $DB."
  create_database "$MAINT" "$DB"
  grant_schema "$DATABASE_URL" || exit 1
  note "Created it empty: make db-migrate applies the revisions again."
}

cmd_migrate_create() {
  local msg=${MESSAGE:-${m:-}}
  if [[ -z $msg ]]; then
    printf 'Migration message: ' >&2
    IFS= read -r msg || true
  fi
  [[ -n ${msg//[[:space:]]/} ]] || die "a migration needs a message (make db-migrate-create m=\"Add x to y\")"
  "$LUAMIG" revision -m "$msg"
}

[[ $# == 1 ]] || usage
case $1 in
  setup | migrate | migrate-create | migrate-rollback | migrate-history | migrate-current | reset) ;;
  *) note "unknown target: db-$1"; usage ;;
esac
need_luamig
cd "$ROOT"
case $1 in
  setup) cmd_setup ;;
  migrate) use_database; "$LUAMIG" upgrade head ;;
  migrate-create) cmd_migrate_create ;;
  migrate-rollback) use_database; "$LUAMIG" downgrade -1 ;;
  migrate-history) use_database; "$LUAMIG" history --verbose ;;
  migrate-current) use_database; "$LUAMIG" current --verbose ;;
  reset) cmd_reset ;;
esac

#!/usr/bin/env bash
# make demo: a private PostgreSQL under .demo/ (port 5439), the example project in
# versions/ upgraded to head on database luamig_demo, then current and history.
# With DATABASE_URL set (environment or .env), that database is used instead.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_luamig
cd "$ROOT"
use_database

step "build/luamig upgrade head    # apply every pending revision in versions/"
"$LUAMIG" upgrade head

step "build/luamig current         # the revision the database is at"
"$LUAMIG" current

step "build/luamig history         # newest first"
"$LUAMIG" history

cat <<'EOF'

Next, on the same database:
  make db-migrate-rollback     undo the newest revision (luamig downgrade -1)
  make db-migrate              apply it again (luamig upgrade head)
  make db-migrate-history      show the history with --verbose
EOF
if [[ $USING_DEMO == 1 ]]; then
  printf "Or run luamig directly on it:\n  export DATABASE_URL='%s'\n" "$DATABASE_URL"
  printf '  build/luamig downgrade base    (empty it; the next make demo starts over)\n'
  demo_footer
fi

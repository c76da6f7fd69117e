# shellcheck shell=bash
# Shared by scripts/demo.sh and scripts/db.sh (sourced, not run): where things are,
# the private demo cluster under .demo/, and the database DATABASE_URL names.
# shellcheck disable=SC2034  # the variables are read by the scripts that source this

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PSQL="$PG_BINDIR/psql"
LUAMIG=${LUAMIG:-$ROOT/build/luamig}   # LUAMIG=build-asan/luamig to try the sanitized build
DEMO_DIR="$ROOT/.demo"
DEMO_PORT=${DEMO_PORT:-5439}
DEMO_DB=luamig_demo

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
note() { printf '%s\n' "$*" >&2; }

# Prints a header before a step, so the output reads as a transcript.
step() { printf '\n==> %s\n' "$*"; }

# Hides the password of a URL or key=value conninfo string with luamig's own masking
# (src/db/redact.c, through the hidden `luamig config --print-url`), so the scripts show a
# URL exactly as luamig's messages do. The URL goes by the environment, not argv, and
# from / no luamig.lua or .env of a project gets a say.
mask_url() {
  local out bin=$LUAMIG
  [[ $bin == /* ]] || bin=$PWD/$bin
  out=$(cd / && DATABASE_URL=$1 "$bin" config --print-url 2>/dev/null) || out='(not shown)'
  printf '%s\n' "$out"
}

# Percent-encodes one URL component (a socket directory used as a host, a name).
urlencode() {
  local LC_ALL=C s=$1 out='' c i   # C locale: walk bytes, so UTF-8 becomes %C3%A9
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._~-]) out+=$c ;;
      *) out+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  printf '%s' "$out"
}

urldecode() {
  local s=${1//+/ }
  printf '%b' "${s//%/\\x}"
}

# Makes DATABASE_URL from a .env beside luamig.lua visible here, read as the luamig
# command reads it (src/revs/config.c): KEY=value or export KEY=value, # starts a comment
# line, one pair of matching quotes is removed, a variable already set wins.
load_dotenv_url() {
  local line val
  [[ -n ${DATABASE_URL:-} || ! -f $ROOT/.env ]] && return 0
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?DATABASE_URL[[:space:]]*=(.*)$ ]] || continue
    val=${BASH_REMATCH[2]}
    val=${val#"${val%%[![:space:]]*}"}
    val=${val%"${val##*[![:space:]]}"}
    if [[ $val =~ ^\"(.*)\"$ || $val =~ ^\'(.*)\'$ ]]; then val=${BASH_REMATCH[1]}; fi
    export DATABASE_URL=$val
    return 0                                  # the first one counts, as with setenv
  done <"$ROOT/.env"
}

need_luamig() {
  [[ -x $LUAMIG ]] || die "$LUAMIG is missing: run make first"
}

# Starts the private cluster of .demo/ (or finds it running) and exports
# PGHOST/PGPORT/PGUSER for it. It lives in .demo/, or where the server's user can reach it
# (root runs it as postgres): pgcluster.sh decides, and names it in .demo/cluster.
demo_cluster_start() {
  local out
  out=$(bash "$ROOT/scripts/pgcluster.sh" start "$DEMO_DIR" "$DEMO_PORT") ||
    die "could not start the demo cluster (bash scripts/pgcluster.sh start .demo $DEMO_PORT)"
  eval "$(printf '%s\n' "$out" | grep '^export ' || true)"
  [[ -n ${PGHOST:-} ]] || die "scripts/pgcluster.sh printed no PGHOST"
}

# The URL of database $1 on the demo cluster (its Unix socket directory as the host).
demo_url() {
  printf 'postgresql://%s@/%s?host=%s&port=%s' "${PGUSER:-postgres}" "$1" \
    "$(urlencode "$PGHOST")" "${PGPORT:-$DEMO_PORT}"
}

# Runs psql on conninfo $1 with ON_ERROR_STOP, quiet, SQL on stdin; more psql args follow.
psql_on() {
  local conn=$1; shift
  "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$conn" "$@"
}

# The database name in a URL or conninfo (empty when it names none).
url_dbname() {
  local url=$1 rest path query
  if [[ $url =~ ^postgres(ql)?:// ]]; then
    rest=${url#*://}
    query=''
    [[ $rest == *\?* ]] && query=${rest#*\?}
    rest=${rest%%\?*}
    path=''
    [[ $rest == */* ]] && path=${rest#*/}
    if [[ "&$query" =~ \&dbname=([^&]*) ]]; then path=${BASH_REMATCH[1]}; fi
    urldecode "$path"
  elif [[ $url =~ (^|[[:space:]])dbname[[:space:]]*=[[:space:]]*(\'[^\']*\'|[^[:space:]]+) ]]; then
    local v=${BASH_REMATCH[2]}
    v=${v#\'}; printf '%s' "${v%\'}"
  fi
}

# The same URL or conninfo pointed at database $2 instead.
url_with_dbname() {
  local url=$1 db=$2 scheme rest auth query
  if [[ $url =~ ^(postgres(ql)?://) ]]; then
    scheme=${BASH_REMATCH[1]}
    rest=${url#*://}
    query=''
    [[ $rest == *\?* ]] && query=${rest#*\?}
    rest=${rest%%\?*}
    auth=${rest%%/*}
    if [[ "&$query" == *"&dbname="* ]]; then
      query=$(printf '%s' "&$query" | sed -E "s#&dbname=[^&]*#\\&dbname=$(urlencode "$db")#")
      query=${query#&}
    fi
    printf '%s%s/%s%s' "$scheme" "$auth" "$(urlencode "$db")" "${query:+?$query}"
  else
    printf "%s dbname='%s'" "$url" "$db"   # a later keyword overrides an earlier one
  fi
}

# Creates database $2 through the maintenance connection $1 unless it exists.
create_database() {
  psql_on "$1" -v db="$2" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
}

# Starts the demo cluster, creates luamig_demo and exports DATABASE_URL for it, unless
# DATABASE_URL is set (in the environment or .env): then that database is used as is.
USING_DEMO=0
use_database() {
  load_dotenv_url
  if [[ -n ${DATABASE_URL:-} ]]; then
    note "Using DATABASE_URL=$(mask_url "$DATABASE_URL")"
    return 0
  fi
  demo_cluster_start
  create_database "$(demo_url postgres)" "$DEMO_DB"
  DATABASE_URL=$(demo_url "$DEMO_DB")
  export DATABASE_URL
  USING_DEMO=1
  note "Using DATABASE_URL=$DATABASE_URL"
}

# How to reach the demo cluster afterwards.
demo_footer() {
  cat <<EOF

Connect:   $PSQL -h $PGHOST -p ${PGPORT:-$DEMO_PORT} -U postgres $DEMO_DB
           (then: \\dt, \\d sessions, SELECT * FROM luamig_version;)
Stop it:   bash scripts/pgcluster.sh stop .demo
EOF
}

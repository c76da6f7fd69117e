#!/usr/bin/env bash
# The production topologies the specs test luamig against, each a real
# component from Debian's packages, started in DIR (a spec's temp dir):
#   topology.sh pgbouncer DIR MODE HOST PORT  PgBouncer (pool_mode MODE) on a Unix socket
#                                             in DIR, for every database of HOST:PORT
#   topology.sh standby DIR HOST PORT         a streaming replica of HOST:PORT
#                                             (pg_basebackup -R), socket in DIR
#   topology.sh ssl DIR                       a server with ssl=on and a self-signed
#                                             certificate (DIR/root.crt), 127.0.0.1 only
#   topology.sh stop DIR                      stops whatever was started in DIR
# stdout carries only `KEY=value` lines (PORT=, HOST=); chatter goes to stderr.
# Everything runs as postgres when we are root (neither server runs as root).
set -euo pipefail

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

usage() {
  echo "usage: $0 pgbouncer DIR MODE HOST PORT | standby DIR HOST PORT | ssl DIR | stop DIR" >&2
  exit 2
}
as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
die() { echo "topology: $*" >&2; exit 1; }

# A free TCP port on 127.0.0.1 (nothing answers a connect to it).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  die "no free port found"
}

# Makes DIR (absolute, printed) owned by postgres, reachable by everyone.
prepare() {
  mkdir -p "$1"
  local d
  d=$(cd "$1" && pwd)
  if [[ $EUID -eq 0 ]]; then chown postgres: "$d"; fi
  chmod 755 "$d"
  echo "$d"
}

# Starts the cluster in $1/data on port $2; the log goes to $1/server.log.
pg_start() {
  as_pg "$PG_BINDIR/pg_ctl" start -w -t 30 -D "$1/data" -l "$1/server.log" -o "-p $2" >/dev/null ||
    { tail -n 20 "$1/server.log" >&2; die "the server in $1 did not start"; }
}

start_pgbouncer() {
  local dir mode=$2 host=$3 port=$4 lport
  dir=$(prepare "$1")
  [[ $mode == session || $mode == transaction ]] || usage
  lport=$(free_port)   # only names the socket file: nothing listens on TCP
  cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$host port=$port
[pgbouncer]
listen_addr =
listen_port = $lport
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/users.txt
pool_mode = $mode
default_pool_size = 4
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
admin_users = postgres
EOF
  printf '"postgres" ""\n' >"$dir/users.txt"
  if [[ $EUID -eq 0 ]]; then chown postgres: "$dir/pgbouncer.ini" "$dir/users.txt"; fi
  command -v pgbouncer >/dev/null || die "pgbouncer is not installed (apt-get install pgbouncer)"
  as_pg pgbouncer -d "$dir/pgbouncer.ini" || die "pgbouncer did not start: $(tail -n 5 "$dir/pgbouncer.log")"
  for _ in $(seq 50); do
    [[ -S $dir/.s.PGSQL.$lport ]] && { echo "HOST=$dir"; echo "PORT=$lport"; return 0; }
    sleep 0.1
  done
  die "pgbouncer's socket did not appear: $(tail -n 5 "$dir/pgbouncer.log")"
}

start_standby() {
  local dir host=$2 port=$3 sport
  dir=$(prepare "$1")
  sport=$(free_port)
  # -R writes primary_conninfo and standby.signal; -X stream: WAL while copying.
  as_pg "$PG_BINDIR/pg_basebackup" -h "$host" -p "$port" -U postgres -D "$dir/data" -R \
    -X stream -c fast >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; die "pg_basebackup failed"; }
  cat >>"$dir/data/postgresql.conf" <<EOF
unix_socket_directories = '$dir'
listen_addresses = ''
hot_standby = on
EOF
  pg_start "$dir" "$sport"
  echo "HOST=$dir"
  echo "PORT=$sport"
}

start_ssl() {
  local dir port
  dir=$(prepare "$1")
  port=$(free_port)
  as_pg "$PG_BINDIR/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C -N \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # A self-signed certificate for localhost and 127.0.0.1: its own root.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/data/server.key" -out "$dir/data/server.crt" >"$dir/openssl.log" 2>&1 ||
    { cat "$dir/openssl.log" >&2; die "openssl failed"; }
  cp "$dir/data/server.crt" "$dir/root.crt"
  chmod 600 "$dir/data/server.key"
  if [[ $EUID -eq 0 ]]; then chown postgres: "$dir/data/server.key" "$dir/data/server.crt"; fi
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
ssl = on
fsync = off
EOF
  pg_start "$dir" "$port"
  echo "HOST=127.0.0.1"
  echo "PORT=$port"
}

stop_all() {
  local dir=$1
  [[ -d $dir ]] || return 0
  if [[ -f $dir/pgbouncer.pid ]]; then
    kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  fi
  if [[ -f $dir/data/postmaster.pid ]]; then
    as_pg "$PG_BINDIR/pg_ctl" stop -w -m immediate -D "$dir/data" >/dev/null 2>&1 || true
  fi
}

[[ $# -ge 2 ]] || usage
case $1 in
  pgbouncer) [[ $# -eq 5 ]] || usage; start_pgbouncer "$2" "$3" "$4" "$5" ;;
  standby) [[ $# -eq 4 ]] || usage; start_standby "$2" "$3" "$4" ;;
  ssl) [[ $# -eq 2 ]] || usage; start_ssl "$2" ;;
  stop) stop_all "$2" ;;
  *) usage ;;
esac

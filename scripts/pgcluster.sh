#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for specs and the demo.
#   pgcluster.sh start DIR [PORT]   create (once) and start DIR/data; print the env
#   pgcluster.sh stop DIR           stop it (immediate: the data is disposable)
# Only a Unix socket in DIR, no TCP, so clusters never clash on ports.
# stdout carries only `export ...` lines (for eval); chatter goes to stderr.
set -euo pipefail

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

usage() { echo "usage: $0 start DIR [PORT] | stop DIR" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd=$1 dir=$2 port=${3:-5432}
[[ $port =~ ^[0-9]+$ ]] || usage

# PostgreSQL refuses to run as root: then act as the postgres user.
as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $cmd in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)          # the socket directory must be absolute
  data=$dir/data
  if [[ $EUID -eq 0 ]]; then chown postgres: "$dir"; fi
  chmod 755 "$dir"                 # so root and others can reach the socket

  if as_pg "$PG_BINDIR/pg_ctl" status -D "$data" >/dev/null 2>&1; then
    # Already running (the demo reuses its cluster): report the port it uses.
    port=$(sed -n 4p "$data/postmaster.pid")
    echo "pgcluster: reusing the server running in $data" >&2
  else
    if [[ ! -f $data/PG_VERSION ]]; then
      # -N: no fsync during initdb; C locale: fast and locale-independent output.
      as_pg "$PG_BINDIR/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C -N \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
      # Durability is worthless for test data; speed and ~40 concurrent clients matter.
      cat >>"$data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 100
shared_buffers = 32MB
EOF
    fi
    # The port goes on the command line so a stopped cluster can restart on another one.
    as_pg "$PG_BINDIR/pg_ctl" start -w -D "$data" -l "$dir/server.log" -o "-p $port" >/dev/null ||
      { echo "pgcluster: start failed; server log:" >&2; tail -n 30 "$dir/server.log" >&2; exit 1; }
  fi
  printf 'export PGHOST=%q PGPORT=%q PGUSER=postgres\n' "$dir" "$port"
  ;;
stop)
  [[ -d $dir ]] || exit 0
  data=$(cd "$dir" && pwd)/data
  if as_pg "$PG_BINDIR/pg_ctl" status -D "$data" >/dev/null 2>&1; then
    as_pg "$PG_BINDIR/pg_ctl" stop -w -m immediate -D "$data" >/dev/null
  fi
  ;;
*) usage ;;
esac

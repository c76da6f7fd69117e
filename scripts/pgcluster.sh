#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for specs and the demo.
#   pgcluster.sh start DIR [PORT]   create (once) and start DIR's cluster; print the env
#   pgcluster.sh stop DIR           stop it (its data stays for the next start)
#   pgcluster.sh remove DIR         stop it at once and delete its data
# Only a Unix socket, no TCP, so clusters never clash on ports.
# stdout carries only `export ...` lines (for eval); chatter goes to stderr.
#
# The cluster (data/, the socket, the logs) lives in DIR itself when the server's user can
# reach DIR and the socket path fits in 107 bytes. Otherwise (root in a 0700 home: the
# server runs as postgres, who cannot enter it; or a long path) it lives in
# /var/tmp/luamig-pg-HASH (0700, the server's user's), named from DIR's path and
# remembered in DIR/cluster, so a rerun, stop and remove find it again.
set -euo pipefail
shopt -s inherit_errexit          # a die inside $(...) ends the script too

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
SHARED_TMP=/var/tmp
SOCKET_MAX=107                   # sizeof sun_path less its NUL

die() { printf 'pgcluster: %s\n' "$*" >&2; exit 1; }
note() { printf 'pgcluster: %s\n' "$*" >&2; }
usage() { echo "usage: $0 start DIR [PORT] | stop DIR | remove DIR" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd=$1 dir=$2 port=${3:-5432}
[[ $port =~ ^[0-9]+$ ]] || usage

# PostgreSQL refuses to run as root: then act as the postgres user, from / (it may not
# be allowed into the current directory).
if [[ $EUID -eq 0 ]]; then
  server_user=postgres
  as_pg() { (cd / && runuser -u postgres -- "$@"); }
else
  server_user=$(id -un)
  as_pg() { "$@"; }
fi

# The directory DIR/cluster names, checked (remove deletes it): absolute, not a link, one
# of ours by its name, the server user's. Empty when there is no DIR/cluster.
remembered() {
  local file=$1/cluster home
  [[ -f $file ]] || return 0
  home=$(head -n 1 "$file")
  [[ $home == /* ]] || die "$file names '$home', which is not an absolute path: remove $file"
  if [[ -L $home ]]; then
    die "$file names $home, which is a symbolic link: remove $file"
  elif [[ $(basename "$home") != luamig-pg-* ]]; then
    die "$file names $home, which is not a luamig-pg-* directory: remove $file"
  elif [[ -e $home && ! -d $home ]]; then
    die "$file names $home, which is not a directory: remove $file"
  elif [[ -d $home && $(stat -c %U "$home") != "$server_user" ]]; then
    die "$file names $home, which $server_user does not own: remove $file"
  fi
  printf '%s' "$home"
}

# Why the cluster cannot live in DIR itself: the socket path would be too long, or the
# server's user cannot search every parent of DIR. Empty when it can.
why_elsewhere() {
  local d=$1 socket=/.s.PGSQL.$port
  if ((${#d} + ${#socket} > SOCKET_MAX)); then
    echo "its socket path in $d would pass $SOCKET_MAX bytes"
  elif ! as_pg test -x "$(dirname "$d")"; then
    echo "$server_user cannot enter $d"
  fi
}

# Creates (or finds) the short directory for DIR under /var/tmp and records it in DIR/cluster.
shared_home() {
  local d=$1 why=$2 hash home
  hash=$(printf '%s:%s' "$server_user" "$d" | sha256sum | cut -c1-12)
  home=$SHARED_TMP/luamig-pg-$hash
  if [[ ! -d $home ]]; then
    as_pg mkdir -m 700 "$home" 2>/dev/null || die "cannot create $home for the cluster ($why)"
    note "$why: the cluster lives in $home (named in $d/cluster)"
  fi
  [[ ! -L $home && $(stat -c %U "$home") == "$server_user" ]] ||
    die "$home is not a directory of $server_user's: remove it, or start the cluster elsewhere"
  printf '%s\n' "$home" >"$d/cluster"
  printf '%s' "$home"
}

# Where DIR's cluster lives, creating the directory when it does not exist yet.
home_for_start() {
  local d=$1 home why
  home=$(remembered "$d")
  why=$(why_elsewhere "$d")
  if [[ -n $home ]]; then
    [[ -d $home ]] || as_pg mkdir -m 700 "$home" || die "cannot create $home (named in $d/cluster)"
  elif [[ -z $why ]]; then
    home=$d
    if [[ $EUID -eq 0 ]]; then chown postgres: "$d"; fi
    chmod 755 "$d"               # so root and others can reach the socket
  else
    home=$(shared_home "$d" "$why")
  fi
  printf '%s' "$home"
}

start() {
  local home data
  [[ -x $PG_BINDIR/initdb ]] ||
    die "no initdb in $PG_BINDIR (apt-get install postgresql, or set PG_BINDIR)"
  if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    die "PostgreSQL will not run as root and there is no postgres user (apt-get install postgresql)"
  fi
  mkdir -p "$dir" 2>/dev/null || die "cannot create $dir"
  dir=$(cd "$dir" && pwd -P)       # the socket directory must be absolute
  home=$(home_for_start "$dir")
  data=$home/data

  if as_pg "$PG_BINDIR/pg_ctl" status -D "$data" >/dev/null 2>&1; then
    # Already running (the demo reuses its cluster): report the port it uses.
    port=$(sed -n 4p "$data/postmaster.pid")
    note "reusing the server running in $data"
  else
    if [[ ! -f $data/PG_VERSION ]]; then
      note "creating a cluster in $data"
      # -N: no fsync during initdb; C locale: fast and locale-independent output.
      as_pg "$PG_BINDIR/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C -N \
        >"$home/initdb.log" 2>&1 || { cat "$home/initdb.log" >&2; die "initdb failed in $data"; }
      # Durability is worthless for test data; speed and ~40 concurrent clients matter.
      cat >>"$data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$home'
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 100
shared_buffers = 32MB
EOF
    fi
    note "starting the server in $data (port $port)"
    # The port goes on the command line so a stopped cluster can restart on another one.
    as_pg "$PG_BINDIR/pg_ctl" start -w -D "$data" -l "$home/server.log" -o "-p $port" >/dev/null ||
      { tail -n 30 "$home/server.log" >&2; die "the server did not start; its log: $home/server.log"; }
  fi
  printf 'export PGHOST=%q PGPORT=%q PGUSER=postgres\n' "$home" "$port"
}

# stop and remove: DIR's cluster, wherever it lives; nothing to do when there is none.
stop() {
  local home
  [[ -d $dir ]] || exit 0
  dir=$(cd "$dir" && pwd -P)
  home=$(remembered "$dir")
  home=${home:-$dir}
  if [[ -f $home/data/PG_VERSION ]] &&
     as_pg "$PG_BINDIR/pg_ctl" status -D "$home/data" >/dev/null 2>&1; then
    # fast, not immediate, when the data stays: with synchronous_commit off, an immediate
    # stop loses the last commits (a rerun of the demo would find a revision unapplied).
    local mode=fast
    [[ $cmd == remove ]] && mode=immediate
    as_pg "$PG_BINDIR/pg_ctl" stop -w -m "$mode" -D "$home/data" >/dev/null
  fi
  if [[ $cmd == remove ]]; then
    if [[ $home == "$dir" ]]; then
      rm -rf "$dir/data" "$dir/initdb.log" "$dir/server.log"
    else
      rm -rf "$home"
      rm -f "$dir/cluster"
    fi
  fi
}

case $cmd in
  start) start ;;
  stop | remove) stop ;;
  *) usage ;;
esac

#!/usr/bin/env bash
# The PostgreSQL server the tests talk to: Debian's package, a private cluster of this checkout,
# 127.0.0.1 only, trust auth. Usage: postgres.sh start | stop | status | url
#
#   start   install the server if missing, initdb on first use, start, wait until it answers,
#           create role `ticksync` and database `ticksync_test`; prints the URL on stdout.
#           Already running: returns at once. A postmaster.pid left by a killed server is removed.
#   stop    fast shutdown (returns 0 when it was not running)
#   status  exit 0 and "running ..." when it answers, exit 3 and "stopped" otherwise
#   url     postgres://ticksync@127.0.0.1:55432/ticksync_test
#
# Environment: TICKSYNC_PG_DIR   data dir (default $REPO/.services/postgres/data; its parent holds
#                                the log, the unix socket and the chosen port)
#              TICKSYNC_PG_PORT  port (default 55432; when unset and 55432 is taken by a process
#                                that is not this cluster, e.g. another checkout's, the next free
#                                port up to 55451 is used and remembered)
# Progress goes to stderr, so stdout carries only the URL.
#
# TimescaleDB: installed and preloaded only when Debian offers a package for this server version
# (postgresql-NN-timescaledb). Debian 12 (bookworm) has none, so there the cluster is plain
# PostgreSQL and ticksync's postgres store falls back to its own range partitioning.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEFAULT_PORT=55432
DB=ticksync_test
ROLE=ticksync

say() { echo "postgres: $*" >&2; }
die() { echo "postgres: ERROR: $*" >&2; exit 1; }

# --- where things live --------------------------------------------------------------------------

if [ -n "${TICKSYNC_PG_DIR:-}" ]; then
  DATA=$TICKSYNC_PG_DIR
else
  DATA=$REPO/.services/postgres/data
  # The server runs as the `postgres` OS user, which must be able to reach the data dir. A checkout
  # under a private home (e.g. /root, mode 700) is not reachable: use a per-checkout dir in /var/tmp.
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
    mkdir -p "$REPO/.services"
    if ! runuser -u postgres -- test -x "$REPO/.services" 2>/dev/null; then
      DATA=/var/tmp/ticksync-$(printf %s "$REPO" | cksum | cut -d' ' -f1)/postgres/data
    fi
  fi
fi
SVC=$(dirname "$DATA")
LOG=$SVC/postgres.log
PORT_FILE=$SVC/port
SOCK=$SVC/sock
# A unix socket path is limited to 107 bytes; a deep checkout falls back to a short dir in /tmp.
if [ $((${#SOCK} + 20)) -gt 107 ]; then
  SOCK=/tmp/ticksync-pg-$(printf %s "$SVC" | cksum | cut -d' ' -f1)
fi

# --- helpers ------------------------------------------------------------------------------------

is_root() { [ "$(id -u)" = 0 ]; }

# Run a server tool as the cluster's owner: the server refuses to run as root. fd 9 (the lock
# below) is closed first, or the server would inherit it and hold the lock for its lifetime.
as_pg() {
  if is_root; then (exec 9>&- && cd / && runuser -u postgres -- "$@"); else (exec 9>&- && cd / && "$@"); fi
}

find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  done
  return 1
}

APT_UPDATED=
apt_update_once() {
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
}

install_server() {
  is_root || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin and not root: install Debian's 'postgresql' package"
  apt_update_once
  say "installing Debian's postgresql package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

# TimescaleDB, if Debian packages it for this server version (it does not on Debian 12).
maybe_install_timescaledb() {
  local ver=$1 pkg
  [ -e "/usr/lib/postgresql/$ver/lib/timescaledb.so" ] && return 0
  is_root || return 0
  command -v apt-cache >/dev/null || return 0
  pkg=$(apt-cache search --names-only "^postgresql-$ver-timescaledb" 2>/dev/null | awk '{print $1}' | grep -E "^postgresql-$ver-timescaledb(-[0-9.]+)?$" | sort -V | tail -1 || true)
  if [ -z "$pkg" ]; then
    say "no TimescaleDB package for PostgreSQL $ver in Debian; using plain PostgreSQL"
    return 0
  fi
  say "installing $pkg"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >&2 || say "could not install $pkg; using plain PostgreSQL"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

current_port() {
  if [ -n "${TICKSYNC_PG_PORT:-}" ]; then echo "$TICKSYNC_PG_PORT"
  elif [ -s "$PORT_FILE" ]; then cat "$PORT_FILE"
  else echo "$DEFAULT_PORT"; fi
}

url() { echo "postgres://$ROLE@127.0.0.1:$(current_port)/$DB"; }

# The postmaster pid from postmaster.pid, when that process is alive and is a postgres server
# (after kill -9 the pid may have been reused by some other process).
live_pid() {
  local pid
  [ -f "$DATA/postmaster.pid" ] || return 1
  pid=$(head -1 "$DATA/postmaster.pid" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-D $DATA " || return 1
  echo "$pid"
}

ready() { "$BIN/pg_isready" -q -U postgres -h 127.0.0.1 -p "$(current_port)" -d postgres -t 2 >/dev/null 2>&1; }

psql_su() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(current_port)" -U postgres "$@"; }

write_config() {
  local port=$1 preload=""
  [ -e "$LIB/timescaledb.so" ] && preload="timescaledb"
  # Rewritten on every start: port and preload follow what is installed and chosen now.
  as_pg tee "$DATA/ticksync.conf" >/dev/null <<EOF
# Written by scripts/services/postgres.sh on every start; edits here are lost.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$SOCK'
unix_socket_permissions = 0700
shared_preload_libraries = '$preload'
max_connections = 200
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOF
  if [ -n "$preload" ]; then echo "timescaledb.telemetry_level = 'off'" | as_pg tee -a "$DATA/ticksync.conf" >/dev/null; fi
  as_pg tee "$DATA/pg_hba.conf" >/dev/null <<'EOF'
# Written by scripts/services/postgres.sh: a private test cluster, trust on loopback only.
local   all   all                  trust
host    all   all   127.0.0.1/32   trust
EOF
  grep -q "^include_if_exists = 'ticksync.conf'" "$DATA/postgresql.conf" ||
    echo "include_if_exists = 'ticksync.conf'" | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
}

# The default port when it is free (a shift made while it was taken does not stick).
choose_port() {
  local p
  if [ -n "${TICKSYNC_PG_PORT:-}" ]; then
    port_in_use "$TICKSYNC_PG_PORT" && die "port $TICKSYNC_PG_PORT (TICKSYNC_PG_PORT) is in use by another process"
    echo "$TICKSYNC_PG_PORT"
    return 0
  fi
  for p in $(seq "$DEFAULT_PORT" $((DEFAULT_PORT + 19))); do
    if ! port_in_use "$p"; then
      [ "$p" != "$DEFAULT_PORT" ] && say "port $DEFAULT_PORT is taken by another process; using $p"
      echo "$p"
      return 0
    fi
  done
  die "ports $DEFAULT_PORT-$((DEFAULT_PORT + 19)) are all in use"
}

ensure_db() {
  local i
  # Right after start the server may still refuse connections for a moment.
  for i in $(seq 1 300); do ready && break; sleep 0.2; done
  ready || die "server started but does not answer on 127.0.0.1:$(current_port); see $LOG"
  if [ "$(psql_su -d postgres -tAc "select 1 from pg_roles where rolname = '$ROLE'")" != 1 ]; then
    psql_su -d postgres -c "create role $ROLE login superuser"
  fi
  if [ "$(psql_su -d postgres -tAc "select 1 from pg_database where datname = '$DB'")" != 1 ]; then
    psql_su -d postgres -c "create database $DB owner $ROLE"
  fi
}

# --- commands -----------------------------------------------------------------------------------

lock() {
  mkdir -p "$SVC"
  exec 9>"$SVC/.lock"
  flock -w 300 9 || die "another postgres.sh holds $SVC/.lock"
}

setup_bin() {
  BIN=$(find_bin) || { install_server; BIN=$(find_bin) || die "postgresql installed but no binaries under /usr/lib/postgresql/*/bin"; }
  VER=$(basename "$(dirname "$BIN")")
  LIB=/usr/lib/postgresql/$VER/lib
}

cmd_start() {
  lock
  setup_bin
  if live_pid >/dev/null && ready; then
    ensure_db
    url
    return 0
  fi

  if is_root; then id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (the postgresql package creates it)"; fi

  if [ ! -s "$DATA/PG_VERSION" ]; then
    maybe_install_timescaledb "$VER"
    say "initdb $DATA (PostgreSQL $VER)"
    rm -rf "$DATA"
    mkdir -p "$DATA"
    is_root && chown postgres: "$SVC" "$DATA"
    chmod 700 "$DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$SVC/initdb.log" 2>&1 ||
      { cat "$SVC/initdb.log" >&2; die "initdb failed"; }
  elif [ "$(cat "$DATA/PG_VERSION")" != "$VER" ]; then
    die "$DATA was made by PostgreSQL $(cat "$DATA/PG_VERSION"), the installed server is $VER: remove $SVC and start again"
  fi

  # A server that died without cleaning up (kill -9, machine reset) leaves postmaster.pid and the
  # socket lock behind; a pid in them may by now belong to an unrelated process. live_pid checks
  # the process is really this cluster's postmaster, so anything else is stale.
  if [ -f "$DATA/postmaster.pid" ] && ! live_pid >/dev/null; then
    say "removing stale postmaster.pid"
    rm -f "$DATA/postmaster.pid"
  fi

  mkdir -p "$SOCK"
  is_root && chown postgres: "$SVC" "$SOCK"
  chmod 700 "$SOCK"

  local port pid
  if pid=$(live_pid); then
    # A postmaster of this cluster that does not answer yet (starting, or recovering after a crash).
    port=$(current_port)
  else
    rm -f "$SOCK"/.s.PGSQL.*.lock 2>/dev/null || true
    port=$(choose_port)
    echo "$port" >"$PORT_FILE"
    write_config "$port"
    is_root && touch "$LOG" && chown postgres: "$LOG"
    say "starting on 127.0.0.1:$port (log $LOG)"
    local try
    for try in 1 2 3 4 5; do
      # Orphaned backends of a killed postmaster still hold its shared memory for a moment and the
      # new postmaster then refuses to start: retry briefly.
      if as_pg "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 120 -s >/dev/null 2>>"$SVC/pg_ctl.err"; then break; fi
      [ "$try" = 5 ] && { tail -n 30 "$LOG" >&2; die "pg_ctl start failed; see $LOG"; }
      sleep 2
      [ -f "$DATA/postmaster.pid" ] && ! live_pid >/dev/null && rm -f "$DATA/postmaster.pid"
    done
  fi
  ensure_db
  url
}

cmd_stop() {
  lock
  setup_bin
  if live_pid >/dev/null; then
    say "stopping"
    as_pg "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 -s >/dev/null ||
      as_pg "$BIN/pg_ctl" stop -D "$DATA" -m immediate -w -t 30 -s >/dev/null
  else
    [ -f "$DATA/postmaster.pid" ] && rm -f "$DATA/postmaster.pid"
    say "not running"
  fi
}

cmd_status() {
  BIN=$(find_bin) || { echo "stopped (not installed)"; exit 3; }
  local pid
  if pid=$(live_pid) && ready; then
    echo "running pid=$pid $(url) data=$DATA"
  else
    echo "stopped"
    exit 3
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) url ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac

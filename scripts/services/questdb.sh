#!/usr/bin/env bash
# The QuestDB server the tests talk to: the org.questdb:questdb jar from Maven Central, run by the
# machine's Java 17, 127.0.0.1 only, private ports and root dir of this checkout.
# Usage: questdb.sh start | stop | status | url | http-url | drop-test-tables
#
#   start     fetch the jar if missing, write conf/server.conf, start, wait until HTTP answers
#             `select 1`; prints the PG-wire URL on stdout. Already running: returns at once.
#             A pid file left by a killed server is ignored and replaced.
#   stop      SIGTERM, then SIGKILL after 30 s (returns 0 when it was not running)
#   status    exit 0 and "running ..." when it answers, exit 3 and "stopped" otherwise
#   url       PG wire: postgres://admin:quest@127.0.0.1:58812/qdb
#   http-url  HTTP (REST /exec, ILP /write): http://127.0.0.1:59000
#   drop-test-tables  drop the tables earlier test runs left (names starting t_), when running
#
# Ports: HTTP 59000, PG wire 58812, ILP/TCP 59009, min HTTP (health) 59003. When one of them is
# taken by another process (e.g. another checkout's QuestDB), all four move up by 10 (up to 9
# times) and the shift is remembered in the service dir.
# Environment: TICKSYNC_QDB_DIR        service dir (default $REPO/.services/questdb: lib/ root/ log pid)
#              TICKSYNC_QDB_HEAP       java -Xmx (default 1g)
#              TICKSYNC_QDB_LOG_LEVEL  e.g. INFO,ERROR,CRITICAL,ADVISORY to log every query
#                                      (default ERROR,CRITICAL,ADVISORY)
# Progress goes to stderr, so stdout carries only the URL.
set -euo pipefail

# Newest release on Maven Central that runs on Java 17 (its classes are Java 17 bytecode and the
# jar is a named module with main class io.questdb.ServerMain and its native libs inside).
QDB_VERSION=9.3.4

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SVC=${TICKSYNC_QDB_DIR:-$REPO/.services/questdb}
LIB=$SVC/lib
JAR=$LIB/questdb-$QDB_VERSION.jar
ROOT=$SVC/root
PID_FILE=$SVC/questdb.pid
SHIFT_FILE=$SVC/port-shift
LOG=$SVC/questdb.log
HEAP=${TICKSYNC_QDB_HEAP:-1g}
LOG_LEVEL=${TICKSYNC_QDB_LOG_LEVEL:-ERROR,CRITICAL,ADVISORY}

say() { echo "questdb: $*" >&2; }
die() { echo "questdb: ERROR: $*" >&2; exit 1; }

shift_now() { if [ -s "$SHIFT_FILE" ]; then cat "$SHIFT_FILE"; else echo 0; fi; }
http_port() { echo $((59000 + $1)); }
pg_port() { echo $((58812 + $1)); }
ilp_port() { echo $((59009 + $1)); }
min_port() { echo $((59003 + $1)); }

url() { echo "postgres://admin:quest@127.0.0.1:$(pg_port "$(shift_now)")/qdb"; }
http_url() { echo "http://127.0.0.1:$(http_port "$(shift_now)")"; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ready() { curl -sf -m 2 "$(http_url)/exec?query=select%201" >/dev/null 2>&1; }

# The server's pid, when it is alive and is this root's QuestDB (a pid from a killed run may have
# been reused by another process). Falls back to looking for the process when the pid file is gone.
live_pid() {
  local pid=""
  [ -f "$PID_FILE" ] && pid=$(cat "$PID_FILE" 2>/dev/null || true)
  if [[ "$pid" =~ ^[0-9]+$ ]] && is_ours "$pid"; then echo "$pid"; return 0; fi
  for pid in $(pgrep -f "io.questdb.ServerMain -d $ROOT" 2>/dev/null || true); do
    if is_ours "$pid"; then echo "$pid" >"$PID_FILE"; echo "$pid"; return 0; fi
  done
  return 1
}
is_ours() {
  [ -r "/proc/$1/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "io.questdb.ServerMain -d $ROOT " || return 1
}

APT_UPDATED=
apt_install() {
  [ "$(id -u)" = 0 ] || die "$* missing and not root: install Debian's $*"
  if [ -z "$APT_UPDATED" ]; then say "apt-get update"; DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; APT_UPDATED=1; fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_java() {
  local v
  if ! command -v java >/dev/null; then apt_install openjdk-17-jre-headless; fi
  v=$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ {print $2}')
  [ "${v%%.*}" -ge 17 ] 2>/dev/null || die "QuestDB $QDB_VERSION needs Java 17 or newer, found ${v:-none}"
}

fetch_jar() {
  [ -s "$JAR" ] && return 0
  command -v mvn >/dev/null || apt_install maven
  say "fetching org.questdb:questdb:$QDB_VERSION from Maven Central"
  local tmp=$LIB.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp" "$LIB"
  mvn -q -B -Dstyle.color=never dependency:copy \
    -Dartifact="org.questdb:questdb:$QDB_VERSION" -DoutputDirectory="$tmp" >"$SVC/mvn.log" 2>&1 ||
    { tail -n 30 "$SVC/mvn.log" >&2; rm -rf "$tmp"; die "mvn dependency:copy org.questdb:questdb:$QDB_VERSION failed; see $SVC/mvn.log"; }
  # Moved into place only when complete: an interrupted download never passes for the jar.
  mv "$tmp/questdb-$QDB_VERSION.jar" "$JAR"
  rm -rf "$tmp"
}

write_conf() {
  local s=$1
  mkdir -p "$ROOT/conf"
  # Rewritten on every start; QuestDB adds its own log.conf and mime.types beside it.
  cat >"$ROOT/conf/server.conf" <<EOF
# Written by scripts/services/questdb.sh on every start; edits here are lost.
http.bind.to=127.0.0.1:$(http_port "$s")
http.min.net.bind.to=127.0.0.1:$(min_port "$s")
pg.net.bind.to=127.0.0.1:$(pg_port "$s")
line.tcp.net.bind.to=127.0.0.1:$(ilp_port "$s")
line.udp.enabled=false
telemetry.enabled=false
# Column files grow in pages of this size (16 MiB by default). The tests make hundreds of small
# tables of a dozen columns each; at the default one test run took 13 GB of disk, at 256 KiB it
# takes a fraction of that. Larger tables only remap more often.
cairo.writer.data.append.page.size=262144
cairo.writer.data.index.value.append.page.size=262144
EOF
  # At INFO QuestDB logs every query: ~90 MB for one test run. Errors and start-up notes only.
  cat >"$ROOT/conf/log.conf" <<EOF
# Written by scripts/services/questdb.sh on every start; edits here are lost.
writers=stdout
w.stdout.class=io.questdb.log.LogConsoleWriter
w.stdout.level=$LOG_LEVEL
EOF
}

# The default ports when they are free (a shift made while they were taken does not stick).
# Shifts that already failed to bind (a port held as some connection's ephemeral local port is
# invisible to the probe) are passed in $1 and skipped.
choose_shift() {
  local s p busy skip=" ${1:-} "
  for s in 0 10 20 30 40 50 60 70 80 90; do
    case "$skip" in *" $s "*) continue ;; esac
    busy=
    for p in $(http_port "$s") $(min_port "$s") $(pg_port "$s") $(ilp_port "$s"); do
      if port_in_use "$p"; then busy=$p; break; fi
    done
    if [ -z "$busy" ]; then echo "$s"; return 0; fi
    say "port $busy is taken by another process"
  done
  die "no free set of ports (tried HTTP 59000-59090)"
}

lock() {
  mkdir -p "$SVC"
  exec 9>"$SVC/.lock"
  flock -w 300 9 || die "another questdb.sh holds $SVC/.lock"
}

# 0 ready; 2 exited because a port could not be bound (try other ports); dies otherwise.
wait_ready() {
  local i
  for i in $(seq 1 600); do
    ready && return 0
    if ! live_pid >/dev/null; then
      if [ -n "${LOG_FROM:-}" ] && tail -c +"$LOG_FROM" "$LOG" | grep -q "could not bind socket"; then return 2; fi
      tail -n 40 "$LOG" >&2
      die "QuestDB exited during start-up; see $LOG"
    fi
    sleep 0.2
  done
  tail -n 40 "$LOG" >&2
  die "QuestDB did not answer on $(http_url) within 120 s; see $LOG"
}

cmd_start() {
  lock
  local pid
  command -v curl >/dev/null || apt_install curl
  if pid=$(live_pid); then
    wait_ready
    url
    return 0
  fi
  [ -f "$PID_FILE" ] && { say "removing stale pid file"; rm -f "$PID_FILE"; }

  ensure_java
  fetch_jar
  local s failed="" attempt rc
  # Keep one previous log, and that only while it is small enough to look through.
  if [ -f "$LOG" ] && [ "$(stat -c %s "$LOG")" -gt $((64 * 1024 * 1024)) ]; then mv -f "$LOG" "$LOG.old"; fi
  for attempt in 1 2 3 4 5; do
    s=$(choose_shift "$failed")
    echo "$s" >"$SHIFT_FILE"
    write_conf "$s"
    say "starting QuestDB $QDB_VERSION on 127.0.0.1:$(http_port "$s") (log $LOG)"
    LOG_FROM=$(($(stat -c %s "$LOG" 2>/dev/null || echo 0) + 1))
    # setsid + nohup: the server outlives this script and the test run's process group; fd 9 (the
    # lock) is not inherited.
    setsid nohup java -Xms128m -Xmx"$HEAP" -XX:+UseParallelGC \
      -p "$JAR" -m io.questdb/io.questdb.ServerMain -d "$ROOT" \
      </dev/null >>"$LOG" 2>&1 9>&- &
    # $! is the server itself unless setsid had to fork; live_pid finds it either way.
    echo "$!" >"$PID_FILE"
    rc=0
    wait_ready || rc=$?
    if [ "$rc" = 0 ]; then url; return 0; fi
    say "a port of shift $s could not be bound; trying other ports"
    failed="$failed $s"
    rm -f "$PID_FILE"
  done
  die "QuestDB could not bind its ports after 5 tries; see $LOG"
}

cmd_stop() {
  lock
  local pid i
  if ! pid=$(live_pid); then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  say "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
}

cmd_status() {
  local pid
  if pid=$(live_pid) && ready; then
    echo "running pid=$pid $(url) $(http_url) root=$ROOT"
  else
    echo "stopped"
    exit 3
  fi
}

cmd_drop_test_tables() {
  ready || return 0
  local names n=0 t
  names=$(curl -sf -m 30 -G "$(http_url)/exec" --data-urlencode "query=select table_name from tables() where table_name like 't_%'" | grep -o '"t_[A-Za-z0-9_]*"' | tr -d '"' || true)
  for t in $names; do
    curl -sf -m 30 -G "$(http_url)/exec" --data-urlencode "query=DROP TABLE IF EXISTS \"$t\"" >/dev/null && n=$((n + 1))
  done
  say "dropped $n test tables"
}

case "${1:-}" in
  start) cmd_start ;;
  drop-test-tables) cmd_drop_test_tables ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) url ;;
  http-url) http_url ;;
  *) echo "usage: $0 start|stop|status|url|http-url|drop-test-tables" >&2; exit 2 ;;
esac

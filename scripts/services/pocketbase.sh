#!/usr/bin/env bash
# The Pocketbase server the tests (and a local try-out of the Pocketbase sink) talk to: built from
# the Go module proxy, cached, run on 127.0.0.1 with a private port and data dir and a superuser
# created by its own CLI.
# Usage: pocketbase.sh start | stop | status | url | bin | credentials
#
#   start        build the server if it is not cached, create/refresh the superuser, start it and
#                wait until /api/health answers; prints the URL on stdout. Already running:
#                returns at once. A pid file left by a killed server is ignored and replaced.
#   stop         SIGTERM, then SIGKILL after 15 s (returns 0 when it was not running)
#   status       exit 0 and "running ..." when it answers, exit 3 and "stopped" otherwise
#   url          http://127.0.0.1:58090
#   bin          build if needed, print the server binary's path (tests start their own servers)
#   credentials  EMAIL PASSWORD of the superuser, on one line
#
# The server is `github.com/pocketbase/pocketbase/examples/base` at PB_VERSION, built with
# `go install` (CGO off: pure-Go SQLite) into the cache dir. With internet you may instead point
# TICKSYNC_PB_BIN at a release binary of the same version (pocketbase_<v>_linux_amd64.zip).
# Environment: TICKSYNC_PB_BIN       a Pocketbase server binary to use instead of building one
#              TICKSYNC_PB_CACHE     where built binaries are kept (default ~/.cache/ticksync, so a
#                                    fresh checkout on the same machine does not rebuild)
#              TICKSYNC_PB_DIR       service dir (default $REPO/.services/pocketbase: data/ log pid)
#              TICKSYNC_PB_EMAIL / TICKSYNC_PB_PASSWORD  the superuser (test-only defaults below)
# Port 58090; when another process holds it, the next free of 58100..58190 is used and remembered.
# Progress goes to stderr, so stdout carries only the answer.
set -euo pipefail

# Newest release whose go.mod builds with this machine's Go (1.26): v0.40 asks for Go 1.27.
PB_VERSION=v0.36.8
PB_MODULE=github.com/pocketbase/pocketbase/examples/base

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SVC=${TICKSYNC_PB_DIR:-$REPO/.services/pocketbase}
DATA=$SVC/data
PID_FILE=$SVC/pocketbase.pid
PORT_FILE=$SVC/port
LOG=$SVC/pocketbase.log
# examples/base keeps migrations, hooks and static files beside the data dir and writes a
# migration file for every collection change (automigrate): all of it stays in the service dir, off.
FLAGS=(--dir "$DATA" --migrationsDir "$SVC/pb_migrations" --hooksDir "$SVC/pb_hooks" --publicDir "$SVC/pb_public" --automigrate=false)
EMAIL=${TICKSYNC_PB_EMAIL:-admin@ticksync.test}
PASSWORD=${TICKSYNC_PB_PASSWORD:-ticksync-test-password}

say() { echo "pocketbase: $*" >&2; }
die() { echo "pocketbase: ERROR: $*" >&2; exit 1; }

cache_dir() {
  local d=${TICKSYNC_PB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ticksync}
  if mkdir -p "$d" 2>/dev/null && [ -w "$d" ]; then echo "$d"; else mkdir -p "$SVC/bin"; echo "$SVC/bin"; fi
}

port_now() { if [ -s "$PORT_FILE" ]; then cat "$PORT_FILE"; else echo 58090; fi; }
url() { echo "http://127.0.0.1:$(port_now)"; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ready() { curl -sf -m 2 "$(url)/api/health" >/dev/null 2>&1; }

server_bin() {
  if [ -n "${TICKSYNC_PB_BIN:-}" ]; then
    [ -x "$TICKSYNC_PB_BIN" ] || die "TICKSYNC_PB_BIN=$TICKSYNC_PB_BIN is not an executable file"
    echo "$TICKSYNC_PB_BIN"
    return 0
  fi
  local dir bin tmp
  dir=$(cache_dir)
  bin=$dir/pocketbase-$PB_VERSION
  if [ -x "$bin" ]; then echo "$bin"; return 0; fi
  command -v go >/dev/null || die "Go is needed to build Pocketbase $PB_VERSION (or set TICKSYNC_PB_BIN to a release binary)"
  exec 8>"$dir/.build.lock"
  flock -w 900 8 || die "another build holds $dir/.build.lock"
  if [ -x "$bin" ]; then echo "$bin"; return 0; fi
  say "building $PB_MODULE@$PB_VERSION from the Go module proxy (about a minute; cached in $dir)"
  tmp=$dir/.build.$$
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! GOBIN=$tmp CGO_ENABLED=0 GOFLAGS=-mod=mod go install "$PB_MODULE@$PB_VERSION" >"$tmp.log" 2>&1; then
    tail -n 30 "$tmp.log" >&2
    rm -rf "$tmp"
    die "go install $PB_MODULE@$PB_VERSION failed (log above)"
  fi
  # Moved into place only when complete: an interrupted build never passes for the binary.
  mv "$tmp/base" "$bin"
  rm -rf "$tmp" "$tmp.log"
  exec 8>&-
  echo "$bin"
}

live_pid() {
  local pid=""
  [ -f "$PID_FILE" ] && pid=$(cat "$PID_FILE" 2>/dev/null || true)
  if [[ "$pid" =~ ^[0-9]+$ ]] && is_ours "$pid"; then echo "$pid"; return 0; fi
  for pid in $(pgrep -f -- "--dir $DATA" 2>/dev/null || true); do
    if is_ours "$pid"; then echo "$pid" >"$PID_FILE"; echo "$pid"; return 0; fi
  done
  return 1
}
is_ours() {
  [ -r "/proc/$1/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- " serve --dir $DATA " || return 1
}

choose_port() {
  local p
  for p in 58090 58100 58110 58120 58130 58140 58150 58160 58170 58180 58190; do
    if ! port_in_use "$p"; then echo "$p"; return 0; fi
    say "port $p is taken by another process"
  done
  die "no free port (tried 58090-58190)"
}

lock() {
  mkdir -p "$SVC"
  exec 9>"$SVC/.lock"
  flock -w 900 9 || die "another pocketbase.sh holds $SVC/.lock"
}

wait_ready() {
  local i
  for i in $(seq 1 300); do
    ready && return 0
    if ! live_pid >/dev/null; then
      tail -n 40 "$LOG" >&2
      die "Pocketbase exited during start-up; see $LOG"
    fi
    sleep 0.1
  done
  tail -n 40 "$LOG" >&2
  die "Pocketbase did not answer on $(url) within 30 s; see $LOG"
}

cmd_start() {
  lock
  command -v curl >/dev/null || die "curl is needed"
  if live_pid >/dev/null; then
    wait_ready
    url
    return 0
  fi
  [ -f "$PID_FILE" ] && { say "removing stale pid file"; rm -f "$PID_FILE"; }
  local bin port
  bin=$(server_bin)
  mkdir -p "$DATA"
  # The CLI writes the superuser straight into the data dir (created or its password reset).
  "$bin" superuser upsert "$EMAIL" "$PASSWORD" "${FLAGS[@]}" >"$SVC/superuser.log" 2>&1 ||
    { cat "$SVC/superuser.log" >&2; die "could not create the superuser"; }
  port=$(choose_port)
  echo "$port" >"$PORT_FILE"
  if [ -f "$LOG" ] && [ "$(stat -c %s "$LOG")" -gt $((16 * 1024 * 1024)) ]; then mv -f "$LOG" "$LOG.old"; fi
  say "starting Pocketbase $PB_VERSION on 127.0.0.1:$port (log $LOG)"
  setsid nohup "$bin" serve "${FLAGS[@]}" --http "127.0.0.1:$port" </dev/null >>"$LOG" 2>&1 9>&- &
  echo "$!" >"$PID_FILE"
  wait_ready
  url
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
  for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after 15 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
}

cmd_status() {
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
  bin) server_bin ;;
  credentials) echo "$EMAIL $PASSWORD" ;;
  *) echo "usage: $0 start|stop|status|url|bin|credentials" >&2; exit 2 ;;
esac

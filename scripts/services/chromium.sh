#!/usr/bin/env bash
# The browser the dashboard tests drive: Debian's chromium package, installed when missing.
# Usage: chromium.sh ensure | path
#
#   ensure  prints the executable's path on stdout; installs `chromium` with apt-get first when it
#           is missing and this is root with apt-get (idempotent: returns at once when present).
#           Exits 1 when there is no browser afterwards.
#   path    prints the path when installed (exit 0), nothing and exit 3 otherwise
#
# Environment: TICKSYNC_CHROMIUM  another executable to use (checked, never installed).
# Progress goes to stderr, so stdout carries only the path.
set -euo pipefail

say() { echo "chromium: $*" >&2; }

find_browser() {
  local c
  for c in "${TICKSYNC_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
  done
  return 1
}

case "${1:-}" in
  path)
    find_browser || exit 3
    ;;
  ensure)
    if find_browser; then exit 0; fi
    if [ -n "${TICKSYNC_CHROMIUM:-}" ]; then say "TICKSYNC_CHROMIUM=$TICKSYNC_CHROMIUM is not an executable"; exit 1; fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      say "not installed, and apt-get cannot run here (needs root and apt-get): apt-get install -y chromium"
      exit 1
    fi
    say "installing chromium (apt-get install -y chromium)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq chromium >&2; then
      say "apt-get update"
      apt-get update -qq >&2
      apt-get install -y -qq chromium >&2 || { say "apt-get install chromium failed"; exit 1; }
    fi
    find_browser || { say "installed, but no chromium executable found"; exit 1; }
    ;;
  *) echo "usage: $0 ensure|path" >&2; exit 2 ;;
esac

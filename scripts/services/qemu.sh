#!/usr/bin/env bash
# The emulator the linux-arm64 executable is tested under (test/release.test.ts): Debian's
# qemu-user (qemu-aarch64) and libc6-arm64-cross (the aarch64 glibc the Bun runtime links to, under
# /usr/aarch64-linux-gnu, given to qemu as QEMU_LD_PREFIX), installed when missing.
# Usage: qemu.sh ensure | path
#
#   ensure  prints qemu-aarch64's path on stdout; installs qemu-user and libc6-arm64-cross with
#           apt-get first when either is missing and this is root with apt-get (idempotent: returns
#           at once when both are there). Exits 1 when they are not there afterwards.
#   path    prints the path when both are installed (exit 0), nothing and exit 3 otherwise
#
# Environment: TICKSYNC_QEMU_AARCH64  another qemu-aarch64 to use (checked, never installed).
# Progress goes to stderr, so stdout carries only the path.
set -euo pipefail

SYSROOT=/usr/aarch64-linux-gnu

say() { echo "qemu: $*" >&2; }

find_qemu() {
  local c
  [ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || return 1
  for c in "${TICKSYNC_QEMU_AARCH64:-}" /usr/bin/qemu-aarch64 /usr/bin/qemu-aarch64-static; do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
  done
  return 1
}

case "${1:-}" in
  path)
    find_qemu || exit 3
    ;;
  ensure)
    if find_qemu; then exit 0; fi
    if [ -n "${TICKSYNC_QEMU_AARCH64:-}" ] && [ ! -x "$TICKSYNC_QEMU_AARCH64" ]; then say "TICKSYNC_QEMU_AARCH64=$TICKSYNC_QEMU_AARCH64 is not an executable"; exit 1; fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      say "not installed, and apt-get cannot run here (needs root and apt-get): apt-get install -y qemu-user libc6-arm64-cross"
      exit 1
    fi
    say "installing qemu-user and libc6-arm64-cross (apt-get install -y --no-install-recommends)"
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(qemu-user libc6-arm64-cross)
    if ! apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2; then
      say "apt-get update"
      apt-get update -qq >&2
      apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2 || { say "apt-get install ${pkgs[*]} failed"; exit 1; }
    fi
    find_qemu || { say "installed, but no qemu-aarch64 (or no $SYSROOT/lib/ld-linux-aarch64.so.1) found"; exit 1; }
    ;;
  *) echo "usage: $0 ensure|path" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Prints the path of a `promtool` (Prometheus's checker), for the test that lints /metrics.
# Found on PATH, or in the cache, or taken out of Debian's `prometheus` package without installing
# it (apt-get download + dpkg-deb -x: no service, no dependencies), then cached.
# Environment: TICKSYNC_TOOLS_CACHE (default ~/.cache/ticksync)
set -euo pipefail
say() { echo "promtool: $*" >&2; }
if command -v promtool >/dev/null; then command -v promtool; exit 0; fi
CACHE=${TICKSYNC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ticksync}
mkdir -p "$CACHE"
if [ -x "$CACHE/promtool" ]; then echo "$CACHE/promtool"; exit 0; fi
command -v apt-get >/dev/null || { say "no promtool and no apt-get to fetch Debian's prometheus package"; exit 1; }
exec 9>"$CACHE/.promtool.lock"
flock -w 600 9
if [ -x "$CACHE/promtool" ]; then echo "$CACHE/promtool"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download prometheus >/dev/null 2>&1; then
  say "apt-get update"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq >&2; else say "not root: cannot refresh apt's lists"; fi
  apt-get download prometheus >&2 || { say "apt-get download prometheus failed"; exit 1; }
fi
dpkg-deb -x prometheus_*.deb root
install -m 0755 root/usr/bin/promtool "$CACHE/promtool.part"
mv "$CACHE/promtool.part" "$CACHE/promtool"
say "cached $CACHE/promtool"
echo "$CACHE/promtool"

#!/usr/bin/env bash
# schemathesis (PyPI), which test/schemathesis.test.ts runs against a live `serve` and its
# /openapi.json: a venv of its own (its dependencies never meet pyarrow's and polars' of python.sh),
# cached under ~/.cache/ticksync keyed by the pinned version.
# Usage: schemathesis.sh ensure | path
#
#   ensure  prints TICKSYNC_TEST_SCHEMATHESIS=<the venv's schemathesis executable> on stdout;
#           creates the venv and pip-installs the pinned version first when missing (idempotent:
#           returns at once when the venv of this version is complete). Exits 1 when that fails.
#   path    prints the same line when the venv exists (exit 0); nothing and exit 3 otherwise
#
# Environment: TICKSYNC_PYTHON       the interpreter the venv is made from (default python3)
#              TICKSYNC_PY_CACHE     where venvs are kept (default ~/.cache/ticksync, as python.sh's)
#              PIP_INDEX_URL         pip's own: another index
# Progress goes to stderr, so stdout carries only the line.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

say() { echo "schemathesis: $*" >&2; }

base=${TICKSYNC_PYTHON:-python3}
cache=${TICKSYNC_PY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ticksync}
venv="$cache/pyvenv-schemathesis$SCHEMATHESIS_VERSION"
exe="$venv/bin/schemathesis"
# Written last: a venv without it is half made (an interrupted install) and is made again.
marker="$venv/.complete"

case "${1:-}" in
  path)
    [ -f "$marker" ] && [ -x "$exe" ] || exit 3
    echo "TICKSYNC_TEST_SCHEMATHESIS=$exe"
    ;;
  ensure)
    if [ -f "$marker" ] && [ -x "$exe" ]; then echo "TICKSYNC_TEST_SCHEMATHESIS=$exe"; exit 0; fi
    command -v "$base" >/dev/null || { say "no $base to make the venv from (set TICKSYNC_PYTHON)"; exit 1; }
    mkdir -p "$cache"
    rm -rf "$venv"
    say "creating $venv (schemathesis $SCHEMATHESIS_VERSION from PyPI; a minute)"
    "$base" -m venv "$venv" >&2 || { say "$base -m venv failed"; exit 1; }
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2 \
      || { say "pip install schemathesis==$SCHEMATHESIS_VERSION failed"; exit 1; }
    "$exe" --version >&2 || { say "installed, but $exe --version fails"; exit 1; }
    touch "$marker"
    echo "TICKSYNC_TEST_SCHEMATHESIS=$exe"
    ;;
  *) echo "usage: $0 ensure|path" >&2; exit 2 ;;
esac

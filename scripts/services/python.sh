#!/usr/bin/env bash
# The Python the format tests read ticksync's outputs back with (test/formats*.test.ts): a venv
# with pinned pyarrow and polars from PyPI, cached under ~/.cache/ticksync keyed by the versions.
# Usage: python.sh ensure | path
#
#   ensure  prints TICKSYNC_TEST_PYTHON=<the venv's python> on stdout; creates the venv and
#           pip-installs the pinned packages first when missing (idempotent: returns at once when
#           the venv of these versions is complete). Exits 1 when that fails.
#   path    prints the same line when the venv exists (exit 0); nothing and exit 3 otherwise
#
# Environment: TICKSYNC_PYTHON       the interpreter the venv is made from (default python3)
#              TICKSYNC_PY_CACHE     where venvs are kept (default ~/.cache/ticksync, as Pocketbase's)
#              PIP_INDEX_URL         pip's own: another index
# Progress goes to stderr, so stdout carries only the line.
set -euo pipefail

PYARROW_VERSION=26.0.1
POLARS_VERSION=1.44.2

say() { echo "python: $*" >&2; }

base=${TICKSYNC_PYTHON:-python3}
cache=${TICKSYNC_PY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ticksync}
venv="$cache/pyvenv-pyarrow$PYARROW_VERSION-polars$POLARS_VERSION"
py="$venv/bin/python"
# Written last: a venv without it is half made (an interrupted install) and is made again.
marker="$venv/.complete"

case "${1:-}" in
  path)
    [ -f "$marker" ] && [ -x "$py" ] || exit 3
    echo "TICKSYNC_TEST_PYTHON=$py"
    ;;
  ensure)
    if [ -f "$marker" ] && [ -x "$py" ]; then echo "TICKSYNC_TEST_PYTHON=$py"; exit 0; fi
    command -v "$base" >/dev/null || { say "no $base to make the venv from (set TICKSYNC_PYTHON)"; exit 1; }
    mkdir -p "$cache"
    rm -rf "$venv"
    say "creating $venv (pyarrow $PYARROW_VERSION, polars $POLARS_VERSION from PyPI; a minute)"
    "$base" -m venv "$venv" >&2 || { say "$base -m venv failed"; exit 1; }
    "$py" -m pip install --quiet --disable-pip-version-check "pyarrow==$PYARROW_VERSION" "polars==$POLARS_VERSION" >&2 \
      || { say "pip install pyarrow==$PYARROW_VERSION polars==$POLARS_VERSION failed"; exit 1; }
    "$py" -c "import pyarrow, polars" >&2 || { say "installed, but pyarrow/polars do not import"; exit 1; }
    touch "$marker"
    echo "TICKSYNC_TEST_PYTHON=$py"
    ;;
  *) echo "usage: $0 ensure|path" >&2; exit 2 ;;
esac

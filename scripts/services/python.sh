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
. "$(dirname "$0")/pyvenv.sh"

PYARROW_VERSION=26.0.1
POLARS_VERSION=1.44.2

pyvenv_main "${1:-}" "pyvenv-pyarrow$PYARROW_VERSION-polars$POLARS_VERSION" TICKSYNC_TEST_PYTHON bin/python \
  'python -c "import pyarrow, polars"' "pyarrow==$PYARROW_VERSION" "polars==$POLARS_VERSION"

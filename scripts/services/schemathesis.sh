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
. "$(dirname "$0")/pyvenv.sh"

SCHEMATHESIS_VERSION=4.32.5

pyvenv_main "${1:-}" "pyvenv-schemathesis$SCHEMATHESIS_VERSION" TICKSYNC_TEST_SCHEMATHESIS bin/schemathesis \
  'schemathesis --version' "schemathesis==$SCHEMATHESIS_VERSION"

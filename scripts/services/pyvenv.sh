# Sourced by python.sh and schemathesis.sh: a venv of pinned PyPI packages, cached under
# ~/.cache/ticksync by its name (which carries the versions), made once and then reused.
#   pyvenv_main ensure|path NAME VAR EXE CHECK PACKAGE...
#     NAME   the venv's folder under the cache (pyvenv-<what and versions>)
#     VAR    the line printed on stdout: VAR=<the venv's EXE>
#     EXE    the file in the venv the line names (bin/python, bin/schemathesis)
#     CHECK  a command run with the venv's bin/ first on PATH after installing (it must succeed)
#   ensure  prints the line; creates the venv and pip-installs the packages first when missing
#           (idempotent: returns at once when the venv is complete). Exits 1 when that fails.
#   path    prints the line when the venv exists (exit 0); nothing and exit 3 otherwise.
# Environment: TICKSYNC_PYTHON (the interpreter venvs are made from, default python3),
# TICKSYNC_PY_CACHE (where venvs are kept, default ~/.cache/ticksync), PIP_INDEX_URL (pip's own).
# Progress goes to stderr, so stdout carries only the line.
pyvenv_main() {
  local cmd=$1 name=$2 var=$3 exe_rel=$4 check=$5
  shift 5
  local base=${TICKSYNC_PYTHON:-python3}
  local cache=${TICKSYNC_PY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ticksync}
  local venv="$cache/$name"
  local exe="$venv/$exe_rel"
  # Written last: a venv without it is half made (an interrupted install) and is made again.
  local marker="$venv/.complete"
  say() { echo "$name: $*" >&2; }
  case "$cmd" in
    path)
      [ -f "$marker" ] && [ -x "$exe" ] || return 3
      echo "$var=$exe"
      ;;
    ensure)
      if [ -f "$marker" ] && [ -x "$exe" ]; then echo "$var=$exe"; return 0; fi
      command -v "$base" >/dev/null || { say "no $base to make the venv from (set TICKSYNC_PYTHON)"; return 1; }
      mkdir -p "$cache"
      rm -rf "$venv"
      say "creating $venv ($* from PyPI; a minute)"
      "$base" -m venv "$venv" >&2 || { say "$base -m venv failed"; return 1; }
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2 || { say "pip install $* failed"; return 1; }
      PATH="$venv/bin:$PATH" bash -c "$check" >&2 || { say "installed, but '$check' fails"; return 1; }
      touch "$marker"
      echo "$var=$exe"
      ;;
    *) echo "usage: $0 ensure|path" >&2; return 2 ;;
  esac
}

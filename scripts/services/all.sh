#!/usr/bin/env bash
# Every test server at once. Usage: all.sh start | stop | status | url | running
#
#   start   starts PostgreSQL, QuestDB and Pocketbase (each returns at once when already running),
#           makes the Python venv the format tests read files back with (python.sh ensure) and
#           schemathesis' venv (schemathesis.sh ensure, for test/schemathesis.test.ts)
#           and prints, on stdout, one NAME=value line per server that is up:
#             TICKSYNC_TEST_PG_URL=postgres://ticksync@127.0.0.1:55432/ticksync_test
#             TICKSYNC_TEST_QUESTDB_URL=postgres://admin:quest@127.0.0.1:58812/qdb
#             TICKSYNC_TEST_QUESTDB_HTTP=http://127.0.0.1:59000
#             TICKSYNC_TEST_PB_URL=http://127.0.0.1:58090
#             TICKSYNC_TEST_PB_BIN=<the cached Pocketbase server binary; tests start their own>
#             TICKSYNC_TEST_PYTHON=<the venv python with pyarrow and polars>
#             TICKSYNC_TEST_SCHEMATHESIS=<the venv's schemathesis executable>
#           Exports nothing; exits non-zero when any server failed (the lines of the others
#           are still printed). Progress and errors go to stderr.
#   stop    stops them all
#   status  one line each; exit 0 only when all run
#   url     the NAME=value lines, without starting anything
#   running the NAME=value lines of the servers that answer now (test/preload.ts reads them for a
#           plain `bun test`; the format tests find the Python venv themselves: python.sh path);
#           starts and builds nothing. stderr names each one not running;
#           exit 0 when all run, 3 otherwise
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

urls_pg() { echo "TICKSYNC_TEST_PG_URL=$(bash "$here/postgres.sh" url)"; }
urls_pb() {
  echo "TICKSYNC_TEST_PB_URL=$(bash "$here/pocketbase.sh" url)"
  echo "TICKSYNC_TEST_PB_BIN=$(bash "$here/pocketbase.sh" bin)"
}
urls_qdb() {
  echo "TICKSYNC_TEST_QUESTDB_URL=$(bash "$here/questdb.sh" url)"
  echo "TICKSYNC_TEST_QUESTDB_HTTP=$(bash "$here/questdb.sh" http-url)"
}

case "${1:-}" in
  start)
    status=0
    if bash "$here/postgres.sh" start >/dev/null; then urls_pg; else echo "all: PostgreSQL did not start" >&2; status=1; fi
    if bash "$here/questdb.sh" start >/dev/null; then urls_qdb; else echo "all: QuestDB did not start" >&2; status=1; fi
    if bash "$here/pocketbase.sh" start >/dev/null; then urls_pb; else echo "all: Pocketbase did not start" >&2; status=1; fi
    bash "$here/python.sh" ensure || { echo "all: no Python venv with pyarrow and polars (python.sh ensure)" >&2; status=1; }
    bash "$here/schemathesis.sh" ensure || { echo "all: no schemathesis venv (schemathesis.sh ensure)" >&2; status=1; }
    exit $status
    ;;
  stop)
    status=0
    bash "$here/pocketbase.sh" stop || status=1
    bash "$here/questdb.sh" stop || status=1
    bash "$here/postgres.sh" stop || status=1
    exit $status
    ;;
  status)
    pg=$(bash "$here/postgres.sh" status); pg_status=$?
    qdb=$(bash "$here/questdb.sh" status); qdb_status=$?
    pb=$(bash "$here/pocketbase.sh" status); pb_status=$?
    echo "postgres: $pg"
    echo "questdb: $qdb"
    echo "pocketbase: $pb"
    [ $pg_status = 0 ] && [ $qdb_status = 0 ] && [ $pb_status = 0 ] || exit 3
    ;;
  url)
    urls_pg
    urls_qdb
    echo "TICKSYNC_TEST_PB_URL=$(bash "$here/pocketbase.sh" url)"
    ;;
  running)
    status=0
    if bash "$here/postgres.sh" status >/dev/null; then urls_pg; else echo "all: PostgreSQL is not running" >&2; status=3; fi
    if bash "$here/questdb.sh" status >/dev/null; then urls_qdb; else echo "all: QuestDB is not running" >&2; status=3; fi
    # A running server means its binary is built (`bin` then only prints the path).
    if bash "$here/pocketbase.sh" status >/dev/null; then urls_pb; else echo "all: Pocketbase is not running" >&2; status=3; fi
    exit $status
    ;;
  *) echo "usage: $0 start|stop|status|url|running" >&2; exit 2 ;;
esac

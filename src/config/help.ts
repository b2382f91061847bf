// --help text for each command. Kept beside the config because most of it describes config.
import { marketChoices, marketCodes } from "../domain/markets/index.ts";

export const EXIT = {
  ok: 0,
  runFailed: 1,
  usage: 2,
  config: 3,
  quarantined: 4,
  store: 5,
  mismatch: 6,
} as const;

const EXIT_CODES = `Exit codes:
  0  success
  1  the run failed (a file, table or stream could not be read; details in the run record;
     a backup or restore could not write its output)
  2  usage error (unknown command or flag, bad flag value)
  3  invalid config (each bad field is named with what was expected)
  4  the run's quality score fell below minQuality (default 0.01: nothing usable, e.g. every
     row quarantined); rows were quarantined and --fail-on-quarantine was given; instruments
     import rejected lines
  5  the store cannot be opened or migrated (also by backup)
  6  verification found differences (migrate, verify), or a backup's checksum does not match (restore)
A failure prints one line on stderr (TICKSYNC_DEBUG=1 adds the stack); secrets are shown as ***.`;

const CONFIG = `Config:
  --config FILE   JSON or TOML config (default: $TICKSYNC_CONFIG, else ./ticksync.toml or
                  ./ticksync.json when present, else built-in defaults)
  Environment overrides: TICKSYNC_<SECTION>__<FIELD>=value, levels separated by a double
  underscore, fields in upper snake case: TICKSYNC_SERVER__PORT=9090,
  TICKSYNC_INGEST__BATCH_SIZE=10000, TICKSYNC_STORE__URL=sqlite:/var/lib/ticksync.db,
  TICKSYNC_SOURCES__DEMO__PATH=/data/csv. Values that parse as JSON are JSON. An override
  inside an entry the config does not have (sources.<name>, sinks.<name>, alerts.email) is
  ignored with a warning.`;

export const HELP: Record<string, string> = {
  main: `ticksync — ingest, validate, store and serve market data (OHLCV bars)

Usage: ticksync <command> [flags]

Commands:
  serve           run the HTTP API, metrics and the scheduler
  ingest          one-off ingest from config sources or from a file given by flags
                  (providers continue after each symbol's last stored bar, less an overlap)
  backfill        load a provider source's full history from a date; --resume continues an
                  interrupted backfill with the symbols it has not done
  universe list   the bundled symbol lists (WIG80, S&P 500, US ETFs) and your own
  instruments import
                  store what symbols are (name, ISIN, sector, …) from your CSV file
  migrate         copy every bar, checkpoint and quarantined row to another store, then verify
  sync            deliver new and changed bars from the store to a sink (Pocketbase)
  verify          compare the store with a sink per (symbol, day); --repair re-sends what differs
  backup          snapshot the store (SQLite: VACUUM INTO + gzip; Postgres: pg_dump) with a manifest
  restore         restore a backup after checking its sha256; counts and checksum checked after
  rollups         bring the materialised rollups (Postgres) up to date with the runs queued
                  for them (serve does so in the background)
  config check    validate a config file without starting anything
  config schema   print the config's JSON Schema (for editors)
  version         print the version

Run 'ticksync <command> --help' for a command's flags.

${CONFIG}

${EXIT_CODES}
`,
  serve: `Usage: ticksync serve [--config FILE] [--host HOST] [--port PORT] [--store URL]

Starts the HTTP server (GET /healthz, /readyz, /metrics, /api/symbols, /api/bars, /api/runs,
/api/quarantine, /api/jobs; POST /api/jobs/<name>/run; the live feed of stored bars on
/api/ws (WebSocket) and /api/stream (SSE), see [stream]) and the scheduler, which runs the jobs of
the config (cron schedules, runOnStart; a job with market = ${marketCodes().map((m) => JSON.stringify(m)).join("|")} runs its cron ticks
only in its phases, default ["open"]). With a Postgres store it also keeps the materialised
rollups that /api/bars serves: the runs queued for them are rolled up in the background, at start
and after each run it finishes (see 'ticksync rollups'). Stops cleanly on SIGINT/SIGTERM, letting
running batches commit (a rollup in progress rolls back and stays queued).

Flags:
  --host HOST     listen address (default 127.0.0.1, config server.host)
  --port PORT     listen port (default 8080, config server.port; 0 picks a free port)
  --store URL     store URL, e.g. sqlite:./data/ticksync.db (config store.url)

${CONFIG}

${EXIT_CODES}
`,
  ingest: `Usage: ticksync ingest [--config FILE] [--source NAME ...]
       ticksync ingest --file PATH [--layout stooq|stooq-bulk|generic] [--symbol SYM] [--market ${marketCodes().join("|")}] ...
       ticksync ingest --sqlite PATH [--table stock_data] [--columns field=col,...] ...

Reads every row, validates it, stores the good ones idempotently and quarantines the bad ones
with the rule they broke. Progress is checkpointed with every batch: an interrupted ingest run
again continues where it stopped, and re-running a finished one writes nothing.

Flags:
  --source NAME        a source from the config (repeatable; default: every source)
  --file PATH          a CSV file, directory of CSV files, or glob
  --layout L           stooq (Date,Open,High,Low,Close,Volume; default), stooq-bulk
                       (<TICKER>,<PER>,<DATE>,...), or generic (map with --columns)
  --sqlite PATH        a SQLite file with a price table
  --table NAME         table of --sqlite (default stock_data)
  --columns MAP        field=column pairs, e.g. symbol=ticker,ts=date,close=price
  --symbol SYM         symbol of every row (default: from the file name or a symbol column)
  --market M           market of bare tickers: ${marketChoices()}
  --interval I         1m 5m 15m 1h 1d (default) 1w 1mo
  --delimiter C        CSV delimiter (default ,)
  --decimal C          decimal separator . or , (default .)
  --name NAME          source name stored with the bars (default: stooq, csv or sqlite)
  --store URL          store URL (config store.url)
  --batch-size N       rows per transaction (default 20000)
  --fail-on-quarantine exit 4 when any row was quarantined
  --json               print the run summaries as JSON

${CONFIG}

${EXIT_CODES}
`,
  backfill: `Usage: ticksync backfill --source NAME --from YYYY-MM-DD [--to YYYY-MM-DD] [--symbols A,B,...]
       ticksync backfill --resume [--run ID] [--retry-failed]

Loads every symbol of a provider source (its symbols and universe) over a date range, with
bounded concurrency under the provider's rate limit. The run's state is in the store, symbol by
symbol: after a crash, kill -9 or Ctrl-C, --resume continues with the symbols not yet done. A
symbol that fails is recorded with its cause (not_found, no_data, rate_limited, timeout,
server_error, network, bad_response, client_error, auth) and does not stop the run; the summary
lists failures by cause. A progress bar (plain lines when not a terminal) shows symbols done,
rows, rate and ETA.

Flags:
  --source NAME     a provider source from the config (stooq, yahoo, polygon, alphavantage)
  --from DATE       first day to load
  --to DATE         last day to load (default: today)
  --symbols LIST    only these symbols (any provider spelling; @wig80 style universes allowed)
  --concurrency N   symbols at once (default: the source's concurrency)
  --resume          continue the newest unfinished backfill run (or --run ID)
  --retry-failed    with --resume: also try the failed symbols again
  --store URL       store URL (config store.url)
  --json            print the run summary as JSON

${CONFIG}

${EXIT_CODES}
`,
  migrate: `Usage: ticksync migrate --to URL [--from URL] [--batch-size N] [--json]
       ticksync migrate --verify-only --to URL [--from URL]

Copies all bars, checkpoints and quarantined rows from one store to another (any pair of
sqlite:<path> and postgres://…), series by series, resumable: run it again after an
interruption and it continues where it stopped. Then it verifies both sides: bar counts and an
order-independent checksum per (symbol, interval, day), the quarantine and the checkpoints. When
they differ it lists the differing keys and exits 6.

Flags:
  --from URL       the store to copy from (default: the config's store.url)
  --to URL         the store to copy to
  --verify-only    compare the two stores, copy nothing
  --batch-size N   bars per transaction (default 10000)
  --json           print the result as JSON

${EXIT_CODES}
`,
  sync: `Usage: ticksync sync [--config FILE] [--sink NAME ...] [--json]

Delivers the bars the store gained or changed since the sink's cursor to each sink in the
config's [sinks] (or only the named ones): Pocketbase records upserted through its batch API,
one record id per (source, symbol, interval, ts), so running it again never duplicates. The
cursor moves only past batches Pocketbase acknowledged. While Pocketbase is down or answers
5xx/429 the sync waits (the sink's retryForS, default 600 s) and then fails with the cursor
kept; the next sync continues from there. Records Pocketbase refuses are quarantined with its
error (rule "sink"); the rest of their batch still goes in. Bars of ingest runs still running
wait for the next sync.

Flags:
  --sink NAME   a sink from the config's [sinks] (repeatable; default: all)
  --json        print the summaries as JSON

${EXIT_CODES}
`,
  verify: `Usage: ticksync verify --sink NAME|pocketbase [--repair] [--config FILE] [--json]

Compares the store with a sink: per (symbol, day), the record count and an order-independent
checksum of the records as the sink holds them. Lists the differing days and exits 6 when they
differ. With --repair it re-sends only the records that are missing or differ and deletes the
sink's records the store has no bar for, then verifies again. The outcome is kept in the store
and shown by /api/sinks and /metrics (ticksync_sink_consistent).

Flags:
  --sink NAME   a sink name from [sinks], or a sink type when exactly one sink has it
  --repair      re-send what differs, delete what the store does not have, verify again
  --json        print the result as JSON

${EXIT_CODES}
`,
  backup: `Usage: ticksync backup [--config FILE] [--store URL] [--out DIR] [--keep N] [--json]

Writes a backup of the store into DIR (default ./backups) with a manifest beside it
(ticksync-<UTC time>.json): the file's size and sha256, the row counts and a checksum of every
bar. SQLite: VACUUM INTO a consistent snapshot while the service keeps writing, gzip-compressed.
Postgres: pg_dump of the store's schema (custom format; pg_dump must be installed). QuestDB
stores are backed up with QuestDB's own tools.

Flags:
  --out DIR    where backups go (default ./backups)
  --keep N     keep the newest N backups in DIR, remove older ones
  --store URL  the store (default: the config's store.url)
  --json       print the manifest as JSON

${EXIT_CODES}
`,
  restore: `Usage: ticksync restore --from MANIFEST [--to URL] [--force] [--config FILE] [--json]

Restores the backup a manifest describes into the store (default: the config's store.url).
The backup file's sha256 is checked first, and for SQLite the decompressed snapshot's sha256
and integrity too, before anything is replaced; an existing store is replaced only with
--force. Afterwards the restored store's counts and bar checksum are compared with the manifest
(exit 6 when they differ).

Flags:
  --from MANIFEST  the backup's manifest (ticksync-<time>.json)
  --to URL         the store to restore into
  --force          replace an existing store
  --json           print the result as JSON

${EXIT_CODES}
`,
  rollups: `Usage: ticksync rollups [--config FILE] [--store URL] [--json]

Rolls up, into the materialised rollups of a Postgres store, every run that stored bars and is
queued for them, oldest first, and reports the runs, the rows written and removed, and how many
are still queued. A finishing run that stored bars (ingest, backfill, ...) only queues itself:
the rollups serve /api/bars, and 'ticksync serve' works the queue off in the background (at start
and after each run it finishes), answering on read meanwhile. Run this to have them ready before serve starts,
or after a large load. Safe beside a running serve or another replica: one process rolls up at a
time, the others wait. A run whose rollup fails stays queued (exit 1). SQLite and QuestDB keep
no materialised rollups: nothing to do.

Flags:
  --store URL  the store (default: the config's store.url)
  --json       print the counts as JSON

${CONFIG}

${EXIT_CODES}
`,
  universe: `Usage: ticksync universe list
       ticksync universe show NAME

Bundled universes: wig80 (sWIG80 constituents), sp500 (S&P 500 constituents), etf-us (a curated
list of widely held US ETFs), each with the date it is as of. Your own lists go in the config:

  [universes]
  mine = ["PKN.WA", "cdr.pl", "aapl.us", "@wig80"]

and a provider source uses one with universe = "mine".
`,
  instruments: `Usage: ticksync instruments import --file CSV [--source NAME] [--market ${marketCodes().join("|")}] [--store URL]
                                [--delimiter C] [--columns field=column,...] [--json]

Stores instrument metadata from a CSV file (e.g. GPW's instrument list exported to CSV): what no
price provider publishes, ISIN above all. The header names the columns, in any case and order:
symbol (required), name, isin, exchange, currency, sector, industry, type; other columns are
ignored. One line per instrument (no line breaks inside fields). Symbols in any spelling
(PKN.WA, pkn.pl, WSE:PKN, or a bare PKN with --market). An ISIN is checked with its check digit
(ISO 6166). A line with no symbol, a bad symbol or ISIN, or a symbol already given is rejected
with its line number and reason, and the other lines are still stored: exit 4 when any line was
rejected, 1 when the file could not be read or stored. Records are keyed (source, symbol), as a
provider's are; a record equal to the stored one is not written again. /api/symbols shows each
field from the newest record of any source that has it, and every source's own record.

Flags:
  --file CSV          the instrument list
  --source NAME       the source the records are stored under (default csv)
  --market M          market of bare tickers: ${marketChoices()}
  --store URL         store URL (config store.url); SQLite or Postgres (QuestDB keeps no instruments)
  --delimiter C       , ; or tab (default: the one the header line has most of)
  --columns MAP       field=column pairs for other header names, e.g. symbol=Ticker,isin=Kod ISIN
  --json              print the result (counts, rejected lines) as JSON

${CONFIG}

${EXIT_CODES}
`,
  "config check": `Usage: ticksync config check [--config FILE]

Validates the config (file, then TICKSYNC_* overrides) and prints a summary. Starts nothing,
opens nothing. Exit 0 when valid, 3 with every bad field named when not.

${CONFIG}
`,
  "config schema": `Usage: ticksync config schema

Prints the JSON Schema of the config file, derived from the same valibot schemas that validate
it. Point an editor at it, or set "$schema" in a JSON config.
`,
  version: `Usage: ticksync version\n`,
};

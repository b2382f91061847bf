// QuestDB as a store: bars go in over ILP on HTTP (`/write`) into a WAL table whose designated
// timestamp and DEDUP UPSERT KEYS make every write idempotent; everything is read, and the
// run, quarantine and run-stream tables are written, over its PostgreSQL wire protocol with
// postgres.js.
//
// QuestDB has no transaction across tables, but one ILP request to one table is one
// transaction, answered 204 once it is committed to the WAL. So a batch is two requests in a
// fixed order: its bars, then — only after QuestDB accepted them — one request to the progress
// table that carries both the stream's checkpoint and the run's counters (rows keyed so the
// newest replaces the one before). A crash between the two can only make the next run read
// the batch again, and the dedup keys make that a no-op; the checkpoint never claims bars that
// QuestDB has not accepted, and the run's counters always match its checkpoints.
import postgres from "postgres";
import { barAt, COLUMN_WIDTH, columnsOf } from "../../domain/columns.ts";
import { newOwner, ownerGone, readiness } from "../common.ts";
import type { Bar, Interval } from "../../domain/bar.ts";
import { eventId, type BarEvent } from "../events.ts";
import type { BarQuery, ChangedBar, ChangeQuery, Checkpoint, CommitBatch, CommitResult, QuarantineRecord, RunRecord, RunStart, RunSummary, RunStream, SeriesInfo, Store } from "../types.ts";

type Sql = postgres.Sql<{}>;

/** `questdb://user:pass@host:pgPort/db?http=http://host:9000` → PG wire URL and HTTP base. */
export function parseQuestdbUrl(url: string): { pg: string; http: string; location: string; prefix: string; lines: number } {
  const u = new URL(url);
  const http = u.searchParams.get("http") ?? `http://${u.hostname}:9000`;
  // `prefix` names this store's tables apart, so several stores can share one QuestDB.
  const prefix = u.searchParams.get("prefix") ?? "";
  if (!/^[a-z0-9_]*$/i.test(prefix)) throw new Error(`prefix ${JSON.stringify(prefix)} must be letters, digits and _`);
  // `lines`: ILP lines per /write request (one QuestDB transaction each).
  const lines = Number(u.searchParams.get("lines") ?? ILP_LINES_PER_REQUEST);
  if (!Number.isInteger(lines) || lines < 1 || lines > 1_000_000) throw new Error(`lines ${JSON.stringify(u.searchParams.get("lines"))} must be a whole number from 1 to 1000000`);
  u.searchParams.delete("http");
  u.searchParams.delete("prefix");
  u.searchParams.delete("lines");
  const pg = `postgres://${u.username ? `${u.username}${u.password ? `:${u.password}` : ""}@` : ""}${u.host}${u.pathname || "/qdb"}`;
  return { pg, http: http.replace(/\/+$/, ""), prefix, lines, location: `questdb://${u.username ? `${u.username}:***@` : ""}${u.host}${u.pathname}?http=${http}${prefix ? `&prefix=${prefix}` : ""}` };
}

const TABLE_NAMES = ["bars", "checkpoints", "progress", "quarantine", "runs", "run_streams", "schema_migrations"] as const;
type TableName = (typeof TABLE_NAMES)[number];

const TABLES = (t: Record<TableName, string>) => [
  `CREATE TABLE IF NOT EXISTS "${t.bars}" (
     symbol SYMBOL, interval SYMBOL, source SYMBOL, ts TIMESTAMP,
     open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE, adj_close DOUBLE, turnover DOUBLE, trades LONG,
     run_id LONG, updated_at TIMESTAMP
   ) TIMESTAMP(ts) PARTITION BY MONTH WAL DEDUP UPSERT KEYS(ts, symbol, interval, source)`,
  // Bookkeeping tables are small, non-partitioned, written synchronously over PG wire.
  `CREATE TABLE IF NOT EXISTS "${t.checkpoints}" (stream VARCHAR, cursor VARCHAR, last_ts TIMESTAMP, last_key VARCHAR, run_id LONG, updated_at TIMESTAMP)`,
  `CREATE TABLE IF NOT EXISTS "${t.quarantine}" (id LONG, run_id LONG, source VARCHAR, locator VARCHAR, rule VARCHAR, reason VARCHAR, symbol VARCHAR, ts TIMESTAMP, raw VARCHAR, created_at TIMESTAMP)`,
  `CREATE TABLE IF NOT EXISTS "${t.runs}" (
     id LONG, kind VARCHAR, source VARCHAR, job VARCHAR, params VARCHAR, owner VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
     duration_ms LONG, outcome VARCHAR, read LONG, inserted LONG, updated LONG, unchanged LONG, quarantined LONG,
     from_ts TIMESTAMP, to_ts TIMESTAMP, quality VARCHAR, error VARCHAR, failures VARCHAR)`,
  `CREATE TABLE IF NOT EXISTS "${t.run_streams}" (run_id LONG, stream VARCHAR, status VARCHAR, cause VARCHAR, error VARCHAR, rows LONG, updated_at TIMESTAMP)`,
];
/**
 * Checkpoints (kind 'checkpoint', key: the stream) and run counters (kind 'run', key: the run id)
 * as rows of one WAL table, written over ILP with the batch's data. All rows share one designated
 * timestamp, so the dedup keys make a row replace the previous one of the same kind and key.
 */
const PROGRESS = (t: Record<TableName, string>) =>
  `CREATE TABLE IF NOT EXISTS "${t.progress}" (
     kind SYMBOL, key VARCHAR, ts TIMESTAMP,
     cursor VARCHAR, last_ts TIMESTAMP, last_key VARCHAR,
     run_id LONG, read LONG, inserted LONG, updated LONG, unchanged LONG, quarantined LONG, from_ts TIMESTAMP, to_ts TIMESTAMP,
     updated_at TIMESTAMP
   ) TIMESTAMP(ts) PARTITION BY YEAR WAL DEDUP UPSERT KEYS(ts, kind, key)`;
const QDB_SCHEMA_VERSION = 2;

/** ILP tag values: commas, spaces and equals signs are escaped. */
const tag = (s: string) => s.replace(/[ ,=\\]/g, (c) => `\\${c}`);
/** ILP string field values: quoted, with quotes, backslashes and newlines escaped. */
const str = (s: string) => `"${s.replace(/["\\\n]/g, (c) => `\\${c}`)}"`;
/** ILP timestamp field (microseconds) from epoch ms. */
const micros = (t: number) => `${Math.round(t * 1000)}t`;
const ms = (d: Date | string | null | undefined) => (d == null ? null : new Date(d).getTime());
const date = (t: number | null | undefined) => (t == null ? null : new Date(t));


/** One write at a time: QuestDB's non-WAL tables take a single writer. */
function mutex() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };
}

function rowToRun(r: any): RunRecord {
  const n = (x: unknown) => (x == null ? 0 : Number(x));
  return {
    id: Number(r.id),
    kind: r.kind,
    source: r.source,
    job: r.job ?? undefined,
    params: r.params ? JSON.parse(r.params) : undefined,
    startedAt: ms(r.started_at)!,
    finishedAt: ms(r.finished_at),
    durationMs: r.duration_ms == null ? null : Number(r.duration_ms),
    outcome: r.outcome,
    read: n(r.read),
    inserted: n(r.inserted),
    updated: n(r.updated),
    unchanged: n(r.unchanged),
    stored: n(r.inserted) + n(r.updated),
    quarantined: n(r.quarantined),
    fromTs: ms(r.from_ts),
    toTs: ms(r.to_ts),
    quality: r.quality ? JSON.parse(r.quality) : null,
    error: r.error ?? null,
    failures: r.failures ? JSON.parse(r.failures) : {},
  };
}

function rowToBar(r: any): Bar {
  const bar: Bar = { source: r.source, symbol: r.symbol, interval: r.interval as Interval, ts: ms(r.ts)!, open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume };
  if (r.adj_close != null && !Number.isNaN(r.adj_close)) bar.adjClose = r.adj_close;
  if (r.turnover != null && !Number.isNaN(r.turnover)) bar.turnover = r.turnover;
  if (r.trades != null) bar.trades = Number(r.trades);
  return bar;
}

const same = (a: number | null | undefined, b: number | null | undefined) => (a ?? null) === (b ?? null);

/** A run's counters, as commitBatch adds to them. */
type Counters = { read: number; inserted: number; updated: number; unchanged: number; quarantined: number; fromTs: number | null; toTs: number | null };

function rowToCounters(r: any): Counters {
  return { read: Number(r.read), inserted: Number(r.inserted), updated: Number(r.updated), unchanged: Number(r.unchanged), quarantined: Number(r.quarantined), fromTs: ms(r.from_ts), toTs: ms(r.to_ts) };
}

const withCounters = (run: RunRecord, c: Counters | undefined): RunRecord => (c ? { ...run, ...c, stored: c.inserted + c.updated } : run);

/**
 * Lines per /write request, and so per QuestDB transaction: each one makes QuestDB merge its
 * rows into every partition they touch (all months of a series' history, for a bulk file), so
 * fewer, larger transactions cost it far less work.
 */
export const ILP_LINES_PER_REQUEST = 100_000;

/** Per series: the newest stored ts and the start of its ILP lines (table and tags), made once. */
type SeriesState = { last: number; head: Uint8Array };

/**
 * ILP text built as bytes in place: numbers are written digit by digit, the rest is encoded
 * once (series heads, field names, the batch's tail). No string per line or number.
 */
type IlpBuffer = { buf: Uint8Array; len: number; lines: number };
const utf8 = new TextEncoder();
/** Buffers of finished writes, kept for the next ones: a fresh one costs its pages' faults again. */
const spareBuffers: Uint8Array[] = [];
/**
 * A buffer for a write of `lines` lines, made at the size such a write usually needs (a daily
 * bar's line is about 140 bytes), so it seldom grows: the memory a load holds is the same
 * from its first write to its last.
 */
const ilpBuffer = (lines: number): IlpBuffer => {
  const spare = spareBuffers.pop();
  return { buf: spare ?? new Uint8Array(Math.min(64 << 20, Math.max(1 << 16, lines * 160))), len: 0, lines: 0 };
};
const recycle = (body: Uint8Array) => void (spareBuffers.length < 2 && spareBuffers.push(new Uint8Array(body.buffer)));
function room(w: IlpBuffer, n: number) {
  if (w.len + n <= w.buf.length) return;
  const grown = new Uint8Array(Math.max(w.buf.length * 2, w.len + n));
  grown.set(w.buf.subarray(0, w.len));
  w.buf = grown;
}
function ascii(w: IlpBuffer, s: string) {
  const b = w.buf;
  let p = w.len;
  for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
  w.len = p;
}
/** Short byte strings are copied by hand: a native set() per line costs more than the copy. */
function bytes(w: IlpBuffer, u: Uint8Array) {
  const b = w.buf;
  let p = w.len;
  for (let i = 0; i < u.length; i++) b[p++] = u[i]!;
  w.len = p;
}
/** The digits of a whole number 0 ≤ m < 2^53, with a decimal point `k` digits from the right. */
/** The digits of a whole number 0 ≤ m ≤ INT32_MAX. */
function uint32(w: IlpBuffer, m: number) {
  const n = m < 1e5 ? (m < 100 ? (m < 10 ? 1 : 2) : m < 1e3 ? 3 : m < 1e4 ? 4 : 5) : m < 1e7 ? (m < 1e6 ? 6 : 7) : m < 1e8 ? 8 : m < 1e9 ? 9 : 10;
  const b = w.buf;
  let p = w.len + n;
  w.len = p;
  do {
    const q = (m / 10) | 0;
    b[--p] = 48 + m - q * 10;
    m = q;
  } while (m > 0);
}
/** Exactly `n` digits of 0 ≤ m < 10^n ≤ 10^9, with leading zeros. */
function padded(w: IlpBuffer, m: number, n: number) {
  const b = w.buf;
  let p = w.len + n;
  w.len = p;
  for (let i = 0; i < n; i++) {
    const q = (m / 10) | 0;
    b[--p] = 48 + m - q * 10;
    m = q;
  }
}
/** The digits of a whole number 0 ≤ m < 2^53 (int32 arithmetic, nine digits at a time). */
function uint(w: IlpBuffer, m: number) {
  if (m <= INT32_MAX) return uint32(w, m);
  const hi = Math.floor(m / 1e9);
  uint(w, hi);
  padded(w, m - hi * 1e9, 9);
}
/** m·10^-k: the digits of the whole number m with a decimal point `k` digits from the right. */
function digits(w: IlpBuffer, m: number, k: number) {
  if (k === 0) return uint(w, m);
  const whole = Math.floor(m / POW10[k]!);
  uint(w, whole);
  w.buf[w.len++] = 46;
  padded(w, m - whole * POW10[k]!, k);
}
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];
const TWO_53 = 9_007_199_254_740_992;
const INT32_MAX = 2_147_483_647;
/**
 * Decimal places per column (open … turnover) that wrote its last number: tried first for the
 * next, which usually has as many (prices in cents, volumes whole).
 */
const placesHint = new Int32Array(8);
/**
 * `name` then x as an ILP double. A price or volume with at most 8 decimals is written from the
 * whole number m = x·10^k: when m / 10^k is x in floating point, the decimal m·10^-k reads back
 * as exactly x (m and 10^k are exact, so both are the double nearest that decimal), whichever
 * such k it is. Anything else is JavaScript's shortest form. An integral value gets `.0`, or ILP
 * would read a LONG.
 */
function double(w: IlpBuffer, name: Uint8Array, x: number, column: number) {
  bytes(w, name);
  if (x >= 0 && x < TWO_53) {
    const h = placesHint[column]!;
    const m = Math.round(x * POW10[h]!);
    // The hint, unless it leaves a trailing zero (then fewer places do: the search finds them).
    if (m < TWO_53 && m / POW10[h]! === x && (h === 0 || m % 10 !== 0)) return scaled(w, m, h);
    for (let k = 0; k < POW10.length; k++) {
      const m = Math.round(x * POW10[k]!);
      if (m >= TWO_53) break;
      if (m / POW10[k]! === x) {
        placesHint[column] = k;
        return scaled(w, m, k);
      }
    }
  }
  // Whole numbers from 1e21 up print with an exponent, which is a double already.
  ascii(w, Number.isInteger(x) && Math.abs(x) < 1e21 ? `${x}.0` : String(x));
}
function scaled(w: IlpBuffer, m: number, k: number) {
  digits(w, m, k);
  if (k === 0) (w.buf[w.len++] = 46), (w.buf[w.len++] = 48);
}
/** x as this store writes an ILP double (tested: it reads back as exactly x). */
export function ilpDoubleText(x: number, column = 0): string {
  const w: IlpBuffer = { buf: new Uint8Array(64), len: 0, lines: 0 };
  double(w, new Uint8Array(0), x, column);
  return new TextDecoder().decode(w.buf.subarray(0, w.len));
}
/**
 * One bar's ILP line: the series head, the numbers of columns row k of f, the batch's tail and
 * the timestamp. Kept small and apart from commitBatch so it compiles to tight code.
 */
function ilpLine(w: IlpBuffer, head: Uint8Array, f: Float64Array, k: number, tail: Uint8Array) {
  bytes(w, head);
  double(w, F_OPEN, f[k + 1]!, 0);
  double(w, F_HIGH, f[k + 2]!, 1);
  double(w, F_LOW, f[k + 3]!, 2);
  double(w, F_CLOSE, f[k + 4]!, 3);
  double(w, F_VOLUME, f[k + 5]!, 4);
  if (Number.isFinite(f[k + 6]!)) double(w, F_ADJ, f[k + 6]!, 5);
  if (Number.isFinite(f[k + 7]!)) double(w, F_TURNOVER, f[k + 7]!, 6);
  const trades = f[k + 8]!;
  if (Number.isFinite(trades)) {
    bytes(w, F_TRADES);
    const t = Math.trunc(trades);
    if (t >= 0 && t < TWO_53) uint(w, t);
    else ascii(w, String(t));
    w.buf[w.len++] = 105; // i
  }
  bytes(w, tail);
  const ts = f[k]!;
  if (ts >= 0 && ts < TWO_53) uint(w, ts);
  else ascii(w, String(ts));
  w.buf[w.len++] = 10;
}
const [F_OPEN, F_HIGH, F_LOW, F_CLOSE, F_VOLUME, F_ADJ, F_TURNOVER, F_TRADES] = ["open=", ",high=", ",low=", ",close=", ",volume=", ",adj_close=", ",turnover=", ",trades="].map((n) => utf8.encode(n)) as [
  Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array,
];

export function questdbStore(url: string): Store {
  const { pg, http, location, prefix, lines: linesPerRequest } = parseQuestdbUrl(url);
  const T = Object.fromEntries(TABLE_NAMES.map((n) => [n, `${prefix}${n}`])) as Record<TableName, string>;
  const sql: Sql = postgres(pg, {
    max: 1,
    fetch_types: false,
    onnotice: () => {},
    types: {
      // QuestDB's TIMESTAMP has no zone and means UTC; postgres.js would read it as local time.
      timestamp: { to: 1114, from: [1114], serialize: (d: Date) => d.toISOString(), parse: (s: string) => new Date(s.endsWith("Z") ? s : `${s}Z`) },
    },
  });
  const owner = newOwner();
  const exclusive = mutex();
  const writeUrl = `${http}/write?precision=ms`;

  /** POST ILP lines; resolves once QuestDB has committed them to the table's WAL (204). */
  async function ilp(body: string | Uint8Array) {
    const res = await fetch(writeUrl, { method: "POST", body });
    if (res.status !== 204 && res.status !== 200) throw new Error(`QuestDB /write answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  }

  // A 204 means the rows are committed to the WAL (durable); they become readable once the WAL is
  // applied. Reads wait for that; writes need not. A table starts dirty: a process that ended
  // before (kill -9) may have left committed rows that are not applied yet.
  let barsDirty = true;
  async function settled() {
    await drain();
    if (!barsDirty) return;
    await walApplied(T.bars);
    barsDirty = false;
  }
  let progressDirty = true;
  async function progressSettled() {
    await drain();
    if (!progressDirty) return;
    await walApplied(T.progress);
    progressDirty = false;
  }

  // What this process wrote to the progress table, so reading it back needs no wait for the WAL.
  const checkpointsWritten = new Map<string, Checkpoint>();
  const counters = new Map<number, Counters>();

  // Writes are gathered across batches into requests of `lines` lines (a batch is
  // never split between two writes), and sent while the next batches are prepared: one write in
  // flight, one queued behind it, at most. A write is the bars' requests, then — after QuestDB
  // accepted them — one request with the checkpoints and run counters of the batches they hold.
  // So commitBatch returns before its batch is durable, but nothing claims it until it is: a
  // crash loses at most the batches not yet written, and their checkpoints with them. Anything
  // that reads, finishes a run or marks a stream done waits for the writes first.
  type Pending = { bodies: Uint8Array[]; cur: IlpBuffer; progress: Map<string, string>; runs: Set<number>; streams: Set<string>; events: BarEvent[] };
  const nothingPending = (): Pending => ({ bodies: [], cur: ilpBuffer(linesPerRequest), progress: new Map(), runs: new Set(), streams: new Set(), events: [] });
  // Events are live only here: QuestDB keeps no journal for replay (the SQLite and Postgres stores
  // do). Batch numbers start at the store's opening second, so ids still grow across restarts
  // unless a process averaged more than one batch a second since 1970.
  const listeners = new Set<(events: BarEvent[]) => void>();
  let nextBatch = Math.floor(Date.now() / 1000);
  let pending = nothingPending();
  let writing: Promise<void> = Promise.resolve();
  /** Runs with a write QuestDB refused: nothing of theirs is written after it, and they fail. */
  const refused = new Map<number, Error>();
  /** A batch waits at most this long for more to join its write. */
  const WRITE_DELAY_MS = 500;
  let timer: Timer | null = null;

  function flush(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = null;
    const p = pending;
    if (p.cur.lines === 0 && p.bodies.length === 0 && p.progress.size === 0) return writing;
    pending = nothingPending();
    if (p.cur.lines > 0) p.bodies.push(p.cur.buf.subarray(0, p.cur.len));
    else recycle(p.cur.buf);
    // What this process remembers of a write that did not happen is forgotten: reads go to the table.
    const forget = () => {
      for (const st of p.streams) checkpointsWritten.delete(st);
      for (const r of p.runs) counters.delete(r);
    };
    writing = writing.then(async () => {
      if ([...p.runs].some((r) => refused.has(r))) return forget();
      try {
        for (const body of p.bodies) {
          barsDirty = true;
          await ilp(body);
          recycle(body); // sent and answered: QuestDB has it
        }
        if (p.progress.size > 0) {
          progressDirty = true;
          await ilp([...p.progress.values()].join(""));
        }
        if (p.events.length) for (const fn of listeners) fn(p.events);
      } catch (e) {
        for (const r of p.runs) refused.set(r, e instanceof Error ? e : new Error(String(e)));
        forget();
      }
    });
    return writing;
  }
  /** Every gathered batch written (or refused: see `refused`). */
  const drain = () => flush();
  const refusal = (runId: number) => {
    const e = refused.get(runId);
    return e ? new Error(`QuestDB refused an earlier write of run ${runId}: ${e.message}`) : null;
  };

  /**
   * Newest stored ts per (source, interval) and symbol, loaded once: a bar after it cannot exist
   * yet, so a fresh load writes without asking the table first.
   */
  let newest: Map<string, Map<string, SeriesState>> | null = null;
  const head = (source: string, symbol: string, interval: string) => utf8.encode(`${T.bars},symbol=${tag(symbol)},interval=${tag(interval)},source=${tag(source)} `);
  async function newestBySeries(): Promise<Map<string, Map<string, SeriesState>>> {
    if (newest) return newest;
    await settled();
    const m = new Map<string, Map<string, SeriesState>>();
    for (const r of await sql`SELECT source, symbol, interval, max(ts) AS last_ts FROM ${sql(T.bars)} GROUP BY source, symbol, interval`)
      seriesGroup(m, r.source, r.interval).set(r.symbol, { last: ms(r.last_ts)!, head: head(r.source, r.symbol, r.interval) });
    return (newest = m);
  }
  function seriesGroup(m: Map<string, Map<string, SeriesState>>, source: string, interval: string) {
    const k = `${source}\u0000${interval}`;
    let g = m.get(k);
    if (!g) m.set(k, (g = new Map()));
    return g;
  }

  /** Wait until a WAL table's WAL is applied, so what was written can be read back. */
  async function walApplied(table: string, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [r] = await sql`SELECT writerTxn, sequencerTxn, suspended FROM wal_tables() WHERE name = ${table}`;
      if (!r) return;
      if (r.suspended) throw new Error(`QuestDB suspended the WAL of ${table} (see its log)`);
      if (Number(r.writerTxn) >= Number(r.sequencerTxn)) return;
      if (Date.now() > deadline) throw new Error(`QuestDB did not apply the WAL of ${table} in time`);
      await Bun.sleep(10);
    }
  }

  async function nextId(table: "runs" | "quarantine"): Promise<number> {
    const [r] = await sql`SELECT max(id) AS m FROM ${sql(T[table])}`;
    return Number(r?.m ?? 0) + 1;
  }

  async function version(): Promise<number> {
    const tables = await sql`SELECT table_name FROM tables() WHERE table_name = ${T.schema_migrations}`;
    if (tables.length === 0) return 0;
    const [r] = await sql`SELECT max(version) AS v FROM ${sql(T.schema_migrations)}`;
    return Number(r?.v ?? 0);
  }

  const tableExists = async (name: string) => (await sql`SELECT table_name FROM tables() WHERE table_name = ${name}`).length > 0;

  /** The counters stored for these runs (those this process keeps are newer). */
  async function storedCounters(ids: number[]): Promise<Map<string, Counters>> {
    const out = new Map<string, Counters>();
    const want = ids.filter((id) => !counters.has(id)).map(String);
    if (want.length === 0) return out;
    await progressSettled();
    for (let i = 0; i < want.length; i += 500)
      for (const r of await sql`SELECT key, read, inserted, updated, unchanged, quarantined, from_ts, to_ts FROM ${sql(T.progress)} WHERE kind = 'run' AND key IN ${sql(want.slice(i, i + 500))}`)
        out.set(r.key, rowToCounters(r));
    return out;
  }
  const countersOf = (id: number, stored: Map<string, Counters>) => counters.get(id) ?? stored.get(String(id));

  const counterLine = (runId: number, c: Counters, now: number) =>
    `${T.progress},kind=run key="${runId}",run_id=${runId}i,read=${c.read}i,inserted=${c.inserted}i,updated=${c.updated}i,unchanged=${c.unchanged}i,quarantined=${c.quarantined}i` +
    `${c.fromTs === null ? "" : `,from_ts=${micros(c.fromTs)}`}${c.toTs === null ? "" : `,to_ts=${micros(c.toTs)}`},updated_at=${micros(now)} 0\n`;
  const checkpointLine = (c: Checkpoint, runId: number, now: number) =>
    `${T.progress},kind=checkpoint key=${str(c.stream)},cursor=${str(JSON.stringify(c.cursor))}${c.lastTs === null ? "" : `,last_ts=${micros(c.lastTs)}`}` +
    `${c.lastKey === null ? "" : `,last_key=${str(c.lastKey)}`},run_id=${runId}i,updated_at=${micros(now)} 0\n`;

  /** Write progress rows (one request: one transaction); remembered once QuestDB has them. */
  async function writeProgress(body: string) {
    if (body === "") return;
    progressDirty = true;
    await ilp(body);
  }

  const store: Store = {
    kind: "questdb",
    journal: false,
    location,

    async migrate() {
      return exclusive(async () => {
        const applied: number[] = [];
        await sql`CREATE TABLE IF NOT EXISTS ${sql(T.schema_migrations)} (version INT, name VARCHAR, applied_at TIMESTAMP)`;
        if ((await version()) < 1) {
          for (const ddl of TABLES(T)) await sql.unsafe(ddl);
          await sql`INSERT INTO ${sql(T.schema_migrations)} VALUES (1, 'bars (WAL, dedup keys), bookkeeping tables', ${new Date()})`;
          applied.push(1);
        }
        if ((await version()) < 2) {
          // Checkpoints move into the progress table, written over ILP with their batch. Each
          // step can run again after a crash: the copy upserts the same keys.
          await sql.unsafe(PROGRESS(T));
          if (await tableExists(T.checkpoints)) {
            await sql.unsafe(`INSERT INTO "${T.progress}" (kind, key, ts, cursor, last_ts, last_key, run_id, updated_at)
                                SELECT 'checkpoint', stream, cast(0 AS timestamp), cursor, last_ts, last_key, run_id, updated_at FROM "${T.checkpoints}"`);
            await walApplied(T.progress);
            await sql.unsafe(`DROP TABLE IF EXISTS "${T.checkpoints}"`);
          }
          await sql`INSERT INTO ${sql(T.schema_migrations)} VALUES (2, 'checkpoints and run counters in one WAL table written over ILP', ${new Date()})`;
          applied.push(2);
        }
        for (const r of await sql`SELECT id, owner FROM ${sql(T.runs)} WHERE outcome = 'running'`) {
          if (ownerGone(String(r.owner), owner))
            await sql`UPDATE ${sql(T.runs)} SET outcome = 'interrupted', finished_at = ${new Date()}, error = 'process ended before the run finished' WHERE id = ${Number(r.id)}`;
        }
        return { applied, version: await version() };
      });
    },

    ready: () => readiness(version, QDB_SCHEMA_VERSION),

    commitBatch: (b: CommitBatch) =>
      exclusive(async (): Promise<CommitResult> => {
        const earlier = refusal(b.runId);
        if (earlier) throw earlier;
        const c = columnsOf(b.bars);
        const f = c.f64;
        // No transaction to roll back: refuse a bad batch before anything is written.
        for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH)
          if (!(Number.isFinite(f[k]!) && Number.isFinite(f[k + 1]!) && Number.isFinite(f[k + 2]!) && Number.isFinite(f[k + 3]!) && Number.isFinite(f[k + 4]!) && Number.isFinite(f[k + 5]!))) {
            const bar = barAt(c, i);
            for (const key of ["ts", "open", "high", "low", "close", "volume"] as const)
              if (!Number.isFinite(bar[key])) throw new Error(`bar ${bar.symbol} ${bar.ts}: ${key} is not a finite number`);
          }
        // The run's counters so far: loaded once per run, then kept here.
        let run = counters.get(b.runId);
        if (!run) {
          const r = await store.getRun(b.runId);
          if (r) counters.set(b.runId, (run = { read: r.read, inserted: r.inserted, updated: r.updated, unchanged: r.unchanged, quarantined: r.quarantined, fromTs: r.fromTs, toTs: r.toTs }));
        }
        let inserted = 0;
        let updated = 0;
        let unchanged = 0;
        let lo = run?.fromTs ?? null;
        let hi = run?.toTs ?? null;
        const now = Date.now();
        const existing = new Map<string, Bar>();
        let states: SeriesState[] = [];
        if (c.n > 0) {
          // What the table holds for these keys. Bars after their series' newest stored bar are
          // new by construction; the rest are looked up in one query by time range and symbols.
          const all = await newestBySeries();
          states = c.series.map((x) => {
            const group = seriesGroup(all, x.source, x.interval);
            let st = group.get(x.symbol);
            if (!st) group.set(x.symbol, (st = { last: -Infinity, head: head(x.source, x.symbol, x.interval) }));
            return st;
          });
          let mlo = Infinity;
          let mhi = -Infinity;
          const maybe = new Set<string>();
          for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
            const ts = f[k]!;
            if (ts <= states[c.row[i]!]!.last) (mlo = Math.min(mlo, ts)), (mhi = Math.max(mhi, ts)), maybe.add(c.series[c.row[i]!]!.symbol);
            if (lo === null || ts < lo) lo = ts;
            if (hi === null || ts > hi) hi = ts;
          }
          if (maybe.size > 0) {
            await settled();
            const list = [...maybe];
            for (let i = 0; i < list.length; i += 500)
              for (const r of await sql`SELECT * FROM ${sql(T.bars)} WHERE ts >= ${new Date(mlo)} AND ts <= ${new Date(mhi)} AND symbol IN ${sql(list.slice(i, i + 500))}`) {
                const old = rowToBar(r);
                existing.set(`${old.symbol}\u0000${old.interval}\u0000${old.source}\u0000${old.ts}`, old);
              }
          }
        }
        let quarantined = 0;
        if (b.quarantine.length > 0) {
          const old = new Map<string, { rule: string; raw: string }>();
          const locators = b.quarantine.map((q) => q.locator);
          for (let i = 0; i < locators.length; i += 500)
            for (const r of await sql`SELECT locator, rule, raw FROM ${sql(T.quarantine)} WHERE source = ${b.source} AND locator IN ${sql(locators.slice(i, i + 500))}`)
              old.set(r.locator, { rule: r.rule, raw: r.raw });
          let id = await nextId("quarantine");
          const fresh: Record<string, unknown>[] = [];
          for (const q of b.quarantine) {
            const raw = JSON.stringify(q.raw ?? {});
            const o = old.get(q.locator);
            if (o && o.rule === q.rule && o.raw === raw) continue;
            quarantined++;
            if (o)
              await sql`UPDATE ${sql(T.quarantine)} SET run_id = ${b.runId}, rule = ${q.rule}, reason = ${q.reason}, symbol = ${q.symbol ?? null}, ts = ${date(q.ts)}, raw = ${raw}
                        WHERE source = ${b.source} AND locator = ${q.locator}`;
            else {
              fresh.push({ id: id++, run_id: b.runId, source: b.source, locator: q.locator, rule: q.rule, reason: q.reason, symbol: q.symbol ?? null, ts: date(q.ts), raw, created_at: new Date() });
              old.set(q.locator, { rule: q.rule, raw });
            }
          }
          for (let i = 0; i < fresh.length; i += 500)
            await sql`INSERT INTO ${sql(T.quarantine)} ${sql(fresh.slice(i, i + 500), "id", "run_id", "source", "locator", "rule", "reason", "symbol", "ts", "raw", "created_at")}`;
        }
        // From here on no await: the batch joins the gathered write whole, its bars and then its
        // run's counters and its checkpoint (one request to one table: one transaction, after the
        // bars). A batch's lines may span two requests of the write, never two writes.
        // The same tail for every line of the batch.
        const tail = utf8.encode(`,run_id=${b.runId}i,updated_at=${micros(now)} `);
        let w = pending.cur;
        const batch = listeners.size ? nextBatch++ : 0;
        let nEvents = 0;
        const value = (x: number) => (Number.isNaN(x) ? null : x);
        for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
          const st = states[c.row[i]!]!;
          const ts = f[k]!;
          if (ts > st.last) st.last = ts;
          let old: Bar | undefined;
          if (existing.size > 0) {
            const x = c.series[c.row[i]!]!;
            old = existing.get(`${x.symbol}\u0000${x.interval}\u0000${x.source}\u0000${ts}`);
          }
          if (old) {
            if (same(old.open, f[k + 1]) && same(old.high, f[k + 2]) && same(old.low, f[k + 3]) && same(old.close, f[k + 4]) && same(old.volume, f[k + 5]) && same(old.adjClose, value(f[k + 6]!)) && same(old.turnover, value(f[k + 7]!)) && same(old.trades, value(f[k + 8]!))) {
              unchanged++;
              continue;
            }
            updated++;
          } else inserted++;
          if (batch) pending.events.push({ id: eventId(batch, nEvents++), type: "bar", op: old ? "update" : "insert", bar: barAt(c, i) });
          // Head, tail, 8 numbers of at most 25 characters and the field names.
          room(w, st.head.length + tail.length + 320);
          ilpLine(w, st.head, f, k, tail);
          if (++w.lines === linesPerRequest) {
            pending.bodies.push(w.buf.subarray(0, w.len));
            w = pending.cur = ilpBuffer(linesPerRequest);
          }
        }
        const next: Counters | null = run
          ? { read: run.read + b.read, inserted: run.inserted + inserted, updated: run.updated + updated, unchanged: run.unchanged + unchanged, quarantined: run.quarantined + b.quarantine.length, fromTs: lo, toTs: hi }
          : null;
        pending.runs.add(b.runId);
        if (next) {
          pending.progress.set(`run:${b.runId}`, counterLine(b.runId, next, now));
          counters.set(b.runId, next);
        }
        if (b.checkpoint) {
          pending.progress.set(`checkpoint:${b.checkpoint.stream}`, checkpointLine(b.checkpoint, b.runId, now));
          pending.streams.add(b.checkpoint.stream);
          checkpointsWritten.set(b.checkpoint.stream, b.checkpoint);
        }
        if (pending.bodies.length > 0) {
          // Queue this write behind the one in flight, and wait for that one: QuestDB always has
          // the next write while this process prepares the one after it.
          const inFlight = writing;
          void flush();
          await inFlight;
        } else timer ??= setTimeout(() => void flush(), WRITE_DELAY_MS);
        return { inserted, updated, unchanged, quarantined };
      }),

    async getCheckpoint(stream) {
      await drain();
      const mine = checkpointsWritten.get(stream);
      if (mine) return mine;
      await progressSettled();
      const [r] = await sql`SELECT key, cursor, last_ts, last_key FROM ${sql(T.progress)} WHERE kind = 'checkpoint' AND key = ${stream}`;
      return r ? { stream: r.key, cursor: JSON.parse(r.cursor), lastTs: ms(r.last_ts), lastKey: r.last_key ?? null } : null;
    },

    async listCheckpoints() {
      await progressSettled();
      const rows = await sql`SELECT key, cursor, last_ts, last_key FROM ${sql(T.progress)} WHERE kind = 'checkpoint' ORDER BY key`;
      return rows.map((r): Checkpoint => ({ stream: r.key, cursor: JSON.parse(r.cursor), lastTs: ms(r.last_ts), lastKey: r.last_key ?? null }));
    },

    putCheckpoints: (list, runId) =>
      exclusive(async () => {
        await drain();
        const now = Date.now();
        for (let i = 0; i < list.length; i += linesPerRequest) {
          const part = list.slice(i, i + linesPerRequest);
          await writeProgress(part.map((c) => checkpointLine(c, runId, now)).join(""));
          for (const c of part) checkpointsWritten.set(c.stream, c);
        }
      }),

    startRun: (run: RunStart) =>
      exclusive(async () => {
        const id = await nextId("runs");
        await sql`INSERT INTO ${sql(T.runs)} (id, kind, source, job, params, owner, started_at, outcome, read, inserted, updated, unchanged, quarantined)
                  VALUES (${id}, ${run.kind}, ${run.source}, ${run.job ?? null}, ${run.params ? JSON.stringify(run.params) : null}, ${owner}, ${new Date()}, 'running', 0, 0, 0, 0, 0)`;
        return id;
      }),

    finishRun: (id, s: RunSummary) =>
      exclusive(async () => {
        await settled(); // a finished run's bars are written and readable
        const earlier = refusal(id);
        if (earlier) {
          // Not all of its bars are stored: the run failed, whatever its streams saw.
          refused.delete(id);
          s = { ...s, outcome: "failed", error: s.error ? `${earlier.message}; ${s.error}` : earlier.message };
        }
        // The counters as the summary has them, where commitBatch keeps them, then the run's row.
        const final: Counters = { read: s.read, inserted: s.inserted, updated: s.updated, unchanged: s.unchanged, quarantined: s.quarantined, fromTs: s.fromTs, toTs: s.toTs };
        const now = new Date();
        await writeProgress(counterLine(id, final, now.getTime()));
        counters.set(id, final);
        const [r] = await sql`SELECT started_at FROM ${sql(T.runs)} WHERE id = ${id}`;
        await sql`UPDATE ${sql(T.runs)} SET finished_at = ${now}, duration_ms = ${r ? now.getTime() - ms(r.started_at)! : null}, outcome = ${s.outcome},
                    read = ${s.read}, inserted = ${s.inserted}, updated = ${s.updated}, unchanged = ${s.unchanged}, quarantined = ${s.quarantined},
                    from_ts = ${date(s.fromTs)}, to_ts = ${date(s.toTs)}, quality = ${s.quality ? JSON.stringify(s.quality) : null},
                    error = ${s.error ?? null}, failures = ${s.failures ? JSON.stringify(s.failures) : null}
                  WHERE id = ${id}`;
        if (earlier) throw earlier;
      }),

    async getRun(id) {
      await drain();
      const [r] = await sql`SELECT * FROM ${sql(T.runs)} WHERE id = ${id}`;
      return r ? withCounters(rowToRun(r), countersOf(id, await storedCounters([id]))) : null;
    },
    reopenRun: (id) =>
      exclusive(async () => {
        await sql`UPDATE ${sql(T.runs)} SET outcome = 'running', owner = ${owner}, finished_at = ${null}, error = ${null} WHERE id = ${id}`;
      }),

    initRunStreams: (runId, streams) =>
      exclusive(async () => {
        const have = new Set((await sql`SELECT stream FROM ${sql(T.run_streams)} WHERE run_id = ${runId}`).map((r) => r.stream as string));
        for (const s of streams) if (!have.has(s)) await sql`INSERT INTO ${sql(T.run_streams)} VALUES (${runId}, ${s}, 'pending', ${null}, ${null}, 0, ${new Date()})`;
      }),

    setRunStream: (runId, stream, st) =>
      exclusive(async () => {
        if (st.status === "done") {
          // A stream is done once all its bars are written, not when they are gathered.
          await drain();
          const earlier = refusal(runId);
          if (earlier) throw earlier;
        }
        const [r] = await sql`SELECT rows FROM ${sql(T.run_streams)} WHERE run_id = ${runId} AND stream = ${stream}`;
        if (r)
          await sql`UPDATE ${sql(T.run_streams)} SET status = ${st.status}, cause = ${st.cause ?? null}, error = ${st.error ?? null}, rows = ${Number(r.rows) + st.rows}, updated_at = ${new Date()}
                    WHERE run_id = ${runId} AND stream = ${stream}`;
        else await sql`INSERT INTO ${sql(T.run_streams)} VALUES (${runId}, ${stream}, ${st.status}, ${st.cause ?? null}, ${st.error ?? null}, ${st.rows}, ${new Date()})`;
      }),

    async listRunStreams(runId, status) {
      const rows = status
        ? await sql`SELECT stream, status, cause, error, rows FROM ${sql(T.run_streams)} WHERE run_id = ${runId} AND status = ${status} ORDER BY stream`
        : await sql`SELECT stream, status, cause, error, rows FROM ${sql(T.run_streams)} WHERE run_id = ${runId} ORDER BY stream`;
      return rows.map((r): RunStream => ({ stream: r.stream, status: r.status, cause: r.cause ?? null, error: r.error ?? null, rows: Number(r.rows) }));
    },

    async listRuns({ limit, before, source }) {
      await drain();
      const rows = source
        ? await sql`SELECT * FROM ${sql(T.runs)} WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} AND source = ${source} ORDER BY id DESC LIMIT ${limit}`
        : await sql`SELECT * FROM ${sql(T.runs)} WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} ORDER BY id DESC LIMIT ${limit}`;
      const stored = await storedCounters(rows.map((r) => Number(r.id)));
      return rows.map((r) => withCounters(rowToRun(r), countersOf(Number(r.id), stored)));
    },

    async lastSuccessByJob() {
      const out = new Map<string, number>();
      for (const r of await sql`SELECT job, kind, source, finished_at FROM ${sql(T.runs)} WHERE outcome = 'succeeded'`) {
        const job = r.job ?? `${r.kind}:${r.source}`;
        const t = ms(r.finished_at)!;
        if (!out.has(job) || out.get(job)! < t) out.set(job, t);
      }
      return out;
    },

    async listSeries(opts) {
      await settled();
      // Derived from the bars themselves: a columnar scan QuestDB does quickly, and nothing to keep in step.
      const rows = opts?.symbol
        ? await sql`SELECT source, symbol, interval, min(ts) AS first_ts, max(ts) AS last_ts, count() AS bars FROM ${sql(T.bars)} WHERE symbol = ${opts.symbol} GROUP BY source, symbol, interval ORDER BY symbol, interval, source`
        : await sql`SELECT source, symbol, interval, min(ts) AS first_ts, max(ts) AS last_ts, count() AS bars FROM ${sql(T.bars)} GROUP BY source, symbol, interval ORDER BY symbol, interval, source`;
      return rows.map((r): SeriesInfo => ({ source: r.source, symbol: r.symbol, interval: r.interval, firstTs: ms(r.first_ts)!, lastTs: ms(r.last_ts)!, bars: Number(r.bars) }));
    },

    async queryBars(q: BarQuery) {
      await settled();
      const from = new Date(Math.max(q.from ?? 0, 0));
      const to = new Date(Math.min(q.to ?? 4102444800000, 4102444800000));
      const a = q.after;
      const rows = await sql`
        SELECT * FROM ${sql(T.bars)} WHERE symbol = ${q.symbol} AND interval = ${q.interval} AND ts >= ${from} AND ts <= ${to}
          ${q.source ? sql`AND source = ${q.source}` : sql``}
          ${a ? sql`AND (ts > ${new Date(a.ts)} OR (ts = ${new Date(a.ts)} AND source > ${a.source}))` : sql``}
        ORDER BY ts, source LIMIT ${q.limit}`;
      return rows.map(rowToBar);
    },

    async listQuarantine({ limit, before, source, rule, runId }) {
      const rows = await sql`
        SELECT * FROM ${sql(T.quarantine)} WHERE id < ${before ?? Number.MAX_SAFE_INTEGER}
          ${source ? sql`AND source = ${source}` : sql``} ${rule ? sql`AND rule = ${rule}` : sql``} ${runId ? sql`AND run_id = ${runId}` : sql``}
        ORDER BY id DESC LIMIT ${limit}`;
      return rows.map(
        (r): QuarantineRecord => ({
          id: Number(r.id),
          runId: Number(r.run_id),
          source: r.source,
          locator: r.locator,
          rule: r.rule,
          reason: r.reason,
          symbol: r.symbol ?? null,
          ts: ms(r.ts),
          raw: JSON.parse(r.raw),
          createdAt: ms(r.created_at)!,
        }),
      );
    },

    async countBars() {
      await settled();
      const [r] = await sql`SELECT count() AS n FROM ${sql(T.bars)}`;
      return Number(r!.n);
    },

    async eventsSince() {
      return [];
    },

    async eventBounds() {
      return { last: eventId(nextBatch, 0) - 1, first: null };
    },

    async pruneEvents() {
      return 0;
    },

    onEvents(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },

    async watchEvents() {
      return null;
    },

    // QuestDB has no transactions to arbitrate a lease: one ticksync process per QuestDB store
    // (replicas need the Postgres store; README).
    async tryLease() {
      return true;
    },

    async releaseLease() {},

    // Change order here: run, then the designated timestamp and the rest of the dedup key, so a
    // page scans only the partitions from its position on. The runs with bars come from the
    // run_id column itself (a columnar scan).
    async changedBars(q: ChangeQuery): Promise<ChangedBar[]> {
      await settled();
      const a = q.after;
      const startRun = a?.runId ?? 0;
      const hasKey = typeof a?.ts === "number" && typeof a?.symbol === "string" && typeof a?.interval === "string" && typeof a?.source === "string";
      const runs = await sql`SELECT DISTINCT run_id FROM ${sql(T.bars)} WHERE run_id >= ${startRun} AND run_id <= ${q.uptoRun} ORDER BY run_id`;
      const sources = q.sources?.length ? sql`AND source IN ${sql(q.sources)}` : sql``;
      const out: ChangedBar[] = [];
      for (const r of runs) {
        const run = Number(r.run_id);
        if (run === startRun && a && !hasKey) continue;
        let after = sql``;
        if (run === startRun && hasKey) {
          const t = new Date(a!.ts as number);
          const [sym, int, src] = [a!.symbol as string, a!.interval as string, a!.source as string];
          after = sql`AND ts >= ${t} AND (ts > ${t} OR symbol > ${sym} OR (symbol = ${sym} AND (interval > ${int} OR (interval = ${int} AND source > ${src}))))`;
        }
        const rows = await sql`
          SELECT * FROM ${sql(T.bars)} WHERE run_id = ${run} ${after} ${sources}
          ORDER BY ts, symbol, interval, source LIMIT ${q.limit - out.length}`;
        for (const row of rows) {
          const bar = rowToBar(row);
          out.push({ bar, position: { runId: run, ts: bar.ts, symbol: bar.symbol, interval: bar.interval, source: bar.source } });
        }
        if (out.length >= q.limit) break;
      }
      return out;
    },

    async close() {
      await settled().catch(() => {});
      await sql.end({ timeout: 5 });
    },
  };

  return store;
}

// The QuestDB store's connection and state: its URL, its table names, the PG-wire client, and
// what the process keeps between calls (the writes gathered and in flight, what it wrote to the
// progress table, the newest stored ts per series). Every module of the store takes this context.
import postgres from "postgres";
import type { BarEvent } from "../events.ts";
import type { Checkpoint, RunCounters } from "../types.ts";
import { ILP_CHUNK_LINES, ILP_LINES_PER_REQUEST, ilpBuffer, type IlpBuffer } from "./ilp.ts";
import type { RowHashKey } from "./rowhash.ts";

export type Sql = postgres.Sql<{}>;

/** `questdb://user:pass@host:pgPort/db?http=http://host:9000` → PG wire URL and HTTP base. */
export function parseQuestdbUrl(url: string): { pg: string; http: string; location: string; prefix: string; lines: number } {
  const u = new URL(url);
  const http = u.searchParams.get("http") ?? `http://${u.hostname}:9000`;
  // `prefix` names this store's tables apart, so several stores can share one QuestDB.
  const prefix = u.searchParams.get("prefix") ?? "";
  if (!/^[a-z0-9_]*$/i.test(prefix)) throw new Error(`prefix ${JSON.stringify(prefix)} must be letters, digits and _`);
  // `lines`: a write (one /write request, one QuestDB transaction) ends at the first batch that brings it to this many ILP lines.
  const lines = Number(u.searchParams.get("lines") ?? ILP_LINES_PER_REQUEST);
  if (!Number.isInteger(lines) || lines < 1 || lines > 10_000_000) throw new Error(`lines ${JSON.stringify(u.searchParams.get("lines"))} must be a whole number from 1 to 10000000`);
  u.searchParams.delete("http");
  u.searchParams.delete("prefix");
  u.searchParams.delete("lines");
  const pg = `postgres://${u.username ? `${u.username}${u.password ? `:${u.password}` : ""}@` : ""}${u.host}${u.pathname || "/qdb"}`;
  return { pg, http: http.replace(/\/+$/, ""), prefix, lines, location: `questdb://${u.username ? `${u.username}:***@` : ""}${u.host}${u.pathname}?http=${http}${prefix ? `&prefix=${prefix}` : ""}` };
}

/** The store's tables; `lease` is the stem of the lease tables (src/stores/questdb/leases.ts). */
export const TABLE_NAMES = ["bars", "checkpoints", "progress", "quarantine", "runs", "run_streams", "schema_migrations", "bar_extras", "journal", "lease"] as const;
export type TableName = (typeof TABLE_NAMES)[number];

/** A run's counters, as commitBatch adds to them. */
export type Counters = RunCounters;

/** Per series: the newest stored ts, the start of its ILP lines (table and tags) and its `seriesKey`, made once. */
export type SeriesState = { last: number; head: Uint8Array; key: string };

/** What a write's journal and progress requests need of its batches: the progress rows (checkpoints and run counters) by key, the runs and streams they hold, their journal rows and events. */
export type Held = { progress: Map<string, string>; runs: Set<number>; streams: Set<string>; events: BarEvent[]; journal: string[] };

/** Batches gathered since the last flush (src/stores/questdb/queue.ts): their full chunks of ILP lines, the one being filled, and what they hold. */
export type Pending = Held & { bodies: Uint8Array[]; cur: IlpBuffer };

export const nothingPending = (chunkLines: number): Pending => ({ progress: new Map(), runs: new Set(), streams: new Set(), events: [], journal: [], bodies: [], cur: ilpBuffer(chunkLines) });

/**
 * A write whose bars stream into one /write request (one QuestDB transaction): the chunks it has
 * not taken yet, its lines so far, whether it takes no more, the request waiting for a chunk and
 * the producer waiting for room, what its batches hold (null while it is open: that is still
 * `pending`), and QuestDB's answer.
 */
export type BarsWrite = { chunks: Uint8Array[]; lines: number; ended: boolean; wake: (() => void) | null; waiting: (() => void) | null; held: Held | null; answer: Promise<void> };

/**
 * The journal's numbering in the writing process (src/stores/questdb/journal.ts): the next batch
 * number and the last journal row's designated timestamp (ms, strictly increasing), loaded from
 * the tables before this process journals its first batch; null until then.
 */
export type JournalCursor = { nextBatch: number; lastTs: number };

export type QdbContext = {
  readonly sql: Sql;
  /** Table names with the store's prefix. */
  readonly T: Record<TableName, string>;
  readonly owner: string;
  /** One write at a time: QuestDB's non-WAL tables take a single writer. */
  readonly exclusive: <R>(fn: () => Promise<R>) => Promise<R>;
  readonly writeUrl: string;
  /** HTTP `/exec`: the lookup of stored bars a batch may overwrite (src/stores/questdb/writes.ts). */
  readonly execUrl: string;
  /** A write (one request, one QuestDB transaction) ends at the first batch that brings it to this many ILP lines; its body streams in chunks of `chunkLines`. */
  readonly linesPerRequest: number;
  readonly chunkLines: number;
  // A 204 means the rows are committed to the WAL (durable); they become readable once the WAL is
  // applied. Reads wait for that; writes need not. A table starts dirty: a process that ended
  // before (kill -9) may have left committed rows that are not applied yet.
  barsDirty: boolean;
  progressDirty: boolean;
  /** Extras written over PG wire and perhaps not applied yet (reads of them wait). */
  extrasDirty?: boolean;
  /** What this process wrote to the progress table, so reading it back needs no wait for the WAL. */
  readonly checkpointsWritten: Map<string, Checkpoint>;
  readonly counters: Map<number, Counters>;
  /** This process' onEvents listeners, called after a write's journal rows are committed. */
  readonly listeners: Set<(events: BarEvent[]) => void>;
  journal: JournalCursor | null;
  /** Until when (this process' clock) it holds the journal writer's lease (0: not held), and the timer that gives it up when idle. */
  writerUntil: number;
  writerIdle: Timer | null;
  pending: Pending;
  /** The write whose request is open, taking chunks as batches fill them. */
  open: BarsWrite | null;
  writing: Promise<void>;
  /** Runs with a write QuestDB refused: nothing of theirs is written after it, and they fail. */
  readonly refused: Map<number, Error>;
  timer: Timer | null;
  /**
   * Newest stored ts per (source, interval) and symbol, loaded once: a bar after it cannot exist
   * yet, so a fresh load writes without asking the table first.
   */
  newest: Map<string, Map<string, SeriesState>> | null;
  /** The store's row hash key (src/stores/questdb/rowhash.ts), read before the first write. */
  rowKey: RowHashKey | null;
  /**
   * Per series (`seriesKey`), the ts range of the bars this process wrote that may not be
   * readable yet: a lookup waits for the bars to be applied only when its range meets one.
   */
  unsettled: Map<string, { lo: number; hi: number }>;
};

export const seriesKey = (source: string, interval: string, symbol: string) => `${source}\u0000${interval}\u0000${symbol}`;

/** `[lo, hi]` added to a series' range in `m`. */
export function widen(m: Map<string, { lo: number; hi: number }>, key: string, lo: number, hi: number) {
  const r = m.get(key);
  if (!r) m.set(key, { lo, hi });
  else (r.lo = Math.min(r.lo, lo)), (r.hi = Math.max(r.hi, hi));
}

/** One write at a time: QuestDB's non-WAL tables take a single writer. */
function mutex() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };
}

export function openContext(pg: string, http: string, prefix: string, linesPerRequest: number, owner: string): QdbContext {
  const chunkLines = Math.min(linesPerRequest, ILP_CHUNK_LINES);
  const sql: Sql = postgres(pg, {
    max: 1,
    fetch_types: false,
    onnotice: () => {},
    types: {
      // QuestDB's TIMESTAMP has no zone and means UTC; postgres.js would read it as local time.
      timestamp: { to: 1114, from: [1114], serialize: (d: Date) => d.toISOString(), parse: (s: string) => new Date(s.endsWith("Z") ? s : `${s}Z`) },
    },
  });
  return {
    sql,
    T: Object.fromEntries(TABLE_NAMES.map((n) => [n, `${prefix}${n}`])) as Record<TableName, string>,
    owner,
    exclusive: mutex(),
    writeUrl: `${http}/write?precision=ms`,
    execUrl: `${http}/exec`,
    linesPerRequest,
    chunkLines,
    barsDirty: true,
    progressDirty: true,
    checkpointsWritten: new Map(),
    counters: new Map(),
    listeners: new Set(),
    journal: null,
    writerUntil: 0,
    writerIdle: null,
    pending: nothingPending(chunkLines),
    open: null,
    writing: Promise.resolve(),
    refused: new Map(),
    timer: null,
    newest: null,
    rowKey: null,
    unsettled: new Map(),
  };
}

/** Wait until a WAL table's WAL is applied, so what was written can be read back. */
export async function walApplied(cx: QdbContext, table: string, timeoutMs = 60_000) {
  const { sql } = cx;
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

export async function nextId(cx: QdbContext, table: "runs" | "quarantine"): Promise<number> {
  const [r] = await cx.sql`SELECT max(id) AS m FROM ${cx.sql(cx.T[table])}`;
  return Number(r?.m ?? 0) + 1;
}

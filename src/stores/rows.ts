// Row mappings every store shares: a database row (snake_case columns, as SQLite, Postgres and
// QuestDB's PG wire return them) to the store contract's records. The stores differ only in how
// values arrive: times as epoch ms (SQLite) or Dates (Postgres, QuestDB), 64-bit integers as
// numbers or strings, JSON as text (SQLite, QuestDB) or already parsed (Postgres jsonb): so each
// mapping takes its `json` reader, and times and counts are read whatever form they come in.
import type { Bar, Interval } from "../domain/bar.ts";
import type { Checkpoint, QuarantineRecord, RunRecord, RunStream, SeriesInfo } from "./types.ts";

/** Reads a JSON column that is not null. */
export type JsonReader = (value: any) => any;
/** JSON kept as text (SQLite, QuestDB). */
export const jsonText: JsonReader = (value) => JSON.parse(value);
/** JSON the driver has parsed already (Postgres jsonb). */
export const jsonValue: JsonReader = (value) => value;

/** Epoch ms of a time column: a number as it is, a Date or timestamp text read; null stays null. */
export const ms = (d: Date | string | number | null | undefined): number | null => (d == null ? null : typeof d === "number" ? d : new Date(d).getTime());
/** A Date of epoch ms, for a time parameter; null stays null. */
export const date = (t: number | null | undefined): Date | null => (t == null ? null : new Date(t));
/** A count column (a number, or a 64-bit integer as text); null reads as 0. */
const count = (x: unknown): number => (x == null ? 0 : Number(x));

export function rowToRun(r: any, json: JsonReader = jsonText): RunRecord {
  return {
    id: Number(r.id),
    kind: r.kind,
    source: r.source,
    job: r.job ?? undefined,
    params: r.params == null ? undefined : json(r.params),
    startedAt: ms(r.started_at)!,
    finishedAt: ms(r.finished_at),
    durationMs: r.duration_ms == null ? null : Number(r.duration_ms),
    outcome: r.outcome,
    read: count(r.read),
    stored: count(r.inserted) + count(r.updated),
    inserted: count(r.inserted),
    updated: count(r.updated),
    unchanged: count(r.unchanged),
    quarantined: count(r.quarantined),
    fromTs: ms(r.from_ts),
    toTs: ms(r.to_ts),
    quality: r.quality == null ? null : json(r.quality),
    error: r.error ?? null,
    failures: r.failures == null ? {} : json(r.failures),
  };
}

export function rowToQuarantine(r: any, json: JsonReader = jsonText): QuarantineRecord {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    source: r.source,
    locator: r.locator,
    rule: r.rule,
    reason: r.reason,
    symbol: r.symbol ?? null,
    ts: ms(r.ts),
    raw: json(r.raw),
    createdAt: ms(r.created_at)!,
  };
}

/** A checkpoint row: stream, cursor, last_ts, last_key. */
export function rowToCheckpoint(r: any, json: JsonReader = jsonText): Checkpoint {
  return { stream: r.stream, cursor: json(r.cursor), lastTs: ms(r.last_ts), lastKey: r.last_key ?? null };
}

export function rowToRunStream(r: any): RunStream {
  return { stream: r.stream, status: r.status, cause: r.cause ?? null, error: r.error ?? null, rows: Number(r.rows) };
}

/** A series row: source, symbol, interval, first_ts, last_ts, bars. */
export function rowToSeries(r: any): SeriesInfo {
  return { source: r.source, symbol: r.symbol, interval: r.interval, firstTs: ms(r.first_ts)!, lastTs: ms(r.last_ts)!, bars: Number(r.bars) };
}

/** A bar row; an absent optional value is null (or NaN, QuestDB's null double). */
export function rowToBar(r: any): Bar {
  const bar: Bar = {
    source: r.source,
    symbol: r.symbol,
    interval: r.interval as Interval,
    ts: typeof r.ts === "number" ? r.ts : ms(r.ts)!,
    open: r.open,
    high: r.high,
    low: r.low,
    close: r.close,
    volume: r.volume,
  };
  if (r.adj_close != null && !Number.isNaN(r.adj_close)) bar.adjClose = r.adj_close;
  if (r.turnover != null && !Number.isNaN(r.turnover)) bar.turnover = r.turnover;
  if (r.trades != null) bar.trades = Number(r.trades);
  return bar;
}

// Events: a bar stored (inserted, or changed by a later delivery) or deleted is an event. Stores journal the
// bars each committed batch changed, in the batch's own transaction, under a batch number that
// grows in commit order; an event's id is that number and the bar's place in the batch, so ids
// are monotonic, survive restarts, and a client that has seen id N can be given everything after.
import type { Bar } from "../domain/bar.ts";

/** A bar inserted, changed, or deleted (the bar as it was; a table source's reconciliation). */
export type BarOp = "insert" | "update" | "delete";
export type BarEvent = { id: number; type: "bar"; op: BarOp; bar: Bar };

/** An op as the journal keeps it, one byte, and back. */
export const opByte = (op: BarOp) => (op === "update" ? 1 : op === "delete" ? 2 : 0);
export const opOf = (byte: number | undefined): BarOp => (byte === 1 ? "update" : byte === 2 ? "delete" : "insert");

/** Events per batch at most (the ingest batch size is capped well below). */
export const BATCH_EVENTS = 2 ** 20;

export const eventId = (batch: number, index: number) => batch * BATCH_EVENTS + index;
export const eventBatch = (id: number) => Math.floor(id / BATCH_EVENTS);
export const eventIndex = (id: number) => id % BATCH_EVENTS;

/**
 * A batch's changed bars, compact: the distinct (source, symbol, interval) once as JSON, and per
 * bar one op byte and ten float64s (series index, ts, open, high, low, close, volume, adjClose,
 * turnover, trades; NaN for an absent value). Encoding 5,000 bars costs a fraction of a
 * millisecond, so journaling adds little to a load.
 */
export type JournalEntry = { series: string; ops: Uint8Array; data: Uint8Array; n: number };

const FIELDS = 10;

export function encodeJournal(bars: Bar[], ops: BarOp[]): JournalEntry {
  const keys = new Map<string, number>();
  const series: [string, string, string][] = [];
  const data = new Float64Array(bars.length * FIELDS);
  const opBytes = new Uint8Array(bars.length);
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i]!;
    const k = `${b.source}\u0000${b.symbol}\u0000${b.interval}`;
    let s = keys.get(k);
    if (s === undefined) {
      s = series.length;
      keys.set(k, s);
      series.push([b.source, b.symbol, b.interval]);
    }
    const o = i * FIELDS;
    data[o] = s;
    data[o + 1] = b.ts;
    data[o + 2] = b.open;
    data[o + 3] = b.high;
    data[o + 4] = b.low;
    data[o + 5] = b.close;
    data[o + 6] = b.volume;
    data[o + 7] = b.adjClose ?? NaN;
    data[o + 8] = b.turnover ?? NaN;
    data[o + 9] = b.trades ?? NaN;
    opBytes[i] = opByte(ops[i]!);
  }
  return { series: JSON.stringify(series), ops: opBytes, data: new Uint8Array(data.buffer), n: bars.length };
}

/** The events of one journaled batch, from `fromIndex` on. */
export function decodeJournal(batch: number, series: string, ops: Uint8Array, data: Uint8Array, fromIndex = 0): BarEvent[] {
  const s = JSON.parse(series) as [string, string, string][];
  // The bytes may sit at an offset that is not a multiple of 8: copy them to an aligned buffer.
  const f = new Float64Array(data.byteOffset % 8 === 0 ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : new Uint8Array(data).buffer);
  const out: BarEvent[] = [];
  for (let i = fromIndex; i < ops.length; i++) {
    const o = i * FIELDS;
    const [source, symbol, interval] = s[f[o]!]!;
    const bar: Bar = { source, symbol, interval: interval as Bar["interval"], ts: f[o + 1]!, open: f[o + 2]!, high: f[o + 3]!, low: f[o + 4]!, close: f[o + 5]!, volume: f[o + 6]! };
    if (!Number.isNaN(f[o + 7]!)) bar.adjClose = f[o + 7]!;
    if (!Number.isNaN(f[o + 8]!)) bar.turnover = f[o + 8]!;
    if (!Number.isNaN(f[o + 9]!)) bar.trades = f[o + 9]!;
    out.push({ id: eventId(batch, i), type: "bar", op: opOf(ops[i]), bar });
  }
  return out;
}

// What the Pocketbase sink writes: bars as records with an id derived from their natural key (so
// a retry, a resumed run or a repair never makes a second record for the same bar), the records
// as Pocketbase reads them back, and a refused record as a quarantine entry.
import type { Bar } from "../../domain/bar.ts";
import type { Rejection } from "../../domain/quality.ts";

/** Any record: its id and its fields. */
export type PbRecord = { id: string } & Record<string, unknown>;

/** A record as sent: Pocketbase stores an empty number as 0, so nulls are sent as 0. */
export type BarRecord = {
  id: string;
  source: string;
  symbol: string;
  interval: string;
  ts: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  adj_close: number;
  turnover: number;
  trades: number;
};

const ID_LEN = 15;
const ID_SPACE = 36n ** BigInt(ID_LEN);

/**
 * Pocketbase record ids are 15 characters of [a-z0-9]. This one is the first 80 bits of the
 * SHA-256 of the natural key, in base 36: the same bar always gets the same id, and two bars
 * collide with odds of about n²/2^78 (10⁻¹¹ for ten million bars).
 */
export function recordId(source: string, symbol: string, interval: string, ts: number): string {
  return keyId([source, symbol, interval, String(ts)]);
}

/** The record id of any natural key: its parts joined by NUL, hashed as for bars. */
export function keyId(parts: string[]): string {
  const h = new Bun.CryptoHasher("sha256").update(parts.join("\u0000")).digest();
  let n = 0n;
  for (let i = 0; i < 10; i++) n = (n << 8n) | BigInt(h[i]!);
  return (n % ID_SPACE).toString(36).padStart(ID_LEN, "0");
}

/** Pocketbase's own date format (what it returns), so sent and read-back values compare equal. */
export function pbDate(ts: number): string {
  return new Date(ts).toISOString().replace("T", " ");
}

export function barToRecord(b: Bar): BarRecord {
  return {
    id: recordId(b.source, b.symbol, b.interval, b.ts),
    source: b.source,
    symbol: b.symbol,
    interval: b.interval,
    ts: pbDate(b.ts),
    open: b.open,
    high: b.high,
    low: b.low,
    close: b.close,
    volume: b.volume,
    adj_close: b.adjClose ?? 0,
    turnover: b.turnover ?? 0,
    trades: b.trades ?? 0,
  };
}

/** The fields compared by verify, from a record read back from Pocketbase. */
export function recordFromServer(r: Record<string, unknown>): BarRecord {
  const num = (k: string) => (typeof r[k] === "number" ? (r[k] as number) : Number(r[k] ?? 0));
  return {
    id: String(r.id),
    source: String(r.source ?? ""),
    symbol: String(r.symbol ?? ""),
    interval: String(r.interval ?? ""),
    ts: String(r.ts ?? ""),
    open: num("open"),
    high: num("high"),
    low: num("low"),
    close: num("close"),
    volume: num("volume"),
    adj_close: num("adj_close"),
    turnover: num("turnover"),
    trades: num("trades"),
  };
}

/** A record Pocketbase refused (validation): it goes to quarantine; the batch's others go in. */
export type SinkRejection = { record: PbRecord; collection: string; status: number; message: string; fields: Record<string, { code: string; message: string }> };

/** A refused record as a quarantine entry: rule "sink", Pocketbase's error as the reason. */
export function rejectionOf(sinkName: string, r: SinkRejection): Rejection {
  const rec = r.record;
  const ts = typeof rec.ts === "string" ? Date.parse(rec.ts.replace(" ", "T")) : NaN;
  return {
    locator: `${sinkName}/${r.collection}/${rec.id}`,
    rule: "sink",
    reason: describeRejection(r),
    raw: { ...rec, pocketbase: { collection: r.collection, status: r.status, message: r.message, fields: r.fields } },
    ...(typeof rec.symbol === "string" ? { symbol: rec.symbol } : {}),
    ...(Number.isFinite(ts) ? { ts } : {}),
  };
}

/** One line a person can read: "volume: Decimal numbers are not allowed." */
export function describeRejection(r: SinkRejection): string {
  const f = Object.entries(r.fields).map(([k, e]) => `${k}: ${e.message}`);
  return `Pocketbase ${r.status}: ${r.message}${f.length ? ` (${f.join("; ")})` : ""}`;
}

// How a sink's config shapes its bar records beyond the fixed fields: a table source's extra
// columns as number fields (`fields`), and the symbol written bare (`symbolField = "bare"`:
// PKN instead of PKN.WA) for apps keyed that way. The record id always comes from the full
// symbol; two full symbols with one bare ticker are refused (bareClashes), never merged.
import { barKey, type Bar } from "../../domain/bar.ts";
import { marketOf } from "../../domain/symbols.ts";
import type { PocketbaseSinkConfig } from "./config.ts";
import type { BarRecord } from "./records.ts";

export type RecordShape = {
  bare: boolean;
  /** [record field, extra column] pairs. */
  extras: [string, string][];
};

export const shapeOf = (cfg: Pick<PocketbaseSinkConfig, "fields" | "symbolField">): RecordShape => ({ bare: cfg.symbolField === "bare", extras: Object.entries(cfg.fields ?? {}) });

/** True when records are the plain bar records (no extras, full symbols): nothing to add. */
export const plainShape = (s: RecordShape) => !s.bare && s.extras.length === 0;

/** The ticker without its market suffix (PKN.WA → PKN, BTC-USDT.CRYPTO → BTC-USDT); a symbol without a known suffix is kept. */
export function bareSymbol(symbol: string): string {
  return marketOf(symbol) === undefined ? symbol : symbol.slice(0, symbol.lastIndexOf("."));
}

/** How a record names a store symbol under this shape. */
export const recordSymbol = (symbol: string, shape: RecordShape) => (shape.bare ? bareSymbol(symbol) : symbol);

/** Bare tickers that two or more symbols share ("PKN: PKN.US, PKN.WA"); empty when none. */
export function bareClashes(symbols: Iterable<string>): string[] {
  const by = new Map<string, Set<string>>();
  for (const s of symbols) {
    const b = bareSymbol(s);
    let set = by.get(b);
    if (!set) by.set(b, (set = new Set()));
    set.add(s);
  }
  return [...by].filter(([, set]) => set.size > 1).map(([b, set]) => `${b}: ${[...set].sort().join(", ")}`);
}

/** The one line a sync or verify fails with when bare tickers clash. */
export const clashError = (sink: string, clashes: string[]) =>
  `sink ${sink}: symbolField = "bare" would give two markets' symbols one record symbol (${clashes.slice(0, 5).join("; ")}${clashes.length > 5 ? `; and ${clashes.length - 5} more` : ""}); limit the sink's sources or use symbolField = "full"`;

/** A bar record shaped: bare symbol, and each mapped extra (0 when the bar has none: Pocketbase's empty number). */
export function shapeRecord(rec: BarRecord, bar: Bar, shape: RecordShape, extras: Map<string, Record<string, number>> | null): BarRecord {
  if (shape.bare) rec.symbol = bareSymbol(rec.symbol);
  if (shape.extras.length) {
    const x = extras?.get(barKey(bar.source, bar.symbol, bar.interval, bar.ts));
    const out = rec as BarRecord & Record<string, number>;
    for (const [field, col] of shape.extras) out[field] = x?.[col] ?? 0;
  }
  return rec;
}

/** The mapped extras of a record read back (numbers, 0 for empty), onto the normalised record. */
export function extrasFromServer(rec: BarRecord, r: Record<string, unknown>, shape: RecordShape): BarRecord {
  const out = rec as BarRecord & Record<string, number>;
  for (const [field] of shape.extras) out[field] = typeof r[field] === "number" ? (r[field] as number) : Number(r[field] ?? 0) || 0;
  return rec;
}

/** The extras' part of a record's content hash (empty for a plain shape). */
export function extrasText(rec: BarRecord, shape: RecordShape): string {
  let s = "";
  const r = rec as BarRecord & Record<string, unknown>;
  for (const [field] of shape.extras) s += `|${field}=${r[field]}`;
  return s;
}

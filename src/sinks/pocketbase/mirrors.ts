// The collections the replaced WIG80 app read beside the bars: `market_updates` (one record per
// symbol: latest price, change against the previous close, volume, time, market status; upserted
// after each sync) and `alerts` (one record per alert rule, upserted as it fires and resolves).
// Records are keyed by symbol (or rule name), so a second cycle updates, never duplicates; a
// record identical to what this process last wrote is not sent again.
import { keyId, pbDate, type PbRecord } from "./records.ts";
import type { CollectionSpec, FieldSpec } from "./collections.ts";
import { bareSymbol } from "./shape.ts";
import { priceChange } from "../../domain/bar.ts";

/** Per symbol, what the app's `market_updates` showed. */
export type MarketUpdate = {
  symbol: string;
  market: string | null;
  price: number;
  previousClose: number | null;
  volume: number;
  /** The latest bar's start, epoch ms. */
  ts: number;
  /** PRE_MARKET, OPEN, AFTER_HOURS, CLOSED, WEEKEND or HOLIDAY (the streaming service's words). */
  marketStatus: string;
};

const MARKET_UPDATE_FIELDS: FieldSpec[] = [
  { name: "symbol", type: "text", required: true, max: 64 },
  { name: "full_symbol", type: "text", max: 64 },
  { name: "market", type: "text", max: 16 },
  { name: "price", type: "number" },
  { name: "previous_close", type: "number" },
  { name: "change", type: "number" },
  { name: "change_percent", type: "number" },
  { name: "volume", type: "number" },
  { name: "time", type: "date" },
  { name: "market_status", type: "text", max: 16 },
];

const ALERT_FIELDS: FieldSpec[] = [
  { name: "name", type: "text", required: true, max: 200 },
  { name: "kind", type: "text", max: 64 },
  { name: "severity", type: "text", max: 32 },
  { name: "status", type: "text", max: 16 },
  { name: "message", type: "text" },
  { name: "value", type: "number" },
  { name: "since", type: "date" },
  { name: "resolved_at", type: "date" },
  { name: "acknowledged", type: "bool" },
  { name: "acknowledged_by", type: "text", max: 200 },
  { name: "changed_at", type: "date" },
];

export const marketUpdatesCollection = (name: string): CollectionSpec => ({ name, fields: MARKET_UPDATE_FIELDS, key: ["symbol"] });
export const alertsCollection = (name: string): CollectionSpec => ({ name, fields: ALERT_FIELDS, key: ["name"] });

/** A market update as its record: keyed by the record symbol (bare or full, as the sink writes symbols). */
export function marketUpdateRecord(u: MarketUpdate, bare: boolean): PbRecord {
  const symbol = bare ? bareSymbol(u.symbol) : u.symbol;
  const moved = priceChange(u.price, u.previousClose);
  return {
    id: keyId(["market_update", symbol]),
    symbol,
    full_symbol: u.symbol,
    market: u.market ?? "",
    price: u.price,
    previous_close: u.previousClose ?? 0,
    change: moved?.change ?? 0,
    change_percent: moved?.changePercent ?? 0,
    volume: u.volume,
    time: pbDate(u.ts),
    market_status: u.marketStatus,
  };
}

/** An alert's state as the alerts notifier gives it (structurally the monitor's AlertState). */
export type AlertSnapshot = {
  name: string;
  kind: string;
  severity: string;
  status: string;
  message: string;
  value: number | null;
  since: number | null;
  acknowledged: boolean;
  acknowledgedBy: string | null;
};

export function alertRecord(a: AlertSnapshot, event: "firing" | "resolved" | "reminder", now: number): PbRecord {
  const resolved = event === "resolved";
  return {
    id: keyId(["alert", a.name]),
    name: a.name,
    kind: a.kind,
    severity: a.severity,
    status: resolved ? "resolved" : "firing",
    message: a.message,
    value: a.value ?? 0,
    since: a.since === null ? "" : pbDate(a.since),
    resolved_at: resolved ? pbDate(now) : "",
    acknowledged: a.acknowledged,
    acknowledged_by: a.acknowledgedBy ?? "",
    changed_at: pbDate(now),
  };
}

/** The record content last written per id (this process), so an unchanged snapshot is not re-sent. */
export function changedOnly(last: Map<string, string>, records: PbRecord[]): PbRecord[] {
  const out: PbRecord[] = [];
  for (const r of records) {
    const text = JSON.stringify(r);
    if (last.get(r.id) !== text) out.push(r);
  }
  return out;
}

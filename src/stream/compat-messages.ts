// The compatibility protocol's messages (docs/stream.md, "Compatibility protocol"): what its
// clients send (valibot) and what they get, built here so the engine (compat.ts) only routes them.
// Field names are the old service's (snake_case, `type` on every message); keep them stable.
import * as v from "valibot";
import type { Market } from "../domain/markets/index.ts";
import { priceChange, type Bar } from "../domain/bar.ts";
import { clip, type Outgoing } from "./protocol.ts";
import type { MarketState, ProviderState } from "./status.ts";

export type CompatMarketStatus = "PRE_MARKET" | "OPEN" | "AFTER_HOURS" | "CLOSED" | "WEEKEND" | "HOLIDAY";

/** ticksync's phase as the old service named it; a lunch break is CLOSED (trading stops). */
export function compatMarketStatus(s: MarketState): CompatMarketStatus {
  switch (s.phase) {
    case "pre":
      return "PRE_MARKET";
    case "open":
      return "OPEN";
    case "post":
      return "AFTER_HOURS";
    case "break":
      return "CLOSED";
    default:
      return s.holiday !== null ? "HOLIDAY" : s.weekend ? "WEEKEND" : "CLOSED";
  }
}

const Symbols = v.pipe(
  v.array(v.pipe(v.string("expected symbols as strings"), v.maxLength(64, "expected symbols of at most 64 characters")), 'expected symbols: a list such as ["PKN"]'),
  v.minLength(1, "expected at least one symbol"),
);
/** Extra fields are ignored (old clients may send e.g. a client name). */
export const CompatClientMessage = v.variant(
  "type",
  [
    v.object({ type: v.literal("subscribe"), symbols: Symbols }),
    v.object({ type: v.literal("unsubscribe"), symbols: Symbols }),
    v.object({ type: v.literal("status") }),
    v.object({ type: v.literal("ping") }),
  ],
  "expected type: subscribe, unsubscribe, status or ping",
);

export const iso = (t: number) => new Date(t).toISOString();

/** A message of the protocol: a JSON object with `type`, and `timestamp` (server time, ISO). */
export const compatMessage = (body: Record<string, unknown>, now: number): Outgoing => ({ type: "compat", json: JSON.stringify({ ...body, timestamp: iso(now) }) });

export const compatError = (message: string, now: number, extra: Record<string, unknown> = {}) => compatMessage({ type: "error", message: clip(message, 400), ...extra }, now);

/** One symbol's entry of `stock_updates`: its bar as a quote, in the spelling the client used. */
export function stockUpdate(bar: Bar, spelling: string, previousClose: number | null, marketStatus: CompatMarketStatus | null) {
  const moved = priceChange(bar.close, previousClose);
  return {
    symbol: spelling,
    price: bar.close,
    change: moved?.change ?? null,
    change_percent: moved?.changePercent ?? null,
    volume: bar.volume,
    time: iso(bar.ts),
    market_status: marketStatus,
    previous_close: previousClose,
    open: bar.open,
    high: bar.high,
    low: bar.low,
    interval: bar.interval,
  };
}
export type StockUpdate = ReturnType<typeof stockUpdate>;

export function marketStatusBody(s: MarketState, previous: CompatMarketStatus | null) {
  return { type: "market_status", market: s.market, status: compatMarketStatus(s), previous_status: previous, phase: s.phase, date: s.date, holiday: s.holiday };
}

export function providerStatusBody(p: ProviderState) {
  return {
    type: "provider_status",
    provider: p.source,
    status: p.status === "ok" ? "healthy" : p.status === "failing" ? "error" : "interrupted",
    last_run: iso(p.at),
    run_id: p.runId,
    consecutive_failures: p.failures,
    error: p.error === null ? null : clip(p.error, 400),
  };
}

export function greetingBody(clientId: string, defaultMarket: Market, status: CompatMarketStatus, now: number) {
  return {
    type: "connection",
    status: "connected",
    client_id: clientId,
    message: 'connected to ticksync (compatibility protocol): send {"type":"subscribe","symbols":[...]}',
    market_status: status,
    default_market: defaultMarket,
    server_time: iso(now),
  };
}

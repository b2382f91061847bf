// The compatibility protocol's messages (docs/stream.md, "Compatibility protocol"): what its
// clients send (valibot) and what they get, built here so the engine (compat.ts) only routes them.
// Field names are the old service's (snake_case, `type` on every message); keep them stable.
import * as v from "valibot";
import type { Market } from "../domain/markets/index.ts";
import { IntervalSchema, priceChange, type Bar } from "../domain/bar.ts";
import { clip, MARKET_PHASES, type Outgoing } from "./protocol.ts";
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

// What the server sends, as valibot schemas: compatMessage's body is typed by them, and the AsyncAPI
// document (src/http/asyncapi.ts) is generated from them. Every message also carries `timestamp`.
const d = v.description;
const STATUS_NAMES = ["PRE_MARKET", "OPEN", "AFTER_HOURS", "CLOSED", "WEEKEND", "HOLIDAY"] as const satisfies readonly CompatMarketStatus[];
const MarketStatusName = v.pipe(v.picklist(STATUS_NAMES), d("the market's status, named as the replaced service named it"));
const Timestamp = v.pipe(v.string(), d("server time, ISO 8601 UTC"));
const message = <E extends v.ObjectEntries>(entries: E, doc: string) => v.pipe(v.strictObject({ ...entries, timestamp: Timestamp }), d(doc));
const Spellings = v.pipe(v.array(v.string()), d("symbols as the client spelled them (trimmed)"));
export const StockUpdateSchema = v.strictObject({
  symbol: v.pipe(v.string(), d("as the client spelled it")),
  price: v.pipe(v.number(), d("the bar's close")),
  change: v.pipe(v.nullable(v.number()), d("price − previous_close, 6 decimals; null without a previous close")),
  change_percent: v.pipe(v.nullable(v.number()), d("change / previous_close × 100, 4 decimals")),
  volume: v.number(),
  time: v.pipe(v.string(), d("the bar's start, ISO 8601 UTC")),
  market_status: v.nullable(MarketStatusName),
  previous_close: v.pipe(v.nullable(v.number()), d("the close of the previous session")),
  open: v.number(),
  high: v.number(),
  low: v.number(),
  interval: IntervalSchema,
});
const ProviderStatusEntries = {
  type: v.literal("provider_status"),
  provider: v.string(),
  status: v.picklist(["healthy", "error", "interrupted"]),
  last_run: v.pipe(v.string(), d("when the source's latest run finished, ISO 8601 UTC")),
  run_id: v.number(),
  consecutive_failures: v.number(),
  error: v.nullable(v.pipe(v.string(), v.maxLength(420))),
};
export const CompatServerMessages = {
  connection: message(
    { type: v.literal("connection"), status: v.literal("connected"), client_id: v.pipe(v.string(), d("a UUID")), message: v.string(), market_status: MarketStatusName, default_market: v.string(), server_time: Timestamp },
    "Sent on connect.",
  ),
  subscribed: message({ type: v.literal("subscribed"), symbols: Spellings, invalid: v.array(v.strictObject({ symbol: v.string(), reason: v.string() })), subscribed: Spellings }, "A subscribe's answer: accepted, refused, and all held."),
  unsubscribed: message({ type: v.literal("unsubscribed"), symbols: Spellings, subscribed: Spellings }, "An unsubscribe's answer."),
  status: message(
    {
      type: v.literal("status"),
      client_id: v.string(),
      subscribed_symbols: Spellings,
      market_status: MarketStatusName,
      markets: v.pipe(v.record(v.string(), MarketStatusName), d("each market of the client's symbols and the default one")),
      providers: v.array(v.strictObject(ProviderStatusEntries)),
      connected_clients: v.number(),
      last_event_id: v.number(),
      server_time: Timestamp,
    },
    "A status request's answer.",
  ),
  pong: message({ type: v.literal("pong") }, "A ping's answer."),
  error: message(
    { type: v.literal("error"), message: v.pipe(v.string(), v.maxLength(420)), received: v.optional(v.pipe(v.string(), d("the type sent, clipped"))), limit: v.optional(v.number()) },
    "A bad message or a refused request; the connection stays.",
  ),
  stock_updates: message(
    { type: v.literal("stock_updates"), data: v.array(StockUpdateSchema), count: v.number(), snapshot: v.optional(v.pipe(v.literal(true), d("the latest stored bars, after a subscribe"))) },
    "The latest bar of each of the client's symbols a batch of stored bars changed.",
  ),
  market_status: message(
    { type: v.literal("market_status"), market: v.string(), status: MarketStatusName, previous_status: v.nullable(MarketStatusName), phase: v.picklist(MARKET_PHASES), date: v.string(), holiday: v.nullable(v.string()) },
    "A market's status changed (the default market's to every client, others' to the clients holding one of its symbols).",
  ),
  provider_status: message(ProviderStatusEntries, "A source's state changed, or its run failed again."),
};
type CompatBody = { [K in keyof typeof CompatServerMessages]: Body<K> }[keyof typeof CompatServerMessages];

/** A message of the protocol: a JSON object with `type`, and `timestamp` (server time, ISO). */
export const compatMessage = (body: CompatBody, now: number): Outgoing => ({ type: "compat", json: JSON.stringify({ ...body, timestamp: iso(now) }) });

export const compatError = (message: string, now: number, extra: { received?: string; limit?: number } = {}) => compatMessage({ type: "error", message: clip(message, 400), ...extra }, now);

/** One symbol's entry of `stock_updates`: its bar as a quote, in the spelling the client used. */
export function stockUpdate(bar: Bar, spelling: string, previousClose: number | null, marketStatus: CompatMarketStatus | null): v.InferOutput<typeof StockUpdateSchema> {
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

/** A server message's body before compatMessage adds `timestamp`. */
type Body<K extends keyof typeof CompatServerMessages> = Omit<v.InferOutput<(typeof CompatServerMessages)[K]>, "timestamp">;

export function marketStatusBody(s: MarketState, previous: CompatMarketStatus | null): Body<"market_status"> {
  return { type: "market_status", market: s.market, status: compatMarketStatus(s), previous_status: previous, phase: s.phase, date: s.date, holiday: s.holiday };
}

export function providerStatusBody(p: ProviderState): Body<"provider_status"> {
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

export function greetingBody(clientId: string, defaultMarket: Market, status: CompatMarketStatus, now: number): Body<"connection"> {
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

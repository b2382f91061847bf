// The stream's wire protocol, shared by the WebSocket endpoint and the SSE feed.
//
// WebSocket: GET /api/ws[?symbols=PKN.WA,CDR.WA|*][&since=<id>][&token=<token>]. Every frame is one
// JSON object. Symbols in the query subscribe at once (with `since`: replayed from there).
//
//   client → server
//     {"op":"subscribe","symbols":["PKN.WA","cdr.pl"] | ["*"],"since"?:<id>}
//         Adds symbols (any spelling normaliseSymbol accepts; "*" is every symbol). Without `since`
//         the server first sends a `snapshot` of the latest stored bar of each series of each new
//         symbol, then live `bar`s. With `since` it replays every stored event after that id for
//         these symbols instead, then goes live: no gap, no duplicate.
//     {"op":"unsubscribe","symbols":[...]}      stops those symbols ("*" stops the wildcard)
//     {"op":"watch","events":["market_status","provider_status"]}   the current state of each market /
//         source (`previous` null), then each change; {"op":"unwatch","events":[...]} stops them
//     {"op":"ping"}                              → {"type":"pong","id":<last event id>}
//
//   server → client
//     {"type":"snapshot","id":<id>,"bar":{...}}   latest stored bar; the `bar`s that follow have ids above `id`
//     {"type":"bar","id":<id>,"op":"insert"|"update"|"delete","bar":{...}}
//         a stored bar; ids grow strictly (per connection, except a replay requested by a later
//         subscribe, which starts from its own `since`)
//     {"type":"status","status":"subscribed"|"unsubscribed"|"replay"|"replayed"|"replay_unavailable"|
//                       "conflating"|"caught_up","message":..., ...}
//         replay progress, conflation notices, and "replay unavailable from id X: journal starts at Y"
//     {"type":"market_status","market":"WSE","phase":"open","previous":"pre","date":...,"holiday":null,"weekend":false}
//     {"type":"provider_status","source":"stooq","status":"ok"|"failing"|"interrupted","previous":...,
//                              "runId":...,"at":ISO,"failures":<failed runs in a row>,"error":...}
//     {"type":"pong","id":<last event id>}
//     {"type":"error","message":...,"symbols"?:[bad spellings]}   a bad message; the connection stays
//
// Slow clients: a client's socket may hold `stream.bufferBytes`; beyond that messages wait in its
// outbox, which holds `stream.bufferMessages`. When that is full the `stream.slowClient` policy
// applies: "conflate" keeps only the latest pending bar per series (source, symbol, interval) and
// says so with a `conflating` status — the bar ids the client then sees skip the conflated ones; a
// `caught_up` status follows when the outbox is empty again — or "drop" closes the connection with
// code 4008. Heartbeats: the server sends a WebSocket ping every `stream.heartbeatSeconds`; a client
// that sends nothing (no pong, no message) for two heartbeats is closed with code 4002.
//
// Limits (stream config): a message above `maxMessageBytes` closes the socket with 1009 (Bun's
// own check); more than `messagesPerSecond` messages a second (bursts of twice that) close it with
// 4029; a subscribe or unsubscribe names at most 1000 symbols and a client holds at most
// `maxSymbols` (else an `error` reply, nothing changed); at most 8 subscribes/unsubscribes wait
// their turn (else an `error` reply); the outbox holds at most `outboxBytes` whatever the message
// type: beyond that (after conflation, where it applies) the client is closed with 4008. Errors
// quote client input clipped to a few dozen characters.
//
// SSE: GET /api/stream?symbols=PKN.WA,CDR.WA|*[&since=<id>][&token=<token>], or the `Last-Event-ID`
// header on reconnect (it wins over `since`). Each message is `event: <type>` with the same JSON as
// `data:`; `bar` and `snapshot` events carry `id:`, so a browser's EventSource resumes by itself.
// A comment line (`: heartbeat`) is sent every heartbeat. `events=market_status,provider_status`
// watches those (symbols may then be left out).
import * as v from "valibot";
import { barJson, BarJsonSchema } from "../domain/bar.ts";
import type { BarEvent } from "../stores/events.ts";
import type { MarketPhase } from "../domain/calendar.ts";
import type { MarketState, ProviderState } from "./status.ts";

export const MARKET_PHASES = ["closed", "pre", "open", "break", "post"] as const satisfies readonly MarketPhase[];

/** Close codes the server uses. */
export const CLOSE = {
  /** The client sent nothing for two heartbeats. */
  heartbeat: 4002,
  /** The client read too slowly and the policy is "drop". */
  slow: 4008,
  /** The server is shutting down. */
  goingAway: 1001,
  /** A message above `stream.maxMessageBytes` (Bun closes the socket itself). */
  tooBig: 1009,
  /** More than `stream.messagesPerSecond` messages a second (bursts of twice that). */
  flood: 4029,
} as const;

/** Symbols one subscribe or unsubscribe may name (the per-client cap is `stream.maxSymbols`). */
export const MAX_SYMBOLS_PER_MESSAGE = 1000;

/** A piece of client input quoted in a reply: short, so an error never echoes a large message. */
export function clip(s: string, max = 40): string {
  return s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s;
}

const Symbols = v.pipe(
  v.array(v.pipe(v.string("expected symbols as strings"), v.maxLength(64, "expected symbols of at most 64 characters")), "expected symbols: a list such as [\"PKN.WA\"] or [\"*\"]"),
  v.minLength(1, "expected at least one symbol"),
  v.maxLength(MAX_SYMBOLS_PER_MESSAGE, `at most ${MAX_SYMBOLS_PER_MESSAGE} symbols per message`),
);
const EventIdSchema = v.pipe(v.number("expected since: an event id"), v.integer("expected since: a whole event id"), v.minValue(0, "since must not be negative"));

/** The status events a client may watch (src/stream/status.ts). */
export const STATUS_EVENTS = ["market_status", "provider_status"] as const;
export type StatusEventType = (typeof STATUS_EVENTS)[number];
const StatusEvents = v.pipe(
  v.array(v.picklist(STATUS_EVENTS, `expected events among ${STATUS_EVENTS.join(", ")}`), "expected events: a list such as [\"market_status\",\"provider_status\"]"),
  v.minLength(1, "expected at least one event type"),
  v.maxLength(STATUS_EVENTS.length * 2, "too many event types"),
);

export const ClientMessageSchema = v.variant(
  "op",
  [
    v.strictObject({ op: v.literal("subscribe"), symbols: Symbols, since: v.optional(EventIdSchema) }),
    v.strictObject({ op: v.literal("unsubscribe"), symbols: Symbols }),
    v.strictObject({ op: v.literal("watch"), events: StatusEvents }),
    v.strictObject({ op: v.literal("unwatch"), events: StatusEvents }),
    v.strictObject({ op: v.literal("ping") }),
  ],
  "expected op: subscribe, unsubscribe, watch, unwatch or ping",
);
export type ClientMessage = v.InferOutput<typeof ClientMessageSchema>;

// Server → client messages, as valibot schemas: the builders below are typed by them, and the
// AsyncAPI document (GET /asyncapi.json, src/http/asyncapi.ts) is generated from them. Strict
// objects, so a field added here or in a builder without the other fails the type-check.
const d = v.description;
const EventId = v.pipe(v.number(), v.integer(), v.minValue(0));
const Iso = (what: string) => v.pipe(v.string(), d(`${what}, ISO 8601 UTC`));
const SymbolList = v.pipe(v.array(v.string()), d("symbols, normalised (PKN.WA)"));
const num = (what: string) => v.optional(v.pipe(v.number(), d(what)));

/** A bar as the stream writes it (barJson's shape). */
export const WireBarSchema = BarJsonSchema;
export const BarMessageSchema = v.pipe(
  v.strictObject({ type: v.literal("bar"), id: v.pipe(EventId, d("event id, strictly increasing")), op: v.picklist(["insert", "update", "delete"]), bar: WireBarSchema }),
  d("A stored bar (delete: one removed by a table source's reconciliation)."),
);
export const SnapshotMessageSchema = v.pipe(
  v.strictObject({ type: v.literal("snapshot"), id: v.pipe(EventId, d("the bars that follow have ids above it")), bar: WireBarSchema }),
  d("The latest stored bar of a series, on subscribe without `since`."),
);
export const ReplayBarsMessageSchema = v.pipe(
  v.union([v.strictObject({ type: v.literal("replay"), bar: WireBarSchema }), v.strictObject({ type: v.literal("replay"), bars: v.pipe(v.array(WireBarSchema), v.minLength(1), v.maxLength(1000)) })]),
  d("Stored bars of a `replay` range: one (`bar`), or up to `batch` (`bars`) when batch is above 1."),
);
const status = <S extends string, E extends v.ObjectEntries>(name: S, extra: E, doc: string) =>
  v.pipe(v.strictObject({ type: v.literal("status"), status: v.literal(name), message: v.string(), ...extra }), d(doc));
const symbolsExtra = { symbols: SymbolList, all: v.optional(v.pipe(v.literal(true), d("the wildcard (*)"))) };
export const StatusMessageSchema = v.variant("status", [
  status("subscribed", { ...symbolsExtra, lastId: v.pipe(EventId, d("the bus's last event id then")) }, "A subscribe took effect."),
  status("unsubscribed", symbolsExtra, "An unsubscribe took effect."),
  status("watching", { events: v.array(v.picklist(STATUS_EVENTS)) }, "A watch took effect."),
  status("unwatched", { events: v.array(v.picklist(STATUS_EVENTS)) }, "An unwatch took effect."),
  status("replay", { since: EventId }, "Replaying the journal's events after `since`."),
  status("replayed", { events: v.pipe(v.number(), d("events replayed")), last: EventId }, "The journal replay ended; live from here."),
  status("replay_unavailable", { since: EventId, first: v.optional(EventId), last: v.optional(EventId) }, "The journal cannot replay from `since` (pruned, ahead of it, or no journal)."),
  status("replaying", { from: Iso("range start"), to: Iso("range end"), speed: v.union([v.literal("max"), v.number()]), lastId: EventId }, "A `replay` range starts."),
  status("replay_done", { bars: v.number(), cancelled: v.boolean(), truncated: v.optional(v.literal(true)), next: v.optional(v.pipe(v.string(), d("cursor to continue past maxRows"))) }, "A `replay` range ended; live from here."),
  status("conflating", { limit: num("the outbox's message bound") }, "The client reads too slowly: only the latest pending bar per series is kept."),
  status("caught_up", { conflated: v.pipe(v.number(), d("bars left out while conflating")) }, "The outbox is empty again."),
]);
export const PongMessageSchema = v.pipe(v.strictObject({ type: v.literal("pong"), id: v.pipe(EventId, d("the last event id")) }), d("The answer to a ping."));
export const ErrorMessageSchema = v.pipe(
  v.strictObject({
    type: v.literal("error"),
    message: v.pipe(v.string(), v.maxLength(420), d("what was wrong; client input is quoted clipped")),
    op: v.optional(v.string()),
    limit: num("the limit the message went past"),
    symbols: v.optional(v.pipe(v.array(v.string()), d("bad spellings, clipped"))),
    received: v.optional(v.pipe(v.string(), d("the op sent, clipped"))),
  }),
  d("A bad message or a refused request; the connection stays."),
);
export const MarketStatusMessageSchema = v.pipe(
  v.strictObject({
    type: v.literal("market_status"),
    market: v.pipe(v.string(), d("market code (WSE)")),
    phase: v.picklist(MARKET_PHASES),
    previous: v.pipe(v.nullable(v.picklist(MARKET_PHASES)), d("null: the state as the client starts watching")),
    date: v.pipe(v.string(), d("the market's trade date, YYYY-MM-DD")),
    holiday: v.pipe(v.nullable(v.string()), d("the holiday it is closed for")),
    weekend: v.pipe(v.boolean(), d("closed on a non-trading day that is no holiday")),
  }),
  d("A watched market's phase changed (or its state when the watch starts)."),
);
const PROVIDER_STATES = ["ok", "failing", "interrupted"] as const;
export const ProviderStatusMessageSchema = v.pipe(
  v.strictObject({
    type: v.literal("provider_status"),
    source: v.string(),
    status: v.picklist(PROVIDER_STATES),
    previous: v.nullable(v.picklist(PROVIDER_STATES)),
    runId: v.number(),
    at: Iso("when the run finished"),
    failures: v.pipe(v.number(), d("failed runs in a row")),
    error: v.pipe(v.nullable(v.pipe(v.string(), v.maxLength(420))), d("the run's error line, clipped")),
  }),
  d("A watched source's state changed, or its run failed again (or its state when the watch starts)."),
);
type StatusBody = v.InferOutput<typeof StatusMessageSchema>;
type StatusExtra<S extends StatusBody["status"]> = Omit<Extract<StatusBody, { status: S }>, "type" | "status" | "message">;

/** A message on its way out: its JSON once, and its SSE frame made once when an SSE client needs it. */
export type Outgoing = {
  /** The SSE event name too. Compatibility-protocol messages carry theirs (src/stream/compat.ts). */
  type: "bar" | "snapshot" | "status" | "pong" | "error" | StatusEventType | "compat" | "replay";
  json: string;
  /** The event id (bar, snapshot). */
  id?: number;
  /** Symbol and series key of a bar: for the held-message filter and for conflation. */
  symbol?: string;
  series?: string;
  sse?: string;
};

export const seriesKey = (b: { source: string; symbol: string; interval: string }) => `${b.symbol}\u0000${b.interval}\u0000${b.source}`;

// Bodies are typed by their schemas (no check at run time: a bar's message is a hot path).
export function barMessage(e: BarEvent): Outgoing {
  const body: v.InferOutput<typeof BarMessageSchema> = { type: "bar", id: e.id, op: e.op, bar: barJson(e.bar) };
  return { type: "bar", id: e.id, symbol: e.bar.symbol, series: seriesKey(e.bar), json: JSON.stringify(body) };
}

export function snapshotMessage(id: number, bar: BarEvent["bar"]): Outgoing {
  const body: v.InferOutput<typeof SnapshotMessageSchema> = { type: "snapshot", id, bar: barJson(bar) };
  return { type: "snapshot", id, json: JSON.stringify(body) };
}

export function statusMessage<S extends StatusBody["status"]>(status: S, message: string, ...extra: {} extends StatusExtra<S> ? [StatusExtra<S>?] : [StatusExtra<S>]): Outgoing {
  return { type: "status", json: JSON.stringify({ type: "status", status, message, ...extra[0] }) };
}

export function errorMessage(message: string, extra: Omit<v.InferOutput<typeof ErrorMessageSchema>, "type" | "message"> = {}): Outgoing {
  return { type: "error", json: JSON.stringify({ type: "error", message: clip(message, 400), ...extra }) };
}

/** A market's phase changed (or its state as a client starts watching: `previous` null). */
export function marketStatusMessage(e: { state: MarketState; previous: MarketPhase | null }): Outgoing {
  const s = e.state;
  const body: v.InferOutput<typeof MarketStatusMessageSchema> = { type: "market_status", market: s.market, phase: s.phase, previous: e.previous, date: s.date, holiday: s.holiday, weekend: s.weekend };
  return { type: "market_status", json: JSON.stringify(body) };
}

/** A source's state changed, or its run failed again (or its state as a client starts watching: `previous` null). */
export function providerStatusMessage(e: { state: ProviderState; previous: ProviderState["status"] | null }): Outgoing {
  const s = e.state;
  const body: v.InferOutput<typeof ProviderStatusMessageSchema> = { type: "provider_status", source: s.source, status: s.status, previous: e.previous, runId: s.runId, at: new Date(s.at).toISOString(), failures: s.failures, error: s.error === null ? null : clip(s.error, 400) };
  return { type: "provider_status", json: JSON.stringify(body) };
}

export function pongMessage(id: number): Outgoing {
  const body: v.InferOutput<typeof PongMessageSchema> = { type: "pong", id };
  return { type: "pong", json: JSON.stringify(body) };
}

/** The SSE frame of a message: bars and snapshots carry `id:` so EventSource can resume. */
export function sseFrame(m: Outgoing): string {
  return (m.sse ??= `${m.id !== undefined ? `id: ${m.id}\n` : ""}event: ${m.type}\ndata: ${m.json}\n\n`);
}

export type ParsedSymbols = { symbols: Set<string>; all: boolean; bad: { symbol: string; reason: string }[] };

/** `*` or symbols in any spelling, normalised; the ones that do not normalise are listed. */
export function parseSymbols(raw: string[], normalise: (s: string) => { ok: true; symbol: string } | { ok: false; reason: string }): ParsedSymbols {
  const out: ParsedSymbols = { symbols: new Set(), all: false, bad: [] };
  for (const r of raw) {
    if (r.trim() === "*") {
      out.all = true;
      continue;
    }
    const n = normalise(r);
    if (n.ok) out.symbols.add(n.symbol);
    else out.bad.push({ symbol: r, reason: n.reason });
  }
  return out;
}

/** A valibot issue as one line: `symbols.0: expected ...`. */
export function issueText(issues: v.BaseIssue<unknown>[]): string {
  return issues
    .map((i) => {
      const path = (i.path ?? []).map((p) => clip(String(p.key))).join(".");
      return clip(path ? `${path}: ${i.message}` : i.message, 200);
    })
    .slice(0, 5)
    .join("; ");
}

export type StreamRequest = { symbols: Set<string>; all: boolean; since: number | undefined };

/**
 * `symbols` (comma-separated, or `*`) and `since` from a request's query (and `Last-Event-ID`,
 * which wins over `since`). `symbols` may be absent on the WebSocket (subscribe later).
 */
export function parseStreamRequest(
  q: { symbols?: string; since?: string; lastEventId?: string },
  normalise: Parameters<typeof parseSymbols>[1],
  symbolsRequired: boolean,
): { ok: true; value: StreamRequest } | { ok: false; issues: { field: string; message: string }[] } {
  const issues: { field: string; message: string }[] = [];
  let parsed: ParsedSymbols = { symbols: new Set(), all: false, bad: [] };
  const list = (q.symbols ?? "").split(",").filter((s) => s.trim() !== "");
  if (list.length) parsed = parseSymbols(list, normalise);
  else if (symbolsRequired) issues.push({ field: "symbols", message: "symbols is required: a comma-separated list such as PKN.WA,CDR.WA, or *" });
  for (const b of parsed.bad) issues.push({ field: "symbols", message: b.reason });
  let since: number | undefined;
  const rawSince = q.lastEventId ?? q.since;
  if (rawSince !== undefined && rawSince !== "") {
    if (/^\d+$/.test(rawSince.trim())) since = Number(rawSince.trim());
    else issues.push({ field: q.lastEventId !== undefined ? "Last-Event-ID" : "since", message: "expected an event id (a whole number)" });
  }
  return issues.length ? { ok: false, issues } : { ok: true, value: { symbols: parsed.symbols, all: parsed.all, since } };
}

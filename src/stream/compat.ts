// The replaced streaming service's protocol (port 8765), served from the same hub as the native
// one: its clients' messages (`{"type":"subscribe","symbols":["PKN"]}`, unsubscribe, status, ping)
// and what they expect back — a `connection` greeting, one `stock_updates` message per batch of
// stored bars (price, change and change_percent against the previous close, volume, time,
// market_status), `market_status` changes and `provider_status`. Each client is a hub session (its
// outbox, limits and heartbeats) that never subscribes natively: this module sends it everything.
// The protocol is written down in docs/stream.md ("Compatibility protocol").
import * as v from "valibot";
import { randomUUID } from "node:crypto";
import { normaliseSymbol, marketOf } from "../domain/symbols.ts";
import type { Market } from "../domain/markets/index.ts";
import type { Interval } from "../domain/bar.ts";
import type { Bar } from "../domain/bar.ts";
import type { BarEvent } from "../stores/events.ts";
import type { Store } from "../stores/types.ts";
import { log } from "../lib/log.ts";
import { errorText } from "../lib/errors.ts";
import type { Hub } from "./hub.ts";
import type { Session } from "./session.ts";
import { MAX_PENDING } from "./session.ts";
import { clip, MAX_SYMBOLS_PER_MESSAGE, type Outgoing } from "./protocol.ts";
import { marketState, type MarketState, type ProviderState, type StatusEvent } from "./status.ts";
import { PreviousCloses } from "./previous-close.ts";

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

const msg = (body: Record<string, unknown>): Outgoing => ({ type: "compat", json: JSON.stringify(body) });
const iso = (t: number) => new Date(t).toISOString();
const round = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;

const Symbols = v.pipe(
  v.array(v.pipe(v.string("expected symbols as strings"), v.maxLength(64, "expected symbols of at most 64 characters")), 'expected symbols: a list such as ["PKN"]'),
  v.minLength(1, "expected at least one symbol"),
);
const ClientMessage = v.variant(
  "type",
  [
    v.object({ type: v.literal("subscribe"), symbols: Symbols }),
    v.object({ type: v.literal("unsubscribe"), symbols: Symbols }),
    v.object({ type: v.literal("status") }),
    v.object({ type: v.literal("ping") }),
  ],
  "expected type: subscribe, unsubscribe, status or ping",
);

/** One client of the compatibility protocol. */
export class CompatClient {
  readonly id = randomUUID();
  /** Canonical symbol → the spelling the client subscribed with (answers use it). */
  readonly spellings = new Map<string, string>();
  /** The ts of the bar last sent per symbol: an older bar (a backfill) is not a new price. */
  readonly sentTs = new Map<string, number>();
  pending = 0;
  chain: Promise<void> = Promise.resolve();
  constructor(readonly session: Session) {}
}

export type CompatOptions = { store: Store; defaultMarket: Market; interval?: Interval };

type Row = { bar: Bar; market: Market | undefined; previousClose: number | null };

export function createCompat(hub: Hub, o: CompatOptions) {
  const clients = new Set<CompatClient>();
  const bySymbol = new Map<string, Set<CompatClient>>();
  const closes = new PreviousCloses(o.store);
  // Batches that arrive while the previous one is being prepared merge here (the latest bar per symbol).
  let waiting = new Map<string, BarEvent>();
  let flushing = false;

  const marketStatusOf = (market: Market | undefined) => (market === undefined ? null : compatMarketStatus(hub.status.market(market)));

  function item(r: Row, spelling: string) {
    const { bar, previousClose } = r;
    const change = previousClose === null ? null : round(bar.close - previousClose, 6);
    return {
      symbol: spelling,
      price: bar.close,
      change,
      change_percent: previousClose ? round(((bar.close - previousClose) / previousClose) * 100, 4) : null,
      volume: bar.volume,
      time: iso(bar.ts),
      market_status: marketStatusOf(r.market),
      previous_close: previousClose,
      open: bar.open,
      high: bar.high,
      low: bar.low,
      interval: bar.interval,
    };
  }

  /** One stock_updates per client holding any of these rows' symbols. */
  function send(rows: Row[], only?: CompatClient, snapshot = false) {
    const per = new Map<CompatClient, ReturnType<typeof item>[]>();
    for (const r of rows) {
      const sym = r.bar.symbol;
      for (const c of only ? [only] : (bySymbol.get(sym) ?? [])) {
        const spelling = c.spellings.get(sym);
        if (spelling === undefined || (c.sentTs.get(sym) ?? -Infinity) > r.bar.ts) continue;
        c.sentTs.set(sym, r.bar.ts);
        let list = per.get(c);
        if (!list) per.set(c, (list = []));
        list.push(item(r, spelling));
      }
    }
    const at = iso(hub.status.now());
    for (const [c, data] of per) c.session.deliver(msg({ type: "stock_updates", data, count: data.length, timestamp: at, ...(snapshot ? { snapshot: true } : {}) }));
  }

  async function rows(bars: Bar[]): Promise<Row[]> {
    const out: Row[] = [];
    for (const bar of bars) {
      const market = marketOf(bar.symbol);
      out.push({ bar, market, previousClose: await closes.before(bar, market) });
    }
    return out;
  }

  async function flush() {
    flushing = true;
    try {
      while (waiting.size) {
        const batch = [...waiting.values()].map((e) => e.bar);
        waiting = new Map();
        send(await rows(batch));
      }
    } catch (e) {
      log.warn("stock_updates could not be prepared", { error: errorText(e) });
    } finally {
      flushing = false;
    }
  }

  hub.bus.subscribe((events) => {
    for (const e of events) {
      if (!bySymbol.has(e.bar.symbol) || (o.interval !== undefined && e.bar.interval !== o.interval)) continue;
      const before = waiting.get(e.bar.symbol);
      if (!before || before.bar.ts <= e.bar.ts) waiting.set(e.bar.symbol, e);
    }
    if (waiting.size && !flushing) void flush();
  });

  hub.status.subscribe((e: StatusEvent) => {
    if (e.kind === "market") {
      const body = marketMessage(e.state, e.before === null ? null : compatMarketStatus(e.before));
      for (const c of clients) if (e.state.market === o.defaultMarket || [...c.spellings.keys()].some((s) => marketOf(s) === e.state.market)) c.session.deliver(body);
    } else {
      const body = providerMessage(e.state);
      for (const c of clients) c.session.deliver(body);
    }
  });

  function marketMessage(s: MarketState, previous: CompatMarketStatus | null) {
    return msg({ type: "market_status", market: s.market, status: compatMarketStatus(s), previous_status: previous, phase: s.phase, date: s.date, holiday: s.holiday, timestamp: iso(hub.status.now()) });
  }

  function providerMessage(p: ProviderState) {
    return msg({
      type: "provider_status",
      provider: p.source,
      status: p.status === "ok" ? "healthy" : p.status === "failing" ? "error" : "interrupted",
      last_run: iso(p.at),
      run_id: p.runId,
      consecutive_failures: p.failures,
      error: p.error === null ? null : clip(p.error, 400),
      timestamp: iso(hub.status.now()),
    });
  }

  const error = (c: CompatClient, message: string, extra: Record<string, unknown> = {}) => c.session.deliver(msg({ type: "error", message: clip(message, 400), ...extra, timestamp: iso(hub.status.now()) }));

  /** The latest stored bar of each symbol (its most recent series), as one stock_updates: a (re)connecting client's snapshot. */
  async function snapshot(c: CompatClient, symbols: string[]) {
    const bars: Bar[] = [];
    for (const sym of symbols) {
      if (c.session.closed) return;
      const series = (await o.store.listSeries({ symbol: sym })).filter((s) => o.interval === undefined || s.interval === o.interval);
      const latest = series.reduce<(typeof series)[number] | undefined>((a, s) => (a === undefined || s.lastTs > a.lastTs ? s : a), undefined);
      if (!latest) continue;
      const [bar] = await o.store.queryBars({ symbol: sym, interval: latest.interval, source: latest.source, from: latest.lastTs, limit: 1 });
      if (bar) bars.push(bar);
    }
    if (bars.length) send(await rows(bars), c, true);
  }

  function subscribe(c: CompatClient, raw: string[]) {
    const added: string[] = [];
    const invalid: { symbol: string; reason: string }[] = [];
    const fresh: string[] = [];
    for (const r of raw) {
      const n = normaliseSymbol(r, o.defaultMarket);
      if (!n.ok) {
        invalid.push({ symbol: clip(r), reason: n.reason });
        continue;
      }
      if (!c.spellings.has(n.symbol)) fresh.push(n.symbol);
      c.spellings.set(n.symbol, r.trim());
      added.push(r.trim());
    }
    const max = hub.config.maxSymbols;
    if (c.spellings.size > max) {
      for (const s of fresh) c.spellings.delete(s);
      return error(c, `subscribe refused: a client may hold at most ${max} symbols; it has ${c.spellings.size} and asked for ${fresh.length} more`, { limit: max });
    }
    for (const s of fresh) {
      let set = bySymbol.get(s);
      if (!set) bySymbol.set(s, (set = new Set()));
      set.add(c);
    }
    c.session.deliver(msg({ type: "subscribed", symbols: added, invalid, subscribed: [...c.spellings.values()], timestamp: iso(hub.status.now()) }));
    return queue(c, () => snapshot(c, fresh));
  }

  function unsubscribe(c: CompatClient, raw: string[]) {
    const removed: string[] = [];
    for (const r of raw) {
      const n = normaliseSymbol(r, o.defaultMarket);
      if (!n.ok || !c.spellings.delete(n.symbol)) continue;
      c.sentTs.delete(n.symbol);
      removed.push(r.trim());
      const set = bySymbol.get(n.symbol);
      set?.delete(c);
      if (set && !set.size) bySymbol.delete(n.symbol);
    }
    c.session.deliver(msg({ type: "unsubscribed", symbols: removed, subscribed: [...c.spellings.values()], timestamp: iso(hub.status.now()) }));
  }

  /** Snapshots run one at a time per client, at most MAX_PENDING waiting. */
  function queue(c: CompatClient, op: () => Promise<void>) {
    if (c.pending >= MAX_PENDING) return error(c, `too many requests waiting: at most ${MAX_PENDING} subscribes at a time; wait for their replies`, { limit: MAX_PENDING });
    c.pending++;
    c.chain = c.chain
      .then(() => (c.session.closed ? undefined : op()))
      .catch((e) => error(c, `subscribe failed: ${errorText(e)}`))
      .finally(() => void c.pending--);
  }

  function status(c: CompatClient) {
    const now = hub.status.now();
    const markets = new Set<Market>([o.defaultMarket]);
    for (const s of c.spellings.keys()) {
      const m = marketOf(s);
      if (m) markets.add(m);
    }
    c.session.deliver(
      msg({
        type: "status",
        client_id: c.id,
        subscribed_symbols: [...c.spellings.values()],
        market_status: compatMarketStatus(hub.status.market(o.defaultMarket)),
        markets: Object.fromEntries([...markets].map((m) => [m, compatMarketStatus(hub.status.market(m))])),
        providers: hub.status.providers().map((p) => JSON.parse(providerMessage(p).json) as unknown),
        connected_clients: clients.size,
        last_event_id: hub.lastId(),
        server_time: iso(now),
        timestamp: iso(now),
      }),
    );
  }

  return {
    /** A client connected: it is greeted. */
    open(session: Session): CompatClient {
      const c = new CompatClient(session);
      clients.add(c);
      const now = hub.status.now();
      session.deliver(
        msg({
          type: "connection",
          status: "connected",
          client_id: c.id,
          message: "connected to ticksync (compatibility protocol): send {\"type\":\"subscribe\",\"symbols\":[...]}",
          market_status: compatMarketStatus(hub.status.market(o.defaultMarket)),
          default_market: o.defaultMarket,
          server_time: iso(now),
          timestamp: iso(now),
        }),
      );
      return c;
    },
    /** One message from a client; a bad one gets an `error` reply and the connection stays. */
    receive(c: CompatClient, text: string) {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        return error(c, 'expected a JSON object such as {"type":"subscribe","symbols":["PKN"]}');
      }
      const list = typeof raw === "object" && raw !== null ? (raw as { symbols?: unknown }).symbols : undefined;
      if (Array.isArray(list) && list.length > MAX_SYMBOLS_PER_MESSAGE) return error(c, `symbols: at most ${MAX_SYMBOLS_PER_MESSAGE} symbols per message (got ${list.length})`, { limit: MAX_SYMBOLS_PER_MESSAGE });
      const parsed = v.safeParse(ClientMessage, raw);
      if (!parsed.success) {
        const t = typeof raw === "object" && raw !== null ? (raw as { type?: unknown }).type : undefined;
        return error(c, parsed.issues.map((i) => i.message).slice(0, 3).join("; "), typeof t === "string" ? { received: clip(t) } : {});
      }
      const m = parsed.output;
      if (m.type === "ping") return c.session.deliver(msg({ type: "pong", timestamp: iso(hub.status.now()) }));
      if (m.type === "status") return status(c);
      if (m.type === "subscribe") return subscribe(c, m.symbols);
      unsubscribe(c, m.symbols);
    },
    close(c: CompatClient) {
      if (!clients.delete(c)) return;
      for (const s of c.spellings.keys()) {
        const set = bySymbol.get(s);
        set?.delete(c);
        if (set && !set.size) bySymbol.delete(s);
      }
    },
    get clients() {
      return clients.size;
    },
  };
}

export type Compat = ReturnType<typeof createCompat>;
/** For tests: the state a phase has (market_status of a market at an instant). */
export const compatStatusAt = (market: Market, at: number) => compatMarketStatus(marketState(market, at));

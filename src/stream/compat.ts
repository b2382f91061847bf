// The replaced streaming service's protocol (port 8765), served from the same hub as the native
// one: its clients' messages (`{"type":"subscribe","symbols":["PKN"]}`, unsubscribe, status, ping)
// and what they expect back — a `connection` greeting, one `stock_updates` message per batch of
// stored bars (price, change and change_percent against the previous close, volume, time,
// market_status), `market_status` changes and `provider_status`. Each client is a hub session (its
// outbox, limits and heartbeats) that never subscribes natively: this module sends it everything.
// The messages are compat-messages.ts's; the protocol is docs/stream.md's "Compatibility protocol".
import * as v from "valibot";
import { randomUUID } from "node:crypto";
import { normaliseSymbol, marketOf } from "../domain/symbols.ts";
import type { Market } from "../domain/markets/index.ts";
import type { Bar, Interval } from "../domain/bar.ts";
import type { BarEvent } from "../stores/events.ts";
import type { Store } from "../stores/types.ts";
import { log } from "../lib/log.ts";
import { errorText } from "../lib/errors.ts";
import type { EventBus } from "./bus.ts";
import type { StreamConfig } from "./config.ts";
import type { StatusFeed } from "./status.ts";
import { MAX_PENDING, type Session } from "./session.ts";
import { clip, MAX_SYMBOLS_PER_MESSAGE } from "./protocol.ts";
import type { StatusEvent } from "./status.ts";
import { PreviousCloses } from "./previous-close.ts";
import {
  compatError,
  compatMarketStatus,
  compatMessage,
  CompatClientMessage,
  greetingBody,
  marketStatusBody,
  providerStatusBody,
  stockUpdate,
  type StockUpdate,
} from "./compat-messages.ts";

export { compatMarketStatus };

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

/** What the engine needs of the hub (the hub makes it: src/stream/hub.ts `compat()`). */
export type CompatHub = { bus: Pick<EventBus, "subscribe">; status: StatusFeed; config: StreamConfig; lastId(): number };

export type CompatOptions = { store: Store; defaultMarket: Market; interval?: Interval };

type Row = { bar: Bar; market: Market | undefined; previousClose: number | null };

export class Compat {
  readonly #clients = new Set<CompatClient>();
  readonly #bySymbol = new Map<string, Set<CompatClient>>();
  readonly #closes: PreviousCloses;
  // Batches that arrive while the previous one is being prepared merge here (the latest bar per symbol).
  #waiting = new Map<string, BarEvent>();
  #flushing = false;

  constructor(
    private readonly hub: CompatHub,
    private readonly o: CompatOptions,
  ) {
    this.#closes = new PreviousCloses(o.store);
    hub.bus.subscribe((events) => this.#onEvents(events));
    hub.status.subscribe((e) => this.#onStatus(e));
  }

  get clients(): number {
    return this.#clients.size;
  }

  #now = () => this.hub.status.now();
  #statusOf = (m: Market) => compatMarketStatus(this.hub.status.market(m));

  /** A client connected: it is greeted. */
  open(session: Session): CompatClient {
    const c = new CompatClient(session);
    this.#clients.add(c);
    session.deliver(compatMessage(greetingBody(c.id, this.o.defaultMarket, this.#statusOf(this.o.defaultMarket), this.#now()), this.#now()));
    return c;
  }

  close(c: CompatClient): void {
    if (!this.#clients.delete(c)) return;
    this.#index(c, [...c.spellings.keys()], false);
  }

  /** One message from a client; a bad one gets an `error` reply and the connection stays. */
  receive(c: CompatClient, text: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return this.#error(c, 'expected a JSON object such as {"type":"subscribe","symbols":["PKN"]}');
    }
    // Refused before validation, which would check every element of a list that long first.
    const list = typeof raw === "object" && raw !== null ? (raw as { symbols?: unknown }).symbols : undefined;
    if (Array.isArray(list) && list.length > MAX_SYMBOLS_PER_MESSAGE) return this.#error(c, `symbols: at most ${MAX_SYMBOLS_PER_MESSAGE} symbols per message (got ${list.length})`, { limit: MAX_SYMBOLS_PER_MESSAGE });
    const parsed = v.safeParse(CompatClientMessage, raw);
    if (!parsed.success) {
      const t = typeof raw === "object" && raw !== null ? (raw as { type?: unknown }).type : undefined;
      return this.#error(c, parsed.issues.map((i) => i.message).slice(0, 3).join("; "), typeof t === "string" ? { received: clip(t) } : {});
    }
    const m = parsed.output;
    if (m.type === "ping") return c.session.deliver(compatMessage({ type: "pong" }, this.#now()));
    if (m.type === "status") return this.#status(c);
    if (m.type === "subscribe") return this.#subscribe(c, m.symbols);
    this.#unsubscribe(c, m.symbols);
  }

  #error(c: CompatClient, message: string, extra: { received?: string; limit?: number } = {}): void {
    c.session.deliver(compatError(message, this.#now(), extra));
  }

  #index(c: CompatClient, symbols: string[], add: boolean): void {
    for (const s of symbols) {
      let set = this.#bySymbol.get(s);
      if (add) {
        if (!set) this.#bySymbol.set(s, (set = new Set()));
        set.add(c);
      } else if (set) {
        set.delete(c);
        if (!set.size) this.#bySymbol.delete(s);
      }
    }
  }

  #subscribe(c: CompatClient, raw: string[]): void {
    const added: string[] = [];
    const invalid: { symbol: string; reason: string }[] = [];
    const fresh = new Map<string, string>();
    for (const r of raw) {
      const n = normaliseSymbol(r, this.o.defaultMarket);
      if (!n.ok) invalid.push({ symbol: clip(r), reason: n.reason });
      else {
        if (!c.spellings.has(n.symbol)) fresh.set(n.symbol, r.trim());
        added.push(r.trim());
      }
    }
    const max = this.hub.config.maxSymbols;
    if (c.spellings.size + fresh.size > max) return this.#error(c, `subscribe refused: a client may hold at most ${max} symbols; it has ${c.spellings.size} and asked for ${fresh.size} more`, { limit: max });
    for (const r of raw) {
      const n = normaliseSymbol(r, this.o.defaultMarket);
      if (n.ok) c.spellings.set(n.symbol, r.trim());
    }
    this.#index(c, [...fresh.keys()], true);
    c.session.deliver(compatMessage({ type: "subscribed", symbols: added, invalid, subscribed: [...c.spellings.values()] }, this.#now()));
    this.#queue(c, () => this.#snapshot(c, [...fresh.keys()]));
  }

  #unsubscribe(c: CompatClient, raw: string[]): void {
    const removed: string[] = [];
    for (const r of raw) {
      const n = normaliseSymbol(r, this.o.defaultMarket);
      if (!n.ok || !c.spellings.delete(n.symbol)) continue;
      c.sentTs.delete(n.symbol);
      removed.push(r.trim());
      this.#index(c, [n.symbol], false);
    }
    c.session.deliver(compatMessage({ type: "unsubscribed", symbols: removed, subscribed: [...c.spellings.values()] }, this.#now()));
  }

  /** Snapshots run one at a time per client, at most MAX_PENDING waiting. */
  #queue(c: CompatClient, op: () => Promise<void>): void {
    if (c.pending >= MAX_PENDING) return this.#error(c, `too many requests waiting: at most ${MAX_PENDING} subscribes at a time; wait for their replies`, { limit: MAX_PENDING });
    c.pending++;
    c.chain = c.chain
      .then(() => (c.session.closed ? undefined : op()))
      .catch((e) => this.#error(c, `subscribe failed: ${errorText(e)}`))
      .finally(() => void c.pending--);
  }

  /** The latest stored bar of each symbol (its most recent series), as one stock_updates: a (re)connecting client's snapshot. */
  async #snapshot(c: CompatClient, symbols: string[]): Promise<void> {
    const { store, interval } = this.o;
    const bars: Bar[] = [];
    for (const sym of symbols) {
      if (c.session.closed) return;
      const series = (await store.listSeries({ symbol: sym })).filter((s) => interval === undefined || s.interval === interval);
      const latest = series.reduce<(typeof series)[number] | undefined>((a, s) => (a === undefined || s.lastTs > a.lastTs ? s : a), undefined);
      if (!latest) continue;
      const [bar] = await store.queryBars({ symbol: sym, interval: latest.interval, source: latest.source, from: latest.lastTs, limit: 1 });
      if (bar) bars.push(bar);
    }
    if (bars.length) this.#send(await this.#rows(bars), c);
  }

  #status(c: CompatClient): void {
    const markets = new Set<Market>([this.o.defaultMarket]);
    for (const s of c.spellings.keys()) {
      const m = marketOf(s);
      if (m) markets.add(m);
    }
    const now = this.#now();
    c.session.deliver(
      compatMessage(
        {
          type: "status",
          client_id: c.id,
          subscribed_symbols: [...c.spellings.values()],
          market_status: this.#statusOf(this.o.defaultMarket),
          markets: Object.fromEntries([...markets].map((m) => [m, this.#statusOf(m)])),
          providers: this.hub.status.providers().map(providerStatusBody),
          connected_clients: this.#clients.size,
          last_event_id: this.hub.lastId(),
          server_time: new Date(now).toISOString(),
        },
        now,
      ),
    );
  }

  /** One stock_updates per client holding any of these rows' symbols (or to `only`: a snapshot). */
  #send(rows: Row[], only?: CompatClient): void {
    const per = new Map<CompatClient, StockUpdate[]>();
    for (const r of rows) {
      const sym = r.bar.symbol;
      const status = r.market === undefined ? null : this.#statusOf(r.market);
      for (const c of only ? [only] : (this.#bySymbol.get(sym) ?? [])) {
        const spelling = c.spellings.get(sym);
        if (spelling === undefined || (c.sentTs.get(sym) ?? -Infinity) > r.bar.ts) continue;
        c.sentTs.set(sym, r.bar.ts);
        let list = per.get(c);
        if (!list) per.set(c, (list = []));
        list.push(stockUpdate(r.bar, spelling, r.previousClose, status));
      }
    }
    for (const [c, data] of per) c.session.deliver(compatMessage({ type: "stock_updates", data, count: data.length, ...(only ? { snapshot: true } : {}) }, this.#now()));
  }

  async #rows(bars: Bar[]): Promise<Row[]> {
    const out: Row[] = [];
    for (const bar of bars) {
      const market = marketOf(bar.symbol);
      out.push({ bar, market, previousClose: await this.#closes.before(bar, market) });
    }
    return out;
  }

  #onEvents(events: BarEvent[]): void {
    const interval = this.o.interval;
    for (const e of events) {
      if (!this.#bySymbol.has(e.bar.symbol) || (interval !== undefined && e.bar.interval !== interval)) continue;
      const before = this.#waiting.get(e.bar.symbol);
      if (!before || before.bar.ts <= e.bar.ts) this.#waiting.set(e.bar.symbol, e);
    }
    if (this.#waiting.size && !this.#flushing) void this.#flush();
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#waiting.size) {
        const batch = [...this.#waiting.values()].map((e) => e.bar);
        this.#waiting = new Map();
        this.#send(await this.#rows(batch));
      }
    } catch (e) {
      this.#waiting = new Map();
      log.warn("stock_updates could not be prepared", { error: errorText(e) });
    } finally {
      this.#flushing = false;
    }
  }

  #onStatus(e: StatusEvent): void {
    const now = this.#now();
    if (e.kind === "provider") {
      const m = compatMessage(providerStatusBody(e.state), now);
      for (const c of this.#clients) c.session.deliver(m);
      return;
    }
    const m = compatMessage(marketStatusBody(e.state, e.before === null ? null : compatMarketStatus(e.before)), now);
    const market = e.state.market;
    // Clients hear of the default market and of the markets of their symbols.
    for (const c of this.#clients) if (market === this.o.defaultMarket || [...c.spellings.keys()].some((s) => marketOf(s) === market)) c.session.deliver(m);
  }
}

export const createCompat = (hub: CompatHub, o: CompatOptions) => new Compat(hub, o);

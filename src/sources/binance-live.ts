// Binance live: the public WebSocket kline stream as a source that runs until stopped. One stream
// ("live") holds every symbol, read over connections of up to streamsPerConnection streams each
// (`/stream?streams=btcusdt@kline_1m/…`, payload {stream, data: {e: "kline", E, s, k: {t, T, s, i,
// o, c, h, l, v, n, x, q, …}}}); closed (x) and in-progress bars alike become rows, so they go
// through the same validation and store path as any read, and the store's journal feeds the
// stream hub. A connection that drops, goes silent (no message or ping for silenceSeconds) or is
// closed by Binance (after 24 h) is opened again with backoff, and after every (re)connect its
// symbols are backfilled by REST from their last closed bar to now before their live bars go on
// (in-progress bars received before that read are dropped: it has them as new).
// Each symbol's last closed bar is kept in the stream's cursor, committed with the bars. Bounded:
// streams per connection, message size, and the outbox (conflated per bar; when it overflows, it is
// dropped and every symbol is backfilled instead, so nothing is lost). See docs/sources.md.
import * as v from "valibot";
import { INTERVAL_MS, type Interval, type RawRow } from "../domain/bar.ts";
import type { SymbolMarket } from "../domain/symbols.ts";
import { isIntraday } from "../domain/rollup.ts";
import { ProviderError } from "../lib/http.ts";
import { log } from "../lib/log.ts";
import { sleep } from "../lib/ratelimit.ts";
import { errorText } from "../lib/errors.ts";
import { isInstant } from "./provider.ts";
import { SourceError, type Cursor, type ReadRange, type Source, type SourceBatch } from "./types.ts";

/** The live source's one stream; any other stream (a symbol) or an explicit range is a history read. */
export const LIVE_STREAM = "live";

export const LIVE_DEFAULTS = {
  /** Binance allows 1,024 streams per connection. */
  streamsPerConnection: 200,
  silenceSeconds: 60,
  maxMessageBytes: 65_536,
  outboxBars: 50_000,
  lookbackBars: 1000,
  reconnectMinMs: 1000,
  reconnectMaxMs: 60_000,
  maxFailedConnects: 10,
};
export type LiveOptions = typeof LIVE_DEFAULTS;

const Int = (min: number, max: number, text: string) => v.optional(v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max), v.description(text)));
const d = LIVE_DEFAULTS;
export const liveOptionsSchema = v.pipe(
  v.strictObject({
    streamsPerConnection: Int(1, 1024, `Symbols per WebSocket connection (Binance allows 1,024) (default ${d.streamsPerConnection}).`),
    silenceSeconds: Int(1, 3600, `A connection with no message or ping for this long is opened again (Binance pings every 20 s) (default ${d.silenceSeconds}).`),
    maxMessageBytes: Int(1024, 16_777_216, `A longer message is hostile: its connection is dropped and opened again (default ${d.maxMessageBytes}).`),
    outboxBars: Int(100, 10_000_000, `Bars received and not yet stored, at most; past it they are dropped and fetched again by REST (default ${d.outboxBars}).`),
    lookbackBars: Int(1, 1_000_000, `Bars backfilled for a symbol with no closed bar in the cursor yet (default ${d.lookbackBars}, and never before start).`),
    reconnectMinMs: Int(10, 3_600_000, `First wait before opening a dropped connection again, ms; doubled per failed try (default ${d.reconnectMinMs}).`),
    reconnectMaxMs: Int(10, 3_600_000, `Longest wait between tries, ms (default ${d.reconnectMaxMs}).`),
    maxFailedConnects: Int(1, 1000, `Failed connects in a row after which the run fails (the job's next run starts over) (default ${d.maxFailedConnects}).`),
  }),
  v.description("The WebSocket feed of mode = live: connections, silence, bounds, reconnect backoff."),
);

export type LiveSymbol = { symbol: string; providerSymbol: string; market: SymbolMarket };
/** A page of REST klines and the open time of its newest closed one. */
export type KlinePage = { rows: RawRow[]; closedTs: number | null };

export type LiveSpec = {
  interval: Interval;
  /** Binance's spelling of the interval. */
  spelled: string;
  /** The source's start (epoch ms): no backfill reaches before it. */
  start: number;
  streamUrl: string;
  options: LiveOptions;
  /** The same source in history mode: symbol streams and explicit ranges (backfill, gapfill) go there. */
  history: Source;
  symbols(): LiveSymbol[];
  /** REST klines of one symbol over [from, to]. */
  backfill(s: LiveSymbol, from: number, to: number): AsyncIterable<KlinePage>;
  signal?: AbortSignal;
};

/** Open time of the bar after the one opening at t: months are calendar months (Binance's 1M). */
export function nextOpen(t: number, interval: Interval): number {
  if (interval !== "1mo") return t + INTERVAL_MS[interval];
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

const CLOSED = "closed:";

type Pending = { row: RawRow; t: number | null; closed: boolean };

/**
 * What the connections hand the reader: received bars conflated per symbol and open time (the
 * newest state of a bar wins), the symbols waiting for a backfill, and a fatal error.
 */
export class Inbox {
  readonly bars = new Map<string, Map<number | string, Pending>>();
  size = 0;
  readonly backfills = new Set<string>();
  fatal: Error | null = null;
  private wake: (() => void) | null = null;
  constructor(private readonly max: number) {}

  notify() {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
  put(symbol: string, key: number | string, p: Pending): void {
    let of = this.bars.get(symbol);
    if (!of?.has(key)) {
      if (this.size >= this.max) {
        // The store is behind: drop what waits and fetch it again by REST, once it catches up.
        log.warn("binance live: outbox full; its bars are dropped and fetched again by REST", { bars: this.size });
        for (const s of this.bars.keys()) this.backfills.add(s);
        this.bars.clear();
        this.size = 0;
        of = undefined;
      }
      if (!of) this.bars.set(symbol, (of = new Map()));
      this.size++;
    }
    of!.set(key, p);
    this.notify();
  }
  backfill(symbols: Iterable<string>) {
    for (const s of symbols) this.backfills.add(s);
    this.notify();
  }
  /**
   * In-progress bars received before a REST read of the symbol: the read's are as new (and one that
   * has closed since must not be stored over by its older state). Closed bars stay: they are final,
   * and REST may lag the stream.
   */
  dropInProgress(symbol: string) {
    const of = this.bars.get(symbol);
    if (!of) return;
    for (const [key, p] of of) if (!p.closed) (of.delete(key), this.size--);
    if (of.size === 0) this.bars.delete(symbol);
  }
  take(max: number): [string, Pending][] {
    const out: [string, Pending][] = [];
    for (const [symbol, of] of this.bars) {
      for (const [key, p] of of) {
        if (out.length >= max) return out;
        out.push([symbol, p]);
        of.delete(key);
        this.size--;
      }
      this.bars.delete(symbol);
    }
    return out;
  }
  fail(e: Error) {
    this.fatal ??= e;
    this.notify();
  }
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.wake = done;
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}

/** A kline event's row, or null when the message is no kline of this feed (counted, not stored). */
function klineEvent(text: string, spelled: string, bySymbol: Map<string, LiveSymbol>, daily: boolean): { s: LiveSymbol; key: number | string; p: Pending } | null {
  let msg: any;
  try {
    msg = JSON.parse(text);
  } catch {
    return null;
  }
  const data = msg?.data ?? msg;
  const k = data?.k;
  if (data?.e !== "kline" || !k || typeof k !== "object" || typeof k.s !== "string" || k.i !== spelled) return null;
  const s = bySymbol.get(k.s.toUpperCase());
  if (!s) return null;
  const t = isInstant(k.t) ? k.t : null;
  const ts = t === null ? String(k.t) : daily ? new Date(t).toISOString().slice(0, 10) : new Date(t).toISOString();
  const row: RawRow = {
    locator: `binance:ws:${s.providerSymbol}:${t === null ? String(k.t).slice(0, 40) : new Date(t).toISOString()}`,
    fields: { symbol: s.symbol, ts, open: k.o, high: k.h, low: k.l, close: k.c, volume: k.v, turnover: k.q, trades: k.n },
  };
  return { s, key: t ?? `?${String(k.t).slice(0, 40)}`, p: { row, t, closed: k.x === true } };
}

type Connection = { stop(): void; done: Promise<void> };

/**
 * One connection's life: open, read, and on a drop or silence open again after a backoff (reset by
 * a connection that delivered); each open asks a backfill of its symbols. Too many failed opens in
 * a row fail the feed.
 */
function keepConnected(group: LiveSymbol[], spec: LiveSpec, inbox: Inbox): Connection {
  const o = spec.options;
  const url = `${spec.streamUrl}/stream?streams=${group.map((s) => `${s.providerSymbol.toLowerCase()}@kline_${spec.spelled}`).join("/")}`;
  const bySymbol = new Map(group.map((s) => [s.providerSymbol.toUpperCase(), s]));
  const daily = !isIntraday(spec.interval);
  const stopper = new AbortController();

  /** One connection until it ends; whether it delivered anything, and why it ended. */
  const once = () =>
    new Promise<{ delivered: boolean; why: string }>((resolve) => {
      let delivered = false;
      let opened = false;
      let socket: WebSocket | null = null;
      let seen = Date.now();
      let error = "";
      let finished = false;
      const watch = setInterval(() => {
        if (Date.now() - seen > o.silenceSeconds * 1000) end(opened ? `silent for ${o.silenceSeconds} s` : `no answer in ${o.silenceSeconds} s`);
      }, Math.min(1000, (o.silenceSeconds * 1000) / 4));
      const onStop = () => end("stopped");
      function end(why: string) {
        if (finished) return;
        finished = true;
        clearInterval(watch);
        stopper.signal.removeEventListener("abort", onStop);
        try {
          socket?.terminate();
        } catch {
          /* already closed */
        }
        resolve({ delivered, why });
      }
      stopper.signal.addEventListener("abort", onStop, { once: true });
      try {
        socket = new WebSocket(url);
      } catch (e) {
        return end(`could not connect: ${errorText(e)}`);
      }
      socket.addEventListener("open", () => {
        opened = true;
        seen = Date.now();
        // What was missed while away (or, first time, the look-back) comes by REST.
        inbox.backfill(group.map((s) => s.symbol));
      });
      // Binance pings every 20 s (Bun answers them): a ping is life, though not data.
      socket.addEventListener("ping", () => {
        seen = Date.now();
        delivered = true;
      });
      socket.addEventListener("message", (ev) => {
        seen = Date.now();
        const text = ev.data;
        if (typeof text !== "string") return;
        // Characters first (cheap); bytes only when the characters could be over the limit.
        if (text.length > o.maxMessageBytes || (text.length * 3 > o.maxMessageBytes && Buffer.byteLength(text) > o.maxMessageBytes))
          return end(`a message over ${o.maxMessageBytes} bytes`);
        const got = klineEvent(text, spec.spelled, bySymbol, daily);
        if (!got) return;
        delivered = true;
        inbox.put(got.s.symbol, got.key, got.p);
      });
      socket.addEventListener("error", (ev) => void (error = String((ev as ErrorEvent).message ?? "").slice(0, 200)));
      socket.addEventListener("close", (ev) =>
        end(opened ? `closed (${ev.code}${ev.reason ? ` ${ev.reason.slice(0, 100)}` : ""})` : `could not connect (${ev.code}${error ? `: ${error}` : ""})`),
      );
    });

  const done = (async () => {
    let failed = 0;
    while (!stopper.signal.aborted) {
      const r = await once();
      if (stopper.signal.aborted) return;
      failed = r.delivered ? 0 : failed + 1;
      if (failed >= o.maxFailedConnects) return inbox.fail(new ProviderError(`binance live: ${failed} connects in a row failed, the last: ${r.why} (${spec.streamUrl})`, "network"));
      const wait = Math.min(o.reconnectMaxMs, o.reconnectMinMs * 2 ** Math.max(0, failed - 1));
      const ms = Math.floor(wait / 2 + (Math.random() * wait) / 2);
      log.warn("binance live: connection lost, reconnecting", { why: r.why, symbols: group.length, inMs: ms });
      await sleep(ms, stopper.signal).catch(() => {});
    }
  })();
  return { stop: () => stopper.abort(), done };
}

/** The cursor: every symbol's last closed bar. */
function cursorOf(closed: Map<string, number>): Cursor {
  const c: Cursor = {};
  for (const [s, t] of closed) c[CLOSED + s] = t;
  return c;
}

export function binanceLiveSource(name: string, spec: LiveSpec): Source {
  const o = spec.options;
  const step = (t: number) => nextOpen(t, spec.interval);

  /** REST backfill of one symbol from its last closed bar (or the look-back) to now. */
  async function* backfill(s: LiveSymbol, closed: Map<string, number>, dead: Set<string>, inbox: Inbox): AsyncIterable<SourceBatch> {
    inbox.dropInProgress(s.symbol);
    const last = closed.get(s.symbol);
    const now = Date.now();
    const from = last !== undefined ? step(last) : Math.max(spec.start, now - o.lookbackBars * INTERVAL_MS[spec.interval]);
    try {
      for await (const page of spec.backfill(s, from, now)) {
        if (page.closedTs !== null && page.closedTs > (closed.get(s.symbol) ?? -Infinity)) closed.set(s.symbol, page.closedTs);
        yield { rows: page.rows, cursor: cursorOf(closed) };
      }
    } catch (e) {
      if (!(e instanceof ProviderError)) throw e;
      if (e.failure === "no_data") return; // nothing traded in the gap
      if (e.failure !== "not_found") throw e;
      // An unknown pair fails alone: said once, then left out (its stream sends nothing anyway).
      log.error(`source ${name}: ${e.message}; ${s.symbol} is left out of the live feed`);
      dead.add(s.symbol);
    }
  }

  async function* live(cursor: Cursor | null, batchSize: number): AsyncIterable<SourceBatch> {
    const symbols = spec.symbols();
    const bySymbol = new Map(symbols.map((s) => [s.symbol, s]));
    const closed = new Map<string, number>();
    for (const s of symbols) {
      const t = cursor?.[CLOSED + s.symbol];
      if (typeof t === "number" && Number.isFinite(t)) closed.set(s.symbol, t);
    }
    const dead = new Set<string>();
    const inbox = new Inbox(o.outboxBars);
    const connections: Connection[] = [];
    for (let i = 0; i < symbols.length; i += o.streamsPerConnection) connections.push(keepConnected(symbols.slice(i, i + o.streamsPerConnection), spec, inbox));
    try {
      for (;;) {
        if (spec.signal?.aborted) throw new SourceError(`source ${name}: live feed stopped`);
        if (inbox.fatal) throw inbox.fatal;
        if (inbox.backfills.size > 0) {
          const due = [...inbox.backfills];
          inbox.backfills.clear();
          for (const symbol of due) {
            const s = bySymbol.get(symbol);
            if (s && !dead.has(symbol)) yield* backfill(s, closed, dead, inbox);
          }
          continue;
        }
        const got = inbox.take(batchSize);
        if (got.length > 0) {
          const rows: RawRow[] = new Array(got.length);
          for (let i = 0; i < got.length; i++) {
            const [symbol, p] = got[i]!;
            rows[i] = p.row;
            if (!p.closed || p.t === null || dead.has(symbol)) continue;
            const last = closed.get(symbol);
            // A closed bar past the next one expected: one was missed, so REST fills the hole (and
            // the position stays before it until then).
            if (last !== undefined && p.t > step(last)) inbox.backfill([symbol]);
            else if (last === undefined || p.t > last) closed.set(symbol, p.t);
          }
          yield { rows: dead.size ? rows.filter((r) => !dead.has(r.fields.symbol as string)) : rows, cursor: cursorOf(closed) };
          continue;
        }
        await inbox.wait(spec.signal);
      }
    } finally {
      for (const c of connections) c.stop();
      await Promise.all(connections.map((c) => c.done)).catch((e) => log.warn("binance live: a connection ended badly", { error: errorText(e) }));
    }
  }

  /** A backfill of the live stream: every symbol over the range by REST; the live position stays as it was. */
  async function* ranged(cursor: Cursor | null, batchSize: number, range: ReadRange): AsyncIterable<SourceBatch> {
    for (const s of spec.symbols()) for await (const b of spec.history.read(s.symbol, null, batchSize, range)) yield { ...b, cursor: cursor ?? {} };
  }

  return {
    name,
    type: spec.history.type,
    interval: spec.interval,
    market: spec.history.market,
    waits: spec.history.waits,
    concurrency: 1,
    streams: async () => [LIVE_STREAM],
    read(stream, cursor, batchSize, range) {
      if (stream !== LIVE_STREAM) return spec.history.read(stream, cursor, batchSize, range);
      return range ? ranged(cursor, batchSize, range) : live(cursor, batchSize);
    },
  };
}

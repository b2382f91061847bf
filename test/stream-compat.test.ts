// The replaced streaming service's clients (issue #16 items 3 and 4): a plain WebSocket client
// that speaks only the old protocol (type: subscribe/unsubscribe/status/ping) against the
// compatibility listener, and a native client watching market and provider status, both served by
// one hub over a real SQLite store. Time is a clock the test moves; runs are written to the ledger.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import type { Bar } from "../src/domain/bar.ts";
import { createHub, type Hub } from "../src/stream/hub.ts";
import { createApp } from "../src/http/app.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { streamWebSocket } from "../src/stream/ws.ts";
import { defaultStreamConfig, type StreamConfig } from "../src/stream/config.ts";
import { createStatusFeed, marketState, type StatusFeed } from "../src/stream/status.ts";
import { compatMarketStatus } from "../src/stream/compat.ts";
import { compatApp } from "../src/stream/compat-ws.ts";
import { PreviousCloses } from "../src/stream/previous-close.ts";
import { rawWs, wsFrame } from "./fakes/raw-ws.ts";
import { parseConfig, ConfigError } from "../src/config/load.ts";
import { startServe, tempDir, waitFor, writeFile, wsClient } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-compat-");
let nFile = 0;
const D = (iso: string) => Date.parse(iso);

type Setup = { store: Store; hub: Hub; status: StatusFeed; clock: { t: number }; compatUrl: string; nativeUrl: string; stop(): Promise<void> };
const setups: Setup[] = [];
afterAll(async () => {
  for (const s of setups) await s.stop().catch(() => {});
});

async function start(over: Partial<StreamConfig> = {}): Promise<Setup> {
  const store = sqliteStore(`sqlite:${join(dir, `c${++nFile}.db`)}`);
  await store.migrate();
  const config: StreamConfig = { ...defaultStreamConfig(), pollMs: 50, ...over };
  config.compat = { ...config.compat, path: true };
  // Saturday noon in Warsaw: the WSE is closed for the weekend.
  const clock = { t: D("2024-01-06T12:00:00Z") };
  const status = createStatusFeed({ ledger: store, pollSeconds: 3600, now: () => clock.t });
  const metrics = ticksyncMetrics();
  const hub = createHub({ store, metrics, config, status });
  await hub.start();
  const compatServer = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: compatApp(hub, hub.compat()).fetch, websocket: streamWebSocket(config) });
  const app = createApp({ store, metrics, stream: { hub, config } });
  const main = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, websocket: streamWebSocket(config) });
  const s: Setup = {
    store,
    hub,
    status,
    clock,
    compatUrl: `ws://127.0.0.1:${compatServer.port}`,
    nativeUrl: `ws://127.0.0.1:${main.port}/api/ws`,
    async stop() {
      await hub.stop();
      await compatServer.stop(true);
      await main.stop(true);
      await store.close();
    },
  };
  setups.push(s);
  return s;
}

type Update = { symbol: string; price: number; change: number | null; change_percent: number | null; volume: number; time: string; market_status: string; previous_close: number | null };

/** A client of the old service: plain WebSocket, JSON messages with `type`. */
function oldClient(url: string) {
  const c = wsClient(url);
  const of = (type: string) => c.msgs.filter((m) => m.type === type);
  return { ...c, of, updates: () => of("stock_updates").map((m) => m.data as Update[]) };
}

const bar = (symbol: string, interval: Bar["interval"], ts: string, close: number, volume = 1000): Bar => ({ source: "test", symbol, interval, ts: D(ts), open: close, high: close, low: close, close, volume });

async function commit(store: Store, bars: Bar[]) {
  const runId = await store.startRun({ kind: "ingest", source: "test" });
  await store.commitBatch({ runId, source: "test", bars, quarantine: [], read: bars.length });
  await store.finishRun(runId, { outcome: "succeeded", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
}

async function failRun(store: Store, source: string, error: string) {
  const runId = await store.startRun({ kind: "ingest", source });
  await store.finishRun(runId, { outcome: "failed", read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error });
}

describe("compatibility protocol (the replaced streaming service's clients)", () => {
  test("greeting, subscribe with bare tickers, snapshot, batched stock_updates against the previous close, unsubscribe, status, ping", async () => {
    const s = await start();
    await commit(s.store, [bar("PKN.WA", "1d", "2024-01-02T00:00:00Z", 50, 7000), bar("CDR.WA", "1d", "2024-01-02T00:00:00Z", 100)]);
    const c = oldClient(s.compatUrl);
    await c.opened;
    await c.until(() => c.of("connection").length, "the greeting");
    const hello = c.of("connection")[0]!;
    expect(hello).toMatchObject({ type: "connection", status: "connected", market_status: "WEEKEND", default_market: "WSE" });
    expect(typeof hello.client_id).toBe("string");

    // Bare ticker (the default market) and a suffixed lower-case one: answers use each spelling.
    c.send({ type: "subscribe", symbols: ["PKN", "cdr.wa", "NOPE.ZZ"] });
    await c.until(() => c.of("subscribed").length, "the subscribe reply");
    const sub = c.of("subscribed")[0]!;
    expect(sub.symbols).toEqual(["PKN", "cdr.wa"]);
    expect((sub.invalid as { symbol: string }[]).map((i) => i.symbol)).toEqual(["NOPE.ZZ"]);
    // The snapshot: the latest stored bar of each symbol (no earlier close stored: change null).
    await c.until(() => c.updates().length, "the snapshot");
    const snap = c.of("stock_updates")[0]!;
    expect(snap.snapshot).toBe(true);
    expect((snap.data as Update[]).map((u) => [u.symbol, u.price, u.change])).toEqual([
      ["PKN", 50, null],
      ["cdr.wa", 100, null],
    ]);

    // One batch of bars is one stock_updates: a daily bar (PKN) and a minute bar (CDR), each
    // against the previous session's close; market_status is the WSE's now.
    s.clock.t = D("2024-01-03T08:30:00Z");
    s.status.checkMarkets();
    await commit(s.store, [bar("PKN.WA", "1d", "2024-01-03T00:00:00Z", 55, 9000), bar("CDR.WA", "1m", "2024-01-03T08:30:00Z", 98, 12)]);
    await c.until(() => c.updates().length >= 2, "a stock_updates batch");
    const live = c.updates()[1]!;
    expect(live).toEqual([
      { symbol: "PKN", price: 55, change: 5, change_percent: 10, volume: 9000, time: "2024-01-03T00:00:00.000Z", market_status: "OPEN", previous_close: 50, open: 55, high: 55, low: 55, interval: "1d" } as never,
      { symbol: "cdr.wa", price: 98, change: -2, change_percent: -2, volume: 12, time: "2024-01-03T08:30:00.000Z", market_status: "OPEN", previous_close: 100, open: 98, high: 98, low: 98, interval: "1m" } as never,
    ]);

    // Unsubscribed symbols are left out of the next batch.
    c.send({ type: "unsubscribe", symbols: ["PKN"] });
    await c.until(() => c.of("unsubscribed").length, "the unsubscribe reply");
    expect(c.of("unsubscribed")[0]).toMatchObject({ symbols: ["PKN"], subscribed: ["cdr.wa"] });
    await commit(s.store, [bar("PKN.WA", "1d", "2024-01-04T00:00:00Z", 60), bar("CDR.WA", "1m", "2024-01-03T08:31:00Z", 101)]);
    await c.until(() => c.updates().length >= 3, "the next batch");
    expect(c.updates()[2]!.map((u) => [u.symbol, u.price, u.change])).toEqual([["cdr.wa", 101, 1]]);

    c.send({ type: "status" });
    c.send({ type: "ping" });
    await c.until(() => c.of("status").length && c.of("pong").length, "status and pong");
    expect(c.of("status")[0]).toMatchObject({ subscribed_symbols: ["cdr.wa"], market_status: "OPEN", markets: { WSE: "OPEN" }, connected_clients: 1 });
    expect(typeof c.of("pong")[0]!.timestamp).toBe("string");

    // A reconnecting client gets the latest of its symbols at once.
    c.ws.close();
    const again = oldClient(s.compatUrl);
    await again.opened;
    again.send({ type: "subscribe", symbols: ["PKN"] });
    await again.until(() => again.updates().length, "the snapshot on reconnect");
    expect(again.updates()[0]!.map((u) => [u.symbol, u.price, u.change, u.previous_close])).toEqual([["PKN", 60, 5, 55]]);
    again.ws.close();
  });

  test("market status changes and provider status reach old and native clients", async () => {
    const s = await start();
    // This old client uses the path on the main server ([stream.compat] path = true): the same engine.
    const c = oldClient(s.nativeUrl.replace("/api/ws", "/api/ws/legacy"));
    await c.opened;
    const n = oldClient(s.nativeUrl);
    await n.opened;
    n.send({ op: "watch", events: ["market_status", "provider_status"] });
    await n.until(() => n.of("market_status").length >= 14, "every market's current state");
    expect(n.of("market_status").find((m) => m.market === "WSE")).toMatchObject({ phase: "closed", previous: null, weekend: true, holiday: null });

    // Wednesday 07:45Z is 08:45 in Warsaw: pre-opening.
    s.clock.t = D("2024-01-03T07:45:00Z");
    s.status.checkMarkets();
    await c.until(() => c.of("market_status").length, "a market_status change");
    expect(c.of("market_status")[0]).toMatchObject({ type: "market_status", market: "WSE", status: "PRE_MARKET", previous_status: "WEEKEND", phase: "pre" });
    await n.until(() => n.of("market_status").some((m) => m.market === "WSE" && m.previous === "closed"), "the native market_status");
    expect(n.of("market_status").find((m) => m.market === "WSE" && m.previous === "closed")).toMatchObject({ phase: "pre", date: "2024-01-03", weekend: false });

    // A source's failed run: provider_status to both.
    await failRun(s.store, "stooq", "HTTP 503 from https://stooq.pl/q/d/l/?s=pkn&apikey=[redacted]");
    await s.status.pollRuns();
    await c.until(() => c.of("provider_status").length, "provider_status");
    expect(c.of("provider_status")[0]).toMatchObject({ provider: "stooq", status: "error", consecutive_failures: 1 });
    expect(String(c.of("provider_status")[0]!.error)).toContain("HTTP 503");
    await n.until(() => n.of("provider_status").length, "the native provider_status");
    expect(n.of("provider_status")[0]).toMatchObject({ source: "stooq", status: "failing", previous: null, failures: 1 });
    // It recovers: one more event, status ok.
    const ok = await s.store.startRun({ kind: "ingest", source: "stooq" });
    await s.store.finishRun(ok, { outcome: "succeeded", read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
    await s.status.pollRuns();
    await n.until(() => n.of("provider_status").length >= 2, "the recovery");
    expect(n.of("provider_status")[1]).toMatchObject({ source: "stooq", status: "ok", previous: "failing", failures: 0 });
    expect(c.of("provider_status")[1]).toMatchObject({ provider: "stooq", status: "healthy" });

    // Unwatched: nothing more reaches the native client.
    n.send({ op: "unwatch", events: ["market_status"] });
    await n.until(() => n.of("status").some((m) => m.status === "unwatched"), "the unwatch reply");
    const before = n.of("market_status").length;
    s.clock.t = D("2024-01-03T08:30:00Z");
    s.status.checkMarkets();
    await c.until(() => c.of("market_status").length >= 2, "the opening");
    expect(c.of("market_status")[1]).toMatchObject({ status: "OPEN", previous_status: "PRE_MARKET" });
    n.send({ op: "ping" });
    await n.until(() => n.of("pong").length, "a pong");
    expect(n.of("market_status").length).toBe(before);
    c.ws.close();
    n.ws.close();
  });

  test("SSE: events=market_status,provider_status alone watches them; an unknown event is a 400", async () => {
    const s = await start();
    const base = s.nativeUrl.replace("ws://", "http://").replace("/api/ws", "");
    expect((await fetch(`${base}/api/stream?events=bogus`)).status).toBe(400);
    expect((await fetch(`${base}/api/stream`)).status).toBe(400);
    const ctl = new AbortController();
    const res = await fetch(`${base}/api/stream?events=market_status,provider_status`, { signal: ctl.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = "";
    await waitFor(async () => {
      text += new TextDecoder().decode((await reader.read()).value);
      return text.includes('"market":"WSE"');
    }, 10_000, "the WSE's market_status over SSE");
    expect(text).toContain("event: market_status\ndata: {\"type\":\"market_status\"");
    ctl.abort();
  });

  test("previous close: from the daily series when stored, else the last intraday bar of the previous trading day", async () => {
    const s = await start();
    // KGH: minute bars only; Friday's last one is Monday's previous close (the weekend skipped).
    await commit(s.store, [bar("KGH.WA", "1m", "2024-01-05T15:58:00Z", 120), bar("KGH.WA", "1m", "2024-01-05T15:59:00Z", 121), bar("KGH.WA", "1m", "2024-01-08T08:00:00Z", 125)]);
    const closes = new PreviousCloses(s.store);
    expect(await closes.before(bar("KGH.WA", "1m", "2024-01-08T08:01:00Z", 126), "WSE")).toBe(121);
    // No earlier session stored: null, and not cached (it may arrive later).
    expect(await closes.before(bar("KGH.WA", "1m", "2024-01-05T15:59:00Z", 121), "WSE")).toBeNull();
    await commit(s.store, [bar("KGH.WA", "1m", "2024-01-04T15:59:00Z", 118)]);
    expect(await closes.before(bar("KGH.WA", "1m", "2024-01-05T15:59:00Z", 121), "WSE")).toBe(118);
    // A daily series wins over the minute bars.
    await commit(s.store, [bar("KGH.WA", "1d", "2024-01-05T00:00:00Z", 122)]);
    expect(await new PreviousCloses(s.store).before(bar("KGH.WA", "1m", "2024-01-08T08:01:00Z", 126), "WSE")).toBe(122);
  });

  test("[stream.compat] config: defaults off, errors name the field", () => {
    expect(parseConfig({}).stream.compat).toEqual({ host: "127.0.0.1", path: false, defaultMarket: "WSE" });
    expect(parseConfig({ stream: { compat: { port: 8765, defaultMarket: "NYSE", interval: "1d" } } }).stream.compat).toEqual({ port: 8765, host: "127.0.0.1", path: false, defaultMarket: "NYSE", interval: "1d" });
    const issue = (raw: unknown) => {
      try {
        parseConfig(raw);
      } catch (e) {
        if (e instanceof ConfigError) return e.issues[0];
      }
      throw new Error("expected a ConfigError");
    };
    expect(issue({ stream: { compat: { defaultMarket: "MARS" } } })!.path).toBe("stream.compat.defaultMarket");
    expect(issue({ stream: { compat: { port: 70000 } } })).toEqual({ path: "stream.compat.port", message: "must be at most 65535" });
  });

  test("the phase names: PRE_MARKET, OPEN, AFTER_HOURS, CLOSED (break, night), WEEKEND, HOLIDAY", () => {
    const at = (iso: string) => compatMarketStatus(marketState("WSE", D(iso)));
    expect(at("2024-01-03T07:45:00Z")).toBe("PRE_MARKET");
    expect(at("2024-01-03T12:00:00Z")).toBe("OPEN");
    expect(at("2024-01-03T16:02:00Z")).toBe("AFTER_HOURS");
    expect(at("2024-01-03T22:00:00Z")).toBe("CLOSED");
    expect(at("2024-01-06T12:00:00Z")).toBe("WEEKEND");
    expect(at("2024-01-01T12:00:00Z")).toBe("HOLIDAY");
    expect(compatMarketStatus({ ...marketState("WSE", D("2024-01-03T12:00:00Z")), phase: "break" })).toBe("CLOSED");
  });

  test("limits: bad messages get an error reply; symbols per client; an oversize message and a flood close the client", async () => {
    const s = await start({ maxSymbols: 2, messagesPerSecond: 5, maxMessageBytes: 1024 });
    const c = oldClient(s.compatUrl);
    await c.opened;
    c.send("not json");
    c.send({ type: "subscribe_all" });
    c.send({ type: "subscribe", symbols: ["PKN", "CDR", "PZU"] });
    await c.until(() => c.of("error").length >= 3, "three error replies");
    const errors = c.of("error").map((e) => String(e.message));
    expect(errors[0]).toContain("expected a JSON object");
    expect(errors[1]).toContain("expected type: subscribe, unsubscribe, status or ping");
    expect(errors[2]).toContain("at most 2 symbols");
    expect(c.of("subscribed")).toEqual([]);

    c.send({ type: "subscribe", symbols: ["x".repeat(2000)] });
    expect((await c.closed).code).toBe(1009);

    const f = oldClient(s.compatUrl);
    await f.opened;
    for (let i = 0; i < 30; i++) f.send({ type: "ping" });
    expect((await f.closed).code).toBe(4029);
    expect(s.hub.counters.dropped.flood).toBe(1);
  });
});

describe("compatibility protocol: a client that does not read", () => {
  test("is closed with 4008 once bufferMessages wait, whatever slowClient says (no conflation notice in this protocol)", async () => {
    const s = await start({ bufferBytes: 1024, bufferMessages: 10, slowClient: "conflate", messagesPerSecond: 100_000 });
    const good = oldClient(s.compatUrl);
    await good.opened;
    const client = await rawWs(s.compatUrl.replace("ws://", "http://"), "/");
    const ping = wsFrame('{"type":"ping"}');
    const chunk = new Uint8Array(ping.length * 10_000);
    for (let i = 0; i < 10_000; i++) chunk.set(ping, i * ping.length);
    // Pings it never reads the pongs of: the socket's buffers fill, then the outbox.
    let sent = 0;
    while (!s.hub.counters.dropped.slow && sent < 1_000_000) {
      if (!(await client.write(chunk))) break;
      sent += 10_000;
    }
    const r = await client.readAll();
    client.destroy();
    expect(r.close).toEqual({ code: 4008, reason: "too slow: more than 10 messages waiting" });
    expect(r.texts[0]).toStartWith('{"type":"connection"');
    // The other client is served as before.
    good.send({ type: "ping" });
    await good.until(() => good.of("pong").length, "the good client's pong");
    good.ws.close();
  }, 60_000);
});

describe("ticksync serve with [stream.compat]", () => {
  test("the second listener speaks the old protocol, fed by another process's commits, behind the stream tokens", async () => {
    const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const port = probe.port;
    await probe.stop(true);
    const token = "compat-token-0123456789";
    const db = join(dir, "serve.db");
    const cfg = writeFile(join(dir, "serve.toml"), `[store]\nurl = "sqlite:${db}"\n\n[stream]\ntokens = ["${token}"]\npollMs = 50\n\n[stream.compat]\nport = ${port}\n`);
    const { url, proc } = await startServe(["--config", cfg]);
    try {
      // The path on the main server is off unless `path = true`.
      expect((await fetch(`${url}/api/ws/legacy`)).status).toBe(404);
      // Without the token: refused at the upgrade.
      const refused = await fetch(`http://127.0.0.1:${port}/`, { headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" } });
      expect(refused.status).toBe(401);
      const c = oldClient(`ws://127.0.0.1:${port}/?token=${token}`);
      await c.opened;
      await c.until(() => c.of("connection").length, "the greeting");
      c.send({ type: "subscribe", symbols: ["PKN"] });
      await c.until(() => c.of("subscribed").length, "the subscribe reply");
      // Another process (this test's store handle) commits: serve's tailer finds it.
      const store = sqliteStore(`sqlite:${db}`);
      await store.migrate();
      await commit(store, [bar("PKN.WA", "1d", "2024-01-02T00:00:00Z", 40), bar("PKN.WA", "1d", "2024-01-03T00:00:00Z", 42)]);
      await c.until(() => c.updates().length, "stock_updates from serve");
      expect(c.updates()[0]!.map((u) => [u.symbol, u.price, u.change, u.change_percent])).toEqual([["PKN", 42, 2, 5]]);
      c.ws.close();
      await store.close();
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  });
});

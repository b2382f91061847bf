// A local Binance in its real formats, for test/binance*.test.ts: `GET /api/v3/klines` (arrays of
// [openTime, "open", "high", "low", "close", "volume", closeTime, "quoteVolume", trades,
// "takerBase", "takerQuote", "0"], startTime/endTime/limit ≤ 1000), its {code, msg} errors (-1121
// Invalid symbol), the X-MBX-USED-WEIGHT-1M header, 429 and 418 with Retry-After (a ban answers
// 418 to every request until it ends, and counts them), and the combined WebSocket kline stream
// (`/stream?streams=btcusdt@kline_1m/…`, {stream, data: {e: "kline", E, s, k}}) with pings, drops
// and silence on demand.
import type { Server, ServerWebSocket } from "bun";

export type FakeKline = { t: number; T: number; o: string; h: string; l: string; c: string; v: string; q: string; n: number };

/** A deterministic kline opening at t, `ms` long, price around `base`. */
export function kline(t: number, ms: number, base = 100, k = 0): FakeKline {
  const o = base + (k % 7);
  const c = o + ((k % 5) - 2) / 4;
  return { t, T: t + ms - 1, o: o.toFixed(8), h: (Math.max(o, c) + 0.5).toFixed(8), l: (Math.min(o, c) - 0.5).toFixed(8), c: c.toFixed(8), v: (10 + k).toFixed(8), q: ((10 + k) * c).toFixed(8), n: 5 + k };
}

/** `count` consecutive klines of a fixed-length interval from `first`. */
export function klineSeries(first: number, ms: number, count: number, base = 100): FakeKline[] {
  return Array.from({ length: count }, (_, k) => kline(first + k * ms, ms, base, k));
}

export const asArray = (k: FakeKline) => [k.t, k.o, k.h, k.l, k.c, k.v, k.T, k.q, k.n, "0.5", "1.5", "0"];

type Scripted = { status: number; headers?: Record<string, string>; body: unknown };
export type FakeRequest = { path: string; query: Record<string, string>; at: number };
type Socket = ServerWebSocket<{ streams: string[]; silent: boolean }>;

export type FakeBinance = {
  url: string;
  wsUrl: string;
  requests: FakeRequest[];
  /** Requests that came while a ban was on. */
  duringBan: number;
  /** Klines per `SYMBOL|interval`, oldest first; REST serves those with t ≤ visibleUntil (when set). */
  series: Map<string, FakeKline[]>;
  visibleUntil: number | null;
  /** Answers for the next requests, in order, before the normal one. */
  script: Scripted[];
  /** X-MBX-USED-WEIGHT-1M of each answer (default: 2 per request). */
  weight: ((n: number) => number) | null;
  /** Connections opened so far, and those open now. */
  connections: number;
  sockets: Set<Socket>;
  /** New connections get no pings and no messages. */
  silent: boolean;
  push(symbol: string, interval: string, k: FakeKline, closed: boolean): number;
  /** Any text to every connection. */
  raw(text: string): void;
  dropAll(): void;
  reset(): void;
  stop(): Promise<void>;
};

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

export async function startFakeBinance(): Promise<FakeBinance> {
  let banUntil = 0;
  let pinger: ReturnType<typeof setInterval> | null = null;
  const fake = {
    requests: [] as FakeRequest[],
    duringBan: 0,
    series: new Map<string, FakeKline[]>(),
    visibleUntil: null as number | null,
    script: [] as Scripted[],
    weight: null as ((n: number) => number) | null,
    connections: 0,
    sockets: new Set<Socket>(),
    silent: false,
  } as FakeBinance;

  function klines(q: Record<string, string>): Response {
    const list = fake.series.get(`${q.symbol}|${q.interval}`);
    if (!list) return json({ code: -1121, msg: "Invalid symbol." }, 400);
    const limit = Math.min(Number(q.limit ?? 500), 1000);
    const from = q.startTime ? Number(q.startTime) : -Infinity;
    const to = q.endTime ? Number(q.endTime) : Infinity;
    const out = list.filter((k) => k.t >= from && k.t <= to && (fake.visibleUntil === null || k.t <= fake.visibleUntil)).slice(0, limit);
    return json(out.map(asArray));
  }

  const server: Server<{ streams: string[]; silent: boolean }> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      const u = new URL(req.url);
      if (u.pathname === "/stream") {
        const streams = (u.searchParams.get("streams") ?? "").split("/").filter(Boolean);
        if (srv.upgrade(req, { data: { streams, silent: fake.silent } })) return undefined;
        return new Response("upgrade expected", { status: 400 });
      }
      const query = Object.fromEntries(u.searchParams);
      fake.requests.push({ path: u.pathname, query, at: Date.now() });
      const n = fake.requests.length;
      const weight = { "X-MBX-USED-WEIGHT-1M": String(fake.weight ? fake.weight(n) : 2 * n) };
      if (Date.now() < banUntil) {
        fake.duringBan++;
        return json({ code: -1003, msg: `Way too much request weight used; IP banned until ${banUntil}.` }, 418, { ...weight, "Retry-After": String(Math.ceil((banUntil - Date.now()) / 1000)) });
      }
      const s = fake.script.shift();
      if (s) {
        if (s.status === 418) banUntil = Date.now() + Number(s.headers?.["Retry-After"] ?? 120) * 1000;
        return json(s.body, s.status, { ...weight, ...s.headers });
      }
      if (u.pathname !== "/api/v3/klines") return json({ code: -1000, msg: "unknown path" }, 404);
      const res = klines(query);
      res.headers.set("X-MBX-USED-WEIGHT-1M", weight["X-MBX-USED-WEIGHT-1M"]);
      return res;
    },
    websocket: {
      sendPings: false,
      open(ws) {
        fake.connections++;
        fake.sockets.add(ws);
      },
      message() {},
      close(ws) {
        fake.sockets.delete(ws);
      },
    },
  });
  // Binance pings every 20 s; this one every 100 ms, except on silent connections.
  pinger = setInterval(() => {
    for (const ws of fake.sockets) if (!ws.data.silent) ws.ping();
  }, 100);

  return Object.assign(fake, {
    url: `http://127.0.0.1:${server.port}`,
    wsUrl: `ws://127.0.0.1:${server.port}`,
    push(symbol: string, interval: string, k: FakeKline, closed: boolean) {
      const stream = `${symbol.toLowerCase()}@kline_${interval}`;
      const data = { e: "kline", E: Date.now(), s: symbol, k: { t: k.t, T: k.T, s: symbol, i: interval, f: 1, L: 2, o: k.o, c: k.c, h: k.h, l: k.l, v: k.v, n: k.n, x: closed, q: k.q, V: "0.5", Q: "1.5", B: "0" } };
      let sent = 0;
      for (const ws of fake.sockets) if (!ws.data.silent && ws.data.streams.includes(stream)) (ws.send(JSON.stringify({ stream, data })), sent++);
      return sent;
    },
    raw(text: string) {
      for (const ws of fake.sockets) ws.send(text);
    },
    dropAll() {
      for (const ws of fake.sockets) ws.terminate();
    },
    reset() {
      fake.requests.length = 0;
      fake.duringBan = 0;
      fake.series.clear();
      fake.visibleUntil = null;
      fake.script.length = 0;
      fake.weight = null;
      fake.connections = 0;
      fake.silent = false;
      banUntil = 0;
      fake.dropAll();
    },
    async stop() {
      if (pinger) clearInterval(pinger);
      fake.dropAll();
      await server.stop(true);
    },
  });
}

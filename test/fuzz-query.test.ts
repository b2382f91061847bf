// Property: whatever query string a client sends to any GET route — huge numbers, NaN, negative
// values, unicode, broken percent-encoding, repeated parameters, __proto__, very long lists — the
// answer is 200/304/400/404 (426 for /api/ws without an upgrade), never a 5xx; an error is JSON
// with `error`; the response is bounded in size and time. In process (app.request) against a real
// SQLite store holding a small series of daily and minute bars, runs and a quarantined row.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import { join } from "node:path";
import type { Bar } from "../src/domain/bar.ts";
import { createApp } from "../src/http/app.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { createHub, type Hub } from "../src/stream/hub.ts";
import { defaultStreamConfig } from "../src/stream/config.ts";
import { tempDir } from "./helpers.ts";
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./fuzz.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-fuzz-query-");
const DAY = 86_400_000;
/** Far above the largest answer the limits allow on this store (~0.1 MB), far below an unbounded one. */
const MAX_BYTES = 500_000;
const MAX_MS = 5_000;

let store: Store;
let hub: Hub;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  store = sqliteStore(`sqlite:${join(dir, "store.db")}`);
  await store.migrate();
  const daily: Bar[] = Array.from({ length: 120 }, (_, i) => ({ source: "stooq", symbol: "AAPL.US", interval: "1d", ts: Date.parse("2024-01-01T00:00:00Z") + i * DAY, open: 100 + i, high: 101 + i, low: 99 + i, close: 100 + i, volume: 1000 + i }));
  const minutes: Bar[] = Array.from({ length: 480 }, (_, k) => ({ source: "live", symbol: "PKN.WA", interval: "1m", ts: Date.parse("2024-03-28T08:00:00Z") + k * 60_000, open: 50, high: 51, low: 49, close: 50 + k / 100, volume: 10 }));
  const runId = await store.startRun({ kind: "ingest", source: "stooq" });
  await store.commitBatch({
    runId,
    source: "stooq",
    bars: [...daily, ...minutes],
    quarantine: [{ locator: "aapl.csv:2", symbol: "AAPL.US", ts: Date.parse("2024-06-01T00:00:00Z"), rule: "high", reason: "high below low", raw: { Date: "2024-06-01", Open: "1", High: "0", Low: "2", Close: "1" } }],
    read: daily.length + minutes.length + 1,
  });
  const config = { ...defaultStreamConfig(), pollMs: 1000 };
  hub = createHub({ store, config });
  await hub.start();
  app = createApp({ store, metrics: ticksyncMetrics(), stream: { hub, config }, now: () => Date.parse("2024-05-01T00:00:00Z") });
});
afterAll(async () => {
  await hub.stop();
  await store.close();
});

const ROUTES = ["/", "/healthz", "/readyz", "/metrics", "/api/sinks", "/api/symbols", "/api/bars", "/api/indicators", "/api/gaps", "/api/runs", "/api/quarantine", "/api/freshness", "/api/rates", "/api/jobs", "/api/audit", "/api/alerts", "/api/health", "/api/status", "/api/performance", "/api/integrity", "/api/backups", "/api/ws", "/api/stream", "/assets/dashboard.js", "/assets/__proto__"];
const NAMES = ["symbol", "symbols", "interval", "source", "from", "to", "limit", "cursor", "adjusted", "set", "market", "before", "rule", "run", "kind", "days", "window", "bucket", "since", "token"];
const HOSTILE_NAMES = ["__proto__", "constructor", "toString", "hasOwnProperty", "", "%", "a%5B%5D", "ßymbol", "symbol[]", "__proto__[x]"];
const base64 = (s: string) => Buffer.from(s).toString("base64url");

/** Distinct valid indicators: a few, or up to 2,000 (the request was 1,900). */
const indicators = (maxLength: number, size: "small" | "max") =>
  fc
    .uniqueArray(fc.tuple(fc.constantFrom("sma", "ema", "rsi", "vol"), fc.integer({ min: 2, max: 1000 })), { minLength: 1, maxLength, size, selector: ([k, n]) => `${k}:${n}` })
    .map((a) => a.map(([k, n]) => `${k}:${n}`).join(","));
const indicatorSet = fc.oneof(indicators(32, "small"), indicators(2000, "max"));

/** A value: a plausible one, a hostile one, or random text. */
const value = fc.oneof(
  fc.constantFrom("AAPL.US", "aapl", "PKN", "pkn.wa", "PKN.WA", "*", "1d", "1h", "1m", "5m", "1w", "1mo", "stooq", "live", "WSE", "NYSE", "true", "false", "sma:20", "rsi:14,sma:3", "vol:20:ann", "vwap", "ret,logret", "2024-01-31", "2024-03-28T08:00:00Z", "1704067200000", "1", "10", "50", "1000", "10000", "ingest", "high"),
  fc.constantFrom("0", "-1", "-0", "1e308", "1e999", "99999999999999999999", "9007199254740993", "NaN", "Infinity", "-Infinity", "0x10", "1.5", " 1", "1 ", "+1", "", "null", "undefined", "[]", "{}", "__proto__", "constructor", "2024-02-30", "+275760-09-13", "-271821-04-19", "9999-12-31T23:59:59.999Z", "\u0000", "😀", "é", "%", "%E0%A4%A", "%00", "%FF%FE", "a,b,,c", ",,,,", "sma:0", "sma:1001", "ema:99999", "vol:1", "rsi:-1"),
  fc.json().map(base64),
  fc.record({ ts: fc.oneof(fc.double(), fc.integer()), source: fc.string() }).map((c) => base64(JSON.stringify(c))),
  fc.array(fc.constantFrom("sma:5", "ema:9", "rsi:14", "vol:20", "ret", "AAPL.US", "PKN.WA", "nope", "*", "x.y.z"), { maxLength: 2000 }).map((a) => a.join(",")),
  fc.constant(0).chain(() => indicatorSet),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ maxLength: 30_000 }),
);
const name = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 20 }) });
/** Some values go in raw (broken percent-encoding reaches the parser), most encoded. */
const param = fc.tuple(name, value, fc.boolean()).map(([k, v, raw]) => `${encodeURIComponent(k)}=${raw ? v.replace(/[&#\s]/g, "") : encodeURIComponent(v)}`);
const request = fc.record({ route: fc.constantFrom(...ROUTES), params: fc.array(param, { maxLength: 8 }) });

const ALLOWED = new Set([200, 304, 400, 404]);

test("every GET route answers any query string with 200/304/400/404 and JSON errors, bounded in size and time", async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(request, async ({ route, params }) => {
      const url = `${route}?${params.join("&")}`;
      const t0 = performance.now();
      const res = await app.request(url);
      const status = res.status;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const type = res.headers.get("content-type") ?? "";
      // The live feed: a 200 is an endless stream; its headers say enough.
      if (route === "/api/stream" && status === 200) {
        expect(type).toContain("text/event-stream");
        await res.body?.cancel();
        return;
      }
      const text = await res.text();
      const ms = performance.now() - t0;
      const ok = ALLOWED.has(status) || (route === "/api/ws" && status === 426);
      if (!ok) throw new Error(`${url.slice(0, 300)} → ${status}: ${text.slice(0, 300)}`);
      expect(text.length).toBeLessThanOrEqual(MAX_BYTES);
      expect(ms).toBeLessThan(MAX_MS);
      if (status >= 400) {
        expect(type).toContain("application/json");
        expect(typeof JSON.parse(text).error).toBe("string");
      } else if (route.startsWith("/api/")) JSON.parse(text);
    }),
    fuzzParams(300, 30_000),
  );
  console.log("statuses:", JSON.stringify(Object.fromEntries(statuses)));
  // The cases reach the routes' own validation and answers, not only the guards in front.
  expect(statuses.get(200) ?? 0).toBeGreaterThan(20);
  expect(statuses.get(400) ?? 0).toBeGreaterThan(20);
}, FUZZ_TIMEOUT_MS);

test("valid requests with hostile extras: a route's valid query plus one more hostile parameter is still 200 or 400", async () => {
  const valid = fc.constantFrom("/api/bars?symbol=AAPL.US&limit=5", "/api/indicators?symbol=AAPL.US&set=sma:3&limit=5", "/api/bars?symbol=PKN.WA&interval=1d", "/api/gaps?symbol=AAPL.US", "/api/freshness?days=10", "/api/rates?window=3600&bucket=60", "/api/audit?kind=ingest", "/api/quarantine?rule=high");
  await fc.assert(
    fc.asyncProperty(valid, param, async (base, extra) => {
      const clean = await app.request(base);
      expect(clean.status).toBe(200);
      await clean.text();
      const res = await app.request(`${base}&${extra}`);
      const text = await res.text();
      if (![200, 400].includes(res.status)) throw new Error(`${base}&${extra.slice(0, 300)} → ${res.status}: ${text.slice(0, 300)}`);
      expect(text.length).toBeLessThanOrEqual(MAX_BYTES);
    }),
    fuzzParams(150, 15_000),
  );
}, FUZZ_TIMEOUT_MS);

test("the data routes with a real symbol and any mix of their own parameters: 200 or 400, bounded", async () => {
  let largest = 0;
  let withSet = 0;
  const mostly = (valid: fc.Arbitrary<string>) => fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: value });
  const own = (k: string, v: fc.Arbitrary<string>) => fc.option(v.map((x) => `${k}=${encodeURIComponent(x)}`), { nil: undefined });
  const req = fc.record({
    route: fc.constantFrom("/api/indicators", "/api/indicators", "/api/bars", "/api/gaps"),
    symbol: fc.constantFrom("AAPL.US", "aapl", "PKN.WA", "pkn"),
    rest: fc.tuple(
      own("set", mostly(indicatorSet)),
      own("limit", mostly(fc.constantFrom("1", "100", "1000", "5000", "10000"))),
      own("interval", mostly(fc.constantFrom("1d", "1h", "1w", "1m"))),
      own("from", mostly(fc.constantFrom("2024-01-01", "2024-03-28T09:00:00Z", "1704067200000"))),
      own("to", mostly(fc.constantFrom("2024-12-31", "2024-03-28T12:00:00Z"))),
      fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: value.map((x) => `cursor=${encodeURIComponent(x)}`) }),
      own("source", fc.constantFrom("stooq", "live")),
    ),
  });
  await fc.assert(
    fc.asyncProperty(req, async ({ route, symbol, rest }) => {
      const q = [`symbol=${symbol}`, ...rest.filter((x) => x !== undefined)];
      const params = route === "/api/indicators" ? q : q.filter((p) => !p.startsWith("set=") && !p.startsWith("cursor="));
      const url = `${route}?${params.join("&")}`;
      const t0 = performance.now();
      const res = await app.request(url);
      const text = await res.text();
      if (![200, 400].includes(res.status)) throw new Error(`${url.slice(0, 300)} → ${res.status}: ${text.slice(0, 300)}`);
      largest = Math.max(largest, text.length);
      if (res.status === 200 && params.some((p) => p.startsWith("set="))) withSet++;
      expect(text.length).toBeLessThanOrEqual(MAX_BYTES);
      expect(performance.now() - t0).toBeLessThan(MAX_MS);
    }),
    fuzzParams(150, 15_000),
  );
  console.log(`largest answer ${largest} bytes; ${withSet} answered with a set=`);
}, FUZZ_TIMEOUT_MS);

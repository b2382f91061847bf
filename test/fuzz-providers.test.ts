// Property tests of each provider's payload parser (Stooq CSV, Yahoo chart JSON, Polygon
// aggregates JSON, Alpha Vantage JSON), through the real request path (providerRequest and the
// provider's fetchDaily) against a local server that answers whatever the case says. Payloads are
// structurally valid with hostile values (null, "NaN", negatives, huge numbers, wrong types,
// missing fields, keys that are no dates), broken structures, and any text at any status.
// The properties: a case ends (no hang), a failure is a ProviderError (never a TypeError or a
// RangeError), and every entry of the payload becomes a row, and every row a bar or a quarantine
// record with a reason (validateBatch); none is dropped silently.
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { RawRow } from "../src/domain/bar.ts";
import { validateBatch } from "../src/domain/quality.ts";
import { createRateLimiter } from "../src/lib/ratelimit.ts";
import { ProviderError } from "../src/lib/http.ts";
import type { FetchRequest, ProviderImpl, QuoteRequest } from "../src/sources/provider.ts";
import { stooqImpl } from "../src/sources/stooq.ts";
import { yahooImpl } from "../src/sources/yahoo.ts";
import { polygonImpl } from "../src/sources/polygon.ts";
import { alphaVantageImpl } from "../src/sources/alphavantage.ts";
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./fuzz.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

type Answer = { status: number; body: string; contentType: string };
let answer: Answer = { status: 200, body: "", contentType: "text/plain" };
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(answer.body, { status: answer.status, headers: { "content-type": answer.contentType } }) });
afterAll(() => server.stop(true));
const base = `http://127.0.0.1:${server.port}`;

// Wide enough that no timestamp a Date can hold is outside it: range filters drop nothing here.
const FROM = -8.64e15;
const TO = 8.64e15;

type Outcome = { rows: RawRow[] } | { error: ProviderError };

/** One fetch of a symbol's daily bars against the answer, with a fresh limiter and no retries. */
async function fetchAll(impl: ProviderImpl, a: Answer, market: "WSE" | "NYSE" = "NYSE"): Promise<Outcome> {
  answer = a;
  const req: FetchRequest = {
    symbol: market === "WSE" ? "PKN.WA" : "AAPL.US",
    providerSymbol: market === "WSE" ? "pkn" : "AAPL",
    market,
    from: FROM,
    to: TO,
    // A fresh limiter: a quota answer (Stooq's daily limit) must not leak into the next case.
    limiter: createRateLimiter("fuzz", { perSecond: 1e6 }),
    retry: { attempts: 1, rateLimitAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
    timeoutMs: 5_000,
    baseUrl: base,
    apiKey: "fuzz-key",
    cursor: null,
  };
  const rows: RawRow[] = [];
  try {
    for await (const page of impl.fetchDaily(req)) rows.push(...(Array.isArray(page) ? page : page.rows));
    return { rows };
  } catch (e) {
    // The property: a failure is a clear error value, never a crash of the parser.
    if (e instanceof ProviderError) return { error: e };
    throw e;
  }
}

/** Every row is a bar or a quarantine record with a reason. */
function accountedFor(rows: RawRow[], market: "WSE" | "NYSE" = "NYSE") {
  const v = validateBatch(rows, { source: "fuzz", interval: "1d", market, now: Date.UTC(2030, 0, 1) });
  expect(v.bars.length + v.rejections.length).toBe(rows.length);
  for (const r of v.rejections) {
    expect(typeof r.rule).toBe("string");
    expect(r.reason.length).toBeGreaterThan(0);
  }
}

const json = (body: unknown, status = 200): Answer => ({ status, body: typeof body === "string" ? body : JSON.stringify(body), contentType: "application/json" });

// Hostile values for a field that should be a number (or its text).
const hostileValue = fc.oneof(
  fc.constantFrom(null, "NaN", "nan", "", " ", "-1", "1e400", "Infinity", "0x10", "1,5", true, false, {}, [], [1, 2], -0, 0, -1, 1e308, -1e308, 2 ** 53 + 1),
  fc.double(),
  fc.integer({ min: -1e9, max: 1e9 }),
  fc.string({ maxLength: 12 }),
);
const price = fc.double({ min: 0.01, max: 1e6, noNaN: true });
const numberOrHostile = fc.oneof({ weight: 3, arbitrary: price }, { weight: 2, arbitrary: hostileValue });
const sessionSeconds = fc.integer({ min: Date.UTC(2000, 0, 3) / 1000, max: Date.UTC(2030, 0, 1) / 1000 });
const timestampOrHostile = fc.oneof({ weight: 4, arbitrary: sessionSeconds }, { weight: 1, arbitrary: hostileValue });
const dateText = sessionSeconds.map((s) => new Date(s * 1000).toISOString().slice(0, 10));
/** Any answer at all: a status (not 429 or 5xx alone: those are retried and counted elsewhere) and any text. */
const anyAnswer = fc.record({
  status: fc.constantFrom(200, 200, 200, 400, 401, 403, 404, 429, 500, 503),
  body: fc.oneof(fc.string({ maxLength: 300 }), fc.json({ maxDepth: 4 })),
  contentType: fc.constant("application/json"),
});

const LIMIT = FUZZ_TIMEOUT_MS;

const params = <T>(runs: number) => ({ ...fuzzParams<T>(runs), timeout: 10_000 });

/** A payload of broken `structure`, or any answer at all: its rows are accounted for, or it is a ProviderError. */
async function brokenStructure(impl: ProviderImpl, structure: fc.Arbitrary<unknown>) {
  await fc.assert(
    fc.asyncProperty(fc.oneof(structure.map((b) => json(b, 200)), anyAnswer), async (a) => {
      const out = await fetchAll(impl, a);
      if ("rows" in out) accountedFor(out.rows);
    }),
    params(150),
  );
}

describe("stooq daily CSV", () => {
  const cell = fc.oneof(fc.string({ maxLength: 10 }).filter((s) => !/[\r\n]/.test(s)), fc.constantFrom("N/D", "-", '"1,5"', '""', "1e400", "NaN"), price.map(String));
  const line = fc.array(cell, { minLength: 0, maxLength: 8 }).map((cells) => cells.join(","));

  test(
    "hostile cells: every non-blank line is a row, every row a bar or a quarantine record",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.oneof(line, fc.tuple(dateText, price, price, price, price, fc.nat()).map((r) => r.join(","))), { maxLength: 60 }), async (lines) => {
          const body = `Date,Open,High,Low,Close,Volume\n${lines.join("\n")}\n`;
          const out = await fetchAll(stooqImpl, { status: 200, body, contentType: "text/csv" }, "WSE");
          const nonBlank = lines.filter((l) => l.trim() !== "").length;
          if ("error" in out) {
            // Only an answer with no rows at all may fail (no_data over a long range).
            expect(nonBlank).toBe(0);
            expect(out.error.failure).toBe("no_data");
            return;
          }
          expect(out.rows.length).toBe(nonBlank);
          accountedFor(out.rows, "WSE");
        }),
        params(120),
      );
    },
    LIMIT,
  );

  test(
    "any answer: rows accounted for, or a ProviderError",
    async () => {
      await fc.assert(
        fc.asyncProperty(anyAnswer, async (a) => {
          const out = await fetchAll(stooqImpl, { ...a, contentType: "text/csv" }, "WSE");
          if ("rows" in out) accountedFor(out.rows, "WSE");
        }),
        params(120),
      );
    },
    LIMIT,
  );
});

describe("yahoo chart JSON", () => {
  const chart = fc.integer({ min: 0, max: 40 }).chain((n) =>
    fc.record(
      {
        meta: fc.oneof(
          fc.record({ exchangeTimezoneName: fc.oneof(fc.constantFrom("America/New_York", "Europe/Warsaw", "Mars/Olympus", ""), hostileValue), currency: hostileValue, longName: hostileValue }),
          hostileValue,
        ),
        timestamp: fc.array(timestampOrHostile, { minLength: n, maxLength: n }),
        open: fc.array(numberOrHostile, { minLength: 0, maxLength: n + 2 }),
        high: fc.array(numberOrHostile, { minLength: n, maxLength: n }),
        low: fc.array(numberOrHostile, { minLength: n, maxLength: n }),
        close: fc.oneof(fc.array(numberOrHostile, { minLength: n, maxLength: n }), hostileValue),
        volume: fc.array(fc.oneof(fc.nat(), hostileValue), { minLength: n, maxLength: n }),
        adjclose: fc.array(numberOrHostile, { minLength: 0, maxLength: n }),
        events: fc.oneof(
          fc.constant(undefined),
          fc.record({
            splits: fc.dictionary(fc.string({ maxLength: 12 }), fc.record({ date: timestampOrHostile, numerator: hostileValue, denominator: hostileValue })),
            dividends: fc.dictionary(fc.string({ maxLength: 12 }), fc.record({ date: timestampOrHostile, amount: numberOrHostile })),
          }),
        ),
      },
      { requiredKeys: ["timestamp", "high", "low", "volume"] },
    ),
  );

  test(
    "hostile values: every entry with a price becomes a row, every row a bar or a quarantine record",
    async () => {
      await fc.assert(
        fc.asyncProperty(chart, async (c) => {
          const quote = { open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume };
          const body = { chart: { result: [{ meta: c.meta, timestamp: c.timestamp, events: c.events, indicators: { quote: [quote], adjclose: [{ adjclose: c.adjclose }] } }], error: null } };
          const out = await fetchAll(yahooImpl, json(body));
          if ("error" in out) throw out.error; // a well-formed chart must not fail
          // Yahoo pads with all-null entries (no trade that day): those alone are no row.
          const text = JSON.parse(JSON.stringify(body)).chart.result[0].indicators.quote[0];
          const at = (k: string, i: number) => (Array.isArray(text[k]) ? text[k][i] : undefined);
          const expected = c.timestamp.filter((_, i) => ["open", "high", "low", "close"].some((k) => at(k, i) != null)).length;
          expect(out.rows.length).toBe(expected);
          accountedFor(out.rows);
        }),
        params(150),
      );
    },
    LIMIT,
  );

  test(
    "broken structure and any answer: rows accounted for, or a ProviderError",
    async () => {
      const structure = fc.oneof(
        hostileValue.map((x) => ({ chart: { result: [{ timestamp: x, indicators: { quote: [{ close: x }] } }], error: null } })),
        hostileValue.map((x) => ({ chart: { result: [{ timestamp: [1704205800], indicators: x }], error: null } })),
        hostileValue.map((x) => ({ chart: { result: [x], error: null } })),
        hostileValue.map((x) => ({ chart: { result: x, error: x } })),
        hostileValue.map((x) => ({ chart: x })),
      );
      await brokenStructure(yahooImpl, structure);
    },
    LIMIT,
  );
});

describe("polygon aggregates JSON", () => {
  const entry = fc.oneof(
    { weight: 5, arbitrary: fc.record({ t: fc.oneof(sessionSeconds.map((s) => s * 1000), hostileValue), o: numberOrHostile, h: numberOrHostile, l: numberOrHostile, c: numberOrHostile, v: fc.oneof(fc.nat(), hostileValue), vw: numberOrHostile, n: fc.oneof(fc.nat(), hostileValue) }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: hostileValue },
  );

  test(
    "hostile entries: every entry is a row, every row a bar or a quarantine record",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 50 }), async (results) => {
          const out = await fetchAll(polygonImpl, json({ ticker: "AAPL", queryCount: results.length, resultsCount: results.length, adjusted: false, results, status: "OK", request_id: "x" }));
          if ("error" in out) throw out.error;
          expect(out.rows.length).toBe(results.length);
          accountedFor(out.rows);
        }),
        params(150),
      );
    },
    LIMIT,
  );

  test(
    "broken structure (results, next_url looping to itself) and any answer: rows accounted for, or a ProviderError",
    async () => {
      const structure = fc.oneof(
        hostileValue.map((x) => ({ status: "OK", results: x })),
        hostileValue.map((x) => ({ status: "OK", results: [{ t: 1704171600000, o: 1, h: 1, l: 1, c: 1, v: 1 }], next_url: x })),
        fc.constant({ status: "OK", results: [{ t: 1704171600000, o: 1, h: 1, l: 1, c: 1, v: 1 }], next_url: `${base}/v2/aggs/ticker/AAPL/range/1/day/a/b?cursor=same` }),
        hostileValue.map((x) => ({ status: x, error: x, message: x })),
      );
      await brokenStructure(polygonImpl, structure);
    },
    LIMIT,
  );
});

describe("alpha vantage TIME_SERIES_DAILY JSON", () => {
  const key = fc.oneof({ weight: 4, arbitrary: dateText }, { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("__proto__", "constructor", "toString", "", "2024-13-45", "NaN")) });
  const values = fc.oneof(
    { weight: 5, arbitrary: fc.record({ "1. open": numberOrHostile, "2. high": numberOrHostile, "3. low": numberOrHostile, "4. close": numberOrHostile, "5. volume": fc.oneof(fc.nat().map(String), hostileValue) }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: hostileValue },
  );

  test(
    "hostile values and keys: every key is a row, every row a bar or a quarantine record",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.uniqueArray(fc.tuple(key, values), { maxLength: 50, selector: ([k]) => k }), async (entries) => {
          // Written as text: a "__proto__" key is an ordinary key in Alpha Vantage's JSON, as JSON.parse reads it.
          const series = `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`;
          const out = await fetchAll(alphaVantageImpl, json(`{"Meta Data":{"2. Symbol":"AAPL"},"Time Series (Daily)":${series}}`));
          if ("error" in out) throw out.error;
          expect(out.rows.length).toBe(entries.length);
          accountedFor(out.rows);
        }),
        params(150),
      );
    },
    LIMIT,
  );

  test(
    "broken structure and any answer: rows accounted for, or a ProviderError",
    async () => {
      const structure = fc.oneof(
        hostileValue.map((x) => ({ "Time Series (Daily)": x })),
        hostileValue.map((x) => ({ Note: x, Information: x, "Error Message": x })),
      );
      await brokenStructure(alphaVantageImpl, structure);
    },
    LIMIT,
  );
});

describe("latest-quote endpoints (mode = \"quote\")", () => {
  const symbols = [
    { symbol: "AAPL.US", providerSymbol: "AAPL", market: "NYSE" as const },
    { symbol: "MSFT.US", providerSymbol: "MSFT", market: "NYSE" as const },
  ];
  const stooqSymbols = [
    { symbol: "AAPL.US", providerSymbol: "aapl.us", market: "NYSE" as const },
    { symbol: "MSFT.US", providerSymbol: "msft.us", market: "NYSE" as const },
  ];
  async function quote(impl: ProviderImpl, a: Answer, syms: QuoteRequest["symbols"]) {
    answer = a;
    const req: QuoteRequest = { symbols: syms, limiter: createRateLimiter("fuzz", { perSecond: 1e6 }), retry: { attempts: 1, rateLimitAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 }, timeoutMs: 5_000, baseUrl: base, apiKey: "fuzz-key" };
    try {
      const out = await impl.quotes!.fetch(req);
      accountedFor(out.rows);
      for (const m of out.missing) expect(syms.map((s) => s.symbol)).toContain(m);
    } catch (e) {
      if (!(e instanceof ProviderError)) throw e;
    }
  }
  const tickerName = fc.oneof(fc.constantFrom("AAPL", "MSFT"), hostileValue);

  test(
    "polygon snapshot: hostile tickers, days and update times",
    async () => {
      const updated = fc.oneof(fc.constant(1704205800000000000), fc.constantFrom(1e300, -1e300, 8.64e21), hostileValue);
      const ticker = fc.oneof(
        { weight: 4, arbitrary: fc.record({ ticker: tickerName, updated, day: fc.oneof(fc.record({ o: numberOrHostile, h: numberOrHostile, l: numberOrHostile, c: numberOrHostile, v: numberOrHostile, vw: numberOrHostile }), hostileValue) }, { requiredKeys: [] }) },
        { weight: 1, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: hostileValue },
      );
      const body = fc.oneof(fc.array(ticker, { maxLength: 6 }).map((tickers) => json({ status: "OK", tickers })), hostileValue.map((x) => json({ status: "OK", tickers: x })), anyAnswer);
      await fc.assert(fc.asyncProperty(body, (a) => quote(polygonImpl, a, symbols)), params(150));
    },
    LIMIT,
  );

  test(
    "yahoo chart (range=1d): hostile values",
    async () => {
      const body = fc.oneof(
        fc.record({ ts: fc.array(timestampOrHostile, { maxLength: 4 }), close: fc.array(numberOrHostile, { maxLength: 4 }), tz: hostileValue }).map((c) =>
          json({ chart: { result: [{ meta: { exchangeTimezoneName: c.tz }, timestamp: c.ts, indicators: { quote: [{ open: c.close, high: c.close, low: c.close, close: c.close, volume: c.close }] } }], error: null } }),
        ),
        anyAnswer,
      );
      await fc.assert(fc.asyncProperty(body, (a) => quote(yahooImpl, a, symbols.slice(0, 1))), params(150));
    },
    LIMIT,
  );

  test(
    "alpha vantage GLOBAL_QUOTE: hostile values",
    async () => {
      const body = fc.oneof(
        fc.record({ "02. open": numberOrHostile, "03. high": numberOrHostile, "04. low": numberOrHostile, "05. price": numberOrHostile, "06. volume": numberOrHostile, "07. latest trading day": fc.oneof(dateText, hostileValue) }, { requiredKeys: [] }).map((q) => json({ "Global Quote": q })),
        hostileValue.map((x) => json({ "Global Quote": x })),
        anyAnswer,
      );
      await fc.assert(fc.asyncProperty(body, (a) => quote(alphaVantageImpl, a, symbols.slice(0, 1))), params(150));
    },
    LIMIT,
  );

  test(
    "stooq light quote CSV: hostile cells",
    async () => {
      const cell = fc.oneof(fc.string({ maxLength: 10 }).filter((s) => !/[\r\n]/.test(s)), fc.constantFrom("N/D", "AAPL.US", "aapl.us", "MSFT.US", "20240102", "2024-01-02"), price.map(String));
      const line = fc.array(cell, { maxLength: 9 }).map((c) => c.join(","));
      const body = fc.oneof(fc.array(line, { maxLength: 6 }).map((lines) => ({ status: 200, body: `Symbol,Date,Time,Open,High,Low,Close,Volume\n${lines.join("\n")}\n`, contentType: "text/csv" })), anyAnswer);
      await fc.assert(fc.asyncProperty(body, (a) => quote(stooqImpl, a, stooqSymbols)), params(150));
    },
    LIMIT,
  );
});

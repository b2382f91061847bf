// The provider fakes themselves: each endpoint's real format, each fault, pagination, the
// request log and the server-side rate limit. If these pass, a client test that fails against
// the fake is the client's problem.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { startFakeProviders, syntheticBars, type FakeProviders } from "./providers.ts";
import { waitFor } from "../helpers.ts";
import { createRateLimiter } from "../../src/lib/ratelimit.ts";
import { testTimeout } from "../timeout.ts";

testTimeout();

let fake: FakeProviders;
beforeAll(async () => {
  fake = await startFakeProviders({ polygonPageSize: 4 });
});
afterAll(async () => {
  await fake.stop();
});
beforeEach(() => fake.reset());

const get = (path: string, init?: RequestInit) => fetch(`${fake.url}${path}`, init);
// Response bodies are checked field by field below; `any` keeps that readable.
const json = (res: Response) => res.json() as Promise<any>;
const epoch = (iso: string) => Date.parse(iso) / 1000;

// Winter and summer sessions on both sides of both DST switches (US: 10 Mar 2024, EU: 31 Mar 2024).
const BARS = syntheticBars("TEST", "2024-03-06", "2024-04-03");

describe("syntheticBars", () => {
  test("deterministic per symbol and date, whatever the range; valid OHLC; weekdays by default", () => {
    const a = syntheticBars("AAPL", "2024-01-01", "2024-03-31");
    const b = syntheticBars("AAPL", "2024-02-01", "2024-02-29");
    expect(a.filter((x) => x.date.startsWith("2024-02"))).toEqual(b);
    expect(syntheticBars("AAPL", "2024-01-01", "2024-03-31")).toEqual(a);
    expect(syntheticBars("MSFT", "2024-01-01", "2024-03-31")).not.toEqual(a);
    expect(a.length).toBe(65); // weekdays in Q1 2024
    expect(a.every((x) => ![0, 6].includes(new Date(`${x.date}T00:00:00Z`).getUTCDay()))).toBe(true);
    for (const x of a) {
      expect(x.low).toBeLessThanOrEqual(Math.min(x.open, x.close));
      expect(x.high).toBeGreaterThanOrEqual(Math.max(x.open, x.close));
      expect(x.low).toBeGreaterThan(0);
      expect(Number.isInteger(x.volume) && x.volume > 0).toBe(true);
      expect(x.adjClose).toBeLessThanOrEqual(x.close);
    }
    const all = syntheticBars("AAPL", "2024-01-01", "2024-01-07", { weekdaysOnly: false });
    expect(all.map((x) => x.date)).toEqual(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06", "2024-01-07"]);
    expect(all.filter((x) => x.date !== "2024-01-06" && x.date !== "2024-01-07")).toEqual(a.slice(0, 5));
  });
});

describe("stooq", () => {
  test("CSV with CRLF, filtered by d1/d2 inclusive, symbol case ignored", async () => {
    fake.setBars("stooq", "pkn", BARS);
    const res = await get("/stooq/q/d/l/?s=PKN&i=d&d1=20240311&d2=20240315");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/csv");
    const body = await res.text();
    const lines = body.split("\r\n");
    expect(lines[0]).toBe("Date,Open,High,Low,Close,Volume");
    expect(lines.at(-1)).toBe(""); // ends with CRLF
    const want = BARS.filter((b) => b.date >= "2024-03-11" && b.date <= "2024-03-15");
    expect(lines.slice(1, -1)).toEqual(want.map((b) => `${b.date},${b.open},${b.high},${b.low},${b.close},${b.volume}`));
    // Without a range: everything.
    const whole = await (await get("/stooq/q/d/l/?s=pkn&i=d")).text();
    expect(whole.split("\r\n").length - 2).toBe(BARS.length);
  });

  test("unknown symbol and empty range are a 200 'No data'; no Volume column when there is no volume", async () => {
    fake.setBars("stooq", "^spx", BARS.map((b) => ({ ...b, volume: 0 })));
    const unknown = await get("/stooq/q/d/l/?s=zzz&i=d");
    expect([unknown.status, await unknown.text()]).toEqual([200, "No data"]);
    const outside = await get("/stooq/q/d/l/?s=%5Espx&i=d&d1=20200101&d2=20200131");
    expect(await outside.text()).toBe("No data");
    const index = await (await get("/stooq/q/d/l/?s=^spx&i=d&d1=20240306&d2=20240306")).text();
    expect(index).toBe(`Date,Open,High,Low,Close\r\n${BARS[0]!.date},${BARS[0]!.open},${BARS[0]!.high},${BARS[0]!.low},${BARS[0]!.close}\r\n`);
  });

  test("faults: stooq-limit, 429, 5xx, truncated, empty", async () => {
    fake.setBars("stooq", "cdr", BARS);
    fake.fault("stooq", "cdr", { kind: "stooq-limit", times: 1 });
    fake.fault("stooq", "cdr", { kind: "429", retryAfterSeconds: 7, times: 1 });
    fake.fault("stooq", "cdr", { kind: "5xx", status: 502, times: 1 });
    fake.fault("stooq", "cdr", { kind: "truncated", times: 1 });
    fake.fault("stooq", "cdr", { kind: "empty", times: 1 });
    const q = "/stooq/q/d/l/?s=cdr&i=d";
    let res = await get(q);
    expect([res.status, await res.text()]).toEqual([200, "Exceeded the daily hits limit"]);
    res = await get(q);
    expect([res.status, res.headers.get("retry-after")]).toEqual([429, "7"]);
    expect(await res.text()).toBe("Too Many Requests");
    res = await get(q);
    expect(res.status).toBe(502);
    expect(await res.text()).toContain("502 Bad Gateway");
    res = await get(q);
    expect(res.status).toBe(200);
    const cut = await res.text();
    expect(await (await get(q)).text()).toBe("No data"); // empty: what Stooq says for a range without sessions
    const real = await (await get(q)).text();
    expect(cut).toBe(real.slice(0, Math.floor(real.length / 2)));
    expect(cut.endsWith("\r\n")).toBe(false);
    expect(fake.requests.map((r) => r.status)).toEqual([200, 429, 502, 200, 200, 200]);
  });
});

describe("yahoo", () => {
  test("chart JSON: session-open timestamps across DST (New York and Warsaw), float32 prices, adjclose", async () => {
    fake.setBars("yahoo", "AAPL", BARS);
    fake.setBars("yahoo", "PKN.WA", BARS);
    const p1 = epoch("2024-03-06T00:00:00Z");
    const p2 = epoch("2024-04-04T00:00:00Z");
    const res = await get(`/yahoo/v8/finance/chart/aapl?period1=${p1}&period2=${p2}&interval=1d&events=div%2Csplits&includeAdjustedClose=true`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    const body = await json(res);
    expect(body.chart.error).toBeNull();
    const r = body.chart.result[0];
    expect(r.meta).toMatchObject({
      currency: "USD",
      symbol: "AAPL",
      exchangeName: "NMS",
      instrumentType: "EQUITY",
      exchangeTimezoneName: "America/New_York",
      timezone: "EDT",
      gmtoffset: -14400,
      dataGranularity: "1d",
      range: "",
    });
    expect(r.timestamp.length).toBe(BARS.length);
    const at = (date: string) => r.timestamp[BARS.findIndex((b) => b.date === date)];
    expect(at("2024-03-08")).toBe(epoch("2024-03-08T14:30:00Z")); // EST
    expect(at("2024-03-11")).toBe(epoch("2024-03-11T13:30:00Z")); // EDT
    const q = r.indicators.quote[0];
    expect(q.close).toEqual(BARS.map((b) => Math.fround(b.close)));
    expect(q.close.some((x: number, i: number) => x !== BARS[i]!.close)).toBe(true); // Yahoo's float noise is there
    expect(q.close.map((x: number) => Math.round(x * 100) / 100)).toEqual(BARS.map((b) => b.close));
    expect(q.volume).toEqual(BARS.map((b) => b.volume));
    expect(r.indicators.adjclose[0].adjclose).toEqual(BARS.map((b) => Math.fround(b.adjClose)));

    const wa = (await json(await get(`/yahoo/v8/finance/chart/PKN.WA?period1=${p1}&period2=${p2}&interval=1d`))).chart.result[0];
    expect(wa.meta).toMatchObject({ currency: "PLN", exchangeName: "WSE", exchangeTimezoneName: "Europe/Warsaw", timezone: "CEST", gmtoffset: 7200 });
    const waAt = (date: string) => wa.timestamp[BARS.findIndex((b) => b.date === date)];
    expect(waAt("2024-03-29")).toBe(epoch("2024-03-29T08:00:00Z")); // CET
    expect(waAt("2024-04-02")).toBe(epoch("2024-04-02T07:00:00Z")); // CEST
  });

  test("range is period1 ≤ ts < period2; float32 can be turned off", async () => {
    const exact = await startFakeProviders({ yahooFloat32: false });
    try {
      exact.setBars("yahoo", "AAPL", BARS);
      const open = epoch("2024-03-11T13:30:00Z");
      const r = (await json(await fetch(`${exact.url}/yahoo/v8/finance/chart/AAPL?period1=${open}&period2=${open + 86_400}&interval=1d`))).chart.result[0];
      expect(r.timestamp).toEqual([open]); // 03-12's open is exactly period2: excluded
      expect(r.indicators.quote[0].close).toEqual([BARS.find((b) => b.date === "2024-03-11")!.close]);
    } finally {
      await exact.stop();
    }
  });

  test("errors: unknown symbol 404, period1 > period2 400, bad interval 400, empty range 200 without timestamp", async () => {
    fake.setBars("yahoo", "AAPL", BARS);
    let res = await get("/yahoo/v8/finance/chart/NOPE?period1=0&period2=1800000000&interval=1d");
    expect(res.status).toBe(404);
    expect(await json(res)).toEqual({ chart: { result: null, error: { code: "Not Found", description: "No data found, symbol may be delisted" } } });
    res = await get("/yahoo/v8/finance/chart/AAPL?period1=1800000000&period2=1700000000&interval=1d");
    expect(res.status).toBe(400);
    const bad = await json(res);
    expect(bad.chart.result).toBeNull();
    expect(bad.chart.error.code).toBe("Bad Request");
    expect(bad.chart.error.description).toContain("start date cannot be after end date");
    res = await get("/yahoo/v8/finance/chart/AAPL?period1=0&period2=1800000000&interval=7d");
    expect([res.status, (await json(res)).chart.error.code]).toEqual([400, "Bad Request"]);
    res = await get("/yahoo/v8/finance/chart/AAPL?period1=0&period2=1000000000&interval=1d");
    expect(res.status).toBe(200);
    const empty = (await json(res)).chart.result[0];
    expect("timestamp" in empty).toBe(false);
    expect(empty.indicators).toEqual({ quote: [{}] });
    expect(empty.meta.symbol).toBe("AAPL");
  });

  test("faults: 429 text with Retry-After, 5xx, truncated JSON, empty", async () => {
    fake.setBars("yahoo", "AAPL", BARS);
    fake.fault("yahoo", "AAPL", { kind: "429", times: 1 });
    fake.fault("yahoo", "*", { kind: "5xx", status: 500, times: 1 });
    fake.fault("yahoo", "AAPL", { kind: "truncated", times: 1 });
    fake.fault("yahoo", "AAPL", { kind: "empty", times: 1 });
    const q = "/yahoo/v8/finance/chart/AAPL?period1=0&period2=1800000000&interval=1d";
    let res = await get(q);
    expect([res.status, res.headers.get("retry-after"), await res.text()]).toEqual([429, "1", "Too Many Requests"]);
    res = await get(q);
    expect(res.status).toBe(500);
    expect((await json(res)).chart.error.code).toBe("Internal Server Error");
    res = await get(q);
    expect(res.status).toBe(200);
    const cut = await res.text();
    expect(() => JSON.parse(cut)).toThrow();
    res = await get(q);
    const empty = (await json(res)).chart.result[0];
    expect([res.status, "timestamp" in empty, empty.indicators.quote]).toEqual([200, false, [{}]]);
    const real = await (await get(q)).text();
    expect(cut).toBe(real.slice(0, Math.floor(real.length / 2)));
  });
});

describe("polygon", () => {
  const aggs = (t: string, from: string, to: string, q = "adjusted=false&sort=asc&limit=50000&apiKey=K") => `/polygon/v2/aggs/ticker/${t}/range/1/day/${from}/${to}?${q}`;

  test("pagination: next_url (absolute, without the key) to the end yields every bar once, in order", async () => {
    fake.setBars("polygon", "AAPL", BARS);
    const seen: number[] = [];
    let url: string | undefined = `${fake.url}${aggs("AAPL", "2024-03-06", "2024-04-03")}`;
    let pages = 0;
    while (url) {
      const res: Response = await fetch(url);
      expect(res.status).toBe(200);
      const body = await json(res);
      expect(body).toMatchObject({ ticker: "AAPL", status: "OK", adjusted: false });
      expect(body.request_id).toMatch(/^[0-9a-f]{32}$/);
      expect(body.resultsCount).toBe(body.results.length);
      expect(body.count).toBe(body.results.length);
      expect(body.results.length).toBeLessThanOrEqual(4);
      seen.push(...body.results.map((r: { t: number }) => r.t));
      pages++;
      if (body.next_url) {
        expect(body.next_url.startsWith(`${fake.url}/polygon/v2/aggs/ticker/AAPL/range/1/day/`)).toBe(true);
        expect(body.next_url).toContain("cursor=");
        expect(body.next_url.toLowerCase()).not.toContain("apikey");
        url = `${body.next_url}&apiKey=K`;
      } else url = undefined;
    }
    expect(pages).toBe(Math.ceil(BARS.length / 4));
    // t is midnight New York: 05:00Z in winter, 04:00Z in summer.
    expect(seen).toEqual(BARS.map((b) => Date.parse(`${b.date}T00:00:00Z`) + (b.date < "2024-03-10" ? 5 : 4) * 3_600_000));
  });

  test("a bar's fields; from/to inclusive; limit below the page size; desc", async () => {
    fake.setBars("polygon", "AAPL", BARS);
    const b = BARS.find((x) => x.date === "2024-03-12")!;
    const one = await json(await get(aggs("AAPL", "2024-03-12", "2024-03-12")));
    expect(one.results).toEqual([{ v: b.volume, vw: expect.any(Number), o: b.open, c: b.close, h: b.high, l: b.low, t: Date.parse("2024-03-12T04:00:00Z"), n: expect.any(Number) }]);
    expect(Number.isInteger(one.results[0].n)).toBe(true);
    expect("next_url" in one).toBe(false);
    const two = await json(await get(aggs("AAPL", "2024-03-06", "2024-04-03", "sort=asc&limit=2&apiKey=K")));
    expect(two.results.length).toBe(2);
    expect(two.adjusted).toBe(true); // the default
    const desc: number[] = [];
    let url: string | undefined = `${fake.url}${aggs("AAPL", "2024-03-06", "2024-04-03", "sort=desc&apiKey=K")}`;
    while (url) {
      const body = await json(await fetch(url));
      desc.push(...body.results.map((r: { t: number }) => r.t));
      url = body.next_url ? `${body.next_url}&apiKey=K` : undefined;
    }
    expect(desc.length).toBe(BARS.length);
    expect(desc).toEqual([...desc].sort((x, y) => y - x));
  });

  test("errors: 401 for a missing or bad key, 200 without results for an unknown ticker", async () => {
    fake.setBars("polygon", "AAPL", BARS);
    let res = await get(aggs("AAPL", "2024-03-06", "2024-04-03", "sort=asc"));
    expect(res.status).toBe(401);
    expect(await json(res)).toMatchObject({ status: "ERROR", error: "API Key was not provided" });
    res = await get(aggs("AAPL", "2024-03-06", "2024-04-03", "sort=asc&apiKey=bad"));
    expect(res.status).toBe(401);
    const bad = await json(res);
    expect(bad).toMatchObject({ status: "ERROR", error: "Unknown API Key" });
    expect(bad.request_id).toMatch(/^[0-9a-f]{32}$/);
    res = await get(aggs("AAPL", "2024-03-06", "2024-04-03", "sort=asc"), { headers: { authorization: "Bearer K" } });
    expect(res.status).toBe(200);
    res = await get(aggs("ZZZZ", "2024-03-06", "2024-04-03"));
    expect(res.status).toBe(200);
    const none = await json(res);
    expect(none).toEqual({ ticker: "ZZZZ", queryCount: 0, resultsCount: 0, adjusted: false, status: "OK", request_id: expect.any(String), count: 0 });
  });

  test("faults: 429 JSON with Retry-After, 5xx, truncated, empty; per ticker", async () => {
    fake.setBars("polygon", "AAPL", BARS);
    fake.setBars("polygon", "MSFT", BARS);
    fake.fault("polygon", "AAPL", { kind: "429", retryAfterSeconds: 3, times: 2 });
    fake.fault("polygon", "AAPL", { kind: "5xx", status: 503, times: 1 });
    fake.fault("polygon", "AAPL", { kind: "truncated", times: 1 });
    fake.fault("polygon", "AAPL", { kind: "empty" }); // until reset
    // MSFT is untouched by AAPL's faults.
    expect((await json(await get(aggs("MSFT", "2024-03-06", "2024-03-08")))).resultsCount).toBe(3);
    for (let i = 0; i < 2; i++) {
      const res = await get(aggs("AAPL", "2024-03-06", "2024-03-08"));
      expect([res.status, res.headers.get("retry-after")]).toEqual([429, "3"]);
      expect(await json(res)).toMatchObject({
        status: "ERROR",
        error: "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue. https://polygon.io/pricing",
      });
    }
    let res = await get(aggs("AAPL", "2024-03-06", "2024-03-08"));
    expect(res.status).toBe(503);
    res = await get(aggs("AAPL", "2024-03-06", "2024-03-08"));
    expect(res.status).toBe(200);
    const cut = await res.text();
    expect(() => JSON.parse(cut)).toThrow();
    for (let i = 0; i < 3; i++) {
      const body = await json(await get(aggs("AAPL", "2024-03-06", "2024-03-08")));
      expect([body.status, body.resultsCount, "results" in body]).toEqual(["OK", 0, false]);
    }
    expect(fake.requests.map((r) => r.status)).toEqual([200, 429, 429, 503, 200, 200, 200, 200]);
    expect(fake.requests.map((r) => r.path.split("/")[4])).toEqual(["MSFT", ...Array(7).fill("AAPL")]);
  });

  test("truncated body is exactly the first half of the real one", async () => {
    fake.setBars("polygon", "AAPL", BARS);
    fake.fault("polygon", "AAPL", { kind: "truncated", times: 1 });
    const cut = await (await get(aggs("AAPL", "2024-03-06", "2024-03-08"))).text();
    const real = await (await get(aggs("AAPL", "2024-03-06", "2024-03-08"))).text();
    expect(() => JSON.parse(cut)).toThrow();
    // request_id differs between answers; everything before it is identical.
    expect(real.startsWith(cut.slice(0, cut.indexOf('"request_id"')))).toBe(true);
    expect(cut.length).toBe(Math.floor(real.length / 2));
  });
});

describe("alphavantage", () => {
  const avq = (q: string) => `/alphavantage/query?function=TIME_SERIES_DAILY&${q}`;
  const LONG = syntheticBars("IBM", "2023-01-02", "2024-01-05");

  test("compact: newest 100, newest first, 4-decimal strings; full: everything", async () => {
    fake.setBars("alphavantage", "IBM", LONG);
    const res = await get(avq("symbol=IBM&outputsize=compact&apikey=K&datatype=json"));
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body["Meta Data"]).toEqual({
      "1. Information": "Daily Prices (open, high, low, close) and Volumes",
      "2. Symbol": "IBM",
      "3. Last Refreshed": "2024-01-05",
      "4. Output Size": "Compact",
      "5. Time Zone": "US/Eastern",
    });
    const series = body["Time Series (Daily)"];
    const dates = Object.keys(series);
    expect(dates.length).toBe(100);
    expect(dates[0]).toBe("2024-01-05");
    expect(dates).toEqual([...dates].sort().reverse());
    const last = LONG.at(-1)!;
    expect(series["2024-01-05"]).toEqual({
      "1. open": last.open.toFixed(4),
      "2. high": last.high.toFixed(4),
      "3. low": last.low.toFixed(4),
      "4. close": last.close.toFixed(4),
      "5. volume": String(last.volume),
    });
    const full = await json(await get(avq("symbol=ibm&outputsize=full&apikey=K")));
    expect(full["Meta Data"]["4. Output Size"]).toBe("Full size");
    expect(Object.keys(full["Time Series (Daily)"]).length).toBe(LONG.length);
  });

  test("errors come as 200: missing key, unknown symbol", async () => {
    fake.setBars("alphavantage", "IBM", LONG);
    let res = await get(avq("symbol=IBM"));
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({
      "Error Message":
        "the parameter apikey is invalid or missing. Please claim your free API key on (https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds.",
    });
    res = await get(avq("symbol=NOPE&apikey=K"));
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({
      "Error Message": "Invalid API call. Please retry or visit the documentation (https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY.",
    });
  });

  test("faults: Note, Information (both 200), 429, 5xx, truncated, empty", async () => {
    fake.setBars("alphavantage", "IBM", LONG);
    fake.fault("alphavantage", "IBM", { kind: "av-note", times: 1 });
    fake.fault("alphavantage", "IBM", { kind: "av-information", times: 1 });
    fake.fault("alphavantage", "IBM", { kind: "429", times: 1 });
    fake.fault("alphavantage", "IBM", { kind: "5xx", status: 503, times: 1 });
    fake.fault("alphavantage", "IBM", { kind: "truncated", times: 1 });
    fake.fault("alphavantage", "IBM", { kind: "empty", times: 1 });
    const q = avq("symbol=IBM&apikey=K");
    let res = await get(q);
    expect(res.status).toBe(200);
    expect((await json(res)).Note).toContain("5 calls per minute");
    res = await get(q);
    expect(res.status).toBe(200);
    expect((await json(res)).Information).toContain("rate limit is 25 requests per day");
    res = await get(q);
    expect([res.status, res.headers.get("retry-after")]).toEqual([429, "1"]);
    res = await get(q);
    expect(res.status).toBe(503);
    res = await get(q);
    expect(res.status).toBe(200);
    const cut = await res.text();
    expect(() => JSON.parse(cut)).toThrow();
    res = await get(q);
    expect((await json(res))["Time Series (Daily)"]).toEqual({});
    const real = await (await get(q)).text();
    expect(cut).toBe(real.slice(0, Math.floor(real.length / 2)));
    expect(fake.requests.map((r) => r.status)).toEqual([200, 200, 429, 503, 200, 200, 200]);
  });

  test("an Alpha Vantage-only or Stooq-only fault at another provider is a mistake in the test", () => {
    expect(() => fake.fault("yahoo", "AAPL", { kind: "av-note", times: 1 })).toThrow();
    expect(() => fake.fault("polygon", "AAPL", { kind: "stooq-limit", times: 1 })).toThrow();
    expect(() => fake.fault("nasdaq", "AAPL", { kind: "429", times: 1 })).toThrow();
  });
});

describe("hang", () => {
  test.each([
    ["stooq", "/stooq/q/d/l/?s=cdr&i=d"],
    ["yahoo", "/yahoo/v8/finance/chart/AAPL?period1=0&period2=1800000000&interval=1d"],
    ["polygon", "/polygon/v2/aggs/ticker/AAPL/range/1/day/2024-03-06/2024-03-08?apiKey=K"],
    ["alphavantage", "/alphavantage/query?function=TIME_SERIES_DAILY&symbol=IBM&apikey=K"],
  ] as const)("%s: no answer until the client aborts; logged with status 0; the next request is served", async (provider, path) => {
    for (const s of ["cdr", "AAPL", "IBM"]) fake.setBars(provider, s, BARS);
    fake.fault(provider, "*", { kind: "hang", times: 1 });
    const t0 = performance.now();
    const err = await get(path, { signal: AbortSignal.timeout(200) }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe("TimeoutError");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(fake.requests.map((r) => [r.provider, r.status])).toEqual([
      [provider, 0],
      [provider, 200],
    ]);
  });

  test("stop() does not wait for a hung request", async () => {
    const own = await startFakeProviders();
    own.fault("yahoo", "*", { kind: "hang", times: 1 });
    const pending = fetch(`${own.url}/yahoo/v8/finance/chart/AAPL?period1=0&period2=1&interval=1d`).catch((e: Error) => e);
    await waitFor(() => own.requests.length === 1, 5000, "the request to arrive"); // logged on arrival, then it hangs
    await own.stop();
    // The client sees its connection closed, not an answer.
    const err = await pending;
    expect(err).toBeInstanceOf(TypeError);
    expect(err).toMatchObject({ code: "ECONNRESET" });
    expect(own.requests).toEqual([expect.objectContaining({ provider: "yahoo", status: 0 })]);
  });
});

describe("faults in general", () => {
  test("applied in queue order to the next matching requests, '*' matching any symbol, consumed as they fire", async () => {
    fake.setBars("yahoo", "AAPL", BARS);
    fake.setBars("yahoo", "MSFT", BARS);
    fake.fault("yahoo", "MSFT", { kind: "5xx", status: 502, times: 1 });
    fake.fault("yahoo", "*", { kind: "429", times: 2 });
    const chart = (s: string) => get(`/yahoo/v8/finance/chart/${s}?period1=0&period2=1800000000&interval=1d`).then((r) => r.status);
    expect(await chart("AAPL")).toBe(429); // MSFT's fault does not match, the wildcard does
    expect(await chart("MSFT")).toBe(502); // MSFT's own fault is first in the queue
    expect(await chart("MSFT")).toBe(429);
    expect(await chart("AAPL")).toBe(200);
    expect(await chart("MSFT")).toBe(200);
  });

  test("reset() clears bars, faults, limits, violations and the log (the same array)", async () => {
    const log = fake.requests;
    fake.setBars("yahoo", "AAPL", BARS);
    fake.fault("yahoo", "*", { kind: "429", times: 5 });
    fake.rateLimit("yahoo", 1);
    await get("/yahoo/v8/finance/chart/AAPL?period1=0&period2=1800000000&interval=1d");
    await get("/yahoo/v8/finance/chart/AAPL?period1=0&period2=1800000000&interval=1d");
    expect(fake.violations("yahoo")).toBe(1);
    fake.reset();
    expect(log.length).toBe(0);
    expect(fake.requests).toBe(log);
    expect(fake.violations("yahoo")).toBe(0);
    const res = await get("/yahoo/v8/finance/chart/AAPL?period1=0&period2=1800000000&interval=1d");
    expect(res.status).toBe(404); // no bars, no fault, no limit
  });
});

describe("request log", () => {
  test("provider, path below the prefix, query, arrival time and status, in order", async () => {
    fake.setBars("stooq", "cdr", BARS);
    const before = Date.now();
    await get("/stooq/q/d/l/?s=cdr&i=d&d1=20240306&d2=20240308");
    await get("/yahoo/v8/finance/chart/%5EGSPC?period1=1&period2=2&interval=1d");
    await get("/polygon/v2/aggs/ticker/AAPL/range/1/day/2024-01-01/2024-01-31?apiKey=bad");
    await get("/alphavantage/query?function=TIME_SERIES_DAILY&symbol=IBM");
    await get("/nowhere/x");
    expect(fake.requests.map(({ at: _, mono: _mono, ...r }) => r)).toEqual([
      { provider: "stooq", path: "/q/d/l/", query: { s: "cdr", i: "d", d1: "20240306", d2: "20240308" }, status: 200 },
      { provider: "yahoo", path: "/v8/finance/chart/%5EGSPC", query: { period1: "1", period2: "2", interval: "1d" }, status: 404 },
      { provider: "polygon", path: "/v2/aggs/ticker/AAPL/range/1/day/2024-01-01/2024-01-31", query: { apiKey: "bad" }, status: 401 },
      { provider: "alphavantage", path: "/query", query: { function: "TIME_SERIES_DAILY", symbol: "IBM" }, status: 200 },
      { provider: "nowhere", path: "/x", query: {}, status: 404 },
    ]);
    const ats = fake.requests.map((r) => r.at);
    expect(ats[0]).toBeGreaterThanOrEqual(before);
    expect(ats).toEqual([...ats].sort((a, b) => a - b));
  });
});

describe("server-side rate limit", () => {
  test.each([
    ["yahoo", "/yahoo/v8/finance/chart/AAPL?period1=0&period2=1800000000&interval=1d", 429],
    ["polygon", "/polygon/v2/aggs/ticker/AAPL/range/1/day/2024-03-06/2024-03-08?apiKey=K", 429],
    ["stooq", "/stooq/q/d/l/?s=aapl&i=d", 200],
    ["alphavantage", "/alphavantage/query?function=TIME_SERIES_DAILY&symbol=AAPL&apikey=K", 200],
  ] as const)("%s: over the limit in a sliding 1 s window gets the provider's limit answer and counts a violation", async (provider, path, status) => {
    fake.setBars(provider, "AAPL", BARS);
    fake.rateLimit(provider, 3);
    const answers = [];
    for (let i = 0; i < 5; i++) {
      const res = await get(path);
      answers.push({ status: res.status, retryAfter: res.headers.get("retry-after"), body: await res.text() });
    }
    expect(answers.slice(0, 3).every((a) => a.status === 200)).toBe(true);
    const limited = answers.slice(3);
    expect(limited.map((a) => a.status)).toEqual([status, status]);
    if (provider === "yahoo") expect(limited[0]).toEqual({ status: 429, retryAfter: "1", body: "Too Many Requests" });
    if (provider === "polygon") expect(JSON.parse(limited[0]!.body).error).toContain("exceeded the maximum requests per minute");
    if (provider === "stooq") expect(limited[0]!.body).toBe("Exceeded the daily hits limit");
    if (provider === "alphavantage") expect(JSON.parse(limited[0]!.body).Note).toContain("5 calls per minute");
    expect(fake.violations(provider)).toBe(2);
    // The window slides: once the first admitted request is a second old there is room again.
    // (Time passing is what is tested here; the wait ends when the log says the window has moved.)
    const firstAt = fake.requests[0]!.at;
    await Bun.sleep(Math.max(0, firstAt + 1000 - Date.now()) + 5);
    expect((await get(path)).status).toBe(200);
    expect(fake.violations(provider)).toBe(2);
  });

  test("a client that keeps to the limit never violates it (ticksync's own rate limiter at the same rate)", async () => {
    fake.setBars("polygon", "AAPL", BARS);
    fake.rateLimit("polygon", 20);
    const limiter = createRateLimiter("polygon", { perSecond: 20 });
    const started = performance.now();
    for (let i = 0; i < 30; i++) {
      await limiter.acquire();
      expect((await get("/polygon/v2/aggs/ticker/AAPL/range/1/day/2024-03-06/2024-03-08?apiKey=K")).status).toBe(200);
    }
    expect(fake.violations("polygon")).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(29 * 50 * 0.95); // it did pace: 29 gaps of 1/20 s
  });
});

// /api/bars' representation: ETag and 304, Cache-Control for closed vs current sessions,
// compression negotiated by Accept-Encoding, and format=json|ndjson|csv, on a real SQLite store
// through the Hono app.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { brotliDecompressSync, zstdDecompressSync } from "node:zlib";
import type { Bar } from "../src/domain/bar.ts";
import { createApp } from "../src/http/app.ts";
import { pageClosed } from "../src/http/representation.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-caching-");
let store: Store;
let app: ReturnType<typeof createApp>;
let now = Date.parse("2024-04-03T21:00:00Z"); // after NYSE closed on Wednesday 2024-04-03

// NYSE weekdays 2024-01-02..2024-03-28 (holidays are not the point here; the page is what is stored).
const days: string[] = [];
for (let t = Date.parse("2024-01-02T00:00:00Z"); t <= Date.parse("2024-03-28T00:00:00Z"); t += 86_400_000) {
  const d = new Date(t);
  if (d.getUTCDay() !== 0 && d.getUTCDay() !== 6) days.push(d.toISOString().slice(0, 10));
}
const bar = (date: string, i: number, close = 100 + i): Bar => ({
  source: "stooq",
  symbol: "AAPL.US",
  interval: "1d",
  ts: Date.parse(`${date}T00:00:00Z`),
  open: 100 + i,
  high: 101.5 + i,
  low: 99 + i,
  close,
  volume: 1000 + i,
  ...(i % 3 === 0 ? { adjClose: close - 0.25 } : {}),
});
// A source name CSV must quote (a comma and a quote in it).
const odd: Bar = { ...bar("2024-01-02", 0), source: 'my,"src"' };

async function write(bars: Bar[]) {
  const runId = await store.startRun({ kind: "ingest", source: "test" });
  await store.commitBatch({ runId, source: "test", bars, quarantine: [], read: bars.length });
}

beforeAll(async () => {
  store = sqliteStore(`sqlite:${join(dir, "store.db")}`);
  await store.migrate();
  await write([...days.map((d, i) => bar(d, i)), odd]);
  app = createApp({ store, metrics: ticksyncMetrics(), now: () => now, maxPageSize: 500, indicators: { default: ["sma:3"], universes: {} } });
});
afterAll(async () => {
  await store.close();
});

const req = (path: string, headers: Record<string, string> = {}) => app.request(path, { headers });
const PAGE = "/api/bars?symbol=AAPL.US&source=stooq&limit=10";

describe("ETag and 304", () => {
  test("every page has a strong ETag, stable across requests; If-None-Match answers 304 with no body", async () => {
    const a = await req(PAGE);
    const b = await req(PAGE);
    const tag = a.headers.get("etag");
    expect(tag).toMatch(/^"[\w-]+"$/);
    expect(b.headers.get("etag")).toBe(tag);
    expect((await req(`${PAGE}&cursor=${((await a.json()) as any).next}`)).headers.get("etag")).not.toBe(tag);
    const nm = await req(PAGE, { "If-None-Match": tag! });
    expect(nm.status).toBe(304);
    expect(await nm.text()).toBe("");
    expect(nm.headers.get("etag")).toBe(tag);
    expect(nm.headers.get("cache-control")).toBe(a.headers.get("cache-control"));
    expect((await req(PAGE, { "If-None-Match": `"other", ${tag}` })).status).toBe(304);
    expect((await req(PAGE, { "If-None-Match": '"other"' })).status).toBe(200);
  });

  test("a bar in the page updated: a new ETag, and the old one no longer answers 304", async () => {
    const path = "/api/bars?symbol=AAPL.US&source=stooq&limit=5&from=2024-02-01";
    const before = (await req(path)).headers.get("etag")!;
    await write([bar("2024-02-02", days.indexOf("2024-02-02"), 555.5)]);
    const after = await req(path);
    expect(after.headers.get("etag")).not.toBe(before);
    expect(((await after.json()) as any).data.find((x: any) => x.ts.startsWith("2024-02-02")).close).toBe(555.5);
    expect((await req(path, { "If-None-Match": before })).status).toBe(200);
  });
});

describe("Cache-Control", () => {
  test("a full page of closed sessions may be cached; one reaching the current session must revalidate", async () => {
    now = Date.parse("2024-04-03T21:00:00Z");
    expect((await req(PAGE)).headers.get("cache-control")).toBe("public, max-age=3600");
    // `to` before today: closed even though it is the last page.
    expect((await req("/api/bars?symbol=AAPL.US&source=stooq&to=2024-03-01")).headers.get("cache-control")).toBe("public, max-age=3600");
    // The last page with no `to`: tomorrow's bar would join it.
    expect((await req("/api/bars?symbol=AAPL.US&source=stooq&from=2024-03-20")).headers.get("cache-control")).toBe("no-cache");
    // The page holds today's session (2024-03-28, in New York's trading day).
    now = Date.parse("2024-03-28T15:00:00Z");
    expect((await req("/api/bars?symbol=AAPL.US&source=stooq&from=2024-03-20&limit=7")).headers.get("cache-control")).toBe("no-cache");
    expect((await req("/api/bars?symbol=AAPL.US&source=stooq&from=2024-03-20&limit=3")).headers.get("cache-control")).toBe("public, max-age=3600");
    now = Date.parse("2024-04-03T21:00:00Z");
  });

  test("a monthly bar is closed only once its calendar month is over (not after INTERVAL_MS's 28 days)", () => {
    const jan = { source: "s", symbol: "AAPL.US", interval: "1mo" as const, ts: Date.parse("2025-01-02T00:00:00Z"), open: 1, high: 1, low: 1, close: 1, volume: 1 };
    expect(pageClosed("AAPL.US", "1mo", [jan], true, undefined, Date.parse("2025-01-31T18:00:00Z"))).toBe(false);
    expect(pageClosed("AAPL.US", "1mo", [jan], true, undefined, Date.parse("2025-02-03T18:00:00Z"))).toBe(true);
  });

  test("with token-protected reads no shared cache may keep a page", async () => {
    const authed = createApp({ store, metrics: ticksyncMetrics(), now: () => now, security: { tokens: ["s3cret"], authReads: true, corsOrigins: [], maxBodyBytes: 1 << 20 } });
    const auth = { Authorization: "Bearer s3cret" };
    expect((await authed.request(PAGE, { headers: auth })).headers.get("cache-control")).toBe("private, max-age=3600");
    expect((await authed.request("/api/bars?symbol=AAPL.US&source=stooq&from=2024-03-20", { headers: auth })).headers.get("cache-control")).toBe("private, no-cache");
    expect((await authed.request(PAGE)).status).toBe(401);
  });
});

describe("compression", () => {
  test("gzip, br and zstd bodies decode to the JSON answer; Vary names Accept-Encoding; each encoding has its own tag", async () => {
    const plain = await req(PAGE);
    expect(plain.headers.get("content-encoding")).toBeNull();
    expect(plain.headers.get("vary")).toBe("Accept-Encoding");
    const text = await plain.text();
    expect(text.length).toBeGreaterThan(1024);
    const decoders: Record<string, (b: Uint8Array) => Uint8Array> = { gzip: (b) => Bun.gunzipSync(b as Uint8Array<ArrayBuffer>), br: brotliDecompressSync, zstd: zstdDecompressSync };
    const tags = new Set([plain.headers.get("etag")]);
    for (const [enc, decode] of Object.entries(decoders)) {
      const r = await req(PAGE, { "Accept-Encoding": enc });
      expect(r.headers.get("content-encoding")).toBe(enc);
      expect(r.headers.get("vary")).toBe("Accept-Encoding");
      const raw = new Uint8Array(await r.arrayBuffer());
      expect(raw.length).toBeLessThan(text.length);
      expect(new TextDecoder().decode(decode(raw))).toBe(text);
      tags.add(r.headers.get("etag"));
      // A tag of another encoding of the same bytes still validates.
      expect((await req(PAGE, { "Accept-Encoding": enc, "If-None-Match": plain.headers.get("etag")! })).status).toBe(304);
    }
    expect(tags.size).toBe(4);
  });

  test("q values choose; q=0 and unknown encodings mean identity; tiny bodies go uncompressed", async () => {
    expect((await req(PAGE, { "Accept-Encoding": "gzip;q=1, br;q=0.5" })).headers.get("content-encoding")).toBe("gzip");
    expect((await req(PAGE, { "Accept-Encoding": "gzip, deflate, br, zstd" })).headers.get("content-encoding")).toBe("zstd");
    expect((await req(PAGE, { "Accept-Encoding": "gzip;q=0" })).headers.get("content-encoding")).toBeNull();
    expect((await req(PAGE, { "Accept-Encoding": "deflate, identity" })).headers.get("content-encoding")).toBeNull();
    const tiny = await req("/api/bars?symbol=AAPL.US&source=stooq&limit=1", { "Accept-Encoding": "gzip" });
    expect(tiny.headers.get("content-encoding")).toBeNull();
    expect(((await tiny.json()) as any).data).toHaveLength(1);
  });
});

function parseCsv(text: string): string[][] {
  // RFC 4180, enough for a test: quoted fields with doubled quotes, CRLF rows.
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") row.push(field), (field = "");
    else if (ch === "\r" && text[i + 1] === "\n") row.push(field), rows.push(row), (row = []), (field = ""), i++;
    else field += ch;
  }
  return rows;
}

describe("format=", () => {
  const ALL = "/api/bars?symbol=AAPL.US&limit=40";
  test("ndjson: one bar object a line, equal to the JSON answer's data; next in X-Ticksync-Next", async () => {
    const json = (await (await req(ALL)).json()) as any;
    const r = await req(`${ALL}&format=ndjson`);
    expect(r.headers.get("content-type")).toBe("application/x-ndjson; charset=utf-8");
    expect(r.headers.get("x-ticksync-next")).toBe(json.next);
    const lines = (await r.text()).split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.map((l) => JSON.parse(l))).toEqual(json.data);
    expect(json.data.some((b: any) => b.source === odd.source)).toBe(true);
    expect(json.data.some((b: any) => b.adjClose !== undefined)).toBe(true);
  });

  test("csv: header + rows with the JSON fields, quoted per RFC 4180", async () => {
    const json = (await (await req(ALL)).json()) as any;
    const r = await req(`${ALL}&format=csv`);
    expect(r.headers.get("content-type")).toStartWith("text/csv");
    const [header, ...rows] = parseCsv(await r.text());
    expect(header).toEqual(["source", "symbol", "interval", "ts", "open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"]);
    const NUM = new Set(["open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"]);
    const back = rows.map((cells) => {
      const o: Record<string, unknown> = {};
      header!.forEach((h, k) => {
        if (cells[k] === "") return;
        o[h] = NUM.has(h) ? Number(cells[k]) : cells[k];
      });
      return o;
    });
    expect(back).toEqual(json.data);
  });

  test("the JSON answer without new headers is what it was: the page object, application/json", async () => {
    const r = await req(PAGE);
    expect(r.headers.get("content-type")).toStartWith("application/json");
    const body = (await r.json()) as any;
    expect(Object.keys(body)).toEqual(["symbol", "interval", "data", "next"]);
    expect((await req(`${PAGE}&format=json`)).headers.get("etag")).toBe(r.headers.get("etag"));
  });

  test("a bad format is a 400 naming the choices; the page limits still apply", async () => {
    const r = await req(`${PAGE}&format=xml`);
    expect(r.status).toBe(400);
    expect(JSON.stringify(await r.json())).toContain("json, ndjson, csv");
    expect((await req("/api/bars?symbol=AAPL.US&limit=501&format=csv")).status).toBe(400);
    expect((await req("/api/bars?symbol=AAPL.US&format=csv&from=2024-03-01&to=2024-02-01")).status).toBe(400);
  });
});

describe("/api/indicators", () => {
  test("ETag, 304, Cache-Control and compression as /api/bars", async () => {
    const path = "/api/indicators?symbol=AAPL.US&source=stooq&limit=30";
    const a = await req(path);
    expect(a.status).toBe(200);
    const tag = a.headers.get("etag")!;
    expect(tag).toMatch(/^"[\w-]+"$/);
    expect(a.headers.get("cache-control")).toBe("public, max-age=3600");
    expect((await req(path, { "If-None-Match": tag })).status).toBe(304);
    const text = await a.text();
    const gz = await req(path, { "Accept-Encoding": "gzip" });
    expect(gz.headers.get("content-encoding")).toBe("gzip");
    expect(new TextDecoder().decode(Bun.gunzipSync(new Uint8Array(await gz.arrayBuffer())))).toBe(text);
    expect(JSON.parse(text).data[5]["sma:3"]).toBeNumber();
  });
});

// Formats (#17 item 3): /api/bars as json, ndjson, csv and arrow, /api/indicators as arrow, and
// `ticksync export` as parquet, arrow and csv, each read back with pyarrow/polars (PyPI, the venv
// of scripts/services/python.sh) and compared exactly (timestamps, floats, nulls) with the JSON
// answer, on a SQLite store with edge values: null and set adjClose, a 1e20 volume, 2^53-1
// trades, a bar before 1970, prices that are not short decimals, several symbols, 1m bars.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import type { Bar } from "../src/domain/bar.ts";
import { createApp } from "../src/http/app.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { cli, tempDir, waitFor } from "./helpers.ts";
import { STORES } from "./stores.ts";
import { fullRow, pythonForTests, readBack } from "./formats-python.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const py = pythonForTests("format read-back tests (test/formats.test.ts)");
const dir = tempDir("ticksync-formats-");
const storeUrl = `sqlite:${join(dir, "store.db")}`;
let store: Store;
let app: ReturnType<typeof createApp>;

const DAY = 86_400_000;
function daily(symbol: string, source: string, start: string, n: number): Bar[] {
  const bars: Bar[] = [];
  for (let i = 0; i < n; i++) {
    const close = 0.1 + 0.2 + i / 3; // 0.30000000000000004 and thirds: no short decimal
    bars.push({
      source,
      symbol,
      interval: "1d",
      ts: Date.parse(`${start}T00:00:00Z`) + i * DAY,
      open: close,
      high: close + 1e-9,
      low: close / 7,
      close,
      volume: i === 3 ? 1e20 : 1000 + i,
      ...(i % 3 === 0 ? { adjClose: close * 0.987654321 } : {}),
      ...(i % 4 === 1 ? { turnover: 1234567.891 + i } : {}),
      ...(i % 5 === 2 ? { trades: i === 7 ? Number.MAX_SAFE_INTEGER : i } : {}),
    });
  }
  return bars;
}
const minutes: Bar[] = Array.from({ length: 90 }, (_, i) => ({
  source: "binance",
  symbol: "BTC-USDT.CRYPTO",
  interval: "1m",
  ts: Date.parse("2024-03-01T23:30:00Z") + i * 60_000,
  open: 61234.56 + i,
  high: 61240.01 + i,
  low: 61200.5 + i,
  close: 61235.7 + i,
  volume: 0.00012345 * (i + 1),
  trades: 10 + i,
  ...(i % 2 ? { turnover: 7.5 * i } : {}),
}));
// Two sources of AAPL (one before 1970: a negative ts), PKN.WA, and the 1m series.
const seeded = [...daily("AAPL.US", "stooq", "1969-12-25", 30), ...daily("AAPL.US", "yahoo", "2024-01-02", 25), ...daily("PKN.WA", "stooq", "2024-01-02", 40), ...minutes];

async function write(bars: Bar[]) {
  const runId = await store.startRun({ kind: "ingest", source: "test" });
  await store.commitBatch({ runId, source: "test", bars, quarantine: [], read: bars.length });
}

beforeAll(async () => {
  store = sqliteStore(storeUrl);
  await store.migrate();
  await write(seeded);
  app = createApp({ store, metrics: ticksyncMetrics(), now: () => Date.parse("2024-06-03T21:00:00Z"), maxPageSize: 10_000, indicators: { default: ["sma:3"], universes: {} } });
});
afterAll(async () => {
  await store.close();
});

/** Every page of /api/bars as JSON rows (following next). */
async function jsonRows(query: string, from = app): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  let cursor: string | null = null;
  do {
    const r = await from.request(`/api/bars?${query}&limit=1000${cursor ? `&cursor=${cursor}` : ""}`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { data: Record<string, unknown>[]; next: string | null };
    rows.push(...body.data.map(fullRow));
    cursor = body.next;
  } while (cursor);
  return rows;
}

const BAR_TYPES = {
  source: "string",
  symbol: "string",
  interval: "string",
  ts: "timestamp[ms, tz=UTC]",
  open: "double",
  high: "double",
  low: "double",
  close: "double",
  volume: "double",
  adjClose: "double",
  turnover: "double",
  trades: "int64",
};

const QUERIES = ["symbol=AAPL.US", "symbol=PKN.WA&source=stooq", "symbol=BTC-USDT.CRYPTO&interval=1m"];

describe.skipIf(!py)("/api/bars?format= read back with pyarrow/polars", () => {
  for (const query of QUERIES)
    test(`${query}: ndjson, csv and arrow equal the JSON answer`, async () => {
      const expected = await jsonRows(query);
      expect(expected.length).toBeGreaterThan(20);
      for (const [format, kind] of [["ndjson", "ndjson"], ["csv", "csv"], ["arrow", "arrow-stream"]] as const) {
        const r = await app.request(`/api/bars?${query}&limit=1000&format=${format}`);
        expect(r.status).toBe(200);
        const path = join(dir, `page.${format}`);
        writeFileSync(path, new Uint8Array(await r.arrayBuffer()));
        const read = readBack(py!, kind, path);
        expect(read.rows).toEqual(expected);
        if (format === "arrow") {
          expect(r.headers.get("content-type")).toBe("application/vnd.apache.arrow.stream");
          expect(read.types).toEqual(BAR_TYPES);
        }
      }
    });
});

describe("/api/bars?format=arrow over HTTP", () => {
  test("next in X-Ticksync-Next, pages chain to the whole series; ETag, 304 and compression as the other formats", async () => {
    const got: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await app.request(`/api/bars?symbol=PKN.WA&limit=15&format=arrow${cursor ? `&cursor=${cursor}` : ""}`);
      const t = tableFromIPC(new Uint8Array(await r.arrayBuffer()));
      for (const row of t) got.push(Number(row.ts));
      cursor = r.headers.get("x-ticksync-next");
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(got).toEqual(seeded.filter((b) => b.symbol === "PKN.WA").map((b) => b.ts));

    const path = "/api/bars?symbol=AAPL.US&format=arrow";
    const a = await app.request(path);
    const etag = a.headers.get("etag")!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect((await app.request(path, { headers: { "If-None-Match": etag } })).status).toBe(304);
    const z = await app.request(path, { headers: { "Accept-Encoding": "gzip" } });
    expect(z.headers.get("content-encoding")).toBe("gzip");
    expect(new Uint8Array(Bun.gunzipSync(new Uint8Array(await z.arrayBuffer())))).toEqual(new Uint8Array(await a.arrayBuffer()));
    expect((await app.request("/api/bars?symbol=AAPL.US&format=parquet")).status).toBe(400);
  });

  test("an empty page is a valid stream with the schema and no rows", async () => {
    const r = await app.request("/api/bars?symbol=PKN.WA&from=2030-01-01&format=arrow");
    expect(r.status).toBe(200);
    const t = tableFromIPC(new Uint8Array(await r.arrayBuffer()));
    expect(t.numRows).toBe(0);
    expect(t.schema.fields.map((f) => f.name)).toEqual(Object.keys(BAR_TYPES));
  });
});

describe.skipIf(!py)("/api/indicators?format=arrow", () => {
  test("ts, close and one column per indicator equal the JSON answer, nulls where it has null", async () => {
    const q = "/api/indicators?symbol=PKN.WA&set=sma:5,rsi:3&limit=30";
    const json = (await (await app.request(q)).json()) as { data: Record<string, unknown>[]; next: string };
    const r = await app.request(`${q}&format=arrow`);
    expect(r.headers.get("x-ticksync-next")).toBe(json.next);
    const path = join(dir, "ind.arrow");
    writeFileSync(path, new Uint8Array(await r.arrayBuffer()));
    const read = readBack(py!, "arrow-stream", path);
    expect(read.rows).toEqual(json.data);
    expect(json.data.some((d) => d["sma:5"] === null)).toBe(true);
    expect(read.types).toEqual({ ts: "timestamp[ms, tz=UTC]", close: "double", "sma:5": "double", "rsi:3": "double" });
    expect(read.meta).toMatchObject({ symbol: "PKN.WA", interval: "1d", source: "stooq", set: "sma:5,rsi:3" });
  });
});

describe.skipIf(!py)("ticksync export read back with pyarrow/polars", () => {
  for (const [format, kind] of [["parquet", "parquet"], ["arrow", "arrow-file"], ["csv", "csv"]] as const)
    test(`--format ${format}: one file of several symbols, then one file per symbol, equal to /api/bars`, async () => {
      const out = join(dir, `all.${format}`);
      const r = await cli(["export", "--store", storeUrl, "--symbols", "PKN.WA,AAPL.US", "--format", format, "--out", out, "--row-group", "7"]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("exported 95 1d bars");
      const expected = [...(await jsonRows("symbol=PKN.WA")), ...(await jsonRows("symbol=AAPL.US"))];
      const read = readBack(py!, kind, out);
      expect(read.rows).toEqual(expected);
      if (format !== "csv") expect(read.types).toEqual(BAR_TYPES);

      const perSymbol = join(dir, `per-${format}`) + "/";
      const p = await cli(["export", "--store", storeUrl, "--interval", "1m", "--format", format, "--out", perSymbol, "--from", "2024-03-02"]);
      expect(p.code).toBe(0);
      expect(readdirSync(perSymbol)).toEqual([`BTC-USDT.CRYPTO.1m.${format}`]);
      const minutesJson = await jsonRows("symbol=BTC-USDT.CRYPTO&interval=1m&from=2024-03-02");
      expect(minutesJson.length).toBe(60);
      expect(readBack(py!, kind, join(perSymbol, `BTC-USDT.CRYPTO.1m.${format}`)).rows).toEqual(minutesJson);
    });

  for (const kind of ["postgres", "questdb"] as const) {
    const factory = STORES.find((f) => f.kind === kind)!;
    test.skipIf(factory.unavailable !== null)(`from a ${kind} store: parquet and arrow equal to that store's /api/bars`, async () => {
      const url = factory.freshUrl(dir);
      const other = factory.open(url);
      try {
        await other.migrate();
        const runId = await other.startRun({ kind: "ingest", source: "test" });
        // QuestDB loses a whole batch that holds a bar before 1970 (commitBatch still counts it
        // inserted): its bars from 1970 on only, until its store refuses or keeps such bars.
        const bars = kind === "questdb" ? seeded.filter((b) => b.ts >= 0) : seeded;
        await other.commitBatch({ runId, source: "test", bars, quarantine: [], read: bars.length });
        const otherApp = createApp({ store: other, metrics: ticksyncMetrics(), maxPageSize: 10_000 });
        const out = join(dir, `${kind}.parquet`);
        // QuestDB applies a commit asynchronously (WAL): wait until another connection sees every bar.
        const probe = factory.open(url);
        try {
          await waitFor(async () => (await Promise.all(["AAPL.US", "PKN.WA"].map((symbol) => probe.queryBars({ symbol, interval: "1d", limit: 1000 })))).flat().length + (await probe.queryBars({ symbol: "BTC-USDT.CRYPTO", interval: "1m", limit: 1000 })).length === bars.length, 30_000, `${kind} to show the bars`);
        } finally {
          await probe.close();
        }
        const r = await cli(["export", "--store", url, "--symbols", "BTC-USDT.CRYPTO", "--interval", "1m", "--out", out]);
        expect(r.stderr).toBe("");
        const expected = await jsonRows("symbol=BTC-USDT.CRYPTO&interval=1m", otherApp);
        expect(expected.length).toBe(90);
        expect(readBack(py!, "parquet", out).rows).toEqual(expected);
        const d = join(dir, `${kind}-1d.arrow`);
        expect((await cli(["export", "--store", url, "--symbols", "AAPL.US,PKN.WA", "--out", d])).code).toBe(0);
        expect(readBack(py!, "arrow-file", d).rows).toEqual([...(await jsonRows("symbol=AAPL.US", otherApp)), ...(await jsonRows("symbol=PKN.WA", otherApp))]);
      } finally {
        await other.close();
      }
    });
  }

  test("parquet row groups hold --row-group rows", () => {
    const r = Bun.spawnSync([py!, "-c", "import sys, pyarrow.parquet as pq; m = pq.ParquetFile(sys.argv[1]).metadata; print(m.num_row_groups, m.row_group(0).num_rows)", join(dir, "all.parquet")], { stdout: "pipe" });
    expect(r.stdout.toString().trim()).toBe(`${Math.ceil(95 / 7)} 7`);
  });
});

describe("ticksync export: errors", () => {
  test("usage errors exit 2, a store without the bars exits 1, an unwritable output exits 1 and leaves no file; one line each", async () => {
    const bad = await cli(["export", "--store", storeUrl, "--out", join(dir, "x.parquet"), "--format", "xlsx"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--format expects one of parquet, arrow, csv");
    expect((await cli(["export", "--store", storeUrl])).code).toBe(2);
    expect((await cli(["export", "--store", storeUrl, "--out", join(dir, "x.parquet"), "--row-group", "1000001"])).code).toBe(2);
    expect((await cli(["export", "--store", storeUrl, "--out", join(dir, "x.csv"), "--universe", "no-such"])).code).toBe(2);
    const none = await cli(["export", "--store", storeUrl, "--interval", "1w", "--out", join(dir, "w.csv")]);
    expect(none.code).toBe(1);
    expect(none.stderr.trim().split("\n")).toHaveLength(1);
    const nothing = await cli(["export", "--store", storeUrl, "--symbols", "PKN.WA", "--from", "2030-01-01", "--out", join(dir, "n.csv")]);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toBe("ticksync: export: no 1d bars for PKN.WA in the range: nothing written\n");
    expect(existsSync(join(dir, "n.csv"))).toBe(false);
    const unwritable = await cli(["export", "--store", storeUrl, "--symbols", "PKN.WA", "--out", join(dir, "no", "such", "dir", "x.parquet")]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr.trim().split("\n")).toHaveLength(1);
    expect(unwritable.stderr).toStartWith("ticksync: export: cannot write");
  });

  test("the format follows --out's extension; csv is the same text as /api/bars?format=csv", async () => {
    const out = join(dir, "pkn.csv");
    expect((await cli(["export", "--store", storeUrl, "--symbols", "PKN.WA", "--out", out])).code).toBe(0);
    const page = await (await app.request("/api/bars?symbol=PKN.WA&format=csv&limit=1000")).text();
    expect(readFileSync(out, "utf8")).toBe(page);
  });
});

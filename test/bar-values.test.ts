// /api/bars' JSON written from the stores' row arrays (BarValues, queryBarValues) must be the bytes
// the object path gave: barValuesJson against JSON.stringify(bars.map(barJson)) on edge values,
// queryBarValues against queryBars on real SQLite and PostgreSQL stores, and the page's body
// against the old formula through the app.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { barJson, barValues, barValuesJson, barsJson, type Bar, type BarValues } from "../src/domain/bar.ts";
import { createApp } from "../src/http/app.ts";
import { encodeBarCursor } from "../src/http/query.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { rowToBar } from "../src/stores/rows.ts";
import type { Store } from "../src/stores/types.ts";
import { tempDir } from "./helpers.ts";
import { STORES } from "./stores.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const DAY = 86_400_000;
const base: Bar = { source: "stooq", symbol: "AAPL.US", interval: "1d", ts: Date.UTC(2024, 0, 2), open: 1.5, high: 2.25, low: 0.1, close: 0.30000000000000004, volume: 0 };
/** Edge values: absent and present optionals, huge and tiny numbers, ts before 1970, a source JSON must escape. */
const EDGE: Bar[] = [
  base,
  { ...base, ts: base.ts + DAY, adjClose: 1.25, turnover: 0, trades: 0 },
  { ...base, ts: base.ts + 2 * DAY, volume: 1e21, turnover: 123456789012345.67, trades: 2 ** 53 - 1 },
  { ...base, ts: base.ts + 3 * DAY, open: 5e-324, high: 1.7976931348623157e308, low: 1e-7, close: 123.456, volume: 2 ** 60, adjClose: null, turnover: null, trades: null },
  { ...base, ts: Date.UTC(1962, 0, 2), volume: 1e-9 },
  { ...base, source: 'q"uo\\te,é\u2028', ts: base.ts + 4 * DAY, trades: 7 },
];
/** A store row as rowToBar reads one (snake_case), for the values a driver gives. */
const row = (v: BarValues) => ({ source: v[0], symbol: v[1], interval: v[2], ts: v[3], open: v[4], high: v[5], low: v[6], close: v[7], volume: v[8], adj_close: v[9], turnover: v[10], trades: v[11] });

describe("barValuesJson", () => {
  test("byte-equal to JSON.stringify(bars.map(barJson)) on edge values", () => {
    const rows = EDGE.map(barValues);
    expect(barValuesJson(rows)).toBe(JSON.stringify(EDGE.map(barJson)));
    expect(barsJson(EDGE)).toBe(JSON.stringify(EDGE.map(barJson)));
    // Only the first n rows; none at all.
    expect(barValuesJson(rows, 2)).toBe(JSON.stringify(EDGE.slice(0, 2).map(barJson)));
    expect(barValuesJson([])).toBe("[]");
  });

  test("NaN (QuestDB's null double) and null are absent, as rowToBar reads the row", () => {
    const rows: BarValues[] = [
      ["s", "X.US", "1d", base.ts, 1, 2, 0.5, 1.5, 10, Number.NaN, Number.NaN, null],
      ["s", "X.US", "1d", base.ts + DAY, 1, 2, 0.5, 1.5, 10, null, 3, 4],
    ];
    const json = barValuesJson(rows);
    expect(json).toBe(JSON.stringify(rows.map((r) => barJson(rowToBar(row(r))))));
    expect(json).not.toContain("adjClose");
    expect(json).not.toContain("NaN");
  });

  test("barJson keeps its field order: optional fields last, in order", () => {
    expect(Object.keys(barJson({ ...base, trades: 1, adjClose: 2, turnover: 3 }))).toEqual(["source", "symbol", "interval", "ts", "open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"]);
  });
});

const dir = tempDir("ticksync-bar-values-");
for (const kind of STORES.filter((s) => s.kind !== "questdb"))
  describe.skipIf(kind.unavailable !== null)(`${kind.kind} queryBarValues${kind.unavailable ? ` (skipped: ${kind.unavailable})` : ""}`, () => {
    let store: Store;
    // Two sources on the same days (a page interleaves them), and the edge bars.
    const bars: Bar[] = [...EDGE.filter((b) => b.ts > 0 && b.open > 1e-300 && b.high < 1e300), ...EDGE.slice(0, 3).map((b) => ({ ...b, source: "yahoo", trades: 5 }))];
    beforeAll(async () => {
      store = kind.open(kind.freshUrl(dir));
      await store.migrate();
      const runId = await store.startRun({ kind: "ingest", source: "test" });
      await store.commitBatch({ runId, source: "test", bars, quarantine: [], read: bars.length });
    });
    afterAll(async () => {
      await store.close();
    });

    test("the same rows as queryBars, page by page, with source and range filters", async () => {
      expect(store.queryBarValues).toBeDefined();
      const queries = [
        { symbol: "AAPL.US", interval: "1d" as const, limit: 100 },
        { symbol: "AAPL.US", interval: "1d" as const, limit: 3 },
        { symbol: "AAPL.US", interval: "1d" as const, limit: 100, source: "yahoo" },
        { symbol: "AAPL.US", interval: "1d" as const, limit: 100, from: base.ts + DAY, to: base.ts + 3 * DAY },
        { symbol: "AAPL.US", interval: "1d" as const, limit: 100, after: { ts: base.ts + DAY, source: "stooq" } },
        { symbol: "NONE.US", interval: "1d" as const, limit: 100 },
      ];
      for (const q of queries) {
        const values = await store.queryBarValues!(q);
        const objects = await store.queryBars(q);
        expect(values).toEqual(objects.map(barValues));
        expect(barValuesJson(values)).toBe(JSON.stringify(objects.map(barJson)));
      }
      expect((await store.queryBarValues!(queries[0]!)).length).toBe(bars.length);
    });

    test("/api/bars' JSON page: the body the object path wrote, next included", async () => {
      const app = createApp({ store, metrics: ticksyncMetrics(), now: () => Date.UTC(2025, 0, 1) });
      for (const limit of [2, 100]) {
        const res = await app.request(`http://127.0.0.1/api/bars?symbol=AAPL.US&interval=1d&limit=${limit}`);
        expect(res.status).toBe(200);
        const all = await store.queryBars({ symbol: "AAPL.US", interval: "1d", limit: limit + 1 });
        const page = all.slice(0, limit);
        const last = page.at(-1)!;
        const next = all.length > limit ? encodeBarCursor({ ts: last.ts, source: last.source }) : null;
        expect(await res.text()).toBe(JSON.stringify({ symbol: "AAPL.US", interval: "1d", data: page.map(barJson), next }));
      }
    });
  });

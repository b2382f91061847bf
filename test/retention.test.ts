// Retention against every store: exactly the bars of the ruled interval older than the cutoff go
// (a bar at the cutoff stays), other intervals and newer bars stay, each series' first bar and
// count stay exact (an emptied series is gone from listSeries), the pass is a run in the audit
// trail with the bars deleted per interval, and /metrics counts them. QuestDB cannot delete rows:
// its retention run fails and says why.
import { afterAll, describe, expect, test } from "bun:test";
import type { Bar, Interval } from "../src/domain/bar.ts";
import { runRetention } from "../src/pipeline/retention.ts";
import { metricValue, ticksyncMetrics } from "../src/lib/metrics.ts";
import { parseConfig } from "../src/config/load.ts";
import type { Store } from "../src/stores/types.ts";
import { STORES } from "./stores.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-retention-");
const DAY = 86_400_000;
const MIN = 60_000;
const NOW = Date.parse("2024-06-30T12:00:00Z");
const CUTOFF_1M = NOW - 90 * DAY; // 2024-04-01T12:00:00Z

function bar(symbol: string, interval: Interval, ts: number, source = "src"): Bar {
  return { source, symbol, interval, ts, open: 10, high: 11, low: 9, close: 10.5, volume: 100 };
}

// 1m bars of PKN.WA every 6 hours around the cutoff (some before, one exactly at it, some after);
// OLD.WA's 1m bars are all before it; daily and 5m bars of any age are outside the rule.
function fixture(): Bar[] {
  const bars: Bar[] = [];
  for (let t = CUTOFF_1M - 10 * DAY; t <= CUTOFF_1M + 10 * DAY; t += 6 * 3_600_000) bars.push(bar("PKN.WA", "1m", t));
  bars.push(bar("PKN.WA", "1m", CUTOFF_1M - 1), bar("PKN.WA", "1m", CUTOFF_1M + 1));
  for (let i = 0; i < 30; i++) bars.push(bar("OLD.WA", "1m", CUTOFF_1M - 200 * DAY + i * MIN));
  for (let i = 0; i < 400; i++) bars.push(bar("PKN.WA", "1d", Date.parse("2023-01-02T00:00:00Z") + i * DAY));
  for (let i = 0; i < 50; i++) bars.push(bar("PKN.WA", "5m", CUTOFF_1M - 100 * DAY + i * 5 * MIN));
  bars.push(bar("PKN.WA", "1m", CUTOFF_1M - 5 * DAY, "other"));
  return bars;
}

const countWhere = (bars: Bar[], f: (b: Bar) => boolean) => bars.filter(f).length;

test("config: [retention] rules, one per interval; a retention job needs rules", () => {
  const c = parseConfig({ retention: { rules: [{ interval: "1m", keepDays: 90 }, { interval: "5m", keepDays: 365 }] }, jobs: [{ name: "age-out", kind: "retention", schedule: "0 0 3 * * *" }] });
  expect(c.retention.rules).toEqual([{ interval: "1m", keepDays: 90 }, { interval: "5m", keepDays: 365 }]);
  expect(() => parseConfig({ retention: { rules: [{ interval: "1m", keepDays: 90 }, { interval: "1m", keepDays: 30 }] } })).toThrow(/one rule per interval/);
  expect(() => parseConfig({ retention: { rules: [{ interval: "2h", keepDays: 90 }] } })).toThrow(/expected an interval: 1m, 2m, 5m, 15m, 30m, 1h, 4h, 1d, 1w, 1mo/);
  expect(parseConfig({ retention: { rules: ["2m", "30m", "4h"].map((interval) => ({ interval, keepDays: 30 })) } }).retention.rules.map((r) => r.interval)).toEqual(["2m", "30m", "4h"]);
  expect(() => parseConfig({ retention: { rules: [{ interval: "1m", keepDays: 0 }] } })).toThrow(/at least 1/);
  expect(() => parseConfig({ jobs: [{ name: "age-out", kind: "retention" }] })).toThrow(/retention job needs rules/);
});

for (const kind of STORES) {
  describe.skipIf(kind.unavailable !== null)(`${kind.kind} store${kind.unavailable ? ` (skipped: ${kind.unavailable})` : ""}`, () => {
    const open: Store[] = [];
    afterAll(async () => {
      for (const s of open) await s.close().catch(() => {});
    });

    async function loaded(): Promise<{ store: Store; bars: Bar[] }> {
      const store = kind.open(kind.freshUrl(dir));
      open.push(store);
      await store.migrate();
      const bars = fixture();
      for (const source of ["src", "other"]) {
        const runId = await store.startRun({ kind: "ingest", source });
        const mine = bars.filter((b) => b.source === source);
        await store.commitBatch({ runId, source, bars: mine, quarantine: [], read: mine.length });
        await store.finishRun(runId, { outcome: "succeeded", read: mine.length, inserted: mine.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
      }
      return { store, bars };
    }

    if (kind.kind === "questdb") {
      test("retention is not enforced on QuestDB: the run fails and says why", async () => {
        const { store } = await loaded();
        const r = await runRetention(store, [{ interval: "1m", keepDays: 90 }], { now: () => NOW });
        expect(r.outcome).toBe("failed");
        expect(r.error).toMatch(/cannot delete bars/);
        expect((await store.getRun(r.runId))!.kind).toBe("retention");
      });
    } else
    test("1m bars older than 90 days are deleted and nothing else; series stay exact; run and metric count them", async () => {
      const { store, bars } = await loaded();
      const metrics = ticksyncMetrics();
      const due = (b: Bar) => b.interval === "1m" && b.ts < CUTOFF_1M;
      const expected = countWhere(bars, due);
      expect(expected).toBeGreaterThan(30);

      const r = await runRetention(store, [{ interval: "1m", keepDays: 90 }], { now: () => NOW, metrics, job: "age-out" });
      expect(r.outcome).toBe("succeeded");
      expect(r.deleted).toEqual([{ interval: "1m", before: new Date(CUTOFF_1M).toISOString(), bars: expected }]);
      expect(await store.countBars()).toBe(bars.length - expected);

      // What is left, series by series, read back bar by bar.
      const kept = bars.filter((b) => !due(b));
      const series = await store.listSeries();
      const keyOf = (b: { source: string; symbol: string; interval: string }) => `${b.source}|${b.symbol}|${b.interval}`;
      const want = new Map<string, { firstTs: number; lastTs: number; bars: number }>();
      for (const b of kept) {
        const w = want.get(keyOf(b));
        if (!w) want.set(keyOf(b), { firstTs: b.ts, lastTs: b.ts, bars: 1 });
        else Object.assign(w, { firstTs: Math.min(w.firstTs, b.ts), lastTs: Math.max(w.lastTs, b.ts), bars: w.bars + 1 });
      }
      expect(new Map(series.map((s) => [keyOf(s), { firstTs: s.firstTs, lastTs: s.lastTs, bars: s.bars }]))).toEqual(want);
      expect(series.some((s) => s.symbol === "OLD.WA")).toBe(false);
      for (const interval of ["1m", "5m", "1d"] as const) {
        const got = await store.queryBars({ symbol: "PKN.WA", interval, source: "src", limit: 10_000 });
        expect(got.map((b) => b.ts)).toEqual(kept.filter((b) => b.symbol === "PKN.WA" && b.interval === interval && b.source === "src").map((b) => b.ts).sort((a, b) => a - b));
      }
      // The bar exactly at the cutoff stays, the one a millisecond before it went.
      const edge = await store.queryBars({ symbol: "PKN.WA", interval: "1m", source: "src", from: CUTOFF_1M - 1, to: CUTOFF_1M + 1, limit: 10 });
      expect(edge.map((b) => b.ts)).toEqual([CUTOFF_1M, CUTOFF_1M + 1]);

      // Audit: a retention run with its rules and cutoff, the bars deleted as its 1m stream.
      const run = (await store.getRun(r.runId))!;
      expect(run).toMatchObject({ kind: "retention", source: store.kind, job: "age-out", outcome: "succeeded" });
      expect((run.params as any).rules).toEqual([{ interval: "1m", keepDays: 90, before: new Date(CUTOFF_1M).toISOString() }]);
      expect(await store.listRunStreams(r.runId)).toEqual([{ stream: "1m", status: "done", cause: null, error: null, rows: expected }]);
      expect(await metricValue(metrics.retentionDeleted, { interval: "1m" })).toBe(expected);
      expect(await metrics.registry.render()).toContain(`ticksync_retention_deleted_total{interval="1m"} ${expected}`);

      // Again at the same instant: nothing is due any more.
      const again = await runRetention(store, [{ interval: "1m", keepDays: 90 }], { now: () => NOW, metrics });
      expect(again.deleted[0]!.bars).toBe(0);
      expect(await store.countBars()).toBe(bars.length - expected);

      // New bars into a trimmed series (and into the emptied one) keep the series rows exact.
      const runId = await store.startRun({ kind: "ingest", source: "src" });
      const more = [bar("PKN.WA", "1m", CUTOFF_1M - 50 * DAY), bar("OLD.WA", "1m", NOW - DAY)];
      await store.commitBatch({ runId, source: "src", bars: more, quarantine: [], read: 2 });
      const after = await store.listSeries();
      expect(after.find((s) => keyOf(s) === "src|PKN.WA|1m")).toMatchObject({ firstTs: CUTOFF_1M - 50 * DAY, bars: want.get("src|PKN.WA|1m")!.bars + 1 });
      expect(after.find((s) => keyOf(s) === "src|OLD.WA|1m")).toMatchObject({ firstTs: NOW - DAY, lastTs: NOW - DAY, bars: 1 });
    });
  });
}

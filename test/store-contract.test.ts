// One contract, every store: the same cases run against SQLite and PostgreSQL (and each store
// added later), so the pipeline can rely on any of them alike.
import { afterAll, describe, expect, test } from "bun:test";
import { INTERVALS, type Bar } from "../src/domain/bar.ts";
import { isIntraday } from "../src/domain/rollup.ts";
import type { Rejection } from "../src/domain/quality.ts";
import type { Store } from "../src/stores/types.ts";
import type { BarEvent } from "../src/stores/events.ts";
import { dropQuestdbTables, STORES } from "./stores.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-contract-");
const day = (d: string) => Date.parse(`${d}T00:00:00Z`);

function bar(symbol: string, date: string, close: number, extra: Partial<Bar> = {}): Bar {
  return { source: "src", symbol, interval: "1d", ts: day(date), open: close - 1, high: close + 1, low: close - 2, close, volume: 1000, ...extra };
}

function rejection(locator: string, rule: Rejection["rule"] = "high"): Rejection {
  return { locator, rule, reason: `${rule} broken`, raw: { open: "1", note: "ünïcode \t tab" }, symbol: "PKN.WA", ts: day("2024-01-05") };
}

for (const kind of STORES) {
  describe.skipIf(kind.unavailable !== null)(`${kind.kind} store${kind.unavailable ? ` (skipped: ${kind.unavailable})` : ""}`, () => {
    const open: Store[] = [];
    const urls: string[] = [];
    const freshUrl = () => {
      const url = kind.freshUrl(dir);
      urls.push(url);
      return url;
    };
    afterAll(async () => {
      for (const s of open) await s.close().catch(() => {});
      await dropQuestdbTables(urls);
    });
    async function fresh(): Promise<Store> {
      const s = kind.open(freshUrl());
      open.push(s);
      await s.migrate();
      return s;
    }
    // What the store says it can do, read before the tests are made: a capability it lacks is a
    // skipped test that says so, never a test that returns early and passes.
    const probe = kind.unavailable === null ? kind.open(freshUrl()) : null;
    if (probe) open.push(probe);
    const journal = probe?.journal ?? false;
    const deletes = probe?.deleteQuarantine !== undefined;
    // QuestDB and SQLite cannot notify another process: their readers poll (docs/stores.md).
    const notifies = kind.kind === "postgres";
    const lacks = (what: string) => `(skipped: the ${kind.kind} store ${what})`;

    test("migrations are versioned and idempotent; ready says so", async () => {
      const url = freshUrl();
      const s = kind.open(url);
      open.push(s);
      const before = await s.ready();
      expect(before.ok).toBe(false);
      const first = await s.migrate();
      expect(first.applied.length).toBeGreaterThan(0);
      const second = await s.migrate();
      expect(second.applied).toEqual([]);
      expect(second.version).toBe(first.version);
      expect(await s.ready()).toEqual({ ok: true, schemaVersion: first.version, expectedVersion: first.version });
    });

    /** Three batches (one unchanged) committed while listening: the events seen, in order. */
    async function commitWithEvents(s: Store): Promise<{ seen: BarEvent[]; first: Bar[] }> {
      const seen: BarEvent[] = [];
      const off = s.onEvents((e) => seen.push(...e));
      const run = await s.startRun({ kind: "ingest", source: "src" });
      const first = [bar("PKN.WA", "2024-01-02", 60), bar("PKN.WA", "2024-01-03", 61, { trades: 7 }), bar("CDR.WA", "2024-01-02", 120)];
      await s.commitBatch({ runId: run, source: "src", bars: first, quarantine: [], read: 3 });
      await s.commitBatch({ runId: run, source: "src", bars: first, quarantine: [], read: 3 }); // unchanged: no events
      const second = [first[0]!, { ...first[2]!, close: 121 }, bar("CDR.WA", "2024-01-03", 122)];
      await s.commitBatch({ runId: run, source: "src", bars: second, quarantine: [], read: 3 });
      await s.countBars(); // every store has written what it holds
      off();
      return { seen, first };
    }

    test("each batch's inserted and changed bars are events, in commit order", async () => {
      const s = await fresh();
      const { seen, first } = await commitWithEvents(s);
      expect(seen.map((e) => [e.op, e.bar.symbol, e.bar.close])).toEqual([
        ["insert", "PKN.WA", 60],
        ["insert", "PKN.WA", 61],
        ["insert", "CDR.WA", 120],
        ["update", "CDR.WA", 121],
        ["insert", "CDR.WA", 122],
      ]);
      expect(seen[1]!.bar).toEqual(first[1]!);
      for (let i = 1; i < seen.length; i++) expect(seen[i]!.id).toBeGreaterThan(seen[i - 1]!.id);
      const bounds = await s.eventBounds();
      expect(bounds.last).toBeGreaterThanOrEqual(seen[seen.length - 1]!.id);
    });

    if (!journal) test(`without a journal, events are live only: nothing to replay (${kind.kind})`, async () => {
      const s = await fresh();
      const { seen } = await commitWithEvents(s);
      expect(seen.length).toBe(5);
      expect(await s.eventsSince(0, 100)).toEqual([]);
      expect((await s.eventBounds()).first).toBeNull();
    });

    test.skipIf(!journal)(`events are journaled: replayable after any id, pruned by age ${journal ? "" : lacks("keeps no journal (docs/stores.md)")}`, async () => {
      const s = await fresh();
      const { seen } = await commitWithEvents(s);
      const bounds = await s.eventBounds();
      expect(bounds).toEqual({ first: seen[0]!.id, last: seen[seen.length - 1]!.id });
      const replayed = await s.eventsSince(0, 100);
      expect(replayed.map((e) => [e.id, e.op, e.bar.symbol, e.bar.ts])).toEqual(seen.map((e) => [e.id, e.op, e.bar.symbol, e.bar.ts]));
      // Every store with a journal journals keys: a replayed event carries the bar as stored now
      // (CDR.WA's first bar was changed by a later event, which is replayed too).
      expect(replayed[2]!.bar.close).toBe(121);
      expect(replayed.filter((_, i) => i !== 2)).toEqual(seen.filter((_, i) => i !== 2));
      expect((await s.eventsSince(seen[1]!.id, 100)).map((e) => e.id)).toEqual(seen.slice(2).map((e) => e.id));
      expect(await s.eventsSince(seen[4]!.id, 100)).toEqual([]);
      expect(await s.pruneEvents(Date.now() + 1000)).toBe(2);
      expect(await s.eventsSince(0, 100)).toEqual([]);
      expect((await s.eventBounds()).first).toBeNull();
    });

    test("a lease has one holder until it expires or is released", async () => {
      const s = await fresh();
      expect(await s.tryLease("scheduler", "a", 300)).toBe(true);
      expect(await s.tryLease("scheduler", "b", 300)).toBe(false);
      const renewed = Date.now();
      expect(await s.tryLease("scheduler", "a", 300)).toBe(true); // renewed
      expect(await s.tryLease("other", "b", 300)).toBe(true); // leases are by name
      // a lets it expire: b gets it once the 300 ms since the renewal have passed, not before.
      await waitFor(() => s.tryLease("scheduler", "b", 300), 5000, "a's lease to expire");
      expect(Date.now() - renewed).toBeGreaterThanOrEqual(300);
      expect(await s.tryLease("scheduler", "a", 300)).toBe(false);
      await s.releaseLease("scheduler", "a"); // not a's to give
      expect(await s.tryLease("scheduler", "a", 300)).toBe(false);
      await s.releaseLease("scheduler", "b");
      expect(await s.tryLease("scheduler", "a", 300)).toBe(true);
    });

    if (!notifies) test(`readers of another process's commits poll: no watcher (${kind.kind})`, async () => {
      const s = await fresh();
      expect(await s.watchEvents(() => {})).toBeNull();
    });

    test.skipIf(!notifies)(`another process's commits are watched ${notifies ? "" : lacks("cannot notify another process")}`, async () => {
      const url = freshUrl();
      const a = kind.open(url);
      const b = kind.open(url);
      open.push(a, b);
      await a.migrate();
      await b.migrate();
      let pokes = 0;
      const stop = await a.watchEvents(() => pokes++);
      expect(stop).not.toBeNull();
      const run = await b.startRun({ kind: "ingest", source: "src" });
      await b.commitBatch({ runId: run, source: "src", bars: [bar("PKN.WA", "2024-01-02", 60)], quarantine: [], read: 1 });
      await b.commitBatch({ runId: run, source: "src", bars: [bar("PKN.WA", "2024-01-02", 60)], quarantine: [], read: 1 }); // unchanged: no event
      await waitFor(() => pokes === 1, 5000, "a notification");
      expect((await a.eventsSince(0, 10)).map((e) => e.bar.close)).toEqual([60]);
      await stop!();
    });

    test("upsert reports inserted, updated and unchanged; unchanged writes nothing", async () => {
      const s = await fresh();
      const run = await s.startRun({ kind: "ingest", source: "src" });
      const batch = [bar("PKN.WA", "2024-01-02", 60), bar("PKN.WA", "2024-01-03", 61, { adjClose: 60.5, trades: 12, turnover: 61_000 }), bar("CDR.WA", "2024-01-02", 120)];
      expect(await s.commitBatch({ runId: run, source: "src", bars: batch, quarantine: [], read: 3 })).toEqual({ inserted: 3, updated: 0, unchanged: 0, quarantined: 0 });
      const again = await s.commitBatch({ runId: run, source: "src", bars: batch, quarantine: [], read: 3 });
      expect(again).toEqual({ inserted: 0, updated: 0, unchanged: 3, quarantined: 0 });
      const changed = [batch[0]!, { ...batch[1]!, adjClose: null }, { ...batch[2]!, close: 121 }, bar("CDR.WA", "2024-01-03", 122)];
      expect(await s.commitBatch({ runId: run, source: "src", bars: changed, quarantine: [], read: 4 })).toEqual({ inserted: 1, updated: 2, unchanged: 1, quarantined: 0 });
      expect(await s.countBars()).toBe(4);
      const pkn = await s.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 10 });
      expect(pkn).toEqual([batch[0]!, { ...batch[1]!, adjClose: undefined }].map((b) => JSON.parse(JSON.stringify(b))));
      const r = await s.getRun(run);
      expect(r).toMatchObject({ read: 10, inserted: 4, updated: 2, unchanged: 4, fromTs: day("2024-01-02"), toTs: day("2024-01-03") });
    });

    test("series keep first, last and count per (source, symbol, interval)", async () => {
      const s = await fresh();
      const run = await s.startRun({ kind: "ingest", source: "src" });
      await s.commitBatch({ runId: run, source: "src", bars: [bar("A.US", "2024-02-01", 1), bar("A.US", "2024-01-15", 2)], quarantine: [], read: 2 });
      await s.commitBatch({ runId: run, source: "src", bars: [bar("A.US", "2024-03-01", 3), bar("A.US", "2024-01-15", 2)], quarantine: [], read: 2 });
      expect(await s.listSeries()).toEqual([{ source: "src", symbol: "A.US", interval: "1d", firstTs: day("2024-01-15"), lastTs: day("2024-03-01"), bars: 3 }]);
      expect(await s.listSeries({ symbol: "B.US" })).toEqual([]);
    });

    test("every interval (2m, 30m and 4h included) is its own series, stored and read back as itself", async () => {
      const s = await fresh();
      const run = await s.startRun({ kind: "ingest", source: "src" });
      const t0 = Date.parse("2024-06-03T13:30:00Z");
      const bars = INTERVALS.map((interval, i): Bar => ({ ...bar("IV.US", "2024-06-03", 10 + i), interval, ts: isIntraday(interval) ? t0 : day("2024-06-03") }));
      expect(await s.commitBatch({ runId: run, source: "src", bars, quarantine: [], read: bars.length })).toMatchObject({ inserted: INTERVALS.length });
      expect((await s.listSeries({ symbol: "IV.US" })).map((x) => x.interval).sort()).toEqual([...INTERVALS].sort());
      for (const b of bars) expect(await s.queryBars({ symbol: "IV.US", interval: b.interval, limit: 10 })).toEqual([JSON.parse(JSON.stringify(b))]);
    });

    test("bars: range, source filter and keyset paging across sources", async () => {
      const s = await fresh();
      const run = await s.startRun({ kind: "ingest", source: "x" });
      const bars: Bar[] = [];
      for (const d of ["2024-01-02", "2024-01-03", "2024-01-04"]) for (const source of ["a", "b"]) bars.push({ ...bar("X.US", d, 10), source });
      await s.commitBatch({ runId: run, source: "x", bars, quarantine: [], read: bars.length });
      const page1 = await s.queryBars({ symbol: "X.US", interval: "1d", limit: 4 });
      expect(page1.map((b) => `${b.source}${new Date(b.ts).getUTCDate()}`)).toEqual(["a2", "b2", "a3", "b3"]);
      const page2 = await s.queryBars({ symbol: "X.US", interval: "1d", limit: 4, after: { ts: page1[3]!.ts, source: page1[3]!.source } });
      expect(page2.map((b) => `${b.source}${new Date(b.ts).getUTCDate()}`)).toEqual(["a4", "b4"]);
      const onlyB = await s.queryBars({ symbol: "X.US", interval: "1d", limit: 10, source: "b", from: day("2024-01-03") });
      expect(onlyB.map((b) => new Date(b.ts).getUTCDate())).toEqual([3, 4]);
      expect(await s.queryBars({ symbol: "X.US", interval: "1h", limit: 10 })).toEqual([]);
    });

    test("the checkpoint commits with its batch, and a failed batch leaves both as they were", async () => {
      const s = await fresh();
      const run = await s.startRun({ kind: "ingest", source: "src" });
      const cp = { stream: "src:file.csv", cursor: { offset: 120, line: 4, fp: "ab" }, lastTs: day("2024-01-03"), lastKey: "PKN.WA|1d|x" };
      await s.commitBatch({ runId: run, source: "src", bars: [bar("PKN.WA", "2024-01-03", 5)], quarantine: [], checkpoint: cp, read: 1 });
      expect(await s.getCheckpoint("src:file.csv")).toEqual(cp);
      const broken = { ...bar("PKN.WA", "2024-01-04", 6), open: null as unknown as number };
      const next = { ...cp, cursor: { offset: 999, line: 9, fp: "ab" } };
      await expect(s.commitBatch({ runId: run, source: "src", bars: [bar("PKN.WA", "2024-01-05", 7), broken], quarantine: [rejection("file.csv:9")], checkpoint: next, read: 3 })).rejects.toThrow();
      expect(await s.getCheckpoint("src:file.csv")).toEqual(cp);
      expect(await s.countBars()).toBe(1);
      expect(await s.listQuarantine({ limit: 10 })).toEqual([]);
      expect((await s.getRun(run))!.read).toBe(1);
      expect(await s.getCheckpoint("nope")).toBeNull();
    });

    test("quarantine is idempotent per (source, locator), keeps raw rows, filters and pages", async () => {
      const s = await fresh();
      const run = await s.startRun({ kind: "ingest", source: "src" });
      const q = [rejection("f.csv:2"), rejection("f.csv:3", "volume"), rejection("f.csv:4", "low")];
      expect((await s.commitBatch({ runId: run, source: "src", bars: [], quarantine: q, read: 3 })).quarantined).toBe(3);
      expect((await s.commitBatch({ runId: run, source: "src", bars: [], quarantine: q, read: 3 })).quarantined).toBe(0);
      const all = await s.listQuarantine({ limit: 10 });
      expect(all.length).toBe(3);
      expect(all[0]).toMatchObject({ runId: run, source: "src", locator: "f.csv:4", rule: "low", reason: "low broken", symbol: "PKN.WA", ts: day("2024-01-05"), raw: { open: "1", note: "ünïcode \t tab" } });
      expect((await s.listQuarantine({ limit: 10, rule: "volume" })).map((r) => r.locator)).toEqual(["f.csv:3"]);
      expect((await s.listQuarantine({ limit: 10, source: "other" })).length).toBe(0);
      expect((await s.listQuarantine({ limit: 10, runId: run })).length).toBe(3);
      const page = await s.listQuarantine({ limit: 2 });
      const rest = await s.listQuarantine({ limit: 2, before: page[1]!.id });
      expect([...page, ...rest].map((r) => r.locator)).toEqual(["f.csv:4", "f.csv:3", "f.csv:2"]);
    });

    test.skipIf(!deletes)(`quarantine records are removed by id (a replay stored their rows) ${deletes ? "" : lacks("cannot delete: no replay")}`, async () => {
      const s = await fresh();
      const run = await s.startRun({ kind: "ingest", source: "src" });
      await s.commitBatch({ runId: run, source: "src", bars: [], quarantine: [rejection("f.csv:2"), rejection("f.csv:3"), rejection("f.csv:4")], read: 3 });
      const [c, b] = await s.listQuarantine({ limit: 10 });
      expect(await s.deleteQuarantine!([c!.id, b!.id, 999_999])).toBe(2);
      expect((await s.listQuarantine({ limit: 10 })).map((r) => r.locator)).toEqual(["f.csv:2"]);
      expect(await s.deleteQuarantine!([c!.id])).toBe(0);
      expect(await s.deleteQuarantine!([])).toBe(0);
      // The same row quarantined again later is a new record.
      await s.commitBatch({ runId: run, source: "src", bars: [], quarantine: [rejection("f.csv:3")], read: 1 });
      expect((await s.listQuarantine({ limit: 10 })).length).toBe(2);
    });

    test("runs: lineage, outcome, reopen for resume, last success per job, per-stream state", async () => {
      const s = await fresh();
      const a = await s.startRun({ kind: "backfill", source: "yahoo", job: "nightly", params: { from: 1 } });
      const b = await s.startRun({ kind: "ingest", source: "csv" });
      await s.finishRun(b, { outcome: "succeeded", read: 5, inserted: 5, updated: 0, unchanged: 0, quarantined: 0, fromTs: day("2024-01-01"), toTs: day("2024-01-05"), quality: { read: 5, accepted: 5, rejected: 0, gapSessions: 0, score: 1, rules: {} } });
      await s.finishRun(a, { outcome: "failed", read: 1, inserted: 1, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error: "1 of 2 streams failed", failures: { not_found: 1 } });
      const [latest, earlier] = await s.listRuns({ limit: 10 });
      expect(latest).toMatchObject({ id: b, kind: "ingest", source: "csv", outcome: "succeeded", read: 5, stored: 5, quality: { score: 1 } });
      expect(latest!.durationMs).toBeGreaterThanOrEqual(0);
      expect(earlier).toMatchObject({ id: a, job: "nightly", params: { from: 1 }, outcome: "failed", error: "1 of 2 streams failed", failures: { not_found: 1 } });
      expect((await s.listRuns({ limit: 10, source: "yahoo" })).map((r) => r.id)).toEqual([a]);
      expect((await s.listRuns({ limit: 10, before: b })).map((r) => r.id)).toEqual([a]);
      const last = await s.lastSuccessByJob();
      expect([...last.keys()]).toEqual(["ingest:csv"]);
      await s.reopenRun(a);
      expect((await s.getRun(a))!.outcome).toBe("running");
      await s.initRunStreams(a, ["A.US", "B.US", "C.US"]);
      await s.initRunStreams(a, ["A.US"]); // again: no change
      await s.setRunStream(a, "A.US", { status: "done", rows: 10 });
      await s.setRunStream(a, "B.US", { status: "failed", cause: "not_found", error: "404", rows: 0 });
      expect(await s.listRunStreams(a)).toEqual([
        { stream: "A.US", status: "done", cause: null, error: null, rows: 10 },
        { stream: "B.US", status: "failed", cause: "not_found", error: "404", rows: 0 },
        { stream: "C.US", status: "pending", cause: null, error: null, rows: 0 },
      ]);
      expect((await s.listRunStreams(a, "pending")).map((x) => x.stream)).toEqual(["C.US"]);
      expect(await s.getRun(999_999)).toBeNull();
    });

    // --- instruments and corporate actions ---
    test("instruments: upsert by (source, symbol), listed by symbol; absent only where documented (QuestDB)", async () => {
      const s = await fresh();
      if (kind.kind === "questdb") return expect(s.upsertInstruments).toBeUndefined();
      const base = { exchange: "NasdaqGS", currency: "USD", type: "EQUITY", sector: null, industry: null, isin: null };
      await s.upsertInstruments!([
        { source: "yh", symbol: "AAPL.US", name: "Apple Inc.", ...base },
        { source: "pg", symbol: "AAPL.US", name: "Apple Inc", ...base, industry: "Electronic Computers", isin: null },
        { source: "yh", symbol: "PKN.WA", name: "ORLEN S.A.", exchange: "Warsaw", currency: "PLN", type: "EQUITY", sector: null, industry: null, isin: "PLPKN0000018" },
      ]);
      await s.upsertInstruments!([{ source: "yh", symbol: "AAPL.US", name: "Apple Inc. (new name)", ...base }]);
      const all = await s.listInstruments!();
      expect(all.map((i) => [i.symbol, i.source, i.name])).toEqual([
        ["AAPL.US", "pg", "Apple Inc"],
        ["AAPL.US", "yh", "Apple Inc. (new name)"],
        ["PKN.WA", "yh", "ORLEN S.A."],
      ]);
      const [pkn] = await s.listInstruments!({ symbol: "PKN.WA" });
      expect(pkn).toMatchObject({ source: "yh", symbol: "PKN.WA", exchange: "Warsaw", currency: "PLN", type: "EQUITY", sector: null, industry: null, isin: "PLPKN0000018" });
      expect(pkn!.updatedAt).toBeGreaterThan(0);
    });

    test("corporate actions: upsert by (source, symbol, type, ex-date), unchanged re-delivery writes nothing, listed by ex-date", async () => {
      const s = await fresh();
      if (kind.kind === "questdb") return expect(s.upsertActions).toBeUndefined();
      const split = { source: "yh", symbol: "AAPL.US", type: "split" as const, exDate: day("2020-08-31"), numerator: 4, denominator: 1, amount: null, currency: null, payDate: null };
      const div = { source: "yh", symbol: "AAPL.US", type: "dividend" as const, exDate: day("2020-08-07"), numerator: null, denominator: null, amount: 0.82, currency: "USD", payDate: null };
      const other = { ...div, source: "pg", payDate: day("2020-08-13") };
      expect(await s.upsertActions!([split, div, other, { ...div, symbol: "MSFT.US", amount: 0.51 }])).toBe(4);
      expect(await s.upsertActions!([split, div])).toBe(0);
      expect(await s.upsertActions!([{ ...div, amount: 0.8201 }])).toBe(1); // a correction replaces it
      const list = await s.listActions!("AAPL.US");
      expect(list.map(({ updatedAt, ...a }) => a)).toEqual([
        { ...other },
        { ...div, amount: 0.8201 },
        { ...split },
      ]);
      expect(await s.listActions!("NONE.US")).toEqual([]);
    });
    // --- end instruments and corporate actions ---
  });
}

// The QuestDB store's journal and leases on the real QuestDB, beyond the store contract: batch
// numbers keep growing across restarts and after the whole journal is pruned; another process
// reads what one wrote, in id order; a batch split over several journal rows replays from any id;
// a second writing process waits for the first to go idle, and is refused while it stays busy;
// quarantined rows replayed after a fix are stored, journaled and leave the quarantine;
// of processes racing for a lease exactly one gets it; a renewal that crossed a takeover holds
// the newcomer off until it runs out.
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import type { Bar } from "../src/domain/bar.ts";
import type { Store } from "../src/stores/types.ts";
import { JOURNAL_ROW_EVENTS } from "../src/stores/questdb/journal.ts";
import { WRITER_WAIT_MS } from "../src/stores/questdb/writer.ts";
import { eventBatch } from "../src/stores/events.ts";
import { validateBatch, type ValidateContext } from "../src/domain/quality.ts";
import { replayQuarantine } from "../src/pipeline/replay-quarantine.ts";
import { dropQuestdbTables, QDB_PG_URL, STORES } from "./stores.ts";
import { waitFor } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const kind = STORES.find((s) => s.kind === "questdb")!;
const T0 = Date.UTC(2024, 0, 2, 9, 0);
const bars = (symbol: string, from: number, n: number, close = 10): Bar[] =>
  [...Array(n)].map((_, i) => ({ source: "src", symbol, interval: "1m", ts: T0 + (from + i) * 60_000, open: 10, high: 12, low: 9, close, volume: 100 + i }));

describe.skipIf(kind.unavailable !== null)(`questdb journal and leases${kind.unavailable ? ` (skipped: ${kind.unavailable})` : ""}`, () => {
  const open: Store[] = [];
  const urls: string[] = [];
  const sql = kind.unavailable === null ? postgres(QDB_PG_URL!, { max: 1, fetch_types: false, onnotice: () => {} }) : null;
  afterAll(async () => {
    for (const s of open) await s.close().catch(() => {});
    await sql?.end();
    await dropQuestdbTables(urls);
  });
  const freshUrl = () => {
    const url = kind.freshUrl("");
    urls.push(url);
    return url;
  };
  async function at(url: string): Promise<Store> {
    const s = kind.open(url);
    open.push(s);
    await s.migrate();
    return s;
  }
  async function commit(s: Store, list: Bar[]) {
    const run = await s.startRun({ kind: "ingest", source: "src" });
    await s.commitBatch({ runId: run, source: "src", bars: list, quarantine: [], read: list.length });
    await s.finishRun(run, { outcome: "succeeded", read: list.length, inserted: list.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
  }

  test("ids keep growing across restarts and after the whole journal is pruned; another process reads them in order", async () => {
    const url = freshUrl();
    const a = await at(url);
    await commit(a, bars("PKN.WA", 0, 3));
    await commit(a, bars("CDR.WA", 0, 2));
    const first = await a.eventsSince(0, 100);
    expect(first.map((e) => e.bar.symbol)).toEqual(["PKN.WA", "PKN.WA", "PKN.WA", "CDR.WA", "CDR.WA"]);
    await a.close();
    const b = await at(url);
    // Another handle (as another process) reads what a wrote, as stored.
    expect(await b.eventsSince(0, 100)).toEqual(first);
    await commit(b, bars("PKN.WA", 0, 1, 11)); // an update
    const afterRestart = await b.eventsSince(first.at(-1)!.id, 100);
    expect(afterRestart.map((e) => [e.op, e.bar.close])).toEqual([["update", 11]]);
    expect(afterRestart[0]!.id).toBeGreaterThan(first.at(-1)!.id);
    expect(await b.pruneEvents(Date.now() + 1000)).toBe(3);
    expect(await b.eventBounds()).toEqual({ last: 0, first: null });
    await b.close();
    const c = await at(url);
    await commit(c, bars("ALE.WA", 0, 1));
    const [next] = await c.eventsSince(0, 100);
    expect(eventBatch(next!.id)).toBeGreaterThan(eventBatch(afterRestart[0]!.id));
    expect(await c.eventBounds()).toEqual({ last: next!.id, first: next!.id });
  });

  test("a batch larger than a journal row replays whole, and from any id inside it", async () => {
    const s = await at(freshUrl());
    const n = JOURNAL_ROW_EVENTS * 2 + 345;
    await commit(s, bars("KGH.WA", 0, n));
    const all = await s.eventsSince(0, n + 10);
    expect(all.length).toBe(n);
    expect(new Set(all.map((e) => eventBatch(e.id))).size).toBe(1);
    expect(all.every((e, i) => e.id === all[0]!.id + i && e.bar.ts === T0 + i * 60_000)).toBe(true);
    const from = all[JOURNAL_ROW_EVENTS + 7]!.id;
    const rest = await s.eventsSince(from, n);
    expect(rest.map((e) => e.id)).toEqual(all.slice(JOURNAL_ROW_EVENTS + 8).map((e) => e.id));
    expect((await s.eventBounds()).last).toBe(all.at(-1)!.id);
  });

  test("a second writing process waits for the first to go idle, then numbers after it; one that stays busy refuses it", async () => {
    const url = freshUrl();
    const a = await at(url);
    const b = await at(url);
    await commit(a, bars("PKN.WA", 0, 2));
    const t = Date.now();
    await commit(b, bars("PKN.WA", 2, 2)); // waits for a's writer lease to be given up (a is idle)
    const events = await b.eventsSince(0, 100);
    expect(events.map((e) => e.bar.ts)).toEqual([0, 1, 2, 3].map((i) => T0 + i * 60_000));
    expect(eventBatch(events[2]!.id)).toBeGreaterThan(eventBatch(events[1]!.id));
    console.log(`the second writer waited ${Date.now() - t} ms for the first to go idle`);
    // a writes again what b stored: it knows b wrote (the numbering moved on) and finds the bars stored, unchanged.
    const runA = await a.startRun({ kind: "ingest", source: "src" });
    expect(await a.commitBatch({ runId: runA, source: "src", bars: bars("PKN.WA", 2, 2), quarantine: [], read: 2 })).toEqual({ inserted: 0, updated: 0, unchanged: 2, quarantined: 0 });
    // A writer that keeps the lease (as a busy process would): the commit is refused, saying why.
    await waitFor(() => a.tryLease("journal-writer", "busy-process", 60_000), 10_000, "b to go idle");
    const c = await at(url);
    const run = await c.startRun({ kind: "ingest", source: "src" });
    const refused = c.commitBatch({ runId: run, source: "src", bars: bars("PKN.WA", 9, 1), quarantine: [], read: 1 });
    await expect(refused).rejects.toThrow(/another process has been writing to this QuestDB store .* one process writes at a time/);
    await a.releaseLease("journal-writer", "busy-process");
    await c.commitBatch({ runId: run, source: "src", bars: bars("PKN.WA", 9, 1), quarantine: [], read: 1 });
    await c.countBars(); // its gathered write sent (the journal gives what was sent)
    expect((await c.eventsSince(events.at(-1)!.id, 10)).map((e) => e.bar.ts)).toEqual([T0 + 9 * 60_000]);
  }, WRITER_WAIT_MS + 30_000);

  test("quarantined rows replayed after a fix are stored by a replay run, journaled, and leave the quarantine", async () => {
    const s = await at(freshUrl());
    // Configured without a market: bare tickers cannot be normalised.
    const ctx: Omit<ValidateContext, "lastTs" | "cache"> = { source: "files", interval: "1d" };
    const rows = ["2024-01-02", "2024-01-03"].map((d, i) => ({ locator: `pkn.csv:${i + 2}`, fields: { symbol: "PKN", ts: d, open: "10", high: "11", low: "9", close: `10.${i}`, volume: "100" } }));
    const checked = validateBatch(rows, ctx);
    const run = await s.startRun({ kind: "ingest", source: "files" });
    await s.commitBatch({ runId: run, source: "files", bars: checked.bars, quarantine: checked.rejections, read: rows.length });
    expect((await s.listQuarantine({ limit: 10 })).map((r) => r.rule)).toEqual(["symbol", "symbol"]);
    const before = (await s.eventBounds()).last;
    const result = await replayQuarantine(s, { limit: 100 }, (name) => (name === "files" ? { ...ctx, market: "WSE" } : null));
    expect(result).toMatchObject({ examined: 2, released: 2, stillFailing: 0, skipped: 0 });
    expect(await s.listQuarantine({ limit: 10 })).toEqual([]);
    expect((await s.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 10 })).map((b) => b.close)).toEqual([10, 10.1]);
    expect((await s.eventsSince(before, 10)).map((e) => [e.op, e.bar.symbol, e.bar.close])).toEqual([["insert", "PKN.WA", 10], ["insert", "PKN.WA", 10.1]]);
    // Replayed again: nothing left to replay; the same row quarantined later is a new record.
    expect((await replayQuarantine(s, { limit: 100 }, () => ctx)).examined).toBe(0);
    await s.commitBatch({ runId: run, source: "files", bars: [], quarantine: checked.rejections.slice(0, 1), read: 1 });
    expect((await s.listQuarantine({ limit: 10 })).length).toBe(1);
  });

  test("of processes racing for a lease exactly one gets it, each time it is free", async () => {
    const url = freshUrl();
    const handles: Store[] = [];
    for (let i = 0; i < 5; i++) handles.push(await at(url)); // migrations one at a time
    for (let round = 0; round < 3; round++) {
      const got = await Promise.all(handles.map((h, i) => h.tryLease("race", `p${i}`, 400)));
      expect(got.filter(Boolean).length).toBe(1);
      const holder = got.indexOf(true);
      // Nobody else while it is in force; free again once it runs out.
      expect((await Promise.all(handles.map((h, i) => (i === holder ? false : h.tryLease("race", `p${i}`, 400))))).some(Boolean)).toBe(false);
      await Bun.sleep(450);
    }
    // Old epochs are dropped (by the next grant, when a drop met a reader): at most the newest two tables per lease.
    expect(await handles[0]!.tryLease("race", "p0", 400)).toBe(true);
    const prefix = new URL(url).searchParams.get("prefix")!;
    const tables = (await sql!`SELECT table_name FROM tables()`).map((r) => String(r.table_name)).filter((t) => t.startsWith(`${prefix}lease_race_`));
    expect(tables.length).toBeLessThanOrEqual(2);
  });

  test("a renewal that crossed a takeover: the old holder stops, the new one waits until it runs out", async () => {
    const url = freshUrl();
    const s = await at(url);
    expect(await s.tryLease("cross", "a", 200)).toBe(true);
    await Bun.sleep(250);
    expect(await s.tryLease("cross", "b", 5000)).toBe(true); // a's ran out: b takes the next epoch
    // a's renewal lands in its epoch after b's takeover (as when a's write was slow to arrive).
    const prefix = new URL(url).searchParams.get("prefix")!;
    const epochs = (await sql!`SELECT table_name FROM tables()`).map((r) => String(r.table_name)).filter((t) => t.startsWith(`${prefix}lease_cross_`)).sort();
    expect(epochs.length).toBe(2);
    await sql!.unsafe(`INSERT INTO "${epochs[0]}" (holder, expires_at) VALUES ('a', dateadd('T', 600, now()))`);
    expect(await s.tryLease("cross", "a", 5000)).toBe(false); // a sees b's newer epoch
    expect(await s.tryLease("cross", "b", 5000)).toBe(false); // b waits for a's renewal to run out
    const t = Date.now();
    await waitFor(() => s.tryLease("cross", "b", 5000), 5000, "a's crossed renewal to run out");
    expect(Date.now() - t).toBeGreaterThanOrEqual(300);
  });
});

// The QuestDB store's write path on the real QuestDB (scripts/services/questdb.sh): bars before
// 1970 (QuestDB refuses a negative designated timestamp) are quarantined with QuestDB's limit and
// the rest of the batch stored; a write QuestDB refuses fails the run, never silently; the lookup
// of stored bars keeps series of the same symbol apart (interval, source) and counts right; a
// bulk load's bars stream into one transaction per write, intact through a slow connection; an
// unchanged re-load is confirmed from sums of row hashes, and only series that differ (or hold
// bars stored before row hashes) are read back.
import { afterAll, describe, expect, test } from "bun:test";
import { createServer, connect, type Server } from "node:net";
import postgres from "postgres";
import type { Bar } from "../src/domain/bar.ts";
import type { Store } from "../src/stores/types.ts";
import { BEFORE_1970 } from "../src/stores/questdb/writes.ts";
import { ILP_CHUNK_LINES } from "../src/stores/questdb/ilp.ts";
import { LINES_WHILE_LISTENED } from "../src/stores/questdb/queue.ts";
import { dropQuestdbTables, QDB_HTTP, QDB_PG_URL, STORES } from "./stores.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const kind = STORES.find((s) => s.kind === "questdb")!;
const day = (d: string) => Date.parse(`${d}T00:00:00Z`);
const bar = (symbol: string, date: string, close: number, extra: Partial<Bar> = {}): Bar => ({ source: "src", symbol, interval: "1d", ts: day(date), open: close - 1, high: close + 1, low: close - 2, close, volume: 1000, ...extra });

describe.skipIf(kind.unavailable !== null)(`questdb writes${kind.unavailable ? ` (skipped: ${kind.unavailable})` : ""}`, () => {
  const open: Store[] = [];
  const urls: string[] = [];
  const sql = kind.unavailable === null ? postgres(QDB_PG_URL!, { max: 1, fetch_types: false, onnotice: () => {} }) : null;
  afterAll(async () => {
    for (const s of open) await s.close().catch(() => {});
    await sql?.end();
    await dropQuestdbTables(urls);
  });
  async function fresh(): Promise<{ s: Store; prefix: string; url: string }> {
    const url = kind.freshUrl("");
    urls.push(url);
    const s = kind.open(url);
    open.push(s);
    await s.migrate();
    return { s, prefix: new URL(url).searchParams.get("prefix")!, url };
  }
  /** The store at `url` again (as another process would open it), its HTTP calls through `http` when given. */
  function reopen(url: string, http?: string): Store {
    const s = kind.open(http ? url.replace(/http=[^&]+/, `http=${http}`) : url);
    open.push(s);
    return s;
  }
  async function walApplied(table: string) {
    for (let i = 0; i < 500; i++) {
      const [r] = await sql!`SELECT writerTxn, sequencerTxn FROM wal_tables() WHERE name = ${table}`;
      if (!r || Number(r.writerTxn) >= Number(r.sequencerTxn)) return;
      await Bun.sleep(20);
    }
    throw new Error(`the WAL of ${table} was not applied in time`);
  }
  /** An HTTP proxy to QuestDB that keeps the text of every `/exec` query the store sends. */
  function recordingProxy() {
    const queries: string[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const u = new URL(req.url);
        if (u.pathname === "/exec") queries.push(u.searchParams.get("query") ?? "");
        return fetch(`${QDB_HTTP}${u.pathname}${u.search}`, { method: req.method, headers: req.headers, body: req.body, duplex: "half" } as RequestInit);
      },
    });
    return { server, url: `http://127.0.0.1:${server.port}`, queries };
  }
  /** The symbols whose bars a batch's lookup read back one by one (not their row hash sums). */
  const readBack = (queries: string[]) =>
    queries.filter((q) => q.startsWith("SELECT symbol, cast(ts AS long)")).flatMap((q) => [...q.matchAll(/'([A-Z]+\.US)'/g)].map((m) => m[1]!));

  test("bars before 1970 are quarantined with QuestDB's limit; the rest of the batch is stored and counted", async () => {
    const { s } = await fresh();
    const run = await s.startRun({ kind: "ingest", source: "src" });
    const batch = [bar("OLD.US", "1969-12-31", 5), bar("OLD.US", "1970-01-02", 6), bar("NEW.US", "2020-01-02", 7), bar("OLD.US", "1962-01-02", 4)];
    expect(await s.commitBatch({ runId: run, source: "src", bars: batch, quarantine: [], read: 4 })).toEqual({ inserted: 2, updated: 0, unchanged: 0, quarantined: 2, refused: 2 });
    expect(await s.countBars()).toBe(2);
    expect((await s.queryBars({ symbol: "OLD.US", interval: "1d", limit: 10 })).map((b) => b.close)).toEqual([6]);
    const q = await s.listQuarantine({ limit: 10 });
    expect(q.map((r) => [r.rule, r.symbol, r.ts]).sort()).toEqual([
      ["timestamp", "OLD.US", day("1962-01-02")],
      ["timestamp", "OLD.US", day("1969-12-31")],
    ]);
    expect(q[0]!.reason).toStartWith(BEFORE_1970);
    expect(q[0]!.raw).toMatchObject({ symbol: "OLD.US", interval: "1d", close: expect.any(Number) });
    expect(await s.getRun(run)).toMatchObject({ read: 4, inserted: 2, quarantined: 2 });
    // Again: the stored bars are unchanged, the quarantine records are not written twice.
    expect(await s.commitBatch({ runId: run, source: "src", bars: batch, quarantine: [], read: 4 })).toEqual({ inserted: 0, updated: 0, unchanged: 2, quarantined: 0, refused: 2 });
    await s.finishRun(run, { outcome: "succeeded", read: 8, inserted: 2, updated: 0, unchanged: 2, quarantined: 4, fromTs: null, toTs: null, quality: null });
    expect((await s.getRun(run))!.outcome).toBe("succeeded");
  });

  test("a write QuestDB refuses fails the run with QuestDB's reason on one line, and close reports one nobody did", async () => {
    const { s, prefix } = await fresh();
    // A column of another type: QuestDB answers 400 for the whole write.
    await sql!.unsafe(`ALTER TABLE "${prefix}bars" DROP COLUMN volume`);
    await sql!.unsafe(`ALTER TABLE "${prefix}bars" ADD COLUMN volume BOOLEAN`);
    const run = await s.startRun({ kind: "ingest", source: "src" });
    // Gathered, not yet written: commitBatch cannot know yet.
    await s.commitBatch({ runId: run, source: "src", bars: [bar("A.US", "2024-01-02", 5)], quarantine: [], read: 1 });
    await expect(s.countBars()).resolves.toBe(0);
    const next = s.commitBatch({ runId: run, source: "src", bars: [bar("A.US", "2024-01-03", 6)], quarantine: [], read: 1 });
    await expect(next).rejects.toThrow(/^QuestDB refused an earlier write of run \d+: QuestDB \/write answered 400: .*cast error.*BOOLEAN/);
    const finishing = s.finishRun(run, { outcome: "succeeded", read: 2, inserted: 2, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
    await expect(finishing).rejects.toThrow(/refused/);
    const r = await s.getRun(run);
    expect(r!.outcome).toBe("failed");
    expect(r!.error).not.toContain("\n");
    expect(r!.error).toContain("cast error");

    // A refused write that no later call reported: close says so.
    const run2 = await s.startRun({ kind: "ingest", source: "src" });
    await s.commitBatch({ runId: run2, source: "src", bars: [bar("B.US", "2024-01-02", 5)], quarantine: [], read: 1 });
    await expect(s.close()).rejects.toThrow(new RegExp(`QuestDB refused a write of run ${run2} \\(its bars are not stored\\)`));
  });

  test("the lookup of stored bars keeps series of one symbol apart, quotes symbols, and counts a re-load of many bars exactly", async () => {
    const { s } = await fresh();
    const run = await s.startRun({ kind: "ingest", source: "src" });
    const bars: Bar[] = [];
    // Two years of one symbol in three series (daily from two sources, weekly), and a symbol with a quote.
    for (let i = 0; i < 730; i++) {
      const date = new Date(day("2022-01-01") + i * 86_400_000).toISOString().slice(0, 10);
      bars.push(bar("O'NEIL.US", date, 10 + i / 100, { trades: i, adjClose: i % 3 ? 9 + i / 100 : undefined }));
      bars.push({ ...bar("O'NEIL.US", date, 20 + i / 100), source: "other" });
      if (i % 7 === 0) bars.push({ ...bar("O'NEIL.US", date, 30 + i / 100), interval: "1w" });
      bars.push(bar("PLAIN.US", date, 0.1 + i * 0.07, { turnover: i * 0.3 }));
    }
    const half = bars.length >> 1;
    expect(await s.commitBatch({ runId: run, source: "src", bars: bars.slice(0, half), quarantine: [], read: half })).toMatchObject({ inserted: half });
    // Overlapping the first half: those bars are unchanged, the rest new.
    expect(await s.commitBatch({ runId: run, source: "src", bars, quarantine: [], read: bars.length })).toMatchObject({ inserted: bars.length - half, updated: 0, unchanged: half });
    expect(await s.commitBatch({ runId: run, source: "src", bars, quarantine: [], read: bars.length })).toMatchObject({ inserted: 0, updated: 0, unchanged: bars.length });
    // One change in each column, each in another series: only those are updates.
    const changed = bars.map((b) => ({ ...b }));
    const at = (symbol: string, source: string, interval: string, date: string) => changed.findIndex((b) => b.symbol === symbol && b.source === source && b.interval === interval && b.ts === day(date));
    changed[at("O'NEIL.US", "src", "1d", "2022-03-01")]!.adjClose = 1.5;
    changed[at("O'NEIL.US", "src", "1d", "2022-03-03")]!.adjClose = undefined; // a stored value becomes null
    changed[at("O'NEIL.US", "other", "1d", "2022-03-01")]!.close += 0.01;
    changed[at("O'NEIL.US", "src", "1w", "2022-01-01")]!.volume = 7;
    changed[at("PLAIN.US", "src", "1d", "2023-12-31")]!.turnover = 0.1 + 0.2; // not 0.3: a double's last bit
    changed[at("O'NEIL.US", "src", "1d", "2022-06-01")]!.trades = 1;
    expect(await s.commitBatch({ runId: run, source: "src", bars: changed, quarantine: [], read: changed.length })).toMatchObject({ inserted: 0, updated: 6, unchanged: changed.length - 6 });
    const stored = await s.queryBars({ symbol: "PLAIN.US", interval: "1d", from: day("2023-12-31"), limit: 1 });
    expect(stored[0]!.turnover).toBe(0.1 + 0.2);
  });

  /**
   * A TCP proxy to QuestDB's HTTP port that reads what the client sends in small slices with
   * pauses between them: the client's socket stays full, so the request body's stream is pulled
   * only as the proxy drains it (the write path then reuses chunk buffers under backpressure).
   */
  async function slowProxy(): Promise<{ server: Server; url: string; forwarded: () => number }> {
    const target = new URL(QDB_HTTP!);
    let forwarded = 0;
    const server = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      upstream.pipe(client);
      client.on("data", (d) => {
        forwarded += d.length;
        upstream.write(d);
        client.pause();
        setTimeout(() => client.resume(), 2);
      });
      client.on("end", () => upstream.end());
      const close = () => (client.destroy(), upstream.destroy());
      client.on("error", close);
      upstream.on("error", close);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, forwarded: () => forwarded };
  }

  test("a bulk load streams its bars into one transaction per write, every bar intact through a slow connection", async () => {
    const proxy = await slowProxy();
    try {
      const { prefix } = await fresh();
      // The same store through the proxy: writes of two chunks, so one write streams several.
      const lines = ILP_CHUNK_LINES * 2;
      const url = kind.freshUrl("").replace(/http=[^&]+/, `http=${proxy.url}`).replace(/prefix=[^&]+/, `prefix=${prefix}`) + `&lines=${lines}`;
      const s = kind.open(url);
      open.push(s);
      const run = await s.startRun({ kind: "ingest", source: "src" });
      const symbols = 100;
      const days = Math.ceil((ILP_CHUNK_LINES * 3.2) / symbols);
      const bars: Bar[] = [];
      let sum = 0;
      for (let k = 0; k < symbols; k++)
        for (let d = 0; d < days; d++) {
          const close = 10 + k + d / 1000 + 1e-9 * ((k * 7919 + d) % 1000);
          sum += close;
          bars.push({ ...bar(`S${k}.US`, "2000-01-03", close, { trades: d }), ts: day("2000-01-03") + d * 86_400_000 });
        }
      // A write ends at the first batch that brings it to `lines` lines; the last one at the read.
      const batch = Math.round(ILP_CHUNK_LINES * 0.8);
      let writes = 0;
      let held = 0;
      for (let i = 0; i < bars.length; i += batch) {
        const part = bars.slice(i, i + batch);
        expect(await s.commitBatch({ runId: run, source: "src", bars: part, quarantine: [], read: part.length })).toMatchObject({ inserted: part.length });
        held += part.length;
        if (held >= lines) {
          writes++;
          held = 0;
        }
      }
      if (held > 0) writes++;
      expect(writes).toBeGreaterThan(1);
      // A read ends the open write and waits for it.
      expect(await s.countBars()).toBe(bars.length);
      const [txns] = await sql!`SELECT sequencerTxn FROM wal_tables() WHERE name = ${`${prefix}bars`}`;
      expect(Number(txns!.sequencerTxn)).toBe(writes);
      const [got] = await sql!.unsafe(`SELECT count() AS n, sum(close) AS close, sum(trades) AS trades FROM "${prefix}bars"`);
      expect(Number(got!.n)).toBe(bars.length);
      expect(Math.abs(Number(got!.close) - sum)).toBeLessThan(1e-6);
      expect(Number(got!.trades)).toBe((symbols * days * (days - 1)) / 2);
      // Every bar as written, each number compared.
      const back = await sql!.unsafe(`SELECT symbol, cast(ts AS long) AS ts, open, high, low, close, volume, trades FROM "${prefix}bars"`);
      const byKey = new Map(bars.map((b) => [`${b.symbol} ${b.ts}`, b]));
      let same = 0;
      for (const r of back) {
        const b = byKey.get(`${r.symbol} ${Number(r.ts) / 1000}`);
        if (b && r.open === b.open && r.high === b.high && r.low === b.low && r.close === b.close && r.volume === b.volume && Number(r.trades) === b.trades) same++;
      }
      expect(same).toBe(bars.length);
      expect(await s.commitBatch({ runId: run, source: "src", bars, quarantine: [], read: bars.length })).toMatchObject({ inserted: 0, updated: 0, unchanged: bars.length });
      expect(proxy.forwarded()).toBeGreaterThan(bars.length * 100);
      await s.finishRun(run, { outcome: "succeeded", read: bars.length * 2, inserted: bars.length, updated: 0, unchanged: bars.length, quarantined: 0, fromTs: null, toTs: null, quality: null });
    } finally {
      proxy.server.close();
    }
  });

  test("while anyone listens for events, a write ends at LINES_WHILE_LISTENED lines (its events wait for its end in memory)", async () => {
    const { s, prefix } = await fresh();
    const delivered: number[] = [];
    const stop = s.onEvents((events) => delivered.push(events.length));
    try {
      const run = await s.startRun({ kind: "ingest", source: "src" });
      const batch = 20_000;
      const total = LINES_WHILE_LISTENED + 2 * batch;
      for (let i = 0; i < total; i += batch) {
        const bars = Array.from({ length: batch }, (_, j) => ({ ...bar(`W${(i + j) % 50}.US`, "2000-01-03", 10 + j / 1000), ts: day("2000-01-03") + Math.floor((i + j) / 50) * 86_400_000 }));
        expect(await s.commitBatch({ runId: run, source: "src", bars, quarantine: [], read: batch })).toMatchObject({ inserted: batch });
      }
      expect(await s.countBars()).toBe(total);
      // Two writes: the first ended at the batch that brought it to the limit, the rest at the read.
      const [txns] = await sql!`SELECT sequencerTxn FROM wal_tables() WHERE name = ${`${prefix}bars`}`;
      expect(Number(txns!.sequencerTxn)).toBe(2);
      expect(delivered).toEqual([LINES_WHILE_LISTENED, 2 * batch]);
      await s.finishRun(run, { outcome: "succeeded", read: total, inserted: total, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
    } finally {
      stop();
    }
  });

  test("a re-load that changes bars batch after batch keeps one write open; a batch meeting bars not yet readable waits for them", async () => {
    const { s, prefix } = await fresh();
    const run = await s.startRun({ kind: "ingest", source: "src" });
    const series = (symbol: string, close: number) => Array.from({ length: 100 }, (_, d) => ({ ...bar(symbol, "2020-01-01", close + d), ts: day("2020-01-01") + d * 86_400_000 }));
    const commit = (bars: Bar[]) => s.commitBatch({ runId: run, source: "src", bars, quarantine: [], read: bars.length });
    for (const x of ["P", "Q", "R", "S"]) expect(await commit(series(`${x}.US`, 10))).toMatchObject({ inserted: 100 });
    expect(await s.countBars()).toBe(400);
    const txns = async () => Number((await sql!`SELECT sequencerTxn FROM wal_tables() WHERE name = ${`${prefix}bars`}`)[0]!.sequencerTxn);
    const t0 = await txns();
    // Each batch another series, every bar changed: nothing to wait for, one transaction.
    for (const x of ["P", "Q", "R", "S"]) expect(await commit(series(`${x}.US`, 20))).toMatchObject({ inserted: 0, updated: 100 });
    expect(await s.countBars()).toBe(400);
    expect(await txns()).toBe(t0 + 1);
    // P changed again, then P unchanged: the second batch meets the first's bars, waits for them
    // and finds them (unchanged, not updated again).
    expect(await commit(series("P.US", 30))).toMatchObject({ updated: 100 });
    expect(await commit(series("P.US", 30))).toMatchObject({ inserted: 0, updated: 0, unchanged: 100 });
    expect((await s.queryBars({ symbol: "P.US", interval: "1d", limit: 1 }))[0]!.close).toBe(30);
    await s.finishRun(run, { outcome: "succeeded", read: 1000, inserted: 400, updated: 500, unchanged: 100, quarantined: 0, fromTs: null, toTs: null, quality: null });
  });

  test("an unchanged re-load is confirmed from sums of row hashes; series with a changed, swapped, missing or unhashed bar are read back bar by bar", async () => {
    const { url, prefix } = await fresh();
    const proxy = recordingProxy();
    try {
      const s = reopen(url, proxy.url);
      const run = await s.startRun({ kind: "ingest", source: "src" });
      const bars: Bar[] = [];
      for (const symbol of ["A.US", "B.US", "C.US"])
        for (let d = 0; d < 200; d++) bars.push({ ...bar(symbol, "2020-01-01", 50 + d / 8 + symbol.charCodeAt(0), { trades: d }), ts: day("2020-01-01") + d * 86_400_000 });
      const commit = (list: Bar[]) => s.commitBatch({ runId: run, source: "src", bars: list, quarantine: [], read: list.length });
      expect(await commit(bars)).toMatchObject({ inserted: 600 });
      expect(await s.countBars()).toBe(600);
      const [hashed] = await sql!.unsafe(`SELECT count() AS n, count(row_hash) AS hashed FROM "${prefix}bars"`);
      expect([Number(hashed!.n), Number(hashed!.hashed)]).toEqual([600, 600]);

      // Unchanged: QuestDB is asked for counts and sums only, no bar is read back.
      proxy.queries.length = 0;
      expect(await commit(bars)).toMatchObject({ inserted: 0, updated: 0, unchanged: 600 });
      expect(proxy.queries.some((q) => q.includes("sum(row_hash)"))).toBe(true);
      expect(readBack(proxy.queries)).toEqual([]);

      // Two days of A with their numbers swapped (each day's own numbers are unchanged as a set):
      // A is read back and both are updates.
      const swapped = bars.map((b) => ({ ...b }));
      const [x, y] = [swapped[10]!, swapped[11]!];
      [swapped[10], swapped[11]] = [{ ...y, ts: x.ts }, { ...x, ts: y.ts }];
      proxy.queries.length = 0;
      expect(await commit(swapped)).toMatchObject({ inserted: 0, updated: 2, unchanged: 598 });
      expect(readBack(proxy.queries)).toEqual(["A.US"]);

      // B's bars as stored before row hashes (null): read back, found unchanged, and given their
      // hashes on the way (the next re-load reads nothing back).
      await sql!.unsafe(`UPDATE "${prefix}bars" SET row_hash = null WHERE symbol = 'B.US'`);
      await walApplied(`${prefix}bars`);
      proxy.queries.length = 0;
      expect(await commit(swapped)).toMatchObject({ inserted: 0, updated: 0, unchanged: 600 });
      expect(readBack(proxy.queries)).toEqual(["B.US"]);
      proxy.queries.length = 0;
      expect(await commit(swapped)).toMatchObject({ inserted: 0, updated: 0, unchanged: 600 });
      expect(readBack(proxy.queries)).toEqual([]);

      // One close of C changed, and a batch without one of C's stored bars: C is read back each time.
      const moved = swapped.map((b) => ({ ...b }));
      const c = moved.findIndex((b) => b.symbol === "C.US" && b.ts === day("2020-03-01"));
      moved[c]!.close += 1e-9;
      proxy.queries.length = 0;
      expect(await commit(moved.filter((b) => b.symbol === "C.US"))).toMatchObject({ inserted: 0, updated: 1, unchanged: 199 });
      expect(readBack(proxy.queries)).toEqual(["C.US"]);
      const gap = moved.filter((b, i) => i !== c + 5);
      proxy.queries.length = 0;
      expect(await commit(gap)).toMatchObject({ inserted: 0, updated: 0, unchanged: 599 });
      expect(readBack(proxy.queries)).toEqual(["C.US"]);
      expect((await s.queryBars({ symbol: "C.US", interval: "1d", from: day("2020-03-01"), limit: 1 }))[0]!.close).toBe(moved[c]!.close);

      // Series whose ranges in the batch all differ: the first ones are asked one range each, the
      // rest in one query giving each its own range; one changed bar in each kind of query.
      const ranged: Bar[] = [];
      for (let k = 0; k < 7; k++)
        for (let d = k * 3; d < 150 - k; d++) ranged.push({ ...bar(`R${String.fromCharCode(65 + k)}.US`, "2020-01-01", 30 + d / 4 + k, { trades: d }), ts: day("2020-01-01") + d * 86_400_000 });
      expect(await commit(ranged)).toMatchObject({ inserted: ranged.length });
      proxy.queries.length = 0;
      expect(await commit(ranged)).toMatchObject({ inserted: 0, updated: 0, unchanged: ranged.length });
      const totals = proxy.queries.filter((q) => q.includes("sum(row_hash)"));
      expect(totals.map((q) => q.includes(" OR ("))).toEqual([false, false, false, false, true]);
      expect(readBack(proxy.queries)).toEqual([]);
      const edited = ranged.map((b) => (b.symbol === "RA.US" && b.ts === day("2020-02-01")) || (b.symbol === "RG.US" && b.ts === day("2020-03-01")) ? { ...b, low: b.low - 0.5 } : b);
      proxy.queries.length = 0;
      expect(await commit(edited)).toMatchObject({ inserted: 0, updated: 2, unchanged: ranged.length - 2 });
      expect(readBack(proxy.queries).sort()).toEqual(["RA.US", "RG.US"]);

      // Long symbols: lookups are split so no URL passes QuestDB's limit (about 64 KB).
      const long: Bar[] = [];
      for (let k = 0; k < 40; k++) for (let d = 0; d < 5; d++) long.push({ ...bar(`L${k}${"x".repeat(3000)}.US`, "2020-01-01", 10 + d), ts: day("2020-01-01") + d * 86_400_000 });
      expect(await commit(long)).toMatchObject({ inserted: 200 });
      proxy.queries.length = 0;
      expect(await commit(long)).toMatchObject({ inserted: 0, updated: 0, unchanged: 200 });
      expect(proxy.queries.filter((q) => q.includes("sum(row_hash)")).length).toBeGreaterThan(2);
      long[3]!.close += 1;
      expect(await commit(long)).toMatchObject({ inserted: 0, updated: 1, unchanged: 199 });
      await s.finishRun(run, { outcome: "succeeded", read: 0, inserted: 600, updated: 3, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
    } finally {
      proxy.server.stop(true);
    }
  });

  test("a store from before row hashes gets the column and a key from its migration; its first re-load gives its bars their hashes, keeping their run_id and updated_at", async () => {
    const url = kind.freshUrl("");
    urls.push(url);
    const prefix = new URL(url).searchParams.get("prefix")!;
    // The bars table as schema versions 1 to 4 made it (no row_hash), with bars written over ILP.
    await sql!.unsafe(`CREATE TABLE "${prefix}bars" (
        symbol SYMBOL, interval SYMBOL, source SYMBOL, ts TIMESTAMP,
        open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE, adj_close DOUBLE, turnover DOUBLE, trades LONG,
        run_id LONG, updated_at TIMESTAMP
      ) TIMESTAMP(ts) PARTITION BY MONTH WAL DEDUP UPSERT KEYS(ts, symbol, interval, source)`);
    const bars = Array.from({ length: 50 }, (_, d) => ({ ...bar("OLD.US", "2021-01-01", 20 + d, d % 2 ? { adjClose: 19 + d } : {}), ts: day("2021-01-01") + d * 86_400_000 }));
    // Every other bar with an updated_at, the others without (null): both kept as they were.
    const lines = bars
      .map((b, d) => `${prefix}bars,symbol=OLD.US,interval=1d,source=src open=${b.open},high=${b.high},low=${b.low},close=${b.close},volume=${b.volume}.0${b.adjClose ? `,adj_close=${b.adjClose}.0` : ""},run_id=${7 + (d % 3)}i${d % 2 ? "" : `,updated_at=${1_600_000_000_000_000 + d}t`} ${b.ts}\n`)
      .join("");
    expect((await fetch(`${QDB_HTTP}/write?precision=ms`, { method: "POST", body: lines })).status).toBe(204);
    await walApplied(`${prefix}bars`);
    const asStored = async () => [...(await sql!.unsafe(`SELECT cast(ts AS long) AS ts, run_id, cast(updated_at AS long) AS u, open, adj_close FROM "${prefix}bars" ORDER BY ts`))].map((r) => [r.ts, r.run_id, r.u, r.open, r.adj_close].map(String).join(" "));
    const before = await asStored();

    const s = reopen(url);
    expect(await s.ready()).toMatchObject({ ok: false, expectedVersion: 5 });
    expect((await s.migrate()).applied).toEqual([1, 2, 3, 4, 5]);
    const [key] = await sql!.unsafe(`SELECT cursor FROM "${prefix}progress" WHERE kind = 'meta' AND key = 'row_hash_key'`);
    expect(String(key!.cursor)).toMatch(/^[0-9a-f]{16}$/);
    const run = await s.startRun({ kind: "ingest", source: "src" });
    // The first re-load reads the bars back (no hashes), finds them unchanged and writes them again
    // with their hashes, as they were otherwise: no journal row, no event.
    const events: number[] = [];
    const stop = s.onEvents((e) => events.push(e.length));
    expect(await s.commitBatch({ runId: run, source: "src", bars, quarantine: [], read: 50 })).toMatchObject({ inserted: 0, updated: 0, unchanged: 50 });
    expect(await s.countBars()).toBe(50);
    stop();
    expect(events).toEqual([]);
    const [hashed] = await sql!.unsafe(`SELECT count(row_hash) AS n FROM "${prefix}bars"`);
    expect(Number(hashed!.n)).toBe(50);
    expect(await asStored()).toEqual(before);
    const [journal] = await sql!.unsafe(`SELECT count() AS n FROM "${prefix}journal"`);
    expect(Number(journal!.n)).toBe(0);

    // The next re-load asks for sums only.
    const proxy = recordingProxy();
    try {
      const viaProxy = reopen(url, proxy.url);
      const r2 = await viaProxy.startRun({ kind: "ingest", source: "src" });
      expect(await viaProxy.commitBatch({ runId: r2, source: "src", bars, quarantine: [], read: 50 })).toMatchObject({ inserted: 0, updated: 0, unchanged: 50 });
      expect(readBack(proxy.queries)).toEqual([]);
      const changed = bars.map((b, i) => (i === 7 ? { ...b, volume: 1 } : b));
      expect(await viaProxy.commitBatch({ runId: r2, source: "src", bars: changed, quarantine: [], read: 50 })).toMatchObject({ inserted: 0, updated: 1, unchanged: 49 });
      await viaProxy.finishRun(r2, { outcome: "succeeded", read: 100, inserted: 0, updated: 1, unchanged: 99, quarantined: 0, fromTs: null, toTs: null, quality: null });
      await viaProxy.close();
    } finally {
      proxy.server.stop(true);
    }
    await s.finishRun(run, { outcome: "succeeded", read: 50, inserted: 0, updated: 0, unchanged: 50, quarantined: 0, fromTs: null, toTs: null, quality: null });
    await s.close();

    // The key lost: writing refuses until a migration makes a new one; then a re-load with one
    // changed bar counts right (bars hashed with the old key no longer match their sums).
    await sql!.unsafe(`UPDATE "${prefix}progress" SET cursor = null WHERE kind = 'meta'`);
    await walApplied(`${prefix}progress`);
    const lost = reopen(url);
    const r3 = await lost.startRun({ kind: "ingest", source: "src" });
    await expect(lost.commitBatch({ runId: r3, source: "src", bars, quarantine: [], read: 50 })).rejects.toThrow(/^the QuestDB store has no row hash key: it is made when the store is migrated/);
    expect((await lost.migrate()).applied).toEqual([]);
    const [fresh2] = await sql!.unsafe(`SELECT cursor FROM "${prefix}progress" WHERE kind = 'meta' AND key = 'row_hash_key'`);
    expect(String(fresh2!.cursor)).toMatch(/^[0-9a-f]{16}$/);
    expect(String(fresh2!.cursor)).not.toBe(String(key!.cursor));
    const healed = reopen(url);
    const r4 = await healed.startRun({ kind: "ingest", source: "src" });
    const again = bars.map((b, i) => (i === 20 ? { ...b, high: b.high + 1 } : i === 7 ? { ...b, volume: 1 } : b));
    expect(await healed.commitBatch({ runId: r4, source: "src", bars: again, quarantine: [], read: 50 })).toMatchObject({ inserted: 0, updated: 1, unchanged: 49 });
    await healed.finishRun(r4, { outcome: "succeeded", read: 50, inserted: 0, updated: 1, unchanged: 49, quarantined: 0, fromTs: null, toTs: null, quality: null });
  });
});

// Replay against real stores: GET /api/replay (stored bars of several symbols merged in
// (ts, symbol, source) order as NDJSON) and the WebSocket's `replay` (paced, then live with no gap
// and no duplicate), on a SQLite file and the real PostgreSQL; the query plans that make a page one
// merge of index ranges; the k-way merge fallback of stores without range reads.
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import type { Bar } from "../src/domain/bar.ts";
import type { Store } from "../src/stores/types.ts";
import { createApp } from "../src/http/app.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { createHub } from "../src/stream/hub.ts";
import { streamWebSocket } from "../src/stream/ws.ts";
import { defaultStreamConfig } from "../src/stream/config.ts";
import { defaultReplayConfig, type ReplayConfig } from "../src/stream/range-read.ts";
import { CHUNK_SQL as sqliteChunkSql } from "../src/stores/sqlite/replay.ts";
import { rangeSql as pgRangeSql } from "../src/stores/postgres/replay.ts";
import { parsePgUrl } from "../src/stores/postgres/url.ts";
import { Database } from "bun:sqlite";
import type { RangeRow } from "../src/stores/types.ts";
import { dropQuestdbTables, STORES } from "./stores.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-replay-");
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const T0 = Date.UTC(2024, 0, 2, 9, 0);
const MIN = 60_000;
const bar = (symbol: string, i: number, source = "test", close = 10 + i / 100): Bar => ({ source, symbol, interval: "1m", ts: T0 + i * MIN, open: 10, high: 12, low: 9, close, volume: 100 + i });

async function commit(store: Store, bars: Bar[], source = "test") {
  const run = await store.startRun({ kind: "ingest", source });
  await store.commitBatch({ runId: run, source, bars, quarantine: [], read: bars.length });
}

/** The fixture: three symbols with gaps, two sources of one symbol (ties at every ts), a 1d bar. */
function fixture(): Bar[] {
  const out: Bar[] = [];
  for (let i = 0; i < 120; i++) {
    out.push(bar("CDR.WA", i));
    if (i % 3) out.push(bar("PKN.WA", i));
    if (i % 2 === 0) out.push(bar("ALE.WA", i));
  }
  return out;
}

const key = (b: { ts: number | string; symbol: string; source: string }) => `${typeof b.ts === "number" ? new Date(b.ts).toISOString() : b.ts}|${b.symbol}|${b.source}`;
const order = (a: Bar, b: Bar) => a.ts - b.ts || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : a.source < b.source ? -1 : a.source > b.source ? 1 : 0);

type Line = { type: string; symbol: string; source: string; interval: string; ts: string; close: number; next?: string; rows?: number };
async function replayLines(app: ReturnType<typeof createApp>, qs: string): Promise<{ status: number; lines: Line[]; text: string }> {
  const res = await app.request(`/api/replay?${qs}`);
  const text = await res.text();
  if (res.status !== 200) return { status: res.status, lines: [], text };
  return { status: 200, lines: text.split("\n").filter(Boolean).map((l) => JSON.parse(l)), text };
}

for (const factory of STORES) {
  describe.skipIf(factory.unavailable !== null)(`replay on ${factory.kind}`, () => {
    // QuestDB has no range reads (readRange): /api/replay and the WebSocket's replay merge its
    // per-symbol pages instead (the fallback, tested here on every store).
    const ranges = factory.kind !== "questdb";
    const lacks = `(skipped: the ${factory.kind} store has no range reads)`;
    const limits: ReplayConfig = { ...defaultReplayConfig(), pageRows: 100, maxSymbols: 3 };
    let store: Store;
    let app: ReturnType<typeof createApp>;
    const all = fixture().concat([bar("CDR.WA", 5, "other"), bar("CDR.WA", 6, "other"), bar("CDR.WA", 7, "alpha"), { ...bar("CDR.WA", 0), interval: "1d" }]);
    const url = factory.freshUrl(dir);
    cleanups.push(() => dropQuestdbTables([url])); // last: after every handle on it is closed

    test("setup", async () => {
      store = factory.open(url);
      cleanups.push(() => store.close());
      await store.migrate();
      await commit(store, all.filter((b) => b.source === "test"));
      await commit(store, all.filter((b) => b.source === "other"), "other");
      await commit(store, all.filter((b) => b.source === "alpha"), "alpha");
      app = createApp({ store, metrics: ticksyncMetrics(), replay: limits });
    });

    test("merges symbols in (ts, symbol, source) order over pages, ties included, range inclusive", async () => {
      const from = T0 + 3 * MIN;
      const to = T0 + 100 * MIN;
      const want = all.filter((b) => b.interval === "1m" && b.ts >= from && b.ts <= to).sort(order);
      const r = await replayLines(app, `symbols=PKN.WA,cdr.pl,ALE.WA&interval=1m&from=${from}&to=${new Date(to).toISOString()}`);
      expect(r.status).toBe(200);
      expect(r.lines.length).toBe(want.length);
      expect(r.lines.map(key)).toEqual(want.map(key));
      // Ties: one ts, every symbol, CDR.WA's sources in byte order.
      expect(r.lines.filter((l) => l.ts === new Date(T0 + 6 * MIN).toISOString()).map((l) => `${l.symbol}/${l.source}`)).toEqual(["ALE.WA/test", "CDR.WA/other", "CDR.WA/test"]);
      expect(r.lines[0]).toEqual({ type: "bar", symbol: "CDR.WA", source: "test", interval: "1m", ts: new Date(from).toISOString(), open: 10, high: 12, low: 9, close: 10.03, volume: 103 } as any);
      // One source only.
      const only = await replayLines(app, `symbols=CDR.WA&interval=1m&source=other&from=${T0}&to=${to}`);
      expect(only.lines.map((l) => l.ts)).toEqual([5, 6].map((i) => new Date(T0 + i * MIN).toISOString()));
      // Another interval, an empty range, a symbol with nothing stored.
      expect((await replayLines(app, `symbols=CDR.WA,PKN.WA&interval=1d&from=2024-01-01&to=2024-01-03`)).lines.length).toBe(1);
      expect((await replayLines(app, `symbols=CDR.WA&interval=1m&from=2023-01-01&to=2023-02-01`)).text).toBe("");
      expect((await replayLines(app, `symbols=KGH.WA&interval=1m&from=2023-01-01`)).text).toBe("");
    });

    test("maxRows ends with a truncated line whose cursor continues exactly where it stopped", async () => {
      const small = createApp({ store, metrics: ticksyncMetrics(), replay: { ...limits, maxRows: 150 } });
      const want = all.filter((b) => b.interval === "1m").sort(order);
      const got: Line[] = [];
      let qs = `symbols=PKN.WA,CDR.WA,ALE.WA&interval=1m&from=${T0}&to=${T0 + 200 * MIN}`;
      for (let i = 0; i < 10; i++) {
        const r = await replayLines(small, qs);
        const last = r.lines.at(-1)!;
        if (last.type !== "truncated") {
          got.push(...r.lines);
          break;
        }
        expect(last.rows).toBe(150);
        got.push(...r.lines.slice(0, -1));
        qs = `symbols=PKN.WA,CDR.WA,ALE.WA&interval=1m&from=${T0}&to=${T0 + 200 * MIN}&cursor=${last.next}`;
      }
      expect(got.map(key)).toEqual(want.map(key));
    });

    test.skipIf(!ranges)(`the store's range reader gives the same order at any page size, resuming from a cursor ${ranges ? "" : lacks}`, async () => {
      // Small pages and skew (PKN.WA only from bar 60, ALE.WA only to 40) make chunks run out mid-page.
      await commit(store, [...Array(30)].map((_, i) => bar("KGH.WA", 200 + i)));
      const want = all.filter((b) => b.interval === "1m").concat([...Array(30)].map((_, i) => bar("KGH.WA", 200 + i))).sort(order);
      const symbols = ["PKN.WA", "CDR.WA", "ALE.WA", "KGH.WA"];
      for (const limit of [1, 2, 7, 33, 1000]) {
        const reader = store.readRange!({ symbols, interval: "1m", from: T0, to: T0 + 1000 * MIN });
        const got: string[] = [];
        for (let p = await reader.next(limit); p.rows.length; p = await reader.next(limit)) {
          expect(p.rows.length).toBeLessThanOrEqual(limit);
          got.push(...p.rows.map((r) => key({ ts: r[0], symbol: r[1], source: r[2] })));
        }
        expect(got).toEqual(want.map(key));
      }
      // From a cursor in the middle of a tie (CDR.WA/other at bar 6): the rest, exactly.
      const at = want.findIndex((b) => b.symbol === "CDR.WA" && b.source === "other" && b.ts === T0 + 6 * MIN);
      const resumed = store.readRange!({ symbols, interval: "1m", from: T0, to: T0 + 1000 * MIN, after: { ts: T0 + 6 * MIN, symbol: "CDR.WA", source: "other" } });
      const rest: string[] = [];
      for (let p = await resumed.next(5); p.rows.length; p = await resumed.next(5)) rest.push(...p.rows.map((r) => key({ ts: r[0], symbol: r[1], source: r[2] })));
      expect(rest).toEqual(want.slice(at + 1).map(key));
    });

    test.skipIf(!ranges)(`a write between pages shows in the next page, by this connection or another ${ranges ? "" : lacks}`, async () => {
      const other = factory.open(url);
      cleanups.push(() => other.close());
      const fresh = [...Array(10)].flatMap((_, i) => [bar("CDR.WA", 400 + i), bar("PKN.WA", 400 + i)]);
      await commit(store, fresh);
      const reader = store.readRange!({ symbols: ["PKN.WA", "CDR.WA"], interval: "1m", from: T0 + 400 * MIN, to: T0 + 500 * MIN });
      const closes = (rows: RangeRow[]) => rows.map((r) => `${r[1]}@${(r[0] - T0) / MIN}:${r[6]}`);
      expect(closes((await reader.next(3)).rows)).toEqual(["CDR.WA@400:14", "PKN.WA@400:14", "CDR.WA@401:14.01"]);
      await commit(store, [bar("CDR.WA", 402, "test", 1)]);
      expect(closes((await reader.next(3)).rows)).toEqual(["PKN.WA@401:14.01", "CDR.WA@402:1", "PKN.WA@402:14.02"]);
      await commit(other, [bar("PKN.WA", 406, "test", 2), bar("PKN.WA", 450)]);
      const rest = closes((await reader.next(100)).rows);
      expect(rest.length).toBe(15);
      expect(rest).toContain("PKN.WA@406:2");
      expect(rest.at(-1)).toBe("PKN.WA@450:14.5");
    });

    test("the fallback merge of per-symbol pages (stores without range reads) gives the same lines", async () => {
      const bare = { ...store, readRange: undefined } as Store;
      const viaMerge = createApp({ store: bare, metrics: ticksyncMetrics(), replay: { ...limits, maxRows: 97 } });
      const qs = `symbols=PKN.WA,CDR.WA,ALE.WA&interval=1m&from=${T0 + 10 * MIN}&to=${T0 + 90 * MIN}`;
      const a = await replayLines(app, qs);
      const got: Line[] = [];
      let q = qs;
      for (;;) {
        const r = await replayLines(viaMerge, q);
        const last = r.lines.at(-1);
        if (last?.type !== "truncated") {
          got.push(...r.lines);
          break;
        }
        got.push(...r.lines.slice(0, -1));
        q = `${qs}&cursor=${last.next}`;
      }
      expect(got.map(key)).toEqual(a.lines.map(key));
    });

    test("bad input: one 400 with the reason", async () => {
      const cases: [string, string][] = [
        [`interval=1m&from=${T0}`, "symbols"],
        [`symbols=A.WA,B.WA,C.WA,D.WA&from=${T0}`, "at most 3 symbols"],
        [`symbols=CDR.WA&from=${T0 + 1}&to=${T0}`, "from must not be after to"],
        [`symbols=CDR.WA&from=yesterday`, "expected an ISO date"],
        [`symbols=CDR.WA`, "from"],
        [`symbols=CDR.WA&from=${T0}&interval=bogus`, "expected one of"],
        [`symbols=CDR.WA&from=${T0}&cursor=xyz`, "truncated replay"],
        [`symbols=%%%bad&from=${T0}`, ""],
        [`symbols=CDR.WA&from=${T0}&limit=5`, "limit"],
      ];
      for (const [qs, reason] of cases) {
        const r = await replayLines(app, qs);
        expect(r.status, qs).toBe(400);
        expect(r.text.split("\n").length).toBe(1);
        expect(r.text).toContain(reason);
      }
    });

    test.skipIf(!ranges)(`a page merges index ranges: no sort in the plan ${ranges ? "" : lacks}`, async () => {
      if (factory.kind === "sqlite") {
        const db = new Database(url.slice("sqlite:".length), { readonly: true });
        // Each symbol's chunk is a range of the primary key in its own order (the heap merges them).
        const plan = (db.query(`EXPLAIN QUERY PLAN ${sqliteChunkSql}`).all(...Array(7).fill(null)) as { detail: string }[]).map((r) => r.detail).join("\n");
        db.close();
        expect(plan).toContain("USING PRIMARY KEY (symbol=? AND interval=? AND ts>? AND ts<?)");
        expect(plan).not.toContain("TEMP B-TREE");
      } else {
        const { url: u, schema } = parsePgUrl(url);
        const sql = postgres(u, { max: 1, onnotice: () => {}, connection: { search_path: schema } });
        const ids = (await sql`SELECT id, symbol, source FROM series WHERE interval = '1m' ORDER BY symbol COLLATE "C", source COLLATE "C"`).map((r) => ({ id: r.id, symbol: r.symbol, source: r.source }));
        const params = [new Date(T0 + 1000 * MIN), 100, ...ids.map(() => new Date(T0))];
        // The fixture is too small for the planner to prefer the merge to a sort of a few rows: with
        // sorts off, the plan shows the arms' index order serves (ts, number) alone.
        await sql`SET plan_cache_mode = force_generic_plan`;
        await sql`SET enable_sort = off`;
        const plan = (await sql.unsafe(`EXPLAIN ${pgRangeSql(ids)}`, params as any[]).values()).map((r) => r[0]).join("\n");
        await sql.end();
        // The arms merged on ts; ties (one ts, several series) ordered within their group only.
        expect(plan).toContain("Merge Append");
        expect(plan).toContain("Presorted Key: b.ts");
        expect(plan).not.toMatch(/(^|->)\s*Sort\s+\(cost/m);
      }
    });

    describe("WebSocket replay", () => {
      let wsBase = "";
      let hubStore: Store;
      test("setup", async () => {
        hubStore = factory.open(url);
        cleanups.push(() => hubStore.close());
        const config = { ...defaultStreamConfig(), pollMs: 30 };
        const hub = createHub({ store: hubStore, config, replay: { ...limits, pageRows: 20 } });
        await hub.start();
        const app2 = createApp({ store: hubStore, metrics: ticksyncMetrics(), stream: { hub, config } });
        const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app2.fetch, websocket: streamWebSocket(config) });
        cleanups.push(async () => {
          await hub.stop();
          await server.stop(true);
        });
        wsBase = `ws://127.0.0.1:${server.port}`;
      });

      type Msg = { type: string; status?: string; id?: number; message?: string; bar?: { symbol: string; source: string; ts: string; close: number }; [k: string]: unknown };
      async function client() {
        const ws = new WebSocket(`${wsBase}/api/ws`);
        const msgs: Msg[] = [];
        ws.onmessage = (e) => msgs.push(JSON.parse(String(e.data)));
        await new Promise<void>((resolve, reject) => ((ws.onopen = () => resolve()), (ws.onerror = () => reject(new Error("no connection")))));
        cleanups.push(async () => ws.close());
        return { ws, msgs, send: (m: unknown) => ws.send(JSON.stringify(m)), until: (p: (m: Msg[]) => unknown, what: string) => waitFor(() => p(msgs), 15_000, what) };
      }

      test("bad replay requests get an error reply and the connection stays", async () => {
        const c = await client();
        c.send({ op: "replay", symbols: ["CDR.WA"], from: T0 + 5, to: T0 });
        c.send({ op: "replay", symbols: ["CDR.WA"], from: T0, speed: 0 });
        c.send({ op: "replay", symbols: ["A.WA", "B.WA", "C.WA", "D.WA"], from: T0 });
        c.send({ op: "replay", symbols: ["???"], from: T0 });
        c.send({ op: "replay", symbols: ["CDR.WA"] });
        await c.until((m) => m.filter((x) => x.type === "error").length === 5, "5 errors");
        const errs = c.msgs.filter((x) => x.type === "error").map((x) => x.message!);
        expect(errs[0]).toContain("from must not be after to");
        expect(errs[1]).toContain("speed");
        expect(errs[2]).toContain("at most 3 symbols");
        expect(errs[4]).toContain("from");
        expect(c.ws.readyState).toBe(WebSocket.OPEN);
      });

      test("speed paces the replay; then bars committed meanwhile arrive exactly once, live", async () => {
        const c = await client();
        // 120 minutes of bars at 18,000× real time: 400 ms.
        const from = T0;
        const to = T0 + 200 * MIN;
        const t0 = performance.now();
        c.send({ op: "replay", symbols: ["CDR.WA", "PKN.WA"], interval: "1m", from, to, speed: 18_000 });
        await c.until((m) => m.some((x) => x.type === "replay" && Date.parse(x.bar!.ts) >= T0 + 30 * MIN), "the replay under way");
        // During the replay: a bar ahead of it (the replay reads it), an update of a bar it has sent
        // (live), a new bar beyond the range (live), and a bar of another interval (live).
        await commit(hubStore, [bar("CDR.WA", 110, "test", 99), bar("PKN.WA", 2, "test", 77), bar("CDR.WA", 300, "test", 55)]);
        await commit(hubStore, [{ ...bar("PKN.WA", 1), interval: "1d" }]);
        await c.until((m) => m.some((x) => x.status === "replay_done"), "replay_done");
        const elapsed = performance.now() - t0;
        expect(elapsed).toBeGreaterThanOrEqual(330);
        // The three that are live in any case (QuestDB sends a commit up to half a second later: its writes are gathered).
        const notAt110 = (x: Msg) => !(x.bar!.symbol === "CDR.WA" && Date.parse(x.bar!.ts) === T0 + 110 * MIN);
        await c.until((m) => m.filter((x) => x.type === "bar" && notAt110(x)).length >= 3, "the live bars");
        // Nothing more comes: a ping's pong follows everything published.
        c.send({ op: "ping" });
        await c.until((m) => m.some((x) => x.type === "pong"), "pong");
        await Bun.sleep(100);
        const replayed = c.msgs.filter((x) => x.type === "replay").map((x) => x.bar!);
        const want = all.filter((b) => b.interval === "1m" && (b.symbol === "CDR.WA" || b.symbol === "PKN.WA") && b.ts >= from && b.ts <= to);
        expect(replayed.map(key)).toEqual(want.sort(order).map(key));
        const live = c.msgs.filter((x) => x.type === "bar");
        // The bar ahead of the replay: in the replay as written (the usual case), or, when the
        // replay had passed it before the commit (a slow machine), the old value in the replay and
        // the new one live. The new value arrives exactly once either way.
        const at110 = (b: { symbol: string; ts: string; source: string }) => b.symbol === "CDR.WA" && b.ts === new Date(T0 + 110 * MIN).toISOString() && b.source === "test";
        const replayed110 = replayed.filter(at110);
        const live110 = live.map((x) => x.bar!).filter(at110);
        expect(replayed110.length).toBe(1);
        expect([...replayed110, ...live110].filter((b) => b.close === 99).length).toBe(1);
        expect(live110.length).toBe(replayed110[0]!.close === 99 ? 0 : 1);
        expect(live.filter((x) => !at110(x.bar!)).map((x) => `${x.bar!.symbol}@${x.bar!.ts}:${x.bar!.close}`).sort()).toEqual(
          [`CDR.WA@${new Date(T0 + 300 * MIN).toISOString()}:55`, `PKN.WA@${new Date(T0 + 2 * MIN).toISOString()}:77`, `PKN.WA@${new Date(T0 + MIN).toISOString()}:10.01`].sort(),
        );
        // The replay's messages come before the live ones, and in order.
        const firstLive = c.msgs.findIndex((x) => x.type === "bar");
        expect(c.msgs.findIndex((x) => x.status === "replay_done")).toBeLessThan(firstLive);
      });

      test("batch: several bars a message, the same bars in the same order; out of bounds is an error", async () => {
        const range = { symbols: ["CDR.WA", "ALE.WA"], interval: "1m", from: T0, to: T0 + 119 * MIN };
        const one = await client();
        one.send({ op: "replay", ...range });
        await one.until((m) => m.some((x) => x.status === "replay_done"), "replay_done (batch 1)");
        const many = await client();
        many.send({ op: "replay", ...range, batch: 7 });
        await many.until((m) => m.some((x) => x.status === "replay_done"), "replay_done (batch 7)");
        const singles = one.msgs.filter((x) => x.type === "replay");
        const batches = many.msgs.filter((x) => x.type === "replay").map((x) => x.bars as Msg["bar"][]);
        expect(singles.every((x) => x.bar && !("bars" in x))).toBe(true);
        expect(singles.length).toBe(all.filter((b) => b.interval === "1m" && range.symbols.includes(b.symbol) && b.ts <= range.to).length);
        expect(batches.flat()).toEqual(singles.map((x) => x.bar));
        expect(Math.max(...batches.map((b) => b.length))).toBe(7);
        expect(many.msgs.find((x) => x.status === "replay_done")!.bars).toBe(singles.length);
        // Paced (119 minutes at 36,000×: ~200 ms): what is due goes out before each wait, none lost.
        const paced = await client();
        const t0 = performance.now();
        paced.send({ op: "replay", ...range, batch: 50, speed: 36_000 });
        await paced.until((m) => m.some((x) => x.status === "replay_done"), "replay_done (paced)");
        expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
        const pacedBatches = paced.msgs.filter((x) => x.type === "replay").map((x) => x.bars as Msg["bar"][]);
        expect(pacedBatches.flat()).toEqual(singles.map((x) => x.bar));
        expect(pacedBatches.length).toBeGreaterThan(10);
        many.send({ op: "replay", ...range, batch: 0 });
        many.send({ op: "replay", ...range, batch: 1001 });
        await many.until((m) => m.filter((x) => x.type === "error").length === 2, "2 errors");
        expect(many.msgs.filter((x) => x.type === "error").map((x) => x.message)).toEqual([expect.stringContaining("batch must be at least 1"), expect.stringContaining("batch must be at most 1000")]);
      });

      test("a replay that would take hours stops on unsubscribe", async () => {
        const c = await client();
        c.send({ op: "replay", symbols: ["CDR.WA"], interval: "1m", from: T0, to: T0 + 100 * MIN, speed: 1 });
        await c.until((m) => m.some((x) => x.type === "replay"), "the first bar");
        const t = performance.now();
        c.send({ op: "unsubscribe", symbols: ["CDR.WA"] });
        await c.until((m) => m.some((x) => x.status === "unsubscribed"), "unsubscribed");
        expect(performance.now() - t).toBeLessThan(2000);
        const done = c.msgs.find((x) => x.status === "replay_done")!;
        expect(done.cancelled).toBe(true);
        expect(c.msgs.filter((x) => x.type === "replay").length).toBe(1);
      });
    });
  });
}

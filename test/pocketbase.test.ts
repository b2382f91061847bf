// The Pocketbase sink against a real Pocketbase server (scripts/services/pocketbase-instance.ts:
// the binary scripts/services/pocketbase.sh builds, a private data dir and port per test file).
// With CI=true a missing server fails; without CI the tests skip when it cannot be built.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import PocketBase from "pocketbase";
import { join } from "node:path";
import { cli, tempDir, writeFile, startServe, waitFor, pocketbaseForTests } from "./helpers.ts";
import { apiClient, ok } from "../src/http/client/index.ts";
import { startPocketbase, type PocketbaseInstance } from "../scripts/services/pocketbase-instance.ts";
import { benchBars } from "../scripts/bench/pocketbase.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Bar } from "../src/domain/bar.ts";
import type { Store } from "../src/stores/types.ts";
import { barToRecord, pocketbaseSink, recordId, type PocketbaseSinkConfig } from "../src/sinks/pocketbase/index.ts";
import { runSync } from "../src/pipeline/sync.ts";
import { Database } from "bun:sqlite";
import postgres from "postgres";
import { PG_URL, STORES } from "./stores.ts";
import { verifySinkAll } from "../src/pipeline/verify-sink.ts";
import { setLogLevel, setLogSink } from "../src/lib/log.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const { bin, why } = pocketbaseForTests();

const dir = tempDir("ticksync-pb-test-");
let n = 0;

/** A fresh SQLite store holding `bars` (one ingest run). */
async function storeWith(bars: Bar[]): Promise<{ url: string; store: Store }> {
  const url = `sqlite:${join(dir, `store-${++n}.db`)}`;
  const store = sqliteStore(url);
  await store.migrate();
  await addBars(store, bars);
  return { url, store };
}

/** Close a store before a child process opens its file. */
async function closeStore(store: Store) {
  await store.close();
}

async function addBars(store: Store, bars: Bar[]) {
  const runId = await store.startRun({ kind: "ingest", source: "test" });
  for (let i = 0; i < bars.length; i += 2000) await store.commitBatch({ runId, source: bars[0]!.source, bars: bars.slice(i, i + 2000), quarantine: [], read: Math.min(2000, bars.length - i) });
  await store.finishRun(runId, { outcome: "succeeded", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
}

function configFile(storeUrl: string, pb: PocketbaseInstance, sink: Record<string, unknown> = {}): string {
  const fields = { collection: `c${++n}`, enableBatchApi: true, ...sink };
  const lines = Object.entries(fields).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  return writeFile(
    join(dir, `ticksync-${n}.toml`),
    `[store]\nurl = "${storeUrl}"\n\n[sinks.app]\ntype = "pocketbase"\nurl = "${pb.url}"\nemail = "${pb.email}"\n${lines.join("\n")}\n`,
  );
}

const collectionOf = (config: string) => /collection = "([^"]+)"/.exec(require("node:fs").readFileSync(config, "utf8"))![1]!;

async function admin(pb: PocketbaseInstance, url = pb.url): Promise<PocketBase> {
  const c = new PocketBase(url);
  c.autoCancellation(false);
  await c.collection("_superusers").authWithPassword(pb.email, pb.password);
  return c;
}

const count = async (c: PocketBase, collection: string) => (await c.collection(collection).getList(1, 1)).totalItems;

/**
 * `ticksync sync` as a child process whose progress is awaited as events: a log line, or a
 * promise raced against the child's exit (an early exit fails with its code and log).
 */
function syncChild(config: string, password: string) {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "..", "src", "main.ts"), "sync", "--config", config, "--json"], {
    env: { ...process.env, TICKSYNC_SINKS__APP__PASSWORD: password },
    stdout: "pipe",
    stderr: "pipe",
  });
  let log = "";
  const watchers: { re: RegExp; hit: () => void }[] = [];
  const stderrDone = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) {
      log += dec.decode(chunk, { stream: true });
      for (const w of [...watchers]) if (w.re.test(log)) watchers.splice(watchers.indexOf(w), 1), w.hit();
    }
  })();
  const stdout = new Response(proc.stdout).text();
  const done = Promise.all([stdout, proc.exited, stderrDone]).then(([out, code]) => ({ code, stdout: out, stderr: log }));
  return {
    proc,
    done,
    /** Resolves when the sync has logged a line matching `re`. */
    logged: (re: RegExp) => new Promise<void>((hit) => (re.test(log) ? hit() : watchers.push({ re, hit }))),
    /** `event`, unless the sync exits first or 60 s pass: then a failure that says which. */
    async before<T>(event: Promise<T>, what: string): Promise<T> {
      let timer: Timer | undefined;
      const exited = done.then(({ code }) => Promise.reject(new Error(`the sync exited ${code} before ${what}; its log: ${log.slice(-3000)}`)));
      const late = new Promise<never>((_, no) => (timer = setTimeout(() => no(new Error(`no ${what} within 60 s; the sync's log: ${log.slice(-3000)}`)), 60_000)));
      try {
        return await Promise.race([event, exited, late]);
      } finally {
        clearTimeout(timer);
        exited.catch(() => {});
      }
    },
  };
}

/** Pocketbase's own batch settings once the batch API is enabled in its dashboard. */
const PB_DEFAULT_BATCH = { enabled: true, maxRequests: 50, timeout: 3, maxBodySize: 0 };

describe.skipIf(bin === null)(`Pocketbase sink${why ? ` (skipped: ${why})` : ""}`, () => {
  let pb: PocketbaseInstance;
  let env: Record<string, string>;
  beforeAll(async () => {
    pb = await startPocketbase({ bin: bin! });
    env = { TICKSYNC_SINKS__APP__PASSWORD: pb.password };
    // The shared server's settings are fixed here, never by whichever test runs first; a test
    // that changes them (or kills the server) starts a server of its own.
    await (await admin(pb)).settings.update({ batch: PB_DEFAULT_BATCH });
  });
  afterAll(async () => {
    await pb?.destroy();
  });

  test("full sync writes every bar once with its fields; a re-run is a no-op", async () => {
    const bars = benchBars(3); // 3 symbols × 365 sessions
    const { url, store } = await storeWith(bars);
    await closeStore(store);
    const config = configFile(url, pb, { batchSize: 100 });
    const collection = collectionOf(config);

    const first = await cli(["sync", "--config", config, "--json"], { env });
    expect(first.code).toBe(0);
    const [s1] = JSON.parse(first.stdout);
    expect(s1).toMatchObject({ outcome: "succeeded", read: bars.length, sent: bars.length, rejected: 0 });
    const c = await admin(pb);
    expect(await count(c, collection)).toBe(bars.length);
    // The collection was made with typed fields and the natural-key unique index.
    const col = await c.collections.getOne(collection);
    const types = Object.fromEntries((col.fields as { name: string; type: string }[]).map((f) => [f.name, f.type]));
    expect(types).toMatchObject({ symbol: "text", ts: "date", open: "number", volume: "number", trades: "number" });
    expect(col.indexes.some((ix: string) => /UNIQUE/.test(ix) && /source, symbol, interval, ts/.test(ix))).toBe(true);
    // One record, field by field, under the id derived from its natural key.
    const b = bars[400]!;
    const rec = await c.collection(collection).getOne(recordId(b.source, b.symbol, b.interval, b.ts));
    expect(rec).toMatchObject({ symbol: b.symbol, source: b.source, interval: "1d", open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume });
    expect(Date.parse(rec.ts.replace(" ", "T"))).toBe(b.ts);

    const again = await cli(["sync", "--config", config, "--json"], { env });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)[0]).toMatchObject({ outcome: "succeeded", read: 0, sent: 0 });
    expect(await count(c, collection)).toBe(bars.length);

    // New and changed bars since: only those travel, and the changed one is updated in place.
    const s2 = sqliteStore(url);
    const changed = { ...bars[10]!, close: bars[10]!.close + 1 };
    const added = { ...bars[bars.length - 1]!, ts: bars[bars.length - 1]!.ts + 86_400_000 * 3 };
    await addBars(s2, [changed, added]);
    await closeStore(s2);
    const third = await cli(["sync", "--config", config, "--json"], { env });
    expect(JSON.parse(third.stdout)[0]).toMatchObject({ outcome: "succeeded", read: 2, sent: 2 });
    expect(await count(c, collection)).toBe(bars.length + 1);
    expect((await c.collection(collection).getOne(barToRecord(changed).id)).close).toBe(changed.close);
  });

  test("a disabled batch API is an error that says where to enable it, unless the sink may enable it", async () => {
    const own = await startPocketbase({ bin: bin! }); // this test changes the server's settings
    try {
      const c = await admin(own);
      expect((await c.settings.getAll()).batch.enabled).toBe(false); // a new Pocketbase's
      const { url, store } = await storeWith(benchBars(1).slice(0, 20));
      await closeStore(store);
      const config = configFile(url, own, { enableBatchApi: false });
      const r = await cli(["sync", "--config", config], { env });
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toContain("batch API is disabled");
      expect(r.stdout + r.stderr).toContain("enableBatchApi = true");
      expect(r.stdout + r.stderr).not.toContain(own.password);
      const allowed = configFile(url, own, { enableBatchApi: true, batchSize: 20 });
      const ok = await cli(["sync", "--config", allowed, "--json"], { env });
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)[0].sent).toBe(20);
      expect((await c.settings.getAll()).batch).toMatchObject({ enabled: true, maxRequests: 20 });
    } finally {
      await own.destroy();
    }
  });

  test("Pocketbase killed mid-sync and restarted: nothing lost, nothing doubled", async () => {
    // Its own server, reached through a front whose port survives the restart.
    const own = await startPocketbase({ bin: bin!, front: true });
    try {
      const bars = benchBars(12); // 4,380 bars: 176 batches of 25
      const { url, store } = await storeWith(bars);
      await closeStore(store);
      const config = configFile(url, own, { batchSize: 25, concurrency: 2, retryForS: 60 });
      const collection = collectionOf(config);
      // The 40th batch is held at the front: the sync cannot finish while it waits for it.
      const held = own.holdAtBatch(40);
      const sync = syncChild(config, own.password);
      await sync.before(held, "its 40th batch");
      expect(sync.proc.exitCode).toBeNull();
      const sent = await count(await admin(own, own.serverUrl()), collection);
      expect(sent).toBeGreaterThanOrEqual(38 * 25); // with two in flight, the 39th may be pending
      expect(sent).toBeLessThan(bars.length);

      await own.kill();
      own.release(); // the held batch meets a server that is gone
      // Restart only once the sync has seen the outage and is waiting it out.
      await sync.before(sync.logged(/pocketbase: waiting/), "it saw Pocketbase gone");
      await own.start();
      const { code, stdout, stderr } = await sync.done;
      expect(code, stderr).toBe(0);
      const [s] = JSON.parse(stdout);
      expect(s.outcome).toBe("succeeded");
      expect(s.retries).toBeGreaterThan(0);
      expect(await count(await admin(own), collection)).toBe(bars.length);
      const v = await cli(["verify", "--sink", "app", "--config", config], { env: { TICKSYNC_SINKS__APP__PASSWORD: own.password } });
      expect(v.stdout).toContain("consistent");
      expect(v.code).toBe(0);
    } finally {
      await own.destroy();
    }
  });

  test("sync killed (-9) mid-run resumes from its cursor; a longer outage fails with the cursor kept", async () => {
    const own = await startPocketbase({ bin: bin!, front: true });
    try {
      const bars = benchBars(8); // 2,920 bars: 146 batches of 20, one at a time
      const { url, store } = await storeWith(bars);
      await closeStore(store);
      const config = configFile(url, own, { batchSize: 20, concurrency: 1, retryForS: 60 });
      const collection = collectionOf(config);
      const penv = { TICKSYNC_SINKS__APP__PASSWORD: own.password };
      // With one batch in flight, holding the 31st means exactly 30 were acknowledged (and their
      // cursor committed) and the sync is still running.
      const held = own.holdAtBatch(31);
      const sync = syncChild(config, own.password);
      await sync.before(held, "its 31st batch");
      expect(sync.proc.exitCode).toBeNull();
      sync.proc.kill("SIGKILL");
      await sync.done;
      own.release();
      const partial = await count(await admin(own, own.serverUrl()), collection);
      expect(partial).toBe(30 * 20);

      // Pocketbase away for longer than retryForS: the run fails, says why, the cursor stays.
      // (Only this run has the short retryForS; the others wait out a slow first connection.)
      await own.kill();
      const short = configFile(url, own, { collection, batchSize: 20, concurrency: 1, retryForS: 1 });
      const down = await cli(["sync", "--config", short, "--json"], { env: penv });
      expect(down.code, down.stderr).toBe(1);
      const [d] = JSON.parse(down.stdout);
      expect(d.outcome).toBe("failed");
      expect(d.error).toMatch(/still failing after 1 s/);
      await own.start();

      const resumed = await cli(["sync", "--config", config, "--json"], { env: penv });
      expect(resumed.code, resumed.stderr).toBe(0);
      const [r] = JSON.parse(resumed.stdout);
      // It continued from the acknowledged cursor: what was confirmed before the kill is not re-read.
      expect(r).toMatchObject({ outcome: "succeeded", read: bars.length - partial, sent: bars.length - partial });
      expect(await count(await admin(own), collection)).toBe(bars.length);
    } finally {
      await own.destroy();
    }
  });

  test("a record Pocketbase refuses (field type mismatch) is quarantined with its error; the rest go in", async () => {
    const c = await admin(pb);
    const collection = `typed${++n}`;
    // The app's own collection, where volume was made an integer field.
    await c.collections.create({
      name: collection,
      type: "base",
      // (a collection of the app's own, made before ticksync ever ran)
      fields: [
        { name: "source", type: "text" },
        { name: "symbol", type: "text" },
        { name: "interval", type: "text" },
        { name: "ts", type: "date" },
        { name: "volume", type: "number", onlyInt: true },
      ],
    });
    const bars = benchBars(1).slice(0, 60);
    bars[7] = { ...bars[7]!, volume: 1234.5 };
    bars[33] = { ...bars[33]!, volume: 0.25 };
    const { url, store } = await storeWith(bars);
    await closeStore(store);
    const config = configFile(url, pb, { collection, batchSize: 50 });
    const r = await cli(["sync", "--config", config, "--json"], { env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)[0]).toMatchObject({ sent: 58, rejected: 2 });
    expect(await count(c, collection)).toBe(58);
    // Missing fields were added; the key index too.
    const col = await c.collections.getOne(collection);
    expect((col.fields as { name: string }[]).map((f) => f.name)).toEqual(expect.arrayContaining(["open", "close", "adj_close", "trades"]));
    const s = sqliteStore(url);
    const q = await s.listQuarantine({ limit: 10, rule: "sink" });
    await closeStore(s);
    expect(q.length).toBe(2);
    expect(q.map((x) => x.ts).sort()).toEqual([bars[7]!.ts, bars[33]!.ts].sort());
    expect(q[0]!.reason).toContain("volume");
    expect(q[0]!.reason).toMatch(/Decimal numbers are not allowed/);
    expect(q[0]!.locator).toMatch(new RegExp(`^app/${collection}/[a-z0-9]{15}$`));
  });

  test("a batch transaction that times out is halved, and at one record waited out, never quarantined as a refusal", async () => {
    const own = await startPocketbase({ bin: bin! }); // its batch timeout is set to 1 s here
    const stderr = (line: string) => void process.stderr.write(line + "\n");
    let lock: Database | null = null;
    try {
      const c = await admin(own);
      await c.settings.update({ batch: { ...PB_DEFAULT_BATCH, timeout: 1 } });
      const bars = benchBars(1).slice(0, 4);
      const { store } = await storeWith(bars);
      const cfg: PocketbaseSinkConfig = {
        type: "pocketbase", url: own.url, email: own.email, password: own.password, collection: `slow${++n}`,
        enableBatchApi: false, batchSize: 2, concurrency: 1, timeoutMs: 20_000, retryForS: 60, readRule: null, bars: true, tables: {},
      };
      const sink = pocketbaseSink("app", cfg);
      await sink.prepare(); // the collection exists before the lock
      // Another writer holds Pocketbase's database: every batch transaction outlives its 1 s.
      lock = new Database(join(own.dataDir, "data.db"));
      lock.exec("PRAGMA busy_timeout = 10000");
      lock.exec("BEGIN IMMEDIATE");
      let waiting!: () => void;
      const waited = new Promise<void>((r) => (waiting = r));
      // The level is process-wide and other test files turn it down to errors: the event is a warning.
      setLogLevel("warn");
      setLogSink((line) => (/pocketbase: waiting/.test(line) ? waiting() : stderr(line)));
      const sync = runSync({ store, sink });
      // The writer lets go once the sink waits a one-record transaction out (or the sync ended).
      const first = await Promise.race([waited.then(() => "waiting" as const), sync.then(() => "ended" as const)]);
      lock.exec("COMMIT");
      expect(first).toBe("waiting"); // the sink waited a one-record batch out while the lock held
      // From here the batches must go through: a 1 s transaction budget on a loaded machine, with
      // Pocketbase's write connection still busy with the timed-out ones, would make that a race.
      await c.settings.update({ batch: { ...PB_DEFAULT_BATCH, timeout: 30 } });
      const s = await sync;
      expect(s).toMatchObject({ outcome: "succeeded", sent: 4, rejected: 0 });
      expect(s.retries).toBeGreaterThan(0);
      expect(await count(c, cfg.collection)).toBe(4);
      expect(await store.listQuarantine({ limit: 10, rule: "sink" })).toEqual([]);
      await closeStore(store);
    } finally {
      setLogSink(stderr);
      setLogLevel("info");
      lock?.close();
      await own.destroy();
    }
  });

  test("verify finds a record deleted, changed or added by hand; repair restores exactly that", async () => {
    const bars = benchBars(2);
    const { url, store } = await storeWith(bars);
    await closeStore(store);
    const config = configFile(url, pb);
    const collection = collectionOf(config);
    expect((await cli(["sync", "--config", config], { env })).code).toBe(0);
    const clean = await cli(["verify", "--sink", "pocketbase", "--config", config], { env });
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain("consistent");

    const c = await admin(pb);
    const gone = bars[100]!;
    const edited = bars[500]!;
    await c.collection(collection).delete(recordId(gone.source, gone.symbol, gone.interval, gone.ts));
    await c.collection(collection).update(recordId(edited.source, edited.symbol, edited.interval, edited.ts), { close: 1 });
    const stray = await c.collection(collection).create({ source: "manual", symbol: "ZZZ.WA", interval: "1d", ts: "2025-01-02 00:00:00.000Z", open: 1, high: 1, low: 1, close: 1, volume: 1 });

    const found = await cli(["verify", "--sink", "app", "--config", config, "--json"], { env });
    expect(found.code).toBe(6);
    const [{ verify }] = JSON.parse(found.stdout);
    expect(verify).toMatchObject({ ok: false, missing: 1, changed: 1, extra: 1, storeRecords: bars.length, sinkRecords: bars.length });
    const day = (b: Bar) => `${b.symbol}|${new Date(b.ts).toISOString().slice(0, 10)}`;
    expect(verify.differing.map((d: { key: string }) => d.key).sort()).toEqual([day(gone), day(edited), "ZZZ.WA|2025-01-02"].sort());

    // The consistency status is served by /api/sinks and /metrics of a running service.
    const srv = await startServe(["--config", config], { env });
    try {
      const api = await ok(apiClient({ baseUrl: srv.url }).GET("/api/sinks"));
      expect(api.data[0]).toMatchObject({ name: "app", collections: [{ collection, consistency: { status: "inconsistent", missing: 1, extra: 1, changed: 1, differingDays: 3 } }] });
      expect(api.data[0]!.collections[0]!.cursor!.runId).toBe(1);
      const metrics = await (await fetch(`${srv.url}/metrics`)).text();
      expect(metrics).toContain(`ticksync_sink_consistent{sink="app",collection="${collection}"} 0`);
      expect(metrics).toContain(`ticksync_sink_differing_days{sink="app",collection="${collection}"} 3`);
    } finally {
      srv.proc.kill();
      await srv.proc.exited;
    }

    const repair = await cli(["verify", "--sink", "app", "--repair", "--config", config, "--json"], { env });
    expect(repair.code).toBe(0);
    const [rep] = JSON.parse(repair.stdout);
    expect(rep.verify.repaired).toEqual({ sent: 2, deleted: 1, rejected: 0 });
    expect(rep.afterRepair).toMatchObject({ ok: true, missing: 0, changed: 0, extra: 0 });
    expect(await count(c, collection)).toBe(bars.length);
    expect((await c.collection(collection).getOne(recordId(gone.source, gone.symbol, gone.interval, gone.ts))).close).toBe(gone.close);
    expect((await c.collection(collection).getOne(recordId(edited.source, edited.symbol, edited.interval, edited.ts))).close).toBe(edited.close);
    await expect(c.collection(collection).getOne(stray.id)).rejects.toThrow();

    const srv2 = await startServe(["--config", config], { env });
    try {
      const metrics = await (await fetch(`${srv2.url}/metrics`)).text();
      expect(metrics).toContain(`ticksync_sink_consistent{sink="app",collection="${collection}"} 1`);
    } finally {
      srv2.proc.kill();
      await srv2.proc.exited;
    }
  });

  test("429 (Retry-After honoured) and 5xx from a proxy in front of Pocketbase: retried, delivered once", async () => {
    // A proxy that answers every 4th batch with 429 + Retry-After: 1 and every 7th with 503.
    let batches = 0;
    const seen: { at: number; status: number }[] = [];
    const proxy = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const u = new URL(req.url);
        if (u.pathname === "/api/batch") {
          batches++;
          const status = batches % 4 === 0 ? 429 : batches % 7 === 0 ? 503 : 0;
          seen.push({ at: Date.now(), status });
          if (status === 429) return Response.json({ status: 429, message: "Too Many Requests.", data: {} }, { status: 429, headers: { "Retry-After": "1" } });
          if (status === 503) return new Response("upstream unavailable", { status: 503 });
        }
        return fetch(pb.url + u.pathname + u.search, { method: req.method, headers: req.headers, body: req.body ? await req.arrayBuffer() : undefined });
      },
    });
    try {
      const bars = benchBars(1).slice(0, 300);
      const { url, store } = await storeWith(bars);
      await closeStore(store);
      const config = configFile(url, { ...pb, url: `http://127.0.0.1:${proxy.port}` }, { batchSize: 20, concurrency: 1 });
      const collection = collectionOf(config);
      const r = await cli(["sync", "--config", config, "--json"], { env });
      expect(r.code, r.stderr).toBe(0);
      const [s] = JSON.parse(r.stdout);
      expect(s).toMatchObject({ outcome: "succeeded", sent: 300, rejected: 0 });
      expect(s.retries).toBeGreaterThanOrEqual(seen.filter((x) => x.status !== 0).length);
      expect(await count(await admin(pb), collection)).toBe(300);
      // After each 429 the next batch waited for the second Retry-After asked for.
      const after429 = seen.flatMap((x, i) => (x.status === 429 && seen[i + 1] ? [seen[i + 1]!.at - x.at] : []));
      expect(after429.length).toBeGreaterThan(0);
      for (const gap of after429) expect(gap).toBeGreaterThanOrEqual(950);
    } finally {
      proxy.stop(true);
    }
  });

  test("serve runs a scheduled sync job and a verify job", async () => {
    const bars = benchBars(1).slice(0, 100);
    const { url, store } = await storeWith(bars);
    await closeStore(store);
    const config = configFile(url, pb);
    const collection = collectionOf(config);
    const text = require("node:fs").readFileSync(config, "utf8");
    writeFile(config, `${text}\n[[jobs]]\nname = "to-app"\nkind = "sync"\nsink = "app"\nrunOnStart = true\nschedule = "*/2 * * * * *"\n\n[[jobs]]\nname = "check-app"\nkind = "verify"\nsink = "app"\n`);
    const srv = await startServe(["--config", config], { env });
    try {
      const c = await admin(pb);
      await waitFor(async () => (await count(c, collection)) === 100, 20_000, "the scheduled sync");
      // New bars reach Pocketbase on the next tick, with no restart.
      const s = sqliteStore(url);
      await addBars(s, [{ ...bars[0]!, ts: bars[0]!.ts - 86_400_000 * 3 }]);
      await closeStore(s);
      await waitFor(async () => (await count(c, collection)) === 101, 20_000, "the next tick");
      const trig = await apiClient({ baseUrl: srv.url }).POST("/api/jobs/{name}/run", { params: { path: { name: "check-app" } } });
      expect(trig.response.status).toBeLessThan(300);
      await waitFor(async () => (await ok(apiClient({ baseUrl: srv.url }).GET("/api/sinks"))).data[0]!.collections[0]!.consistency.status === "consistent", 20_000, "verify job");
    } finally {
      srv.proc.kill();
      await srv.proc.exited;
    }
  });

  // Any store is a sync source: each reads its bars in its own change order.
  for (const kind of STORES)
    test.skipIf(kind.unavailable !== null)(`incremental sync and verify from the ${kind.kind} store`, async () => {
      const url = kind.freshUrl(dir);
      const store = kind.open(url);
      await store.migrate();
      const bars = benchBars(3).filter((_, i) => i % 3 === 0); // 365 bars over 3 symbols
      await addBars(store, bars.slice(0, 300));
      const cfg: PocketbaseSinkConfig = {
        type: "pocketbase", url: pb.url, email: pb.email, password: pb.password, collection: `from_${kind.kind}_${++n}`,
        enableBatchApi: true, batchSize: 40, concurrency: 3, timeoutMs: 10_000, retryForS: 10, readRule: null, bars: true, tables: {},
      };
      try {
        const sink = pocketbaseSink("app", cfg);
        expect(await runSync({ store, sink, pageSize: 70 })).toMatchObject({ outcome: "succeeded", read: 300, sent: 300 });
        expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", read: 0 });
        // A later run: 65 new bars and one corrected; only those 66 travel.
        const corrected = { ...bars[5]!, close: bars[5]!.close + 0.5 };
        await addBars(store, [...bars.slice(300), corrected]);
        expect(await runSync({ store, sink, pageSize: 20 })).toMatchObject({ outcome: "succeeded", read: 66, sent: 66 });
        const c = await admin(pb);
        expect(await count(c, cfg.collection)).toBe(365);
        expect((await c.collection(cfg.collection).getOne(barToRecord(corrected).id)).close).toBe(corrected.close);
        const v = await verifySinkAll(store, sink);
        expect(v.map((r) => [r.ok, r.storeRecords, r.sinkRecords])).toEqual([[true, 365, 365]]);
      } finally {
        await closeStore(store);
      }
    });

  // The seeds' other tables, delivered as mapped collections: from a SQLite file and from PostgreSQL.
  type TableHome = { from: string; table: string; exec(sql: string): Promise<void>; close(): Promise<void> };
  // Why a home cannot be tested here (null: it can). With CI=true a missing PostgreSQL has already
  // failed the file (test/stores.ts requireInCi).
  const pgMissing = STORES.find((k) => k.kind === "postgres")!.unavailable;
  const homes: [string, string | null, () => Promise<TableHome>][] = [
    [
      "sqlite",
      null,
      async () => {
        const path = join(dir, `seed-${++n}.db`);
        const db = new Database(path);
        return { from: `sqlite:${path}`, table: "ai_insights", exec: async (q) => void db.exec(q), close: async () => db.close() };
      },
    ],
    [
      "postgres",
      pgMissing,
      async () => {
        const schema = `pbseed_${process.pid}_${++n}`;
        const sql = postgres(PG_URL!, { max: 1, onnotice: () => {} });
        await sql.unsafe(`CREATE SCHEMA ${schema}`);
        return {
          from: PG_URL!,
          table: `${schema}.ai_insights`,
          exec: async (q) => void (await sql.unsafe(q.replaceAll("ai_insights", `${schema}.ai_insights`))),
          close: async () => {
            await sql.unsafe(`DROP SCHEMA ${schema} CASCADE`);
            await sql.end();
          },
        };
      },
    ],
  ];
  for (const [kind, missing, open] of homes)
    test.skipIf(missing !== null)(`a mapped table (${kind}) becomes a collection: typed fields, key index, incremental by its cursor, verified${missing ? ` (skipped: ${missing})` : ""}`, async () => {
      // A server of its own: its batch settings and load are this test's alone.
      const pb = await startPocketbase({ bin: bin! });
      await (await admin(pb)).settings.update({ batch: PB_DEFAULT_BATCH });
      let home: TableHome | null = null;
      try {
        home = await open();
        const sqlite = kind === "sqlite";
        await home.exec(
          `CREATE TABLE ai_insights (symbol TEXT NOT NULL, day ${sqlite ? "TEXT" : "date"} NOT NULL, summary TEXT, score DOUBLE PRECISION, bullish BOOLEAN, ` +
            `tags ${sqlite ? "TEXT" : "jsonb"}, updated_at ${sqlite ? "TEXT" : "timestamptz"} NOT NULL, PRIMARY KEY (symbol, day))`,
        );
        const values = Array.from({ length: 150 }, (_, i) => {
          const day = new Date(Date.UTC(2025, 0, 1 + (i % 50))).toISOString().slice(0, 10);
          const sym = ["PKN.WA", "CDR.WA", "XTB.WA"][Math.floor(i / 50)];
          const bull = sqlite ? (i % 2 === 0 ? 1 : 0) : i % 2 === 0;
          return `('${sym}', '${day}', 'insight ${i} for ''${sym}''', ${(i * 0.37).toFixed(2)}, ${bull}, '["t${i % 3}"]', '2025-03-01T00:00:${String(i % 60).padStart(2, "0")}Z')`;
        });
        await home.exec(`INSERT INTO ai_insights VALUES ${values.join(", ")}`);
        const { url, store } = await storeWith(benchBars(1).slice(0, 5));
        await closeStore(store);
        const collection = `insights${++n}`;
        const config = configFile(url, pb, { batchSize: 40 });
        const text = require("node:fs").readFileSync(config, "utf8");
        writeFile(
          config,
          `${text}\n[sinks.app.tables.${collection}]\nfrom = "${home.from}"\ntable = "${home.table}"\nkey = ["symbol", "day"]\ncursor = "updated_at"\n` +
            `fields = { symbol = "text", day = "date", summary = "text", score = "number", bullish = "bool", tags = "json", updated_at = "date" }\n`,
        );
        const first = await cli(["sync", "--config", config, "--json"], { env });
        expect(first.code, first.stderr).toBe(0);
        const sums = JSON.parse(first.stdout);
        expect(sums.map((x: any) => [x.collection, x.sent])).toEqual([[collectionOf(config), 5], [collection, 150]]);
        const c = await admin(pb);
        expect(await count(c, collection)).toBe(150);
        const col = await c.collections.getOne(collection);
        const types = Object.fromEntries((col.fields as { name: string; type: string }[]).map((f) => [f.name, f.type]));
        expect(types).toMatchObject({ symbol: "text", day: "date", score: "number", bullish: "bool", tags: "json", updated_at: "date" });
        expect(col.indexes.some((ix: string) => /UNIQUE/.test(ix) && /\(symbol, day\)/.test(ix))).toBe(true);
        const one = await c.collection(collection).getFirstListItem(`symbol = "CDR.WA" && day = "2025-01-03 00:00:00.000Z"`);
        expect(one).toMatchObject({ summary: "insight 52 for 'CDR.WA'", score: 19.24, bullish: true, tags: ["t1"] });

        // Nothing changed: nothing travels. One row changed (its cursor moves) and one added: two.
        // A sync that printed no summary fails with its exit code and log, not a JSON parse error.
        const syncSummaries = async () => {
          const r = await cli(["sync", "--config", config, "--json"], { env });
          expect(r.code, `sync exited ${r.code}: ${r.stderr.slice(-3000)}`).toBe(0);
          return JSON.parse(r.stdout);
        };
        expect((await syncSummaries())[1]).toMatchObject({ read: 0, sent: 0 });
        await home.exec(`UPDATE ai_insights SET score = 99.5, updated_at = '2025-04-01T00:00:00Z' WHERE symbol = 'CDR.WA' AND day = '2025-01-03'`);
        await home.exec(`INSERT INTO ai_insights VALUES ('PKN.WA', '2025-06-30', 'new', 1, ${sqlite ? 0 : false}, '[]', '2025-04-02T00:00:00Z')`);
        const third = (await syncSummaries())[1];
        expect(third).toMatchObject({ read: 2, sent: 2 });
        expect(await count(c, collection)).toBe(151);
        expect((await c.collection(collection).getOne(one.id)).score).toBe(99.5);

        const v = await cli(["verify", "--sink", "app", "--config", config, "--json"], { env });
        expect(v.code, v.stdout + v.stderr).toBe(0);
        await c.collection(collection).delete(one.id);
        const bad = await cli(["verify", "--sink", "app", "--config", config, "--json"], { env });
        expect(bad.code).toBe(6);
        expect(JSON.parse(bad.stdout)[1].verify).toMatchObject({ collection, missing: 1, differing: [{ key: "CDR.WA|2025-01-03" }] });
        const fixed = await cli(["verify", "--sink", "app", "--repair", "--config", config, "--json"], { env });
        expect(fixed.code).toBe(0);
        expect((await c.collection(collection).getOne(one.id)).score).toBe(99.5);
      } finally {
        await home?.close();
        await pb.destroy();
      }
    });

  test("a sync job with onEvents follows the event bus: bars stored by another process reach Pocketbase", async () => {
    const bars = benchBars(1).slice(0, 50);
    const { url, store } = await storeWith(bars.slice(0, 10));
    await closeStore(store);
    const config = configFile(url, pb);
    const collection = collectionOf(config);
    const text = require("node:fs").readFileSync(config, "utf8");
    writeFile(config, `${text}\n[stream]\npollMs = 100\n\n[[jobs]]\nname = "follow"\nkind = "sync"\nsink = "app"\nonEvents = true\nrunOnStart = true\n`);
    const srv = await startServe(["--config", config], { env });
    try {
      const c = await admin(pb);
      await waitFor(async () => (await count(c, collection)) === 10, 20_000, "the start-up sync");
      // Another process stores more bars; no schedule, no trigger: the events start the sync.
      const other = sqliteStore(url);
      await addBars(other, bars.slice(10));
      await closeStore(other);
      await waitFor(async () => (await count(c, collection)) === 50, 20_000, "the sync the events started");
      const audit = (await ok(apiClient({ baseUrl: srv.url }).GET("/api/audit", { params: { query: { kind: "sync" } } }))).data;
      expect(audit[0]!.startedBy).toMatchObject({ by: "system", what: "events → follow" });
    } finally {
      srv.proc.kill();
      await srv.proc.exited;
    }
  });

  test("an expired or revoked token is replaced by signing in again", async () => {
    const bars = benchBars(1).slice(0, 40);
    const { store } = await storeWith(bars);
    const cfg: PocketbaseSinkConfig = {
      type: "pocketbase", url: pb.url, email: pb.email, password: pb.password, collection: `auth${++n}`,
      enableBatchApi: true, batchSize: 10, concurrency: 1, timeoutMs: 10_000, retryForS: 10, readRule: null, bars: true, tables: {},
    };
    const sink = pocketbaseSink("app", cfg);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    // A well-formed token that claims another hour but whose signature the server rejects: 401.
    const forged = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ id: "x", type: "auth", collectionId: "pbc_3142635823", exp: Math.floor(Date.now() / 1000) + 3600, iat: Math.floor(Date.now() / 1000) })}.c2lnbmF0dXJl`;
    sink.client.authStore.save(forged, null);
    const s = await runSync({ store, sink });
    expect(s).toMatchObject({ outcome: "succeeded", sent: 40 });
    expect(sink.client.authStore.token).not.toBe(forged);
    // A token about to expire is renewed before it is used.
    const real = sink.client.authStore.token;
    const payload = JSON.parse(Buffer.from(real.split(".")[1]!, "base64url").toString());
    const expiring = `${real.split(".")[0]}.${b64({ ...payload, exp: Math.floor(Date.now() / 1000) + 5 })}.${real.split(".")[2]}`;
    sink.client.authStore.save(expiring, null);
    await addBars(store, [{ ...bars[0]!, ts: bars[0]!.ts - 86_400_000 * 7 }]);
    const s2 = await runSync({ store, sink });
    expect(s2).toMatchObject({ outcome: "succeeded", sent: 1 });
    expect(sink.client.authStore.token).not.toBe(expiring);
    await closeStore(store);
  });
});

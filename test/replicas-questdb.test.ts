// Replicas on one real QuestDB store. QuestDB has no job claims (they are PostgreSQL's): the
// scheduler lease (epoch tables in QuestDB) picks one replica, which runs every cron tick, once;
// one process writes at a time (the journal-writer lease), so a job asked of another replica
// writes there once the leader is idle; backfill shards are taken by the leader only. The other
// replicas' streams poll the journal: WebSocket clients of each replica get every event in order,
// and a client of a replica killed with -9 resumes by id on another without gap or duplicate.
// Tables under a prefix of this file's, dropped at the end (the shared QuestDB's file limit).
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startServe, stooqCsv, tempDir, waitFor, writeFile } from "./helpers.ts";
import { apiClient, ok } from "../src/http/client/index.ts";
import { dropQuestdbTables, QDB_HTTP, QDB_PG_URL, STORES } from "./stores.ts";
import { startFakeProviders, syntheticBars, type FakeProviders } from "./fakes/providers.ts";
import { questdbStore } from "../src/stores/questdb/index.ts";
import { auditEntry } from "../src/monitor/audit.ts";
import type { Store } from "../src/stores/types.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const kind = STORES.find((s) => s.kind === "questdb")!;
const dir = tempDir("ticksync-replicas-qdb-");

type Client = { ws: WebSocket; bars: { id: number; symbol: string; op: string }[]; closed: Promise<void> };

async function client(base: string, since = 0): Promise<Client> {
  const ws = new WebSocket(`${base.replace("http", "ws")}/api/ws?symbols=*&since=${since}`);
  const c = { ws, bars: [] } as unknown as Client;
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    if (msg.type === "bar") c.bars.push({ id: msg.id, symbol: msg.bar.symbol, op: msg.op });
  };
  c.closed = new Promise((done) => ws.addEventListener("close", () => done()));
  await new Promise<void>((ok, bad) => {
    ws.onopen = () => ok();
    ws.onerror = () => bad(new Error("websocket did not open"));
  });
  return c;
}

type Replica = Awaited<ReturnType<typeof startServe>> & { log: string[] };

/** A replica whose stderr (JSON log lines) is kept: read for who did what, and so it never blocks. */
async function replica(config: string, env: Record<string, string> = {}): Promise<Replica> {
  const r = await startServe(["--config", config], { env });
  const log: string[] = [];
  void (async () => {
    let rest = "";
    for await (const chunk of r.proc.stderr as ReadableStream<Uint8Array>) {
      const lines = (rest + new TextDecoder().decode(chunk)).split("\n");
      rest = lines.pop()!;
      log.push(...lines);
    }
  })();
  return { ...r, log };
}

const leads = async (r: Replica) => /^ticksync_scheduler_leader\{replica="[^"]+"\} 1$/m.test(await (await fetch(`${r.url}/metrics`)).text());
const jobStatus = async (r: Replica, name: string) => (await ok(apiClient({ baseUrl: r.url }).GET("/api/jobs"))).data.find((j) => j.name === name)!;
/** POST /api/jobs/{name}/run on a replica, through the typed client: the status. */
const runJob = async (r: Replica, name: string) => (await apiClient({ baseUrl: r.url }).POST("/api/jobs/{name}/run", { params: { path: { name } } })).response.status;

describe.skipIf(kind.unavailable !== null)(`replicas on one QuestDB store${kind.unavailable ? ` (skipped: ${kind.unavailable})` : ""}`, () => {
  const procs: Replica[] = [];
  const urls: string[] = [];
  const stores: Store[] = [];
  let fake: FakeProviders | undefined;
  afterAll(async () => {
    for (const p of procs) p.proc.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.proc.exited));
    for (const s of stores) await s.close().catch(() => {});
    await fake?.stop();
    await dropQuestdbTables(urls);
  });
  const freshStore = async () => {
    const pg = new URL(QDB_PG_URL!);
    const url = `questdb://${pg.username}:${pg.password}@${pg.host}${pg.pathname}?http=${QDB_HTTP}&prefix=t_replq_${process.pid}_${Date.now().toString(36)}_${urls.length}_`;
    urls.push(url);
    const store = questdbStore(url);
    stores.push(store);
    await store.migrate();
    return { url, store };
  };

  test("the leader runs each tick once; a follower's job writes while the leader is idle; every client gets every event; kill -9 and resume by id", async () => {
    const { url, store } = await freshStore();
    const data = join(dir, "csv");
    const extra = join(dir, "extra");
    writeFile(join(data, "pkn_d.csv"), stooqCsv([["2024-01-02", 60, 61, 59, 60.5, 1000], ["2024-01-03", 61, 62, 60, 61.5, 1100]]));
    const config = writeFile(
      join(dir, "ticksync.toml"),
      `[store]\nurl = "${url}"\n[server]\nleaseSeconds = 2\n[stream]\npollMs = 200\n` +
        `[sources.files]\ntype = "csv"\npath = "csv"\nlayout = "stooq"\nmarket = "WSE"\n` +
        `[sources.extra]\ntype = "csv"\npath = "extra"\nlayout = "stooq"\nmarket = "WSE"\n` +
        `[[jobs]]\nname = "load"\nsource = "files"\nschedule = "* * * * * *"\n[[jobs]]\nname = "extra"\nsource = "extra"\n`,
    );
    const a = await replica(config);
    procs.push(a);
    await waitFor(() => leads(a), 15_000, "a leading");
    const [b, c] = await Promise.all([replica(config), replica(config)]);
    procs.push(b, c);
    expect(await leads(b)).toBe(false);
    expect(await leads(c)).toBe(false);
    await waitFor(async () => (await store.countBars()) === 2, 15_000, "the first file stored");
    // From id 0: each client replays what is stored, then goes live.
    const [ca, cb, cc] = await Promise.all([client(a.url), client(b.url), client(c.url)]);
    const journal = async () => (await store.eventsSince(0, 100_000)).map((e) => e.id);
    const allHave = async (list: Client[], symbol: string) => waitFor(() => list.every((x) => x.bars.some((y) => y.symbol === symbol)), 15_000, `${symbol} on every client`);

    // New files and an update, stored by the leader's ticks; every replica's client gets them.
    writeFile(join(data, "cdr_d.csv"), stooqCsv([["2024-01-02", 120, 121, 119, 120.5, 500], ["2024-01-03", 121, 122, 120, 121.5, 600]]));
    await allHave([ca, cb, cc], "CDR.WA");
    writeFile(join(data, "pkn_d.csv"), stooqCsv([["2024-01-02", 60, 61, 59, 60.5, 1000], ["2024-01-03", 61, 62, 60, 61.7, 1100], ["2024-01-04", 62, 63, 61, 62.5, 1200]]));
    await waitFor(() => [ca, cb, cc].every((x) => x.bars.filter((y) => y.symbol === "PKN.WA").length >= 4), 15_000, "PKN.WA's update and new bar on every client");
    expect(cb.bars.filter((y) => y.symbol === "PKN.WA").map((y) => y.op)).toEqual(["insert", "insert", "update", "insert"]);

    // Each tick ran once, all on the leader (QuestDB has no job claims: the lease picks one replica).
    const loads = (await store.listRuns({ limit: 500 })).filter((r) => r.job === "load");
    expect(loads.length).toBeGreaterThanOrEqual(3);
    for (const r of loads) expect((auditEntry(r).startedBy as { process?: string })?.process).toEndWith(`:${a.proc.pid}`);
    const perSecond = new Map<number, number>();
    for (const r of loads) perSecond.set(Math.floor(r.startedAt / 1000), (perSecond.get(Math.floor(r.startedAt / 1000)) ?? 0) + 1);
    expect(Math.max(...perSecond.values())).toBe(1);
    expect((await jobStatus(b, "load")).skippedFollower).toBeGreaterThan(0);
    expect((await jobStatus(c, "load")).skippedFollower).toBeGreaterThan(0);

    // A job asked of a follower runs there: the leader is idle (its ticks find nothing new), so
    // the follower takes the journal-writer lease, and its batch reaches every client too.
    writeFile(join(extra, "ale_d.csv"), stooqCsv([["2024-01-02", 40, 41, 39, 40.5, 300]]));
    expect(await runJob(b, "extra")).toBe(202);
    await allHave([ca, cb, cc], "ALE.WA");
    const [byB] = (await store.listRuns({ limit: 50 })).filter((r) => r.job === "extra");
    expect(byB!.outcome).toBe("succeeded");
    expect(byB!.inserted).toBe(1);

    // The leader dies without letting go; its client saw everything so far.
    await waitFor(async () => ca.bars.length === (await journal()).length, 10_000, "a's client caught up");
    const lastSeen = ca.bars.at(-1)!.id;
    a.proc.kill("SIGKILL");
    await a.proc.exited;
    const died = Date.now();
    await ca.closed;
    // Stored while a's client is away: by the new leader, within the lease's time and a tick.
    writeFile(join(data, "xtb_d.csv"), stooqCsv([["2024-01-02", 30, 31, 29, 30.5, 700], ["2024-01-03", 31, 32, 30, 31.5, 800]]));
    await waitFor(async () => (await leads(b)) || (await leads(c)), 10_000, "a new leader");
    await allHave([cb, cc], "XTB.WA");
    const takeover = Date.now() - died;
    const leader = (await leads(b)) ? b : c;
    const after = (await store.listRuns({ limit: 20 })).filter((r) => r.job === "load" && r.startedAt > died);
    expect(after.length).toBeGreaterThan(0);
    for (const r of after) expect((auditEntry(r).startedBy as { process?: string })?.process).toEndWith(`:${leader.proc.pid}`);
    // a's client resumes on the other follower by id: the bars stored while it was away, replayed.
    const other = leader === b ? c : b;
    const resumed = await client(other.url, lastSeen);
    // Then live: a bar stored after it resumed.
    writeFile(join(data, "kgh_d.csv"), stooqCsv([["2024-01-02", 140, 141, 139, 140.5, 90], ["2024-01-03", 141, 142, 140, 141.5, 95]]));
    await allHave([cb, cc, resumed], "KGH.WA");
    expect(resumed.bars.filter((y) => y.symbol === "XTB.WA").length).toBe(2);

    // Every event on every connection, in id order, none twice: the dead replica's client's
    // before its death joined with its resumption equal the journal, as do the others'.
    const all = await journal();
    await waitFor(() => [cb, cc].every((x) => x.bars.length >= all.length) && ca.bars.length + resumed.bars.length >= all.length, 10_000, "every event on every client");
    expect(all.length).toBe(11); // 2 + 2 + 2 (an update) + 1 + 2 + 2: none lost
    expect(cb.bars.map((x) => x.id)).toEqual(all);
    expect(cc.bars.map((x) => x.id)).toEqual(all);
    expect([...ca.bars, ...resumed.bars].map((x) => x.id)).toEqual(all);
    console.log(`replicas-questdb: new leader's first tick stored ${takeover} ms after kill -9 (lease 2 s)`);
    for (const x of [cb, cc, resumed]) x.ws.close();
  }, 60_000);

  test("backfill shards are run by the leader only; kill -9 of the leader moves them to the next one", async () => {
    const { url, store } = await freshStore();
    fake = await startFakeProviders();
    const symbols = Array.from({ length: 8 }, (_, i) => `Q${i}`);
    for (const s of symbols) fake.setBars("yahoo", s, syntheticBars(s, "2023-12-01", "2024-04-30"));
    fake.rateLimit("yahoo", 2);
    const config = writeFile(
      join(dir, "shards.toml"),
      `[store]\nurl = "${url}"\n[server]\nleaseSeconds = 2\n[universes]\nqs = [${symbols.map((s) => `"${s}.US"`).join(", ")}]\n` +
        `[sources.yahoo]\ntype = "yahoo"\nbaseUrl = "${fake.url}/yahoo"\nuniverse = "qs"\nconcurrency = 1\nrateLimit = { perSecond = 1 }\n` +
        `[[jobs]]\nname = "history"\nkind = "backfill"\nsource = "yahoo"\nfrom = "2024-01-01"\nto = "2024-03-29"\nshardSize = 2\nshardsPerReplica = 2\n`,
    );
    const a = await replica(config);
    procs.push(a);
    await waitFor(() => leads(a), 15_000, "a leading");
    const b = await replica(config);
    procs.push(b);
    // Asked of the follower: it plans (runs only), the leader takes the shards.
    expect(await runJob(b, "history")).toBe(202);
    const taken = (r: Replica) => r.log.filter((l) => l.includes("backfill shard taken")).length;
    const shardRuns = async () => (await store.listRuns({ limit: 50 })).filter((r) => r.kind === "backfill");
    await waitFor(async () => (await shardRuns()).filter((r) => r.outcome === "succeeded").length >= 1 && taken(a) >= 2, 30_000, "the leader through a shard");
    expect(taken(b)).toBe(0);
    a.proc.kill("SIGKILL");
    await a.proc.exited;
    await waitFor(() => leads(b), 10_000, "b leading");
    await waitFor(async () => {
      const runs = await shardRuns();
      return runs.length === 4 && runs.every((r) => r.outcome === "succeeded");
    }, 40_000, "every shard finished");
    expect(taken(b)).toBeGreaterThan(0);
    // Every symbol's bars, each once (QuestDB's dedup keys: a symbol a's death left in flight is
    // read again as unchanged), and no shard failed on a second writer.
    const from = Date.parse("2024-01-01T00:00:00Z");
    const to = Date.parse("2024-03-29T00:00:00Z");
    const expected = symbols.reduce((n, s) => n + syntheticBars(s, "2023-12-01", "2024-04-30").filter((x) => Date.parse(`${x.date}T00:00:00Z`) >= from && Date.parse(`${x.date}T00:00:00Z`) <= to).length, 0);
    expect(await store.countBars()).toBe(expected);
    expect(b.log.filter((l) => l.includes("another process has been writing"))).toEqual([]);
    expect(fake.violations("yahoo")).toBe(0);
  }, 60_000);

  test("a job on a replica that is not the journal writer waits for the writer to go idle, and fails saying why when it stays busy", async () => {
    const { url, store } = await freshStore();
    const extra = join(dir, "busy");
    writeFile(join(extra, "ale_d.csv"), stooqCsv([["2024-01-02", 40, 41, 39, 40.5, 300]]));
    const config = writeFile(join(dir, "busy.toml"), `[store]\nurl = "${url}"\n[server]\nleaseSeconds = 2\n[sources.extra]\ntype = "csv"\npath = "busy"\nlayout = "stooq"\nmarket = "WSE"\n[[jobs]]\nname = "extra"\nsource = "extra"\n`);
    // This process writes a batch every 200 ms: it holds the journal-writer lease while it does.
    const run = await store.startRun({ kind: "ingest", source: "busy" });
    let i = 0;
    let stopped = false;
    const busyFor = (ms: number) =>
      (async () => {
        for (const end = Date.now() + ms; Date.now() < end && !stopped; i++) {
          const bars = [{ source: "busy", symbol: "B", interval: "1m" as const, ts: Date.UTC(2024, 0, 2) + i * 60_000, open: 1, high: 1, low: 1, close: 1, volume: i }];
          await store.commitBatch({ runId: run, source: "busy", bars, quarantine: [], read: 1 });
          await Bun.sleep(200);
        }
      })();
    const r = await replica(config);
    procs.push(r);
    const extraRuns = async () => (await store.listRuns({ limit: 20 })).filter((x) => x.job === "extra");
    // Busy for 3 s, then idle: the job waits, then writes.
    // (A batch committed: this process holds the lease; the replica's last lease is given up.)
    const holding = async () => {
      const from = i;
      await waitFor(() => i >= from + 2, 15_000, "this process writing");
    };
    let busy = busyFor(3000);
    try {
      await holding();
      const asked = Date.now();
      expect(await runJob(r, "extra")).toBe(202);
      const [first] = await waitFor(async () => ((await extraRuns()).some((x) => x.outcome !== "running") ? extraRuns() : null), 15_000, "the job after the writer went idle");
      expect(first!.outcome).toBe("succeeded");
      expect(first!.inserted).toBe(1);
      expect(first!.finishedAt! - asked).toBeGreaterThan(2000);
      await busy;
      // Busy for longer than the wait (20 s): the job's run fails, saying why, on one line.
      writeFile(join(extra, "ale_d.csv"), stooqCsv([["2024-01-02", 40, 41, 39, 40.5, 300], ["2024-01-03", 41, 42, 40, 41.5, 350]]));
      busy = busyFor(25_000);
      await holding();
      expect(await runJob(r, "extra")).toBe(202);
      const failed = await waitFor(async () => (await extraRuns()).find((x) => x.id !== first!.id && x.outcome !== "running"), 25_000, "the refused run");
      expect(failed.outcome).toBe("failed");
      expect(failed.error).toContain("another process has been writing to this QuestDB store for 20 s: QuestDB cannot order two writers' event journals");
      expect(failed.error).not.toContain("\n");
    } finally {
      stopped = true;
      await busy.catch(() => {});
    }
  }, 60_000);
});

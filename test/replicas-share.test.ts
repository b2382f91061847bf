// Three `ticksync serve` replicas on one real PostgreSQL database share a backfill: its shards are
// leased by whichever replica is free, the provider's rate limit is one bucket in the store for
// all three, and kill -9 of one mid-backfill moves its shards to the others within seconds, to
// resume from the shard's checkpoint. The local provider counts every request and answers 429
// above its limit; WebSocket clients of each replica get every event in order, the dead one's
// client resuming by id on another replica.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import postgres from "postgres";
import { busiestWindow, startServe, tempDir, waitFor, writeFile } from "./helpers.ts";
import { apiClient } from "../src/http/client/index.ts";
import { PG_URL } from "./stores.ts";
import { startFakeProviders, syntheticBars, type FakeProviders } from "./fakes/providers.ts";
import { postgresStore } from "../src/stores/postgres/index.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-replicas-share-");
if (!PG_URL && process.env.CI === "true") throw new Error("CI=true and PostgreSQL is not running");

const SYMBOLS = Array.from({ length: 30 }, (_, i) => `R${String(i).padStart(2, "0")}`);
const FROM = "2024-01-01";
const TO = "2024-03-29";
/** The provider's limit, per second: the config says the same. */
const LIMIT = 4;

type Client = { ws: WebSocket; ids: number[]; closed: Promise<void> };

async function client(base: string, since?: number): Promise<Client> {
  const ws = new WebSocket(`${base.replace("http", "ws")}/api/ws?symbols=*${since === undefined ? "" : `&since=${since}`}`);
  const c = { ws, ids: [] as number[] } as Client;
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    if (msg.type === "bar") c.ids.push(msg.id);
  };
  c.closed = new Promise((done) => ws.addEventListener("close", () => done()));
  await new Promise<void>((ok, bad) => {
    ws.onopen = () => ok();
    ws.onerror = () => bad(new Error("websocket did not open"));
  });
  return c;
}

describe.skipIf(!PG_URL)("replicas share a backfill on one Postgres store", () => {
  let fake: FakeProviders;
  const procs: { proc: ReturnType<typeof Bun.spawn> }[] = [];
  afterAll(async () => {
    for (const p of procs) p.proc.kill("SIGKILL");
    await fake?.stop();
  });

  test("shards spread over the replicas, kill -9 moves its shards, the rate limit holds across all three", async () => {
    fake = await startFakeProviders();
    for (const s of SYMBOLS) fake.setBars("yahoo", s, syntheticBars(s, "2023-12-01", "2024-04-30"));
    fake.rateLimit("yahoo", LIMIT);
    const schema = `replicas_share_${process.pid}_${Date.now().toString(36)}`;
    const u = new URL(PG_URL!);
    u.searchParams.set("schema", schema);
    const config = writeFile(
      join(dir, "ticksync.toml"),
      `[store]\nurl = "${u}"\n[server]\nleaseSeconds = 2\n` +
        `[universes]\nrs = [${SYMBOLS.map((s) => `"${s}.US"`).join(", ")}]\n` +
        `[sources.yahoo]\ntype = "yahoo"\nbaseUrl = "${fake.url}/yahoo"\nuniverse = "rs"\nconcurrency = 2\nrateLimit = { perSecond = ${LIMIT} }\n` +
        `retry = { attempts = 2, baseDelayMs = 10, maxDelayMs = 50 }\n` +
        `[[jobs]]\nname = "history"\nkind = "backfill"\nsource = "yahoo"\nfrom = "${FROM}"\nto = "${TO}"\nshardSize = 5\nshardsPerReplica = 3\n`,
    );
    const store = postgresStore(u.toString());
    await store.migrate();
    const { url: connUrl } = { url: PG_URL! };
    const sql = postgres(connUrl, { max: 1, onnotice: () => {}, connection: { search_path: schema } });
    try {
      const env = { TICKSYNC_LOG__LEVEL: "warn" };
      const replicas = await Promise.all([0, 1, 2].map(() => startServe(["--config", config], { env })));
      procs.push(...replicas);
      const clients = await Promise.all(replicas.map((r) => client(r.url)));

      // One replica is asked; the plan is six shards of five symbols, taken by whoever is free.
      const r = await apiClient({ baseUrl: replicas[0]!.url }).POST("/api/jobs/{name}/run", { params: { path: { name: "history" } } });
      expect(r.response.status).toBe(202);
      const pidOf = (holder: string) => Number(holder.split(":")[1]);
      const held = async () => (await sql`SELECT name, holder FROM leases WHERE name LIKE 'backfill-shard:%' AND expires_at > now()`).map((x) => ({ run: Number(String(x.name).split(":")[1]), pid: pidOf(String(x.holder)) }));
      const doneCount = async () => Number((await sql`SELECT count(*) AS n FROM run_streams WHERE status <> 'pending'`)[0]!.n);

      // Mid-backfill, and the work is spread: shards held by at least two replicas.
      const atKill = await waitFor(async () => {
        const h = await held();
        return (await doneCount()) >= 6 && new Set(h.map((x) => x.pid)).size >= 2 ? h : null;
      }, 40_000, "shards spread over the replicas, some symbols done");
      expect(await doneCount()).toBeLessThan(SYMBOLS.length - 5);
      const victim = replicas.find((x) => atKill.some((h) => h.pid === x.proc.pid))!;
      const victimShards = atKill.filter((h) => h.pid === victim.proc.pid).map((h) => h.run);
      const victimClient = clients[replicas.indexOf(victim)]!;
      victim.proc.kill("SIGKILL");
      await victim.proc.exited;
      const died = Date.now();
      await victimClient.closed;

      // Its shards are taken by a live replica within the lease's time and a poll.
      const survivors = replicas.filter((x) => x !== victim);
      await waitFor(async () => {
        const h = await held();
        const finished = (await sql`SELECT id FROM runs WHERE id = ANY(${victimShards}::bigint[]) AND outcome = 'succeeded'`).map((x) => Number(x.id));
        return victimShards.every((id) => finished.includes(id) || h.some((x) => x.run === id && survivors.some((s) => s.proc.pid === x.pid)));
      }, 15_000, "the dead replica's shards taken over");
      const moved = Date.now() - died;
      expect(moved).toBeLessThan(6000);

      // Its WebSocket client resumes by id on a survivor.
      const lastSeen = victimClient.ids.at(-1) ?? 0;
      const resumed = await client(survivors[0]!.url, lastSeen);

      // Everything finishes: every shard succeeded.
      await waitFor(async () => {
        const rows = await sql`SELECT outcome FROM runs WHERE kind = 'backfill'`;
        return rows.length === 6 && rows.every((x) => x.outcome === "succeeded");
      }, 60_000, "every shard finished");

      // Every symbol done exactly once, in one shard; the bars exactly the provider's in range.
      const streams = await sql`SELECT stream, status, count(*) OVER (PARTITION BY stream) AS n FROM run_streams`;
      expect(streams.length).toBe(SYMBOLS.length);
      expect(streams.every((s) => s.status === "done" && Number(s.n) === 1)).toBe(true);
      expect(new Set(streams.map((s) => String(s.stream)))).toEqual(new Set(SYMBOLS.map((s) => `${s}.US`)));
      // Each symbol's checkpoint was last written by the shard (run) it belongs to.
      const cps = await sql`SELECT c.run_id, s.run_id AS shard FROM checkpoints c JOIN run_streams s ON c.stream = 'yahoo:' || s.stream`;
      expect(cps.length).toBe(SYMBOLS.length);
      expect(cps.filter((c) => Number(c.run_id) !== Number(c.shard))).toEqual([]);
      const from = Date.parse(`${FROM}T00:00:00Z`);
      const to = Date.parse(`${TO}T00:00:00Z`);
      const expected = SYMBOLS.reduce((n, s) => n + syntheticBars(s, "2023-12-01", "2024-04-30").filter((b) => Date.parse(`${b.date}T00:00:00Z`) >= from && Date.parse(`${b.date}T00:00:00Z`) <= to).length, 0);
      expect(await store.countBars()).toBe(expected);
      // The runs' counters add up to the bars: nothing stored twice, even in the shard taken over.
      const [sums] = await sql`SELECT sum(inserted)::int AS inserted, sum(updated)::int AS updated FROM runs WHERE kind = 'backfill'`;
      expect(sums!.inserted).toBe(expected);
      expect(sums!.updated).toBe(0);

      // The provider: never over its limit in any one-second window, never a 429, and each symbol
      // asked again at most once (the ones in flight when the replica died).
      const hits = fake.requests.filter((q) => q.provider === "yahoo");
      expect(fake.violations("yahoo")).toBe(0);
      expect(hits.filter((q) => q.status === 429).length).toBe(0);
      expect(busiestWindow(hits.map((q) => q.mono), 1000)).toBeLessThanOrEqual(LIMIT);
      const perSymbol = new Map<string, number>();
      for (const q of hits) perSymbol.set(q.path, (perSymbol.get(q.path) ?? 0) + 1);
      const repeated = [...perSymbol.values()].filter((n) => n > 1).length;
      expect(repeated).toBeLessThanOrEqual(3 * 2); // at most the victim's shards × concurrency in flight

      // Every event, in order, on every connection: the survivors' whole, the victim's before
      // its death joined with its resumption elsewhere.
      const all = (await store.eventsSince(0, 100_000)).map((e) => e.id);
      expect(all.length).toBe(expected);
      const survivorClients = clients.filter((c) => c !== victimClient);
      await waitFor(() => survivorClients.every((c) => c.ids.length >= all.length) && victimClient.ids.length + resumed.ids.length >= all.length, 15_000, "every event on every client");
      for (const c of survivorClients) expect(c.ids).toEqual(all);
      expect([...victimClient.ids, ...resumed.ids]).toEqual(all);
      console.log(`replicas-share: shards moved in ${moved} ms; busiest second ${busiestWindow(hits.map((q) => q.mono), 1000)}/${LIMIT}; ${hits.length} requests, ${repeated} repeated`);

      for (const c of [...clients, resumed]) c.ws.close();
      for (const s of survivors) s.proc.kill();
      await Promise.all(survivors.map((s) => s.proc.exited));
    } finally {
      await sql.end();
      await store.close();
    }
  }, 90_000);
});

// SQLite: one process, its own limiter; the backfill job's shards are taken by it, in turn.
test("on SQLite one replica plans the shards and runs them all under the file's leases", async () => {
  const provider = await startFakeProviders();
  try {
    const symbols = SYMBOLS.slice(0, 9);
    for (const s of symbols) provider.setBars("yahoo", s, syntheticBars(s, "2023-12-01", "2024-04-30"));
    provider.rateLimit("yahoo", 20);
    const config = writeFile(
      join(dir, "sqlite.toml"),
      `[store]\nurl = "sqlite:one.db"\n[universes]\nrs = [${symbols.map((s) => `"${s}.US"`).join(", ")}]\n` +
        `[sources.yahoo]\ntype = "yahoo"\nbaseUrl = "${provider.url}/yahoo"\nuniverse = "rs"\nrateLimit = { perSecond = 20 }\n` +
        `[[jobs]]\nname = "history"\nkind = "backfill"\nsource = "yahoo"\nfrom = "${FROM}"\nto = "${TO}"\nshardSize = 4\n`,
    );
    const one = await startServe(["--config", config], { env: { TICKSYNC_LOG__LEVEL: "warn" } });
    try {
      expect((await apiClient({ baseUrl: one.url }).POST("/api/jobs/{name}/run", { params: { path: { name: "history" } } })).response.status).toBe(202);
      const store = sqliteStore(join(dir, "one.db"));
      try {
        await waitFor(async () => {
          const runs = (await store.listRuns({ limit: 10 })).filter((r) => r.kind === "backfill");
          return runs.length === 3 && runs.every((r) => r.outcome === "succeeded");
        }, 30_000, "three shards done");
        const from = Date.parse(`${FROM}T00:00:00Z`);
        const to = Date.parse(`${TO}T00:00:00Z`);
        const expected = symbols.reduce((n, s) => n + syntheticBars(s, "2023-12-01", "2024-04-30").filter((b) => Date.parse(`${b.date}T00:00:00Z`) >= from && Date.parse(`${b.date}T00:00:00Z`) <= to).length, 0);
        expect(await store.countBars()).toBe(expected);
        // Asked again once done: a new plan (the old one has nothing left).
        expect((await apiClient({ baseUrl: one.url }).POST("/api/jobs/{name}/run", { params: { path: { name: "history" } } })).response.status).toBe(202);
        await waitFor(async () => (await store.listRuns({ limit: 10 })).filter((r) => r.kind === "backfill").length === 6, 15_000, "a second plan");
      } finally {
        await store.close();
      }
      expect(provider.violations("yahoo")).toBe(0);
    } finally {
      one.proc.kill("SIGKILL");
      await one.proc.exited;
    }
  } finally {
    await provider.stop();
  }
}, 60_000);

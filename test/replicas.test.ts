// Two `ticksync serve` replicas on one real PostgreSQL store share the scheduled jobs: each cron
// tick is claimed by one replica (a claim per job in the store, held while the run lasts), the
// ticks go round both, and none runs twice; kill -9 one and the other runs every tick within
// seconds; WebSocket clients of both replicas receive every bar, whichever replica stored it
// (LISTEN/NOTIFY wakes the other's stream). The leader lease still exists (alerts, on-events).
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startServe, stooqCsv, tempDir, waitFor, writeFile } from "./helpers.ts";
import { apiClient, ok } from "../src/http/client/index.ts";
import { PG_URL } from "./stores.ts";
import { postgresStore } from "../src/stores/postgres/index.ts";
import { auditEntry } from "../src/monitor/audit.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-replicas-");
if (!PG_URL && process.env.CI === "true") throw new Error("CI=true and PostgreSQL is not running");

type Client = { ws: WebSocket; bars: { id: number; symbol: string; close: number }[] };

async function client(base: string): Promise<Client> {
  const ws = new WebSocket(`${base.replace("http", "ws")}/api/ws?symbols=*`);
  const c: Client = { ws, bars: [] };
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    if (msg.type === "bar") c.bars.push({ id: msg.id, symbol: msg.bar.symbol, close: msg.bar.close });
  };
  await new Promise<void>((ok, bad) => {
    ws.onopen = () => ok();
    ws.onerror = () => bad(new Error("websocket did not open"));
  });
  return c;
}

describe.skipIf(!PG_URL)("replicas on one Postgres store", () => {
  const procs: { proc: ReturnType<typeof Bun.spawn> }[] = [];
  afterAll(() => {
    for (const p of procs) p.proc.kill("SIGKILL");
  });

  test("ticks are claimed once each, by both replicas; the survivor runs them when one dies; both streams get every bar", async () => {
    const u = new URL(PG_URL!);
    u.searchParams.set("schema", `replicas_${process.pid}_${Date.now().toString(36)}`);
    const data = join(dir, "csv");
    writeFile(join(data, "pkn_d.csv"), stooqCsv([["2024-01-02", 60, 61, 59, 60.5, 1000]]));
    const config = writeFile(
      join(dir, "ticksync.toml"),
      `[store]\nurl = "${u}"\n[server]\nleaseSeconds = 2\n[sources.files]\ntype = "csv"\npath = "csv"\nlayout = "stooq"\nmarket = "WSE"\n` +
        `[[jobs]]\nname = "load"\nsource = "files"\nschedule = "* * * * * *"\n`,
    );
    const store = postgresStore(u.toString());
    await store.migrate();
    const a = await startServe(["--config", config]);
    procs.push(a);
    // a takes the lease first: its scheduler says it leads before b starts.
    await waitFor(async () => /^ticksync_scheduler_leader\{replica="[^"]+"\} 1$/m.test(await (await fetch(`${a.url}/metrics`)).text()), 15_000, "a leading");
    const b = await startServe(["--config", config]);
    procs.push(b);
    await waitFor(async () => (await store.countBars()) === 1, 15_000, "the first file stored");
    const ca = await client(a.url);
    const cb = await client(b.url);

    // Both replicas run ticks (the one that ran the last lets the other claim first); each tick
    // runs once: the other replica skips it.
    const byProcess = async () => new Set((await store.listRuns({ limit: 500 })).map((r) => (auditEntry(r).startedBy as any)?.process));
    await waitFor(async () => (await byProcess()).size === 2, 15_000, "ticks run by both replicas");
    const skipped = async (url: string) => (await ok(apiClient({ baseUrl: url }).GET("/api/jobs"))).data[0]!.skippedFollower;
    // The replica that ran the last tick tries the next one 100 ms after the other: its skip may
    // be counted just after the other's run is recorded.
    await waitFor(async () => (await skipped(a.url)) + (await skipped(b.url)) > 0, 15_000, "a tick skipped by the replica that did not claim it");
    const perSecond = new Map<number, number>();
    for (const r of await store.listRuns({ limit: 500 })) perSecond.set(Math.floor(r.startedAt / 1000), (perSecond.get(Math.floor(r.startedAt / 1000)) ?? 0) + 1);
    expect(Math.max(...perSecond.values())).toBe(1);

    // A new file: the leader stores its bar; both replicas' clients get it.
    writeFile(join(data, "cdr_d.csv"), stooqCsv([["2024-01-02", 120, 121, 119, 120.5, 500]]));
    await waitFor(() => ca.bars.some((x) => x.symbol === "CDR.WA") && cb.bars.some((x) => x.symbol === "CDR.WA"), 15_000, "the bar on both replicas");

    // a dies without letting go (mid-run or not): b runs the ticks from then on, within seconds.
    a.proc.kill("SIGKILL");
    await a.proc.exited;
    const died = Date.now();
    await waitFor(async () => (await store.listRuns({ limit: 5 })).filter((r) => r.startedAt > died + 1000 && (auditEntry(r).startedBy as any)?.process?.endsWith(`:${b.proc.pid}`)).length >= 2, 15_000, "the survivor running the ticks");
    expect(Date.now() - died).toBeLessThan(8000);
    // And its clients keep receiving: another file stored by the new leader.
    writeFile(join(data, "xtb_d.csv"), stooqCsv([["2024-01-02", 30, 31, 29, 30.5, 700]]));
    await waitFor(() => cb.bars.some((x) => x.symbol === "XTB.WA"), 15_000, "a bar after the takeover");
    // Ids only grow on each connection.
    for (const c of [ca, cb]) for (let i = 1; i < c.bars.length; i++) expect(c.bars[i]!.id).toBeGreaterThan(c.bars[i - 1]!.id);
    // (PKN.WA was stored before the clients connected: a snapshot, and a bar when the replica's
    // tailer had not read it yet at the snapshot.)
    expect(cb.bars.map((x) => x.symbol).filter((x) => x !== "PKN.WA")).toEqual(["CDR.WA", "XTB.WA"]);
    expect(ca.bars.map((x) => x.symbol).filter((x) => x !== "PKN.WA")).toEqual(["CDR.WA"]);
    ca.ws.close();
    cb.ws.close();
    b.proc.kill();
    await b.proc.exited;
    await store.close();
  }, 90_000);
});

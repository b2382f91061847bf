// The live feed against real servers: a SQLite store file (and QuestDB, for what its journal
// carries: snapshots, events from another writer, replay by id), the Hono app on Bun.serve (in process,
// and `ticksync serve` as a child), real WebSocket clients (Bun's, and one in its own process that
// a test stops so it no longer reads) and an SSE client over fetch. Bars are committed to the same
// file by this process's store handle or by a second handle (another writer, found by the
// journal tailer's poll), as a CLI ingest would.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { questdbStore } from "../src/stores/questdb/index.ts";
import type { Store } from "../src/stores/types.ts";
import type { Bar } from "../src/domain/bar.ts";
import { createHub, type Hub } from "../src/stream/hub.ts";
import { createApp } from "../src/http/app.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { streamWebSocket } from "../src/stream/ws.ts";
import { defaultStreamConfig, type StreamConfig } from "../src/stream/config.ts";
import { parseConfig, ConfigError } from "../src/config/load.ts";
import { ROOT, startServe, tempDir, waitFor, writeFile, wsClient, type WsMsg as Msg } from "./helpers.ts";
import { dropQuestdbTables, STORES } from "./stores.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-stream-");
let nFile = 0;

type Server = { base: string; wsBase: string; file: string; store: Store; reopen(): Store; hub: Hub; metrics: ReturnType<typeof ticksyncMetrics>; stop(): Promise<void> };
const servers: Server[] = [];
const qdbUrls: string[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop().catch(() => {});
  await dropQuestdbTables(qdbUrls);
});

const QDB = STORES.find((k) => k.kind === "questdb")!;
/** Stores whose journal the feed is tested on: SQLite files always, QuestDB where it runs. */
const JOURNALED = [
  { kind: "sqlite", unavailable: null, url: () => `sqlite:${join(dir, `s${++nFile}.db`)}` },
  { kind: "questdb", unavailable: QDB.unavailable, url: () => (qdbUrls.push(QDB.freshUrl(dir)), qdbUrls.at(-1)!) },
] as const;
const openUrl = (url: string): Store => (url.startsWith("questdb://") ? questdbStore(url) : sqliteStore(url));

async function startStream(over: Partial<StreamConfig> = {}, url = `sqlite:${join(dir, `s${++nFile}.db`)}`): Promise<Server> {
  const store = openUrl(url);
  const file = url.startsWith("sqlite:") ? url.slice("sqlite:".length) : "";
  await store.migrate();
  const metrics = ticksyncMetrics();
  const config: StreamConfig = { ...defaultStreamConfig(), pollMs: 50, ...over };
  const hub = createHub({ store, metrics, config });
  await hub.start();
  const app = createApp({ store, metrics, stream: { hub, config } });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, websocket: streamWebSocket(config) });
  const s: Server = {
    base: `http://127.0.0.1:${server.port}`,
    wsBase: `ws://127.0.0.1:${server.port}`,
    file,
    store,
    reopen: () => openUrl(url),
    hub,
    metrics,
    async stop() {
      await hub.stop();
      await server.stop(true);
      await store.close();
    },
  };
  servers.push(s);
  return s;
}

const T0 = Date.UTC(2024, 0, 2, 9, 0);
/** `n` one-minute bars per symbol from minute `from`; close differs by `salt` so a re-send is an update. */
function bars(symbols: string[], from: number, n: number, salt = 0): Bar[] {
  const out: Bar[] = [];
  for (let i = from; i < from + n; i++)
    for (const symbol of symbols) out.push({ source: "test", symbol, interval: "1m", ts: T0 + i * 60_000, open: 10, high: 12, low: 9, close: 10 + (i % 100) / 100 + salt, volume: 100 + i });
  return out;
}

const runs = new WeakMap<Store, number>();
async function commit(store: Store, list: Bar[]) {
  let run = runs.get(store);
  if (run === undefined) runs.set(store, (run = await store.startRun({ kind: "ingest", source: "test" })));
  for (let i = 0; i < list.length; i += 5000) {
    const b = list.slice(i, i + 5000);
    await store.commitBatch({ runId: run, source: "test", bars: b, quarantine: [], read: b.length });
  }
  // QuestDB gathers writes and sends them a moment later: reading the journal's bounds waits for them.
  await store.eventBounds();
}

/** The hub has published every committed event (a snapshot taken now is marked with the last). */
async function published(s: Server) {
  const { last } = await s.store.eventBounds();
  await waitFor(() => s.hub.lastId() >= last, 15_000, "the hub to publish what is committed");
}

/** The journal's ids after `since` for these symbols: what a client must receive, in this order. */
async function journalIds(store: Store, symbols: string[], since = 0): Promise<number[]> {
  const want = new Set(symbols);
  return (await store.eventsSince(since, 10_000_000)).filter((e) => want.has(e.bar.symbol)).map((e) => e.id);
}


/** A client in its own process: its stdout as lines, and a wait for a line. */
function child(args: string[]) {
  const proc = Bun.spawn([process.execPath, ...args], { stdout: "pipe", stderr: "inherit" });
  const lines: string[] = [];
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stdout) {
      buf += decoder.decode(chunk, { stream: true });
      const parts = buf.split("\n");
      buf = parts.pop()!;
      lines.push(...parts);
    }
    return lines.join("\n");
  })();
  return {
    proc,
    lines,
    /** All its output, once it exited. */
    ended,
    line: (pred: (l: string) => boolean, what: string, ms = 15_000) => waitFor(() => lines.find(pred), ms, what),
  };
}

type SseEvent = { id?: string; event: string; data: Msg };

async function sseClient(url: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const res = await fetch(url, { headers, signal: abort.signal });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  if (res.ok)
    void (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of res.body!) {
          buf += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const ev: { id?: string; event?: string; data?: string } = {};
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) comments.push(line.slice(1).trim());
              else if (line.startsWith("id: ")) ev.id = line.slice(4);
              else if (line.startsWith("event: ")) ev.event = line.slice(7);
              else if (line.startsWith("data: ")) ev.data = line.slice(6);
            }
            if (ev.event && ev.data) events.push({ id: ev.id, event: ev.event, data: JSON.parse(ev.data) });
          }
        }
      } catch {}
    })();
  return {
    res,
    events,
    comments,
    ids: () => events.filter((e) => e.event === "bar").map((e) => Number(e.id)),
    until: (pred: (e: SseEvent[]) => unknown, what: string, ms = 15_000) => waitFor(() => pred(events), ms, what),
    close: () => abort.abort(),
  };
}

const PKN = "PKN.WA";
const CDR = "CDR.WA";
const ALE = "ALE.WA";

describe("WebSocket /api/ws", () => {
  for (const kind of JOURNALED) test.skipIf(kind.unavailable !== null)(`snapshot on subscribe, then exactly the subscribed events in id order, from this process and from another writer (${kind.kind})`, async () => {
    const s = await startStream({}, kind.url());
    await commit(s.store, bars([PKN, CDR, ALE], 0, 3));
    await published(s);
    const c = wsClient(`${s.wsBase}/api/ws`);
    await c.opened;
    // Spellings of other providers name the same listings.
    c.send({ op: "subscribe", symbols: ["pkn.pl", "CDR:WSE"] });
    await c.until((m) => m.filter((x) => x.type === "snapshot").length === 2, "two snapshots");
    const snaps = c.msgs.filter((m) => m.type === "snapshot");
    expect(snaps.map((m) => m.bar!.symbol).sort()).toEqual([CDR, PKN]);
    for (const m of snaps) expect(m.bar!.ts).toBe(new Date(T0 + 2 * 60_000).toISOString());
    const snapId = snaps[0]!.id!;
    expect(snapId).toBe((await s.store.eventBounds()).last);
    expect(c.msgs[0]).toMatchObject({ type: "status", status: "subscribed", symbols: [PKN, CDR] });

    // A second handle on the same store is another process's commit: the tailer's poll finds it.
    const other = s.reopen();
    await other.migrate();
    await commit(other, bars([PKN, CDR, ALE], 3, 50));
    await commit(s.store, bars([ALE, CDR, PKN], 53, 50));
    await commit(other, bars([PKN], 0, 10, 1)); // updates of stored bars are events too
    const expected = await journalIds(s.store, [PKN, CDR], snapId);
    expect(expected.length).toBe(2 * 100 + 10);
    await c.until((m) => m.filter((x) => x.type === "bar").length >= expected.length, "every event");
    await c.settle(expected.at(-1)!);
    expect(c.ids()).toEqual(expected);
    expect(c.bars().every((m) => m.bar!.symbol === PKN || m.bar!.symbol === CDR)).toBe(true);
    expect(c.bars().slice(-10).every((m) => m.op === "update")).toBe(true);
    await other.close();
    c.ws.close();
  });

  test("bad messages get error replies and the connection stays up; ping, unsubscribe, wildcard", async () => {
    const s = await startStream();
    const c = wsClient(`${s.wsBase}/api/ws`);
    await c.opened;
    c.send("not json");
    c.send({ op: "dance" });
    c.send({ op: "subscribe" });
    c.send({ op: "subscribe", symbols: ["PKN.WA", "NOPE", "x!y.WA"] });
    c.send({ op: "subscribe", symbols: [PKN], since: -1 });
    c.send({ op: "subscribe", symbols: [PKN], extra: 1 });
    c.send({ op: "ping" });
    await c.until((m) => m.some((x) => x.type === "pong"), "pong");
    const errors = c.msgs.filter((m) => m.type === "error");
    expect(errors.length).toBe(6);
    expect(errors[0]!.message).toContain("expected a JSON object");
    expect(errors[1]!.message).toContain("expected op: subscribe, unsubscribe, watch, unwatch or ping");
    expect(errors[2]!.message).toContain("symbols");
    expect(errors[3]).toMatchObject({ op: "subscribe", symbols: ["NOPE", "x!y.WA"] });
    expect(errors[4]!.message).toContain("since must not be negative");
    expect(errors[5]!.message).toContain("extra");
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    // None of the bad subscribes subscribed anything: a good one still works.
    c.send({ op: "subscribe", symbols: [PKN] });
    await c.until((m) => m.some((x) => x.status === "subscribed"), "subscribed");
    await commit(s.store, bars([PKN, CDR], 0, 2));
    await c.until((m) => m.filter((x) => x.type === "bar").length === 2, "PKN bars");
    c.send({ op: "unsubscribe", symbols: [PKN] });
    c.send({ op: "subscribe", symbols: ["*"] });
    await c.until((m) => m.filter((x) => x.status === "subscribed").length === 2, "wildcard subscribed");
    await commit(s.store, bars([PKN, CDR, ALE], 2, 1));
    await c.until((m) => m.filter((x) => x.type === "bar").length === 5, "every symbol's bar");
    await c.settle((await s.store.eventBounds()).last);
    expect(c.bars().map((m) => m.bar!.symbol)).toEqual([PKN, PKN, PKN, CDR, ALE]);
    // The wildcard's snapshot covered the series it had not seen.
    expect(c.msgs.filter((m) => m.type === "snapshot").map((m) => m.bar!.symbol)).toContain(CDR);
    c.ws.close();
  });

  for (const kind of JOURNALED) test.skipIf(kind.unavailable !== null)(`reconnect with since replays exactly the missed events, then live, while writers keep committing (${kind.kind})`, async () => {
    const s = await startStream({}, kind.url());
    // QuestDB takes one writing process at a time (another waits until the first is idle): there
    // this process writes alone; the test above has its second writer.
    const other = kind.kind === "questdb" ? s.store : s.reopen();
    await commit(s.store, bars([PKN, CDR], 0, 5));
    const a = wsClient(`${s.wsBase}/api/ws`);
    await a.opened;
    a.send({ op: "subscribe", symbols: [PKN, CDR] });
    let minute = 5;
    let writing = true;
    // Two writers commit small batches as fast as they can for the whole test.
    const writer = (async () => {
      while (writing) {
        await commit(minute % 2 ? other : s.store, bars([PKN, CDR, ALE], minute, 3));
        minute += 3;
        // Let the clients' sockets and the tailer run between commits.
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await a.until((m) => m.filter((x) => x.type === "bar").length >= 60, "some live events");
    a.ws.close();
    await a.closed;
    const last = a.ids().at(-1)!;
    const missedFrom = minute;
    await waitFor(() => minute >= missedFrom + 30, 15_000, "commits it misses");
    const b = wsClient(`${s.wsBase}/api/ws?symbols=PKN.WA,CDR.WA&since=${last}`);
    await b.opened;
    await b.until((m) => m.some((x) => x.status === "replayed"), "replay done");
    const replayedTo = b.msgs.find((m) => m.status === "replayed")!.last as number;
    await b.until((m) => m.filter((x) => x.type === "bar" && x.id! > replayedTo).length >= 30, "live events after the replay");
    writing = false;
    await writer;
    const expected = await journalIds(s.store, [PKN, CDR], last);
    await b.until((m) => m.filter((x) => x.type === "bar").length >= expected.length, "everything after since");
    await b.settle(expected.at(-1)!);
    expect(b.ids()).toEqual(expected);
    const replayed = b.msgs.find((m) => m.status === "replayed")!;
    expect(replayed.events as number).toBeGreaterThan(0);
    expect(b.msgs.some((m) => m.type === "snapshot")).toBe(false);
    // The first client saw, after its snapshot, a prefix of the same sequence.
    const aSnap = a.msgs.find((m) => m.type === "snapshot")!.id!;
    expect(a.ids()).toEqual((await journalIds(s.store, [PKN, CDR], aSnap)).slice(0, a.ids().length));
    b.ws.close();
    if (other !== s.store) await other.close();
  });

  for (const kind of JOURNALED) test.skipIf(kind.unavailable !== null)(`since older than the journal, or ahead of it, is told in a status message (${kind.kind})`, async () => {
    const s = await startStream({}, kind.url());
    await commit(s.store, bars([PKN], 0, 1));
    await commit(s.store, bars([PKN], 1, 1));
    await commit(s.store, bars([PKN], 2, 1));
    const { first, last } = await s.store.eventBounds();
    await s.store.pruneEvents(Date.now() + 1); // the journal is empty now; the bars stay
    await commit(s.store, bars([PKN], 3, 1));
    const c = wsClient(`${s.wsBase}/api/ws`);
    await c.opened;
    c.send({ op: "subscribe", symbols: [PKN], since: first });
    await c.until((m) => m.some((x) => x.status === "replayed"), "replay");
    const bounds = await s.store.eventBounds();
    expect(c.msgs.find((m) => m.status === "replay_unavailable")!.message).toBe(`replay unavailable from id ${first}: journal starts at ${bounds.first}; replaying from there`);
    expect(c.ids()).toEqual([bounds.last]);
    c.send({ op: "subscribe", symbols: [CDR], since: last * 10 });
    await c.until((m) => m.filter((x) => x.status === "replay_unavailable").length === 2, "ahead");
    expect(c.msgs.filter((m) => m.status === "replay_unavailable")[1]!.message).toContain("the journal ends at");
    c.ws.close();
  });

  test("a client that stops reading is conflated; a normal client keeps receiving everything", async () => {
    // The burst of one commit (1,000 events) fits any client's limits; a stopped client overflows them.
    const s = await startStream({ bufferBytes: 64 * 1024, bufferMessages: 5000, slowClient: "conflate" });
    const symbols = [PKN, CDR, ALE, "KGH.WA"];
    const slow = Bun.spawn([process.execPath, join(ROOT, "test/fakes/ws-client.ts"), `${s.wsBase}/api/ws`, JSON.stringify({ op: "subscribe", symbols })], { stdout: "pipe", stderr: "inherit" });
    const lines: string[] = [];
    void (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of slow.stdout) {
        buf += decoder.decode(chunk, { stream: true });
        const parts = buf.split("\n");
        buf = parts.pop()!;
        lines.push(...parts);
      }
    })();
    try {
      await waitFor(() => lines.includes("ready"), 15_000, "the slow client to subscribe");
      const fast = wsClient(`${s.wsBase}/api/ws`);
      await fast.opened;
      fast.send({ op: "subscribe", symbols });
      await fast.until((m) => m.some((x) => x.status === "subscribed"), "fast subscribed");
      process.kill(slow.pid, "SIGSTOP");
      // 60,000 bars (~13 MB of messages): far more than the stopped client's socket buffers hold.
      const started = Date.now();
      // Each batch read by this process's own client before the next, as a real ingest pauses for its fetches.
      for (let i = 0; i < 60; i++) {
        await commit(s.store, bars(symbols, i * 250, 250));
        await fast.until((m) => m.filter((x) => x.type === "bar").length >= (i + 1) * 1000, "the fast client to read the batch");
      }
      const expected = await journalIds(s.store, symbols);
      await fast.until((m) => m.filter((x) => x.type === "bar").length >= expected.length, "the fast client to get everything", 60_000);
      const fastDone = Date.now() - started;
      expect(fast.ids()).toEqual(expected);
      expect(s.hub.counters.conflated).toBeGreaterThan(0);
      expect(s.hub.clients).toBe(2); // conflated, not dropped
      process.kill(slow.pid, "SIGCONT");
      // It resumes: told it was conflated, then caught up, ending on each series' latest bar.
      await waitFor(() => lines.some((l) => l.includes('"caught_up"')), 30_000, "the slow client to catch up");
      const conflating = lines.find((l) => l.includes('"conflating"'))!;
      expect(JSON.parse(conflating).message).toContain("bar ids will skip");
      const slowIds = lines.filter((l) => l.startsWith("bar ")).map((l) => Number(l.split(" ")[1]));
      expect(slowIds.length).toBeLessThan(expected.length);
      expect(slowIds).toEqual([...slowIds].sort((x, y) => x - y)); // still in id order
      const lastPer = new Map<string, number>();
      for (const l of lines.filter((l) => l.startsWith("bar "))) lastPer.set(l.split(" ")[2]!, Number(l.split(" ")[1]));
      const journal = await s.store.eventsSince(0, 10_000_000);
      for (const sym of symbols) expect(lastPer.get(sym)).toBe(journal.filter((e) => e.bar.symbol === sym).at(-1)!.id);
      await waitFor(async () => /ticksync_stream_conflated_total [1-9]/.test(await s.metrics.registry.render()), 3000, "the conflated metric");
      expect(await s.metrics.registry.render()).toContain('ticksync_stream_clients{transport="ws"} 2');
      console.log(`fast client got ${expected.length} events in ${fastDone} ms while the other was stopped; the stopped one got ${slowIds.length} after conflation`);
      fast.ws.close();
    } finally {
      slow.kill("SIGCONT");
      slow.kill();
    }
  }, 120_000);

  test("with slowClient = drop, a client that stops reading is closed with code 4008; the others go on", async () => {
    const s = await startStream({ bufferBytes: 64 * 1024, bufferMessages: 5000, slowClient: "drop" });
    const c = child([join(ROOT, "test/fakes/ws-client.ts"), `${s.wsBase}/api/ws`, JSON.stringify({ op: "subscribe", symbols: [PKN, CDR] })]);
    const slow = c.proc;
    const out = c.ended;
    try {
      await c.line((l) => l === "ready", "the slow client to subscribe");
      const fast = wsClient(`${s.wsBase}/api/ws?symbols=PKN.WA,CDR.WA`);
      await fast.until((m) => m.some((x) => x.status === "subscribed"), "fast subscribed");
      process.kill(slow.pid, "SIGSTOP");
      for (let i = 0; i < 60; i++) {
        await commit(s.store, bars([PKN, CDR], i * 500, 500));
        await fast.until((m) => m.filter((x) => x.type === "bar").length >= (i + 1) * 1000, "the fast client to read the batch");
      }
      await waitFor(() => s.hub.counters.dropped.slow === 1, 30_000, "the slow client to be dropped");
      const expected = await journalIds(s.store, [PKN, CDR]);
      await fast.until((m) => m.filter((x) => x.type === "bar").length >= expected.length, "the fast client to get everything", 60_000);
      expect(fast.ids()).toEqual(expected);
      process.kill(slow.pid, "SIGCONT");
      expect(await out).toMatch(/closed 4008 too slow/);
      expect(s.hub.clients).toBe(1);
      await waitFor(async () => (await s.metrics.registry.render()).includes('ticksync_stream_dropped_clients_total{reason="slow"} 1'), 3000, "the dropped metric");
      fast.ws.close();
    } finally {
      slow.kill("SIGCONT");
      slow.kill();
    }
  }, 120_000);

  test("a client that answers no heartbeat is closed with code 4002", async () => {
    const s = await startStream({ heartbeatSeconds: 1 });
    const c = child([join(ROOT, "test/fakes/ws-client.ts"), `${s.wsBase}/api/ws`, JSON.stringify({ op: "subscribe", symbols: [PKN] })]);
    const stopped = c.proc;
    const out = c.ended;
    const alive = wsClient(`${s.wsBase}/api/ws?symbols=PKN.WA`);
    await alive.opened;
    try {
      await c.line((l) => l === "ready", "the client to subscribe");
      await waitFor(() => s.hub.clients === 2, 15_000, "both clients");
      process.kill(stopped.pid, "SIGSTOP");
      await waitFor(() => s.hub.counters.dropped.heartbeat === 1, 10_000, "the silent client to be closed");
      process.kill(stopped.pid, "SIGCONT");
      expect(await out).toMatch(/closed 4002 no heartbeat/);
      // Bun's client answers pings by itself: it is still connected.
      expect(alive.ws.readyState).toBe(WebSocket.OPEN);
      expect(s.hub.clients).toBe(1);
      alive.ws.close();
    } finally {
      stopped.kill("SIGCONT");
      stopped.kill();
    }
  }, 30_000);
});

describe("SSE /api/stream", () => {
  for (const kind of JOURNALED) test.skipIf(kind.unavailable !== null)(`headers, the subscribed events with ids, heartbeats, and Last-Event-ID replays exactly the missed ones (${kind.kind})`, async () => {
    const s = await startStream({ heartbeatSeconds: 1 }, kind.url());
    await commit(s.store, bars([PKN, CDR], 0, 2));
    await published(s);
    const a = await sseClient(`${s.base}/api/stream?symbols=pkn.pl,CDR.WA`);
    expect(a.res.status).toBe(200);
    expect(a.res.headers.get("content-type")).toStartWith("text/event-stream");
    expect(a.res.headers.get("cache-control")).toBe("no-cache");
    expect(a.res.headers.get("x-accel-buffering")).toBe("no");
    await a.until((e) => e.filter((x) => x.event === "snapshot").length === 2, "snapshots");
    const other = s.reopen();
    await other.migrate();
    await commit(other, bars([PKN, CDR, ALE], 2, 20));
    const firstPart = await journalIds(s.store, [PKN, CDR], (await s.store.eventsSince(0, 100))[3]!.id);
    await a.until((e) => e.filter((x) => x.event === "bar").length >= firstPart.length, "live events");
    expect(a.ids()).toEqual(firstPart);
    expect(a.events.find((e) => e.event === "bar")!.data).toMatchObject({ type: "bar", op: "insert", bar: { symbol: PKN } });
    await a.until(() => a.comments.includes("heartbeat"), "a heartbeat comment", 5000);
    a.close();
    const lastSeen = a.ids().at(-1)!;
    await commit(s.store, bars([PKN, CDR, ALE], 22, 10));
    await commit(other, bars([CDR], 22, 5, 1));
    // EventSource reconnects with Last-Event-ID: it wins over since.
    const b = await sseClient(`${s.base}/api/stream?symbols=PKN.WA,CDR.WA&since=0`, { "Last-Event-ID": String(lastSeen) });
    await b.until((e) => e.some((x) => x.data.status === "replayed"), "replay");
    await commit(other, bars([PKN], 40, 3));
    const expected = await journalIds(s.store, [PKN, CDR], lastSeen);
    expect(expected.length).toBe(10 * 2 + 5 + 3);
    await b.until((e) => e.filter((x) => x.event === "bar").length >= expected.length, "replay and live");
    // A marker event committed after: once it arrived, nothing else came before it that should not have.
    await commit(other, bars([PKN], 50, 1));
    const marker = (await s.store.eventBounds()).last;
    await b.until(() => b.ids().includes(marker), "the marker event");
    expect(b.ids()).toEqual([...expected, marker]);
    b.close();
    await waitFor(() => s.hub.clients === 0, 5000, "both SSE clients to be gone");
    await other.close();
  });

  test("an SSE client that stops reading is conflated (or dropped) like a WebSocket one", async () => {
    for (const policy of ["conflate", "drop"] as const) {
      const s = await startStream({ bufferBytes: 64 * 1024, bufferMessages: 5000, slowClient: policy });
      const c = child([join(ROOT, "test/fakes/sse-client.ts"), `${s.base}/api/stream?symbols=PKN.WA`]);
      const slow = c.proc;
      const out = c.ended;
      try {
        await c.line((l) => l.includes('"status":"subscribed"'), "the SSE client to subscribe");
        process.kill(slow.pid, "SIGSTOP");
        for (let i = 0; i < 60; i++) {
          await commit(s.store, bars([PKN], i * 1000, 1000));
          // The server writes and pulls between batches, as during a real ingest's fetches.
          await new Promise((resolve) => setImmediate(resolve));
        }
        if (policy === "conflate") await waitFor(() => s.hub.counters.conflated > 0, 10_000, "conflation");
        else await waitFor(() => s.hub.counters.dropped.slow === 1, 10_000, "the drop");
        process.kill(slow.pid, "SIGCONT");
        if (policy === "conflate") {
          const last = (await s.store.eventBounds()).last;
          await waitFor(() => s.hub.counters.sent.sse > 0 && s.hub.clients === 1, 5000, "still connected");
          await c.line((l) => l === `bar ${last}`, "the last bar", 30_000);
          await c.line((l) => l.includes('"caught_up"'), "caught up", 30_000);
          slow.kill();
          const text = await out;
          expect(text).toContain('"status":"conflating"');
          expect(text).toContain('"status":"caught_up"');
          expect(text).toContain(`bar ${last}\n`);
        } else {
          expect(await out).toContain("ended");
          expect(s.hub.clients).toBe(0);
        }
      } finally {
        slow.kill("SIGCONT");
        slow.kill();
      }
    }
  }, 120_000);

  test("bad requests are 400 with the field", async () => {
    const s = await startStream();
    for (const [q, field] of [
      ["", "symbols"],
      ["symbols=NOPE", "symbols"],
      ["symbols=PKN.WA&since=abc", "since"],
    ] as const) {
      const r = await fetch(`${s.base}/api/stream?${q}`);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { issues: { field: string }[] }).issues[0]!.field).toBe(field);
    }
    const r = await fetch(`${s.base}/api/ws`);
    expect(r.status).toBe(426);
  });
});

describe("ticksync serve", () => {
  test("token auth, WebSocket and SSE fed by another process's commits", async () => {
    const token = "s3cret-token-0123456789";
    const db = join(dir, "serve.db");
    const cfg = writeFile(join(dir, "serve.toml"), `[store]\nurl = "sqlite:${db}"\n\n[stream]\ntokens = ["${token}"]\npollMs = 50\n`);
    const { url, proc } = await startServe(["--config", cfg]);
    try {
      const ws = url.replace("http", "ws");
      expect((await fetch(`${url}/api/stream?symbols=PKN.WA`)).status).toBe(401);
      expect((await fetch(`${url}/api/stream?symbols=PKN.WA&token=wrong-token-0123456789`)).status).toBe(401);
      expect((await fetch(`${url}/api/stream?symbols=PKN.WA`, { headers: { Authorization: "Bearer nope" } })).status).toBe(401);
      const refused = new WebSocket(`${ws}/api/ws`);
      const refusedClose = await new Promise<number>((resolve) => (refused.onclose = (e) => resolve(e.code)));
      expect(refusedClose).not.toBe(1000);
      // Other endpoints are not behind the stream's tokens.
      expect((await fetch(`${url}/healthz`)).status).toBe(200);

      const c = wsClient(`${ws}/api/ws?token=${token}&symbols=PKN.WA`);
      await c.opened;
      const sse = await sseClient(`${url}/api/stream?symbols=PKN.WA`, { Authorization: `Bearer ${token}` });
      expect(sse.res.status).toBe(200);
      await c.until((m) => m.some((x) => x.status === "subscribed"), "ws subscribed");
      await sse.until((e) => e.some((x) => x.data.status === "subscribed"), "sse subscribed");
      const store = sqliteStore(`sqlite:${db}`);
      await commit(store, bars([PKN, CDR], 0, 25));
      const expected = await journalIds(store, [PKN]);
      await c.until((m) => m.filter((x) => x.type === "bar").length >= expected.length, "ws events");
      await sse.until((e) => e.filter((x) => x.event === "bar").length >= expected.length, "sse events");
      expect(c.ids()).toEqual(expected);
      expect(sse.ids()).toEqual(expected);
      const last = (await store.eventBounds()).last;
      // The hub brings the registry up to date every second.
      const metrics = await waitFor(async () => {
        const text = await (await fetch(`${url}/metrics`)).text();
        return text.includes(`ticksync_stream_last_event_id ${last}`) && text;
      }, 5000, "the stream metrics");
      expect(metrics).toMatch(/ticksync_stream_messages_sent_total\{transport="ws"\} \d+/);
      c.ws.close();
      sse.close();
      await store.close();
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  }, 60_000);
});

describe("journal retention and config", () => {
  test("serve prunes journal batches older than stream.retentionDays", async () => {
    const s = await startStream({ retentionDays: 1 / 86_400 }); // one second
    await commit(s.store, bars([PKN], 0, 3));
    expect((await s.store.eventBounds()).first).not.toBeNull();
    await waitFor(async () => (await s.store.eventBounds()).first === null, 5000, "the journal to be pruned");
    expect(await s.store.countBars()).toBe(3);
  });

  test("stream config: defaults, and errors that name the field", () => {
    expect(parseConfig({}).stream).toEqual({ tokens: [], slowClient: "conflate", bufferBytes: 1 << 20, bufferMessages: 10_000, outboxBytes: 16 << 20, maxMessageBytes: 65_536, messagesPerSecond: 20, maxSymbols: 5000, heartbeatSeconds: 15, pollMs: 1000, statusPollSeconds: 5, compat: { host: "127.0.0.1", path: false, defaultMarket: "WSE" }, retentionDays: 7 });
    const issues = (raw: unknown) => {
      try {
        parseConfig(raw);
      } catch (e) {
        if (e instanceof ConfigError) return e.issues;
      }
      throw new Error("expected a ConfigError");
    };
    expect(issues({ stream: { slowClient: "wait" } })).toEqual([{ path: "stream.slowClient", message: "expected conflate or drop" }]);
    expect(issues({ stream: { tokens: ["short"] } })).toEqual([{ path: "stream.tokens[0]", message: "a token must be at least 16 characters" }]);
    expect(issues({ stream: { retentionDays: 0 } })).toEqual([{ path: "stream.retentionDays", message: "must be more than 0" }]);
    expect(issues({ stream: { heartbeatSeconds: 1.5 } })[0]!.path).toBe("stream.heartbeatSeconds");
    expect(issues({ stream: { tokenz: [] } })[0]!.message).toContain('unknown field "tokenz"');
  });
});

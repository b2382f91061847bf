// The server side of the stream bench, in its own process:
//   bun scripts/bench/lib/stream-server.ts ticksync <sqlite file>   the stream hub + Hono app on a real SQLite store
//   bun scripts/bench/lib/stream-server.ts bare                      a bare Bun WebSocket server (one topic per symbol)
// It prints {"port":…} once it listens, then waits for "produce <events/s> <seconds> <symbols>" on
// stdin and produces that many events: ticksync commits batches to the store (every 10 ms, the
// events due by then) and the hub delivers them; bare publishes the same messages to the topic of
// each bar's symbol. Each bar carries, in `turnover`, the instant (epoch ms) its batch was made;
// the instant each batch's commit (bare: publish) ended is written to <file>.committed.json by
// batch number, so clients measure latency from the end of the commit to their receipt. Prints
// {"produced":…,"batches":…,"commitMs":…,"committedAt":<that file>} when done.
import { sqliteStore } from "../../../src/stores/sqlite/index.ts";
import { createHub } from "../../../src/stream/hub.ts";
import { createApp } from "../../../src/http/app.ts";
import { ticksyncMetrics } from "../../../src/lib/metrics.ts";
import { streamWebSocket } from "../../../src/stream/ws.ts";
import { defaultStreamConfig } from "../../../src/stream/config.ts";
import { barMessage } from "../../../src/stream/protocol.ts";
import type { Bar } from "../../../src/domain/bar.ts";
import { DEMO_TICKERS } from "../../gen-demo.ts";

const [mode, file] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const T0 = Date.UTC(2024, 0, 2);

/** Returns the event id batch number the bars were given (the journal's; bare: its own count). */
let produce: (events: Bar[], batch: number) => Promise<number>;
if (mode === "ticksync") {
  const store = sqliteStore(`sqlite:${file}`);
  await store.migrate();
  const metrics = ticksyncMetrics();
  const config = defaultStreamConfig();
  const hub = createHub({ store, metrics, config });
  await hub.start();
  const app = createApp({ store, metrics, stream: { hub, config } });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, websocket: streamWebSocket(config) });
  const run = await store.startRun({ kind: "ingest", source: "bench" });
  produce = async (bars) => {
    await store.commitBatch({ runId: run, source: "bench", bars, quarantine: [], read: bars.length });
    return (await store.eventBounds()).last / 2 ** 20;
  };
  console.log(JSON.stringify({ port: server.port }));
} else {
  const server = Bun.serve<{ topic: string }>({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      const topic = new URL(req.url).searchParams.get("symbol") ?? "";
      return srv.upgrade(req, { data: { topic } }) ? undefined : new Response("expected a WebSocket", { status: 426 });
    },
    websocket: {
      open(ws) {
        ws.subscribe(ws.data.topic);
        ws.send(JSON.stringify({ type: "status", status: "subscribed" }));
      },
      message() {},
    },
  });
  let id = 0;
  produce = async (bars, batch) => {
    // The same JSON the hub sends, made once per event, one publish per event.
    bars.forEach((bar, i) => {
      id = batch * 2 ** 20 + i;
      server.publish(bar.symbol, barMessage({ id, type: "bar", op: "insert", bar }).json);
    });
    return batch;
  };
  console.log(JSON.stringify({ port: server.port }));
}

for await (const line of console) {
  const [cmd, rate, seconds, nsym] = line.trim().split(/\s+/);
  if (cmd !== "produce") continue;
  const symbols = DEMO_TICKERS.slice(0, Number(nsym)).map((t) => `${t}.WA`);
  const total = Number(rate) * Number(seconds);
  const started = now();
  let produced = 0;
  let batches = 0;
  let commitMs = 0;
  // When each batch was committed (bare: published), by its batch number, for the clients' latency.
  const committedAt: Record<number, number> = {};
  while (produced < total) {
    const due = Math.min(total, Math.floor(((now() - started) / 1000) * Number(rate)));
    if (due > produced) {
      const t = now();
      const bars: Bar[] = [];
      for (let k = produced; k < due; k++) {
        const symbol = symbols[k % symbols.length]!;
        const n = Math.floor(k / symbols.length);
        bars.push({ source: "bench", symbol, interval: "1m", ts: T0 + n * 60_000, open: 10, high: 11, low: 9, close: 10 + (n % 100) / 100, volume: 1000 + n, turnover: t });
      }
      const batch = await produce(bars, ++batches);
      committedAt[Math.floor(batch)] = now();
      commitMs += now() - t;
      produced = due;
    }
    await Bun.sleep(10);
  }
  await Bun.write(`${file}.committed.json`, JSON.stringify(committedAt));
  console.log(JSON.stringify({ produced, batches, commitMs: Math.round(commitMs), seconds: (now() - started) / 1000, committedAt: `${file}.committed.json` }));
}
// stdin closed: the bench is done with this server.
process.exit(0);

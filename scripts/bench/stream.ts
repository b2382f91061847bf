// Stream bench: 1,000 WebSocket clients subscribed across 88 symbols (client i to symbol i mod 88),
// 10,000 events/s for 30 s, two ways in the same run, each with its server in one process and all
// clients in another (the machine has two cores; neither side shares one with the other):
//   ticksync: batches committed to a real SQLite store every 10 ms; the journal tailer reads them
//             and the hub delivers each to its symbol's subscribers (/api/ws, the JSON protocol);
//   bare:     a bare Bun WebSocket server publishing the same JSON messages to a topic per symbol.
// Prints delivered messages/s, p50/p99 latency from commit (bare: publish) to client receipt, and
// ticksync's ratio to the bare server. Fails only when a client sees an id out of order.
//   bun scripts/bench/stream.ts   (BENCH_STREAM_SECONDS=5 for a quick run; BENCH_STREAM_CLIENTS,
//   BENCH_STREAM_RATE, BENCH_STREAM_SYMBOLS change the shape)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SECONDS = Number(process.env.BENCH_STREAM_SECONDS ?? 30);
const CLIENTS = Number(process.env.BENCH_STREAM_CLIENTS ?? 1000);
const RATE = Number(process.env.BENCH_STREAM_RATE ?? 10_000);
const SYMBOLS = Number(process.env.BENCH_STREAM_SYMBOLS ?? 88);
const LIB = join(import.meta.dir, "lib");

type ClientReport = { received: number; outOfOrder: number; conflationNotices: number; p50: number; p99: number; max: number; madeP50: number; madeP99: number; spanMs: number };
/** CPU seconds a process has used so far (Linux /proc; NaN elsewhere). */
async function cpuSeconds(pid: number): Promise<number> {
  try {
    const f = (await Bun.file(`/proc/${pid}/stat`).text()).split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

type Result = { serverCpu: number; clientCpu: number; mode: string; expected: number; report: ClientReport; produce: { produced: number; batches: number; commitMs: number; seconds: number; committedAt: string }; perSecond: number };

/** Lines of a child's stdout, one at a time. */
function lines(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  return async (timeoutMs: number, what: string): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    while (!buf.includes("\n")) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      const r = await Promise.race([reader.read(), Bun.sleep(left).then(() => null)]);
      if (r === null) throw new Error(`timed out waiting for ${what}`);
      if (r.done) throw new Error(`the process ended before ${what}`);
      buf += decoder.decode(r.value, { stream: true });
    }
    const i = buf.indexOf("\n");
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    return line;
  };
}

async function measure(mode: "ticksync" | "bare", dir: string): Promise<Result> {
  const env = { ...process.env, TICKSYNC_LOG__LEVEL: "warn" };
  const server = Bun.spawn([process.execPath, ...(process.env.BENCH_STREAM_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_STREAM_PROF}`] : []), join(LIB, "stream-server.ts"), mode, join(dir, `${mode}.db`)], { stdin: "pipe", stdout: "pipe", stderr: "inherit", env });
  const serverOut = lines(server.stdout);
  try {
    const { port } = JSON.parse(await serverOut(20_000, "the server's port"));
    const c = Bun.spawn([process.execPath, join(LIB, "stream-clients.ts"), mode, String(port), String(CLIENTS), String(SYMBOLS)], { stdin: "pipe", stdout: "pipe", stderr: "inherit", env });
    const clientOut = lines(c.stdout);
    try {
      if ((await clientOut(60_000, "every client to subscribe")) !== "ready") throw new Error("the clients did not get ready");
      server.stdin.write(`produce ${RATE} ${SECONDS} ${SYMBOLS}\n`);
      server.stdin.flush();
      const produce = JSON.parse(await serverOut(SECONDS * 1000 + 60_000, "the producer to finish"));
      // Every event goes to the clients of its symbol.
      let expected = 0;
      for (let k = 0; k < produce.produced; k++) expected += Math.floor(CLIENTS / SYMBOLS) + (k % SYMBOLS < CLIENTS % SYMBOLS ? 1 : 0);
      // Let the last messages arrive: until all are in, or the count stands still for 2 s.
      const ask = async (cmd: string) => {
        c.stdin.write(`${cmd}\n`);
        c.stdin.flush();
        return JSON.parse(await clientOut(30_000, `the clients' ${cmd}`));
      };
      let seen = -1;
      let still = 0;
      while (still < 8) {
        const { received } = await ask("count");
        if (received >= expected) break;
        still = received === seen ? still + 1 : 0;
        seen = received;
        await Bun.sleep(250);
      }
      const [serverCpu, clientCpu] = [await cpuSeconds(server.pid), await cpuSeconds(c.pid)];
      const report: ClientReport = await ask(`report ${produce.committedAt}`);
      return { serverCpu, clientCpu, mode, expected, report, produce, perSecond: report.received / (report.spanMs / 1000) };
    } finally {
      c.kill();
      await c.exited;
    }
  } finally {
    server.stdin.end();
    await Promise.race([server.exited, Bun.sleep(5000)]);
    server.kill();
    await server.exited;
  }
}

export async function run(): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), "ticksync-bench-stream-"));
  try {
    console.log(`stream: ${CLIENTS} WebSocket clients over ${SYMBOLS} symbols, ${RATE} events/s for ${SECONDS} s (server and clients in separate processes)`);
    const results: Result[] = [];
    for (const mode of ["bare", "ticksync"] as const) results.push(await measure(mode, dir));
    const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
    console.log("  latency: from the end of the batch's commit (bare: its publish) to receipt; in brackets from before the commit");
    console.log("  server     delivered/expected      msgs/s   p50 ms   p99 ms   max ms   [p50 ms  p99 ms]  conflated  out-of-order  CPU s server/clients");
    for (const r of results)
      console.log(
        `  ${r.mode.padEnd(9)} ${`${fmt(r.report.received)}/${fmt(r.expected)}`.padStart(20)} ${fmt(r.perSecond).padStart(11)} ${r.report.p50.toFixed(1).padStart(8)} ${r.report.p99.toFixed(1).padStart(8)} ${r.report.max.toFixed(0).padStart(8)}   [${r.report.madeP50.toFixed(1).padStart(6)} ${r.report.madeP99.toFixed(1).padStart(7)}] ${String(r.report.conflationNotices).padStart(10)} ${String(r.report.outOfOrder).padStart(13)}  ${r.serverCpu.toFixed(1).padStart(8)}/${r.clientCpu.toFixed(1)}`,
      );
    const [bare, ours] = [results[0]!, results[1]!];
    console.log(
      `  ticksync / bare Bun: ${(ours.perSecond / bare.perSecond).toFixed(2)}× the delivered messages/s, latency p50 ${(ours.report.p50 / bare.report.p50).toFixed(2)}× / p99 ${(ours.report.p99 / bare.report.p99).toFixed(2)}× from the commit's end (ticksync's commit returns after the hub has published, so this flatters it), p50 ${(ours.report.madeP50 / bare.report.madeP50).toFixed(2)}× / p99 ${(ours.report.madeP99 / bare.report.madeP99).toFixed(2)}× from before the commit; ticksync spent ${fmt(ours.produce.commitMs)} ms committing ${ours.produce.batches} batches (${(ours.produce.commitMs / ours.produce.batches).toFixed(1)} ms each, the in-process delivery included); CPU: server ${(ours.serverCpu / bare.serverCpu).toFixed(2)}× the bare one's`,
    );
    return results.every((r) => r.report.outOfOrder === 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) process.exit((await run()) ? 0 : 1);

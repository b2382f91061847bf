// The client side of the stream bench, in its own process (away from the server's core):
//   bun scripts/bench/lib/stream-clients.ts <ticksync|bare> <port> <clients> <symbols>
// Opens <clients> WebSockets, client i subscribed to symbol i mod <symbols>; prints "ready" when
// every one is subscribed. Each bar received is counted, checked to come in id order, and its
// latency taken (receipt instant − the `turnover` instant the server wrote when it made the
// batch). On "count" from stdin it prints {"received":…}; on "report" {"received":…,"outOfOrder":…,"p50":…,"p99":…,…}.
import { DEMO_TICKERS } from "../../gen-demo.ts";

const [mode, port, nClients, nSymbols] = process.argv.slice(2);
const symbols = DEMO_TICKERS.slice(0, Number(nSymbols)).map((t) => `${t}.WA`);
const now = () => performance.timeOrigin + performance.now();

let received = 0;
let outOfOrder = 0;
let conflationNotices = 0;
let first = 0;
let last = 0;
// Every bar's batch number and receipt instant (a few million fit in memory), and its latency
// from when the batch was made (the bar's `turnover`, before the commit).
let batchOf = new Float64Array(1 << 20);
let receivedAt = new Float64Array(1 << 20);
let fromMade = new Float32Array(1 << 20);
let nLat = 0;
const sockets: WebSocket[] = [];
let subscribed = 0;

const num = (s: string, key: string) => {
  const at = s.indexOf(key);
  if (at < 0) return NaN;
  let end = at + key.length;
  while (end < s.length && s[end] !== "," && s[end] !== "}") end++;
  return Number(s.slice(at + key.length, end));
};

for (let i = 0; i < Number(nClients); i++) {
  const symbol = symbols[i % symbols.length]!;
  const url = mode === "ticksync" ? `ws://127.0.0.1:${port}/api/ws` : `ws://127.0.0.1:${port}/?symbol=${symbol}`;
  const ws = new WebSocket(url);
  let lastId = -1;
  ws.onopen = () => {
    if (mode === "ticksync") ws.send(JSON.stringify({ op: "subscribe", symbols: [symbol] }));
  };
  ws.onmessage = (e) => {
    const s = e.data as string;
    if (s.startsWith('{"type":"bar"')) {
      const t = now();
      received++;
      if (!first) first = t;
      last = t;
      const id = num(s, '"id":');
      if (id <= lastId) outOfOrder++;
      lastId = id;
      if (nLat === batchOf.length) {
        const grow = <A extends Float64Array | Float32Array>(a: A): A => {
          const b = new (a.constructor as new (n: number) => A)(a.length * 2);
          b.set(a);
          return b;
        };
        batchOf = grow(batchOf);
        receivedAt = grow(receivedAt);
        fromMade = grow(fromMade);
      }
      batchOf[nLat] = Math.floor(id / 2 ** 20);
      receivedAt[nLat] = t;
      fromMade[nLat++] = t - num(s, '"turnover":');
    } else if (s.includes('"status":"subscribed"')) {
      if (++subscribed === Number(nClients)) console.log("ready");
    } else if (s.includes('"status":"conflating"')) conflationNotices++;
  };
  ws.onclose = (e) => {
    if (e.code !== 1000) console.error(`client ${i} closed ${e.code} ${e.reason}`);
  };
  sockets.push(ws);
  // Connect in small steps: the server's accept queue is not the thing measured.
  if (i % 50 === 49) await Bun.sleep(20);
}

for await (const line of console) {
  if (line.trim() === "count") console.log(JSON.stringify({ received }));
  const [cmd, committedFile] = line.trim().split(" ");
  if (cmd !== "report") continue;
  const committedAt = JSON.parse(await Bun.file(committedFile!).text()) as Record<string, number>;
  const lat = new Float32Array(nLat);
  for (let i = 0; i < nLat; i++) lat[i] = receivedAt[i]! - (committedAt[batchOf[i]!] ?? NaN);
  const quantiles = (a: Float32Array) => {
    const sorted = a.sort();
    const q = (p: number) => (nLat ? sorted[Math.min(nLat - 1, Math.floor(p * nLat))]! : NaN);
    return { p50: q(0.5), p99: q(0.99), max: nLat ? sorted[nLat - 1]! : NaN };
  };
  const made = quantiles(fromMade.subarray(0, nLat));
  console.log(JSON.stringify({ received, outOfOrder, conflationNotices, ...quantiles(lat), madeP50: made.p50, madeP99: made.p99, spanMs: last - first }));
  for (const ws of sockets) ws.close(1000);
  process.exit(0);
}

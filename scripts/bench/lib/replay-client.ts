// The client side of the replay bench, in its own process (away from the server's core):
//   bun scripts/bench/lib/replay-client.ts http <url>            reads an NDJSON replay to its end
//   bun scripts/bench/lib/replay-client.ts ws <ws-url> <json>    sends a replay op, reads to replay_done
// Counts the bars and checks their (ts, symbol, source) order from each line's text (the lines'
// fields come in a fixed order, so no JSON parse per bar); prints {"bars":…,"seconds":…,"outOfOrder":…}.
const [mode, url, op] = process.argv.slice(2);
export {};

let bars = 0;
let outOfOrder = 0;
let prevTs = "";
let prevSym = "";
let prevSrc = "";
/** The quoted value after `key` in a line (symbols, sources and ISO times hold no quotes). */
const field = (line: string, key: string) => {
  const at = line.indexOf(key);
  if (at < 0) return "";
  const start = at + key.length + 1;
  return line.slice(start, line.indexOf('"', start));
};
function check(line: string) {
  const ts = field(line, '"ts":');
  const sym = field(line, '"symbol":');
  const src = field(line, '"source":');
  if (ts < prevTs || (ts === prevTs && (sym < prevSym || (sym === prevSym && src <= prevSrc)))) outOfOrder++;
  prevTs = ts;
  prevSym = sym;
  prevSrc = src;
  bars++;
}

const t0 = performance.now();
if (mode === "http") {
  const res = await fetch(url!);
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of res.body!) {
    const text = rest + decoder.decode(chunk, { stream: true });
    let from = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", from)) {
      const line = text.slice(from, nl);
      from = nl + 1;
      if (line.startsWith('{"type":"bar"')) check(line);
      else throw new Error(`unexpected line: ${line.slice(0, 200)}`);
    }
    rest = text.slice(from);
  }
} else {
  const ws = new WebSocket(url!);
  await new Promise<void>((resolve, reject) => ((ws.onopen = () => resolve()), (ws.onerror = () => reject(new Error(`cannot connect to ${url}`)))));
  await new Promise<void>((resolve, reject) => {
    ws.onmessage = (e) => {
      const m = String(e.data);
      if (m.startsWith('{"type":"replay"')) return check(m);
      if (m.includes('"status":"replay_done"')) return resolve();
      if (m.startsWith('{"type":"error"')) reject(new Error(m));
    };
    ws.send(op!);
  });
  ws.close();
}
console.log(JSON.stringify({ bars, seconds: (performance.now() - t0) / 1000, outOfOrder }));

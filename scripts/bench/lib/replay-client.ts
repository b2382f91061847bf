// The client side of the replay bench, in its own process (away from the server's core):
//   bun scripts/bench/lib/replay-client.ts http <url>            reads an NDJSON replay to its end
//   bun scripts/bench/lib/replay-client.ts ws <ws-url> <json>    sends a replay op, reads to replay_done
//                                                                (a bar a message, or `bars` batches)
// Counts the bars and checks their (ts, symbol, source) order from each line's text (the lines'
// fields come in a fixed order, so no JSON parse per bar); prints {"bars":…,"messages":…,"seconds":…,"outOfOrder":…}.
const [mode, url, op] = process.argv.slice(2);
export {};

let bars = 0;
let outOfOrder = 0;
let prevTs = "";
let prevSym = "";
let prevSrc = "";
let messages = 0;
/** The quoted value after `key` in a line, from `from` (symbols, sources and ISO times hold no quotes). */
const field = (line: string, key: string, from = 0) => {
  const at = line.indexOf(key, from);
  if (at < 0) return "";
  const start = at + key.length + 1;
  return line.slice(start, line.indexOf('"', start));
};
/** One bar: the text from `from` up to its end (a batch holds several, each starting `{"source":`). */
function check(line: string, from = 0) {
  const ts = field(line, '"ts":', from);
  const sym = field(line, '"symbol":', from);
  const src = field(line, '"source":', from);
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
      messages++;
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
      if (m.startsWith('{"type":"replay","bar":')) return messages++, check(m);
      if (m.startsWith('{"type":"replay","bars":')) {
        messages++;
        for (let at = m.indexOf('{"source":'); at !== -1; at = m.indexOf('{"source":', at + 1)) check(m, at);
        return;
      }
      if (m.includes('"status":"replay_done"')) return resolve();
      if (m.startsWith('{"type":"error"')) reject(new Error(m));
    };
    ws.send(op!);
  });
  ws.close();
}
console.log(JSON.stringify({ bars, messages, seconds: (performance.now() - t0) / 1000, outOfOrder }));

// A WebSocket stream client in its own process, so a test can stop it (SIGSTOP) and make it a
// client that does not read: its socket fills, and the server has to conflate or drop it.
//   bun test/fakes/ws-client.ts <ws url> <subscribe message JSON>
// Prints one line per message received ("bar <id> <symbol>", or the message's JSON for anything
// else), "ready" once subscribed, and "closed <code> <reason>" at the end.
const [url, subscribe] = process.argv.slice(2);
const ws = new WebSocket(url!);
ws.onopen = () => ws.send(subscribe!);
ws.onmessage = (e) => {
  const m = JSON.parse(String(e.data));
  if (m.type === "bar") console.log(`bar ${m.id} ${m.bar.symbol}`);
  else console.log(JSON.stringify(m));
  if (m.type === "status" && m.status === "subscribed") console.log("ready");
};
ws.onclose = (e) => {
  console.log(`closed ${e.code} ${e.reason}`);
  process.exit(0);
};

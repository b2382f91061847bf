// An SSE stream client in its own process, so a test can stop it (SIGSTOP) and make it a client
// that does not read.   bun test/fakes/sse-client.ts <url>
// Prints "bar <id>" per bar event, the JSON of every other event, and "ended" when the server
// closes the stream.
const res = await fetch(process.argv[2]!);
const decoder = new TextDecoder();
let buf = "";
for await (const chunk of res.body!) {
  buf += decoder.decode(chunk, { stream: true });
  let end: number;
  while ((end = buf.indexOf("\n\n")) >= 0) {
    const block = buf.slice(0, end);
    buf = buf.slice(end + 2);
    const data = block.split("\n").find((l) => l.startsWith("data: "));
    if (!data) continue;
    const m = JSON.parse(data.slice(6));
    console.log(m.type === "bar" ? `bar ${m.id}` : JSON.stringify(m));
  }
}
console.log("ended");
export {};

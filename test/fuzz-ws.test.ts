// Property tests of the WebSocket protocol (fast-check) against the real endpoint on Bun.serve:
// random and hostile messages (not JSON, wrong types, long strings, deep nesting, binary frames,
// unknown ops, `__proto__` keys, and well-formed requests mixed in) never crash the session or the
// server; every reply is a known message type, an error reply stays small; the connection stays
// up (or is closed with a documented code), and a valid subscribe and ping that follow still work.
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { join } from "node:path";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { createHub } from "../src/stream/hub.ts";
import { createApp } from "../src/http/app.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { streamWebSocket } from "../src/stream/ws.ts";
import { defaultStreamConfig, type StreamConfig } from "../src/stream/config.ts";
import { CLOSE, parseStreamRequest } from "../src/stream/protocol.ts";
import { normaliseSymbol } from "../src/domain/symbols.ts";
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./fuzz.ts";
import { tempDir } from "./helpers.ts";
import { rawWs, wsFrame } from "./fakes/raw-ws.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-fuzz-ws-");
// The rate limit is opened: every case opens a connection and sends at once (stream-limits tests the rate).
const config: StreamConfig = { ...defaultStreamConfig(), pollMs: 50, messagesPerSecond: 100_000 };
const store = sqliteStore(`sqlite:${join(dir, "fuzz.db")}`);
await store.migrate();
const hub = createHub({ store, config });
await hub.start();
const app = createApp({ store, metrics: ticksyncMetrics(), stream: { hub, config } });
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, websocket: streamWebSocket(config) });
const WS = `ws://127.0.0.1:${server.port}/api/ws`;
afterAll(async () => {
  await hub.stop();
  await server.stop(true);
  await store.close();
});

const KNOWN = new Set(["bar", "snapshot", "status", "pong", "error"]);
/** Close codes the protocol documents for a client's own doing. */
const DOCUMENTED = new Set<number>([CLOSE.tooBig, CLOSE.flood, CLOSE.slow]);

type Msg = { type: string; status?: string; message?: string; symbols?: string[] };

/** A connection that records every reply; `next(pred)` resolves with the first later reply it accepts. */
async function connect() {
  const ws = new WebSocket(WS);
  const msgs: { raw: string; m: Msg }[] = [];
  const waiters = new Set<{ pred: (m: Msg) => boolean; resolve: (m: Msg) => void }>();
  let close: { code: number; reason: string } | undefined;
  ws.onmessage = (e) => {
    const raw = String(e.data);
    const m = JSON.parse(raw) as Msg;
    msgs.push({ raw, m });
    for (const w of waiters)
      if (w.pred(m)) {
        waiters.delete(w);
        w.resolve(m);
      }
  };
  const closed = new Promise<void>((resolve) => {
    ws.onclose = (e) => {
      close = { code: e.code, reason: e.reason };
      resolve();
    };
  });
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("cannot connect"));
  });
  return {
    ws,
    msgs,
    closed,
    get close() {
      return close;
    },
    /** The first reply from now on that `pred` accepts, or undefined once the connection closed. */
    next: (pred: (m: Msg) => boolean) => Promise.race([new Promise<Msg>((resolve) => waiters.add({ pred, resolve })), closed.then(() => undefined)]),
  };
}

const symbol = fc.oneof(fc.constantFrom("PKN.WA", "cdr.pl", "AAPL.US", "*", "", "NOPE", "x!y.WA", "__proto__", "constructor"), fc.string({ maxLength: 80 }));
const anything = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(undefined));
const request = fc.record(
  {
    op: fc.oneof(fc.constantFrom("subscribe", "unsubscribe", "ping", "__proto__", "toString"), fc.string({ maxLength: 30 }), anything),
    symbols: fc.oneof(fc.array(symbol, { maxLength: 12 }), anything),
    since: fc.oneof(fc.integer(), fc.double(), anything),
    extra: anything,
  },
  { requiredKeys: [] },
);
/** One frame: text (JSON or not) or binary. */
const frame: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  request.map((r) => JSON.stringify(r)),
  fc.jsonValue().map((j) => JSON.stringify(j)),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: "grapheme", maxLength: 100 }),
  fc.integer({ min: 1, max: 30_000 }).map((d) => `{"op":"subscribe","symbols":${"[".repeat(d)}${"]".repeat(d)}}`),
  fc.integer({ min: 1, max: 60_000 }).map((n) => JSON.stringify({ op: "x".repeat(n) })),
  fc.integer({ min: 1, max: 3_000 }).map((n) => JSON.stringify({ op: "subscribe", symbols: Array.from({ length: n }, (_, i) => `Q${i}.WA`) })),
  fc.constantFrom(
    '{"__proto__":{"op":"ping"}}',
    '{"op":"subscribe","symbols":["PKN.WA"],"__proto__":{"since":1}}',
    '{"op":"subscribe","symbols":{"__proto__":[],"length":1}}',
    '{"constructor":{"prototype":{"op":"ping"}},"op":"ping"}',
    '{"op":"ping"',
    "null",
    "[]",
    '"ping"',
  ),
  fc.uint8Array({ maxLength: 300 }),
  request.map((r) => new TextEncoder().encode(JSON.stringify(r))),
);

describe("WebSocket protocol under random and hostile messages", () => {
  test(
    "no crash; known replies, small errors; state stays consistent (a following subscribe and ping work)",
    async () => {
      let cases = 0;
      await fc.assert(
        // At most 6 frames: with the valid subscribe after them, never more than the 8 requests that may wait.
        fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 6 }), async (frames) => {
          cases++;
          const c = await connect();
          for (const f of frames) c.ws.send(f);
          // The pong of a ping sent after them: every frame before it was handled.
          const first = c.next((m) => m.type === "pong");
          c.ws.send('{"op":"ping"}');
          const pong = await first;
          if (!pong) {
            // Closed: only with a documented code; the server goes on (the next case connects).
            expect(DOCUMENTED.has(c.close!.code)).toBe(true);
            return;
          }
          const subscribed = c.next((m) => m.status === "subscribed" && m.symbols?.length === 1 && m.symbols[0] === "ALE.WA");
          c.ws.send(JSON.stringify({ op: "subscribe", symbols: ["ALE.WA"] }));
          expect(await subscribed).toBeDefined();
          const second = c.next((m) => m.type === "pong");
          c.ws.send('{"op":"ping"}');
          expect((await second)?.type).toBe("pong");
          for (const { raw, m } of c.msgs) {
            expect(KNOWN.has(m.type)).toBe(true);
            if (m.type === "error") expect(raw.length).toBeLessThan(2000);
          }
          c.ws.close();
          await c.closed;
        }),
        fuzzParams(100, 5000),
      );
      await new Promise((resolve) => setImmediate(resolve));
      expect(hub.clients).toBe(0);
      expect(cases).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT_MS,
  );

  test("query strings of the stream endpoints: parsed or refused with the field, never a throw", () => {
    fc.assert(
      fc.property(fc.option(fc.string({ maxLength: 300 })), fc.option(fc.string({ maxLength: 30 })), fc.option(fc.string({ maxLength: 30 })), fc.boolean(), (symbols, since, lastEventId, required) => {
        const r = parseStreamRequest({ symbols: symbols ?? undefined, since: since ?? undefined, lastEventId: lastEventId ?? undefined }, (x) => normaliseSymbol(x), required);
        if (!r.ok) for (const i of r.issues) expect(["symbols", "since", "Last-Event-ID"]).toContain(i.field);
        else if (r.value.since !== undefined) expect(Number.isInteger(r.value.since) && r.value.since >= 0).toBe(true);
      }),
      fuzzParams(500),
    );
  });

  test("frames a browser cannot send: invalid UTF-8 text, a frame above the size limit, a bare close; the server goes on", async () => {
    const bad = await rawWs(`http://127.0.0.1:${server.port}`);
    await bad.write(wsFrame(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])));
    const r1 = await bad.readAll(10_000);
    const big = await rawWs(`http://127.0.0.1:${server.port}`);
    await big.write(wsFrame("y".repeat(config.maxMessageBytes + 1)));
    const r2 = await big.readAll(10_000);
    expect(r2.close?.code).toBe(CLOSE.tooBig);
    const bare = await rawWs(`http://127.0.0.1:${server.port}`);
    await bare.write(wsFrame(new Uint8Array(0), 8));
    await bare.readAll(10_000);
    console.log(`invalid UTF-8 text frame: ${r1.close ? `closed with ${r1.close.code}` : "connection ended"} after ${r1.texts.length} replies`);
    expect(r1.close === undefined || [1007, 1002].includes(r1.close.code)).toBe(true);
    const c = await connect();
    const pong = c.next((m) => m.type === "pong");
    c.ws.send('{"op":"ping"}');
    expect((await pong)?.type).toBe("pong");
    c.ws.close();
  });
});

// The stream protocols' AsyncAPI document (GET /asyncapi.json, src/http/asyncapi.ts): structurally
// an AsyncAPI 3.0 document (the spec's required fields and shapes, every $ref resolving, every
// operation's messages its channel's, every payload a valid draft-07 JSON Schema), and messages
// captured from live sessions over a real SQLite store (WebSocket, SSE, the compatibility protocol
// on the main server and on its own listener) validate against the payloads it documents for them.
//
// The whole document is validated against the spec's own JSON Schema (@asyncapi/specs 3.0.0);
// payloads are checked with ajv (draft-07).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import Ajv, { type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import asyncapiSchema from "@asyncapi/specs/schemas/3.0.0.json";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import type { Bar } from "../src/domain/bar.ts";
import { createHub, type Hub } from "../src/stream/hub.ts";
import { createApp } from "../src/http/app.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { streamWebSocket } from "../src/stream/ws.ts";
import { defaultStreamConfig, type StreamConfig } from "../src/stream/config.ts";
import { createStatusFeed, type StatusFeed } from "../src/stream/status.ts";
import { compatApp } from "../src/stream/compat-ws.ts";
import { tempDir, waitFor, wsClient } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

type Json = Record<string, any>;
type Msg = { type: string; [k: string]: unknown };
const dir = tempDir("ticksync-asyncapi-");

let store: Store;
let hub: Hub;
let status: StatusFeed;
let main: ReturnType<typeof Bun.serve>;
let compat: ReturnType<typeof Bun.serve>;
let doc: Json;
let base: string;

beforeAll(async () => {
  store = sqliteStore(`sqlite:${join(dir, "store.db")}`);
  await store.migrate();
  const config: StreamConfig = { ...defaultStreamConfig(), pollMs: 50 };
  config.compat = { ...config.compat, path: true };
  status = createStatusFeed({ ledger: store, pollSeconds: 3600 });
  const metrics = ticksyncMetrics();
  hub = createHub({ store, metrics, config, status });
  await hub.start();
  compat = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: compatApp(hub, hub.compat()).fetch, websocket: streamWebSocket(config) });
  main = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: createApp({ store, metrics, version: "9.9.9-test", stream: { hub, config } }).fetch, websocket: streamWebSocket(config) });
  base = `127.0.0.1:${main.port}`;
  const res = await fetch(`http://${base}/asyncapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("application/json");
  doc = (await res.json()) as Json;
});

afterAll(async () => {
  await hub?.stop();
  await compat?.stop(true);
  await main?.stop(true);
  await store?.close();
});

/** The value a local `$ref` (#/a/b/c) points at, or undefined. */
function resolve(ref: string): unknown {
  if (!ref.startsWith("#/")) return undefined;
  let at: any = doc;
  for (const part of ref.slice(2).split("/")) at = at?.[part.replaceAll("~1", "/").replaceAll("~0", "~")];
  return at;
}
const deref = (x: Json): Json => (typeof x.$ref === "string" ? (resolve(x.$ref) as Json) : x);

function refs(x: unknown, out: string[] = []): string[] {
  if (Array.isArray(x)) for (const v of x) refs(v, out);
  else if (x && typeof x === "object") for (const [k, v] of Object.entries(x)) k === "$ref" && typeof v === "string" ? out.push(v) : refs(v, out);
  return out;
}

const ajv = new Ajv({ strict: true, allErrors: true });
addFormats(ajv);

/** The payload validators of a channel's messages, by message name (a payload's `type`). */
function validators(channel: string): Map<string, ValidateFunction> {
  const out = new Map<string, ValidateFunction>();
  for (const m of Object.values(doc.channels[channel].messages as Record<string, Json>).map(deref)) out.set(m.name, ajv.compile(m.payload));
  return out;
}

describe("the document", () => {
  test("is valid against the AsyncAPI 3.0.0 JSON Schema (@asyncapi/specs), which rejects a broken one", () => {
    // The spec's schema carries its own copy of the draft-07 meta-schema (so ajv's is left out:
    // meta: false) and keywords ajv's strict mode does not know.
    const validate = new Ajv({ meta: false, validateSchema: false, strict: false, allErrors: true, validateFormats: false }).compile(asyncapiSchema);
    expect({ valid: validate(doc), errors: validate.errors ?? null }).toEqual({ valid: true, errors: null });
    const broken = structuredClone(doc);
    delete broken.info;
    broken.channels[Object.keys(broken.channels)[0]!].address = 42;
    expect(validate(broken)).toBe(false);
  });

  test("has AsyncAPI 3.0's required fields and shapes", () => {
    expect(doc.asyncapi).toBe("3.0.0");
    expect(typeof doc.info.title).toBe("string");
    expect(doc.info.version).toBe("9.9.9-test");
    const key = /^[a-zA-Z0-9.\-_]+$/;
    for (const [name, s] of Object.entries(doc.servers as Record<string, Json>)) {
      expect(name).toMatch(key);
      expect(typeof s.host).toBe("string");
      expect(["ws", "http"]).toContain(s.protocol);
      for (const v of (s.host as string).matchAll(/\{(\w+)\}/g)) expect(s.variables?.[v[1]!]).toBeDefined();
    }
    // The servers' host is the one the document was asked from.
    expect(doc.servers.websocket.host).toBe(base);
    for (const [name, ch] of Object.entries(doc.channels as Record<string, Json>)) {
      expect(name).toMatch(key);
      expect(ch.address).toMatch(/^\//);
      expect(Object.keys(ch.messages).length).toBeGreaterThan(0);
      for (const s of ch.servers) expect(s.$ref).toMatch(/^#\/servers\//);
    }
    for (const [name, op] of Object.entries(doc.operations as Record<string, Json>)) {
      expect(name).toMatch(key);
      expect(["send", "receive"]).toContain(op.action);
      expect(op.channel.$ref).toMatch(/^#\/channels\/[^/]+$/);
      // An operation's messages are its channel's (AsyncAPI 3.0, Operation Object).
      for (const m of op.messages) expect(m.$ref.startsWith(`${op.channel.$ref}/messages/`)).toBe(true);
    }
    for (const [name, m] of Object.entries(doc.components.messages as Record<string, Json>)) {
      expect(name).toMatch(key);
      expect(m.contentType).toBe("application/json");
      expect(typeof m.name).toBe("string");
    }
    for (const r of refs(doc)) expect({ ref: r, found: resolve(r) !== undefined }).toEqual({ ref: r, found: true });
  });

  test("every payload compiles as a strict draft-07 JSON Schema", () => {
    for (const [name, m] of Object.entries(doc.components.messages as Record<string, Json>)) {
      expect({ name, valid: ajv.validateSchema(m.payload) }).toEqual({ name, valid: true });
      ajv.compile(m.payload);
    }
  });

  test("documents every client message the stream code validates, and each protocol's channels", () => {
    const names = (ch: string) => Object.values(doc.channels[ch].messages as Record<string, Json>).map((m) => deref(m).name).sort();
    expect(names("ws")).toEqual(["bar", "error", "market_status", "ping", "pong", "provider_status", "replay", "replay", "snapshot", "status", "subscribe", "unsubscribe", "unwatch", "watch"]);
    expect(names("sse")).toEqual(["bar", "error", "market_status", "provider_status", "snapshot", "status"]);
    expect(names("legacy")).toEqual(names("legacyListener"));
    expect(names("legacy")).toEqual(["connection", "error", "market_status", "ping", "pong", "provider_status", "status", "status", "stock_updates", "subscribe", "subscribed", "unsubscribe", "unsubscribed"]);
    expect(doc.channels.ws.address).toBe("/api/ws");
    expect(doc.channels.sse.address).toBe("/api/stream");
    expect(doc.channels.legacy.address).toBe("/api/ws/legacy");
  });
});


const D = (iso: string) => Date.parse(iso);
const bar = (symbol: string, ts: string, close: number, extra: Partial<Bar> = {}): Bar => ({ source: "test", symbol, interval: "1d", ts: D(ts), open: close, high: close + 1, low: close - 1, close, volume: 1000, ...extra });

async function commit(bars: Bar[], source = "test", error?: string) {
  const runId = await store.startRun({ kind: "ingest", source });
  if (bars.length) await store.commitBatch({ runId, source, bars, quarantine: [], read: bars.length });
  const counts = { read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null };
  await store.finishRun(runId, error ? { ...counts, outcome: "failed", error } : { ...counts, outcome: "succeeded" });
}

/** Each message checked against its channel's payload of the same name: the failures, as lines. */
function invalid(channel: string, msgs: Msg[]): string[] {
  const byName = validators(channel);
  const out: string[] = [];
  for (const m of msgs) {
    const check = byName.get(m.type);
    if (!check) out.push(`${channel}: no documented message "${m.type}"`);
    else if (!check(m as unknown)) out.push(`${channel} ${m.type}: ${ajv.errorsText(check.errors)} in ${JSON.stringify(m).slice(0, 300)}`);
  }
  return out;
}

describe("live messages validate against their documented payloads", () => {
  test("WebSocket, SSE and the compatibility protocol (main server and its own listener)", async () => {
    await commit([bar("PKN.WA", "2024-01-02T00:00:00Z", 50, { adjClose: 49.5, trades: 12 }), bar("CDR.WA", "2024-01-02T00:00:00Z", 100)]);
    const native = wsClient(`ws://${base}/api/ws`);
    const legacy = wsClient(`ws://${base}/api/ws/legacy`);
    const listener = wsClient(`ws://127.0.0.1:${compat.port}/`);
    await Promise.all([native.opened, legacy.opened, listener.opened]);
    const ctl = new AbortController();
    const sse = await fetch(`http://${base}/api/stream?symbols=*&events=market_status,provider_status`, { signal: ctl.signal });
    expect(sse.status).toBe(200);
    let sseText = "";
    const reader = sse.body!.getReader();
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        sseText += new TextDecoder().decode(value);
      }
    })();

    native.send({ op: "subscribe", symbols: ["*"] });
    native.send({ op: "watch", events: ["market_status", "provider_status"] });
    native.send({ op: "ping" });
    native.send({ op: "bogus" });
    for (const c of [legacy, listener]) {
      c.send({ type: "subscribe", symbols: ["PKN", "CDR.WA", "NOPE!"] });
      c.send({ type: "status" });
      c.send({ type: "ping" });
      c.send({ type: "nonsense" });
    }
    await waitFor(() => native.has("snapshot", 2) && native.has("pong") && native.has("error") && native.has("market_status"), 10_000, "the native answers");
    await waitFor(() => legacy.has("stock_updates") && legacy.has("pong") && legacy.has("error") && legacy.has("status"), 10_000, "the legacy answers");
    // Live: a new bar (and a failed run: provider_status), then a replay of a range, then unsubscribes.
    await commit([bar("PKN.WA", "2024-01-03T00:00:00Z", 51, { turnover: 51_000 })]);
    await commit([], "stooq", "HTTP 503 from stooq");
    await status.pollRuns();
    await waitFor(() => native.has("bar") && native.has("provider_status") && legacy.has("stock_updates", 2) && listener.has("provider_status"), 10_000, "the live bar");
    native.send({ op: "replay", symbols: ["PKN.WA", "CDR.WA"], interval: "1d", from: "2024-01-01", to: "2024-01-05", speed: "max" });
    native.send({ op: "replay", symbols: ["PKN.WA"], from: "2024-01-01", batch: 10 });
    native.send({ op: "replay", symbols: ["PKN.WA"], from: "2024-01-09", to: "2024-01-01" });
    await waitFor(() => native.msgs.filter((m) => m.status === "replay_done").length >= 2, 10_000, "the replays");
    native.send({ op: "unsubscribe", symbols: ["*"] });
    native.send({ op: "unwatch", events: ["provider_status"] });
    legacy.send({ type: "unsubscribe", symbols: ["PKN"] });
    await waitFor(() => native.msgs.some((m) => m.status === "unsubscribed") && native.msgs.some((m) => m.status === "unwatched") && legacy.has("unsubscribed"), 10_000, "the unsubscribes");
    await waitFor(() => sseText.includes("event: bar") && sseText.includes("event: provider_status"), 10_000, "the SSE events");
    ctl.abort();
    await pump;
    for (const c of [native, legacy, listener]) c.ws.close();

    const sseMsgs = [...sseText.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as Msg);
    // Every kind of message this session produced, so a check of none is not a pass.
    expect(new Set(native.msgs.map((m) => m.type))).toEqual(new Set(["status", "snapshot", "market_status", "provider_status", "pong", "error", "bar", "replay"]));
    expect(new Set(native.msgs.filter((m) => m.type === "status").map((m) => m.status))).toEqual(new Set(["subscribed", "watching", "replaying", "replay_done", "unsubscribed", "unwatched"]));
    expect(native.msgs.some((m) => m.type === "replay" && Array.isArray(m.bars))).toBe(true);
    expect(new Set(sseMsgs.map((m) => m.type))).toEqual(new Set(["status", "snapshot", "market_status", "provider_status", "bar"]));
    // market_status comes only when a market's phase changes during the session: not required.
    expect([...new Set(legacy.msgs.map((m) => m.type))]).toEqual(expect.arrayContaining(["connection", "subscribed", "stock_updates", "status", "pong", "error", "provider_status", "unsubscribed"]));
    expect(invalid("ws", native.msgs)).toEqual([]);
    expect(invalid("sse", sseMsgs)).toEqual([]);
    expect(invalid("legacy", legacy.msgs)).toEqual([]);
    expect(invalid("legacyListener", listener.msgs)).toEqual([]);
  });

  test("a message off its documented shape fails validation (the check can fail)", () => {
    const bad: Msg[] = [
      { type: "bar", id: 1, op: "insert", bar: { source: "s", symbol: "X", interval: "1d", ts: "2024-01-02T00:00:00.000Z", open: 1, high: 1, low: 1, close: 1, volume: 1, extra: 1 } },
      { type: "status", status: "subscribed", message: "subscribed" },
      { type: "pong" },
      { type: "made_up" },
    ];
    expect(invalid("ws", bad)).toHaveLength(4);
    expect(invalid("legacy", [{ type: "pong" }])).toHaveLength(1); // no timestamp
  });
});

// The AsyncAPI 3.0 document of the stream protocols (GET /asyncapi.json): the WebSocket (/api/ws),
// Server-Sent Events (/api/stream) and the compatibility protocol (/api/ws/legacy and the
// [stream.compat] listener). Every message's payload is generated from the valibot schema the
// stream code validates (client → server) or is typed by (server → client) in src/stream/, so the
// document follows the code; docs/stream.md is the prose beside it.
import * as v from "valibot";
import { toJsonSchema } from "@valibot/to-json-schema";
import {
  BarMessageSchema,
  ClientMessageSchema,
  ErrorMessageSchema,
  MarketStatusMessageSchema,
  PongMessageSchema,
  ProviderStatusMessageSchema,
  ReplayBarsMessageSchema,
  SnapshotMessageSchema,
  StatusMessageSchema,
} from "../stream/protocol.ts";
import { ReplayMessageSchema } from "../stream/range-replay.ts";
import { CompatClientMessage, CompatServerMessages } from "../stream/compat-messages.ts";

type Json = Record<string, unknown>;
type Schema = v.GenericSchema;

/** A valibot schema as the payload's JSON Schema (draft-07, which AsyncAPI's default schema format extends). */
function payload(schema: Schema): Json {
  // Client input is documented as sent (a `from` date string before it becomes epoch ms).
  const { $schema: _drop, ...rest } = toJsonSchema(schema, { typeMode: "input", errorMode: "throw" }) as Json;
  return rest;
}

const message = (name: string, summary: string, schema: Schema): Json => ({ name, title: name, summary, contentType: "application/json", payload: payload(schema) });
/** The literal of a variant option's discriminator (`op` or `type`). */
const literalOf = (option: v.GenericSchema, key: string) => ((option as unknown as { entries: Record<string, { literal: string }> }).entries[key]!.literal);

const CLIENT_SUMMARIES: Record<string, string> = {
  subscribe: "Add symbols (any spelling; [\"*\"]: all). Without `since`: a snapshot of each new series first; with it: every stored event after `since`, then live.",
  unsubscribe: "Stop those symbols (\"*\" stops the wildcard).",
  watch: "Market and/or provider status events: the current state of each (previous null), then each change.",
  unwatch: "Stop those status events.",
  ping: "Answered by a pong carrying the last event id.",
  replay: "Stored bars of a range, paced (`speed`), in (ts, symbol, source) order, then live for those symbols.",
  subscribe_legacy: "Add symbols (bare tickers of defaultMarket, or any spelling ticksync accepts); answered by `subscribed`, then a `stock_updates` snapshot.",
  unsubscribe_legacy: "Stop those symbols; answered by `unsubscribed`.",
  status_legacy: "Answered by a `status` message.",
  ping_legacy: "Answered by `pong`.",
};

/** Every message of the three protocols, by its key under components.messages. */
function messages(): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const option of ClientMessageSchema.options) {
    const op = literalOf(option, "op");
    out[`client.${op}`] = message(op, CLIENT_SUMMARIES[op] ?? op, option);
  }
  out["client.replay"] = message("replay", CLIENT_SUMMARIES.replay!, ReplayMessageSchema);
  const server: [string, Schema][] = [
    ["bar", BarMessageSchema],
    ["snapshot", SnapshotMessageSchema],
    ["replay", ReplayBarsMessageSchema],
    ["status", StatusMessageSchema],
    ["pong", PongMessageSchema],
    ["error", ErrorMessageSchema],
    ["market_status", MarketStatusMessageSchema],
    ["provider_status", ProviderStatusMessageSchema],
  ];
  for (const [name, schema] of server) out[`server.${name}`] = message(name, v.getDescription(schema) ?? name, schema);
  for (const option of CompatClientMessage.options) {
    const type = literalOf(option, "type");
    out[`legacy.client.${type}`] = message(type, CLIENT_SUMMARIES[`${type}_legacy`] ?? type, option);
  }
  for (const [name, schema] of Object.entries(CompatServerMessages)) out[`legacy.server.${name}`] = message(name, v.getDescription(schema) ?? name, schema);
  return out;
}

const ref = (path: string) => ({ $ref: path });
/** A channel's `messages`: each key points at its component. */
const channelMessages = (keys: string[]) => Object.fromEntries(keys.map((k) => [k.replaceAll(".", "_"), ref(`#/components/messages/${k}`)]));

const NATIVE_CLIENT = ["client.subscribe", "client.unsubscribe", "client.watch", "client.unwatch", "client.ping", "client.replay"];
const NATIVE_SERVER = ["server.bar", "server.snapshot", "server.replay", "server.status", "server.pong", "server.error", "server.market_status", "server.provider_status"];
const SSE_SERVER = ["server.bar", "server.snapshot", "server.status", "server.error", "server.market_status", "server.provider_status"];
const LEGACY_CLIENT = CompatClientMessage.options.map((o) => `legacy.client.${literalOf(o, "type")}`);
const LEGACY_SERVER = Object.keys(CompatServerMessages).map((k) => `legacy.server.${k}`);

const queryString = (description: string) => ({ type: "string", description });
const WS_QUERY = {
  type: "object",
  properties: {
    symbols: queryString("comma-separated symbols, or *: subscribed at once"),
    since: queryString("an event id: replay every stored event after it, then live"),
    token: queryString("an API token, where Authorization: Bearer cannot be sent (browsers)"),
  },
};

/** The channels, and the operations: what the server receives and sends on each. */
function channelsAndOperations(): { channels: Json; operations: Json } {
  const auth = "With stream.tokens or server.authReads: a token (Authorization: Bearer <token> or ?token=<token>), else 401 before the upgrade.";
  const channels: Json = {
    ws: {
      address: "/api/ws",
      title: "WebSocket",
      description: `One JSON object per frame. Query: symbols, since, token. ${auth} Close codes: 1001 shutdown, 1009 message above maxMessageBytes, 4002 silent two heartbeats, 4008 too slow, 4029 too many messages.`,
      servers: [ref("#/servers/websocket")],
      messages: channelMessages([...NATIVE_CLIENT, ...NATIVE_SERVER]),
      bindings: { ws: { method: "GET", query: WS_QUERY, bindingVersion: "0.1.0" } },
    },
    sse: {
      address: "/api/stream",
      title: "Server-Sent Events",
      description: `GET /api/stream?symbols=PKN.WA,CDR.WA|*[&since=<id>][&events=market_status,provider_status]: each message is \`event: <type>\` with its JSON as \`data:\`; bar and snapshot events carry \`id:\` (EventSource resumes with Last-Event-ID); a \`: heartbeat\` comment every heartbeatSeconds. ${auth}`,
      servers: [ref("#/servers/http")],
      messages: channelMessages(SSE_SERVER),
    },
    legacy: {
      address: "/api/ws/legacy",
      title: "Compatibility protocol (on the main server)",
      description: `The replaced streaming service's protocol, when [stream.compat] path = true. Every server message carries timestamp. ${auth}`,
      servers: [ref("#/servers/websocket")],
      messages: channelMessages([...LEGACY_CLIENT, ...LEGACY_SERVER]),
    },
    legacyListener: {
      address: "/",
      title: "Compatibility protocol (its own listener)",
      description: "The same protocol on the [stream.compat] port listener: every path on it speaks it.",
      servers: [ref("#/servers/compat")],
      messages: channelMessages([...LEGACY_CLIENT, ...LEGACY_SERVER]),
    },
  };
  const op = (action: "send" | "receive", channel: string, keys: string[], summary: string) => ({
    action,
    channel: ref(`#/channels/${channel}`),
    summary,
    messages: keys.map((k) => ref(`#/channels/${channel}/messages/${k.replaceAll(".", "_")}`)),
  });
  const operations: Json = {
    wsReceive: op("receive", "ws", NATIVE_CLIENT, "What a WebSocket client sends."),
    wsSend: op("send", "ws", NATIVE_SERVER, "What the server sends a WebSocket client."),
    sseSend: op("send", "sse", SSE_SERVER, "What the server sends an SSE client."),
    legacyReceive: op("receive", "legacy", LEGACY_CLIENT, "What a compatibility client sends."),
    legacySend: op("send", "legacy", LEGACY_SERVER, "What the server sends a compatibility client."),
    legacyListenerReceive: op("receive", "legacyListener", LEGACY_CLIENT, "What a compatibility client sends (its own listener)."),
    legacyListenerSend: op("send", "legacyListener", LEGACY_SERVER, "What the server sends a compatibility client (its own listener)."),
  };
  return { channels, operations };
}

/**
 * The document for a server reached at `host` (host:port, from the request). The payloads are
 * made once per process (asyncApiDocument caches them); only the servers' host differs.
 */
export function asyncApiDocument(version: string): (host: string) => Json {
  const components = {
    messages: messages(),
    securitySchemes: {
      bearer: { type: "http", scheme: "bearer", description: "Authorization: Bearer <token>: a stream token or any server token" },
      queryToken: { type: "httpApiKey", name: "token", in: "query", description: "?token=<token>, for browsers' WebSocket and EventSource" },
    },
  };
  const { channels, operations } = channelsAndOperations();
  const security = [ref("#/components/securitySchemes/bearer"), ref("#/components/securitySchemes/queryToken")];
  return (host) => ({
    asyncapi: "3.0.0",
    info: {
      title: "ticksync stream",
      version,
      description: "The live feed of stored bars and market/provider status: WebSocket, Server-Sent Events, and the replaced streaming service's protocol. Prose, limits and examples: docs/stream.md. The HTTP API: /openapi.json (reference at /docs).",
    },
    defaultContentType: "application/json",
    servers: {
      websocket: { host, protocol: "ws", description: "This server (wss behind TLS).", security },
      http: { host, protocol: "http", description: "This server, for Server-Sent Events (https behind TLS).", security },
      compat: {
        host: "{host}:{port}",
        protocol: "ws",
        description: "The [stream.compat] listener, when its port is set (the replaced service's clients used 8765).",
        variables: { host: { default: "127.0.0.1", description: "[stream.compat] host" }, port: { default: "8765", description: "[stream.compat] port" } },
        security,
      },
    },
    channels,
    operations,
    components,
  });
}

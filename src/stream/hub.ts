// The stream hub: every connected client (session), heartbeats, and the parts it wires together:
// the journal tailer that fills the bus (src/stream/tailer.ts), the fan-out from the bus to the
// sessions (src/stream/fanout.ts), the journal's retention, and the stream's metrics
// (src/stream/report.ts); market and provider status (src/stream/status.ts) to the sessions that
// watch them, and the compatibility protocol's engine (src/stream/compat.ts) when it is used.
import type { Store } from "../stores/types.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import { log } from "../lib/log.ts";
import { createBus, type EventBus } from "./bus.ts";
import { CLOSE } from "./protocol.ts";
import { Session, type SessionCounters } from "./session.ts";
import type { Transport } from "./transport.ts";
import { Fanout } from "./fanout.ts";
import { streamReporter } from "./report.ts";
import { startTailer, type Tailer } from "./tailer.ts";
import { startRetention } from "./retention.ts";
import type { StreamConfig } from "./config.ts";
import { marketStatusMessage, providerStatusMessage, type Outgoing, type StatusEventType } from "./protocol.ts";
import { createStatusFeed, type StatusEvent, type StatusFeed } from "./status.ts";
import { createCompat, type Compat } from "./compat.ts";
import { defaultReplayConfig, type ReplayConfig } from "./range-read.ts";

/** `status`: market and provider status (made from the store's run ledger when not given; tests give one with their clock). */
export type HubOptions = { store: Store; config: StreamConfig; metrics?: TicksyncMetrics; bus?: EventBus; status?: StatusFeed; replay?: ReplayConfig };

const statusMessage = (e: StatusEvent): Outgoing => (e.kind === "market" ? marketStatusMessage(e) : providerStatusMessage(e));

export type Hub = ReturnType<typeof createHub>;

/** Ping every client; close a WebSocket client that sent nothing for two heartbeats. */
function heartbeat(sessions: Set<Session>, config: StreamConfig, counters: SessionCounters, forget: (s: Session) => void): void {
  const now = Date.now();
  const silentFor = 2 * config.heartbeatSeconds * 1000;
  for (const s of sessions) {
    if (s.transport.kind === "ws" && now - s.seenAt > silentFor) {
      counters.dropped.heartbeat = (counters.dropped.heartbeat ?? 0) + 1;
      forget(s);
      s.transport.close(CLOSE.heartbeat, `no heartbeat for ${Math.round((now - s.seenAt) / 1000)} s`);
      continue;
    }
    s.transport.heartbeat();
  }
}

export function createHub(o: HubOptions) {
  const { store, config } = o;
  const bus = o.bus ?? createBus();
  const sessions = new Set<Session>();
  const counters: SessionCounters = { sent: { ws: 0, sse: 0 }, conflated: 0, dropped: {}, replayed: 0 };
  const fanout = new Fanout(config, counters);
  let tailer: Tailer | null = null;
  const timers: (() => void)[] = [];
  bus.subscribe(fanout.fanOut);
  const status = o.status ?? createStatusFeed({ ledger: store, pollSeconds: config.statusPollSeconds });
  // Status events go to the sessions watching them (few events: a phase change, a run's outcome).
  status.subscribe((e) => {
    const type: StatusEventType = e.kind === "market" ? "market_status" : "provider_status";
    let m: Outgoing | undefined;
    for (const s of sessions) if (s.watching.has(type)) s.deliver((m ??= statusMessage(e)));
  });

  function forget(s: Session) {
    if (!sessions.delete(s)) return;
    s.end();
    fanout.index(s, "remove", [...s.symbols], true);
  }

  const report = streamReporter(o.metrics, counters, sessions, bus.lastId);

  const every = (ms: number, fn: () => void) => {
    const t = setInterval(fn, ms);
    t.unref?.();
    timers.push(() => clearInterval(t));
  };

  let compat: Compat | null = null;
  const hub = {
    bus,
    status,
    /** The compatibility protocol's engine (src/stream/compat.ts), made on first use: one per hub, whichever listener or path serves it. */
    compat(): Compat {
      return (compat ??= createCompat(hub, { store, defaultMarket: config.compat.defaultMarket, interval: config.compat.interval }));
    },
    counters,
    config,
    /** The store and `[replay]` bounds, for the WebSocket's replay of a range (src/stream/range-replay.ts). */
    store,
    replay: o.replay ?? defaultReplayConfig(),
    /** Start reading the journal, pruning it, and the heartbeats. */
    async start() {
      tailer = await startTailer({ store, bus, pollMs: config.pollMs });
      await status.start();
      timers.push(startRetention(store, config.retentionDays * 86_400_000));
      every(config.heartbeatSeconds * 1000, () => heartbeat(sessions, config, counters, forget));
      every(1000, report);
      report();
    },
    /** Read the journal now (a commit elsewhere was announced, e.g. by LISTEN/NOTIFY). */
    poke: () => tailer?.poke() ?? Promise.resolve(),
    lastId: () => bus.lastId(),
    /** Start (or stop) sending these status events to a session; starting sends the current state first. */
    watch(s: Session, events: readonly StatusEventType[], on: boolean) {
      for (const type of events) {
        if (!on) {
          s.watching.delete(type);
          continue;
        }
        if (s.watching.has(type)) continue;
        s.watching.add(type);
        if (type === "market_status") for (const state of status.markets()) s.deliver(marketStatusMessage({ state, previous: null }));
        else for (const state of status.providers()) s.deliver(providerStatusMessage({ state, previous: null }));
      }
    },
    /** A client connected (`slowClient` overrides the config's: the compatibility protocol has no conflation notice). */
    open(t: Transport, slowClient: StreamConfig["slowClient"] = config.slowClient): Session {
      const s = new Session(t, {
        store,
        lastId: bus.lastId,
        bufferBytes: config.bufferBytes,
        bufferMessages: config.bufferMessages,
        outboxBytes: config.outboxBytes,
        maxSymbols: config.maxSymbols,
        slowClient,
        counters,
        index: fanout.index,
        fastPath: fanout.fastPath,
        closed: (s, reason) => {
          log.info("stream client dropped", { transport: t.kind, reason });
          forget(s);
        },
      });
      sessions.add(s);
      return s;
    },
    /** A client's connection is gone. */
    close(s: Session) {
      forget(s);
    },
    /** Close a client that broke a limit (counted under `reason` in the dropped-clients metric). */
    refuse(s: Session, reason: string, code: number, message: string) {
      counters.dropped[reason] = (counters.dropped[reason] ?? 0) + 1;
      log.info("stream client dropped", { transport: s.transport.kind, reason: message });
      forget(s);
      s.transport.close(code, message);
    },
    get clients() {
      return sessions.size;
    },
    async stop() {
      tailer?.stop();
      status.stop();
      for (const stop of timers.splice(0)) stop();
      for (const s of [...sessions]) {
        forget(s);
        s.transport.close(CLOSE.goingAway, "server shutting down");
      }
      report();
    },
  };
  return hub;
}

// The stream hub: every connected client (session), the symbol index that routes each event to the
// sessions that want it, heartbeats, and the stream's metrics. Events come from the bus, which the
// journal tailer fills (src/stream/tailer.ts); each event is turned into JSON once, however many
// clients receive it.
import type { Store } from "../stores/types.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import { log } from "../lib/log.ts";
import { createBus, type EventBus } from "./bus.ts";
import type { BarEvent } from "../stores/events.ts";
import { barMessage, CLOSE } from "./protocol.ts";
import { ALL_TOPIC, createSession, symbolTopic, type Session, type SessionCounters, type Transport } from "./session.ts";
import { startTailer, type Tailer } from "./tailer.ts";
import { startRetention } from "./retention.ts";
import type { StreamConfig } from "./config.ts";

export type HubOptions = { store: Store; config: StreamConfig; metrics?: TicksyncMetrics; bus?: EventBus };

export type Hub = ReturnType<typeof createHub>;

export function createHub(o: HubOptions) {
  const { store, config } = o;
  const bus = o.bus ?? createBus();
  const sessions = new Set<Session>();
  const bySymbol = new Map<string, Set<Session>>();
  const wildcard = new Set<Session>();
  const fastSessions = new Set<Session>();
  let publish: ((topic: string, text: string) => void) | null = null;
  const counters: SessionCounters = { sent: { ws: 0, sse: 0 }, conflated: 0, dropped: {}, replayed: 0 };
  let tailer: Tailer | null = null;
  const timers: (() => void)[] = [];

  function index(s: Session, change: "add" | "remove", symbols: Iterable<string>, all: boolean) {
    for (const sym of symbols) {
      let set = bySymbol.get(sym);
      if (change === "add") {
        if (!set) bySymbol.set(sym, (set = new Set()));
        set.add(s);
      } else if (set) {
        set.delete(s);
        if (!set.size) bySymbol.delete(sym);
      }
    }
    if (all) change === "add" ? wildcard.add(s) : wildcard.delete(s);
  }

  function fanOut(events: BarEvent[]) {
    // A fast-path client that has fallen behind leaves it before anything more is published.
    for (const s of fastSessions) if (s.transport.buffered() > config.bufferBytes) s.leaveFast();
    for (const e of events) {
      const subs = bySymbol.get(e.bar.symbol);
      if (!subs && !wildcard.size) continue;
      const m = barMessage(e);
      let bySym = 0;
      let byAll = 0;
      if (subs)
        for (const s of subs) {
          if (s.all) continue;
          if (s.fast) bySym++;
          else s.push(m);
        }
      for (const s of wildcard) {
        if (s.fast) byAll++;
        else s.push(m);
      }
      if (bySym) publish!(symbolTopic(e.bar.symbol), m.json);
      if (byAll) publish!(ALL_TOPIC, m.json);
      counters.sent.ws += bySym + byAll;
    }
  }
  bus.subscribe(fanOut);

  function forget(s: Session) {
    if (!sessions.delete(s)) return;
    s.end();
    index(s, "remove", [...s.symbols], true);
  }

  // Counters are plain numbers on the hot path; the metrics registry is brought up to date here.
  const reported = { ws: 0, sse: 0, conflated: 0, replayed: 0, dropped: {} as Record<string, number> };
  function report() {
    const m = o.metrics;
    if (!m) return;
    let ws = 0;
    for (const s of sessions) if (s.transport.kind === "ws") ws++;
    m.streamClients.set({ transport: "ws" }, ws);
    m.streamClients.set({ transport: "sse" }, sessions.size - ws);
    for (const k of ["ws", "sse"] as const) {
      m.streamMessages.inc({ transport: k }, counters.sent[k] - reported[k]);
      reported[k] = counters.sent[k];
    }
    m.streamConflated.inc({}, counters.conflated - reported.conflated);
    reported.conflated = counters.conflated;
    m.streamReplayed.inc({}, counters.replayed - reported.replayed);
    reported.replayed = counters.replayed;
    for (const [reason, n] of Object.entries(counters.dropped)) {
      m.streamDropped.inc({ reason }, n - (reported.dropped[reason] ?? 0));
      reported.dropped[reason] = n;
    }
    m.streamLastEventId.set({}, bus.lastId());
  }

  function heartbeat() {
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

  const every = (ms: number, fn: () => void) => {
    const t = setInterval(fn, ms);
    t.unref?.();
    timers.push(() => clearInterval(t));
  };

  return {
    bus,
    counters,
    config,
    /** Start reading the journal, pruning it, and the heartbeats. */
    async start() {
      tailer = await startTailer({ store, bus, pollMs: config.pollMs });
      timers.push(startRetention(store, config.retentionDays * 86_400_000));
      every(config.heartbeatSeconds * 1000, heartbeat);
      every(1000, report);
      report();
    },
    /** Read the journal now (a commit elsewhere was announced, e.g. by LISTEN/NOTIFY). */
    poke: () => tailer?.poke() ?? Promise.resolve(),
    lastId: () => bus.lastId(),
    /** A client connected. */
    open(t: Transport): Session {
      const s = createSession(t, {
        store,
        lastId: bus.lastId,
        bufferBytes: config.bufferBytes,
        bufferMessages: config.bufferMessages,
        outboxBytes: config.outboxBytes,
        maxSymbols: config.maxSymbols,
        slowClient: config.slowClient,
        counters,
        index,
        fastPath: (s, on) => {
          if (on) {
            publish ??= t.topics!.publish;
            fastSessions.add(s);
          } else fastSessions.delete(s);
        },
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
      for (const stop of timers.splice(0)) stop();
      for (const s of [...sessions]) {
        forget(s);
        s.transport.close(CLOSE.goingAway, "server shutting down");
      }
      report();
    },
  };
}

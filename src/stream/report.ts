// The stream's metrics: the hub counts on plain numbers on the hot path (SessionCounters); this
// brings the Prometheus registry up to date from them, once a second and on stop.
import type { TicksyncMetrics } from "../lib/metrics.ts";
import type { Session, SessionCounters } from "./session.ts";

/** A reporter of what the counters gained since its last call, and of the clients connected now. */
export function streamReporter(metrics: TicksyncMetrics | undefined, counters: SessionCounters, sessions: ReadonlySet<Session>, lastId: () => number): () => void {
  const reported = { ws: 0, sse: 0, conflated: 0, replayed: 0, dropped: {} as Record<string, number> };
  return () => {
    const m = metrics;
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
    m.streamLastEventId.set({}, lastId());
  };
}

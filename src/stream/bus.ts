// The in-process event bus: whoever commits bars publishes their events here (the pipeline, after
// the store's transaction), and whoever cares subscribes (the WebSocket/SSE hub, sinks). A
// subscriber that throws is logged and kept; it never stops delivery to the others.
import type { BarEvent } from "../stores/events.ts";
import { log } from "../lib/log.ts";
import { errorText } from "../lib/errors.ts";

export type BusListener = (events: BarEvent[]) => void;

export function createBus() {
  const listeners = new Set<BusListener>();
  let lastId = 0;
  return {
    /** Events in id order; ids not above the last published are dropped (a replica's echo). */
    publish(events: BarEvent[]) {
      const fresh = events.filter((e) => e.id > lastId);
      if (!fresh.length) return;
      lastId = fresh[fresh.length - 1]!.id;
      for (const fn of listeners) {
        try {
          fn(fresh);
        } catch (e) {
          log.error("event listener failed", { error: errorText(e) });
        }
      }
    },
    subscribe(fn: BusListener): () => void {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    /** The id of the last event published (0: none yet). */
    lastId: () => lastId,
    /** Start after this id (the store's last event at start-up), so ids stay monotonic. */
    seed(id: number) {
      if (id > lastId) lastId = id;
    },
  };
}
export type EventBus = ReturnType<typeof createBus>;

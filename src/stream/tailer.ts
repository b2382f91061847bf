// The journal tailer: the one path by which events reach the bus in `serve`. It reads the store's
// journal after the last id it published, in id order, whenever it is poked: by the store's own
// onEvents (a commit in this process), by a timer (commits nobody announced: a CLI `ticksync
// ingest` into the same SQLite file), and through `poke()` by whoever learns of a commit (serve
// pokes on the store's watchEvents: Postgres LISTEN/NOTIFY, another replica's commit). Because it
// only ever reads the journal in id order from where it left off, delivery is exactly id order
// with no gap and no duplicate however many writers there are. A store without a journal
// cannot be read back: its onEvents events are published as they come, live only.
import type { EventJournal } from "../stores/types.ts";
import type { EventBus } from "./bus.ts";
import { log } from "../lib/log.ts";
import { errorText } from "../lib/errors.ts";

export type Tailer = {
  /** Read the journal now (coalesced: a poke during a read makes one more read after it). */
  poke(): Promise<void>;
  stop(): void;
  /** Whether events can be replayed from the store (it keeps a journal). */
  readonly journal: boolean;
};

export async function startTailer(o: { store: EventJournal; bus: EventBus; pollMs: number; readLimit?: number }): Promise<Tailer> {
  const { store, bus } = o;
  const limit = o.readLimit ?? 20_000;
  const journal = store.journal;
  // Start after what is already stored: those events are the replay's, not the live feed's.
  bus.seed((await store.eventBounds()).last);
  if (!journal) {
    const off = store.onEvents((events) => bus.publish(events));
    return { poke: async () => {}, stop: off, journal };
  }
  let reading: Promise<void> | null = null;
  let again = false;
  let failing = false;
  async function read() {
    do {
      again = false;
      for (;;) {
        const events = await store.eventsSince(bus.lastId(), limit);
        if (!events.length) break;
        bus.publish(events);
        if (events.length < limit) break;
      }
    } while (again);
  }
  function poke(): Promise<void> {
    if (reading) {
      again = true;
      return reading;
    }
    again = false;
    reading = (async () => {
      try {
        await read();
        if (failing) log.info("event journal readable again");
        failing = false;
      } catch (e) {
        // Nothing is lost: the next poke reads from the same id.
        if (!failing) log.warn("reading the event journal failed", { error: errorText(e) });
        failing = true;
      } finally {
        reading = null;
      }
      // A poke that came between the last read and here.
      if (again && !failing) await poke();
    })();
    return reading;
  }
  const off = store.onEvents(() => void poke());
  // The timer also covers a missed notification of another process's commit.
  const timer = setInterval(() => void poke(), o.pollMs);
  timer.unref?.();
  return {
    poke,
    stop() {
      off();
      clearInterval(timer);
    },
    journal,
  };
}

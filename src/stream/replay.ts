// What a subscribe reads from the store before a session goes live: a snapshot (the latest stored
// bar of each series) or a replay of the event journal after the client's last id, up to the
// bus's `mark`; what comes after `mark` the bus delivers (src/stream/session.ts holds it meanwhile).
import type { Store } from "../stores/types.ts";
import { eventBatch } from "../stores/events.ts";
import { barMessage, snapshotMessage, statusMessage, type Outgoing } from "./protocol.ts";

/** Bars the client already has up to `upTo` (it asked for a replay from an id the bus has not reached yet). */
export type Floor = { syms: Set<string>; wildcard: boolean; upTo: number };

/** The session as a snapshot or replay writes to it. */
export type ReplayTarget = {
  readonly closed: boolean;
  /** The symbols the session holds. */
  readonly symbols: ReadonlySet<string>;
  deliver(m: Outgoing): void;
  /** Resolves when the client can take more: reads go only as fast as the client does. */
  room(): Promise<void>;
  addFloor(f: Floor): void;
};

const REPLAY_PAGE = 5000;
/** Store lookups of a snapshot between two turns of the event loop, so other clients are served meanwhile. */
const LOOKUPS_PER_TURN = 16;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The latest stored bar of each series of these symbols, one lookup at a time, yielding between chunks. */
export async function snapshot(t: ReplayTarget, store: Store, syms: Set<string>, wildcard: boolean, mark: number): Promise<void> {
  let lookups = 0;
  const turn = async () => {
    if (++lookups % LOOKUPS_PER_TURN === 0) await nextTurn();
  };
  const one = async (s: Awaited<ReturnType<Store["listSeries"]>>[number]) => {
    await turn();
    const [bar] = await store.queryBars({ symbol: s.symbol, interval: s.interval, source: s.source, from: s.lastTs, limit: 1 });
    if (!bar) return;
    await t.room();
    t.deliver(snapshotMessage(mark, bar));
  };
  if (wildcard) {
    for (const s of await store.listSeries()) {
      if (t.closed) return;
      if (!t.symbols.has(s.symbol) || syms.has(s.symbol)) await one(s);
    }
    return;
  }
  for (const sym of syms) {
    if (t.closed) return;
    await turn();
    for (const s of await store.listSeries({ symbol: sym })) await one(s);
  }
}

/**
 * Replay the journal after `since` up to `mark` for these symbols: what comes after `mark` the bus
 * delivers (held meanwhile). The journal may already hold later events (another process's
 * commit the tailer has not read yet); they are left to the bus, so nothing comes twice.
 */
export async function replay(t: ReplayTarget, store: Store, counters: { replayed: number }, since: number, syms: Set<string>, wildcard: boolean, mark: number): Promise<void> {
  if (!store.journal) {
    t.deliver(statusMessage("replay_unavailable", `replay unavailable from id ${since}: the ${store.kind} store keeps no event journal; live events only`, { since }));
    return;
  }
  const bounds = await store.eventBounds();
  if (since > bounds.last) {
    t.deliver(statusMessage("replay_unavailable", `replay unavailable from id ${since}: the journal ends at ${bounds.last}; live events only`, { since, last: bounds.last }));
    return;
  }
  // Batch numbers can skip (nothing changed, a rolled-back transaction), so only a gap of more
  // than one batch below the oldest kept one says events were pruned.
  if (bounds.first !== null && since < bounds.first && eventBatch(since) < eventBatch(bounds.first) - 1)
    t.deliver(statusMessage("replay_unavailable", `replay unavailable from id ${since}: journal starts at ${bounds.first}; replaying from there`, { since, first: bounds.first }));
  // The client has seen events the bus has not published yet (another replica was ahead):
  // those must not come again when the bus gets to them.
  if (since > mark) t.addFloor({ syms, wildcard, upTo: since });
  t.deliver(statusMessage("replay", `replaying events after id ${since}`, { since }));
  let cursor = since;
  let n = 0;
  while (!t.closed && cursor < mark) {
    const events = await store.eventsSince(cursor, REPLAY_PAGE);
    if (!events.length) break;
    for (const e of events) {
      if (e.id > mark) break;
      cursor = e.id;
      if (!wildcard && !syms.has(e.bar.symbol)) continue;
      await t.room();
      if (t.closed) break;
      t.deliver(barMessage(e));
      n++;
    }
    if (events[events.length - 1]!.id > mark) break;
  }
  counters.replayed += n;
  t.deliver(statusMessage("replayed", `replayed ${n} events; live from here`, { events: n, last: cursor }));
}

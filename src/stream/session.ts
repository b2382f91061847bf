// One stream client, whatever carries it (WebSocket or SSE): what it subscribed to, its outbox and
// slow-client policy, and the hand-over from snapshot or replay to the live feed.
//
// Hand-over without gap or duplicate: a subscribe registers its symbols first, so from that moment
// every live event for them reaches this session; while the subscribe reads the store (snapshot or
// replay) those live messages are held. The bus publishes in id order, so everything held is above
// `mark` (the bus's last id when the symbols were registered). A replay reads the journal from
// `since` up to at least `mark`, then the held messages follow, less those the replay already
// sent (id ≤ the replay's last id). Subscribes and unsubscribes run one at a time, in order.
import type { Store } from "../stores/types.ts";
import { eventBatch } from "../stores/events.ts";
import { barMessage, errorMessage, snapshotMessage, statusMessage, type Outgoing } from "./protocol.ts";

/** What carries messages to one client. */
export type Transport = {
  readonly kind: "ws" | "sse";
  send(m: Outgoing): void;
  /** Bytes accepted but not yet written to the client. */
  buffered(): number;
  close(code: number, reason: string): void;
  /** A keep-alive: a WebSocket ping frame, an SSE comment. */
  heartbeat(): void;
  /**
   * Bun's pub/sub, where the transport has it (WebSocket): the fast path. A live session that keeps
   * up is subscribed to its symbols' topics and the hub publishes each event once, natively, to
   * all of them; a session that falls behind leaves the topics and is served one by one through
   * its outbox. Bun keeps a socket's published and sent messages in order, so switching is seamless.
   */
  topics?: { subscribe(topic: string): void; unsubscribe(topic: string): void; publish(topic: string, text: string): void };
};

/** The pub/sub topic of a symbol's events, and of every event. */
export const symbolTopic = (symbol: string) => `s:${symbol}`;
export const ALL_TOPIC = "*";

export type SessionCounters = { sent: Record<Transport["kind"], number>; conflated: number; dropped: Record<string, number>; replayed: number };

export type SessionDeps = {
  store: Store;
  /** The last id the bus published. */
  lastId(): number;
  bufferBytes: number;
  bufferMessages: number;
  /** Bytes the outbox may hold, whatever the message type. */
  outboxBytes: number;
  /** Symbols the client may be subscribed to at once. */
  maxSymbols: number;
  slowClient: "conflate" | "drop";
  counters: SessionCounters;
  /** Keep the hub's symbol index in step with the subscriptions. */
  index(session: Session, change: "add" | "remove", symbols: Iterable<string>, all: boolean): void;
  /** The session closed itself (slow client dropped). */
  closed(session: Session, reason: string): void;
  /** The session joined (true) or left (false) the fast path. */
  fastPath(session: Session, on: boolean): void;
};

const REPLAY_PAGE = 5000;
/** Subscribes/unsubscribes that may wait their turn: each holds its symbols until it runs. */
export const MAX_PENDING = 8;
/** Store lookups of a snapshot between two turns of the event loop, so other clients are served meanwhile. */
const LOOKUPS_PER_TURN = 16;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export type Session = ReturnType<typeof createSession>;

export function createSession(t: Transport, d: SessionDeps) {
  const symbols = new Set<string>();
  let all = false;
  let closed = false;
  // Live messages held while a subscribe reads the store.
  let holding = false;
  let held: Outgoing[] = [];
  // Messages waiting for room in the socket, in send order. Keys: a sequence number, or "s"+series
  // for a conflated bar (one per series; re-set on each newer bar, which moves it to the end).
  const outbox = new Map<string | number, Outgoing>();
  // What the outbox holds, in UTF-16 units of its JSON (bytes for the ASCII JSON sent; at most 3× for other text).
  let outBytes = 0;
  let seq = 0;
  // Queued subscribes/unsubscribes not finished yet.
  let pending = 0;
  let conflating = false;
  let conflated = 0;
  let roomWaiters: (() => void)[] = [];
  let chain: Promise<void> = Promise.resolve();
  // On the fast path: subscribed to its topics, not pushed to one by one.
  let fast = false;
  // Bars the client already has (it asked for a replay from an id the bus has not reached yet).
  let floors: { syms: Set<string>; wildcard: boolean; upTo: number }[] = [];

  const hasRoom = () => outbox.size === 0 && t.buffered() < d.bufferBytes;

  function send(m: Outgoing) {
    t.send(m);
    d.counters.sent[t.kind]++;
  }

  function put(key: string | number, m: Outgoing) {
    const old = outbox.get(key);
    if (old) {
      outbox.delete(key);
      outBytes -= old.json.length;
      countConflated(1);
    }
    outbox.set(key, m);
    outBytes += m.json.length;
  }

  function deliver(m: Outgoing) {
    if (closed) return;
    if (hasRoom()) return send(m);
    put(conflating && m.series !== undefined ? "s" + m.series : seq++, m);
    if (outbox.size > d.bufferMessages) overflow();
    if (outBytes > d.outboxBytes) {
      // Conflation may free enough; what it cannot shrink (errors, pongs, snapshots) closes the client.
      if (d.slowClient === "conflate" && outbox.size > 1) overflow();
      if (outBytes > d.outboxBytes) drop(`too slow: more than ${d.outboxBytes} bytes waiting`);
    }
  }

  function countConflated(n: number) {
    conflated += n;
    d.counters.conflated += n;
  }

  function drop(why: string) {
    if (closed) return;
    closed = true;
    outbox.clear();
    outBytes = 0;
    held = [];
    d.counters.dropped.slow = (d.counters.dropped.slow ?? 0) + 1;
    d.closed(session, why);
    t.close(4008, why);
  }

  /** The outbox is full: drop the client, or keep the latest bar per series (in id order). */
  function overflow() {
    if (d.slowClient === "drop") return drop(`too slow: more than ${d.bufferMessages} messages waiting`);
    const entries = [...outbox.values()];
    const latest = new Map<string, Outgoing>();
    for (const m of entries) if (m.series !== undefined) latest.set(m.series, m);
    outbox.clear();
    outBytes = 0;
    let dropped = 0;
    if (!conflating)
      put(seq++, statusMessage("conflating", "this client reads too slowly: only the latest pending bar per series is kept, so bar ids will skip", { limit: d.bufferMessages }));
    for (const m of entries) {
      if (m.series === undefined) put(seq++, m);
      else if (latest.get(m.series) === m) put("s" + m.series, m);
      else dropped++;
    }
    conflating = true;
    countConflated(dropped);
  }

  function topicsOf(): string[] {
    return all ? [ALL_TOPIC] : [...symbols].map(symbolTopic);
  }

  /** Join the fast path when nothing waits and nothing is held back. */
  function enterFast() {
    if (!t.topics || fast || holding || pending || closed || outbox.size || floors.length || (!all && !symbols.size) || t.buffered() >= d.bufferBytes) return;
    fast = true;
    for (const topic of topicsOf()) t.topics.subscribe(topic);
    d.fastPath(session, true);
  }

  /** Leave the fast path: from now on messages come through push (and the outbox). */
  function leaveFast() {
    if (!fast) return;
    fast = false;
    // A socket already closed has left its topics.
    if (!closed)
      try {
        for (const topic of topicsOf()) t.topics!.unsubscribe(topic);
      } catch {}
    d.fastPath(session, false);
  }

  /** The transport has room again: send what waits. */
  function drain() {
    while (outbox.size && !closed && t.buffered() < d.bufferBytes) {
      const [key, m] = outbox.entries().next().value!;
      outbox.delete(key);
      outBytes -= m.json.length;
      send(m);
    }
    if (outbox.size || closed) return;
    if (conflating) {
      conflating = false;
      send(statusMessage("caught_up", "the outbox is empty again: bars are sent one by one", { conflated }));
      conflated = 0;
    }
    if (roomWaiters.length && t.buffered() < d.bufferBytes) {
      const w = roomWaiters;
      roomWaiters = [];
      for (const fn of w) fn();
    }
    enterFast();
  }

  /** Wait until the client can take more (replay reads only as fast as the client does). */
  async function room() {
    while (!closed && !hasRoom()) {
      await new Promise<void>((resolve) => {
        roomWaiters.push(resolve);
        // A transport that never says "drained" (or said it before we waited) is re-checked.
        setTimeout(resolve, 20);
      });
      drain();
    }
  }

  /** A live message from the hub (it matched this session's symbols). */
  function push(m: Outgoing) {
    if (closed) return;
    if (floors.length && m.id !== undefined) {
      // Ids come in order: a floor below this id is passed for good.
      floors = floors.filter((f) => f.upTo > m.id!);
      if (floors.some((f) => matches(m, f.syms, f.wildcard))) return;
    }
    if (!holding) return deliver(m);
    held.push(m);
    if (held.length > d.bufferMessages) {
      if (d.slowClient === "drop") return drop(`too slow: more than ${d.bufferMessages} live messages waited for a replay`);
      const latest = new Map<string, Outgoing>();
      for (const h of held) if (h.series !== undefined) latest.set(h.series, h);
      const before = held.length;
      held = held.filter((h) => h.series === undefined || latest.get(h.series) === h);
      countConflated(before - held.length);
      held.unshift(statusMessage("conflating", "live bars arrived faster than the replay was read: only the latest per series is kept, so bar ids will skip"));
    }
  }

  const matches = (m: Outgoing, syms: Set<string>, wildcard: boolean) => wildcard || (m.symbol !== undefined && syms.has(m.symbol));

  /** The latest stored bar of each series of these symbols, one lookup at a time, yielding between chunks. */
  async function snapshot(syms: Set<string>, wildcard: boolean, mark: number) {
    let lookups = 0;
    const turn = async () => {
      if (++lookups % LOOKUPS_PER_TURN === 0) await nextTurn();
    };
    const one = async (s: Awaited<ReturnType<Store["listSeries"]>>[number]) => {
      await turn();
      const [bar] = await d.store.queryBars({ symbol: s.symbol, interval: s.interval, source: s.source, from: s.lastTs, limit: 1 });
      if (!bar) return;
      await room();
      deliver(snapshotMessage(mark, bar));
    };
    if (wildcard) {
      for (const s of await d.store.listSeries()) {
        if (closed) return;
        if (!symbols.has(s.symbol) || syms.has(s.symbol)) await one(s);
      }
      return;
    }
    for (const sym of syms) {
      if (closed) return;
      await turn();
      for (const s of await d.store.listSeries({ symbol: sym })) await one(s);
    }
  }

  /**
   * Replay the journal after `since` up to `mark` for these symbols: what comes after `mark` the bus
   * delivers (held meanwhile). The journal may already hold later events (another process's
   * commit the tailer has not read yet); they are left to the bus, so nothing comes twice.
   */
  async function replay(since: number, syms: Set<string>, wildcard: boolean, mark: number): Promise<void> {
    if (!d.store.journal) {
      deliver(statusMessage("replay_unavailable", `replay unavailable from id ${since}: the ${d.store.kind} store keeps no event journal; live events only`, { since }));
      return;
    }
    const bounds = await d.store.eventBounds();
    if (since > bounds.last) {
      deliver(statusMessage("replay_unavailable", `replay unavailable from id ${since}: the journal ends at ${bounds.last}; live events only`, { since, last: bounds.last }));
      return;
    }
    // Batch numbers can skip (nothing changed, a rolled-back transaction), so only a gap of more
    // than one batch below the oldest kept one says events were pruned.
    if (bounds.first !== null && since < bounds.first && eventBatch(since) < eventBatch(bounds.first) - 1)
      deliver(statusMessage("replay_unavailable", `replay unavailable from id ${since}: journal starts at ${bounds.first}; replaying from there`, { since, first: bounds.first }));
    // The client has seen events the bus has not published yet (another replica was ahead):
    // those must not come again when the bus gets to them.
    if (since > mark) floors.push({ syms, wildcard, upTo: since });
    deliver(statusMessage("replay", `replaying events after id ${since}`, { since }));
    let cursor = since;
    let n = 0;
    while (!closed && cursor < mark) {
      const events = await d.store.eventsSince(cursor, REPLAY_PAGE);
      if (!events.length) break;
      for (const e of events) {
        if (e.id > mark) break;
        cursor = e.id;
        if (!wildcard && !syms.has(e.bar.symbol)) continue;
        await room();
        if (closed) break;
        deliver(barMessage(e));
        n++;
      }
      if (events[events.length - 1]!.id > mark) break;
    }
    d.counters.replayed += n;
    deliver(statusMessage("replayed", `replayed ${n} events; live from here`, { events: n, last: cursor }));
  }

  async function subscribeNow(syms: Set<string>, wildcard: boolean, since: number | undefined) {
    const fresh = new Set<string>();
    for (const s of syms) if (!symbols.has(s)) fresh.add(s);
    const freshAll = wildcard && !all;
    if (symbols.size + fresh.size > d.maxSymbols) {
      deliver(errorMessage(`subscribe refused: a client may hold at most ${d.maxSymbols} symbols; it has ${symbols.size} and asked for ${fresh.size} more`, { op: "subscribe", limit: d.maxSymbols }));
      return;
    }
    // Nothing new and no replay: no store read, so the fast path may stay as it is.
    if (since === undefined && !fresh.size && !freshAll) {
      deliver(statusMessage("subscribed", "subscribed", { symbols: [...syms], ...(wildcard ? { all: true } : {}), lastId: d.lastId() }));
      return;
    }
    // Costs as many topic changes as the client holds, once per burst of requests (it re-enters
    // the fast path only when none is pending); everything else here is linear in the change.
    leaveFast();
    holding = true;
    try {
      for (const s of syms) symbols.add(s);
      if (wildcard) all = true;
      d.index(session, "add", syms, wildcard);
      const mark = d.lastId();
      deliver(statusMessage("subscribed", "subscribed", { symbols: [...syms], ...(wildcard ? { all: true } : {}), lastId: mark }));
      if (since === undefined) await snapshot(fresh, freshAll, mark);
      else await replay(since, syms, wildcard, mark);
    } finally {
      const h = held;
      held = [];
      holding = false;
      for (const m of h) push(m);
    }
  }

  function unsubscribeNow(syms: Set<string>, wildcard: boolean) {
    // On the fast path a symbol's topic is left on its own: linear in the change.
    if (wildcard && all) leaveFast();
    for (const s of syms) {
      if (!symbols.delete(s)) continue;
      if (fast && !all) t.topics!.unsubscribe(symbolTopic(s));
    }
    if (wildcard) all = false;
    d.index(session, "remove", syms, wildcard);
    if (fast && !all && !symbols.size) leaveFast();
    deliver(statusMessage("unsubscribed", "unsubscribed", { symbols: [...syms], ...(wildcard ? { all: true } : {}) }));
  }

  /** Queue an operation after the previous ones; a failure is told to the client, not thrown. */
  function queue(op: () => Promise<void> | void, onError: (e: Error) => void): Promise<void> {
    if (pending >= MAX_PENDING) {
      deliver(errorMessage(`too many requests waiting: at most ${MAX_PENDING} subscribes/unsubscribes at a time; wait for their replies`, { limit: MAX_PENDING }));
      return chain;
    }
    pending++;
    chain = chain
      .then(() => (closed ? undefined : op()))
      .catch(onError)
      .finally(() => {
        // The fast path is joined again once a burst of requests is done.
        if (--pending === 0) enterFast();
      });
    return chain;
  }

  const session = {
    transport: t,
    /** Last time the client was heard from (WebSocket messages and pongs). */
    seenAt: Date.now(),
    get all() {
      return all;
    },
    get closed() {
      return closed;
    },
    get fast() {
      return fast;
    },
    leaveFast,
    symbols: symbols as ReadonlySet<string>,
    push,
    drain,
    deliver,
    subscribe(syms: Set<string>, wildcard: boolean, since: number | undefined, onError: (e: Error) => void) {
      return queue(() => subscribeNow(syms, wildcard, since), onError);
    },
    unsubscribe(syms: Set<string>, wildcard: boolean, onError: (e: Error) => void) {
      return queue(() => unsubscribeNow(syms, wildcard), onError);
    },
    /** The connection is gone (or being closed by the hub): stop everything. */
    end() {
      leaveFast();
      closed = true;
      outbox.clear();
      outBytes = 0;
      held = [];
      floors = [];
      for (const fn of roomWaiters) fn();
      roomWaiters = [];
    },
  };
  return session;
}

// One stream client, whatever carries it (WebSocket or SSE): what it subscribed to, its outbox and
// slow-client policy (src/stream/outbox.ts), the WebSocket fast path, and the hand-over from
// snapshot or replay (src/stream/replay.ts) to the live feed.
//
// Hand-over without gap or duplicate: a subscribe registers its symbols first, so from that moment
// every live event for them reaches this session; while the subscribe reads the store (snapshot or
// replay) those live messages are held. The bus publishes in id order, so everything held is above
// `mark` (the bus's last id when the symbols were registered). A replay reads the journal from
// `since` up to at least `mark`, then the held messages follow, less those the replay already
// sent (id ≤ the replay's last id). Subscribes and unsubscribes run one at a time, in order.
//
// A class rather than a closure: `push` and `deliver` run for every live message of every client
// off the fast path, and as methods they cost what the closures did.
import type { Store } from "../stores/types.ts";
import { errorMessage, statusMessage, type Outgoing } from "./protocol.ts";
import { Outbox } from "./outbox.ts";
import { replay, snapshot, type Floor, type ReplayTarget } from "./replay.ts";
import { ALL_TOPIC, symbolTopic, type Transport } from "./transport.ts";
import type { RangeReplay } from "./range-replay.ts";

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

/** Subscribes/unsubscribes that may wait their turn: each holds its symbols until it runs. */
export const MAX_PENDING = 8;

const matches = (m: Outgoing, syms: Set<string>, wildcard: boolean) => wildcard || (m.symbol !== undefined && syms.has(m.symbol));

export class Session implements ReplayTarget {
  /** Last time the client was heard from (WebSocket messages and pongs). */
  seenAt = Date.now();
  /** Status events the client watches (market_status, provider_status: src/stream/status.ts). */
  readonly watching = new Set<string>();
  readonly #d: SessionDeps;
  readonly #symbols = new Set<string>();
  #all = false;
  #closed = false;
  // Live messages held while a subscribe reads the store.
  #holding = false;
  #held: Outgoing[] = [];
  readonly #outbox: Outbox;
  // Queued subscribes/unsubscribes not finished yet.
  #pending = 0;
  #roomWaiters: (() => void)[] = [];
  #chain: Promise<void> = Promise.resolve();
  // On the fast path: subscribed to its topics, not pushed to one by one.
  #fast = false;
  // Bars the client already has (it asked for a replay from an id the bus has not reached yet).
  #floors: Floor[] = [];

  constructor(
    readonly transport: Transport,
    d: SessionDeps,
  ) {
    this.#d = d;
    this.#outbox = new Outbox(d.counters);
  }

  get all(): boolean {
    return this.#all;
  }
  get closed(): boolean {
    return this.#closed;
  }
  get fast(): boolean {
    return this.#fast;
  }
  get symbols(): ReadonlySet<string> {
    return this.#symbols;
  }

  #send(m: Outgoing): void {
    this.transport.send(m);
    this.#d.counters.sent[this.transport.kind]++;
  }

  /** Send now if the transport has room and nothing waits, else queue (and apply the slow-client policy). */
  deliver(m: Outgoing): void {
    if (this.#closed) return;
    const d = this.#d;
    const out = this.#outbox;
    if (out.items.size === 0 && this.transport.buffered() < d.bufferBytes) return this.#send(m);
    out.put(out.conflating && m.series !== undefined ? "s" + m.series : out.seq++, m);
    if (out.items.size > d.bufferMessages) this.#overflow();
    if (out.bytes > d.outboxBytes) {
      // Conflation may free enough; what it cannot shrink (errors, pongs, snapshots) closes the client.
      if (d.slowClient === "conflate" && out.items.size > 1) this.#overflow();
      if (out.bytes > d.outboxBytes) this.#drop(`too slow: more than ${d.outboxBytes} bytes waiting`);
    }
  }

  #drop(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#outbox.clear();
    this.#held = [];
    this.#d.counters.dropped.slow = (this.#d.counters.dropped.slow ?? 0) + 1;
    this.#d.closed(this, why);
    this.transport.close(4008, why);
  }

  /** The outbox is full: drop the client, or keep the latest bar per series (in id order). */
  #overflow(): void {
    if (this.#d.slowClient === "drop") return this.#drop(`too slow: more than ${this.#d.bufferMessages} messages waiting`);
    this.#outbox.conflate(this.#d.bufferMessages);
  }

  #topics(): string[] {
    return this.#all ? [ALL_TOPIC] : [...this.#symbols].map(symbolTopic);
  }

  /** Join the fast path when nothing waits and nothing is held back. */
  #enterFast(): void {
    const t = this.transport;
    if (!t.topics || this.#fast || this.#holding || this.#pending || this.#closed || this.#outbox.items.size || this.#floors.length || (!this.#all && !this.#symbols.size) || t.buffered() >= this.#d.bufferBytes)
      return;
    this.#fast = true;
    for (const topic of this.#topics()) t.topics.subscribe(topic);
    this.#d.fastPath(this, true);
  }

  /** Leave the fast path: from now on messages come through push (and the outbox). */
  leaveFast(): void {
    if (!this.#fast) return;
    this.#fast = false;
    // A socket already closed has left its topics.
    if (!this.#closed)
      try {
        for (const topic of this.#topics()) this.transport.topics!.unsubscribe(topic);
      } catch {}
    this.#d.fastPath(this, false);
  }

  /** The transport has room again: send what waits. */
  drain(): void {
    const out = this.#outbox;
    const items = out.items;
    while (items.size && !this.#closed && this.transport.buffered() < this.#d.bufferBytes) {
      const [key, m] = items.entries().next().value!;
      items.delete(key);
      out.bytes -= m.json.length;
      this.#send(m);
    }
    if (items.size || this.#closed) return;
    if (out.conflating) {
      out.conflating = false;
      this.#send(statusMessage("caught_up", "the outbox is empty again: bars are sent one by one", { conflated: out.conflated }));
      out.conflated = 0;
    }
    if (this.#roomWaiters.length && this.transport.buffered() < this.#d.bufferBytes) {
      const w = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const fn of w) fn();
    }
    this.#enterFast();
  }

  /** Wait until the client can take more (replay reads only as fast as the client does). */
  async room(): Promise<void> {
    while (!this.#closed && !(this.#outbox.items.size === 0 && this.transport.buffered() < this.#d.bufferBytes)) {
      await new Promise<void>((resolve) => {
        this.#roomWaiters.push(resolve);
        // A transport that never says "drained" (or said it before we waited) is re-checked.
        setTimeout(resolve, 20);
      });
      this.drain();
    }
  }

  addFloor(f: Floor): void {
    this.#floors.push(f);
  }

  /** A live message from the hub (it matched this session's symbols). */
  push(m: Outgoing): void {
    if (this.#closed) return;
    if (this.#floors.length && m.id !== undefined) {
      // Ids come in order: a floor below this id is passed for good.
      this.#floors = this.#floors.filter((f) => f.upTo > m.id!);
      if (this.#floors.some((f) => matches(m, f.syms, f.wildcard))) return;
    }
    if (!this.#holding) return this.deliver(m);
    const d = this.#d;
    this.#held.push(m);
    if (this.#held.length > d.bufferMessages) {
      if (d.slowClient === "drop") return this.#drop(`too slow: more than ${d.bufferMessages} live messages waited for a replay`);
      const latest = new Map<string, Outgoing>();
      for (const h of this.#held) if (h.series !== undefined) latest.set(h.series, h);
      const before = this.#held.length;
      this.#held = this.#held.filter((h) => h.series === undefined || latest.get(h.series) === h);
      this.#outbox.countConflated(before - this.#held.length);
      this.#held.unshift(statusMessage("conflating", "live bars arrived faster than the replay was read: only the latest per series is kept, so bar ids will skip"));
    }
  }

  async #subscribeNow(syms: Set<string>, wildcard: boolean, since: number | undefined, range?: RangeReplay): Promise<void> {
    const d = this.#d;
    const symbols = this.#symbols;
    const fresh = new Set<string>();
    for (const s of syms) if (!symbols.has(s)) fresh.add(s);
    const freshAll = wildcard && !this.#all;
    if (symbols.size + fresh.size > d.maxSymbols) {
      this.deliver(errorMessage(`subscribe refused: a client may hold at most ${d.maxSymbols} symbols; it has ${symbols.size} and asked for ${fresh.size} more`, { op: "subscribe", limit: d.maxSymbols }));
      return;
    }
    // Nothing new and no replay: no store read, so the fast path may stay as it is.
    if (since === undefined && !range && !fresh.size && !freshAll) {
      this.deliver(statusMessage("subscribed", "subscribed", { symbols: [...syms], ...(wildcard ? { all: true } : {}), lastId: d.lastId() }));
      return;
    }
    // Costs as many topic changes as the client holds, once per burst of requests (it re-enters
    // the fast path only when none is pending); everything else here is linear in the change.
    this.leaveFast();
    this.#holding = true;
    try {
      for (const s of syms) symbols.add(s);
      if (wildcard) this.#all = true;
      d.index(this, "add", syms, wildcard);
      const mark = d.lastId();
      this.deliver(statusMessage("subscribed", "subscribed", { symbols: [...syms], ...(wildcard ? { all: true } : {}), lastId: mark }));
      // A replay of a range of stored bars (src/stream/range-replay.ts) instead of the snapshot.
      if (range) await range.run(this, mark);
      else if (since === undefined) await snapshot(this, d.store, fresh, freshAll, mark);
      else await replay(this, d.store, d.counters, since, syms, wildcard, mark);
    } finally {
      const h = this.#held;
      this.#held = [];
      this.#holding = false;
      // Less what the range replay already sent (it read the store after they were committed).
      for (const m of h) if (!range?.covered(m)) this.push(m);
    }
  }

  #unsubscribeNow(syms: Set<string>, wildcard: boolean): void {
    // On the fast path a symbol's topic is left on its own: linear in the change.
    if (wildcard && this.#all) this.leaveFast();
    for (const s of syms) {
      if (!this.#symbols.delete(s)) continue;
      if (this.#fast && !this.#all) this.transport.topics!.unsubscribe(symbolTopic(s));
    }
    if (wildcard) this.#all = false;
    this.#d.index(this, "remove", syms, wildcard);
    if (this.#fast && !this.#all && !this.#symbols.size) this.leaveFast();
    this.deliver(statusMessage("unsubscribed", "unsubscribed", { symbols: [...syms], ...(wildcard ? { all: true } : {}) }));
  }

  /** Queue an operation after the previous ones; a failure is told to the client, not thrown. */
  #queue(op: () => Promise<void> | void, onError: (e: Error) => void): Promise<void> {
    if (this.#pending >= MAX_PENDING) {
      this.deliver(errorMessage(`too many requests waiting: at most ${MAX_PENDING} subscribes/unsubscribes at a time; wait for their replies`, { limit: MAX_PENDING }));
      return this.#chain;
    }
    this.#pending++;
    this.#chain = this.#chain
      .then(() => (this.#closed ? undefined : op()))
      .catch(onError)
      .finally(() => {
        // The fast path is joined again once a burst of requests is done.
        if (--this.#pending === 0) this.#enterFast();
      });
    return this.#chain;
  }

  subscribe(syms: Set<string>, wildcard: boolean, since: number | undefined, onError: (e: Error) => void, range?: RangeReplay): Promise<void> {
    return this.#queue(() => this.#subscribeNow(syms, wildcard, since, range), onError);
  }

  unsubscribe(syms: Set<string>, wildcard: boolean, onError: (e: Error) => void): Promise<void> {
    return this.#queue(() => this.#unsubscribeNow(syms, wildcard), onError);
  }

  /** The connection is gone (or being closed by the hub): stop everything. */
  end(): void {
    this.leaveFast();
    this.#closed = true;
    this.#outbox.clear();
    this.#held = [];
    this.#floors = [];
    for (const fn of this.#roomWaiters) fn();
    this.#roomWaiters = [];
  }
}

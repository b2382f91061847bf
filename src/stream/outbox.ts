// A stream client's outbox: the messages waiting for room in its socket, in send order, and the
// conflation that keeps only the latest pending bar per series when it overflows. The session
// decides when to queue, send and drop (src/stream/session.ts); this holds and shrinks the queue.
import { statusMessage, type Outgoing } from "./protocol.ts";

/** Outboxes that may hold messages, for the metrics (outboxTotals); an emptied one is pruned there. */
const waiting = new Set<Outbox>();

/** What waits in this process's outboxes now: clients with a non-empty outbox, their messages and bytes, the largest. */
export function outboxTotals(): { clients: number; messages: number; bytes: number; maxBytes: number } {
  const t = { clients: 0, messages: 0, bytes: 0, maxBytes: 0 };
  for (const o of waiting) {
    if (o.items.size === 0) {
      waiting.delete(o);
      continue;
    }
    t.clients++;
    t.messages += o.items.size;
    t.bytes += o.bytes;
    t.maxBytes = Math.max(t.maxBytes, o.bytes);
  }
  return t;
}

export class Outbox {
  /**
   * Waiting messages in send order. Keys: a sequence number, or "s"+series for a conflated bar
   * (one per series; re-set on each newer bar, which moves it to the end).
   */
  readonly items = new Map<string | number, Outgoing>();
  /** What the outbox holds, in UTF-16 units of its JSON (bytes for the ASCII JSON sent; at most 3× for other text). */
  bytes = 0;
  /** The next sequence-number key. */
  seq = 0;
  /** Bars are kept one per series until the outbox is empty again. */
  conflating = false;
  /** Bars left out since conflation began (told to the client when it catches up). */
  conflated = 0;

  /** `counters.conflated`: the stream's total, for the metrics. */
  constructor(private readonly counters: { conflated: number }) {}

  put(key: string | number, m: Outgoing): void {
    if (this.items.size === 0) waiting.add(this);
    const old = this.items.get(key);
    if (old) {
      this.items.delete(key);
      this.bytes -= old.json.length;
      this.countConflated(1);
    }
    this.items.set(key, m);
    this.bytes += m.json.length;
  }

  countConflated(n: number): void {
    this.conflated += n;
    this.counters.conflated += n;
  }

  /** Keep the latest bar per series (in id order) and every other message; `limit` is told to the client. */
  conflate(limit: number): void {
    const entries = [...this.items.values()];
    const latest = new Map<string, Outgoing>();
    for (const m of entries) if (m.series !== undefined) latest.set(m.series, m);
    this.items.clear();
    this.bytes = 0;
    let dropped = 0;
    if (!this.conflating)
      this.put(this.seq++, statusMessage("conflating", "this client reads too slowly: only the latest pending bar per series is kept, so bar ids will skip", { limit }));
    for (const m of entries) {
      if (m.series === undefined) this.put(this.seq++, m);
      else if (latest.get(m.series) === m) this.put("s" + m.series, m);
      else dropped++;
    }
    this.conflating = true;
    this.countConflated(dropped);
  }

  clear(): void {
    waiting.delete(this);
    this.items.clear();
    this.bytes = 0;
  }
}

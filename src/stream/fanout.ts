// The routing of live events to sessions: the symbol index (which sessions want which symbol, and
// which want every symbol), the sessions on the WebSocket fast path, and the fan-out itself. Each
// event is turned into JSON once, however many clients receive it; fast-path clients get it by one
// native publish per topic.
import type { BarEvent } from "../stores/events.ts";
import { barMessage } from "./protocol.ts";
import type { Session, SessionCounters } from "./session.ts";
import { ALL_TOPIC, symbolTopic } from "./transport.ts";
import type { StreamConfig } from "./config.ts";

export class Fanout {
  readonly #bySymbol = new Map<string, Set<Session>>();
  readonly #wildcard = new Set<Session>();
  readonly #fastSessions = new Set<Session>();
  /** The server's publish (the same for every socket), taken from the first fast-path session. */
  #publish: ((topic: string, text: string) => void) | null = null;

  /** `config.bufferBytes`: a fast-path client whose socket holds more leaves the fast path. */
  constructor(
    private readonly config: StreamConfig,
    private readonly counters: SessionCounters,
  ) {}

  /** Keep the index in step with a session's subscriptions (SessionDeps.index). */
  readonly index = (s: Session, change: "add" | "remove", symbols: Iterable<string>, all: boolean): void => {
    for (const sym of symbols) {
      let set = this.#bySymbol.get(sym);
      if (change === "add") {
        if (!set) this.#bySymbol.set(sym, (set = new Set()));
        set.add(s);
      } else if (set) {
        set.delete(s);
        if (!set.size) this.#bySymbol.delete(sym);
      }
    }
    if (all) change === "add" ? this.#wildcard.add(s) : this.#wildcard.delete(s);
  };

  /** A session joined (`on`) or left the fast path (SessionDeps.fastPath). */
  readonly fastPath = (s: Session, on: boolean): void => {
    if (on) {
      this.#publish ??= s.transport.topics!.publish;
      this.#fastSessions.add(s);
    } else this.#fastSessions.delete(s);
  };

  /** The bus listener: each event to the sessions of its symbol and the wildcard sessions. */
  readonly fanOut = (events: BarEvent[]): void => {
    const bySymbol = this.#bySymbol;
    const wildcard = this.#wildcard;
    // A fast-path client that has fallen behind leaves it before anything more is published.
    for (const s of this.#fastSessions) if (s.transport.buffered() > this.config.bufferBytes) s.leaveFast();
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
      if (bySym) this.#publish!(symbolTopic(e.bar.symbol), m.json);
      if (byAll) this.#publish!(ALL_TOPIC, m.json);
      this.counters.sent.ws += bySym + byAll;
    }
  };
}

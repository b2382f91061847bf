// A source narrowed to the symbols of some markets: what a tick of a job gated per symbol reads
// (an ingest over a universe of Warsaw and New York listings at 09:00 New York reads the Warsaw
// ones only). A stream is a symbol, a comma-joined batch of them (quote mode), or a file or table
// of the source's configured market.
import type { Market } from "../domain/calendar.ts";
import { marketOf } from "../domain/symbols.ts";
import { log } from "../lib/log.ts";
import type { Source } from "../sources/types.ts";

/** The source's streams whose symbols trade on one of `markets`; a batch keeps those of its symbols that do. */
export function onMarkets(source: Source, markets: readonly Market[]): Source {
  const wanted = new Set(markets);
  return {
    ...source,
    read: source.read.bind(source),
    async streams() {
      const out: string[] = [];
      for (const stream of await source.streams()) {
        const symbols = stream.split(",");
        const own = symbols.map(marketOf);
        if (own.every((m) => m !== undefined)) {
          const kept = symbols.filter((_, i) => wanted.has(own[i]!));
          if (kept.length) out.push(kept.join(","));
        } else if (source.market !== undefined) {
          // A file or table of the source's configured market.
          if (wanted.has(source.market)) out.push(stream);
        } else {
          // Not gateable: read it rather than drop it unseen (serve refuses such a job at start).
          log.warn("a stream without a market is read whatever the market hours", { source: source.name, stream });
          out.push(stream);
        }
      }
      return out;
    },
  };
}

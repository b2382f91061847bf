// GET /api/symbols: every stored symbol with its series, and what the providers say it is
// (name, exchange, currency…: merged, and per source).
import { Hono } from "hono";
import * as v from "valibot";
import type { Instrument } from "../../domain/actions.ts";
import { marketOf } from "../../domain/symbols.ts";
import type { Store } from "../../stores/types.ts";
import { describe, json, query } from "../openapi.ts";
import { SymbolsBody } from "../schemas/data.ts";
import type { Body } from "../schemas/common.ts";
import { MarketSchema } from "../../domain/markets/index.ts";

const INSTRUMENT_FIELDS = ["name", "exchange", "currency", "type", "sector", "industry", "isin"] as const;

/** Instrument fields of a symbol: each the newest non-null value any source gave; and by source. */
function instrumentFields(list: Instrument[]) {
  const sorted = [...list].sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0));
  const merged = Object.fromEntries(INSTRUMENT_FIELDS.map((f) => [f, sorted.find((i) => i[f] !== null)?.[f] ?? null])) as Record<(typeof INSTRUMENT_FIELDS)[number], string | null>;
  return { ...merged, instruments: list.map(({ symbol: _s, updatedAt, ...rest }) => ({ ...rest, updatedAt: updatedAt === undefined ? null : new Date(updatedAt).toISOString() })) };
}

type SymbolEntry = Body<typeof SymbolsBody>["data"][number];

const SymbolsQuery = v.strictObject({ market: v.optional(MarketSchema) });

export function symbolRoutes(store: Store): Hono {
  const app = new Hono();
  const doc = describe({ summary: "Every stored symbol, its series, and what the providers say it is", tags: ["data"], responses: { 200: json(SymbolsBody, "the symbols") } });
  app.get("/", doc, query(SymbolsQuery), async (c) => {
    const q = { output: c.req.valid("query") };
    const bySymbol = new Map<string, Pick<SymbolEntry, "symbol" | "market" | "series">>();
    for (const s of await store.listSeries()) {
      const market = marketOf(s.symbol) ?? null;
      if (q.output.market && market !== q.output.market) continue;
      let entry = bySymbol.get(s.symbol);
      if (!entry) bySymbol.set(s.symbol, (entry = { symbol: s.symbol, market, series: [] }));
      entry.series.push({ source: s.source, interval: s.interval, bars: s.bars, first: new Date(s.firstTs).toISOString(), last: new Date(s.lastTs).toISOString() });
    }
    // What the providers say each symbol is: merged (the newest record's value per field) and per source.
    const instruments = (await store.listInstruments?.()) ?? [];
    const bySym = Map.groupBy(instruments, (i) => i.symbol);
    const data = [...bySymbol.values()].map((e) => ({ ...e, ...instrumentFields(bySym.get(e.symbol) ?? []) }));
    return c.json({ data, count: data.length } satisfies Body<typeof SymbolsBody>);
  });
  return app;
}

// A symbol as a client spells it, resolved to the stored symbol (/api/bars, /api/indicators, /api/gaps).
import { normaliseSymbol } from "../domain/symbols.ts";
import type { Store } from "../stores/types.ts";
import { marketCodes } from "../domain/markets/index.ts";

/** `PKN.WA`, `pkn.pl` and (when only one market has it) `PKN` all name the stored symbol. */
export async function resolveSymbol(store: Store, raw: string): Promise<{ symbol: string } | { error: string }> {
  const sym = normaliseSymbol(raw);
  if (sym.ok) return { symbol: sym.symbol };
  const candidates = new Set<string>();
  for (const m of marketCodes()) {
    const n = normaliseSymbol(raw, m);
    if (n.ok && (await store.listSeries({ symbol: n.symbol })).length > 0) candidates.add(n.symbol);
  }
  if (candidates.size === 1) return { symbol: [...candidates][0]! };
  if (candidates.size > 1) return { error: `ambiguous symbol, use one of ${[...candidates].join(", ")}` };
  return { error: sym.reason };
}

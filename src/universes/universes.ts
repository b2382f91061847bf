// Universes: named symbol lists. Three ship as data (sWIG80, S&P 500, a curated US ETF list),
// each with the date it is as of and where it comes from; users name their own in the config,
// in any provider spelling, and may pull a bundled list in with "@name". The JSON is imported
// statically so `bun build --compile` bundles it: the binary needs no data files.
import * as v from "valibot";
import { isMarket, marketOf, normaliseSymbol, type SymbolMarket } from "../domain/symbols.ts";
import { MARKET_CODES } from "../domain/markets/index.ts";
import wig80 from "./data/wig80.json";
import sp500 from "./data/sp500.json";
import etfUs from "./data/etf-us.json";

export type Universe = {
  /** As written: bundled names are lower case, user lists keep the config's spelling. */
  name: string;
  title: string;
  /** "mixed" only for a user list that spans markets. */
  market: SymbolMarket | "mixed";
  /** YYYY-MM-DD the list is as of; null for user lists. */
  asOf: string | null;
  /** Where the list comes from, in words. */
  source: string;
  note: string;
  /** Canonical symbols (`PKN.WA`, `BRK-B.US`), unique, in list order. Frozen for bundled lists. */
  symbols: string[];
  bundled: boolean;
};

export type UniverseResult = { ok: true; universe: Universe } | { ok: false; reason: string };

export type ResolveOptions = {
  /** Market of bare tickers (`PKN`) in user lists; a suffix in the symbol wins over it. */
  market?: SymbolMarket;
};

const IsoDate = v.pipe(v.string(), v.regex(/^\d{4}-\d{2}-\d{2}$/, "expected YYYY-MM-DD"));

const bundledSchema = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9-]*$/, "expected a lower-case name")),
  title: v.pipe(v.string(), v.nonEmpty()),
  market: v.picklist(MARKET_CODES),
  asOf: IsoDate,
  source: v.pipe(v.string(), v.nonEmpty()),
  note: v.string(),
  symbols: v.pipe(v.array(v.string()), v.nonEmpty()),
});

let bundledCache: readonly Universe[] | undefined;

/** Bundled lists, checked once: a malformed data file is a build defect, so it throws. */
function bundled(): readonly Universe[] {
  if (bundledCache) return bundledCache;
  const list = [wig80, sp500, etfUs].map((raw) => {
    const r = v.safeParse(bundledSchema, raw);
    if (!r.success) throw new Error(`bundled universe ${(raw as { name?: string }).name ?? "?"}: ${v.summarize(r.issues)}`);
    const u = r.output;
    const wrong = u.symbols.filter((s) => {
      const n = normaliseSymbol(s);
      return !n.ok || n.symbol !== s || n.market !== u.market;
    });
    if (wrong.length) throw new Error(`bundled universe ${u.name}: not canonical ${u.market} symbols: ${wrong.join(", ")}`);
    if (new Set(u.symbols).size !== u.symbols.length) throw new Error(`bundled universe ${u.name}: duplicate symbols`);
    const universe: Universe = { ...u, symbols: Object.freeze([...u.symbols]) as string[], bundled: true };
    return Object.freeze(universe);
  });
  return (bundledCache = Object.freeze(list));
}

/** The bundled universes, in a fixed order (wig80, sp500, etf-us). */
export function listUniverses(): Universe[] {
  return [...bundled()];
}

const key = (name: string) => name.trim().toLowerCase();

function findBundled(name: string): Universe | undefined {
  return bundled().find((u) => u.name === key(name));
}

function findUser(name: string, userLists: Record<string, string[]>): [string, string[]] | undefined {
  const k = key(name);
  return Object.entries(userLists).find(([n]) => key(n) === k);
}

function knownNames(userLists: Record<string, string[]>): string {
  const names = [...bundled().map((u) => u.name), ...Object.keys(userLists).filter((n) => !findBundled(n))];
  return names.join(", ");
}

/**
 * A universe by name, case-insensitively: a user list from the config first (so a user may
 * redefine a bundled name), then a bundled one. User entries are normalised with
 * `normaliseSymbol`; `"@name"` expands a bundled universe (or another user list), and the
 * result is de-duplicated keeping first occurrences. Every bad entry is named in the reason.
 */
export function resolveUniverse(name: string, userLists: Record<string, string[]> = {}, options: ResolveOptions = {}): UniverseResult {
  const user = findUser(name, userLists);
  if (user) return resolveUserList(user[0], user[1], userLists, options, [key(user[0])]);
  const b = findBundled(name);
  if (b) return { ok: true, universe: b };
  return { ok: false, reason: `unknown universe ${JSON.stringify(name)} (known: ${knownNames(userLists)})` };
}

function resolveUserList(
  name: string,
  entries: string[],
  userLists: Record<string, string[]>,
  options: ResolveOptions,
  path: string[],
): UniverseResult {
  const symbols: string[] = [];
  const problems: string[] = [];
  for (const entry of entries) {
    const e = entry.trim();
    if (e.startsWith("@")) {
      const ref = e.slice(1);
      // "@x" means the bundled x when there is one, so a user list named "wig80" can extend it.
      const b = findBundled(ref);
      if (b) {
        symbols.push(...b.symbols);
        continue;
      }
      const u = findUser(ref, userLists);
      if (!u) {
        problems.push(`${JSON.stringify(entry)} refers to no universe (known: ${knownNames(userLists)})`);
        continue;
      }
      if (path.includes(key(u[0]))) {
        problems.push(`${JSON.stringify(entry)} refers back to ${JSON.stringify(u[0])} (a cycle)`);
        continue;
      }
      const r = resolveUserList(u[0], u[1], userLists, options, [...path, key(u[0])]);
      if (r.ok) symbols.push(...r.universe.symbols);
      else problems.push(`${JSON.stringify(entry)}: ${r.reason}`);
      continue;
    }
    const n = normaliseSymbol(e, options.market);
    if (n.ok) symbols.push(n.symbol);
    else problems.push(`${JSON.stringify(entry)}: ${n.reason}`);
  }
  if (problems.length) {
    const what = problems.length === 1 ? "1 bad entry" : `${problems.length} bad entries`;
    return { ok: false, reason: `universe ${JSON.stringify(name)}: ${what}: ${problems.join("; ")}` };
  }
  const unique = [...new Set(symbols)];
  if (unique.length === 0) return { ok: false, reason: `universe ${JSON.stringify(name)} has no symbols` };
  const markets = new Set(unique.map((s) => marketOf(s)));
  const only = markets.size === 1 ? [...markets][0] : undefined;
  return {
    ok: true,
    universe: {
      name,
      title: "user list",
      market: only !== undefined && isMarket(only) ? only : "mixed",
      asOf: null,
      source: "config",
      note: "",
      symbols: unique,
      bundled: false,
    },
  };
}

/**
 * A table for `ticksync universe list`: name, market, count, as-of date, title. With
 * `symbols: true` (`universe show NAME`) each universe follows with its source, note and symbols.
 */
export function formatUniverseList(universes: Universe[], opts: { symbols?: boolean } = {}): string {
  const header = ["NAME", "MARKET", "COUNT", "AS OF", "TITLE"];
  const rows = universes.map((u) => [u.name, u.market, String(u.symbols.length), u.asOf ?? "-", u.title]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 2 ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  if (universes.length === 0) out.push("(no universes)");
  if (opts.symbols) {
    for (const u of universes) {
      out.push("", `${u.name}: ${u.title}`);
      if (u.bundled) out.push(...wrap(`source: ${u.source}`, "  ", 100));
      if (u.note) out.push(...wrap(`note: ${u.note}`, "  ", 100));
      out.push(`  symbols (${u.symbols.length}):`, ...wrap(u.symbols.join(" "), "    ", 100));
    }
  }
  return out.join("\n") + "\n";
}

/** Word-wraps text at `width` columns, every line indented. */
function wrap(text: string, indent: string, width: number): string[] {
  const lines: string[] = [];
  let cur = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (cur && indent.length + cur.length + 1 + word.length > width) {
      lines.push(indent + cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) lines.push(indent + cur);
  return lines;
}

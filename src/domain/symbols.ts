// Symbol normalisation. Providers spell one listing many ways: Stooq `pkn.pl`, Yahoo `PKN.WA`,
// a WIG80 spreadsheet `PKN`. ticksync stores one canonical form, `<TICKER>.<MARKET SUFFIX>`
// (`PKN.WA`, `AAPL.US`), so that bars of one listing from any source meet under one key.
// The suffixes, and how each provider spells a ticker, are the markets' data (markets/*.json).
import { MARKETS, isMarket, marketInfo, type Market, type MarketInfo } from "./markets/index.ts";

export { isMarket };
export type SymbolMarket = Market;

/** Canonical suffix per market: Yahoo's `.WA` for Warsaw, Stooq's `.US` for US listings. */
export const MARKET_SUFFIX: Record<SymbolMarket, string> = Object.fromEntries(MARKETS.map((m) => [m.code, m.symbols.suffix])) as Record<SymbolMarket, string>;

/**
 * The suffix a market's symbols are stored with: its own, or that of the market it is `storedAs`
 * (NASDAQ's are NYSE's `.US`: providers write both markets' listings alike, so one listing has
 * one key whichever market a source names).
 */
const STORED_SUFFIX = new Map<SymbolMarket, string>(MARKETS.map((m) => [m.code, m.symbols.storedAs === undefined ? m.symbols.suffix : MARKET_SUFFIX[m.symbols.storedAs as SymbolMarket]]));

/** Every suffix seen in the wild for a market, upper case: each market's canonical one, then its aliases. */
const SUFFIXES: Record<string, SymbolMarket> = Object.create(null);
for (const m of MARKETS) for (const suffix of [m.symbols.suffix, ...m.symbols.aliases]) SUFFIXES[suffix] = m.code;

/** Per market, the separator a share class is stored with (US: BRK.B, BRK/B and BRK-B are one listing). */
const SHARE_CLASS = new Map<SymbolMarket, string>(MARKETS.flatMap((m) => (m.symbols.shareClassSeparator === undefined ? [] : [[m.code, m.symbols.shareClassSeparator] as const])));
const SHARE_CLASS_MARK = /[./-]/g;
/** Per market, the digits an all-digit ticker is stored with (Hong Kong: 700 → 0700). */
const PAD_DIGITS = new Map<SymbolMarket, number>(MARKETS.flatMap((m) => (m.symbols.padDigits === undefined ? [] : [[m.code, m.symbols.padDigits] as const])));
const ALL_DIGITS = /^\d+$/;
const LEADING_ZEROS = /^0+(?=\d)/;

/**
 * The markets ticksync knows, as a reader sees them: `.WA (WSE; also .PL, .WAR, .WSE), …`, built
 * from the suffix tables so that a market added there is listed here too.
 */
export function knownMarketSuffixes(): string {
  return (Object.entries(MARKET_SUFFIX) as [SymbolMarket, string][])
    .map(([market, canonical]) => {
      const aliases = Object.keys(SUFFIXES).filter((x) => SUFFIXES[x] === market && x !== canonical);
      const stored = STORED_SUFFIX.get(market);
      return `.${canonical} (${market}${stored !== canonical ? `, stored as .${stored}` : ""}${aliases.length ? `; also ${aliases.map((a) => `.${a}`).join(", ")}` : ""})`;
    })
    .join(", ");
}

export type NormalisedSymbol = { symbol: string; ticker: string; market: SymbolMarket };
export type SymbolResult = ({ ok: true } & NormalisedSymbol) | { ok: false; reason: string };

const TICKER = /^\^?[A-Z0-9][A-Z0-9&_-]{0,19}$/;

type PairRule = NonNullable<MarketInfo["symbols"]["pairs"]>;
/** Pair markets (FX, crypto), with their quote assets longest first so `BTCUSDT` is BTC + USDT, not BTCUSD + T. */
const PAIRS = new Map<SymbolMarket, PairRule & { quotesLongestFirst: string[] }>(
  MARKETS.flatMap((m) => (m.symbols.pairs === undefined ? [] : [[m.code, { ...m.symbols.pairs, quotesLongestFirst: [...(m.symbols.pairs.quotes ?? [])].sort((a, b) => b.length - a.length) }] as const])),
);
const ASSET = /^[A-Z0-9]{2,10}$/;

// Provider spellings that name a market by themselves, read back: Polygon's `C:` and `X:`
// prefixes, Yahoo's `=X` suffix. A spelling two markets share names neither.
const PROVIDER_PREFIXES: Record<string, SymbolMarket> = Object.create(null);
const PROVIDER_SUFFIXES: Record<string, SymbolMarket> = Object.create(null);
for (const [table, field] of [[PROVIDER_PREFIXES, "prefix"], [PROVIDER_SUFFIXES, "suffix"]] as const) {
  const owners = new Map<string, Set<SymbolMarket>>();
  for (const m of MARKETS) {
    for (const spelling of Object.values(m.providers)) {
      const mark = spelling[field]?.toUpperCase();
      // `.WA`-style suffixes are read as market suffixes already (symbols.aliases); these are the others.
      if (mark === undefined || mark.startsWith(".")) continue;
      owners.set(mark, (owners.get(mark) ?? new Set()).add(m.code));
    }
  }
  for (const [mark, markets] of owners) if (markets.size === 1) table[field === "prefix" ? mark.slice(0, -1) : mark] = [...markets][0]!;
}

/** A pair as stored (`EURGBP`, `BTC-USDT`) from any common spelling (`EUR/GBP`, `eur_gbp`, `BTCUSDT`), or a reason. */
function pairTicker(s: string, market: SymbolMarket, rule: PairRule & { quotesLongestFirst: string[] }): { base: string; quote: string } | string {
  const parts = s.split(/[-/_]/);
  let base: string | undefined;
  let quote: string | undefined;
  if (parts.length === 2) [base, quote] = parts;
  else if (parts.length === 1 && rule.baseLength !== undefined) [base, quote] = [s.slice(0, rule.baseLength), s.slice(rule.baseLength)];
  else if (parts.length === 1) {
    quote = rule.quotesLongestFirst.find((q) => s.length > q.length + 1 && s.endsWith(q));
    base = quote === undefined ? undefined : s.slice(0, -quote.length);
  }
  if (base === undefined || quote === undefined || !ASSET.test(base) || !ASSET.test(quote) || (rule.baseLength !== undefined && (base.length !== rule.baseLength || quote.length !== rule.baseLength))) {
    const known = rule.quotesLongestFirst.length ? ` or end in a known quote asset (${rule.quotes!.join(", ")})` : "";
    return `"${s}" is not a valid ${market} pair: write base and quote${rule.baseLength ? ` as two ${rule.baseLength}-letter codes` : ""} separated by -, / or _${known}`;
  }
  return { base, quote };
}

/**
 * Normalise a provider's spelling of a symbol. `defaultMarket` applies to bare tickers (`PKN`);
 * a suffix in the symbol itself wins over it.
 */
export function normaliseSymbol(raw: string, defaultMarket?: SymbolMarket): SymbolResult {
  let s = raw.trim().toUpperCase();
  if (s === "") return { ok: false, reason: "symbol is empty" };
  let market: SymbolMarket | undefined;
  // `PKN:WSE` and `WSE:PKN` are common in spreadsheets and TradingView exports; Polygon writes
  // `C:EURUSD`. A market suffix on either side wins over a provider prefix (`C:NYSE` is Citi).
  const colon = s.indexOf(":");
  if (colon > 0) {
    const [a, b] = [s.slice(0, colon), s.slice(colon + 1)];
    if (SUFFIXES[a]) [market, s] = [SUFFIXES[a], b];
    else if (SUFFIXES[b]) [market, s] = [SUFFIXES[b], a];
    else if (PROVIDER_PREFIXES[a]) [market, s] = [PROVIDER_PREFIXES[a], b];
    else return { ok: false, reason: `unknown market in symbol "${raw}" (known: ${knownMarketSuffixes()})` };
  }
  const dot = s.lastIndexOf(".");
  if (market === undefined && dot > 0) {
    const suffix = s.slice(dot + 1);
    if (SUFFIXES[suffix]) {
      market = SUFFIXES[suffix];
      s = s.slice(0, dot);
    }
  }
  const mark = market === undefined ? /=[A-Z0-9]{1,8}$/.exec(s)?.[0] : undefined;
  if (mark !== undefined && PROVIDER_SUFFIXES[mark]) [market, s] = [PROVIDER_SUFFIXES[mark], s.slice(0, -mark.length)];
  market ??= defaultMarket;
  if (market === undefined) {
    // `NPN.JO`, `GC=F`: a suffix, but of a market ticksync does not know (yet).
    const suffix = /(\.[A-Z]{2,8}|=[A-Z0-9]{1,8})$/.exec(s)?.[0];
    if (suffix) return { ok: false, reason: `${raw.trim()}: unknown market suffix "${suffix}" (known: ${knownMarketSuffixes()})` };
    return { ok: false, reason: `symbol "${raw}" has no market suffix and no default market is configured` };
  }
  const pairs = PAIRS.get(market);
  if (pairs !== undefined) {
    const pair = pairTicker(s, market, pairs);
    if (typeof pair === "string") return { ok: false, reason: pair };
    const ticker = pair.base + pairs.separator + pair.quote;
    return { ok: true, symbol: `${ticker}.${MARKET_SUFFIX[market]}`, ticker, market };
  }
  const shareClass = SHARE_CLASS.get(market);
  if (shareClass !== undefined) s = s.replace(SHARE_CLASS_MARK, shareClass);
  const pad = PAD_DIGITS.get(market);
  if (pad !== undefined && ALL_DIGITS.test(s)) s = s.replace(LEADING_ZEROS, "").padStart(pad, "0");
  if (!TICKER.test(s)) return { ok: false, reason: `symbol "${raw}" is not a valid ${market} ticker` };
  return { ok: true, symbol: `${s}.${STORED_SUFFIX.get(market)}`, ticker: s, market };
}

/**
 * Market of an already canonical symbol (`PKN.WA` → WSE). A suffix two markets store with is its
 * owner's: `AAPL.US` is NYSE's even when a source named NASDAQ (the stored symbol cannot tell).
 */
export function marketOf(symbol: string): SymbolMarket | undefined {
  const dot = symbol.lastIndexOf(".");
  const suffix = symbol.slice(dot + 1);
  return dot > 0 && Object.hasOwn(SUFFIXES, suffix) ? SUFFIXES[suffix] : undefined;
}

/**
 * A canonical ticker as a provider writes it (`PKN` → Yahoo `PKN.WA`, Stooq `pkn`), or null when
 * the provider has no listing of that market.
 */
export function providerSpelling(provider: string, ticker: string, market: SymbolMarket): string | null {
  const providers = marketInfo(market)?.providers;
  const spelling = providers !== undefined && Object.hasOwn(providers, provider) ? providers[provider] : undefined;
  if (spelling === undefined) return null;
  const pairs = PAIRS.get(market);
  let s = ticker;
  if (pairs !== undefined) {
    const pair = pairTicker(ticker, market, pairs);
    if (typeof pair !== "string") s = pair.base + (spelling.pairSeparator ?? "") + pair.quote;
  } else if (spelling.shareClassSeparator !== undefined) s = ticker.replaceAll("-", spelling.shareClassSeparator);
  if (spelling.stripLeadingZeros && ALL_DIGITS.test(s)) s = s.replace(LEADING_ZEROS, "");
  if (spelling.case === "lower") s = s.toLowerCase();
  return (spelling.prefix ?? "") + s + (spelling.suffix ?? "");
}

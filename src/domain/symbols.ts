// Symbol normalisation. Providers spell one listing many ways: Stooq `pkn.pl`, Yahoo `PKN.WA`,
// a WIG80 spreadsheet `PKN`. ticksync stores one canonical form, `<TICKER>.<MARKET SUFFIX>`
// (`PKN.WA`, `AAPL.US`), so that bars of one listing from any source meet under one key.
// The suffixes, and how each provider spells a ticker, are the markets' data (markets/*.json).
import { MARKETS, isMarket, marketInfo, type Market } from "./markets/index.ts";

export { isMarket };
export type SymbolMarket = Market;

/** Canonical suffix per market: Yahoo's `.WA` for Warsaw, Stooq's `.US` for US listings. */
export const MARKET_SUFFIX: Record<SymbolMarket, string> = Object.fromEntries(MARKETS.map((m) => [m.code, m.symbols.suffix])) as Record<SymbolMarket, string>;

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
      return `.${canonical} (${market}${aliases.length ? `; also ${aliases.map((a) => `.${a}`).join(", ")}` : ""})`;
    })
    .join(", ");
}

export type NormalisedSymbol = { symbol: string; ticker: string; market: SymbolMarket };
export type SymbolResult = ({ ok: true } & NormalisedSymbol) | { ok: false; reason: string };

const TICKER = /^\^?[A-Z0-9][A-Z0-9&_-]{0,19}$/;

/**
 * Normalise a provider's spelling of a symbol. `defaultMarket` applies to bare tickers (`PKN`);
 * a suffix in the symbol itself wins over it.
 */
export function normaliseSymbol(raw: string, defaultMarket?: SymbolMarket): SymbolResult {
  let s = raw.trim().toUpperCase();
  if (s === "") return { ok: false, reason: "symbol is empty" };
  let market: SymbolMarket | undefined;
  // `PKN:WSE` and `WSE:PKN` are common in spreadsheets and TradingView exports.
  const colon = s.indexOf(":");
  if (colon > 0) {
    const [a, b] = [s.slice(0, colon), s.slice(colon + 1)];
    if (SUFFIXES[a]) [market, s] = [SUFFIXES[a], b];
    else if (SUFFIXES[b]) [market, s] = [SUFFIXES[b], a];
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
  market ??= defaultMarket;
  if (market === undefined) {
    // `NPN.JO`, `EURGBP=X`: a suffix, but of a market ticksync does not know (yet).
    const suffix = /(\.[A-Z]{2,8}|=[A-Z0-9]{1,8})$/.exec(s)?.[0];
    if (suffix) return { ok: false, reason: `${raw.trim()}: unknown market suffix "${suffix}" (known: ${knownMarketSuffixes()})` };
    return { ok: false, reason: `symbol "${raw}" has no market suffix and no default market is configured` };
  }
  const shareClass = SHARE_CLASS.get(market);
  if (shareClass !== undefined) s = s.replace(SHARE_CLASS_MARK, shareClass);
  const pad = PAD_DIGITS.get(market);
  if (pad !== undefined && ALL_DIGITS.test(s)) s = s.replace(LEADING_ZEROS, "").padStart(pad, "0");
  if (!TICKER.test(s)) return { ok: false, reason: `symbol "${raw}" is not a valid ${market} ticker` };
  return { ok: true, symbol: `${s}.${MARKET_SUFFIX[market]}`, ticker: s, market };
}

/** Market of an already canonical symbol (`PKN.WA` → WSE). */
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
  let s = spelling.shareClassSeparator === undefined ? ticker : ticker.replaceAll("-", spelling.shareClassSeparator);
  if (spelling.stripLeadingZeros && ALL_DIGITS.test(s)) s = s.replace(LEADING_ZEROS, "");
  if (spelling.case === "lower") s = s.toLowerCase();
  return spelling.suffix === undefined ? s : s + spelling.suffix;
}

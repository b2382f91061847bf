// The registry of markets: one data file per market beside this one (what a file says: schema.ts),
// checked when the process starts. The files are imported statically so `bun build --compile`
// embeds them: the binary needs no data files. Everything else that knows of a market (calendar,
// symbols, config and API choices, messages) reads it from here: a new market is a new file and
// its line in FILES; a file is named after its code in lower case (wse.json).
import * as v from "valibot";
import { MarketFileSchema, phaseProblem, type MarketFile } from "./schema.ts";
import ams from "./ams.json";
import asx from "./asx.json";
import crypto from "./crypto.json";
import fx from "./fx.json";
import hkex from "./hkex.json";
import lse from "./lse.json";
import nasdaq from "./nasdaq.json";
import nyse from "./nyse.json";
import par from "./par.json";
import six from "./six.json";
import tse from "./tse.json";
import tsx from "./tsx.json";
import wse from "./wse.json";
import xetra from "./xetra.json";

/** Every market's file, by code, in the order markets are listed (messages, help, the dashboard). */
const FILES = { WSE: wse, NYSE: nyse, NASDAQ: nasdaq, LSE: lse, XETRA: xetra, PAR: par, AMS: ams, SIX: six, TSX: tsx, ASX: asx, TSE: tse, HKEX: hkex, FX: fx, CRYPTO: crypto };

export type Market = keyof typeof FILES;
export type MarketInfo = MarketFile & { code: Market };

function readMarket(code: string, data: unknown): MarketInfo {
  const file = `src/domain/markets/${code.toLowerCase()}.json`;
  const parsed = v.safeParse(MarketFileSchema, data);
  if (!parsed.success) throw new Error(`${file}: ${v.summarize(parsed.issues)}`);
  if (parsed.output.code !== code) throw new Error(`${file}: code ${JSON.stringify(parsed.output.code)} is not the registry's ${code}`);
  const problem = phaseProblem(parsed.output);
  if (problem !== undefined) throw new Error(`${file}: ${problem}`);
  return parsed.output as MarketInfo;
}

/** The markets, in registry order. */
export const MARKETS: readonly MarketInfo[] = Object.entries(FILES).map(([code, data]) => readMarket(code, data));

// A Map, not an object: a market name from config ("constructor", say) must not hit a prototype.
const BY_CODE = new Map<string, MarketInfo>(MARKETS.map((m) => [m.code, m]));

/** The market codes, in registry order (`["WSE", "NYSE"]`). */
export const MARKET_CODES: readonly Market[] = MARKETS.map((m) => m.code);

export function marketCodes(): readonly Market[] {
  return MARKET_CODES;
}

export function isMarket(value: string): value is Market {
  return BY_CODE.has(value);
}

/** The market of a code, or undefined for a name the registry does not have. */
export function marketInfo(code: string): MarketInfo | undefined {
  return BY_CODE.get(code);
}

/** `A`, `A or B`, `A, B or C`: the form every "expected …" message uses. */
function orList(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`;
}

/** The markets as a message offers them: `WSE or NYSE`; quoted, `"WSE" or "NYSE"`. */
export function marketChoices(quoted = false): string {
  return orList(MARKET_CODES.map((c) => (quoted ? JSON.stringify(c) : c)));
}

/** A market field of config or of an API query: one of the registry's codes. */
export const MarketSchema = v.picklist(MARKET_CODES, `expected ${marketChoices()}`);

/**
 * Why the markets' symbols cannot be read, or undefined: a suffix or alias must name one market
 * (`.US` cannot be two exchanges), and a market storing its symbols with another's suffix
 * (`storedAs`: NASDAQ's AAPL is AAPL.US) must name a market that stores its own.
 */
export function symbolsProblem(markets: readonly MarketFile[]): string | undefined {
  const codes = new Map(markets.map((m) => [m.code, m]));
  for (const m of markets) {
    const target = m.symbols.storedAs;
    if (target === undefined) continue;
    const other = codes.get(target);
    if (other === undefined || other.code === m.code || other.symbols.storedAs !== undefined) {
      return `${m.code}: symbols.storedAs ${JSON.stringify(target)} is not another market that stores its own symbols`;
    }
  }
  const owners = new Map<string, string>();
  for (const m of markets) {
    for (const s of [m.symbols.suffix, ...m.symbols.aliases]) {
      const owner = owners.get(s);
      if (owner !== undefined) return `suffix ${s} of ${m.code} is already ${owner}'s`;
      owners.set(s, m.code);
    }
  }
  return undefined;
}

const symbolsBroken = symbolsProblem(MARKETS);
if (symbolsBroken !== undefined) throw new Error(`src/domain/markets: ${symbolsBroken}`);

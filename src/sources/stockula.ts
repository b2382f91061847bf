// A Stockula database (the SQLite file of the Python ETL ticksync replaces), as its SQLModel
// models define it: `price_history` (symbol, date, open_price … close_price, volume, interval:
// several intervals in one table), `dividends` (symbol, date, amount), `splits` (symbol, date,
// ratio), `stocks` (symbol, name, sector, industry, market_cap, exchange, currency) and
// `stock_info` (symbol, info_json: yfinance's info). Bars are read by the sqlite source, one
// filtered stream per interval; this module plans those and reads the rest into corporate actions
// and instruments, a page at a time. See docs/coming-from.md (Stockula).
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import type { Interval } from "../domain/bar.ts";
import type { CorporateAction, Instrument } from "../domain/actions.ts";
import { isinProblem } from "../domain/isin.ts";
import { normaliseSymbol, type SymbolMarket } from "../domain/symbols.ts";
import { floorUtcDay, parseTimestamp } from "../domain/time.ts";
import type { SqliteSourceConfig } from "./sqlite.ts";
import { SourceError } from "./types.ts";

/** Stockula's interval values (yfinance's spelling) → ticksync's; 90m, 5d and 3mo have no ticksync interval. */
export const STOCKULA_INTERVALS: Readonly<Record<string, Interval>> = {
  "1m": "1m",
  "2m": "2m",
  "5m": "5m",
  "15m": "15m",
  "30m": "30m",
  "60m": "1h",
  "1h": "1h",
  "4h": "4h",
  "1d": "1d",
  "1wk": "1w",
  "1w": "1w",
  "1mo": "1mo",
};

/** Stockula's price_history columns for each bar field. */
export const STOCKULA_PRICE_COLUMNS = { symbol: "symbol", ts: "date", open: "open_price", high: "high_price", low: "low_price", close: "close_price", volume: "volume" } as const;

/** More distinct intervals than this is not a Stockula table: the plan stops instead of listing them all. */
const MAX_INTERVALS = 64;
/** Rows of dividends, splits or stocks per page. */
export const REFERENCE_PAGE = 1000;
/** yfinance info JSON past this is not read (a Stockula row is a few KiB). */
const MAX_INFO_BYTES = 1 << 20;

export type StockulaInterval = {
  /** The value in price_history.interval (null: rows without one). */
  value: string | null;
  rows: number;
  interval: Interval | null;
  /** Why these rows are not imported as bars. */
  skipped: string | null;
};

export type ReferenceRejection = { table: "dividends" | "splits" | "stocks"; row: string; reason: string };

function open(path: string): Database {
  if (!existsSync(path)) throw new SourceError(`Stockula database not found: ${path}`);
  return new Database(path, { readonly: true });
}

function tables(db: Database): Set<string> {
  return new Set((db.query("SELECT lower(name) AS name FROM sqlite_master WHERE type IN ('table', 'view')").all() as { name: string }[]).map((r) => r.name));
}

/**
 * price_history's intervals with their row counts and what becomes of each. Stockula keys rows by
 * (symbol, date, interval) with `date` a DATE: its intraday rows carry no time of day, and
 * stamping them 00:00 would make bars that never were, so an intraday interval with date-only
 * rows is skipped with that reason.
 */
export function stockulaIntervals(path: string): StockulaInterval[] {
  const db = open(path);
  try {
    if (!tables(db).has("price_history")) throw new SourceError(`${path} has no price_history table: not a Stockula database`);
    const rows = db
      .query(`SELECT interval AS value, count(*) AS n, sum(length(CAST(date AS TEXT)) <= 10) AS dateOnly FROM price_history GROUP BY interval ORDER BY interval LIMIT ${MAX_INTERVALS + 1}`)
      .all() as { value: unknown; n: number; dateOnly: number | null }[];
    if (rows.length > MAX_INTERVALS) throw new SourceError(`price_history has more than ${MAX_INTERVALS} distinct intervals: not a Stockula table`);
    return rows.map((r) => {
      const value = r.value === null ? null : String(r.value);
      const interval = value === null ? null : (STOCKULA_INTERVALS[value] ?? null);
      const skipped =
        value === null
          ? "rows without an interval"
          : interval === null
            ? `interval ${JSON.stringify(value)} has no ticksync interval (${Object.keys(STOCKULA_INTERVALS).join(", ")})`
            : !["1d", "1w", "1mo"].includes(interval) && (r.dateOnly ?? 0) > 0
              ? `${r.dateOnly} of its rows have a date without a time of day (Stockula keys price_history by date), not an intraday bar's open`
              : null;
      return { value, rows: r.n, interval, skipped };
    });
  } finally {
    db.close();
  }
}

/** The sqlite source reading one interval of price_history into its own series. */
export function stockulaPriceSource(path: string, value: string, interval: Interval, market: SymbolMarket): SqliteSourceConfig {
  return {
    type: "sqlite",
    path,
    table: "price_history",
    where: { interval: value },
    columns: { ...STOCKULA_PRICE_COLUMNS },
    market,
    interval,
    tsFormat: "auto",
  };
}

/** A Stockula date (DATE text, or a timestamp) as 00:00Z of its day, or null. */
function day(x: unknown): number | null {
  const t = parseTimestamp(x);
  return t === null ? null : floorUtcDay(t);
}

/** A split ratio (2.0 for 2:1, 0.5 for 1:2, 1.5 for 3:2) as the smallest whole numerator/denominator, else ratio/1. */
export function splitFraction(ratio: number): { numerator: number; denominator: number } {
  for (let d = 1; d <= 1000; d++) {
    const n = Math.round(ratio * d);
    if (n > 0 && Math.abs(n / d - ratio) <= 1e-9 * ratio) return { numerator: n, denominator: d };
  }
  return { numerator: ratio, denominator: 1 };
}

const text = (x: unknown) => (typeof x === "string" && x.trim() !== "" ? x.trim() : null);

type Page<T> = { items: T[]; rejected: ReferenceRejection[] };

/** Dividends and splits as corporate actions under `source`, a page at a time (rowid order). */
export async function* stockulaActions(path: string, source: string, market: SymbolMarket): AsyncIterable<Page<CorporateAction>> {
  const db = open(path);
  try {
    const have = tables(db);
    const currency = have.has("stocks") ? "(SELECT s.currency FROM stocks s WHERE s.symbol = t.symbol)" : "NULL";
    for (const table of ["dividends", "splits"] as const) {
      if (!have.has(table)) continue;
      const value = table === "dividends" ? "amount" : "ratio";
      const stmt = db.query(`SELECT t.rowid AS id, t.symbol, t.date, t.${value} AS value, ${currency} AS currency FROM ${table} t WHERE t.rowid > ? ORDER BY t.rowid LIMIT ?`);
      let last = 0;
      for (;;) {
        const rows = stmt.all(last, REFERENCE_PAGE) as { id: number; symbol: unknown; date: unknown; value: unknown; currency: unknown }[];
        if (rows.length === 0) break;
        const page: Page<CorporateAction> = { items: [], rejected: [] };
        for (const r of rows) {
          last = r.id;
          const where = `${table} rowid ${r.id}`;
          const reject = (reason: string) => page.rejected.push({ table, row: where, reason });
          const sym = normaliseSymbol(String(r.symbol ?? ""), market);
          if (!sym.ok) {
            reject(sym.reason);
            continue;
          }
          const exDate = day(r.date);
          if (exDate === null) {
            reject(`${sym.symbol}: date ${JSON.stringify(r.date)} is not a date`);
            continue;
          }
          const v = typeof r.value === "number" ? r.value : NaN;
          if (!(v > 0 && Number.isFinite(v))) {
            reject(`${sym.symbol}: ${value} ${JSON.stringify(r.value)} is not a positive number`);
            continue;
          }
          const base = { source, symbol: sym.symbol, exDate, payDate: null };
          page.items.push(
            table === "dividends"
              ? { ...base, type: "dividend", amount: v, numerator: null, denominator: null, currency: text(r.currency)?.toUpperCase() ?? null }
              : { ...base, type: "split", amount: null, ...splitFraction(v), currency: null },
          );
        }
        yield page;
        if (rows.length < REFERENCE_PAGE) break;
      }
    }
  } finally {
    db.close();
  }
}

/** `stocks` (with `stock_info`'s quoteType and ISIN where it has them) as instruments under `source`, a page at a time. */
export async function* stockulaInstruments(path: string, source: string, market: SymbolMarket): AsyncIterable<Page<Instrument>> {
  const db = open(path);
  try {
    const have = tables(db);
    if (!have.has("stocks")) return;
    const info = have.has("stock_info") ? `(SELECT CASE WHEN length(i.info_json) <= ${MAX_INFO_BYTES} THEN i.info_json END FROM stock_info i WHERE i.symbol = s.symbol)` : "NULL";
    const stmt = db.query(`SELECT s.rowid AS id, s.symbol, s.name, s.sector, s.industry, s.exchange, s.currency, ${info} AS info FROM stocks s WHERE s.rowid > ? ORDER BY s.rowid LIMIT ?`);
    let last = 0;
    for (;;) {
      const rows = stmt.all(last, REFERENCE_PAGE) as Record<string, unknown>[];
      if (rows.length === 0) break;
      const page: Page<Instrument> = { items: [], rejected: [] };
      for (const r of rows) {
        last = r.id as number;
        const sym = normaliseSymbol(String(r.symbol ?? ""), market);
        if (!sym.ok) {
          page.rejected.push({ table: "stocks", row: `stocks rowid ${last}`, reason: sym.reason });
          continue;
        }
        let extra: Record<string, unknown> = {};
        try {
          const parsed = typeof r.info === "string" ? (JSON.parse(r.info) as unknown) : null;
          if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) extra = parsed as Record<string, unknown>;
        } catch {
          // A broken info_json costs the fields it would add, not the instrument.
        }
        const isin = text(extra.isin)?.toUpperCase() ?? null;
        page.items.push({
          source,
          symbol: sym.symbol,
          name: text(r.name) ?? text(extra.longName) ?? text(extra.shortName),
          exchange: text(r.exchange) ?? text(extra.exchange),
          currency: (text(r.currency) ?? text(extra.currency))?.toUpperCase() ?? null,
          type: text(extra.quoteType),
          sector: text(r.sector) ?? text(extra.sector),
          industry: text(r.industry) ?? text(extra.industry),
          isin: isin !== null && isinProblem(isin) === null ? isin : null,
        });
      }
      yield page;
      if (rows.length < REFERENCE_PAGE) break;
    }
  } finally {
    db.close();
  }
}

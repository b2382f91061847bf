// Reference data: instruments and corporate actions (splits, dividends), per source.
import type { CorporateAction, Instrument } from "../../domain/actions.ts";
import type { PgContext } from "./context.ts";
import { ms } from "./sql.ts";

export async function upsertInstruments({ sql }: PgContext, list: Instrument[]): Promise<void> {
  if (list.length === 0) return;
  const rows = list.map((i) => ({ source: i.source, symbol: i.symbol, name: i.name, exchange: i.exchange, currency: i.currency, type: i.type, sector: i.sector, industry: i.industry, isin: i.isin }));
  await sql`
    INSERT INTO instruments ${sql(rows, "source", "symbol", "name", "exchange", "currency", "type", "sector", "industry", "isin")}
    ON CONFLICT (source, symbol) DO UPDATE SET name = excluded.name, exchange = excluded.exchange, currency = excluded.currency,
      type = excluded.type, sector = excluded.sector, industry = excluded.industry, isin = excluded.isin, updated_at = now()`;
}

export async function listInstruments({ sql }: PgContext, opts?: { symbol?: string }): Promise<Instrument[]> {
  const rows = await sql`
    SELECT * FROM instruments WHERE (${opts?.symbol ?? null}::text IS NULL OR symbol = ${opts?.symbol ?? null}) ORDER BY symbol, source`;
  return rows.map((r) => ({ source: r.source, symbol: r.symbol, name: r.name, exchange: r.exchange, currency: r.currency, type: r.type, sector: r.sector, industry: r.industry, isin: r.isin, updatedAt: ms(r.updated_at)! }));
}

export async function upsertActions({ sql }: PgContext, list: CorporateAction[]): Promise<number> {
  if (list.length === 0) return 0;
  // One row per key in a statement (ON CONFLICT cannot touch a row twice); the last one wins.
  const byKey = new Map(list.map((a) => [`${a.symbol}|${a.type}|${a.exDate}|${a.source}`, a]));
  const rows = [...byKey.values()].map((a) => ({
    symbol: a.symbol, type: a.type, ex_date: new Date(a.exDate), source: a.source, numerator: a.numerator, denominator: a.denominator,
    amount: a.amount, currency: a.currency, pay_date: a.payDate === null ? null : new Date(a.payDate),
  }));
  // Rewrites a record only when a value differs, so re-reading the same events changes nothing.
  const r = await sql`
    INSERT INTO actions ${sql(rows, "symbol", "type", "ex_date", "source", "numerator", "denominator", "amount", "currency", "pay_date")}
    ON CONFLICT (symbol, type, ex_date, source) DO UPDATE SET numerator = excluded.numerator, denominator = excluded.denominator,
      amount = excluded.amount, currency = excluded.currency, pay_date = excluded.pay_date, updated_at = now()
    WHERE (actions.numerator, actions.denominator, actions.amount, actions.currency, actions.pay_date)
      IS DISTINCT FROM (excluded.numerator, excluded.denominator, excluded.amount, excluded.currency, excluded.pay_date)`;
  return r.count;
}

export async function listActions({ sql }: PgContext, symbol: string): Promise<CorporateAction[]> {
  const rows = await sql`SELECT * FROM actions WHERE symbol = ${symbol} ORDER BY ex_date, type, source`;
  return rows.map((r) => ({
    source: r.source, symbol: r.symbol, type: r.type, exDate: ms(r.ex_date)!, numerator: r.numerator, denominator: r.denominator,
    amount: r.amount, currency: r.currency, payDate: ms(r.pay_date), updatedAt: ms(r.updated_at)!,
  }));
}

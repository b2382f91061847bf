// The SQLite store's optional parts: instruments and corporate actions (reference data), and
// retention with the no-data sessions gapfill records.
import type { CorporateAction, Instrument } from "../../domain/actions.ts";
import type { Interval } from "../../domain/bar.ts";
import type { NoDataSession } from "../types.ts";
import type { SqliteContext } from "./db.ts";

export async function upsertInstruments({ db }: SqliteContext, list: Instrument[]): Promise<void> {
  const st = db.prepare(
    `INSERT INTO instruments (source, symbol, name, exchange, currency, type, sector, industry, isin, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)
     ON CONFLICT (source, symbol) DO UPDATE SET name = excluded.name, exchange = excluded.exchange, currency = excluded.currency,
       type = excluded.type, sector = excluded.sector, industry = excluded.industry, isin = excluded.isin, updated_at = excluded.updated_at`,
  );
  const now = Date.now();
  db.transaction(() => {
    for (const i of list) st.run(i.source, i.symbol, i.name, i.exchange, i.currency, i.type, i.sector, i.industry, i.isin, now);
  }).immediate();
}

export async function listInstruments({ db }: SqliteContext, opts?: { symbol?: string }): Promise<Instrument[]> {
  const rows = (
    opts?.symbol
      ? db.query("SELECT * FROM instruments WHERE symbol = ? ORDER BY symbol, source").all(opts.symbol)
      : db.query("SELECT * FROM instruments ORDER BY symbol, source").all()
  ) as any[];
  return rows.map((r) => ({ source: r.source, symbol: r.symbol, name: r.name, exchange: r.exchange, currency: r.currency, type: r.type, sector: r.sector, industry: r.industry, isin: r.isin, updatedAt: r.updated_at }));
}

export async function upsertActions({ db }: SqliteContext, list: CorporateAction[]): Promise<number> {
  // Rewrites a record only when a value differs, so re-reading the same events changes nothing.
  const st = db.prepare(
    `INSERT INTO actions (symbol, type, ex_date, source, numerator, denominator, amount, currency, pay_date, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)
     ON CONFLICT (symbol, type, ex_date, source) DO UPDATE SET numerator = ?5, denominator = ?6, amount = ?7, currency = ?8, pay_date = ?9, updated_at = ?10
     WHERE numerator IS NOT ?5 OR denominator IS NOT ?6 OR amount IS NOT ?7 OR currency IS NOT ?8 OR pay_date IS NOT ?9`,
  );
  const now = Date.now();
  let n = 0;
  db.transaction(() => {
    for (const a of list) n += st.run(a.symbol, a.type, a.exDate, a.source, a.numerator, a.denominator, a.amount, a.currency, a.payDate, now).changes;
  }).immediate();
  return n;
}

export async function listActions({ db }: SqliteContext, symbol: string): Promise<CorporateAction[]> {
  const rows = db.query("SELECT * FROM actions WHERE symbol = ? ORDER BY ex_date, type, source").all(symbol) as any[];
  return rows.map((r) => ({
    source: r.source, symbol: r.symbol, type: r.type, exDate: r.ex_date, numerator: r.numerator, denominator: r.denominator,
    amount: r.amount, currency: r.currency, payDate: r.pay_date, updatedAt: r.updated_at,
  }));
}

export async function deleteBars({ db }: SqliteContext, { interval, before }: { interval: Interval; before: number }): Promise<number> {
  // Series by series, so each one's first ts and count stay exact; an emptied series goes.
  let total = 0;
  db.transaction(() => {
    const series = db.query("SELECT source, symbol, bars FROM series WHERE interval = ? AND first_ts < ?").all(interval, before) as { source: string; symbol: string; bars: number }[];
    for (const se of series) {
      const n = db.query("DELETE FROM bars WHERE symbol = ? AND interval = ? AND source = ? AND ts < ?").run(se.symbol, interval, se.source, before).changes;
      db.query("DELETE FROM bar_extras WHERE symbol = ? AND interval = ? AND source = ? AND ts < ?").run(se.symbol, interval, se.source, before);
      total += n;
      const first = db.query("SELECT min(ts) AS t FROM bars WHERE symbol = ? AND interval = ? AND source = ?").get(se.symbol, interval, se.source) as { t: number | null };
      if (first.t === null) db.query("DELETE FROM series WHERE source = ? AND symbol = ? AND interval = ?").run(se.source, se.symbol, interval);
      else db.query("UPDATE series SET first_ts = ?, bars = bars - ? WHERE source = ? AND symbol = ? AND interval = ?").run(first.t, n, se.source, se.symbol, interval);
    }
  }).immediate();
  return total;
}

export async function markNoData({ db }: SqliteContext, list: NoDataSession[]): Promise<number> {
  const st = db.prepare("INSERT INTO no_data (source, symbol, interval, session, recorded_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING");
  const now = Date.now();
  let n = 0;
  db.transaction(() => {
    for (const d of list) n += st.run(d.source, d.symbol, d.interval, d.session, now).changes;
  }).immediate();
  return n;
}

export async function listNoData({ db }: SqliteContext, opts?: { source?: string }): Promise<NoDataSession[]> {
  const rows = db.query("SELECT * FROM no_data WHERE (?1 IS NULL OR source = ?1) ORDER BY source, symbol, interval, session").all(opts?.source ?? null) as any[];
  return rows.map((r) => ({ source: r.source, symbol: r.symbol, interval: r.interval, session: r.session, recordedAt: r.recorded_at }));
}

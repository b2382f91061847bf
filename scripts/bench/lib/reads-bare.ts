// The reads bench's baseline: a bare Bun.serve answering /api/bars (daily pages and weekly pages
// rolled up from the daily bars) and /api/indicators (sma, rsi) straight from bun:sqlite or the
// `postgres` package, with the JSON ticksync returns for the same request, built the plain way
// (an object per bar, JSON.stringify). No validation, no ETag, no middleware: what the read costs.
// Weekly bars are aggregated here from the daily rows, as ticksync does on read (ISO weeks, the
// first session's ts, open first, high max, low min, close last, volume summed).
//   bun scripts/bench/lib/reads-bare.ts sqlite:/path/db|postgres://...?schema=x PORT
import { Database } from "bun:sqlite";
import postgres from "postgres";

const [storeUrl, portArg] = process.argv.slice(2);
if (!storeUrl || !portArg) throw new Error("usage: reads-bare.ts STORE_URL PORT");

type Row = { source: string; symbol: string; interval: string; ts: number; open: number; high: number; low: number; close: number; volume: number; adj_close: number | null; turnover: number | null; trades: number | null };
type Read = (symbol: string, interval: string, limit: number) => Promise<Row[]>;

function sqliteReader(path: string): Read {
  const db = new Database(path, { readonly: true });
  const stmt = db.query(
    "SELECT source, symbol, interval, ts, open, high, low, close, volume, adj_close, turnover, trades FROM bars WHERE symbol = ?1 AND interval = ?2 ORDER BY ts, source LIMIT ?3",
  );
  return async (symbol, interval, limit) => stmt.all(symbol, interval, limit) as Row[];
}

function postgresReader(url: string): Read {
  const u = new URL(url);
  const schema = u.searchParams.get("schema") ?? "public";
  u.searchParams.delete("schema");
  const sql = postgres(u.toString(), { max: 8, connection: { search_path: schema }, onnotice: () => {} });
  return async (symbol, interval, limit) =>
    (await sql`
      SELECT s.source, s.symbol, s.interval, (extract(epoch FROM b.ts) * 1000)::float8 AS ts, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades
      FROM bars b JOIN series s ON s.id = b.series_id
      WHERE s.symbol = ${symbol} AND s.interval = ${interval}
      ORDER BY b.ts, s.source LIMIT ${limit}`) as unknown as Row[];
}

const read = storeUrl.startsWith("sqlite:") ? sqliteReader(storeUrl.slice("sqlite:".length)) : postgresReader(storeUrl);

function barJson(r: Row, interval: string) {
  return {
    source: r.source,
    symbol: r.symbol,
    interval,
    ts: new Date(r.ts).toISOString(),
    open: r.open,
    high: r.high,
    low: r.low,
    close: r.close,
    volume: r.volume,
    ...(r.adj_close != null ? { adjClose: r.adj_close } : {}),
    ...(r.turnover != null ? { turnover: r.turnover } : {}),
    ...(r.trades != null ? { trades: Number(r.trades) } : {}),
  };
}

const cursor = (r: Row) => Buffer.from(JSON.stringify({ ts: r.ts, source: r.source })).toString("base64url");

/** The ISO week's Monday, epoch ms, of a daily bar's ts. */
const mondayOf = (ts: number) => ts - ((new Date(ts).getUTCDay() + 6) % 7) * 86_400_000;

/** Daily rows (one source, ts order) to weekly rows. */
function weekly(rows: Row[]): Row[] {
  const out: Row[] = [];
  let cur: Row | null = null;
  let week = NaN;
  for (const r of rows) {
    const m = mondayOf(r.ts);
    if (cur && m === week) {
      if (r.high > cur.high) cur.high = r.high;
      if (r.low < cur.low) cur.low = r.low;
      cur.close = r.close;
      cur.volume += r.volume;
      cur.adj_close = r.adj_close;
      cur.turnover = cur.turnover != null && r.turnover != null ? cur.turnover + r.turnover : null;
      cur.trades = cur.trades != null && r.trades != null ? Number(cur.trades) + Number(r.trades) : null;
    } else {
      cur = { ...r, interval: "1w" };
      out.push(cur);
      week = m;
    }
  }
  return out;
}

/** As src/domain/indicators.ts defines them (the same arithmetic in the same order). */
function sma(closes: number[], n: number): (number | null)[] {
  let sum = 0;
  return closes.map((c, i) => {
    sum += c;
    if (i >= n) sum -= closes[i - n]!;
    return i >= n - 1 ? sum / n : null;
  });
}

function rsi(closes: number[], n: number): (number | null)[] {
  const out: (number | null)[] = closes.length > 0 ? [null] : [];
  let gain = 0;
  let loss = 0;
  for (let i = 1; i < closes.length; i++) {
    const d = closes[i]! - closes[i - 1]!;
    const g = d > 0 ? d : 0;
    const l = d < 0 ? -d : 0;
    if (i <= n) {
      gain += g;
      loss += l;
      if (i < n) {
        out.push(null);
        continue;
      }
      gain /= n;
      loss /= n;
    } else {
      gain = (gain * (n - 1) + g) / n;
      loss = (loss * (n - 1) + l) / n;
    }
    out.push(loss === 0 ? (gain === 0 ? 50 : 100) : 100 - 100 / (1 + gain / loss));
  }
  return out;
}

const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });

Bun.serve({
  hostname: "127.0.0.1",
  port: Number(portArg),
  async fetch(req) {
    const url = new URL(req.url);
    const p = url.searchParams;
    const symbol = p.get("symbol") ?? "";
    const interval = p.get("interval") ?? "1d";
    const limit = Number(p.get("limit") ?? 1000);
    if (url.pathname === "/api/bars" && interval === "1d") {
      const rows = await read(symbol, "1d", limit + 1);
      const page = rows.slice(0, limit);
      const next = rows.length > limit ? cursor(page[page.length - 1]!) : null;
      return json({ symbol, interval, data: page.map((r) => barJson(r, interval)), next });
    }
    if (url.pathname === "/api/bars" && interval === "1w") {
      const all = weekly(await read(symbol, "1d", 1_000_000));
      const page = all.slice(0, limit);
      const next = all.length > limit ? cursor(page[page.length - 1]!) : null;
      return json({ symbol, interval, rolledUpFrom: "1d", excluded: 0, data: page.map((r) => barJson(r, interval)), next });
    }
    if (url.pathname === "/api/indicators") {
      const rows = await read(symbol, interval, limit + 1);
      const page = rows.slice(0, limit);
      const closes = page.map((r) => r.close);
      const s = sma(closes, 20);
      const r = rsi(closes, 14);
      const data = page.map((b, i) => ({ ts: new Date(b.ts).toISOString(), close: b.close, "sma:20": s[i] ?? null, "rsi:14": r[i] ?? null }));
      const next = rows.length > limit ? cursor(page[page.length - 1]!) : null;
      return json({ symbol, interval, source: page[0]?.source ?? null, set: ["sma:20", "rsi:14"], data, next });
    }
    return new Response("not found", { status: 404 });
  },
});
console.log("ready");

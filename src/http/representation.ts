// How a bar page goes out: its format (json, ndjson, csv, arrow), a strong ETag over the exact body
// bytes with 304 on If-None-Match, Cache-Control by whether the page is made only of closed
// sessions, and compression negotiated by Accept-Encoding (zstd, br, gzip). Our own rather than
// hono/compress, which offers gzip and deflate only, and hono/etag, which clones and re-reads the
// body stream: here the body is already one string (or, for arrow, one byte array) in hand.
import type { Context } from "hono";
import { brotliCompressSync, constants as zlibConstants, zstdCompressSync } from "node:zlib";
import { INTERVAL_MS, isoTs, type Bar, type Interval } from "../domain/bar.ts";
import { tradeDate, tradeDayStart } from "../domain/calendar.ts";
import { marketOf } from "../domain/symbols.ts";
import { ARROW_STREAM_TYPE } from "../domain/arrow-bars.ts";

export const BAR_FORMATS = ["json", "ndjson", "csv", "arrow"] as const;
export type BarFormat = (typeof BAR_FORMATS)[number];
export const CONTENT_TYPES: Record<BarFormat, string> = {
  json: "application/json",
  ndjson: "application/x-ndjson; charset=utf-8",
  csv: "text/csv; charset=utf-8; header=present",
  arrow: ARROW_STREAM_TYPE,
};

/** Bodies smaller than this go out as they are: compressing them saves less than it costs. */
export const COMPRESS_MIN_BYTES = 1024;
/** How long a shared or private cache may keep a page made only of closed sessions, s. */
export const CLOSED_MAX_AGE_S = 3600;

type Encoding = "zstd" | "br" | "gzip";
/** Preferred first at equal q: zstd is the fastest at a ratio near brotli's, gzip is everywhere. */
const ENCODINGS: readonly Encoding[] = ["zstd", "br", "gzip"];

/** The encoding to send for an Accept-Encoding header (RFC 9110 12.5.3), or null for identity. */
export function negotiateEncoding(header: string | undefined): Encoding | null {
  if (!header) return null;
  const q = new Map<string, number>();
  for (const part of header.slice(0, 1000).split(",")) {
    const [name, ...params] = part.trim().toLowerCase().split(";");
    if (!name) continue;
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const value = qp ? Number(qp.slice(2)) : 1;
    q.set(name, Number.isFinite(value) ? value : 0);
  }
  let best: Encoding | null = null;
  let bestQ = 0;
  for (const e of ENCODINGS) {
    const v = q.get(e) ?? q.get("*") ?? 0;
    if (v > bestQ) [best, bestQ] = [e, v];
  }
  return best;
}

function encode(bytes: Uint8Array, e: Encoding): Uint8Array {
  // Quality 4 / level 3 / level 6: fast settings for bodies made per request (brotli's default 11 is for static files).
  if (e === "br") return brotliCompressSync(bytes, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: bytes.length } });
  if (e === "zstd") return zstdCompressSync(bytes);
  return Bun.gzipSync(bytes as Uint8Array<ArrayBuffer>, { level: 6 });
}

/** The tags an If-None-Match header names, weak prefix and encoding suffix taken off. */
function matches(header: string, hash: string): boolean {
  if (header.trim() === "*") return true;
  for (const m of header.slice(0, 4000).matchAll(/"([^"]*)"/g)) if (m[1]!.replace(/-(?:zstd|br|gzip)$/, "") === hash) return true;
  return false;
}

/** When a bar starting at `ts` ends: a calendar month for 1mo (January's 31 days, not INTERVAL_MS's 30). */
function barEnd(ts: number, interval: Interval): number {
  if (interval !== "1mo") return ts + INTERVAL_MS[interval];
  const d = new Date(ts);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/**
 * A page is closed when no later write in the normal course can change its bytes: every bar in
 * it ends at or before the start of the symbol's current trade day, and the window it was read
 * from ends there too (it is full, `next` set, or `to` lies before that start). Symbols of no
 * known market are never closed. Repairs can still rewrite closed bars: hence a max-age, not
 * immutable, and the ETag that changes with the bytes.
 */
export function pageClosed(symbol: string, interval: Interval, bars: readonly Bar[], full: boolean, to: number | undefined, now: number): boolean {
  return pageClosedAt(symbol, interval, bars[bars.length - 1]?.ts, full, to, now);
}

/** pageClosed by the ts of the page's last bar (undefined: an empty page). */
export function pageClosedAt(symbol: string, interval: Interval, lastTs: number | undefined, full: boolean, to: number | undefined, now: number): boolean {
  const market = marketOf(symbol);
  if (market === undefined) return false;
  const horizon = tradeDayStart(market, tradeDate(market, now));
  if (lastTs !== undefined && barEnd(lastTs, interval) > horizon) return false;
  return full || (to !== undefined && to < horizon);
}

/**
 * Sends a bar page's body: ETag (xxHash3 of the uncompressed bytes and their length; the encoding is a
 * suffix, so each representation's tag is its own), 304 when If-None-Match names it,
 * Cache-Control (`privateCache`: reads need a token, so no shared cache may keep the page).
 */
export function sendPage(c: Context, body: string | Uint8Array, format: BarFormat, cache: { closed: boolean; privateCache: boolean }): Response {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  // xxHash3-64, not a cryptographic hash: a tag only has to differ between versions of one URL's
  // page (a chance collision 2^-64 per pair), and SHA-1 cost 0.08 ms a 1,000-bar page, 30 times this.
  const hash = `${bytes.length.toString(36)}-${Bun.hash.xxHash3(bytes).toString(36)}`;
  const encoding = bytes.length >= COMPRESS_MIN_BYTES ? negotiateEncoding(c.req.header("accept-encoding")) : null;
  const scope = cache.privateCache ? "private" : "public";
  c.header("Cache-Control", cache.closed ? `${scope}, max-age=${CLOSED_MAX_AGE_S}` : cache.privateCache ? "private, no-cache" : "no-cache");
  c.header("Vary", "Accept-Encoding");
  c.header("ETag", `"${hash}${encoding ? `-${encoding}` : ""}"`);
  const ifNoneMatch = c.req.header("if-none-match");
  if (ifNoneMatch !== undefined && matches(ifNoneMatch, hash)) return c.body(null, 304);
  c.header("Content-Type", CONTENT_TYPES[format]);
  if (!encoding) return c.body(bytes as Uint8Array<ArrayBuffer>, 200);
  c.header("Content-Encoding", encoding);
  return c.body(encode(bytes, encoding) as Uint8Array<ArrayBuffer>, 200);
}

const CSV_HEADER = "source,symbol,interval,ts,open,high,low,close,volume,adjClose,turnover,trades\r\n";
/** RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. */
const csvField = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
const opt = (n: number | null | undefined) => (n == null ? "" : String(n));

/** The bars as CSV (header, CRLF rows), the JSON answer's fields, written straight from the bars. */
export function barsCsv(bars: readonly Bar[]): string {
  let out = CSV_HEADER;
  for (const b of bars)
    out += `${csvField(b.source)},${csvField(b.symbol)},${b.interval},${isoTs(b.ts)},${b.open},${b.high},${b.low},${b.close},${b.volume},${opt(b.adjClose)},${opt(b.turnover)},${opt(b.trades)}\r\n`;
  return out;
}

/** The bars as NDJSON, one barJson object a line, written straight from the bars (no object per bar). */
export function barsNdjson(bars: readonly Bar[]): string {
  let out = "";
  for (const b of bars) {
    out += `{"source":${JSON.stringify(b.source)},"symbol":${JSON.stringify(b.symbol)},"interval":"${b.interval}","ts":"${isoTs(b.ts)}","open":${b.open},"high":${b.high},"low":${b.low},"close":${b.close},"volume":${b.volume}`;
    if (b.adjClose != null) out += `,"adjClose":${b.adjClose}`;
    if (b.turnover != null) out += `,"turnover":${b.turnover}`;
    if (b.trades != null) out += `,"trades":${b.trades}`;
    out += "}\n";
  }
  return out;
}

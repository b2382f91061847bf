// ILP (InfluxDB line protocol) text for the QuestDB store's writes, built as bytes in place: the
// escapes of tags and strings, and a bar's line with its numbers written digit by digit. This is
// the hot path of a load: no string per line or number, no allocation per row.

/**
 * ILP tag values: commas, spaces and equals signs are escaped. A line break cannot be escaped in a
 * tag (it ends the line, and the rest would be read as another line), so it is refused.
 */
export function tag(s: string): string {
  if (/[\r\n]/.test(s)) throw new Error(`QuestDB's line protocol cannot carry a line break in a tag value: ${JSON.stringify(s.slice(0, 80))}`);
  return s.replace(/[ ,=\\]/g, (c) => `\\${c}`);
}
/** ILP string field values: quoted, with quotes, backslashes and newlines escaped. */
export const str = (s: string) => `"${s.replace(/["\\\n]/g, (c) => `\\${c}`)}"`;
/** ILP timestamp field (microseconds) from epoch ms. */
export const micros = (t: number) => `${Math.round(t * 1000)}t`;

/**
 * Lines per write: one /write request, so one QuestDB transaction, ends at the first batch that
 * brings it to this many lines (a batch is never split). Each transaction makes QuestDB merge its
 * rows into every partition they touch (all months of a series' history, for a bulk file), so
 * fewer, larger transactions cost it far less work. The request's body is streamed in chunks
 * of ILP_CHUNK_LINES, so its bars cost no memory; its batches' journal rows wait for its end
 * (about 21 bytes a bar: src/stores/questdb/queue.ts).
 */
export const ILP_LINES_PER_REQUEST = 2_500_000;
/** Lines per chunk of a write's streamed body: what this process holds of a write at a time (about 3.5 MB of daily bars; chunks of 100,000 lines cost 130 MiB more peak RSS at 5,000,000 bars, no speed). */
export const ILP_CHUNK_LINES = 25_000;

/**
 * ILP text built as bytes in place: numbers are written digit by digit, the rest is encoded
 * once (series heads, field names, the batch's tail). No string per line or number.
 */
export type IlpBuffer = { buf: Uint8Array; len: number; lines: number };
export const utf8 = new TextEncoder();
/** Buffers of finished writes, kept for the next ones: a fresh one costs its pages' faults again. */
const spareBuffers: Uint8Array[] = [];
/**
 * A buffer for a write of `lines` lines, made at the size such a write usually needs (a daily
 * bar's line is about 140 bytes), so it seldom grows: the memory a load holds is the same
 * from its first write to its last.
 */
export const ilpBuffer = (lines: number): IlpBuffer => {
  const spare = spareBuffers.pop();
  return { buf: spare ?? new Uint8Array(Math.min(64 << 20, Math.max(1 << 16, lines * 160))), len: 0, lines: 0 };
};
/** Three: a load keeps the chunk being filled, one queued and one just handed over in rotation (with two, it allocated and dropped buffers faster than the GC freed them). */
export const recycle = (body: Uint8Array) => void (spareBuffers.length < 3 && spareBuffers.push(new Uint8Array(body.buffer)));
/** Once nothing is being written: the spares are given back (an idle `serve` holds none). */
export const dropSpareBuffers = () => void (spareBuffers.length = 0);
export function room(w: IlpBuffer, n: number) {
  if (w.len + n <= w.buf.length) return;
  const grown = new Uint8Array(Math.max(w.buf.length * 2, w.len + n));
  grown.set(w.buf.subarray(0, w.len));
  w.buf = grown;
}
function ascii(w: IlpBuffer, s: string) {
  const b = w.buf;
  let p = w.len;
  for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
  w.len = p;
}
/** Short byte strings are copied by hand: a native set() per line costs more than the copy. */
function bytes(w: IlpBuffer, u: Uint8Array) {
  const b = w.buf;
  let p = w.len;
  for (let i = 0; i < u.length; i++) b[p++] = u[i]!;
  w.len = p;
}
/** The digits of a whole number 0 ≤ m < 2^53, with a decimal point `k` digits from the right. */
/** The digits of a whole number 0 ≤ m ≤ INT32_MAX. */
function uint32(w: IlpBuffer, m: number) {
  const n = m < 1e5 ? (m < 100 ? (m < 10 ? 1 : 2) : m < 1e3 ? 3 : m < 1e4 ? 4 : 5) : m < 1e7 ? (m < 1e6 ? 6 : 7) : m < 1e8 ? 8 : m < 1e9 ? 9 : 10;
  const b = w.buf;
  let p = w.len + n;
  w.len = p;
  do {
    const q = (m / 10) | 0;
    b[--p] = 48 + m - q * 10;
    m = q;
  } while (m > 0);
}
/** Exactly `n` digits of 0 ≤ m < 10^n ≤ 10^9, with leading zeros. */
function padded(w: IlpBuffer, m: number, n: number) {
  const b = w.buf;
  let p = w.len + n;
  w.len = p;
  for (let i = 0; i < n; i++) {
    const q = (m / 10) | 0;
    b[--p] = 48 + m - q * 10;
    m = q;
  }
}
/** The digits of a whole number 0 ≤ m < 2^53 (int32 arithmetic, nine digits at a time). */
function uint(w: IlpBuffer, m: number) {
  if (m <= INT32_MAX) return uint32(w, m);
  const hi = Math.floor(m / 1e9);
  uint(w, hi);
  padded(w, m - hi * 1e9, 9);
}
/** m·10^-k: the digits of the whole number m with a decimal point `k` digits from the right. */
function digits(w: IlpBuffer, m: number, k: number) {
  if (k === 0) return uint(w, m);
  const whole = Math.floor(m / POW10[k]!);
  uint(w, whole);
  w.buf[w.len++] = 46;
  padded(w, m - whole * POW10[k]!, k);
}
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];
const TWO_53 = 9_007_199_254_740_992;
const INT32_MAX = 2_147_483_647;
/**
 * Decimal places per column (open … turnover) that wrote its last number: tried first for the
 * next, which usually has as many (prices in cents, volumes whole).
 */
const placesHint = new Int32Array(8);
/**
 * `name` then x as an ILP double. A price or volume with at most 8 decimals is written from the
 * whole number m = x·10^k: when m / 10^k is x in floating point, the decimal m·10^-k reads back
 * as exactly x (m and 10^k are exact, so both are the double nearest that decimal), whichever
 * such k it is. Anything else is JavaScript's shortest form. An integral value gets `.0`, or ILP
 * would read a LONG.
 */
function double(w: IlpBuffer, name: Uint8Array, x: number, column: number) {
  bytes(w, name);
  if (x >= 0 && x < TWO_53) {
    const h = placesHint[column]!;
    const m = Math.round(x * POW10[h]!);
    // The hint, unless it leaves a trailing zero (then fewer places do: the search finds them).
    if (m < TWO_53 && m / POW10[h]! === x && (h === 0 || m % 10 !== 0)) return scaled(w, m, h);
    for (let k = 0; k < POW10.length; k++) {
      const m = Math.round(x * POW10[k]!);
      if (m >= TWO_53) break;
      if (m / POW10[k]! === x) {
        placesHint[column] = k;
        return scaled(w, m, k);
      }
    }
  }
  // Whole numbers from 1e21 up print with an exponent, which is a double already.
  ascii(w, Number.isInteger(x) && Math.abs(x) < 1e21 ? `${x}.0` : String(x));
}
function scaled(w: IlpBuffer, m: number, k: number) {
  digits(w, m, k);
  if (k === 0) (w.buf[w.len++] = 46), (w.buf[w.len++] = 48);
}
/** x as this store writes an ILP double (tested: it reads back as exactly x). */
export function ilpDoubleText(x: number, column = 0): string {
  const w: IlpBuffer = { buf: new Uint8Array(64), len: 0, lines: 0 };
  double(w, new Uint8Array(0), x, column);
  return new TextDecoder().decode(w.buf.subarray(0, w.len));
}
/**
 * One bar's ILP line: the series head, the numbers of columns row k of f, its row hash (a whole
 * number 0 ≤ hash < 2^53: src/stores/questdb/rowhash.ts), the batch's tail and the timestamp.
 * Kept small and apart from commitBatch so it compiles to tight code.
 */
export function ilpLine(w: IlpBuffer, head: Uint8Array, f: Float64Array, k: number, hash: number, tail: Uint8Array) {
  bytes(w, head);
  double(w, F_OPEN, f[k + 1]!, 0);
  double(w, F_HIGH, f[k + 2]!, 1);
  double(w, F_LOW, f[k + 3]!, 2);
  double(w, F_CLOSE, f[k + 4]!, 3);
  double(w, F_VOLUME, f[k + 5]!, 4);
  if (Number.isFinite(f[k + 6]!)) double(w, F_ADJ, f[k + 6]!, 5);
  if (Number.isFinite(f[k + 7]!)) double(w, F_TURNOVER, f[k + 7]!, 6);
  const trades = f[k + 8]!;
  if (Number.isFinite(trades)) {
    bytes(w, F_TRADES);
    const t = Math.trunc(trades);
    if (t >= 0 && t < TWO_53) uint(w, t);
    else ascii(w, String(t));
    w.buf[w.len++] = 105; // i
  }
  bytes(w, F_HASH);
  uint(w, hash);
  w.buf[w.len++] = 105;
  bytes(w, tail);
  const ts = f[k]!;
  if (ts >= 0 && ts < TWO_53) uint(w, ts);
  else ascii(w, String(ts));
  w.buf[w.len++] = 10;
}
const [F_OPEN, F_HIGH, F_LOW, F_CLOSE, F_VOLUME, F_ADJ, F_TURNOVER, F_TRADES, F_HASH] = ["open=", ",high=", ",low=", ",close=", ",volume=", ",adj_close=", ",turnover=", ",trades=", ",row_hash="].map((n) => utf8.encode(n)) as [
  Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array,
];


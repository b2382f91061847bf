// The capacity bench's data: a stooq-bulk CSV of daily bars (WSE, from scripts/bench/ingest.ts) or
// of one-minute bars (CRYPTO: 1,440 a day, UTC, no gaps), and from it the same rows as the raw
// baselines load them: a COPY text file for the PostgreSQL store's keyed bars table and the ILP
// lines ticksync posts to QuestDB, with each request's byte range.
import { rng } from "../../gen-demo.ts";
import { writeBulkCsv } from "../ingest.ts";

export type Interval = "1d" | "1m";
export const SOURCE = "bench";
/** ticksync's first run in a fresh store has id 1; the baselines write the same. */
export const RUN_ID = 1;
const HEADER = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>";
const MINUTE_START = Date.UTC(2024, 0, 1);
const SEED = 20240101;

/** The CLI flags that read a file of this interval. */
export const MARKET: Record<Interval, string> = { "1d": "WSE", "1m": "CRYPTO" };

/**
 * One-minute bars, one symbol after another (`X0USDT`, `X1USDT`, …, stored as `X0-USDT.CRYPTO`),
 * each `minutes` consecutive minutes from 2024-01-01 00:00 UTC: a seeded random walk kept in
 * 5..500. Deterministic.
 */
export async function writeMinuteCsv(path: string, rows: number, minutes: number): Promise<void> {
  const out = Bun.file(path).writer();
  out.write(HEADER + "\n");
  for (let i = 0, left = rows; left > 0; i++) {
    const n = Math.min(left, minutes);
    const r = rng(SEED + i);
    let price = 10 + r() * 290;
    let chunk = "";
    for (let m = 0; m < n; m++) {
      const t = new Date(MINUTE_START + m * 60_000).toISOString();
      const date = t.slice(0, 10).replaceAll("-", "");
      const time = t.slice(11, 19).replaceAll(":", "");
      const open = price * (1 + (r() - 0.5) * 0.002);
      const close = open * (1 + (r() - 0.5) * 0.004);
      const high = Math.max(open, close) * (1 + r() * 0.002);
      const low = Math.min(open, close) * (1 - r() * 0.002);
      const volume = Math.round(1 + r() * 5_000);
      chunk += `X${i}USDT,1,${date},${time},${open.toFixed(4)},${high.toFixed(4)},${low.toFixed(4)},${close.toFixed(4)},${volume},0\n`;
      price = close < 5 ? close * 1.05 : close > 500 ? close * 0.95 : close;
      if (chunk.length > 1 << 20) (out.write(chunk), (chunk = ""));
    }
    out.write(chunk);
    left -= n;
  }
  await out.end();
}

export async function writeCsv(interval: Interval, path: string, rows: number, minutes: number): Promise<void> {
  if (interval === "1d") await writeBulkCsv(path, rows);
  else await writeMinuteCsv(path, rows, minutes);
}

export type Bar = { symbol: string; ts: number; open: number; high: number; low: number; close: number; volume: number };

/** A CSV line as ticksync stores it: the market's symbol, ts in ms UTC (the session's midnight for 1d). */
export function parseLine(line: string, interval: Interval): Bar | null {
  if (line === "" || line.startsWith("<TICKER>")) return null;
  const c = line.split(",");
  const d = c[2]!;
  const t = c[3]!;
  const ts = Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +t.slice(0, 2), +t.slice(2, 4), +t.slice(4, 6));
  const symbol = interval === "1d" ? `${c[0]}.WA` : `${c[0]!.slice(0, -4)}-USDT.CRYPTO`;
  return { symbol, ts, open: +c[4]!, high: +c[5]!, low: +c[6]!, close: +c[7]!, volume: +c[8]! };
}

/** Every line of a CSV file, read as a stream (the file is never whole in memory). */
export async function eachLine(path: string, fn: (line: string) => void): Promise<void> {
  let rest = "";
  const decoder = new TextDecoder();
  for await (const chunk of Bun.file(path).stream()) {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = lines.pop()!;
    for (const l of lines) fn(l);
  }
  fn(rest + decoder.decode());
}

export type RawFiles = { rows: number; years: number[]; keyedCopy: string; ilp: string; ilpBodies: [number, number][] };

/** As src/stores/questdb/ilp.ts writes a double. */
const ilpNum = (x: number) => (Number.isInteger(x) ? `${x}.0` : String(x));

/**
 * The raw baselines' files from the CSV: the PostgreSQL store's bars columns (a series id per
 * symbol) as COPY text, and ILP lines for `ilpTable`, `linesPerRequest` a request.
 */
export async function writeRawFiles(csv: string, interval: Interval, base: string, ilpTable: string, linesPerRequest: number): Promise<RawFiles> {
  const keyedCopy = `${base}.keyed.copy`;
  const ilp = `${base}.ilp`;
  const copyOut = Bun.file(keyedCopy).writer();
  const ilpOut = Bun.file(ilp).writer();
  const seriesIds = new Map<string, number>();
  const years = new Set<number>();
  const updatedAt = Date.now() * 1000;
  const ilpBodies: [number, number][] = [];
  let [n, ilpBytes, bodyStart] = [0, 0, 0];
  let [copyChunk, ilpChunk] = ["", ""];
  const flush = () => {
    copyOut.write(copyChunk);
    ilpOut.write(ilpChunk);
    ilpBytes += ilpChunk.length; // ASCII only
    copyChunk = ilpChunk = "";
  };
  await eachLine(csv, (line) => {
    const b = parseLine(line, interval);
    if (!b) return;
    let sid = seriesIds.get(b.symbol);
    if (sid === undefined) seriesIds.set(b.symbol, (sid = seriesIds.size + 1));
    years.add(new Date(b.ts).getUTCFullYear());
    copyChunk += `${sid}\t${new Date(b.ts).toISOString()}\t${b.open}\t${b.high}\t${b.low}\t${b.close}\t${b.volume}\t\\N\t\\N\t\\N\t${RUN_ID}\n`;
    ilpChunk += `${ilpTable},symbol=${b.symbol},interval=${interval},source=${SOURCE} open=${ilpNum(b.open)},high=${ilpNum(b.high)},low=${ilpNum(b.low)},close=${ilpNum(b.close)},volume=${ilpNum(b.volume)},run_id=${RUN_ID}i,updated_at=${updatedAt}t ${b.ts}\n`;
    if (++n % linesPerRequest === 0) {
      flush();
      ilpBodies.push([bodyStart, ilpBytes]);
      bodyStart = ilpBytes;
    }
  });
  flush();
  if (ilpBytes > bodyStart) ilpBodies.push([bodyStart, ilpBytes]);
  await copyOut.end();
  await ilpOut.end();
  return { rows: n, years: [...years].sort(), keyedCopy, ilp, ilpBodies };
}

/**
 * The CSV cut in two at the first change of symbol after half its rows: part A, then part B
 * loaded into the same store, so B's bytes are what more bars cost once the store's fixed
 * files (WAL segments, page-rounded last partitions, bookkeeping tables) exist.
 */
export async function splitCsv(csv: string, a: string, b: string, rows: number): Promise<{ rowsA: number; rowsB: number }> {
  const outA = Bun.file(a).writer();
  const outB = Bun.file(b).writer();
  let [n, rowsA, header, last, inB] = [0, 0, "", "", false];
  await eachLine(csv, (line) => {
    if (line === "") return;
    if (line.startsWith("<TICKER>")) {
      header = line + "\n";
      outA.write(header);
      outB.write(header);
      return;
    }
    const symbol = line.slice(0, line.indexOf(","));
    if (!inB && n >= rows / 2 && symbol !== last) inB = true;
    (inB ? outB : outA).write(line + "\n");
    if (!inB) rowsA++;
    last = symbol;
    n++;
  });
  await outA.end();
  await outB.end();
  if (!header || rowsA === 0 || rowsA === n) throw new Error(`cannot split ${csv} (${n} rows) in two at a change of symbol: give it two symbols or more`);
  return { rowsA, rowsB: n - rowsA };
}

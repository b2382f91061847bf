// Replay: stored bars played back as a live-looking feed, for demos and tests. Bars come from a
// store (read-only: listSeries + queryBars) or a CSV file, in time order, one batch per moment
// (all symbols' bars of one timestamp), paced by market time (`speed`) or by count
// (`barsPerSecond`), and stored under this source's own name, so the originals are never touched.
// It stops at the end of the window, or starts over when `loop` is set; an abort (SIGTERM) stops
// it between batches, and its cursor (the last bar played, the pass and its time shift) resumes it.
import * as v from "valibot";
import { existsSync } from "node:fs";
import { INTERVAL_MS, IntervalSchema, type Bar, type RawRow } from "../domain/bar.ts";
import { validateBatch } from "../domain/quality.ts";
import { normaliseSymbol } from "../domain/symbols.ts";
import { parseTimestamp } from "../domain/time.ts";
import { sleep } from "../lib/ratelimit.ts";
import { openStore } from "../stores/open.ts";
import { storeFor } from "../stores/registry.ts";
import type { Store } from "../stores/types.ts";
import { csvSource, csvSourceSchema } from "./csv.ts";
import { SourceError, type Cursor, type Source, type SourceBatch, type SourceContext, type SourceDescriptor } from "./types.ts";
import { minQualitySchema, sourceType } from "./common.ts";

const Positive = v.pipe(v.number(), v.gtValue(0, "must be greater than 0"));
const Day = v.pipe(v.string(), v.regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date YYYY-MM-DD"));

const REPLAY_SUMMARY = "Stored bars (a store or a CSV file) played back as a live-looking feed, for demos and tests";

export const replaySourceSchema = v.pipe(
  v.strictObject({
    type: sourceType("replay", REPLAY_SUMMARY),
    minQuality: v.optional(minQualitySchema),
    from: v.optional(v.pipe(v.string(), v.nonEmpty(), v.description("A store URL (sqlite:<path>, a .db path, postgres://…, questdb://…), read only."), v.examples(["sqlite:recorded.db"]))),
    csv: v.optional(
      v.pipe(v.omit(csvSourceSchema, ["type", "interval", "minQuality"]), v.description("Or a CSV file, described as a csv source is (path, layout, columns, …).")),
    ),
    symbols: v.optional(v.pipe(v.array(v.pipe(v.string(), v.nonEmpty())), v.description("Symbols to play (default: every series of the interval in the store or file)."))),
    source: v.optional(v.pipe(v.string(), v.nonEmpty(), v.description("The stored source to play when a symbol has bars from several."))),
    interval: v.optional(v.pipe(IntervalSchema, v.description("The interval of the bars played.")), "1d"),
    start: v.optional(v.pipe(Day, v.description("First session played (inclusive)."))),
    end: v.optional(v.pipe(Day, v.description("Last session played (inclusive)."))),
    speed: v.optional(v.pipe(Positive, v.description("Market time per wall time: 60 plays one minute per second, 86400 one day per second."))),
    barsPerSecond: v.optional(v.pipe(Positive, v.description("Or a fixed pace in bars per second (default 10 when neither is given)."))),
    maxPauseMs: v.optional(v.pipe(v.number(), v.minValue(0), v.description("With speed: the longest pause between two moments (nights, weekends), in wall ms.")), 10_000),
    timestamps: v.optional(
      v.pipe(
        v.picklist(["original", "shifted"], "expected original or shifted"),
        v.description(
          "original: bars keep their timestamps (replaying again rewrites the same bars). shifted: moved by whole periods (weeks for 1d and 1w, else intervals) so that the first pass ends in the current period; a looped pass follows the one before, and a bar is never played before its shifted time.",
        ),
      ),
      "original",
    ),
    loop: v.optional(v.pipe(v.boolean(), v.description('Start over at the end, until stopped (needs timestamps = "shifted").')), false),
  }),
  v.check((c) => (c.from === undefined) !== (c.csv === undefined), "give exactly one of from (a store URL) or csv (a CSV file)"),
  v.check((c) => c.speed === undefined || c.barsPerSecond === undefined, "give at most one of speed or barsPerSecond"),
  v.check((c) => !c.loop || c.timestamps === "shifted", 'loop = true needs timestamps = "shifted": a pass with the original timestamps only rewrites the same bars'),
  v.check((c) => c.timestamps !== "shifted" || c.interval !== "1mo", 'timestamps = "shifted" does not work with 1mo bars (months differ in length)'),
);
export type ReplaySourceConfig = v.InferOutput<typeof replaySourceSchema>;

const PAGE = 2000;
const WEEK = 7 * 86_400_000;

type Key = { ts: number; symbol: string };
const after = (b: Key, k: Key) => b.ts > k.ts || (b.ts === k.ts && b.symbol > k.symbol);

/** Moments of a window in time order: every symbol's bar at one ts together, symbols sorted. */
type Moments = { firstTs: number | null; lastTs: number | null; moments(from: Key | null): AsyncIterable<Bar[]>; rejected: RawRow[]; close(): Promise<void> };

/** What of the data a replay plays: its symbols (all when undefined) and its time window. */
type Window = { wanted: string[] | undefined; fromTs: number | undefined; toTs: number | undefined };

/** A CSV file's bars as moments. It is read whole: replay files are demo-sized; larger sets replay from a store. */
async function csvMoments(name: string, cfg: ReplaySourceConfig, baseDir: string, { wanted, fromTs, toTs }: Window): Promise<Moments> {
  const interval = cfg.interval;
  const csv = csvSource(name, { ...cfg.csv!, type: "csv", interval } as Parameters<typeof csvSource>[1], baseDir);
  const bars: Bar[] = [];
  const rejected: RawRow[] = [];
  for (const stream of await csv.streams())
    for await (const batch of csv.read(stream, null, 50_000)) {
      const out = validateBatch(batch.rows, { source: name, interval, market: csv.market, tsFormat: csv.tsFormat, timeZone: csv.timeZone });
      bars.push(...out.bars.filter((b) => (!wanted || wanted.includes(b.symbol)) && b.ts >= (fromTs ?? -Infinity) && b.ts <= (toTs ?? Infinity)));
      // Rows that are not bars go on as they are: the pipeline quarantines them with the reason.
      for (const r of out.rejections) rejected.push({ locator: r.locator, fields: r.raw });
    }
  bars.sort((a, b) => a.ts - b.ts || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
  return {
    firstTs: bars[0]?.ts ?? null,
    lastTs: bars.at(-1)?.ts ?? null,
    rejected,
    async *moments(start) {
      let i = 0;
      while (i < bars.length && start && !after(bars[i]!, start)) i++;
      while (i < bars.length) {
        const ts = bars[i]!.ts;
        const moment: Bar[] = [];
        while (i < bars.length && bars[i]!.ts === ts) moment.push(bars[i++]!);
        yield moment;
      }
    },
    close: async () => {},
  };
}

/** A played bar as the row the pipeline stores under the replay's name, `shift` ms later. */
const replayRow = (b: Bar, shift: number): RawRow => ({
  locator: `replay:${b.source}:${b.symbol}:${new Date(b.ts).toISOString()}`,
  fields: { symbol: b.symbol, ts: b.ts + shift, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume, adjClose: b.adjClose, turnover: b.turnover, trades: b.trades },
});

export function replaySource(name: string, cfg: ReplaySourceConfig, baseDir = process.cwd(), ctx: SourceContext = {}): Source {
  const interval = cfg.interval;
  const fromTs = cfg.start ? parseTimestamp(cfg.start)! : undefined;
  const toTs = cfg.end ? parseTimestamp(cfg.end)! + 86_400_000 - 1 : undefined;
  const wanted = cfg.symbols?.map((s) => {
    const n = normaliseSymbol(s, cfg.csv?.market);
    if (!n.ok) throw new SourceError(`source ${name}: ${n.reason}`);
    return n.symbol;
  });
  const unit = interval === "1d" || interval === "1w" ? WEEK : INTERVAL_MS[interval];

  async function fromStore(): Promise<Moments> {
    let url = cfg.from!;
    // A store in a local file (SQLite): relative to the config file, and it must exist (opening
    // would create an empty one).
    const kind = storeFor(url);
    if (kind.localFile) {
      const located = kind.relativeTo ? kind.relativeTo(url, baseDir) : url;
      if (!existsSync(kind.localFile(located))) throw new SourceError(`source ${name}: no store at ${kind.localFile(url)}`);
      url = located;
    }
    const store: Store = openStore(url);
    try {
      const all = (await store.listSeries()).filter((s) => s.interval === interval && s.source !== name && (!cfg.source || s.source === cfg.source));
      const series: { symbol: string; source: string }[] = [];
      let firstTs: number | null = null;
      let lastTs: number | null = null;
      for (const symbol of wanted ?? [...new Set(all.map((s) => s.symbol))].sort()) {
        const of = all.filter((s) => s.symbol === symbol);
        if (of.length === 0) throw new SourceError(`source ${name}: no ${interval} bars of ${symbol} in ${store.location}${cfg.source ? ` from source ${cfg.source}` : ""}`);
        if (of.length > 1) throw new SourceError(`source ${name}: ${symbol} has ${interval} bars from sources ${of.map((s) => s.source).join(", ")}: set source`);
        series.push({ symbol, source: of[0]!.source });
        const [f, l] = [Math.max(of[0]!.firstTs, fromTs ?? -Infinity), Math.min(of[0]!.lastTs, toTs ?? Infinity)];
        if (f <= l) [firstTs, lastTs] = [Math.min(firstTs ?? f, f), Math.max(lastTs ?? l, l)];
      }
      if (series.length === 0) throw new SourceError(`source ${name}: no ${interval} series to replay in ${store.location}`);
      return {
        firstTs,
        lastTs,
        rejected: [],
        // A k-way merge of the series, each read in pages by its keyset.
        async *moments(start) {
          const heads = series.map((s) => ({ ...s, buf: [] as Bar[], i: 0, done: false, after: undefined as { ts: number; source: string } | undefined }));
          const peek = async (h: (typeof heads)[number]) => {
            while (h.i >= h.buf.length && !h.done) {
              const page = await store.queryBars({ symbol: h.symbol, interval, source: h.source, from: Math.max(start?.ts ?? -Infinity, fromTs ?? -Infinity), to: toTs, limit: PAGE, after: h.after });
              h.buf = page.filter((b) => !start || after(b, start));
              h.i = 0;
              if (page.length < PAGE) h.done = true;
              else h.after = { ts: page.at(-1)!.ts, source: h.source };
            }
            return h.i < h.buf.length ? h.buf[h.i]! : null;
          };
          for (;;) {
            let ts = Infinity;
            for (const h of heads) {
              const b = await peek(h);
              if (b && b.ts < ts) ts = b.ts;
            }
            if (ts === Infinity) return;
            const moment: Bar[] = [];
            for (const h of heads) if ((await peek(h))?.ts === ts) moment.push(h.buf[h.i++]!);
            yield moment;
          }
        },
        close: () => store.close(),
      };
    } catch (e) {
      await store.close();
      throw e;
    }
  }

  async function* read(_stream: string, cursor: Cursor | null, batchSize: number): AsyncIterable<SourceBatch> {
    const data = cfg.from !== undefined ? await fromStore() : await csvMoments(name, cfg, baseDir, { wanted, fromTs, toTs });
    const signal = ctx.signal;
    try {
      if (data.firstTs === null || data.lastTs === null) {
        if (!cursor) yield { rows: data.rejected, cursor: { ts: null, symbol: null, pass: 0, shift: 0 } };
        return;
      }
      const span = data.lastTs - data.firstTs;
      // The shift that puts the window's last bar in the current period (never after now).
      const shiftNow = () => (cfg.timestamps === "shifted" ? Math.floor((Date.now() - data.lastTs!) / unit) * unit : 0);
      let pass = typeof cursor?.pass === "number" ? cursor.pass : 0;
      let shift = typeof cursor?.shift === "number" ? cursor.shift : shiftNow();
      let from: Key | null = typeof cursor?.ts === "number" && typeof cursor.symbol === "string" ? { ts: cursor.ts, symbol: cursor.symbol } : null;
      let pending = cursor ? [] : data.rejected;
      // Pacing runs on a schedule from the first batch, so time spent committing is not added.
      let due = performance.now();
      let prevTs: number | null = null;
      let prevCount = 0;
      for (;;) {
        for await (const moment of data.moments(from)) {
          for (let i = 0; i < moment.length; i += batchSize) {
            const part = moment.slice(i, i + batchSize);
            const ts = part[0]!.ts;
            if (prevTs !== null)
              due += cfg.speed !== undefined ? (i === 0 ? Math.min((ts - prevTs) / cfg.speed, cfg.maxPauseMs) : 0) : (prevCount / (cfg.barsPerSecond ?? 10)) * 1000;
            // A shifted bar is never played before its time: past the present, the feed is real time.
            const early = cfg.timestamps === "shifted" ? ts + shift - Date.now() : 0;
            if (early > 0) due = Math.max(due, performance.now() + early);
            const wait = due - performance.now();
            if (signal?.aborted) throw new SourceError(`source ${name}: replay stopped`);
            if (wait > 0) await sleep(wait, signal).catch(() => {});
            if (signal?.aborted) throw new SourceError(`source ${name}: replay stopped`);
            [prevTs, prevCount] = [ts, part.length];
            const last = part.at(-1)!;
            yield { rows: [...pending, ...part.map((b) => replayRow(b, shift))], cursor: { ts: last.ts, symbol: last.symbol, pass, shift } };
            pending = [];
          }
        }
        if (!cfg.loop) return;
        // The next pass follows right after this one, whole periods later; its bars come as their
        // time comes (see above), so a loop is a feed that goes on in real time.
        pass++;
        shift += Math.ceil((span + INTERVAL_MS[interval]) / unit) * unit;
        from = null;
        prevTs = null;
        due += (prevCount / (cfg.barsPerSecond ?? 10)) * 1000;
      }
    } finally {
      await data.close();
    }
  }

  return { name, type: "replay", interval, tsFormat: "epoch_ms", concurrency: 1, streams: async () => ["replay"], read };
}

export const replayDescriptor: SourceDescriptor<typeof replaySourceSchema> = {
  type: "replay",
  summary: REPLAY_SUMMARY,
  schema: replaySourceSchema,
  create: (name, cfg, baseDir, ctx) => replaySource(name, cfg, baseDir, ctx),
  provider: false,
  rebuildInWorker: false,
};

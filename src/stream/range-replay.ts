// The WebSocket's `replay`: a range of stored bars of some symbols, in (ts, symbol, source) order,
// paced at a multiple of real time (or as fast as the client reads), then the client is live for
// those symbols with no gap and no duplicate (docs/stream.md, "Replay").
//
// Hand-over: the replay runs as a subscribe of its symbols (src/stream/session.ts): the symbols are
// registered first and live events for them are held from then on. Each page of the range is read
// with the journal's last event id in the same snapshot (RangePage.journalAt), and the replay logs
// which positions each page covered under which journal id. A held live event for a bar the range
// covers was already sent by the replay exactly when its id is at most the journalAt of the page
// that covered the bar's position (that read saw its commit); every other held event is delivered
// after the replay, in id order; the hold ends only once the bus has published every event the
// replay's reads saw. A store with no journal (journalAt 0) drops nothing.
import * as v from "valibot";
import { IntervalSchema, type Interval } from "../domain/bar.ts";
import { normaliseSymbol } from "../domain/symbols.ts";
import { parseTimestamp } from "../domain/time.ts";
import type { RangeRow, Store } from "../stores/types.ts";
import { encodeRangeCursor, openRange, type ReplayConfig } from "./range-read.ts";
import { clip, errorMessage, issueText, statusMessage, type Outgoing } from "./protocol.ts";
import type { ReplayTarget } from "./replay.ts";

const Instant = v.union(
  [
    v.pipe(v.number(), v.integer("expected epoch milliseconds")),
    v.pipe(v.string(), v.maxLength(40), v.transform((s) => parseTimestamp(s)), v.number("expected an ISO date, date-time or epoch milliseconds")),
  ],
  "expected an ISO date, date-time or epoch milliseconds",
);

/** Bars one message may carry (`batch`), and the text at which a batch is sent even if not full. */
const MAX_BATCH = 1000;
const BATCH_CHARS = 256 * 1024;

export const ReplayMessageSchema = v.strictObject({
  op: v.literal("replay"),
  symbols: v.pipe(v.array(v.pipe(v.string("expected symbols as strings"), v.maxLength(64))), v.minLength(1, "expected at least one symbol"), v.maxLength(500, "at most 500 symbols")),
  interval: v.optional(IntervalSchema, "1d"),
  source: v.optional(v.pipe(v.string(), v.nonEmpty(), v.maxLength(64))),
  from: Instant,
  to: v.optional(Instant),
  speed: v.optional(v.union([v.literal("max"), v.pipe(v.number(), v.gtValue(0, "speed must be above 0"), v.maxValue(1e9))], 'expected speed: a multiple of real time (e.g. 60) or "max"'), "max"),
  batch: v.optional(v.pipe(v.number("expected batch: bars per message"), v.integer("expected a whole number of bars per message"), v.minValue(1, "batch must be at least 1"), v.maxValue(MAX_BATCH, `batch must be at most ${MAX_BATCH}`)), 1),
});

/** What the session runs in place of a snapshot, and asks of each held live message afterwards. */
export type RangeReplay = {
  run(t: ReplayTarget, mark: number): Promise<void>;
  covered(m: Outgoing): boolean;
  cancel(): void;
};

/** Replays in progress per session, so an unsubscribe or a close can stop them. */
const running = new WeakMap<object, Set<{ symbols: Set<string>; cancel(): void }>>();

/** Stop the session's replays of any of these symbols (all of them with `all`). */
export function cancelReplays(session: object, symbols: ReadonlySet<string>, all: boolean): void {
  for (const r of running.get(session) ?? []) if (all || [...r.symbols].some((s) => symbols.has(s))) r.cancel();
}

type Pos = { ts: number; symbol: string; source: string };
const before = (a: Pos, b: Pos) => a.ts < b.ts || (a.ts === b.ts && (a.symbol < b.symbol || (a.symbol === b.symbol && a.source < b.source)));

/**
 * A bar of the replay as the `bar` messages carry it (`{"source":…,"symbol":…,…}`), written from
 * the row: the text up to `"ts":"` is kept per (symbol, source), so a bar quotes no strings.
 */
function barWriter(interval: Interval) {
  const prefixes = new Map<string, { source: string; text: string }>();
  let lastTs = NaN;
  let tsText = "";
  return (r: RangeRow): string => {
    let p = prefixes.get(r[1]);
    if (p === undefined || p.source !== r[2]) prefixes.set(r[1], (p = { source: r[2], text: `{"source":${JSON.stringify(r[2])},"symbol":${JSON.stringify(r[1])},"interval":"${interval}","ts":"` }));
    if (r[0] !== lastTs) tsText = `${new Date((lastTs = r[0])).toISOString()}","open":`;
    let s = p.text + tsText + r[3] + ',"high":' + r[4] + ',"low":' + r[5] + ',"close":' + r[6] + ',"volume":' + r[7];
    if (r[8] != null) s += `,"adjClose":${r[8]}`;
    if (r[9] != null) s += `,"turnover":${r[9]}`;
    if (r[10] != null) s += `,"trades":${r[10]}`;
    return s + "}";
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Rows sent between two checks for room in the client's socket. */
const ROOM_EVERY = 64;
/** The longest single wait of a paced replay, so a cancel is seen within it. */
const MAX_WAIT_MS = 250;
/** How long the hand-over waits for the bus to publish what the replay's reads saw. */
const CATCH_UP_MS = 10_000;

/**
 * A replay request from a client: validated, its symbols normalised and bounded; an error reply
 * (the connection stays) or the subscribe that runs it.
 */
export function startReplay(session: ReplayTarget & { subscribe(syms: Set<string>, all: boolean, since: undefined, onError: (e: Error) => void, range: RangeReplay): Promise<void> }, raw: unknown, store: Store, limits: ReplayConfig, lastId: () => number, now = Date.now): void {
  const list = (raw as { symbols?: unknown }).symbols;
  if (Array.isArray(list) && list.length > limits.maxSymbols) return session.deliver(errorMessage(`replay: at most ${limits.maxSymbols} symbols per replay (got ${list.length})`, { op: "replay", limit: limits.maxSymbols }));
  const p = v.safeParse(ReplayMessageSchema, raw);
  if (!p.success) return session.deliver(errorMessage(`replay: ${issueText(p.issues)}`, { op: "replay" }));
  const m = p.output;
  const symbols = new Set<string>();
  for (const s of m.symbols) {
    const n = normaliseSymbol(s);
    if (!n.ok) return session.deliver(errorMessage(`replay: ${n.reason}`, { op: "replay", symbols: [clip(s)] }));
    symbols.add(n.symbol);
  }
  const to = m.to ?? now();
  if (m.from > to) return session.deliver(errorMessage("replay: from must not be after to", { op: "replay" }));
  const range = rangeReplay(store, limits, lastId, { symbols, interval: m.interval, source: m.source, from: m.from, to, speed: m.speed, batch: m.batch });
  const set = running.get(session) ?? new Set();
  running.set(session, set);
  const entry = { symbols, cancel: range.cancel };
  set.add(entry);
  void session
    .subscribe(symbols, false, undefined, (e) => session.deliver(errorMessage(`replay failed: ${e.message}`, { op: "replay" })), range)
    .finally(() => set.delete(entry));
}

export type RangeReplayRequest = { symbols: Set<string>; interval: Interval; source?: string; from: number; to: number; speed: number | "max"; batch?: number };

export function rangeReplay(store: Store, limits: ReplayConfig, lastId: () => number, r: RangeReplayRequest): RangeReplay {
  let cancelled = false;
  // Pages covered so far, merged while their journal id is the same: [last position, journalAt].
  const covered: [Pos, number][] = [];
  let coveredAll = false;
  return {
    cancel: () => void (cancelled = true),
    async run(t, mark) {
      const reader = openRange(store, { symbols: [...r.symbols], interval: r.interval, source: r.source, from: r.from, to: r.to });
      t.deliver(statusMessage("replaying", `replaying ${r.interval} bars of ${r.symbols.size} symbols`, { from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), speed: r.speed, lastId: mark }));
      const stop = () => cancelled || t.closed;
      let sent = 0;
      let started = false;
      let wall0 = 0;
      let ts0 = 0;
      let last: Pos | null = null;
      let truncated = false;
      let seen = 0;
      const batch = r.batch ?? 1;
      const barJson = barWriter(r.interval);
      // The message being gathered: its bars' JSON, how many, the last one.
      let frame = "";
      let inFrame = 0;
      let frameEnd: RangeRow | null = null;
      /** Send the gathered bars as one message: `bar`, or `bars` when the client asked for batches. */
      const flush = () => {
        if (!inFrame) return;
        t.deliver({ type: "replay", json: batch > 1 ? `{"type":"replay","bars":[${frame}]}` : `{"type":"replay","bar":${frame}}` });
        sent += inFrame;
        last = { ts: frameEnd![0], symbol: frameEnd![1], source: frameEnd![2] };
        frame = "";
        inFrame = 0;
      };
      while (!stop()) {
        const want = Math.min(limits.pageRows, limits.maxRows - sent);
        if (want <= 0) {
          truncated = true;
          break;
        }
        const page = await reader.next(want);
        seen = Math.max(seen, page.journalAt);
        const end = page.rows[page.rows.length - 1];
        if (page.rows.length < want) coveredAll = true;
        if (end) {
          const pos = { ts: end[0], symbol: end[1], source: end[2] };
          const prev = covered[covered.length - 1];
          if (prev && prev[1] === page.journalAt) prev[0] = pos;
          else covered.push([pos, page.journalAt]);
        }
        if (coveredAll) covered.push([{ ts: Infinity, symbol: "", source: "" }, page.journalAt]);
        for (let i = 0; i < page.rows.length; i++) {
          const row = page.rows[i]!;
          if (r.speed !== "max") {
            if (!started) (started = true), (wall0 = performance.now()), (ts0 = row[0]);
            // Due at the bar's distance from the first one, divided by the speed; what is due goes first.
            let wait = wall0 + (row[0] - ts0) / r.speed - performance.now();
            if (wait > 1) flush();
            for (; wait > 1 && !stop(); wait = wall0 + (row[0] - ts0) / r.speed - performance.now()) await sleep(Math.min(wait, MAX_WAIT_MS));
          }
          if (inFrame === 0 && (batch > 1 || sent % ROOM_EVERY === 0)) await t.room();
          if (stop()) break;
          frame = inFrame ? frame + "," + barJson(row) : barJson(row);
          inFrame++;
          frameEnd = row;
          if (inFrame >= batch || frame.length >= BATCH_CHARS) flush();
        }
        // A stopped replay sends nothing more; else a message ends with its page.
        if (stop()) (frame = ""), (inFrame = 0);
        else flush();
        if (coveredAll) break;
      }
      // Events the replay's reads saw but the bus has not published yet would come after the hold
      // ends, unfiltered: wait for the bus to reach them (the tailer is poked on every commit).
      for (const until = performance.now() + CATCH_UP_MS; lastId() < seen && !stop() && performance.now() < until; ) await sleep(2);
      const extra = truncated && last ? { truncated: true as const, next: encodeRangeCursor(last) } : {};
      t.deliver(statusMessage("replay_done", cancelled ? `replay stopped after ${sent} bars` : `replayed ${sent} bars; live from here`, { bars: sent, cancelled: stop(), ...extra }));
    },
    covered(m) {
      if (m.type !== "bar" || m.id === undefined || m.symbol === undefined || !r.symbols.has(m.symbol) || !covered.length) return false;
      const b = (JSON.parse(m.json) as { bar: { interval: string; ts: string; source: string } }).bar;
      if (b.interval !== r.interval || (r.source !== undefined && b.source !== r.source)) return false;
      const pos = { ts: Date.parse(b.ts), symbol: m.symbol, source: b.source };
      if (pos.ts < r.from || pos.ts > r.to) return false;
      // The page that covered this position: the first whose last position is not before it.
      for (const [end, journalAt] of covered) if (!before(end, pos)) return m.id <= journalAt;
      return false;
    },
  };
}

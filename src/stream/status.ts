// Market status and provider status, as events for the stream: each market's phase (from the
// calendars, checked every second) and each source's state (from the run ledger, read every
// `stream.statusPollSeconds`, so runs of any process or replica count). Listeners get a change
// as it is seen; `markets()` and `providers()` are the current state, for a client that joins.
import { isTradingDay, marketPhase, tradeDate, type MarketPhase } from "../domain/calendar.ts";
import { holidayName } from "../domain/holidays.ts";
import { MARKET_CODES, type Market } from "../domain/markets/index.ts";
import type { RunLedger } from "../stores/types.ts";
import { log } from "../lib/log.ts";
import { errorText } from "../lib/errors.ts";

/** A market's phase at an instant, with why it is closed (a weekend, a holiday) when it is. */
export type MarketState = {
  market: Market;
  phase: MarketPhase;
  /** Its trade date at the instant. */
  date: string;
  /** The holiday it is closed for that date, else null. */
  holiday: string | null;
  /** Its date is no trading day and no holiday: a weekend. */
  weekend: boolean;
};

/** A source's state after its latest finished ingest run. */
export type ProviderState = {
  source: string;
  /** ok: the latest run succeeded; failing: it failed; interrupted: it was cut short (shutdown). */
  status: "ok" | "failing" | "interrupted";
  runId: number;
  /** When that run finished, epoch ms. */
  at: number;
  error: string | null;
  /** Failed runs in a row up to this one (0 when it succeeded). */
  failures: number;
};

export type StatusEvent = { kind: "market"; state: MarketState; previous: MarketPhase | null; before: MarketState | null } | { kind: "provider"; state: ProviderState; previous: ProviderState["status"] | null };

export function marketState(market: Market, now: number): MarketState {
  const phase = marketPhase(market, now);
  const date = tradeDate(market, now);
  const holiday = phase === "closed" ? holidayName(market, date) : null;
  return { market, phase, date, holiday, weekend: phase === "closed" && holiday === null && !isTradingDay(market, date) };
}

/** Runs read per poll: enough for every source's latest when a few dozen jobs run between polls. */
const RUNS_PER_POLL = 200;
/** Sources tracked at most (a ledger with more names keeps the most recent ones). */
const MAX_SOURCES = 10_000;

export type StatusFeedOptions = {
  ledger: Pick<RunLedger, "listRuns">;
  pollSeconds: number;
  /** The clock (tests drive it). */
  now?: () => number;
};

export function createStatusFeed(o: StatusFeedOptions) {
  const now = o.now ?? Date.now;
  const listeners = new Set<(e: StatusEvent) => void>();
  const markets = new Map<Market, MarketState>();
  const providers = new Map<string, ProviderState>();
  let lastRun = 0;
  let seeded = false;
  let polling: Promise<void> | null = null;
  const timers: (() => void)[] = [];

  const emit = (e: StatusEvent) => {
    for (const fn of listeners)
      try {
        fn(e);
      } catch (err) {
        log.error("status listener failed", { error: errorText(err) });
      }
  };

  /** Every market's phase now; a change is announced. */
  function checkMarkets(): void {
    const t = now();
    for (const m of MARKET_CODES) {
      const state = marketState(m, t);
      const before = markets.get(m);
      markets.set(m, state);
      // A weekend or a holiday starting is a change too (the phase stays "closed").
      if (before && (before.phase !== state.phase || before.holiday !== state.holiday || before.weekend !== state.weekend)) emit({ kind: "market", state, previous: before.phase, before });
    }
  }

  /** Runs finished since the last poll (ingest runs: a source's); a source whose state changes is announced. */
  async function readRuns(): Promise<void> {
    const runs = await o.ledger.listRuns({ limit: RUNS_PER_POLL });
    // Oldest first, so each source ends on its latest run; a run still going is read again later.
    const fresh = runs.filter((r) => r.kind === "ingest" && r.finishedAt !== null && r.id > lastRun).sort((a, b) => a.finishedAt! - b.finishedAt! || a.id - b.id);
    const running = runs.filter((r) => r.finishedAt === null).map((r) => r.id);
    // The cursor stays below a run still going, so its outcome is seen when it ends.
    const top = runs.reduce((m, r) => Math.max(m, r.id), lastRun);
    lastRun = running.length ? Math.min(top, Math.min(...running) - 1) : top;
    for (const r of fresh) {
      const before = providers.get(r.source);
      if (before && before.runId >= r.id) continue;
      const status = r.outcome === "succeeded" ? "ok" : r.outcome === "interrupted" ? "interrupted" : "failing";
      const state: ProviderState = { source: r.source, status, runId: r.id, at: r.finishedAt!, error: r.error, failures: status === "failing" ? (before?.failures ?? 0) + 1 : 0 };
      providers.delete(r.source);
      providers.set(r.source, state);
      if (providers.size > MAX_SOURCES) providers.delete(providers.keys().next().value!);
      // The ledger as found at start is the state, not news.
      if (seeded && (before?.status !== state.status || state.status === "failing")) emit({ kind: "provider", state, previous: before?.status ?? null });
    }
    seeded = true;
  }

  /** Read the run ledger now (one read at a time; a failure is logged and retried on the next poll). */
  function pollRuns(): Promise<void> {
    polling ??= readRuns()
      .catch((e) => log.warn("reading runs for provider status failed", { error: errorText(e) }))
      .finally(() => (polling = null));
    return polling;
  }

  return {
    /** Take the current state (without announcing it) and start checking. */
    async start(): Promise<void> {
      checkMarkets();
      await pollRuns();
      const m = setInterval(checkMarkets, 1000);
      const r = setInterval(() => void pollRuns(), o.pollSeconds * 1000);
      m.unref?.();
      r.unref?.();
      timers.push(() => clearInterval(m), () => clearInterval(r));
    },
    stop(): void {
      for (const t of timers.splice(0)) t();
    },
    /** Check the markets now (tests move the clock, then call this). */
    checkMarkets,
    pollRuns,
    subscribe(fn: (e: StatusEvent) => void): () => void {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    /** The markets' current state, in registry order. */
    markets: (): MarketState[] => (markets.size ? [...markets.values()] : MARKET_CODES.map((m) => marketState(m, now()))),
    market: (m: Market): MarketState => markets.get(m) ?? marketState(m, now()),
    /** Each source's state after its latest finished ingest run. */
    providers: (): ProviderState[] => [...providers.values()],
    now,
  };
}

export type StatusFeed = ReturnType<typeof createStatusFeed>;

// In-process scheduling with croner. A job never overlaps itself: a cron tick or a manual
// trigger that finds the job running is skipped and counted, not queued behind it.
// A job may be gated by market hours: a cron tick outside the given phases of its market is
// skipped and counted, so `*/30 * * * * *` polls only while the exchange trades. A job over
// symbols of several markets may instead be gated per symbol: a tick runs while any of its
// markets is in phase, and the run is told which are (it reads only their symbols). Manual
// triggers and run-on-start are explicit requests and run whatever the markets' phases, in full.
// Replicas share the jobs by claims (scheduler/lease.ts): each tick runs on the replica that
// claims the job for that tick, once; without claims, on the leader (or here, alone).
import { Cron } from "croner";
import { isOpen, marketPhase, nextOpen, type Market, type MarketPhase, type SessionPhase } from "../domain/calendar.ts";
import { log } from "../lib/log.ts";
import { currentActor, withActor } from "../monitor/audit.ts";
import { hostname } from "node:os";
import { errorText } from "../lib/errors.ts";

/** Which replica ran a scheduled job, for the audit trail. */
const PROCESS = `${hostname()}:${process.pid}`;

/** The whole job follows one market: a tick runs while it is in one of the phases. */
export type MarketGate = { market: Market; phases: readonly SessionPhase[] };
/** Each symbol follows its own market (`markets`: those of the job's symbols): see `JobScope`. */
export type SymbolMarketsGate = { markets: readonly Market[]; phases: readonly SessionPhase[] };
export type JobGate = MarketGate | SymbolMarketsGate;

/** What a gated tick of a per-symbol job may read: the symbols of these markets only. */
export type JobScope = { markets: readonly Market[] };

const gateMarkets = (g: JobGate): readonly Market[] => ("market" in g ? [g.market] : g.markets);

/** The gate's markets that are in one of its phases at an instant. */
export function marketsInPhase(gate: JobGate, t: number): Market[] {
  return gateMarkets(gate).filter((m) => isOpen(m, t, gate.phases));
}

export type JobSpec = {
  name: string;
  schedule?: string;
  timeZone?: string;
  runOnStart?: boolean;
  /** Run cron ticks only while this market (or one of these) is in one of these phases. */
  gate?: JobGate;
  /** `scope`: a per-symbol gated tick's markets in phase; absent: everything. */
  run: (scope?: JobScope) => Promise<{ outcome: string }>;
};

export type JobStatus = {
  name: string;
  schedule: string | null;
  timeZone: string | null;
  running: boolean;
  /** For a gated job, the first cron tick at which its market is in one of its phases. */
  nextRun: string | null;
  /** Gated jobs: the market, the phases it runs in, and the phase the market is in now. */
  market: Market | null;
  phases: SessionPhase[] | null;
  marketPhase: MarketPhase | null;
  /** Jobs gated per symbol: each market of their symbols and its phase now. */
  markets: { market: Market; phase: MarketPhase }[] | null;
  lastStartedAt: string | null;
  lastFinishedAt: string | null;
  lastOutcome: string | null;
  lastError: string | null;
  skippedOverlaps: number;
  /** Cron ticks skipped because the market was outside the job's phases. */
  skippedClosed: number;
  /** Cron ticks (and triggers) left to another replica: the leader, or the one that claimed the job. */
  skippedFollower: number;
};

type Entry = {
  spec: JobSpec;
  cron: Cron | null;
  running: Promise<void> | null;
  /** Ticks skipped because this run was still going. */
  overlaps: number;
  /** This replica claimed the job's last tick (replicas: it lets the others try first). */
  claimedLast: boolean;
  /** A gated job's next run as found at `at`; it holds until that run (a null one for a day). */
  next: { at: number; run: Date | null } | null;
  status: Omit<JobStatus, "name" | "schedule" | "timeZone" | "running" | "nextRun" | "market" | "phases" | "marketPhase" | "markets">;
};

// Each failed try moves past a whole phase or to the next day, so this is a horizon of months; a
// schedule that never meets its phases (say 03:00 daily for WSE "open") ends here with null.
const MAX_GATED_TRIES = 1000;

/**
 * The first tick of `cron` after `afterMs` at which the market is in one of the gate's phases:
 * the next tick if the market is open then, else the first tick at or after the next opening.
 */
export function nextGatedRun(cron: Cron, gate: JobGate, afterMs: number): Date | null {
  if (gateMarkets(gate).length === 0) return null;
  let after = afterMs;
  for (let i = 0; i < MAX_GATED_TRIES; i++) {
    const tick = cron.nextRun(new Date(after));
    if (tick === null) return null;
    const t = tick.getTime();
    if (marketsInPhase(gate, t).length > 0) return tick;
    // croner looks strictly after its reference, in whole seconds: a millisecond before the
    // (earliest) opening lets a tick exactly at the opening count.
    after = Math.min(...gateMarkets(gate).map((m) => nextOpen(m, t, gate.phases))) - 1;
  }
  return null;
}

/** A job claimed for one run: released when the run ends. */
export type JobHold = { release(): Promise<void> };
/** Claims of jobs across replicas; `tick`: the cron tick (ms, to the second) or a trigger's instant. */
export type JobClaims = { claim(job: string, tick: number): Promise<JobHold | null> };

/** A cron tick's key, the same on every replica: croner fires a few ms after the second. */
const tickKey = (t: number) => Math.round(t / 1000) * 1000;
/**
 * A replica that ran a job's last tick claims the next one this much later, so the ticks of a
 * job go round the live replicas instead of to whichever is fastest every time.
 */
const CLAIM_YIELD_MS = 100;

export type SchedulerOptions = {
  /** The clock the market-hours gate reads (tests pin it); croner's timers keep real time. */
  now?: () => number;
  /**
   * Replicas: only the holder of the scheduler lease runs cron ticks and run-on-start jobs (a
   * manual trigger runs where it is asked). Without it every tick runs here.
   */
  isLeader?: () => boolean;
  /** Replicas share the jobs: a run needs its claim (isLeader is then not asked). */
  claims?: JobClaims;
};

/** The claim, or null when another replica has it or the store cannot be asked (the others may). */
async function claimOrNull(claims: JobClaims, job: string, at: number): Promise<JobHold | null> {
  try {
    return await claims.claim(job, at);
  } catch (e) {
    log.warn("cannot claim the job; this tick is left to the other replicas", { job, error: errorText(e) });
    return null;
  }
}

export function createScheduler(options: SchedulerOptions = {}) {
  const now = options.now ?? Date.now;
  const jobs = new Map<string, Entry>();

  // Finding a gated next run can take many steps (a schedule that never meets its phases takes
  // them all), and no gated tick lies between the time it was searched from and the run found.
  function gatedNext(e: Entry, gate: JobGate, t: number): Date | null {
    const c = e.next;
    if (c !== null && t >= c.at && (c.run === null ? t < c.at + 86_400_000 : t < c.run.getTime())) return c.run;
    const run = nextGatedRun(e.cron!, gate, t);
    e.next = { at: t, run };
    return run;
  }

  /** A cron tick: run unless another replica leads, or the job's market is outside its phases. */
  function tick(entry: Entry): void {
    if (!options.claims && options.isLeader && !options.isLeader()) {
      entry.status.skippedFollower++;
      log.debug("not the leader, tick left to the leader", { job: entry.spec.name });
      return;
    }
    const gate = entry.spec.gate;
    let scope: JobScope | undefined;
    if (gate) {
      const t = now();
      const inPhase = marketsInPhase(gate, t);
      if (inPhase.length === 0) {
        entry.status.skippedClosed++;
        const where = "market" in gate ? { market: gate.market, phase: marketPhase(gate.market, t) } : { markets: gate.markets.map((m) => `${m} ${marketPhase(m, t)}`) };
        log.debug("market outside the job's phases, tick skipped", { job: entry.spec.name, ...where, phases: gate.phases });
        return;
      }
      if (!("market" in gate)) scope = { markets: inPhase };
    }
    const at = tickKey(Date.now());
    void withActor({ by: "schedule", job: entry.spec.name, process: PROCESS }, async () => {
      if (options.claims && entry.claimedLast) await new Promise((r) => setTimeout(r, CLAIM_YIELD_MS));
      return claimed(entry, at, scope);
    });
  }

  /** Run it if this replica claims it for `at` (no claims: at once). */
  async function claimed(entry: Entry, at: number, scope?: JobScope): Promise<"started" | "busy"> {
    if (!options.claims) return execute(entry, scope, null);
    if (entry.running) return execute(entry, scope, null); // counted as an overlap
    const hold = await claimOrNull(options.claims, entry.spec.name, at);
    entry.claimedLast = hold !== null;
    if (hold === null) {
      entry.status.skippedFollower++;
      log.debug("another replica has the job for this tick", { job: entry.spec.name });
      return "busy";
    }
    const r = await execute(entry, scope, hold);
    if (r === "busy") await hold.release();
    return r;
  }

  async function execute(entry: Entry, scope: JobScope | undefined, hold: JobHold | null): Promise<"started" | "busy"> {
    if (entry.running) {
      entry.status.skippedOverlaps++;
      // Once per run: a long one (a live feed runs until stopped) would say it at every tick.
      if (entry.overlaps++ === 0) log.warn("job still running, skipped (further ticks until it ends: debug)", { job: entry.spec.name });
      else log.debug("job still running, skipped", { job: entry.spec.name });
      return "busy";
    }
    entry.overlaps = 0;
    entry.status.lastStartedAt = new Date().toISOString();
    entry.running = (async () => {
      try {
        const r = await entry.spec.run(scope);
        entry.status.lastOutcome = r.outcome;
        entry.status.lastError = null;
      } catch (e) {
        entry.status.lastOutcome = "failed";
        entry.status.lastError = errorText(e);
        log.error("job failed", { job: entry.spec.name, error: entry.status.lastError });
      } finally {
        entry.status.lastFinishedAt = new Date().toISOString();
        await hold?.release().catch((e) => log.warn("cannot release the job's claim; it expires", { job: entry.spec.name, error: errorText(e) }));
        entry.running = null;
      }
    })();
    return "started";
  }

  return {
    add(spec: JobSpec) {
      if (jobs.has(spec.name)) throw new Error(`job ${spec.name} is defined twice`);
      const entry: Entry = {
        spec,
        cron: null,
        running: null,
        overlaps: 0,
        claimedLast: false,
        next: null,
        status: { lastStartedAt: null, lastFinishedAt: null, lastOutcome: null, lastError: null, skippedOverlaps: 0, skippedClosed: 0, skippedFollower: 0 },
      };
      if (spec.schedule) {
        entry.cron = new Cron(spec.schedule, { name: `ticksync:${spec.name}`, timezone: spec.timeZone, paused: true }, () => tick(entry));
        if (spec.gate && gatedNext(entry, spec.gate, now()) === null)
          log.warn("the job's schedule never falls in its market phases", { job: spec.name, schedule: spec.schedule, ...("market" in spec.gate ? { market: spec.gate.market } : { markets: spec.gate.markets }), phases: spec.gate.phases });
      }
      jobs.set(spec.name, entry);
    },
    /** Start the cron timers and the run-on-start jobs. */
    start() {
      for (const e of jobs.values()) {
        e.cron?.resume();
        if (e.spec.runOnStart && (options.claims || !options.isLeader || options.isLeader())) void withActor({ by: "schedule", job: e.spec.name, process: PROCESS }, () => claimed(e, Date.now()));
      }
    },
    trigger(name: string): Promise<"started" | "busy" | "unknown"> {
      const e = jobs.get(name);
      if (!e) return Promise.resolve("unknown");
      // A manual run is recorded as the caller's (the API names itself), else as the schedule's.
      return currentActor() ? claimed(e, Date.now()) : withActor({ by: "schedule", job: name, process: PROCESS }, () => claimed(e, Date.now()));
    },
    /** Resolves when the job is idle (used by tests and shutdown). */
    async idle(name?: string) {
      const list = name ? [jobs.get(name)] : [...jobs.values()];
      await Promise.all(list.map((e) => e?.running));
    },
    list(): JobStatus[] {
      const t = now();
      return [...jobs.values()].map((e) => {
        const gate = e.spec.gate;
        const next = e.cron === null ? null : gate ? gatedNext(e, gate, t) : e.cron.nextRun(new Date(t));
        return {
          name: e.spec.name,
          schedule: e.spec.schedule ?? null,
          timeZone: e.spec.timeZone ?? null,
          running: e.running !== null,
          nextRun: next?.toISOString() ?? null,
          market: gate && "market" in gate ? gate.market : null,
          phases: gate ? [...gate.phases] : null,
          marketPhase: gate && "market" in gate ? marketPhase(gate.market, t) : null,
          markets: gate && !("market" in gate) ? gate.markets.map((m) => ({ market: m, phase: marketPhase(m, t) })) : null,
          ...e.status,
        };
      });
    },
    async stop() {
      for (const e of jobs.values()) e.cron?.stop();
      await Promise.all([...jobs.values()].map((e) => e.running));
    },
  };
}
export type Scheduler = ReturnType<typeof createScheduler>;

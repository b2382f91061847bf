// In-process scheduling with croner. A job never overlaps itself: a cron tick or a manual
// trigger that finds the job running is skipped and counted, not queued behind it.
import { Cron } from "croner";
import { log } from "../monitor/log.ts";

export type JobSpec = {
  name: string;
  schedule?: string;
  timeZone?: string;
  runOnStart?: boolean;
  run: () => Promise<{ outcome: string }>;
};

export type JobStatus = {
  name: string;
  schedule: string | null;
  timeZone: string | null;
  running: boolean;
  nextRun: string | null;
  lastStartedAt: string | null;
  lastFinishedAt: string | null;
  lastOutcome: string | null;
  lastError: string | null;
  skippedOverlaps: number;
};

type Entry = {
  spec: JobSpec;
  cron: Cron | null;
  running: Promise<void> | null;
  status: Omit<JobStatus, "name" | "schedule" | "timeZone" | "running" | "nextRun">;
};

export function createScheduler() {
  const jobs = new Map<string, Entry>();

  async function execute(entry: Entry): Promise<"started" | "busy"> {
    if (entry.running) {
      entry.status.skippedOverlaps++;
      log.warn("job still running, skipped", { job: entry.spec.name });
      return "busy";
    }
    entry.status.lastStartedAt = new Date().toISOString();
    entry.running = (async () => {
      try {
        const r = await entry.spec.run();
        entry.status.lastOutcome = r.outcome;
        entry.status.lastError = null;
      } catch (e) {
        entry.status.lastOutcome = "failed";
        entry.status.lastError = (e as Error).message ?? String(e);
        log.error("job failed", { job: entry.spec.name, error: entry.status.lastError });
      } finally {
        entry.status.lastFinishedAt = new Date().toISOString();
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
        status: { lastStartedAt: null, lastFinishedAt: null, lastOutcome: null, lastError: null, skippedOverlaps: 0 },
      };
      if (spec.schedule)
        entry.cron = new Cron(spec.schedule, { name: `ticksync:${spec.name}`, timezone: spec.timeZone, paused: true }, () => void execute(entry));
      jobs.set(spec.name, entry);
    },
    /** Start the cron timers and the run-on-start jobs. */
    start() {
      for (const e of jobs.values()) {
        e.cron?.resume();
        if (e.spec.runOnStart) void execute(e);
      }
    },
    trigger(name: string): Promise<"started" | "busy" | "unknown"> {
      const e = jobs.get(name);
      return e ? execute(e) : Promise.resolve("unknown");
    },
    /** Resolves when the job is idle (used by tests and shutdown). */
    async idle(name?: string) {
      const list = name ? [jobs.get(name)] : [...jobs.values()];
      await Promise.all(list.map((e) => e?.running));
    },
    list(): JobStatus[] {
      return [...jobs.values()].map((e) => ({
        name: e.spec.name,
        schedule: e.spec.schedule ?? null,
        timeZone: e.spec.timeZone ?? null,
        running: e.running !== null,
        nextRun: e.cron?.nextRun()?.toISOString() ?? null,
        ...e.status,
      }));
    },
    async stop() {
      for (const e of jobs.values()) e.cron?.stop();
      await Promise.all([...jobs.values()].map((e) => e.running));
    },
  };
}
export type Scheduler = ReturnType<typeof createScheduler>;

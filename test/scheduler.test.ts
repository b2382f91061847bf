// The scheduler's market-hours gate: croner fires every second for real, the gate reads a pinned
// clock, so what runs and what is skipped does not depend on when the test runs.
import { afterEach, describe, expect, test } from "bun:test";
import { Cron } from "croner";
import { createScheduler, nextGatedRun, type Scheduler } from "../src/scheduler/scheduler.ts";
import { setLogLevel, setLogSink } from "../src/lib/log.ts";
import { waitFor } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const at = (iso: string) => Date.parse(iso);
const SATURDAY = at("2025-03-29T10:00:00Z");
const WSE_OPEN = at("2025-03-31T08:00:00Z"); // Monday 10:00 CEST

let scheduler: Scheduler | undefined;
const logged: Record<string, unknown>[] = [];
setLogSink((line) => logged.push(JSON.parse(line)));
afterEach(async () => {
  await scheduler?.stop();
  scheduler = undefined;
  logged.length = 0;
  setLogLevel("info");
});

function counter() {
  const c = { runs: 0, run: async () => (c.runs++, { outcome: "succeeded" }) };
  return c;
}

describe("gated cron ticks", () => {
  test("ticks outside the phases are skipped and counted; inside they run", async () => {
    setLogLevel("debug");
    let now = SATURDAY;
    scheduler = createScheduler({ now: () => now });
    const poll = counter();
    const plain = counter();
    scheduler.add({ name: "poll", schedule: "* * * * * *", gate: { market: "WSE", phases: ["open"] }, run: poll.run });
    scheduler.add({ name: "plain", schedule: "* * * * * *", run: plain.run });
    scheduler.start();

    const skipped = await waitFor(() => scheduler!.list().find((j) => j.name === "poll")!.skippedClosed >= 1 && plain.runs >= 1, 10_000, "a skipped tick");
    expect(skipped).toBe(true);
    expect(poll.runs).toBe(0);
    const line = logged.find((l) => l.msg === "market outside the job's phases, tick skipped")!;
    expect(line).toMatchObject({ level: "debug", job: "poll", market: "WSE", phase: "closed", phases: ["open"] });

    now = WSE_OPEN;
    await waitFor(() => poll.runs >= 1, 10_000, "a run once the market is open");
    const before = scheduler.list().find((j) => j.name === "poll")!.skippedClosed;
    now = at("2025-03-31T06:45:00Z"); // 08:45 CEST, pre-opening: not in ["open"]
    await waitFor(() => scheduler!.list().find((j) => j.name === "poll")!.skippedClosed > before, 10_000, "a skipped pre-opening tick");
    expect(scheduler.list().find((j) => j.name === "plain")!.skippedClosed).toBe(0);
  }, 40_000);

  test("a manual trigger and run-on-start ignore market hours", async () => {
    scheduler = createScheduler({ now: () => SATURDAY });
    const job = counter();
    scheduler.add({ name: "poll", schedule: "0 0 0 1 1 *", runOnStart: true, gate: { market: "NYSE", phases: ["open"] }, run: job.run });
    scheduler.start();
    await scheduler.idle("poll");
    expect(job.runs).toBe(1);
    expect(await scheduler.trigger("poll")).toBe("started");
    await scheduler.idle("poll");
    expect(job.runs).toBe(2);
    expect(scheduler.list()[0]).toMatchObject({ skippedClosed: 0, marketPhase: "closed" });
  });
});

describe("next run of a gated job", () => {
  function listed(schedule: string, gate: { market: "WSE" | "NYSE"; phases: ("pre" | "open" | "post")[] } | undefined, now: number, timeZone?: string) {
    void scheduler?.stop(); // croner job names are process-wide: free "j" (stop() stops the timers at once)
    scheduler = createScheduler({ now: () => now });
    scheduler.add({ name: "j", schedule, timeZone, gate, run: async () => ({ outcome: "succeeded" }) });
    return scheduler.list()[0]!;
  }

  test("the first tick at or after the next opening, with the market and its phases", () => {
    // Friday evening in Warsaw (CET) → Monday 09:00 CEST, after the clock change.
    expect(listed("*/30 * * * * *", { market: "WSE", phases: ["open"] }, at("2025-03-28T16:10:00Z"))).toMatchObject({
      nextRun: "2025-03-31T07:00:00.000Z",
      market: "WSE",
      phases: ["open"],
      marketPhase: "closed",
      skippedClosed: 0,
    });
    // The same schedule without a gate ticks in 20 s.
    expect(listed("*/30 * * * * *", undefined, at("2025-03-28T16:10:10Z"))).toMatchObject({ nextRun: "2025-03-28T16:10:30.000Z", market: null, phases: null, marketPhase: null });
    // While open: simply the next tick.
    expect(listed("*/30 * * * * *", { market: "WSE", phases: ["open"] }, at("2025-03-31T07:00:10Z")).nextRun).toBe("2025-03-31T07:00:30.000Z");
    // A tick that does not fall on the opening: the first one after it (every 7 minutes past the hour in UTC).
    expect(listed("0 */7 * * * *", { market: "NYSE", phases: ["open"] }, at("2025-03-08T12:00:00Z")).nextRun).toBe("2025-03-10T13:35:00.000Z");
    // Pre-market on the Monday after the US change: 04:00 EDT.
    expect(listed("0 */15 * * * *", { market: "NYSE", phases: ["pre"] }, at("2025-03-08T12:00:00Z")).nextRun).toBe("2025-03-10T08:00:00.000Z");
  });

  test("holidays, early closes and the cron's own time zone", () => {
    // 17:04 Warsaw time on weekdays, in trading at last: Christmas Eve to the 26th and the weekend are skipped.
    expect(listed("0 4 17 * * 1-5", { market: "WSE", phases: ["post"] }, at("2025-12-23T16:10:00Z"), "Europe/Warsaw").nextRun).toBe("2025-12-29T16:04:00.000Z");
    // 14:00 New York time is after an early close: July 3 is skipped, then the holiday and the weekend.
    expect(listed("0 0 14 * * *", { market: "NYSE", phases: ["open"] }, at("2025-07-02T20:00:00Z"), "America/New_York").nextRun).toBe("2025-07-07T18:00:00.000Z");
    // ...but it is in the after-hours of that early close.
    expect(listed("0 0 14 * * *", { market: "NYSE", phases: ["post"] }, at("2025-07-02T20:00:00Z"), "America/New_York").nextRun).toBe("2025-07-03T18:00:00.000Z");
  });

  test("a schedule that never meets its phases has no next run, and says so at start-up", () => {
    expect(listed("0 0 3 * * *", { market: "WSE", phases: ["open"] }, at("2025-03-28T16:10:00Z"), "Europe/Warsaw").nextRun).toBeNull();
    expect(logged.find((l) => l.msg === "the job's schedule never falls in its market phases")).toMatchObject({ level: "warn", job: "j", market: "WSE" });
    // 17:05 is the end of WSE's post phase, exclusive.
    expect(listed("0 5 17 * * 1-5", { market: "WSE", phases: ["post"] }, at("2025-03-28T16:10:00Z"), "Europe/Warsaw").nextRun).toBeNull();
  });

  test("the next run follows the clock (a found run is reused only until it passes)", () => {
    let now = at("2025-03-28T16:10:00Z");
    scheduler = createScheduler({ now: () => now });
    scheduler.add({ name: "j", schedule: "*/30 * * * * *", gate: { market: "WSE", phases: ["open"] }, run: async () => ({ outcome: "succeeded" }) });
    expect(scheduler.list()[0]!.nextRun).toBe("2025-03-31T07:00:00.000Z");
    now = at("2025-03-30T12:00:00Z");
    expect(scheduler.list()[0]!.nextRun).toBe("2025-03-31T07:00:00.000Z");
    now = at("2025-03-31T07:00:00Z");
    expect(scheduler.list()[0]).toMatchObject({ nextRun: "2025-03-31T07:00:30.000Z", marketPhase: "open" });
    now = at("2025-03-31T15:00:00Z");
    expect(scheduler.list()[0]).toMatchObject({ nextRun: "2025-04-01T07:00:00.000Z", marketPhase: "post" });
    now = at("2025-03-28T16:10:00Z"); // a clock set back is searched again
    expect(scheduler.list()[0]!.nextRun).toBe("2025-03-31T07:00:00.000Z");
  });

  test("nextGatedRun on a bare croner job", () => {
    const cron = new Cron("0 0 * * * *", { paused: true });
    try {
      // Hourly on the hour (UTC); NYSE opens 13:30 UTC in summer, so the first hourly tick is 14:00.
      expect(nextGatedRun(cron, { market: "NYSE", phases: ["open"] }, at("2025-06-02T00:00:00Z"))?.toISOString()).toBe("2025-06-02T14:00:00.000Z");
      expect(nextGatedRun(cron, { market: "NYSE", phases: ["pre", "open"] }, at("2025-06-02T00:00:00Z"))?.toISOString()).toBe("2025-06-02T08:00:00.000Z");
    } finally {
      cron.stop();
    }
  });
});

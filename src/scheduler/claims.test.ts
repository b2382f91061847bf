// The scheduler with job claims (replicas): a run needs its claim and gives it back when it ends;
// a claim another replica has is a skip, not a run; a claim the store cannot give is a skip too.
import { describe, expect, test } from "bun:test";
import { createScheduler, type JobClaims } from "./scheduler.ts";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();

/** Claims as the store gives them: one holder per job, a tick claimed once. */
function memoryClaims(fail = false) {
  const held = new Map<string, { tick: number; running: boolean }>();
  const log: string[] = [];
  const claims: JobClaims = {
    async claim(job, tick) {
      if (fail) throw new Error("store down");
      const h = held.get(job);
      if (h && (h.running || h.tick >= tick)) return null;
      held.set(job, { tick, running: true });
      log.push(`claim ${job}`);
      return {
        release: async () => {
          held.get(job)!.running = false;
          log.push(`release ${job}`);
        },
      };
    },
  };
  return { claims, held, log };
}

describe("scheduler with job claims", () => {
  test("a triggered run claims the job and releases it when it ends", async () => {
    const m = memoryClaims();
    let runs = 0;
    const s = createScheduler({ claims: m.claims, isLeader: () => false });
    s.add({ name: "load", run: async () => (runs++, { outcome: "succeeded" }) });
    expect(await s.trigger("load")).toBe("started");
    await s.idle("load");
    expect(runs).toBe(1);
    expect(m.log).toEqual(["claim load", "release load"]);
  });

  test("held by another replica: busy, not run, counted as left to the others", async () => {
    const m = memoryClaims();
    m.held.set("load", { tick: 0, running: true });
    let runs = 0;
    const s = createScheduler({ claims: m.claims });
    s.add({ name: "load", run: async () => (runs++, { outcome: "succeeded" }) });
    expect(await s.trigger("load")).toBe("busy");
    expect(runs).toBe(0);
    expect(s.list()[0]!.skippedFollower).toBe(1);
  });

  test("the store cannot be asked: no run here (the other replicas may claim it)", async () => {
    const m = memoryClaims(true);
    let runs = 0;
    const s = createScheduler({ claims: m.claims });
    s.add({ name: "load", run: async () => (runs++, { outcome: "succeeded" }) });
    expect(await s.trigger("load")).toBe("busy");
    expect(runs).toBe(0);
  });

  test("running here already: an overlap, and the claim is not asked for", async () => {
    const m = memoryClaims();
    let finish!: () => void;
    const s = createScheduler({ claims: m.claims });
    s.add({ name: "load", run: () => new Promise((ok) => (finish = () => ok({ outcome: "succeeded" }))) });
    expect(await s.trigger("load")).toBe("started");
    expect(await s.trigger("load")).toBe("busy");
    expect(s.list()[0]!.skippedOverlaps).toBe(1);
    expect(m.log).toEqual(["claim load"]);
    finish();
    await s.idle("load");
    expect(m.log).toEqual(["claim load", "release load"]);
  });

  test("a run that fails still releases its claim", async () => {
    const m = memoryClaims();
    const s = createScheduler({ claims: m.claims });
    s.add({ name: "load", run: async () => Promise.reject(new Error("boom")) });
    await s.trigger("load");
    await s.idle("load");
    expect(s.list()[0]!.lastOutcome).toBe("failed");
    expect(m.log).toEqual(["claim load", "release load"]);
  });
});

// A job that follows the event bus: it runs a second after bars were stored (on the leader; a run
// in progress is not doubled: the scheduler skips overlaps, and this tries again after it).
import { withActor } from "../monitor/audit.ts";
import type { Scheduler } from "./scheduler.ts";

export const EVENT_DELAY_MS = 1000;

/** Triggers `job` EVENT_DELAY_MS after the first event of each burst that `subscribe` reports. */
export function triggerOnEvents(o: { scheduler: Scheduler; job: string; subscribe: (onEvent: () => void) => unknown; isLeader: () => boolean }): void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const arm = () => {
    if (timer || !o.isLeader()) return;
    timer = setTimeout(async () => {
      timer = null;
      // Running already: bars stored meanwhile may be past its reading, so try again after it.
      const r = await withActor({ by: "system", what: `events → ${o.job}` }, () => o.scheduler.trigger(o.job));
      if (r === "busy") arm();
    }, EVENT_DELAY_MS);
  };
  o.subscribe(arm);
}

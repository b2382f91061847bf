// Retention: bars of an interval older than its rule's keepDays are deleted from the store (every
// source and symbol), e.g. 1m bars after 90 days while daily bars, with no rule, stay forever.
// Enforced by a scheduled job of kind "retention"; each pass is one run (kind "retention") in the
// audit trail with the rules and cutoffs as its parameters and, per interval, a run stream whose
// rows are the bars deleted; ticksync_retention_deleted_total{interval} counts them.
//
// Stores: SQLite and Postgres delete by key and keep each series' first bar and count exact.
// Under TimescaleDB the same DELETE runs: one hypertable holds every interval, so a chunk-level
// retention policy (add_retention_policy / drop_chunks) would remove daily bars too; the
// compression policy made with the hypertable stays as it is. QuestDB cannot delete rows (only
// drop whole partitions, which hold every interval), so a retention run there fails and says so.
import * as v from "valibot";
import { INTERVALS, type Interval } from "../domain/bar.ts";
import { log } from "../lib/log.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import type { Store } from "../stores/types.ts";
import { errorText } from "../lib/errors.ts";

const DAY = 86_400_000;

export const retentionRuleSchema = v.strictObject({
  interval: v.pipe(v.picklist(INTERVALS, `expected an interval: ${INTERVALS.join(", ")}`), v.description("The bar interval the rule applies to.")),
  keepDays: v.pipe(
    v.number("expected a number of days"),
    v.integer("expected whole days"),
    v.minValue(1, "keepDays must be at least 1"),
    v.description("Bars with ts older than this many days before the run are deleted."),
  ),
});

export const retentionConfigSchema = v.pipe(
  v.strictObject({
    rules: v.optional(v.pipe(v.array(retentionRuleSchema), v.description("One rule per interval; intervals without a rule are kept forever.")), []),
  }),
  v.forward(
    v.check((r) => new Set(r.rules.map((x) => x.interval)).size === r.rules.length, "one rule per interval"),
    ["rules"],
  ),
);

export type RetentionRule = v.InferOutput<typeof retentionRuleSchema>;
export type RetentionConfig = v.InferOutput<typeof retentionConfigSchema>;

export type RetentionResult = {
  runId: number;
  outcome: "succeeded" | "failed";
  /** Bars deleted per interval, with the cutoff (ISO) they were older than. */
  deleted: { interval: Interval; before: string; bars: number }[];
  error: string | null;
};

/** The instant before which bars of a rule's interval are due: `keepDays` whole days back. */
export const retentionCutoff = (rule: RetentionRule, now: number) => now - rule.keepDays * DAY;

export async function runRetention(
  store: Store,
  rules: readonly RetentionRule[],
  opts: { job?: string; now?: () => number; metrics?: TicksyncMetrics } = {},
): Promise<RetentionResult> {
  const t = (opts.now ?? Date.now)();
  const plan = rules.map((r) => ({ interval: r.interval, keepDays: r.keepDays, before: retentionCutoff(r, t) }));
  const runId = await store.startRun({
    kind: "retention",
    source: store.kind,
    job: opts.job,
    params: { rules: plan.map((p) => ({ interval: p.interval, keepDays: p.keepDays, before: new Date(p.before).toISOString() })) },
  });
  const started = performance.now();
  const deleted: RetentionResult["deleted"] = [];
  let error: string | null = null;
  try {
    if (!store.deleteBars) throw new Error(`the ${store.kind} store cannot delete bars (QuestDB drops whole partitions only, and they hold every interval); retention is not enforced there`);
    await store.initRunStreams(runId, plan.map((p) => p.interval));
    for (const p of plan) {
      const n = await store.deleteBars({ interval: p.interval, before: p.before });
      await store.setRunStream(runId, p.interval, { status: "done", rows: n });
      deleted.push({ interval: p.interval, before: new Date(p.before).toISOString(), bars: n });
      opts.metrics?.retentionDeleted.inc({ interval: p.interval }, n);
    }
  } catch (e) {
    error = errorText(e);
  }
  const outcome = error ? "failed" : "succeeded";
  await store.finishRun(runId, { outcome, read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error });
  const job = opts.job ?? "retention";
  opts.metrics?.runs.inc({ source: store.kind, outcome });
  opts.metrics?.runDuration.observe({ job }, (performance.now() - started) / 1000);
  if (outcome === "succeeded") opts.metrics?.lastSuccess.set({ job }, Math.floor(Date.now() / 1000));
  log[error ? "error" : "info"]("retention finished", { run: runId, deleted: Object.fromEntries(deleted.map((d) => [d.interval, d.bars])), ...(error ? { error } : {}) });
  return { runId, outcome, deleted, error };
}

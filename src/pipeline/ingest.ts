// The run engine for ingestion: source → validate → store, one transaction per batch with the
// stream's checkpoint inside it. Streams (files, tables, symbols) run with bounded concurrency;
// one stream's failure is recorded with its cause and the others go on. Killed at any moment,
// a run resumes from the last committed batch and ends with exactly the rows of an
// uninterrupted run.
import type { ReadRange, Source } from "../sources/types.ts";
import type { Store, RunSummary } from "../stores/types.ts";
import { ProviderError } from "../lib/http.ts";
import { DEFAULT_BATCH_SIZE, SourceError } from "../sources/types.ts";
import { DEFAULT_MIN_QUALITY } from "../sources/common.ts";
import type { Wait } from "../lib/ratelimit.ts";
import { COLUMN_WIDTH } from "../domain/columns.ts";
import { inlineReader, workerReader, type StreamReader, type ValidatedBatch } from "./validated.ts";
import { log } from "../lib/log.ts";
import { newValidateCache, scoreBatch, type QualityReport, type Rule, type GapWarning } from "../domain/quality.ts";
import { errorText } from "../lib/errors.ts";
import { reconcileSource, type ReconcileResult } from "./reconcile.ts";

export type BatchEvent = {
  runId: number;
  source: string;
  stream: string;
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
  quarantined: number;
  warnings: GapWarning[];
  quality: QualityReport;
};

export type Progress = {
  runId: number;
  done: number;
  total: number;
  failed: number;
  rows: number;
  elapsedMs: number;
  /** A long wait in progress (a provider's rate limit, Retry-After, a retry's backoff). */
  waiting?: Wait | null;
};

export type StreamResult = { stream: string; read: number; error?: string; cause?: string };

export type IngestSummary = RunSummary & {
  runId: number;
  source: string;
  job?: string;
  durationMs: number;
  streams: StreamResult[];
  gapWarnings: number;
  /** Failed streams by cause, with up to 20 stream names each. */
  failedStreams: Record<string, string[]>;
  /** The quality gate the run was held to. */
  minQuality: number;
  /** The run read rows and scored below minQuality: failed for its data. */
  belowMinQuality: boolean;
  /** A stream or the run itself could not be read or stored (a failure besides the quality gate). */
  readFailed: boolean;
  /** What the source's reconciliation found and did (sources with `reconcile`). */
  reconciled?: ReconcileResult;
};

export type IngestOptions = {
  store: Store;
  source: Source;
  job?: string;
  kind?: "ingest" | "backfill" | "gapfill";
  batchSize?: number;
  /** Restrict to these streams (files, tables, symbols); default: all of the source's. */
  streams?: string[];
  /** Read this range instead of continuing from each stream's checkpoint (backfill). */
  range?: ReadRange;
  /** Read every stream from its start, whatever its checkpoint says; a reconciling source compares every day. */
  full?: boolean;
  /** Streams at once; default the source's own (providers) or 1. */
  concurrency?: number;
  /** Continue this unfinished run with the streams it has not done. */
  resumeRunId?: number;
  /** With resumeRunId: also try again the streams that failed. */
  retryFailed?: boolean;
  /** Record every stream's state (resumable runs); otherwise only failures are recorded. */
  trackStreams?: boolean;
  params?: Record<string, unknown>;
  now?: () => number;
  signal?: AbortSignal;
  onBatch?: (e: BatchEvent) => void;
  onProgress?: (p: Progress) => void;
  onStreamError?: (stream: string, error: Error) => void;
  /** Read and validate in a worker thread (default: when the source can be rebuilt there). */
  worker?: boolean;
  /** The quality gate: a run that read rows and scored below it is failed (default DEFAULT_MIN_QUALITY). */
  minQuality?: number;
};


/** ` (rule: n, …)`, the most broken rules first, for the gate's message. */
function describeRules(rules: Partial<Record<Rule, number>>): string {
  const top = Object.entries(rules).filter(([r]) => r !== "gap").sort((a, b) => b[1]! - a[1]!).slice(0, 4);
  return top.length ? ` (${top.map(([r, n]) => `${r}: ${n}`).join(", ")})` : "";
}

function rebuildError(e: { message: string; name: string; failure?: string }): Error {
  if (e.failure) return new ProviderError(e.message, e.failure as ProviderError["failure"]);
  if (e.name === "SourceError") return new SourceError(e.message);
  return new Error(e.message);
}

function causeOf(e: unknown): string {
  if (e instanceof ProviderError) return e.failure;
  if (e instanceof SourceError) return "source_error";
  return "error";
}

/** One run's state: what its streams add up, batch by batch, and what its summary reports. */
type RunState = {
  readonly opts: IngestOptions;
  readonly runId: number;
  readonly started: number;
  /** Record every stream's state (resumable runs). */
  readonly track: boolean;
  totals: { read: number; inserted: number; updated: number; unchanged: number; quarantined: number };
  rules: Partial<Record<Rule, number>>;
  failures: Record<string, number>;
  accepted: number;
  gapSessions: number;
  gapWarnings: number;
  fromTs: number | null;
  toTs: number | null;
  results: StreamResult[];
  done: number;
  total: number;
  failedCount: number;
  reader: StreamReader | null;
  referenceWarned: boolean;
  reconciled?: ReconcileResult;
};

/** A new run in the store, or an unfinished one reopened with its totals so far. */
async function openRun(opts: IngestOptions, batchSize: number, started: number): Promise<RunState> {
  const { store, source } = opts;
  const st: RunState = {
    opts,
    runId: 0,
    started,
    track: opts.trackStreams ?? opts.kind === "backfill",
    totals: { read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0 },
    rules: {},
    failures: {},
    accepted: 0,
    gapSessions: 0,
    gapWarnings: 0,
    fromTs: null,
    toTs: null,
    results: [],
    done: 0,
    total: 0,
    failedCount: 0,
    reader: null,
    referenceWarned: false,
  };
  if (opts.resumeRunId === undefined) {
    return { ...st, runId: await store.startRun({ kind: opts.kind ?? "ingest", source: source.name, job: opts.job, params: { batchSize, type: source.type, ...opts.params } }) };
  }
  const prev = await store.getRun(opts.resumeRunId);
  if (!prev) throw new Error(`run ${opts.resumeRunId} does not exist`);
  await store.reopenRun(prev.id);
  // A resumed run's summary covers all of its work, before and after the interruption.
  Object.assign(st.totals, { read: prev.read, inserted: prev.inserted, updated: prev.updated, unchanged: prev.unchanged, quarantined: prev.quarantined });
  Object.assign(st.rules, prev.quality?.rules ?? {});
  return { ...st, runId: prev.id, accepted: prev.quality?.accepted ?? prev.inserted + prev.updated + prev.unchanged, gapSessions: prev.quality?.gapSessions ?? 0, fromTs: prev.fromTs, toTs: prev.toTs };
}

function reportProgress(st: RunState): void {
  const { opts } = st;
  opts.onProgress?.({ runId: st.runId, done: st.done, total: st.total, failed: st.failedCount, rows: st.totals.read, elapsedMs: performance.now() - st.started, waiting: opts.source.waits?.current() ?? null });
}

/**
 * Corporate actions and instruments are upserts by their natural keys, written just before the
 * batch they came with: a crash between the two leaves the checkpoint where it was, so the
 * re-read writes them again (unchanged) with the bars. A store that does not keep them says so
 * once per run in the log, never silently.
 */
async function storeReference(st: RunState, actions: ValidatedBatch["actions"], instruments: ValidatedBatch["instruments"]) {
  const { store, source } = st.opts;
  if (!actions?.length && !instruments?.length) return;
  if (!store.upsertActions || !store.upsertInstruments) {
    if (!st.referenceWarned) log.warn("store keeps no corporate actions or instruments; the provider's are not stored", { store: store.kind, source: source.name });
    st.referenceWarned = true;
    return;
  }
  if (instruments?.length) await store.upsertInstruments(instruments);
  if (actions?.length) await store.upsertActions(actions);
}

/** A committed batch's counts into the run's totals and the stream's result; onBatch hears of it. */
function countBatch(st: RunState, result: StreamResult, v: ValidatedBatch, res: { inserted: number; updated: number; unchanged: number; refused?: number }): void {
  const { totals, rules, opts } = st;
  result.read += v.read;
  totals.read += v.read;
  totals.inserted += res.inserted;
  totals.updated += res.updated;
  totals.unchanged += res.unchanged;
  totals.quarantined += v.rejections.length + (res.refused ?? 0);
  st.accepted += v.report.accepted;
  st.gapSessions += v.report.gapSessions;
  st.gapWarnings += v.warnings.length;
  for (const [rule, n] of Object.entries(v.report.rules) as [Rule, number][]) rules[rule] = (rules[rule] ?? 0) + n;
  opts.onBatch?.({ runId: st.runId, source: opts.source.name, stream: result.stream, read: v.read, ...res, quarantined: v.rejections.length, warnings: v.warnings, quality: v.report });
}

/**
 * One stream's batches, each committed with the stream's checkpoint. Batches commit in a
 * pipeline (the store's depth): the next batch is read, checked and sent while the one before is
 * still being written. A failed commit stops the stream, after the others in flight have settled
 * (the store commits none after a failed one).
 */
async function commitStream(st: RunState, stream: string, result: StreamResult): Promise<void> {
  const { opts } = st;
  const { store, source } = opts;
  const reader = st.reader!;
  const key = `${source.name}:${stream}`;
  const cp = await store.getCheckpoint(key);
  let cpLastTs = cp?.lastTs ?? null;
  let cpLastKey = cp?.lastKey ?? null;
  const depth = Math.max(1, store.pipeline ?? 1);
  const inFlight: Promise<void>[] = [];
  let failed: { error: unknown } | null = null;
  const settle = async () => {
    try {
      await inFlight.shift();
    } catch (e) {
      failed ??= { error: e };
    }
  };
  try {
    for await (const v of reader.batches(stream, opts.full ? null : (cp?.cursor ?? null), opts.range)) {
      if (opts.signal?.aborted) throw new Error("run aborted");
      // The batch's range, and its newest bar (the first of them, for the checkpoint's key).
      const c = v.columns;
      let fromTs = st.fromTs;
      let toTs = st.toTs;
      let last = -1;
      for (let i = 0, o = 0; i < c.n; i++, o += COLUMN_WIDTH) {
        const t = c.f64[o]!;
        if (fromTs === null || t < fromTs) fromTs = t;
        if (toTs === null || t > toTs) toTs = t;
        if (last < 0 || t > c.f64[last * COLUMN_WIDTH]!) last = i;
      }
      st.fromTs = fromTs;
      st.toTs = toTs;
      if (last >= 0) {
        const t = c.f64[last * COLUMN_WIDTH]!;
        const s = c.series[c.row[last]!]!;
        if (cpLastTs === null || t > cpLastTs) cpLastTs = t;
        cpLastKey = `${s.symbol}|${s.interval}|${t}`;
      }
      await storeReference(st, v.actions, v.instruments);
      const committing = store
        .commitBatch({ runId: st.runId, source: source.name, bars: c, quarantine: v.rejections, read: v.read, checkpoint: { stream: key, cursor: v.cursor, lastTs: cpLastTs, lastKey: cpLastKey }, ...(v.extras ? { extras: v.extras } : {}) })
        .then((res) => countBatch(st, result, v, res))
        // The store is done with the columns once the commit settled: their arrays go back
        // to the reader for the next batches.
        .finally(() => reader.release(c));
      committing.catch(() => {}); // seen by settle()
      inFlight.push(committing);
      while (inFlight.length >= depth) await settle();
      if (failed) break;
    }
  } finally {
    // Nothing of this stream is still committing when it ends, however it ends.
    while (inFlight.length > 0) await settle();
  }
  if (failed) throw (failed as { error: unknown }).error;
}

/** One stream: its batches committed, or its failure recorded with its cause (the others still run). */
async function runStream(st: RunState, stream: string): Promise<void> {
  const { opts } = st;
  const { store } = opts;
  const result: StreamResult = { stream, read: 0 };
  st.results.push(result);
  try {
    await commitStream(st, stream, result);
    if (st.track) await store.setRunStream(st.runId, stream, { status: "done", rows: result.read });
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    result.error = errorText(e);
    result.cause = causeOf(e);
    st.failures[result.cause] = (st.failures[result.cause] ?? 0) + 1;
    st.failedCount++;
    await store.setRunStream(st.runId, stream, { status: "failed", cause: result.cause, error: result.error, rows: result.read });
    opts.onStreamError?.(stream, e as Error);
  } finally {
    st.done++;
    reportProgress(st);
  }
}

/** The streams to run: the resumed run's pending ones (and its failed ones when retried), or the source's. */
async function pickStreams(st: RunState): Promise<string[]> {
  const { opts } = st;
  const { store } = opts;
  if (opts.resumeRunId === undefined) {
    const streams = opts.streams ?? (await opts.source.streams());
    if (st.track) await store.initRunStreams(st.runId, streams);
    return streams;
  }
  const states = await store.listRunStreams(st.runId);
  // Earlier failures still count in the summary unless they are being retried.
  for (const s of states)
    if (s.status === "failed" && !opts.retryFailed) {
      st.failures[s.cause ?? "error"] = (st.failures[s.cause ?? "error"] ?? 0) + 1;
      st.results.push({ stream: s.stream, read: s.rows, error: s.error ?? "failed", cause: s.cause ?? "error" });
    }
  return states.filter((s) => s.status === "pending" || (opts.retryFailed && s.status === "failed")).map((s) => s.stream);
}

/** How the run validates rows into bars. */
const validateSettings = ({ source, now }: IngestOptions) => ({ source: source.name, interval: source.interval, market: source.market, tsFormat: source.tsFormat, timeZone: source.timeZone, now: now?.() });

/**
 * A reconciling source (`reconcile`), after a plain run whose streams all succeeded: compare its
 * recent days (every day with `full`) with the store and repair what differs (reconcile.ts).
 */
async function reconcileRun(st: RunState, batchSize: number): Promise<void> {
  const { opts } = st;
  const rec = opts.source.reconcile;
  // Only over the whole source, read whole: a run of some streams (a market-gated tick that read
  // none, a resumed run) would find every bar of the others "gone".
  if (!rec || st.failedCount > 0 || st.results.length === 0 || opts.range || opts.streams || opts.resumeRunId !== undefined || opts.signal?.aborted) return;
  const r = await reconcileSource({ store: opts.store, source: opts.source, runId: st.runId, batchSize, settings: validateSettings(opts), days: rec.days, deleteMissing: rec.deleteMissing, full: opts.full, now: opts.now?.(), signal: opts.signal });
  st.totals.inserted += r.inserted;
  st.totals.updated += r.updated;
  st.reconciled = r;
  if (r.differing) log.info("reconciled", { source: opts.source.name, run: st.runId, ...r });
}

/** The reader (in a worker when the source can be rebuilt there), then every stream, `concurrency` at once. */
async function runStreams(st: RunState, batchSize: number): Promise<void> {
  const { opts } = st;
  const { store, source } = opts;
  // Newest bar per symbol, seeded from the store, so gaps are found across batches and runs.
  const lastTs = new Map<string, number>();
  for (const s of await store.listSeries()) if (s.source === source.name && s.interval === source.interval) lastTs.set(s.symbol, s.lastTs);
  const settings = validateSettings(opts);
  st.reader =
    (opts.worker ?? source.spec !== undefined) && source.spec
      ? workerReader(source.spec, settings, batchSize, lastTs, rebuildError)
      : inlineReader(source, settings, batchSize, lastTs, newValidateCache());
  const streams = await pickStreams(st);
  st.total = streams.length;
  reportProgress(st);
  const queue = [...streams];
  const workers = Math.max(1, Math.min(opts.concurrency ?? source.concurrency ?? 1, queue.length));
  // Wait for every worker, even after one throws, so nothing commits after the run is closed.
  const settled = await Promise.allSettled(
    Array.from({ length: workers }, async () => {
      while (queue.length > 0) {
        if (opts.signal?.aborted) throw new Error("run aborted");
        await runStream(st, queue.shift()!);
      }
    }),
  );
  const rejected = settled.find((r) => r.status === "rejected");
  if (rejected) throw (rejected as PromiseRejectedResult).reason;
}

/** The run's outcome (read failures, the quality gate), closed in the store's ledger. */
async function finishIngest(st: RunState, fatal: unknown): Promise<IngestSummary> {
  const { opts, totals, rules, failures, results } = st;
  const failed = results.filter((r) => r.error);
  const failedStreams: Record<string, string[]> = {};
  for (const f of failed) (failedStreams[f.cause!] ??= []).length < 20 && failedStreams[f.cause!]!.push(f.stream);
  const quality = scoreBatch(totals.read, st.accepted, st.gapSessions, rules);
  const byCause = Object.entries(failures)
    .map(([c, n]) => `${c}: ${n}`)
    .join(", ");
  const readError = fatal
    ? errorText(fatal)
    : failed.length > 0
      ? `${failed.length} of ${results.length} streams failed (${byCause}): ${failed.slice(0, 5).map((f) => f.error).join("; ")}${failed.length > 5 ? "; …" : ""}`
      : null;
  // The quality gate: rows that passed are stored all the same, but a run that brought (almost)
  // nothing usable is a failure someone must hear about, not a success. An aborted run is not judged.
  const minQuality = opts.minQuality ?? DEFAULT_MIN_QUALITY;
  const belowMinQuality = !(fatal && opts.signal?.aborted) && totals.read > 0 && quality.score < minQuality;
  const gateError = belowMinQuality ? `quality ${quality.score.toFixed(3)} is below minQuality ${minQuality}: ${totals.quarantined} of ${totals.read} rows quarantined${describeRules(rules)}` : null;
  const error = readError && gateError ? `${readError}; ${gateError}` : (readError ?? gateError);
  const summary: RunSummary = {
    // An aborted run (SIGINT, shutdown) is interrupted, not failed: it can be resumed.
    outcome: fatal && opts.signal?.aborted ? "interrupted" : error ? "failed" : "succeeded",
    ...totals,
    fromTs: st.fromTs,
    toTs: st.toTs,
    quality,
    error,
    failures,
  };
  // A run that read nothing has no score: the ledger keeps none rather than a perfect 1.
  await opts.store.finishRun(st.runId, totals.read > 0 ? summary : { ...summary, quality: null });
  return {
    ...summary,
    runId: st.runId,
    source: opts.source.name,
    job: opts.job,
    durationMs: performance.now() - st.started,
    streams: results,
    gapWarnings: st.gapWarnings,
    failedStreams,
    minQuality,
    belowMinQuality,
    readFailed: readError !== null,
    ...(st.reconciled ? { reconciled: st.reconciled } : {}),
  };
}

export async function runIngest(opts: IngestOptions): Promise<IngestSummary> {
  const started = performance.now();
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const st = await openRun(opts, batchSize, started);
  // A long wait (rate limit, Retry-After) is news: the progress line and /api/jobs say why it is quiet.
  const unwatch = opts.onProgress && opts.source.waits ? opts.source.waits.subscribe(() => reportProgress(st)) : null;
  let fatal: unknown = null;
  try {
    await runStreams(st, batchSize);
    await reconcileRun(st, batchSize);
  } catch (e) {
    fatal = e;
  } finally {
    st.reader?.close();
    unwatch?.();
  }
  return finishIngest(st, fatal);
}

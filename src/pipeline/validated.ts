// Validated batches of a stream: read + validate, either on the calling thread or in a worker
// thread so parsing and validation overlap with the store's writes (two cores: one reads and
// checks, one writes). Bars cross the thread boundary as columns in transferred buffers, so
// handing a batch over costs next to nothing.
import type { Bar, BarExtras } from "../domain/bar.ts";
import { toColumns, type BarColumns } from "../domain/columns.ts";
import { validateCells, type ColumnBuffers } from "../domain/cells.ts";
import { validateBatch, type GapWarning, type QualityReport, type Rejection, type ValidateCache, type ValidateContext } from "../domain/quality.ts";
import type { Cursor, ReadRange, Source, SourceBatch } from "../sources/types.ts";

export type ValidatedBatch = {
  /** The accepted bars. */
  columns: BarColumns;
  rejections: Rejection[];
  warnings: GapWarning[];
  report: QualityReport;
  cursor: Cursor;
  read: number;
  /** Passed through from the source batch (providers; worker-read local files have none). */
  actions?: SourceBatch["actions"];
  instruments?: SourceBatch["instruments"];
  /** Extras of the accepted bars, from a source that declares extra columns (absent otherwise). */
  extras?: BarExtras[];
};

export type StreamReader = {
  batches(stream: string, cursor: Cursor | null, range?: ReadRange): AsyncIterable<ValidatedBatch>;
  /** A batch the store is done with: its column arrays may be written again (they must not be read after). */
  release(columns: BarColumns): void;
  close(): void;
};

type ValidateSettings = Omit<ValidateContext, "lastTs" | "cache">;

/**
 * A stream's batches read and validated into columns: delimited text straight from its cells (no
 * object per row), any other source (or an explicit range) by rows through validateBatch.
 */
export async function* validatedBatches(source: Source, stream: string, cursor: Cursor | null, batchSize: number, range: ReadRange | undefined, ctx: ValidateContext, reuse?: () => ColumnBuffers | undefined): AsyncIterable<ValidatedBatch> {
  if (source.readCells && !range) {
    for await (const batch of source.readCells(stream, cursor, batchSize)) yield { ...validateCells(batch.cells, ctx, reuse?.()), cursor: batch.cursor, read: batch.cells.n };
    return;
  }
  for await (const batch of source.read(stream, cursor, batchSize, range)) {
    const v = validateBatch(batch.rows, ctx);
    const extras = source.extras?.length ? extrasOf(v.bars) : undefined;
    yield { columns: toColumns(v.bars), rejections: v.rejections, warnings: v.warnings, report: v.report, cursor: batch.cursor, read: batch.rows.length, actions: batch.actions, instruments: batch.instruments, ...(extras ? { extras } : {}) };
  }
}

/** The extras of bars that have some (a source with extra columns only). */
function extrasOf(bars: readonly Bar[]): BarExtras[] {
  const out: BarExtras[] = [];
  for (const b of bars) if (b.extras) out.push({ symbol: b.symbol, interval: b.interval, ts: b.ts, values: b.extras });
  return out;
}

/** Read and validate on this thread. */
export function inlineReader(source: Source, settings: ValidateSettings, batchSize: number, lastTs: Map<string, number>, cache: ValidateCache): StreamReader {
  return {
    batches: (stream, cursor, range) => validatedBatches(source, stream, cursor, batchSize, range, { ...settings, lastTs, cache }),
    release() {},
    close() {},
  };
}

/** What the worker needs to rebuild the source on its side: plain, cloneable data. */
export type WorkerSourceSpec = { name: string; config: unknown; baseDir?: string };

export type ToWorker =
  | { type: "open"; spec: WorkerSourceSpec; settings: ValidateSettings; batchSize: number; lastTs: [string, number][] }
  | { type: "read"; id: number; stream: string; cursor: Cursor | null; range?: ReadRange }
  | { type: "ack"; id: number }
  /** A batch's column arrays back, for the next batches (transferred). */
  | { type: "buffers"; f64: Float64Array; row: Uint32Array };

export type FromWorker =
  | { type: "batch"; id: number; columns: BarColumns; rejections: Rejection[]; warnings: GapWarning[]; report: QualityReport; cursor: Cursor; read: number }
  | { type: "end"; id: number }
  | { type: "error"; id: number; message: string; name: string; failure?: string };

/** Batches a worker may run ahead of the writer: enough to keep both cores busy, bounded memory. */
export const READ_AHEAD = 3;

/**
 * Where the worker's code is. From source it sits beside this file; in the compiled executable
 * every module shares the entry's URL and the worker is a second entry point, kept under its
 * path relative to src/ (see scripts/build.ts).
 */
function readWorkerUrl(): string {
  const here = import.meta.url;
  return here.includes("/$bunfs/") ? new URL("./pipeline/read-worker.ts", here).href : new URL("./read-worker.ts", here).href;
}

/** A read worker started ahead of its first use (startReadWorker), and why it died if it did. */
let early: { worker: Worker; died: string | null } | null = null;

/**
 * Start the read worker's thread now, so its start-up (a thread, its modules) overlaps the
 * caller's own (the CLI: the store's migration); the next workerReader takes it. It does not
 * keep the process alive while unused.
 */
export function startReadWorker(): void {
  if (early) return;
  const e = { worker: new Worker(readWorkerUrl()), died: null as string | null };
  e.worker.addEventListener("error", (ev: ErrorEvent) => (e.died ??= ev.message || "error"));
  e.worker.addEventListener("close", () => (e.died ??= "it exited"));
  e.worker.unref();
  early = e;
}

/**
 * Read and validate in a worker thread. One worker serves all streams of a run, one at a time.
 * `rebuildError` turns the worker's error back into the error class the engine classifies.
 */
export function workerReader(spec: WorkerSourceSpec, settings: ValidateSettings, batchSize: number, lastTs: Map<string, number>, rebuildError: (e: { message: string; name: string; failure?: string }) => Error): StreamReader {
  const started = early;
  early = null;
  const worker = started?.worker ?? new Worker(readWorkerUrl());
  worker.ref();
  // One listener for the worker's whole life: a crash before or between reads is not missed.
  let crashed: Error | null = started?.died ? new Error(`read worker failed: ${started.died}`) : null;
  let current: { id: number; queue: FromWorker[]; wake: (() => void) | null } | null = null;
  worker.addEventListener("message", (ev: MessageEvent<FromWorker>) => {
    if (current && ev.data.id === current.id) {
      current.queue.push(ev.data);
      current.wake?.();
    }
  });
  const die = (why: string) => {
    crashed ??= new Error(`read worker failed: ${why}`);
    current?.wake?.();
  };
  worker.addEventListener("error", (ev: ErrorEvent) => die(ev.message || "error"));
  worker.addEventListener("close", () => die("it exited"));
  worker.postMessage({ type: "open", spec, settings, batchSize, lastTs: [...lastTs] } satisfies ToWorker);
  let nextId = 1;
  let closed = false;
  return {
    async *batches(stream, cursor, range) {
      const me = { id: nextId++, queue: [] as FromWorker[], wake: null as (() => void) | null };
      current = me;
      worker.postMessage({ type: "read", id: me.id, stream, cursor, range } satisfies ToWorker);
      try {
        for (;;) {
          while (me.queue.length === 0 && !crashed) await new Promise<void>((r) => (me.wake = r));
          me.wake = null;
          if (me.queue.length === 0 && crashed) throw crashed;
          const m = me.queue.shift()!;
          if (m.type === "end") return;
          if (m.type === "error") throw rebuildError(m);
          if (m.type !== "batch") continue;
          yield { columns: m.columns, rejections: m.rejections, warnings: m.warnings, report: m.report, cursor: m.cursor, read: m.read };
          worker.postMessage({ type: "ack", id: me.id } satisfies ToWorker);
        }
      } finally {
        if (current === me) current = null;
      }
    },
    release(columns) {
      if (closed || columns.f64.byteLength === 0) return;
      worker.postMessage({ type: "buffers", f64: columns.f64, row: columns.row } satisfies ToWorker, [columns.f64.buffer as ArrayBuffer, columns.row.buffer as ArrayBuffer]);
    },
    close() {
      if (closed) return;
      closed = true;
      crashed ??= new Error("read worker closed");
      worker.terminate();
    },
  };
}

// The read worker: rebuilds a source from its config, reads and validates streams, and posts
// validated batches as columns. It stays at most READ_AHEAD batches ahead of the writer.
import { newValidateCache } from "../domain/quality.ts";
import { createSource, type SourceConfig } from "../sources/registry.ts";
import type { Source } from "../sources/types.ts";
import { ProviderError } from "../lib/http.ts";
import { READ_AHEAD, validatedBatches, type FromWorker, type ToWorker } from "./validated.ts";
import type { ColumnBuffers } from "../domain/cells.ts";

declare const self: Worker;

let source: Source | null = null;
let open: Extract<ToWorker, { type: "open" }> | null = null;
let lastTs = new Map<string, number>();
const cache = newValidateCache();
const credits = new Map<number, { n: number; wake: (() => void) | null }>();

/** Column arrays of batches the writer is done with, written again by the next batches. */
const given: ColumnBuffers[] = [];

const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => self.postMessage(m, transfer);

async function read(msg: Extract<ToWorker, { type: "read" }>) {
  const credit = { n: READ_AHEAD, wake: null as (() => void) | null };
  credits.set(msg.id, credit);
  try {
    if (!source || !open) throw new Error("read before open");
    for await (const v of validatedBatches(source, msg.stream, msg.cursor, open.batchSize, msg.range, { ...open.settings, lastTs, cache }, () => given.pop())) {
      while (credit.n <= 0) await new Promise<void>((r) => (credit.wake = r));
      credit.n--;
      const { columns } = v;
      post({ type: "batch", id: msg.id, columns, rejections: v.rejections, warnings: v.warnings, report: v.report, cursor: v.cursor, read: v.read }, [
        columns.f64.buffer as ArrayBuffer,
        columns.row.buffer as ArrayBuffer,
      ]);
    }
    post({ type: "end", id: msg.id });
  } catch (e) {
    const err = e as Error;
    post({ type: "error", id: msg.id, message: err?.message ?? String(e), name: err?.name ?? "Error", failure: e instanceof ProviderError ? e.failure : undefined });
  } finally {
    credits.delete(msg.id);
  }
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  if (m.type === "open") {
    open = m;
    lastTs = new Map(m.lastTs);
    try {
      source = createSource(m.spec.name, m.spec.config as SourceConfig, m.spec.baseDir);
    } catch {
      source = null; // reported by the first read
    }
  } else if (m.type === "read") void read(m);
  else if (m.type === "buffers") {
    if (given.length < READ_AHEAD + 2) given.push({ f64: m.f64, row: m.row });
  } else if (m.type === "ack") {
    const c = credits.get(m.id);
    if (c) {
      c.n++;
      c.wake?.();
      c.wake = null;
    }
  }
};

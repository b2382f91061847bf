// `ticksync instruments import`: a user's instrument list (src/sources/instruments.ts) into the
// store's instruments, as one recorded run (kind "instruments": who, which file, counts, the
// rejected lines). Records equal to the stored ones are not written again, so importing the same
// file twice changes nothing and keeps each record's updatedAt (which /api/symbols uses to pick
// between sources).
import type { Instrument } from "../domain/actions.ts";
import { log } from "../lib/log.ts";
import { readInstrumentsCsv, type InstrumentCsvOptions, type InstrumentRejection } from "../sources/instruments.ts";
import type { Store } from "../stores/types.ts";
import { errorText } from "../lib/errors.ts";

export type InstrumentImport = {
  runId: number;
  outcome: "succeeded" | "failed";
  file: string;
  source: string;
  rows: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: InstrumentRejection[];
  /** Header columns not read. */
  ignored: string[];
  /** Why the file could not be read or stored at all (rejected lines are in `rejected`). */
  error: string | null;
};

const FIELDS = ["name", "exchange", "currency", "type", "sector", "industry", "isin"] as const;
/** Rows per upsert (Postgres: 9 parameters a row, far below its 65535). */
const CHUNK = 1000;

export async function importInstruments(store: Store, file: string, opts: InstrumentCsvOptions): Promise<InstrumentImport> {
  const runId = await store.startRun({
    kind: "instruments",
    source: opts.source,
    params: { file, market: opts.market ?? null, delimiter: opts.delimiter ?? null, columns: opts.columns ?? null },
  });
  const r: InstrumentImport = { runId, outcome: "failed", file, source: opts.source, rows: 0, inserted: 0, updated: 0, unchanged: 0, rejected: [], ignored: [], error: null };
  try {
    if (!store.upsertInstruments || !store.listInstruments) throw new Error(`the ${store.kind} store keeps no instruments (use SQLite or Postgres)`);
    const list = await readInstrumentsCsv(file, opts);
    Object.assign(r, { rows: list.rows, rejected: list.rejected, ignored: list.ignored });
    const stored = new Map((await store.listInstruments()).filter((i) => i.source === opts.source).map((i) => [i.symbol, i]));
    const changed: Instrument[] = [];
    for (const i of list.instruments) {
      const was = stored.get(i.symbol);
      if (!was) r.inserted++;
      else if (FIELDS.some((f) => was[f] !== i[f])) r.updated++;
      else {
        r.unchanged++;
        continue;
      }
      changed.push(i);
    }
    for (let at = 0; at < changed.length; at += CHUNK) await store.upsertInstruments(changed.slice(at, at + CHUNK));
  } catch (e) {
    r.error = errorText(e);
  }
  // A rejected line fails the run (the good lines are stored all the same), as a failed stream does an ingest.
  if (!r.error && !r.rejected.length) r.outcome = "succeeded";
  const rejected = r.rejected.length
    ? `${r.rejected.length} of ${r.rows} rows rejected: ${r.rejected.slice(0, 5).map((x) => `line ${x.line}: ${x.reason}`).join("; ")}${r.rejected.length > 5 ? "; …" : ""}`
    : null;
  await store.finishRun(runId, {
    outcome: r.outcome,
    read: r.rows,
    inserted: r.inserted,
    updated: r.updated,
    unchanged: r.unchanged,
    quarantined: 0,
    fromTs: null,
    toTs: null,
    quality: null,
    error: [r.error, rejected].filter(Boolean).join("; ") || null,
  });
  log[r.error ? "error" : r.rejected.length ? "warn" : "info"](r.error ? "instruments import failed" : "instruments imported", {
    run: runId,
    file,
    source: opts.source,
    rows: r.rows,
    inserted: r.inserted,
    updated: r.updated,
    unchanged: r.unchanged,
    rejected: r.rejected.length,
    ...(r.error ? { error: r.error } : {}),
  });
  return r;
}

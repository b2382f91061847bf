// What a source is: something that lists its streams (files, tables, provider series) and reads
// each from a cursor in batches of raw rows. Sources know nothing of validation or stores.
// A source type describes itself with a SourceDescriptor (registry.ts lists them).
import type * as v from "valibot";
import type { Interval, RawRow } from "../domain/bar.ts";
import type { SymbolMarket } from "../domain/symbols.ts";
import type { TsFormat } from "../domain/time.ts";
import type { Checkpoint } from "../stores/types.ts";
import type { CorporateAction, Instrument } from "../domain/actions.ts";
import type { CellRows } from "../domain/cells.ts";
import type { Waits } from "../lib/ratelimit.ts";
import type { Descriptor } from "../lib/descriptor.ts";

/** Rows per read batch and per store transaction when neither the config nor a flag says. */
export const DEFAULT_BATCH_SIZE = 20_000;

export type Cursor = Checkpoint["cursor"];

export type SourceBatch = {
  rows: RawRow[];
  /** Position after the last row of this batch; committed with the batch. */
  cursor: Cursor;
  /** Splits and dividends the provider published with these rows (stored before the batch). */
  actions?: CorporateAction[];
  /** What the provider says the symbols are. */
  instruments?: Instrument[];
};

/** A batch of text rows as cells (delimited files), validated straight into columns by the read worker. */
export type CellBatch = { cells: CellRows; cursor: Cursor };

/** An explicit range to read (a backfill); without it a source reads on from its cursor. */
export type ReadRange = { from?: number; to?: number };

/** What a source may need from its surroundings. */
export type SourceContext = {
  /** User-defined universes from the config. */
  universes?: Record<string, string[]>;
  signal?: AbortSignal;
};

export type Source = {
  readonly name: string;
  readonly type: string;
  /** How rows of this source are read into bars. */
  readonly interval: Interval;
  readonly market?: SymbolMarket;
  readonly tsFormat?: TsFormat;
  readonly timeZone?: string;
  /** Set when the source can be rebuilt from plain config in a worker thread (local files). */
  readonly spec?: { name: string; config: unknown; baseDir?: string };
  /**
   * Compare the last `days` days with the store after each run and re-read the days that differ
   * (src/pipeline/reconcile.ts); the source must read a ReadRange.
   */
  readonly reconcile?: { days: number; deleteMissing: boolean };
  /** Streams read at once (providers: symbols in flight, all under one rate limit). */
  readonly concurrency?: number;
  /** Long waits of the source (a provider's rate limit, Retry-After, retries), for progress and /api/jobs. */
  readonly waits?: Waits;
  /** The independent streams of this source, each with its own checkpoint. */
  streams(): Promise<string[]>;
  /** Batches after `cursor` (null: from the start). Rows are never all held in memory at once. */
  read(stream: string, cursor: Cursor | null, batchSize: number, range?: ReadRange): AsyncIterable<SourceBatch>;
  /** Extra numeric columns its rows carry (`fields.extras`), kept beside their bars. */
  readonly extras?: readonly string[];
  /** The same batches as read(), as cells (sources of delimited text): no object per row. */
  readCells?(stream: string, cursor: Cursor | null, batchSize: number): AsyncIterable<CellBatch>;
};

/** Thrown when a stream cannot be read at all (missing file, missing column): a run failure, not a row error. */
export class SourceError extends Error {
  override name = "SourceError";
}

/** Builds a source of one type from its validated config. */
export type SourceFactory<C> = (name: string, cfg: C, baseDir: string | undefined, ctx: SourceContext) => Source;

/** What a source type says about itself: its config schema, factory, and what the pipeline may do with it. */
export interface SourceDescriptor<S extends v.GenericSchema = v.GenericSchema> extends Descriptor<S, SourceFactory<v.InferOutput<S>>> {
  /** An HTTP market-data provider reading a date range per symbol: gapfill may ask it for missing sessions. */
  readonly provider: boolean;
  /** A CPU-bound local reader the pipeline may rebuild from plain config in a read worker. */
  readonly rebuildInWorker: boolean;
  /** Whether the provider wants an API key (`apiKey`): `ticksync doctor` fails a source that needs one and has none. */
  readonly apiKey?: "required" | "optional";
}

// What the parts of one PostgreSQL store share: its connections and schema, and the state this
// process keeps about the store (made by postgresStore, passed to every module's functions).
import type { BarEvent } from "../events.ts";
import type { PgRollups } from "./rollups/index.ts";
import type { RollupWorker } from "./rollups/worker.ts";
import type { Sql } from "./sql.ts";
import { poolWaitRecorder } from "../../lib/pool-waits.ts";

/**
 * `sql` whose transactions (`begin`) count how long they waited for a pooled connection:
 * postgres.js keeps its pool queue private and has no hook for it, so the wait is timed from the
 * call to the transaction's first line (that includes BEGIN's round trip). Single queries are not timed.
 */
export function timePoolWaits(sql: Sql): Sql {
  const begin = sql.begin.bind(sql) as (...a: unknown[]) => Promise<unknown>;
  const timed = (...args: unknown[]) => {
    const rec = poolWaitRecorder();
    if (!rec) return begin(...args); // no metrics kept in this process
    const fn = args[args.length - 1] as (tx: unknown) => unknown;
    const t0 = performance.now();
    let waiting = true;
    rec.waiting();
    const stop = (got: boolean) => {
      if (!waiting) return;
      waiting = false;
      rec.done(got ? (performance.now() - t0) / 1000 : null);
    };
    return begin(...args.slice(0, -1), (tx: unknown) => (stop(true), fn(tx))).finally(() => stop(false));
  };
  return Object.assign(sql, { begin: timed });
}

export type PgContext = {
  sql: Sql;
  schema: string;
  /** This process, as the owner of the runs it starts (src/stores/common.ts). */
  owner: string;
  /** Called with each batch this process commits (onEvents). */
  listeners: Set<(events: BarEvent[]) => void>;
  /** Whether bars is a TimescaleDB hypertable rather than year partitions; learnt by migrate. */
  timescale: boolean;
  /** Years whose bars partition exists, as far as this process knows. */
  partitions: Set<number>;
  /** Years whose partition is being made, or made, by this process. */
  making: Map<number, Promise<void>>;
  /** Series ids known to be committed, by seriesKey: their rows need not be made. */
  seriesIds: Map<string, number>;
  /**
   * Per series, the newest ts of the batches this process has sent and not yet seen committed or
   * failed (`n` of them): a batch after them is new even though they are not visible yet.
   */
  inFlight: Map<string, { max: number; n: number }>;
  /**
   * Batches of one stream may be in flight together: each commits only after the one before it
   * committed, and not at all when that one failed. Per stream (or run, for batches without a
   * checkpoint): when the last batch sent has its connection, and whether it committed.
   */
  chains: Map<string, { started: Promise<void>; committed: Promise<boolean> }>;
  rollups: PgRollups;
  /** This process' catch-ups of the rollups (rollUp, and in the background for serve). */
  worker: RollupWorker;
};

// QuestDB as a store: bars go in over ILP on HTTP (`/write`) into a WAL table whose designated
// timestamp and DEDUP UPSERT KEYS make every write idempotent; everything is read, and the
// run, quarantine and run-stream tables are written, over its PostgreSQL wire protocol with
// postgres.js.
//
// QuestDB has no transaction across tables, but one ILP request to one table is one
// transaction, answered 204 once it is committed to the WAL. So a batch is two requests in a
// fixed order: its bars, then — only after QuestDB accepted them — one request to the progress
// table that carries both the stream's checkpoint and the run's counters (rows keyed so the
// newest replaces the one before). A crash between the two can only make the next run read
// the batch again, and the dedup keys make that a no-op; the checkpoint never claims bars that
// QuestDB has not accepted, and the run's counters always match its checkpoints.
//
// Modules: context (URL, connection, state), ilp (the line encoder), queue (gathered writes),
// schema (tables, migration), writes (commitBatch), rowhash (each bar's keyed hash, so a re-load
// compares sums instead of reading bars back), exec (queries over HTTP /exec), reads, ledger
// (runs, checkpoints, quarantine), journal (events, replayable by id), leases (epoch tables),
// writer (one writing process at a time).
import { newOwner, readiness } from "../common.ts";
import { bindBarReader, bindJournal, bindLeases, bindLedger } from "../compose.ts";
import type { Store } from "../types.ts";
import { openContext, parseQuestdbUrl } from "./context.ts";
import * as journal from "./journal.ts";
import * as leases from "./leases.ts";
import * as ledger from "./ledger.ts";
import { settled } from "./queue.ts";
import * as reads from "./reads.ts";
import { migrate, QDB_SCHEMA_VERSION, version } from "./schema.ts";
import { commitBatch } from "./writes.ts";
import { releaseWriter } from "./writer.ts";

export { parseQuestdbUrl } from "./context.ts";
export { ILP_LINES_PER_REQUEST, ilpDoubleText } from "./ilp.ts";

export function questdbStore(url: string): Store {
  const { pg, http, location, prefix, lines } = parseQuestdbUrl(url);
  const cx = openContext(pg, http, prefix, lines, newOwner());
  return {
    kind: "questdb",
    journal: true,
    location,
    migrate: async () => migrate(cx),
    ready: () => readiness(() => version(cx), QDB_SCHEMA_VERSION),
    commitBatch: (b) => commitBatch(cx, b),
    ...bindLedger(cx, ledger),
    deleteQuarantine: (ids) => ledger.deleteQuarantine(cx, ids),
    ...bindBarReader(cx, reads),
    // The journal (src/stores/questdb/journal.ts); QuestDB cannot notify another process, so its
    // readers poll.
    ...bindJournal(cx, journal),
    watchEvents: async () => null,
    // Leases by epoch tables: CREATE TABLE is QuestDB's one atomic step (src/stores/questdb/leases.ts).
    ...bindLeases(cx, leases),
    async close() {
      await settled(cx).catch(() => {});
      await releaseWriter(cx).catch(() => {});
      await cx.sql.end({ timeout: 5 });
      // A refused write that no finishRun or commitBatch has reported yet is not lost silently.
      const [unreported] = cx.refused;
      if (unreported) throw new Error(`QuestDB refused a write of run ${unreported[0]} (its bars are not stored): ${unreported[1].message}`);
    },
  };
}

// Pick a store by its URL: sqlite:<path> (the default, embedded), postgres://… (PostgreSQL,
// TimescaleDB when the extension is there), questdb://user:pass@host:pgport/qdb?http=… (QuestDB).
// Run records are written scrubbed of secrets (src/lib/redact.ts): a run's parameters and its
// error text (which may quote a sink's or a provider's URL) are shown by /api/runs, /api/audit,
// alerts and backups, so no secret is kept in the store to be shown later.
import { sqliteStore } from "./sqlite/index.ts";
import { postgresStore } from "./postgres/index.ts";
import { questdbStore } from "./questdb/index.ts";
import type { RunStart, RunSummary, Store } from "./types.ts";
import { redact, redactUrl, redactValue } from "../lib/redact.ts";

export function openStore(url: string): Store {
  if (/^postgres(ql)?:\/\//i.test(url)) return scrubbedRuns(postgresStore(url));
  if (/^questdb:\/\//i.test(url)) return scrubbedRuns(questdbStore(url));
  return scrubbedRuns(sqliteStore(url));
}

/** The store URL as it may be shown: without its password or secret parameters. */
export const displayStoreUrl = (url: string): string => redact(redactUrl(url));

function scrubbedRuns(store: Store): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "startRun") return (run: RunStart) => target.startRun(redactValue(run));
      if (prop === "finishRun") return (id: number, summary: RunSummary) => target.finishRun(id, { ...summary, error: summary.error === null || summary.error === undefined ? summary.error : redact(summary.error) });
      if (prop === "location") return displayStoreUrl(target.location);
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

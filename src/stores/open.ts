// Open a store by its URL (the registry, src/stores/registry.ts, says which): sqlite:<path> (the
// default, embedded), postgres://… (PostgreSQL, TimescaleDB when the extension is there),
// questdb://user:pass@host:pgport/qdb?http=… (QuestDB).
// Run records are written scrubbed of secrets (src/lib/redact.ts): a run's parameters and its
// error text (which may quote a sink's or a provider's URL) are shown by /api/runs, /api/audit,
// alerts and backups, so no secret is kept in the store to be shown later.
import { storeFor } from "./registry.ts";
import type { RunStart, RunSummary, Store } from "./types.ts";
import { redact, redactValue } from "../lib/redact.ts";

export function openStore(url: string): Store {
  return scrubbedRuns(storeFor(url).create(url));
}

/** The store URL as it may be shown: without its password or secret parameters. */
export const displayStoreUrl = (url: string): string => storeFor(url).redact(url);

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

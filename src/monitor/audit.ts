// The audit trail. Every run (ingest, backfill, migrate, sync, verify and repair, backup,
// restore) is already recorded with its parameters, counts and outcome; what this adds is who or
// what started it — the CLI (and the OS user), a scheduled job, or an API call (which token:
// its role, name and fingerprint) — carried through the async calls to wherever a run starts, and a redacted view of it
// all for /api/audit.
import { AsyncLocalStorage } from "node:async_hooks";
import { userInfo } from "node:os";
import type { RunRecord, RunStart, Store } from "../stores/types.ts";
import { redactValue } from "../lib/redact.ts";

export type Actor =
  | { by: "cli"; user: string; command: string }
  | { by: "schedule"; job: string; process?: string }
  | {
      by: "api";
      route: string;
      /** A fingerprint of the bearer token (sha256, 12 hex), never the token. */
      tokenId: string | null;
      remote: string | null;
      /** The role the call was let through with: its token's, admin for this machine without server tokens; null: none (older records too). */
      role: "read" | "operate" | "admin" | "stream" | null;
      /** The token's name ([[server.token]] name, server.tokens[i]), never the token; null without one. */
      caller: string | null;
    }
  | { by: "system"; what: string };

const current = new AsyncLocalStorage<Actor>();

/** Run `fn` on behalf of `actor`: runs it starts record the actor. */
export function withActor<T>(actor: Actor, fn: () => T): T {
  return current.run(actor, fn);
}

export function currentActor(): Actor | undefined {
  return current.getStore();
}

export function cliActor(command: string): Actor {
  let user = process.env.USER ?? "unknown";
  try {
    user = userInfo().username;
  } catch {}
  return { by: "cli", user, command };
}

/** Parameters with secrets masked (src/lib/redact.ts: secret-named keys, URL passwords, known secrets). */
export const redactParams = (value: unknown): unknown => redactValue(value);

/** The store, but runs it starts carry the current actor in their parameters. */
export function auditedStore(store: Store): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "startRun")
        return (run: RunStart) => {
          const actor = currentActor() ?? { by: "system", what: "unattributed" };
          return target.startRun({ ...run, params: { ...(run.params ?? {}), startedBy: actor } });
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

export type AuditEntry = {
  id: number;
  kind: string;
  source: string;
  job: string | null;
  startedBy: Actor | null;
  params: unknown;
  startedAt: string;
  finishedAt: string | null;
  outcome: string;
  counts: { read: number; inserted: number; updated: number; unchanged: number; quarantined: number };
  error: string | null;
};

/** Records from before roles name none: say so (null) rather than leave the field out. */
const apiRole = (a: Actor | null): Actor | null => (a?.by === "api" ? { ...a, role: a.role ?? null, caller: a.caller ?? null } : a);

export function auditEntry(r: RunRecord): AuditEntry {
  const { startedBy, ...params } = (r.params ?? {}) as Record<string, unknown>;
  return {
    id: r.id,
    kind: r.kind,
    source: r.source,
    job: r.job ?? null,
    startedBy: apiRole((redactParams(startedBy) as Actor) ?? null),
    params: redactParams(params),
    startedAt: new Date(r.startedAt).toISOString(),
    finishedAt: r.finishedAt === null ? null : new Date(r.finishedAt).toISOString(),
    outcome: r.outcome,
    counts: { read: r.read, inserted: r.inserted, updated: r.updated, unchanged: r.unchanged, quarantined: r.quarantined },
    error: r.error === null ? null : (redactParams(r.error) as string),
  };
}

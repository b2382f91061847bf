// GET /api/sinks: each configured sink, where it is (redacted), and per collection its sync
// cursor and its last verify. `sinkConsistency` is /metrics' source for the sink gauges too.
import { Hono } from "hono";
import type { Store } from "../../stores/types.ts";
import { consistencyOf, verifyStream, type ConsistencyStatus } from "../../pipeline/verify-sink.ts";
import { sinkStream } from "../../pipeline/sync.ts";
import { redactUrl } from "../../lib/redact.ts";
import type { AppDeps, SinkInfo } from "../deps.ts";
import { describe, json } from "../openapi.ts";
import { SinksBody } from "../schemas/data.ts";
import type { Body } from "../schemas/common.ts";

/** Each sink's last verify, as kept in the store (a verify run by the CLI counts too). */
export async function sinkConsistency(store: Store, sinks: SinkInfo[]): Promise<ConsistencyStatus[]> {
  const all = sinks.flatMap((s) => s.collections.map((collection) => ({ name: s.name, collection })));
  return Promise.all(all.map(async (s) => consistencyOf(s, await store.getCheckpoint(verifyStream(s)))));
}

export function sinkRoutes(deps: Pick<AppDeps, "store" | "sinks">): Hono {
  const { store } = deps;
  const app = new Hono();
  const doc = describe({ summary: "Each sink: where it is, and per collection its sync cursor and last verify", tags: ["operations"], responses: { 200: json(SinksBody, "every sink") } });
  app.get("/", doc, async (c) => {
    const sinks = deps.sinks ?? [];
    const consistency = await sinkConsistency(store, sinks);
    const data = await Promise.all(
      sinks.map(async (s) => ({
        name: s.name,
        kind: s.kind,
        location: redactUrl(s.location),
        collections: await Promise.all(
          s.collections.map(async (collection) => {
            const cp = await store.getCheckpoint(sinkStream({ name: s.name, collection }));
            const k = consistency.find((x) => x.sink === s.name && x.collection === collection)!;
            return {
              collection,
              cursor: cp ? { ...cp.cursor, ...(typeof cp.cursor.ts === "number" ? { ts: new Date(cp.cursor.ts).toISOString() } : {}) } : null,
              consistency: { ...k, checkedAt: k.checkedAt === null ? null : new Date(k.checkedAt).toISOString() },
            };
          }),
        ),
      })),
    );
    return c.json({ data } satisfies Body<typeof SinksBody>);
  });
  return app;
}

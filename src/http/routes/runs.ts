// GET /api/runs: the run ledger, newest first, keyset-paged by run id.
import { Hono } from "hono";
import * as v from "valibot";
import type { Store } from "../../stores/types.ts";
import { redactValue } from "../../lib/redact.ts";
import { IdCursor, Limit } from "../query.ts";
import { describe, json, query } from "../openapi.ts";
import { RunsBody } from "../schemas/ops.ts";
import type { Body } from "../schemas/common.ts";
import { MAX_RECORDS_PAGE } from "../limits.ts";

const RunsQuery = v.strictObject({ limit: Limit(MAX_RECORDS_PAGE), before: IdCursor, source: v.optional(v.string()) });

export function runRoutes(store: Store): Hono {
  const app = new Hono();
  const doc = describe({ summary: "The run ledger, newest first", description: "Keyset-paged by run id: `next` → `before`.", tags: ["operations"], responses: { 200: json(RunsBody, "a page of runs") } });
  app.get("/", doc, query(RunsQuery), async (c) => {
    const q = { output: c.req.valid("query") };
    const limit = q.output.limit ?? 50;
    const runs = await store.listRuns({ limit: limit + 1, before: q.output.before, source: q.output.source });
    const page = runs.slice(0, limit);
    return c.json({
      // Runs written before redaction existed may hold a secret: scrub on the way out too.
      data: page.map((r) => ({
        ...redactValue(r),
        startedAt: new Date(r.startedAt).toISOString(),
        finishedAt: r.finishedAt === null ? null : new Date(r.finishedAt).toISOString(),
        from: r.fromTs === null ? null : new Date(r.fromTs).toISOString(),
        to: r.toTs === null ? null : new Date(r.toTs).toISOString(),
      })),
      next: runs.length > limit ? String(page[page.length - 1]!.id) : null,
    } satisfies Body<typeof RunsBody>);
  });
  return app;
}

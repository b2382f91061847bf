// GET /api/audit: every run, sync, verify, repair, backup and restore: who started it, with what,
// and how it ended (read from the run ledger, src/monitor/audit.ts).
import { Hono } from "hono";
import * as v from "valibot";
import type { Store } from "../../stores/types.ts";
import { auditEntry } from "../../monitor/audit.ts";
import { IdCursor, Limit } from "../query.ts";
import { describe, json, query } from "../openapi.ts";
import { AuditBody } from "../schemas/ops.ts";
import type { Body } from "../schemas/common.ts";
import { MAX_AUDIT_SCAN, MAX_RECORDS_PAGE } from "../limits.ts";

const AuditQuery = v.strictObject({ limit: Limit(MAX_RECORDS_PAGE), before: IdCursor, kind: v.optional(v.string()), source: v.optional(v.string()) });

export function auditRoutes(store: Store): Hono {
  const app = new Hono();
  const doc = describe({
    summary: "Who started each run, with what, and how it ended",
    description: "Newest first, keyset-paged: `next` → `before`. Filtering by `kind` reads at most 5000 runs a page; a page that reaches that ends early, with `next`.",
    tags: ["operations"],
    responses: { 200: json(AuditBody, "a page of audit entries") },
  });
  app.get("/", doc, query(AuditQuery), async (c) => {
    const q = { output: c.req.valid("query") };
    const limit = q.output.limit ?? 100;
    const out = [];
    let before = q.output.before;
    // Filtering by kind pages through runs until the page is full, or MAX_AUDIT_SCAN runs were
    // read: then the page ends early and `next` continues after the last run read.
    let scanned = 0;
    let more = false;
    for (;;) {
      const rows = await store.listRuns({ limit: 500, before, source: q.output.source });
      scanned += rows.length;
      for (const r of rows) if (!q.output.kind || r.kind === q.output.kind) out.push(auditEntry(r));
      if (out.length > limit || rows.length < 500) break;
      before = rows[rows.length - 1]!.id;
      if (scanned >= MAX_AUDIT_SCAN) {
        more = true;
        break;
      }
    }
    const page = out.slice(0, limit);
    const next = out.length > limit ? String(page[page.length - 1]!.id) : more ? String(before) : null;
    return c.json({ data: page, next } satisfies Body<typeof AuditBody>);
  });
  return app;
}

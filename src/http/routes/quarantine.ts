// GET /api/quarantine: the rows validation refused, with their reasons; POST
// /api/quarantine/replay: validate them again after a fix (src/pipeline/replay-quarantine.ts).
import { Hono } from "hono";
import * as v from "valibot";
import { replayQuarantine } from "../../pipeline/replay-quarantine.ts";
import { withActor } from "../../monitor/audit.ts";
import { apiActor } from "../actor.ts";
import type { AppDeps } from "../deps.ts";
import { badRequest, IdCursor, Limit } from "../query.ts";
import { body, describe, error, json, query } from "../openapi.ts";
import { QuarantineBody, QuarantineReplayBody } from "../schemas/ops.ts";
import type { Body } from "../schemas/common.ts";
import { MAX_RECORDS_PAGE, MAX_REPLAY_RECORDS } from "../limits.ts";
import { requireScope } from "../security.ts";

const QuarantineQuery = v.strictObject({
  limit: Limit(MAX_RECORDS_PAGE),
  before: IdCursor,
  source: v.optional(v.string()),
  rule: v.optional(v.string()),
  run: IdCursor,
});

// Replay after a fix: validate the selected records' raw rows again with the source's current
// settings; rows that pass are stored by a `replay` run and leave the quarantine. `ids`, or
// `all: true` with the filters (source, rule, run) to replay whatever matches them.
const ReplayBody = v.pipe(
  v.strictObject({
    ids: v.optional(v.pipe(v.array(v.pipe(v.number(), v.integer(), v.minValue(1))), v.minLength(1, "expected at least one id"), v.maxLength(MAX_REPLAY_RECORDS, `at most ${MAX_REPLAY_RECORDS} ids`))),
    all: v.optional(v.literal(true, "all must be true when given")),
    source: v.optional(v.pipe(v.string(), v.nonEmpty())),
    rule: v.optional(v.pipe(v.string(), v.nonEmpty())),
    run: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
    limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_REPLAY_RECORDS, `limit must be at most ${MAX_REPLAY_RECORDS}`)), MAX_REPLAY_RECORDS),
  }),
  v.check((b) => (b.ids !== undefined) !== (b.all === true), "give either ids or all: true (with source, rule or run to narrow it)"),
);

export function quarantineRoutes(deps: Pick<AppDeps, "store" | "replayContext">): Hono {
  const { store } = deps;
  const app = new Hono();
  const list = describe({ summary: "The rows validation refused, with their reasons", description: "Newest first, keyset-paged: `next` → `before`.", tags: ["operations"], responses: { 200: json(QuarantineBody, "a page of quarantined rows") } });
  app.get("/", list, query(QuarantineQuery), async (c) => {
    const q = { output: c.req.valid("query") };
    const limit = q.output.limit ?? 100;
    const rows = await store.listQuarantine({ limit: limit + 1, before: q.output.before, source: q.output.source, rule: q.output.rule, runId: q.output.run });
    const page = rows.slice(0, limit);
    return c.json({
      data: page.map((r) => ({ ...r, ts: r.ts === null ? null : new Date(r.ts).toISOString(), createdAt: new Date(r.createdAt).toISOString() })),
      next: rows.length > limit ? String(page[page.length - 1]!.id) : null,
    } satisfies Body<typeof QuarantineBody>);
  });
  const replay = describe({
    summary: "Validate quarantined rows again after a fix",
    description: "Rows that pass are stored by a `replay` run and leave the quarantine. Give `ids`, or `all: true` with source, rule or run to narrow it.",
    tags: ["operations"],
    requestBody: body(ReplayBody, "which records", true),
    responses: {
      200: json(QuarantineReplayBody, "what was released and what stayed"),
      404: error("Not Found: quarantine replay is not available in this process"),
      501: error("Not Implemented: the store cannot remove quarantine records"),
    },
  });
  app.post("/replay", replay, requireScope("operate"), async (c) => {
    if (!deps.replayContext) return c.json({ error: "quarantine replay is not available in this process" }, 404);
    if (!store.deleteQuarantine) return c.json({ error: `the ${store.kind} store cannot remove quarantine records, so it cannot replay them` }, 501);
    const body = v.safeParse(ReplayBody, await c.req.json().catch(() => undefined));
    if (!body.success) return badRequest(c, body.issues);
    const { ids, source, rule, run, limit } = body.output;
    const result = await withActor(apiActor(c), () => replayQuarantine(store, { ids, source, rule, run, limit }, deps.replayContext!));
    return c.json({ data: result } satisfies Body<typeof QuarantineReplayBody>);
  });
  return app;
}

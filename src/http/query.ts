// Query-string pieces every /api route validates alike, and the 400 they answer with.
import type { Context } from "hono";
import * as v from "valibot";
import { parseTimestamp } from "../domain/time.ts";

/** An instant: ISO date, ISO date-time or epoch milliseconds, as epoch ms. */
export const Instant = v.pipe(
  v.string(),
  v.transform((s) => parseTimestamp(s)),
  v.number("expected an ISO date (2024-01-31), an ISO date-time or epoch milliseconds"),
);

export const Limit = (max: number) =>
  v.optional(
    v.pipe(v.string(), v.regex(/^\d+$/, "expected a whole number"), v.transform(Number), v.minValue(1, "limit must be at least 1"), v.maxValue(max, `limit must be at most ${max}`)),
  );

export const IdCursor = v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "expected a whole number"), v.transform(Number)));

/** Where a page of bars ended: the last bar's ts and source (bars of one ts are ordered by source). */
export type BarCursor = { ts: number; source: string };

/** A BarCursor as the opaque `next` of a page. */
export const encodeBarCursor = (c: BarCursor): string => Buffer.from(JSON.stringify(c)).toString("base64url");

/** A `cursor` query parameter: a `next` returned by a previous page. */
export const BarCursorParam = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    try {
      const c = JSON.parse(Buffer.from(dataset.value, "base64url").toString("utf8"));
      if (typeof c?.ts === "number" && typeof c?.source === "string") return { ts: c.ts as number, source: c.source as string };
    } catch {}
    addIssue({ message: "expected a cursor returned as `next` by a previous page" });
    return NEVER;
  }),
);

/** 400 with the fields that were wrong and why. */
export function invalid(c: Context, issues: { field: string; message: string }[]) {
  return c.json({ error: "invalid request", issues }, 400);
}

export function badRequest(c: Context, issues: v.BaseIssue<unknown>[]) {
  return invalid(c, issues.map((i) => ({ field: (i.path ?? []).map((p) => String(p.key)).join("."), message: i.message })));
}

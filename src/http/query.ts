// Query-string pieces every /api route validates alike, and the 400 they answer with.
import type { Context, MiddlewareHandler } from "hono";
import * as v from "valibot";
import { IntervalSchema } from "../domain/bar.ts";
import { parseTimestamp } from "../domain/time.ts";
import { MAX_ISSUES, MAX_LIST_ITEMS, MAX_MESSAGE_CHARS, MAX_QUERY_BYTES, MAX_QUERY_PARAMS } from "./limits.ts";

/** An instant: ISO date, ISO date-time or epoch milliseconds, as epoch ms. */
export const Instant = v.pipe(
  v.string(),
  v.description("an ISO date (2024-01-31), an ISO date-time or epoch milliseconds"),
  v.transform((s) => parseTimestamp(s)),
  v.number("expected an ISO date (2024-01-31), an ISO date-time or epoch milliseconds"),
);

export const Limit = (max: number) =>
  v.optional(
    v.pipe(v.string(), v.regex(/^\d+$/, "expected a whole number"), v.description(`page size, 1 to ${max}`), v.transform(Number), v.minValue(1, "limit must be at least 1"), v.maxValue(max, `limit must be at most ${max}`)),
  );

export const IdCursor = v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "expected a whole number"), v.description("a record id (a page's `next`)"), v.transform(Number)));

/** Where a page of bars ended: the last bar's ts and source (bars of one ts are ordered by source). */
export type BarCursor = { ts: number; source: string };

/** A BarCursor as the opaque `next` of a page. */
export const encodeBarCursor = (c: BarCursor): string => Buffer.from(JSON.stringify(c)).toString("base64url");

/** A `cursor` query parameter: a `next` returned by a previous page. */
export const BarCursorParam = v.pipe(
  v.string(),
  v.description("the `next` of the previous page"),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    try {
      const c = JSON.parse(Buffer.from(dataset.value, "base64url").toString("utf8"));
      if (typeof c?.ts === "number" && typeof c?.source === "string") return { ts: c.ts as number, source: c.source as string };
    } catch {}
    addIssue({ message: "expected a cursor returned as `next` by a previous page" });
    return NEVER;
  }),
);

/** The query of a page of one series' bars (/api/bars, /api/indicators); each route adds its own. */
export const barPageEntries = (maxPage: number) => ({
  symbol: v.pipe(v.string("symbol is required"), v.nonEmpty("symbol is required")),
  interval: v.optional(IntervalSchema, "1d"),
  source: v.optional(v.pipe(v.string(), v.nonEmpty())),
  from: v.optional(Instant),
  to: v.optional(Instant),
  limit: Limit(maxPage),
  cursor: v.optional(BarCursorParam),
});

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length} characters)` : s);

/** 400 with the fields that were wrong and why: the first MAX_ISSUES, each message clipped. */
export function invalid(c: Context, issues: { field: string; message: string }[]) {
  const shown = issues.slice(0, MAX_ISSUES).map((i) => ({ field: clip(i.field, 100), message: clip(i.message, MAX_MESSAGE_CHARS) }));
  return c.json({ error: "invalid request", issues: shown, ...(issues.length > MAX_ISSUES ? { moreIssues: issues.length - MAX_ISSUES } : {}) }, 400);
}

/** A path segment: valibot's ({ key }) or Standard Schema's (a key, or { key }). */
type PathItem = PropertyKey | { key: unknown };
const segment = (p: PathItem) => String(typeof p === "object" && p !== null ? p.key : p);

/** 400 for valibot issues (v.safeParse, or the validators of src/http/openapi.ts through Standard Schema). */
export function badRequest(c: Context, issues: readonly { message: string; path?: readonly PathItem[] | undefined }[]) {
  return invalid(c, issues.map((i) => ({ field: (i.path ?? []).map(segment).join("."), message: i.message })));
}

/**
 * A POST's optional JSON body, checked by the schema that documents it: no body is `{}` (these
 * bodies' fields are all optional); text that is not JSON, or JSON the schema refuses (`null`, a
 * list, a field of the wrong type), is a 400 naming why.
 */
export async function optionalJsonBody<S extends v.GenericSchema>(c: Context, schema: S): Promise<{ output: v.InferOutput<S> } | { response: Response }> {
  const text = await c.req.text();
  let value: unknown = {};
  if (text.trim() !== "") {
    try {
      value = JSON.parse(text);
    } catch {
      return { response: invalid(c, [{ field: "body", message: "expected a JSON object" }]) };
    }
  }
  const r = v.safeParse(schema, value);
  return r.success ? { output: r.output } : { response: badRequest(c, r.issues) };
}

/**
 * Every request's query string, before any route parses it: at most MAX_QUERY_BYTES and
 * MAX_QUERY_PARAMS, each parameter once (a repeated one would be read differently by different
 * parsers on the way).
 */
export const queryGuard: MiddlewareHandler = async (c, next) => {
  const url = c.req.url;
  const at = url.indexOf("?");
  if (at === -1) return next();
  const bytes = url.length - at - 1;
  if (bytes > MAX_QUERY_BYTES) return invalid(c, [{ field: "query", message: `the query string is at most ${MAX_QUERY_BYTES} bytes (got ${bytes})` }]);
  const all = c.req.queries();
  const names = Object.keys(all);
  if (names.length > MAX_QUERY_PARAMS) return invalid(c, [{ field: "query", message: `at most ${MAX_QUERY_PARAMS} query parameters (got ${names.length})` }]);
  const repeated = names.filter((n) => all[n]!.length > 1);
  if (repeated.length) return invalid(c, repeated.map((n) => ({ field: n, message: `given ${all[n]!.length} times: give it once` })));
  return next();
};

/** A comma-separated list parameter (such as `symbols=`) of at most MAX_LIST_ITEMS items. */
export function listGuard(name: string): MiddlewareHandler {
  return async (c, next) => {
    const raw = c.req.query(name);
    const n = raw ? raw.split(",").filter((s) => s.trim() !== "").length : 0;
    if (n > MAX_LIST_ITEMS) return invalid(c, [{ field: name, message: `at most ${MAX_LIST_ITEMS} items (got ${n})` }]);
    return next();
  };
}

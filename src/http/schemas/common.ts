// The response bodies every route shares (errors, pages) and the pieces the others are built of.
// Each is a valibot schema: src/http/openapi.ts documents it, and the handler's body is typed by
// it (`satisfies Body<typeof X>`), so the document and the server cannot drift apart unseen.
import * as v from "valibot";
import { INTERVALS } from "../../domain/bar.ts";
import { MARKET_CODES } from "../../domain/markets/index.ts";

/** What a handler's JSON body must be for schema `S`. */
export type Body<S extends v.GenericSchema> = v.InferOutput<S>;

/** An ISO 8601 date-time (UTC, as Date#toISOString writes it). */
export const IsoTime = v.pipe(v.string(), v.isoTimestamp());
/** A local date, YYYY-MM-DD. */
export const IsoDay = v.pipe(v.string(), v.isoDate());
export const NullableIso = v.nullable(IsoTime);
export const Interval = v.picklist(INTERVALS);
export const Market = v.picklist(MARKET_CODES);
export const MarketPhase = v.picklist(["closed", "pre", "open", "break", "post"]);
export const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
export const NullableNumber = v.nullable(v.number());
/** An object whose fields are the producer's own (run parameters, provider details). */
export const Open = v.record(v.string(), v.unknown());

/** Every error: a short `error`, and a `message` that says what to do where there is one. */
export const ErrorBody = v.object({
  error: v.pipe(v.string(), v.description("what went wrong, in a few words")),
  message: v.optional(v.pipe(v.string(), v.description("why, and what to do"))),
});

/** A 400: the fields that were wrong and why (src/http/query.ts invalid). */
export const InvalidBody = v.object({
  error: v.literal("invalid request"),
  issues: v.pipe(
    v.array(v.object({ field: v.pipe(v.string(), v.description("the parameter (dotted path in a body); `query` for the query string as a whole")), message: v.string() })),
    v.description("at most 20, each message clipped"),
  ),
  moreIssues: v.optional(v.pipe(Count, v.description("issues beyond the ones listed"))),
});

/** A 404 of an unknown path. */
export const NotFoundBody = v.object({ error: v.string(), path: v.optional(v.string()), message: v.optional(v.string()) });

/** A page keyed by record id: `next` is the `before` of the following page (null: the last page). */
export const idPage = <T extends v.GenericSchema>(item: T) => v.object({ data: v.array(item), next: v.nullable(v.pipe(v.string(), v.description("pass as `before` for the next page; null on the last page"))) });

/** `{ data: [...] }`. */
export const listOf = <T extends v.GenericSchema>(item: T) => v.object({ data: v.array(item) });

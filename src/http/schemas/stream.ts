// The query of the live feed's routes (/api/ws, /api/stream, /api/ws/legacy), for the document
// only: src/stream/protocol.ts parses it (parseStreamRequest), with the bounds of src/http/query.ts
// listGuard. Kept beside that parser's rules: symbols a comma list (or *), since an event id.
import * as v from "valibot";
import { MAX_LIST_ITEMS } from "../limits.ts";
import { STATUS_EVENTS } from "../../stream/protocol.ts";

export const WsQuery = v.object({
  symbols: v.optional(v.pipe(v.string(), v.description(`symbols to subscribe to at once, comma-separated (at most ${MAX_LIST_ITEMS}), or * for every symbol`))),
  since: v.optional(v.pipe(v.string(), v.regex(/^\d+$/), v.description("replay the events after this event id first"))),
  token: v.optional(v.pipe(v.string(), v.description("the token, for clients that cannot send Authorization"))),
});

export const SseQuery = v.object({
  ...WsQuery.entries,
  symbols: v.optional(v.pipe(v.string(), v.description(`symbols, comma-separated (at most ${MAX_LIST_ITEMS}), or *; required unless \`events\` is given`))),
  events: v.optional(v.pipe(v.string(), v.description(`status events to watch, comma-separated: ${STATUS_EVENTS.join(", ")}`))),
});

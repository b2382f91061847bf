// GET /api/replay?symbols=A,B&from=&to=&interval=[&source=][&cursor=]: the stored bars of several
// symbols merged in (ts, symbol, source) order, streamed as NDJSON, a bar a line (docs/stream.md,
// "Replay"). The body is a pull stream: each read of the client pulls one page from the store
// (sent as ~190 kB chunks), so a slow client slows the reads and a replay holds a few pages in
// memory at most (`replay.pageRows`). Token rules are /api/bars' (the app's security middleware).
import { Hono } from "hono";
import * as v from "valibot";
import { IntervalSchema } from "../../domain/bar.ts";
import { normaliseSymbol } from "../../domain/symbols.ts";
import type { Store } from "../../stores/types.ts";
import { decodeRangeCursor, encodeRangeCursor, ndjsonLines, openRange, type ReplayConfig } from "../../stream/range-read.ts";
import { Instant, invalid } from "../query.ts";
import { describe, query, schemaOf } from "../openapi.ts";
import { ReplayLine } from "../schemas/bars.ts";

const replayQuery = v.strictObject({
  symbols: v.pipe(v.string("symbols is required: a comma-separated list such as PKN.WA,CDR.WA"), v.nonEmpty("symbols is required"), v.description("comma-separated, at most replay.maxSymbols")),
  interval: v.optional(IntervalSchema, "1d"),
  source: v.optional(v.pipe(v.string(), v.nonEmpty())),
  from: Instant,
  to: v.optional(Instant),
  cursor: v.optional(v.pipe(v.string(), v.description("the `next` of a truncated replay"))),
  token: v.optional(v.pipe(v.string(), v.description("the token, for clients that cannot send Authorization"))),
});

/** Bars per chunk of the body (~190 kB of lines): a page goes out in several. */
const CHUNK_ROWS = 1024;

export function replayRoutes(store: Store, limits: ReplayConfig, now: () => number = Date.now): Hono {
  const app = new Hono();
  const doc = describe({
    summary: "Several symbols' stored bars, merged, as NDJSON",
    description: "Bars in (ts, symbol, source) order, a bar a line, streamed as the client reads. Past replay.maxRows the last line is `{\"type\":\"truncated\",\"next\":…}`: continue with cursor=<next>. docs/stream.md, Replay.",
    tags: ["stream"],
    responses: { 200: { description: "a bar a line; the last line may say the replay was truncated", content: { "application/x-ndjson": schemaOf(ReplayLine) } } },
  });
  app.get("/", doc, query(replayQuery), async (c) => {
    const q = { output: c.req.valid("query") };
    const { interval, source, from } = q.output;
    const to = q.output.to ?? now();
    if (from > to) return invalid(c, [{ field: "from", message: "from must not be after to" }]);
    const list = q.output.symbols.split(",").filter((s) => s.trim() !== "");
    if (list.length > limits.maxSymbols) return invalid(c, [{ field: "symbols", message: `at most ${limits.maxSymbols} symbols per replay (got ${list.length})` }]);
    const symbols = new Set<string>();
    for (const raw of list) {
      const n = normaliseSymbol(raw.trim());
      if (!n.ok) return invalid(c, [{ field: "symbols", message: n.reason }]);
      symbols.add(n.symbol);
    }
    const after = q.output.cursor === undefined ? undefined : decodeRangeCursor(q.output.cursor);
    if (after === null) return invalid(c, [{ field: "cursor", message: "expected the `next` of a truncated replay" }]);
    const reader = openRange(store, { symbols: [...symbols], interval, source, from, to, after });
    let sent = 0;
    let last: { ts: number; symbol: string; source: string } | null = after ?? null;
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(ctl) {
          const want = Math.min(limits.pageRows, limits.maxRows - sent);
          if (want <= 0) {
            // The row bound: the client continues with `cursor=<next>`.
            ctl.enqueue(Buffer.from(`{"type":"truncated","rows":${sent},"next":"${encodeRangeCursor(last!)}"}\n`));
            return ctl.close();
          }
          const { rows } = await reader.next(want);
          if (rows.length) {
            sent += rows.length;
            const r = rows[rows.length - 1]!;
            last = { ts: r[0], symbol: r[1], source: r[2] };
            // Buffer.from: several times faster than TextEncoder on a page of ASCII lines.
            for (let i = 0; i < rows.length; i += CHUNK_ROWS) ctl.enqueue(Buffer.from(ndjsonLines(rows, interval, i, Math.min(rows.length, i + CHUNK_ROWS))));
          }
          if (rows.length < want) ctl.close();
        },
      },
      // Nothing is read ahead of the client: one page at a time.
      { highWaterMark: 0 },
    );
    return c.body(body, 200, { "Content-Type": "application/x-ndjson; charset=utf-8", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" });
  });
  return app;
}

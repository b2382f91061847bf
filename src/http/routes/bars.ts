// GET /api/bars: a keyset-paged page of a symbol's bars; rolled up from finer bars when the store
// has none at the interval asked for (src/http/derived.ts), or adjusted for the stored splits and
// dividends (`adjusted=true`, src/domain/actions.ts).
import { Hono, type Context } from "hono";
import * as v from "valibot";
import { barValues, barValuesJson, barsJson, type Bar, type Interval } from "../../domain/bar.ts";
import { adjustBars, dedupeActions } from "../../domain/actions.ts";
import type { Store } from "../../stores/types.ts";
import type { TicksyncMetrics } from "../../lib/metrics.ts";
import { barPageEntries, encodeBarCursor } from "../query.ts";
import { rolledUpBars } from "../derived.ts";
import { resolveSymbol } from "../resolve-symbol.ts";
import { barsArrow } from "../../domain/arrow-bars.ts";
import { BAR_FORMATS, barsCsv, barsNdjson, CONTENT_TYPES, pageClosed, pageClosedAt, sendPage, type BarFormat } from "../representation.ts";
import { binaryBody, describe, error, mediaType, NOT_MODIFIED, PAGE_HEADERS, query, schemaOf, textBody } from "../openapi.ts";
import { AppliedActionSchema, BarPage, BarPageHead, BarSchema } from "../schemas/bars.ts";
import type { Body } from "../schemas/common.ts";

/**
 * A page of raw bars adjusted for the symbol's stored actions, per source (each source's own
 * record of an action first, one record per action). Dividend factors take the raw close of the
 * last stored bar of the same series before the ex-date.
 */
async function adjustedPage(store: Store, symbol: string, interval: Interval, page: Bar[]) {
  const all = await store.listActions!(symbol);
  const bars: Bar[] = [];
  const actions: Body<typeof AppliedActionSchema>[] = [];
  for (const [source, group] of Map.groupBy(page, (b) => b.source)) {
    const chosen = dedupeActions(all, source);
    const prevClose = async (exDate: number) => {
      const before = await store.queryBars({ symbol, interval, source, from: exDate - 45 * 86_400_000, to: exDate - 1, limit: 100_000 });
      return before.at(-1)?.close ?? null;
    };
    const adj = await adjustBars(group, chosen, prevClose);
    bars.push(...adj.bars);
    for (const a of adj.applied) actions.push({ series: source, ...a, exDate: new Date(a.exDate).toISOString().slice(0, 10) } satisfies Body<typeof AppliedActionSchema>);
  }
  // Back in the page's (ts, source) order.
  bars.sort((a, b) => a.ts - b.ts || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
  return { bars, actions };
}

/** A page's JSON: `head`'s fields, then `data` (JSON text of the bars, barsJson) and `next`, as JSON.stringify({ ...head, data, next }) writes it. */
const pageJson = (head: Body<typeof BarPageHead>, data: string, next: string | null) => `${JSON.stringify(head).slice(0, -1)},"data":${data},"next":${JSON.stringify(next)}}`;

const barsQuery = (maxPage: number) =>
  v.strictObject({
    ...barPageEntries(maxPage),
    /** true: prices adjusted for the stored splits and dividends, on read (src/domain/actions.ts). */
    adjusted: v.optional(v.pipe(v.picklist(["true", "false"], "expected true or false"), v.description("prices adjusted for the stored splits and dividends"))),
    /** The body's format: json (the page object), ndjson (a bar a line), csv (header + rows), arrow (Arrow IPC stream). */
    format: v.optional(v.pipe(v.picklist(BAR_FORMATS, `expected one of ${BAR_FORMATS.join(", ")}`), v.description("the body's format")), "json"),
  });

export type BarRouteOptions = { maxPage: number; now: () => number; privateCache: boolean };

export function barRoutes(store: Store, metrics: TicksyncMetrics, opts: BarRouteOptions): Hono {
  const { maxPage } = opts;
  const BarsQuery = barsQuery(maxPage);
  const app = new Hono();
  const doc = describe({
    summary: "A page of one series' bars",
    description: "Keyset-paged (`next` → `cursor`); rolled up from finer stored bars when none are stored at `interval` (header X-Ticksync-Rollup: materialised or on_read); `adjusted=true` adjusts for stored splits and dividends.",
    tags: ["data"],
    responses: {
      200: {
        description: "the page: format=json the page object; ndjson a bar a line; csv a header and a bar a line; arrow an Arrow IPC stream (`next` in X-Ticksync-Next)",
        headers: PAGE_HEADERS,
        content: {
          "application/json": schemaOf(BarPage),
          [mediaType(CONTENT_TYPES.ndjson)]: schemaOf(BarSchema),
          [mediaType(CONTENT_TYPES.csv)]: textBody("source,symbol,interval,ts,open,high,low,close,volume,adjClose,turnover,trades, then a bar per CRLF line"),
          [mediaType(CONTENT_TYPES.arrow)]: binaryBody("an Arrow IPC stream of the bars"),
        },
      },
      304: NOT_MODIFIED,
      501: error("Not Implemented: adjusted=true on a store that keeps no corporate actions"),
    },
  });
  app.get("/", doc, query(BarsQuery), async (c) => {
    const q = { output: c.req.valid("query") };
    const { interval, source, from, to, cursor, format } = q.output;
    const limit = q.output.limit ?? Math.min(1000, maxPage);
    if (from !== undefined && to !== undefined && from > to)
      return c.json({ error: "invalid request", issues: [{ field: "from", message: "from must not be after to" }] }, 400);
    const resolved = await resolveSymbol(store, q.output.symbol);
    if ("error" in resolved) return c.json({ error: "invalid request", issues: [{ field: "symbol", message: resolved.error }] }, 400);
    const symbol = resolved.symbol;
    // No bars at this interval but finer ones: rolled up along the exchange's sessions, from the
    // store's materialised rollups when it keeps them (Postgres), else on read.
    const adjusted = q.output.adjusted === "true";
    if (adjusted && !store.listActions) return c.json({ error: `the ${store.kind} store keeps no corporate actions, so it cannot adjust prices` }, 501);
    const rolled = await rolledUpBars(store, { symbol, interval, source, from, to, limit, after: cursor });
    if (rolled && adjusted)
      return c.json({ error: "invalid request", issues: [{ field: "adjusted", message: `adjusted prices need stored ${interval} bars; ${interval} is rolled up here` }] }, 400);
    if (rolled) {
      const path = rolled.materialised ? "materialised" : "on_read";
      metrics.rollupPages.inc({ path });
      c.header("X-Ticksync-Rollup", path);
      const next = rolled.next && encodeBarCursor(rolled.next);
      return send(c, format, rolled.bars, next, to, () => pageJson({ symbol, interval, rolledUpFrom: rolled.from, excluded: rolled.excluded }, barsJson(rolled.bars), next));
    }
    const q1 = { symbol, interval, source, from, to, limit: limit + 1, after: cursor };
    if (format === "json" && !adjusted) {
      // The common page: written straight from the store's rows, no object per bar.
      const rows = store.queryBarValues ? await store.queryBarValues(q1) : (await store.queryBars(q1)).map(barValues);
      const n = Math.min(rows.length, limit);
      const last = rows[n - 1];
      const next = rows.length > limit && last ? encodeBarCursor({ ts: last[3], source: last[0] }) : null;
      const closed = n > 0 && pageClosedAt(symbol, interval, last![3], next !== null, to, opts.now());
      return sendPage(c, pageJson({ symbol, interval }, barValuesJson(rows, n), next), "json", { closed, privateCache: opts.privateCache });
    }
    const bars = await store.queryBars(q1);
    const page = bars.slice(0, limit);
    const last = page[page.length - 1];
    const next = bars.length > limit && last ? encodeBarCursor({ ts: last.ts, source: last.source }) : null;
    if (adjusted) {
      const adj = await adjustedPage(store, symbol, interval, page);
      return send(c, format, adj.bars, next, to, () => pageJson({ symbol, interval, adjusted: true, actions: adj.actions }, barsJson(adj.bars), next));
    }
    return send(c, format, page, next, to, () => pageJson({ symbol, interval }, barsJson(page), next));
  });
  /** The page in its format, with its ETag and Cache-Control (src/http/representation.ts); ndjson, csv and arrow carry `next` in X-Ticksync-Next. */
  function send(c: Context, format: BarFormat, bars: Bar[], next: string | null, to: number | undefined, json: () => string) {
    const closed = bars.length > 0 && pageClosed(bars[0]!.symbol, bars[0]!.interval, bars, next !== null, to, opts.now());
    if (format !== "json" && next) c.header("X-Ticksync-Next", next);
    const body = format === "json" ? json() : format === "ndjson" ? barsNdjson(bars) : format === "csv" ? barsCsv(bars) : barsArrow(bars);
    return sendPage(c, body, format, { closed, privateCache: opts.privateCache });
  }
  return app;
}

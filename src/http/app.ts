// The HTTP surface: probes, Prometheus metrics and the read API, as one Hono app. It depends
// on the store contract and the scheduler, never on a particular store.
import { Hono, type Context } from "hono";
import * as v from "valibot";
import { IntervalSchema, barJson, type Bar, type Interval } from "../domain/bar.ts";
import { adjustBars, dedupeActions, type Instrument } from "../domain/actions.ts";
import { marketOf, normaliseSymbol } from "../domain/symbols.ts";
import { MarketSchema, marketCodes } from "../domain/markets/index.ts";
import type { Store } from "../stores/types.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import type { Scheduler } from "../scheduler/scheduler.ts";
import { log } from "../lib/log.ts";
import { dashboardRoutes } from "./dashboard/routes.ts";
import { freshness } from "../monitor/freshness.ts";
import { rates } from "../monitor/rates.ts";
import { replayQuarantine, type ContextOf } from "../pipeline/replay-quarantine.ts";
import { consistencyOf, verifyStream, type ConsistencyStatus } from "../pipeline/verify-sink.ts";
import { sinkStream } from "../pipeline/sync.ts";
import type { Hub } from "../stream/hub.ts";
import type { StreamConfig } from "../stream/config.ts";
import { wsEndpoint } from "../stream/ws.ts";
import { getConnInfo } from "hono/bun";
import { auditEntry, withActor, type Actor } from "../monitor/audit.ts";
import type { Alerts } from "../monitor/alerts.ts";
import { badRequest, BarCursorParam, encodeBarCursor, IdCursor, Instant, Limit, listGuard, queryGuard } from "./query.ts";
import { readGuard, securityMiddleware, type SecurityConfig } from "./security.ts";
import { MAX_AUDIT_SCAN, MAX_FRESHNESS_DAYS, MAX_RATE_BUCKETS, MAX_RECORDS_PAGE, MAX_REPLAY_RECORDS } from "./limits.ts";
import { sseEndpoint } from "../stream/sse.ts";
import { registerDerivedRoutes, rolledUpBars } from "./derived.ts";
import type { IndicatorsConfig } from "../domain/indicators.ts";
import { jobWaiting } from "../pipeline/progress.ts";
import { redact, redactUrl, redactValue } from "../lib/redact.ts";

const INSTRUMENT_FIELDS = ["name", "exchange", "currency", "type", "sector", "industry", "isin"] as const;

/** Instrument fields of a symbol: each the newest non-null value any source gave; and by source. */
function instrumentFields(list: Instrument[]) {
  const sorted = [...list].sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0));
  const merged = Object.fromEntries(INSTRUMENT_FIELDS.map((f) => [f, sorted.find((i) => i[f] !== null)?.[f] ?? null]));
  return { ...merged, instruments: list.map(({ symbol: _s, updatedAt, ...rest }) => ({ ...rest, updatedAt: updatedAt === undefined ? null : new Date(updatedAt).toISOString() })) };
}

/**
 * A page of raw bars adjusted for the symbol's stored actions, per source (each source's own
 * record of an action first, one record per action). Dividend factors take the raw close of the
 * last stored bar of the same series before the ex-date.
 */
async function adjustedPage(store: Store, symbol: string, interval: Interval, page: Bar[]) {
  const all = await store.listActions!(symbol);
  const bars: Bar[] = [];
  const actions: Record<string, unknown>[] = [];
  for (const [source, group] of Map.groupBy(page, (b) => b.source)) {
    const chosen = dedupeActions(all, source);
    const prevClose = async (exDate: number) => {
      const before = await store.queryBars({ symbol, interval, source, from: exDate - 45 * 86_400_000, to: exDate - 1, limit: 100_000 });
      return before.at(-1)?.close ?? null;
    };
    const adj = await adjustBars(group, chosen, prevClose);
    bars.push(...adj.bars);
    for (const a of adj.applied) actions.push({ series: source, ...a, exDate: new Date(a.exDate).toISOString().slice(0, 10) });
  }
  // Back in the page's (ts, source) order.
  bars.sort((a, b) => a.ts - b.ts || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
  return { bars, actions };
}

/** What the HTTP layer needs to know of a sink: its name, collection and where it is. */
export type SinkInfo = { name: string; kind: string; collections: string[]; location: string };

export type AppDeps = {
  store: Store;
  metrics: TicksyncMetrics;
  alerts?: Alerts;
  security?: SecurityConfig;
  scheduler?: Scheduler;
  maxPageSize?: number;
  /** `[indicators]`: the sets /api/indicators computes when a request names none. */
  indicators?: IndicatorsConfig;
  /** The config's own universes (for `[indicators.universes]`). */
  universes?: Record<string, string[]>;
  /** Clock for gap detection (the latest completed session); tests pin it. */
  now?: () => number;
  version?: string;
  sinks?: SinkInfo[];
  /** The live feed: /api/ws and /api/stream (Bun.serve needs the hub's `websocket` handler too). */
  stream?: { hub: Hub; config: StreamConfig };
  /** How a configured source validates rows now (quarantine replay); absent: replay is unavailable. */
  replayContext?: ContextOf;
};

export function createApp(deps: AppDeps) {
  const { store, metrics } = deps;
  const maxPage = deps.maxPageSize ?? 10_000;
  const started = Date.now();
  const app = new Hono();

  const BarsQuery = v.strictObject({
    symbol: v.pipe(v.string("symbol is required"), v.nonEmpty("symbol is required")),
    interval: v.optional(IntervalSchema, "1d"),
    source: v.optional(v.pipe(v.string(), v.nonEmpty())),
    from: v.optional(Instant),
    to: v.optional(Instant),
    limit: Limit(maxPage),
    cursor: v.optional(BarCursorParam),
    /** true: prices adjusted for the stored splits and dividends, on read (src/domain/actions.ts). */
    adjusted: v.optional(v.picklist(["true", "false"], "expected true or false")),
  });
  const RunsQuery = v.strictObject({ limit: Limit(MAX_RECORDS_PAGE), before: IdCursor, source: v.optional(v.string()) });
  const QuarantineQuery = v.strictObject({
    limit: Limit(MAX_RECORDS_PAGE),
    before: IdCursor,
    source: v.optional(v.string()),
    rule: v.optional(v.string()),
    run: IdCursor,
  });
  const SymbolsQuery = v.strictObject({ market: v.optional(MarketSchema) });

  app.onError((err, c) => {
    log.error("request failed", { path: c.req.path, error: err.message });
    return c.json({ error: "internal error", message: redact(err.message) }, 500);
  });
  app.notFound((c) => c.json({ error: "not found", path: c.req.path }, 404));
  // Host, origin, tokens, body limits, CORS (src/http/security.ts); the stream endpoints check
  // tokens with the same rule (readGuard) and their own stream tokens.
  const security = deps.security ?? { tokens: [], authReads: false, corsOrigins: [], maxBodyBytes: 1 << 20 };
  // Every query string is bounded before a route reads it (src/http/limits.ts).
  app.use("*", queryGuard);
  // The dashboard's page and assets hold no data (they fetch it with the token the page is given),
  // so they load without one even with authReads.
  const publicPath = (p: string) => p === "/" || p.startsWith("/assets/");
  for (const mw of securityMiddleware(security, { skip: (p) => p === "/api/ws" || p === "/api/stream" || publicPath(p) })) app.use("*", mw);

  // The dashboard: `/` and `/assets/*`, embedded in the executable (src/http/dashboard/).
  app.route("/", dashboardRoutes(deps.version ?? "dev"));

  app.get("/healthz", (c) => c.json({ status: "ok", uptimeSeconds: Math.round((Date.now() - started) / 1000) }));

  app.get("/readyz", async (c) => {
    const r = await store.ready();
    metrics.storeUp.set({ store: store.kind }, r.ok ? 1 : 0);
    return c.json({ ready: r.ok, store: { kind: store.kind, schemaVersion: r.schemaVersion, expectedVersion: r.expectedVersion, ...(r.error ? { error: r.error } : {}) } }, r.ok ? 200 : 503);
  });

  /** Each sink's last verify, as kept in the store (a verify run by the CLI counts too). */
  async function sinkConsistency(): Promise<ConsistencyStatus[]> {
    const all = (deps.sinks ?? []).flatMap((s) => s.collections.map((collection) => ({ name: s.name, collection })));
    return Promise.all(all.map(async (s) => consistencyOf(s, await store.getCheckpoint(verifyStream(s)))));
  }

  app.get("/metrics", async (c) => {
    const r = await store.ready();
    metrics.storeUp.set({ store: store.kind }, r.ok ? 1 : 0);
    if (r.ok)
      for (const s of await sinkConsistency()) {
        const l = { sink: s.sink, collection: s.collection };
        metrics.sinkConsistent.set(l, s.status === "consistent" ? 1 : s.status === "inconsistent" ? 0 : -1);
        if (s.checkedAt !== null) {
          metrics.sinkDifferingDays.set(l, s.differingDays ?? 0);
          metrics.sinkVerifyRecords.set({ ...l, side: "store" }, s.storeRecords ?? 0);
          metrics.sinkVerifyRecords.set({ ...l, side: "sink" }, s.sinkRecords ?? 0);
          metrics.sinkLastVerify.set(l, Math.floor(s.checkedAt / 1000));
        }
      }
    if (r.ok) await derived.updateGapMetric();
    if (r.ok && store.rollupPending) metrics.rollupPendingRuns.set({ store: store.kind }, await store.rollupPending());
    return c.body(metrics.registry.render(), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  app.get("/api/sinks", async (c) => {
    const consistency = await sinkConsistency();
    const data = await Promise.all(
      (deps.sinks ?? []).map(async (s) => ({
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
    return c.json({ data });
  });

  app.get("/api/symbols", async (c) => {
    const q = v.safeParse(SymbolsQuery, c.req.query());
    if (!q.success) return badRequest(c, q.issues);
    const bySymbol = new Map<string, { symbol: string; market: string | null; series: unknown[] }>();
    for (const s of await store.listSeries()) {
      const market = marketOf(s.symbol) ?? null;
      if (q.output.market && market !== q.output.market) continue;
      let entry = bySymbol.get(s.symbol);
      if (!entry) bySymbol.set(s.symbol, (entry = { symbol: s.symbol, market, series: [] }));
      entry.series.push({ source: s.source, interval: s.interval, bars: s.bars, first: new Date(s.firstTs).toISOString(), last: new Date(s.lastTs).toISOString() });
    }
    // What the providers say each symbol is: merged (the newest record's value per field) and per source.
    const instruments = (await store.listInstruments?.()) ?? [];
    const bySym = Map.groupBy(instruments, (i) => i.symbol);
    const data = [...bySymbol.values()].map((e) => ({ ...e, ...instrumentFields(bySym.get(e.symbol) ?? []) }));
    return c.json({ data, count: data.length });
  });

  app.get("/api/bars", async (c) => {
    const q = v.safeParse(BarsQuery, c.req.query());
    if (!q.success) return badRequest(c, q.issues);
    const { interval, source, from, to, cursor } = q.output;
    const limit = q.output.limit ?? Math.min(1000, maxPage);
    if (from !== undefined && to !== undefined && from > to)
      return c.json({ error: "invalid request", issues: [{ field: "from", message: "from must not be after to" }] }, 400);
    // `PKN.WA`, `pkn.pl` and (when only one market has it) `PKN` all name the stored symbol.
    let symbol: string | undefined;
    const sym = normaliseSymbol(q.output.symbol);
    if (sym.ok) symbol = sym.symbol;
    else {
      const candidates = new Set<string>();
      for (const m of marketCodes()) {
        const n = normaliseSymbol(q.output.symbol, m);
        if (n.ok && (await store.listSeries({ symbol: n.symbol })).length > 0) candidates.add(n.symbol);
      }
      if (candidates.size === 1) symbol = [...candidates][0];
      else if (candidates.size > 1)
        return c.json({ error: "invalid request", issues: [{ field: "symbol", message: `ambiguous symbol, use one of ${[...candidates].join(", ")}` }] }, 400);
      else return c.json({ error: "invalid request", issues: [{ field: "symbol", message: sym.reason }] }, 400);
    }
    // No bars at this interval but finer ones: rolled up along the exchange's sessions, from the
    // store's materialised rollups when it keeps them (Postgres), else on read.
    const adjusted = q.output.adjusted === "true";
    if (adjusted && !store.listActions) return c.json({ error: `the ${store.kind} store keeps no corporate actions, so it cannot adjust prices` }, 501);
    const rolled = await rolledUpBars(store, { symbol: symbol!, interval, source, from, to, limit, after: cursor });
    if (rolled && adjusted)
      return c.json({ error: "invalid request", issues: [{ field: "adjusted", message: `adjusted prices need stored ${interval} bars; ${interval} is rolled up here` }] }, 400);
    if (rolled) {
      const path = rolled.materialised ? "materialised" : "on_read";
      metrics.rollupPages.inc({ path });
      c.header("X-Ticksync-Rollup", path);
      return c.json({ symbol, interval, rolledUpFrom: rolled.from, excluded: rolled.excluded, data: rolled.bars.map(barJson), next: rolled.next && encodeBarCursor(rolled.next) });
    }
    const bars = await store.queryBars({ symbol: symbol!, interval, source, from, to, limit: limit + 1, after: cursor });
    const page = bars.slice(0, limit);
    const last = page[page.length - 1];
    const next = bars.length > limit && last ? encodeBarCursor({ ts: last.ts, source: last.source }) : null;
    if (adjusted) {
      const adj = await adjustedPage(store, symbol!, interval, page);
      return c.json({ symbol, interval, adjusted: true, actions: adj.actions, data: adj.bars.map(barJson), next });
    }
    return c.json({ symbol, interval, data: page.map(barJson), next });
  });

  // Derived data: /api/indicators, /api/gaps (and the gap gauge /metrics sets).
  const derived = registerDerivedRoutes(app, { store, metrics, maxPageSize: maxPage, indicators: deps.indicators, universes: deps.universes, now: deps.now });

  app.get("/api/runs", async (c) => {
    const q = v.safeParse(RunsQuery, c.req.query());
    if (!q.success) return badRequest(c, q.issues);
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
    });
  });

  app.get("/api/quarantine", async (c) => {
    const q = v.safeParse(QuarantineQuery, c.req.query());
    if (!q.success) return badRequest(c, q.issues);
    const limit = q.output.limit ?? 100;
    const rows = await store.listQuarantine({ limit: limit + 1, before: q.output.before, source: q.output.source, rule: q.output.rule, runId: q.output.run });
    const page = rows.slice(0, limit);
    return c.json({
      data: page.map((r) => ({ ...r, ts: r.ts === null ? null : new Date(r.ts).toISOString(), createdAt: new Date(r.createdAt).toISOString() })),
      next: rows.length > limit ? String(page[page.length - 1]!.id) : null,
    });
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
  app.post("/api/quarantine/replay", async (c) => {
    if (!deps.replayContext) return c.json({ error: "quarantine replay is not available in this process" }, 404);
    if (!store.deleteQuarantine) return c.json({ error: `the ${store.kind} store cannot remove quarantine records, so it cannot replay them` }, 501);
    const body = v.safeParse(ReplayBody, await c.req.json().catch(() => undefined));
    if (!body.success) return badRequest(c, body.issues);
    const { ids, source, rule, run, limit } = body.output;
    const result = await withActor(apiActor(c), () => replayQuarantine(store, { ids, source, rule, run, limit }, deps.replayContext!));
    return c.json({ data: result });
  });

  // The dashboard's heat map: each series' days over the last `days` against its market's calendar.
  const FreshnessQuery = v.strictObject({
    days: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "expected a whole number"), v.transform(Number), v.minValue(1), v.maxValue(MAX_FRESHNESS_DAYS, `days must be at most ${MAX_FRESHNESS_DAYS}`)), "40"),
    interval: v.optional(v.picklist(["1m", "5m", "15m", "1h", "1d"], "expected one of 1m, 5m, 15m, 1h, 1d"), "1d"),
    market: v.optional(MarketSchema),
    to: v.optional(v.pipe(v.string(), v.isoDate("expected the last day as YYYY-MM-DD"))),
  });
  app.get("/api/freshness", async (c) => {
    const q = v.safeParse(FreshnessQuery, c.req.query());
    if (!q.success) return badRequest(c, q.issues);
    return c.json(await freshness(store, { days: q.output.days, interval: q.output.interval, market: q.output.market, to: q.output.to }));
  });

  // Ingest and sync rows per second over a window, from the runs in the store.
  const Seconds = (max: number, dflt: string) => v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "expected whole seconds"), v.transform(Number), v.minValue(10), v.maxValue(max)), dflt);
  const RatesQuery = v.pipe(
    v.strictObject({ window: Seconds(31 * 86_400, "21600"), bucket: Seconds(86_400, "300") }),
    v.check((q) => q.window / q.bucket <= MAX_RATE_BUCKETS, `at most ${MAX_RATE_BUCKETS} buckets per window`),
  );
  app.get("/api/rates", async (c) => {
    const q = v.safeParse(RatesQuery, c.req.query());
    if (!q.success) return badRequest(c, q.issues);
    return c.json(await rates(store, { windowSeconds: q.output.window, bucketSeconds: q.output.bucket }));
  });

  if (deps.stream) {
    const { hub, config } = deps.stream;
    // Stream tokens; when reads need a token, the server's tokens open the stream too.
    const auth = readGuard(security, config.tokens);
    const symbols = listGuard("symbols");
    app.get("/api/ws", auth, symbols, wsEndpoint(hub));
    app.get("/api/stream", auth, symbols, sseEndpoint(hub, config));
  }

  // A running job in a long wait (rate limit, Retry-After) says so: `waiting: {reason, until, seconds}`.
  app.get("/api/jobs", (c) => c.json({ data: (deps.scheduler?.list() ?? []).map((j) => ({ ...j, waiting: j.running ? jobWaiting(j.name) : null })) }));

  /** Who calls: the route, a fingerprint of the bearer token (never the token), the peer address. */
  function apiActor(c: Context): Actor {
    const token = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1] ?? c.req.query("token") ?? null;
    let remote: string | null = null;
    try {
      remote = getConnInfo(c).remote.address ?? null;
    } catch {}
    return { by: "api", route: `${c.req.method} ${c.req.path}`, tokenId: token ? `sha256:${new Bun.CryptoHasher("sha256").update(token).digest("hex").slice(0, 12)}` : null, remote };
  }

  const AuditQuery = v.strictObject({ limit: Limit(MAX_RECORDS_PAGE), before: IdCursor, kind: v.optional(v.string()), source: v.optional(v.string()) });
  // Every run, sync, verify, repair, backup and restore: who started it, with what, and how it ended.
  app.get("/api/audit", async (c) => {
    const q = v.safeParse(AuditQuery, c.req.query());
    if (!q.success) return badRequest(c, q.issues);
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
    return c.json({ data: page, next });
  });

  app.get("/api/alerts", async (c) => c.json({ data: redactValue(deps.alerts?.list() ?? []) }));

  app.post("/api/alerts/:name/ack", async (c) => {
    if (!deps.alerts) return c.json({ error: "no alerts are configured" }, 404);
    const body = (await c.req.json().catch(() => ({}))) as { by?: unknown };
    const actor = apiActor(c);
    const by = typeof body.by === "string" && body.by.trim() ? body.by.trim().slice(0, 100) : actor.by === "api" && actor.tokenId ? `token ${actor.tokenId}` : "api";
    const s = await deps.alerts.ack(c.req.param("name"), by);
    if (!s) return c.json({ error: "unknown alert", alert: c.req.param("name") }, 404);
    return c.json({ data: s });
  });

  app.post("/api/jobs/:name/run", async (c) => {
    if (!deps.scheduler) return c.json({ error: "no scheduler in this process" }, 404);
    const r = await withActor(apiActor(c), () => deps.scheduler!.trigger(c.req.param("name")));
    if (r === "unknown") return c.json({ error: "unknown job", job: c.req.param("name") }, 404);
    if (r === "busy") return c.json({ status: "busy", message: "the job is running; it does not overlap itself" }, 409);
    // Market hours gate cron ticks only: a manual run starts whatever the market's phase, and says so.
    const job = deps.scheduler.list().find((j) => j.name === c.req.param("name"));
    const gated = job?.market ? { marketPhase: job.marketPhase, note: `manual runs ignore market hours (${job.market} is ${job.marketPhase})` } : {};
    return c.json({ status: "started", ...gated }, 202);
  });

  return app;
}

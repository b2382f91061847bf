// QuestDB as a store: bars go in over ILP on HTTP (`/write`) into a WAL table whose designated
// timestamp and DEDUP UPSERT KEYS make every write idempotent; everything is read, and the
// bookkeeping tables are written, over its PostgreSQL wire protocol with postgres.js.
//
// QuestDB has no transaction across tables. A batch is written in a fixed order — bars (and
// wait until the WAL has applied them), quarantine, run counters, then the checkpoint — so a
// crash can only make the next run read a batch again, and the dedup keys make that a no-op.
import postgres from "postgres";
import { newOwner, ownerGone, readiness } from "./common.ts";
import type { Bar, Interval } from "../domain/bar.ts";
import type { BarQuery, Checkpoint, CommitBatch, CommitResult, QuarantineRecord, RunRecord, RunStart, RunSummary, RunStream, SeriesInfo, Store } from "./types.ts";

type Sql = postgres.Sql<{}>;

/** `questdb://user:pass@host:pgPort/db?http=http://host:9000` → PG wire URL and HTTP base. */
export function parseQuestdbUrl(url: string): { pg: string; http: string; location: string; prefix: string } {
  const u = new URL(url);
  const http = u.searchParams.get("http") ?? `http://${u.hostname}:9000`;
  // `prefix` names this store's tables apart, so several stores can share one QuestDB.
  const prefix = u.searchParams.get("prefix") ?? "";
  if (!/^[a-z0-9_]*$/i.test(prefix)) throw new Error(`prefix ${JSON.stringify(prefix)} must be letters, digits and _`);
  u.searchParams.delete("http");
  u.searchParams.delete("prefix");
  const pg = `postgres://${u.username ? `${u.username}${u.password ? `:${u.password}` : ""}@` : ""}${u.host}${u.pathname || "/qdb"}`;
  return { pg, http: http.replace(/\/+$/, ""), prefix, location: `questdb://${u.username ? `${u.username}:***@` : ""}${u.host}${u.pathname}?http=${http}${prefix ? `&prefix=${prefix}` : ""}` };
}

const TABLE_NAMES = ["bars", "checkpoints", "quarantine", "runs", "run_streams", "schema_migrations"] as const;
type TableName = (typeof TABLE_NAMES)[number];

const TABLES = (t: Record<TableName, string>) => [
  `CREATE TABLE IF NOT EXISTS "${t.bars}" (
     symbol SYMBOL, interval SYMBOL, source SYMBOL, ts TIMESTAMP,
     open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE, adj_close DOUBLE, turnover DOUBLE, trades LONG,
     run_id LONG, updated_at TIMESTAMP
   ) TIMESTAMP(ts) PARTITION BY MONTH WAL DEDUP UPSERT KEYS(ts, symbol, interval, source)`,
  // Bookkeeping tables are small, non-partitioned, written synchronously over PG wire.
  `CREATE TABLE IF NOT EXISTS "${t.checkpoints}" (stream VARCHAR, cursor VARCHAR, last_ts TIMESTAMP, last_key VARCHAR, run_id LONG, updated_at TIMESTAMP)`,
  `CREATE TABLE IF NOT EXISTS "${t.quarantine}" (id LONG, run_id LONG, source VARCHAR, locator VARCHAR, rule VARCHAR, reason VARCHAR, symbol VARCHAR, ts TIMESTAMP, raw VARCHAR, created_at TIMESTAMP)`,
  `CREATE TABLE IF NOT EXISTS "${t.runs}" (
     id LONG, kind VARCHAR, source VARCHAR, job VARCHAR, params VARCHAR, owner VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
     duration_ms LONG, outcome VARCHAR, read LONG, inserted LONG, updated LONG, unchanged LONG, quarantined LONG,
     from_ts TIMESTAMP, to_ts TIMESTAMP, quality VARCHAR, error VARCHAR, failures VARCHAR)`,
  `CREATE TABLE IF NOT EXISTS "${t.run_streams}" (run_id LONG, stream VARCHAR, status VARCHAR, cause VARCHAR, error VARCHAR, rows LONG, updated_at TIMESTAMP)`,
];
const QDB_SCHEMA_VERSION = 1;

/** ILP tag values: commas, spaces and equals signs are escaped. */
const tag = (s: string) => s.replace(/[ ,=\\]/g, (c) => `\\${c}`);
const num = (x: number) => (Number.isInteger(x) ? `${x}.0` : String(x));
const ms = (d: Date | string | null | undefined) => (d == null ? null : new Date(d).getTime());
const date = (t: number | null | undefined) => (t == null ? null : new Date(t));


/** One write at a time: QuestDB's non-WAL tables take a single writer. */
function mutex() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };
}

function rowToRun(r: any): RunRecord {
  const n = (x: unknown) => (x == null ? 0 : Number(x));
  return {
    id: Number(r.id),
    kind: r.kind,
    source: r.source,
    job: r.job ?? undefined,
    params: r.params ? JSON.parse(r.params) : undefined,
    startedAt: ms(r.started_at)!,
    finishedAt: ms(r.finished_at),
    durationMs: r.duration_ms == null ? null : Number(r.duration_ms),
    outcome: r.outcome,
    read: n(r.read),
    inserted: n(r.inserted),
    updated: n(r.updated),
    unchanged: n(r.unchanged),
    stored: n(r.inserted) + n(r.updated),
    quarantined: n(r.quarantined),
    fromTs: ms(r.from_ts),
    toTs: ms(r.to_ts),
    quality: r.quality ? JSON.parse(r.quality) : null,
    error: r.error ?? null,
    failures: r.failures ? JSON.parse(r.failures) : {},
  };
}

function rowToBar(r: any): Bar {
  const bar: Bar = { source: r.source, symbol: r.symbol, interval: r.interval as Interval, ts: ms(r.ts)!, open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume };
  if (r.adj_close != null && !Number.isNaN(r.adj_close)) bar.adjClose = r.adj_close;
  if (r.turnover != null && !Number.isNaN(r.turnover)) bar.turnover = r.turnover;
  if (r.trades != null) bar.trades = Number(r.trades);
  return bar;
}

const same = (a: number | null | undefined, b: number | null | undefined) => (a ?? null) === (b ?? null);

export function questdbStore(url: string): Store {
  const { pg, http, location, prefix } = parseQuestdbUrl(url);
  const T = Object.fromEntries(TABLE_NAMES.map((n) => [n, `${prefix}${n}`])) as Record<TableName, string>;
  const sql: Sql = postgres(pg, {
    max: 1,
    fetch_types: false,
    onnotice: () => {},
    types: {
      // QuestDB's TIMESTAMP has no zone and means UTC; postgres.js would read it as local time.
      timestamp: { to: 1114, from: [1114], serialize: (d: Date) => d.toISOString(), parse: (s: string) => new Date(s.endsWith("Z") ? s : `${s}Z`) },
    },
  });
  const owner = newOwner();
  const exclusive = mutex();

  async function ilp(lines: string[]) {
    for (let i = 0; i < lines.length; i += 20_000) {
      const res = await fetch(`${http}/write?precision=ms`, { method: "POST", body: lines.slice(i, i + 20_000).join("\n") + "\n" });
      if (res.status !== 204 && res.status !== 200) throw new Error(`QuestDB /write answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    }
    // A 204 means the rows are committed to the WAL (durable); they become readable once the
    // WAL is applied. Reads of bars wait for that (settled); writes need not.
    walDirty = true;
  }

  let walDirty = false;
  async function settled() {
    if (!walDirty) return;
    await walApplied();
    walDirty = false;
  }

  /**
   * Newest stored ts per (source, symbol, interval), loaded once: a bar after it cannot exist
   * yet, so a fresh load writes without asking the table first.
   */
  let newest: Map<string, number> | null = null;
  const seriesKey = (source: string, symbol: string, interval: string) => `${source}\u0000${symbol}\u0000${interval}`;
  async function newestBySeries(): Promise<Map<string, number>> {
    if (newest) return newest;
    await settled();
    newest = new Map();
    for (const r of await sql`SELECT source, symbol, interval, max(ts) AS last_ts FROM ${sql(T.bars)} GROUP BY source, symbol, interval`)
      newest.set(seriesKey(r.source, r.symbol, r.interval), ms(r.last_ts)!);
    return newest;
  }

  /** Wait until the bars table's WAL is applied, so what was written can be read back. */
  async function walApplied(timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [r] = await sql`SELECT writerTxn, sequencerTxn, suspended FROM wal_tables() WHERE name = ${T.bars}`;
      if (!r) return;
      if (r.suspended) throw new Error("QuestDB suspended the bars table's WAL (see its log)");
      if (Number(r.writerTxn) >= Number(r.sequencerTxn)) return;
      if (Date.now() > deadline) throw new Error("QuestDB did not apply the WAL of bars in time");
      await Bun.sleep(10);
    }
  }

  async function nextId(table: "runs" | "quarantine"): Promise<number> {
    const [r] = await sql`SELECT max(id) AS m FROM ${sql(T[table])}`;
    return Number(r?.m ?? 0) + 1;
  }

  async function version(): Promise<number> {
    const tables = await sql`SELECT table_name FROM tables() WHERE table_name = ${T.schema_migrations}`;
    if (tables.length === 0) return 0;
    const [r] = await sql`SELECT max(version) AS v FROM ${sql(T.schema_migrations)}`;
    return Number(r?.v ?? 0);
  }

  const store: Store = {
    kind: "questdb",
    location,

    async migrate() {
      return exclusive(async () => {
        const applied: number[] = [];
        await sql`CREATE TABLE IF NOT EXISTS ${sql(T.schema_migrations)} (version INT, name VARCHAR, applied_at TIMESTAMP)`;
        if ((await version()) < 1) {
          for (const ddl of TABLES(T)) await sql.unsafe(ddl);
          await sql`INSERT INTO ${sql(T.schema_migrations)} VALUES (1, 'bars (WAL, dedup keys), bookkeeping tables', ${new Date()})`;
          applied.push(1);
        }
        for (const r of await sql`SELECT id, owner FROM ${sql(T.runs)} WHERE outcome = 'running'`) {
          if (ownerGone(String(r.owner), owner))
            await sql`UPDATE ${sql(T.runs)} SET outcome = 'interrupted', finished_at = ${new Date()}, error = 'process ended before the run finished' WHERE id = ${Number(r.id)}`;
        }
        return { applied, version: await version() };
      });
    },

    ready: () => readiness(version, QDB_SCHEMA_VERSION),

    commitBatch: (b: CommitBatch) =>
      exclusive(async (): Promise<CommitResult> => {
        // No transaction to roll back: refuse a bad batch before anything is written.
        for (const bar of b.bars)
          for (const k of ["ts", "open", "high", "low", "close", "volume"] as const)
            if (typeof bar[k] !== "number" || !Number.isFinite(bar[k])) throw new Error(`bar ${bar.symbol} ${bar.ts}: ${k} is not a finite number`);
        let inserted = 0;
        let updated = 0;
        let unchanged = 0;
        const lines: string[] = [];
        const now = Date.now();
        if (b.bars.length > 0) {
          // What the table holds for these keys. Bars after their series' newest stored bar are
          // new by construction; the rest are looked up in one query by time range and symbols.
          const last = await newestBySeries();
          const maybe = b.bars.filter((bar) => bar.ts <= (last.get(seriesKey(bar.source, bar.symbol, bar.interval)) ?? -Infinity));
          const existing = new Map<string, Bar>();
          if (maybe.length > 0) {
            await settled();
            let lo = Infinity;
            let hi = -Infinity;
            const symbols = new Set<string>();
            for (const bar of maybe) (lo = Math.min(lo, bar.ts)), (hi = Math.max(hi, bar.ts)), symbols.add(bar.symbol);
            const list = [...symbols];
            for (let i = 0; i < list.length; i += 500)
              for (const r of await sql`SELECT * FROM ${sql(T.bars)} WHERE ts >= ${new Date(lo)} AND ts <= ${new Date(hi)} AND symbol IN ${sql(list.slice(i, i + 500))}`) {
                const old = rowToBar(r);
                existing.set(`${old.symbol}\u0000${old.interval}\u0000${old.source}\u0000${old.ts}`, old);
              }
          }
          for (const bar of b.bars) {
            const k = seriesKey(bar.source, bar.symbol, bar.interval);
            if (bar.ts > (last.get(k) ?? -Infinity)) last.set(k, bar.ts);
          }
          for (const bar of b.bars) {
            const old = existing.get(`${bar.symbol}\u0000${bar.interval}\u0000${bar.source}\u0000${bar.ts}`);
            if (old && same(old.open, bar.open) && same(old.high, bar.high) && same(old.low, bar.low) && same(old.close, bar.close) && same(old.volume, bar.volume) && same(old.adjClose, bar.adjClose) && same(old.turnover, bar.turnover) && same(old.trades, bar.trades)) {
              unchanged++;
              continue;
            }
            if (old) updated++;
            else inserted++;
            let fields = `open=${num(bar.open)},high=${num(bar.high)},low=${num(bar.low)},close=${num(bar.close)},volume=${num(bar.volume)}`;
            if (bar.adjClose != null) fields += `,adj_close=${num(bar.adjClose)}`;
            if (bar.turnover != null) fields += `,turnover=${num(bar.turnover)}`;
            if (bar.trades != null) fields += `,trades=${Math.trunc(bar.trades)}i`;
            lines.push(`${T.bars},symbol=${tag(bar.symbol)},interval=${tag(bar.interval)},source=${tag(bar.source)} ${fields},run_id=${b.runId}i,updated_at=${now * 1000}t ${bar.ts}`);
          }
        }
        if (lines.length > 0) await ilp(lines);
        let quarantined = 0;
        if (b.quarantine.length > 0) {
          const old = new Map<string, { rule: string; raw: string }>();
          const locators = b.quarantine.map((q) => q.locator);
          for (let i = 0; i < locators.length; i += 500)
            for (const r of await sql`SELECT locator, rule, raw FROM ${sql(T.quarantine)} WHERE source = ${b.source} AND locator IN ${sql(locators.slice(i, i + 500))}`)
              old.set(r.locator, { rule: r.rule, raw: r.raw });
          let id = await nextId("quarantine");
          const fresh: Record<string, unknown>[] = [];
          for (const q of b.quarantine) {
            const raw = JSON.stringify(q.raw ?? {});
            const o = old.get(q.locator);
            if (o && o.rule === q.rule && o.raw === raw) continue;
            quarantined++;
            if (o)
              await sql`UPDATE ${sql(T.quarantine)} SET run_id = ${b.runId}, rule = ${q.rule}, reason = ${q.reason}, symbol = ${q.symbol ?? null}, ts = ${date(q.ts)}, raw = ${raw}
                        WHERE source = ${b.source} AND locator = ${q.locator}`;
            else {
              fresh.push({ id: id++, run_id: b.runId, source: b.source, locator: q.locator, rule: q.rule, reason: q.reason, symbol: q.symbol ?? null, ts: date(q.ts), raw, created_at: new Date() });
              old.set(q.locator, { rule: q.rule, raw });
            }
          }
          for (let i = 0; i < fresh.length; i += 500)
            await sql`INSERT INTO ${sql(T.quarantine)} ${sql(fresh.slice(i, i + 500), "id", "run_id", "source", "locator", "rule", "reason", "symbol", "ts", "raw", "created_at")}`;
        }
        const [run] = await sql`SELECT read, inserted, updated, unchanged, quarantined, from_ts, to_ts FROM ${sql(T.runs)} WHERE id = ${b.runId}`;
        if (run) {
          let lo = ms(run.from_ts);
          let hi = ms(run.to_ts);
          for (const bar of b.bars) (lo = lo === null ? bar.ts : Math.min(lo, bar.ts)), (hi = hi === null ? bar.ts : Math.max(hi, bar.ts));
          await sql`UPDATE ${sql(T.runs)} SET read = ${Number(run.read) + b.read}, inserted = ${Number(run.inserted) + inserted}, updated = ${Number(run.updated) + updated},
                      unchanged = ${Number(run.unchanged) + unchanged}, quarantined = ${Number(run.quarantined) + b.quarantine.length}, from_ts = ${date(lo)}, to_ts = ${date(hi)}
                    WHERE id = ${b.runId}`;
        }
        if (b.checkpoint) await putCheckpoint(b.checkpoint, b.runId);
        return { inserted, updated, unchanged, quarantined };
      }),

    async getCheckpoint(stream) {
      const [r] = await sql`SELECT stream, cursor, last_ts, last_key FROM ${sql(T.checkpoints)} WHERE stream = ${stream}`;
      return r ? { stream: r.stream, cursor: JSON.parse(r.cursor), lastTs: ms(r.last_ts), lastKey: r.last_key ?? null } : null;
    },

    async listCheckpoints() {
      const rows = await sql`SELECT stream, cursor, last_ts, last_key FROM ${sql(T.checkpoints)} ORDER BY stream`;
      return rows.map((r): Checkpoint => ({ stream: r.stream, cursor: JSON.parse(r.cursor), lastTs: ms(r.last_ts), lastKey: r.last_key ?? null }));
    },

    putCheckpoints: (list, runId) =>
      exclusive(async () => {
        for (const c of list) await putCheckpoint(c, runId);
      }),

    startRun: (run: RunStart) =>
      exclusive(async () => {
        const id = await nextId("runs");
        await sql`INSERT INTO ${sql(T.runs)} (id, kind, source, job, params, owner, started_at, outcome, read, inserted, updated, unchanged, quarantined)
                  VALUES (${id}, ${run.kind}, ${run.source}, ${run.job ?? null}, ${run.params ? JSON.stringify(run.params) : null}, ${owner}, ${new Date()}, 'running', 0, 0, 0, 0, 0)`;
        return id;
      }),

    finishRun: (id, s: RunSummary) =>
      exclusive(async () => {
        await settled(); // a finished run's bars are readable
        const [r] = await sql`SELECT started_at FROM ${sql(T.runs)} WHERE id = ${id}`;
        const now = new Date();
        await sql`UPDATE ${sql(T.runs)} SET finished_at = ${now}, duration_ms = ${r ? now.getTime() - ms(r.started_at)! : null}, outcome = ${s.outcome},
                    read = ${s.read}, inserted = ${s.inserted}, updated = ${s.updated}, unchanged = ${s.unchanged}, quarantined = ${s.quarantined},
                    from_ts = ${date(s.fromTs)}, to_ts = ${date(s.toTs)}, quality = ${s.quality ? JSON.stringify(s.quality) : null},
                    error = ${s.error ?? null}, failures = ${s.failures ? JSON.stringify(s.failures) : null}
                  WHERE id = ${id}`;
      }),

    async getRun(id) {
      const [r] = await sql`SELECT * FROM ${sql(T.runs)} WHERE id = ${id}`;
      return r ? rowToRun(r) : null;
    },

    reopenRun: (id) =>
      exclusive(async () => {
        await sql`UPDATE ${sql(T.runs)} SET outcome = 'running', owner = ${owner}, finished_at = ${null}, error = ${null} WHERE id = ${id}`;
      }),

    initRunStreams: (runId, streams) =>
      exclusive(async () => {
        const have = new Set((await sql`SELECT stream FROM ${sql(T.run_streams)} WHERE run_id = ${runId}`).map((r) => r.stream as string));
        for (const s of streams) if (!have.has(s)) await sql`INSERT INTO ${sql(T.run_streams)} VALUES (${runId}, ${s}, 'pending', ${null}, ${null}, 0, ${new Date()})`;
      }),

    setRunStream: (runId, stream, st) =>
      exclusive(async () => {
        const [r] = await sql`SELECT rows FROM ${sql(T.run_streams)} WHERE run_id = ${runId} AND stream = ${stream}`;
        if (r)
          await sql`UPDATE ${sql(T.run_streams)} SET status = ${st.status}, cause = ${st.cause ?? null}, error = ${st.error ?? null}, rows = ${Number(r.rows) + st.rows}, updated_at = ${new Date()}
                    WHERE run_id = ${runId} AND stream = ${stream}`;
        else await sql`INSERT INTO ${sql(T.run_streams)} VALUES (${runId}, ${stream}, ${st.status}, ${st.cause ?? null}, ${st.error ?? null}, ${st.rows}, ${new Date()})`;
      }),

    async listRunStreams(runId, status) {
      const rows = status
        ? await sql`SELECT stream, status, cause, error, rows FROM ${sql(T.run_streams)} WHERE run_id = ${runId} AND status = ${status} ORDER BY stream`
        : await sql`SELECT stream, status, cause, error, rows FROM ${sql(T.run_streams)} WHERE run_id = ${runId} ORDER BY stream`;
      return rows.map((r): RunStream => ({ stream: r.stream, status: r.status, cause: r.cause ?? null, error: r.error ?? null, rows: Number(r.rows) }));
    },

    async listRuns({ limit, before, source }) {
      const rows = source
        ? await sql`SELECT * FROM ${sql(T.runs)} WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} AND source = ${source} ORDER BY id DESC LIMIT ${limit}`
        : await sql`SELECT * FROM ${sql(T.runs)} WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} ORDER BY id DESC LIMIT ${limit}`;
      return rows.map(rowToRun);
    },

    async lastSuccessByJob() {
      const out = new Map<string, number>();
      for (const r of await sql`SELECT job, kind, source, finished_at FROM ${sql(T.runs)} WHERE outcome = 'succeeded'`) {
        const job = r.job ?? `${r.kind}:${r.source}`;
        const t = ms(r.finished_at)!;
        if (!out.has(job) || out.get(job)! < t) out.set(job, t);
      }
      return out;
    },

    async listSeries(opts) {
      await settled();
      // Derived from the bars themselves: a columnar scan QuestDB does quickly, and nothing to keep in step.
      const rows = opts?.symbol
        ? await sql`SELECT source, symbol, interval, min(ts) AS first_ts, max(ts) AS last_ts, count() AS bars FROM ${sql(T.bars)} WHERE symbol = ${opts.symbol} GROUP BY source, symbol, interval ORDER BY symbol, interval, source`
        : await sql`SELECT source, symbol, interval, min(ts) AS first_ts, max(ts) AS last_ts, count() AS bars FROM ${sql(T.bars)} GROUP BY source, symbol, interval ORDER BY symbol, interval, source`;
      return rows.map((r): SeriesInfo => ({ source: r.source, symbol: r.symbol, interval: r.interval, firstTs: ms(r.first_ts)!, lastTs: ms(r.last_ts)!, bars: Number(r.bars) }));
    },

    async queryBars(q: BarQuery) {
      await settled();
      const from = new Date(Math.max(q.from ?? 0, 0));
      const to = new Date(Math.min(q.to ?? 4102444800000, 4102444800000));
      const a = q.after;
      const rows = await sql`
        SELECT * FROM ${sql(T.bars)} WHERE symbol = ${q.symbol} AND interval = ${q.interval} AND ts >= ${from} AND ts <= ${to}
          ${q.source ? sql`AND source = ${q.source}` : sql``}
          ${a ? sql`AND (ts > ${new Date(a.ts)} OR (ts = ${new Date(a.ts)} AND source > ${a.source}))` : sql``}
        ORDER BY ts, source LIMIT ${q.limit}`;
      return rows.map(rowToBar);
    },

    async listQuarantine({ limit, before, source, rule, runId }) {
      const rows = await sql`
        SELECT * FROM ${sql(T.quarantine)} WHERE id < ${before ?? Number.MAX_SAFE_INTEGER}
          ${source ? sql`AND source = ${source}` : sql``} ${rule ? sql`AND rule = ${rule}` : sql``} ${runId ? sql`AND run_id = ${runId}` : sql``}
        ORDER BY id DESC LIMIT ${limit}`;
      return rows.map(
        (r): QuarantineRecord => ({
          id: Number(r.id),
          runId: Number(r.run_id),
          source: r.source,
          locator: r.locator,
          rule: r.rule,
          reason: r.reason,
          symbol: r.symbol ?? null,
          ts: ms(r.ts),
          raw: JSON.parse(r.raw),
          createdAt: ms(r.created_at)!,
        }),
      );
    },

    async countBars() {
      await settled();
      const [r] = await sql`SELECT count() AS n FROM ${sql(T.bars)}`;
      return Number(r!.n);
    },

    async close() {
      await settled().catch(() => {});
      await sql.end({ timeout: 5 });
    },
  };

  async function putCheckpoint(c: Checkpoint, runId: number) {
    const [old] = await sql`SELECT stream FROM ${sql(T.checkpoints)} WHERE stream = ${c.stream}`;
    if (old)
      await sql`UPDATE ${sql(T.checkpoints)} SET cursor = ${JSON.stringify(c.cursor)}, last_ts = ${date(c.lastTs)}, last_key = ${c.lastKey}, run_id = ${runId}, updated_at = ${new Date()}
                WHERE stream = ${c.stream}`;
    else await sql`INSERT INTO ${sql(T.checkpoints)} VALUES (${c.stream}, ${JSON.stringify(c.cursor)}, ${date(c.lastTs)}, ${c.lastKey}, ${runId}, ${new Date()})`;
  }

  return store;
}

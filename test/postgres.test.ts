// What only the PostgreSQL store does: yearly range partitions made on demand (no TimescaleDB
// on Debian), and the plain materialised daily rollup of intraday bars refreshed after a run.
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { STORES } from "./stores.ts";
import { tempDir } from "./helpers.ts";
import type { Bar } from "../src/domain/bar.ts";
import type { Store } from "../src/stores/types.ts";
import { parsePgUrl } from "../src/stores/postgres.ts";

const pg = STORES.find((s) => s.kind === "postgres")!;
const dir = tempDir("ticksync-pg-");

describe.skipIf(pg.unavailable !== null)("postgres store specifics", () => {
  const url = pg.unavailable === null ? pg.freshUrl(dir) : "";
  let store: Store;
  const sql = pg.unavailable === null ? postgres(parsePgUrl(url).url, { max: 1, onnotice: () => {} }) : null;
  const schema = pg.unavailable === null ? parsePgUrl(url).schema : "";
  afterAll(async () => {
    await store?.close();
    await sql?.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql?.end();
  });

  test("bars land in yearly partitions made on demand; a daily rollup of intraday bars is refreshed after the run", async () => {
    store = pg.open(url);
    await store.migrate();
    const timescale = (await sql!`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'timescaledb'`)[0]!.n > 0;
    const run = await store.startRun({ kind: "ingest", source: "t" });
    const m = (iso: string, o: number, h: number, l: number, c: number, v: number): Bar => ({ source: "t", symbol: "PKN.WA", interval: "1m", ts: Date.parse(iso), open: o, high: h, low: l, close: c, volume: v });
    const bars = [
      m("2023-12-29T09:00:00Z", 10, 11, 9, 10.5, 100),
      m("2023-12-29T09:01:00Z", 10.5, 12, 10, 11.5, 50),
      m("2024-01-02T09:00:00Z", 20, 21, 19, 20.5, 10),
      m("2024-01-02T09:01:00Z", 20.5, 20.6, 18, 19, 20),
      m("2024-01-02T09:02:00Z", 19, 22, 19, 21, 30),
    ];
    await store.commitBatch({ runId: run, source: "t", bars, quarantine: [], read: bars.length });
    await store.finishRun(run, { outcome: "succeeded", read: 5, inserted: 5, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
    if (!timescale) {
      const parts = await sql!`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
                               JOIN pg_namespace n ON n.oid = p.relnamespace WHERE p.relname = 'bars' AND n.nspname = ${schema} ORDER BY 1`;
      expect(parts.map((r) => r.relname)).toEqual(["bars_y2023", "bars_y2024"]);
      const [y24] = await sql!.unsafe(`SELECT count(*)::int AS n FROM "${schema}".bars_y2024`);
      expect(y24!.n).toBe(3);
    }
    const rollup = await sql!.unsafe(`SELECT symbol, source, day, open, high, low, close, volume FROM "${schema}".bars_1d_from_intraday ORDER BY day`);
    expect(rollup.map((r): Record<string, unknown> => ({ ...r, day: new Date(r.day).toISOString().slice(0, 10) }))).toEqual([
      { symbol: "PKN.WA", source: "t", day: "2023-12-29", open: 10, high: 12, low: 9, close: 11.5, volume: 150 },
      { symbol: "PKN.WA", source: "t", day: "2024-01-02", open: 20, high: 22, low: 18, close: 21, volume: 60 },
    ]);
  });
});

// The stores under test, each made fresh and isolated: SQLite in a temp file, PostgreSQL in a
// new schema of the server that scripts/services/postgres.sh starts. With CI=true a missing
// server is an error; without CI the Postgres cases are skipped, saying why.
import { join } from "node:path";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { postgresStore } from "../src/stores/postgres/index.ts";
import { questdbStore } from "../src/stores/questdb/index.ts";
import type { Store } from "../src/stores/types.ts";
import { openStore } from "../src/stores/open.ts";
import { digestStore } from "../src/pipeline/migrate.ts";

export type StoreKind = "sqlite" | "postgres" | "questdb";

export type StoreFactory = {
  kind: StoreKind;
  /** Why this store cannot be tested here, or null when it can. */
  unavailable: string | null;
  /** A URL for a fresh, empty store (a new file or schema). */
  freshUrl(dir: string): string;
  open(url: string): Store;
};

let n = 0;
const unique = () => `${process.pid}_${Date.now().toString(36)}_${++n}`;

export const PG_URL = process.env.TICKSYNC_TEST_PG_URL;
/** QuestDB's PG wire URL and HTTP base, as scripts/services/questdb.sh prints them. */
export const QDB_PG_URL = process.env.TICKSYNC_TEST_QUESTDB_URL;
export const QDB_HTTP = process.env.TICKSYNC_TEST_QUESTDB_HTTP;

function requireInCi(kind: string, url: string | undefined): string | null {
  if (url) return null;
  const why = `${kind} is not running (start it with scripts/services/all.sh start)`;
  if (process.env.CI === "true") throw new Error(`CI=true and ${why}: the ${kind} tests cannot be skipped in CI`);
  return why;
}

export const STORES: StoreFactory[] = [
  {
    kind: "sqlite",
    unavailable: null,
    freshUrl: (dir) => `sqlite:${join(dir, `store-${unique()}.db`)}`,
    open: (url) => sqliteStore(url),
  },
  {
    kind: "postgres",
    unavailable: requireInCi("PostgreSQL", PG_URL),
    freshUrl: () => {
      const u = new URL(PG_URL!);
      u.searchParams.set("schema", `t_${unique()}`);
      return u.toString();
    },
    open: (url) => postgresStore(url),
  },
  {
    kind: "questdb",
    unavailable: requireInCi("QuestDB", QDB_PG_URL && QDB_HTTP),
    freshUrl: () => {
      const pg = new URL(QDB_PG_URL!);
      const url = `questdb://${pg.username}:${pg.password}@${pg.host}${pg.pathname}?http=${QDB_HTTP}&prefix=t_${unique()}_`;
      questdbStoresMade.add(url);
      return url;
    },
    open: (url) => questdbStore(url),
  },
];

/**
 * The servers a `postgres` table source reads from in tests (PostgreSQL, and QuestDB over its PG
 * wire): a raw connection URL to create tables with, and the source's `url`; `what` names the
 * skipped cases in a warning when one is not running (with CI=true a missing one has failed above).
 */
export function tableServers(what: string) {
  const servers = [
    { kind: "postgres" as const, unavailable: STORES.find((s) => s.kind === "postgres")!.unavailable, pg: PG_URL, url: () => PG_URL! },
    {
      kind: "questdb" as const,
      unavailable: STORES.find((s) => s.kind === "questdb")!.unavailable,
      pg: QDB_PG_URL,
      url: () => {
        const u = new URL(QDB_PG_URL!);
        return `questdb://${u.username}:${u.password}@${u.host}${u.pathname}?http=${QDB_HTTP}`;
      },
    },
  ];
  for (const s of servers) if (s.unavailable) console.warn(`${what}: ${s.kind} cases skipped: ${s.unavailable}`);
  return servers;
}

/** Every QuestDB store URL freshUrl gave in this test process: test/preload.ts drops their tables after the run. */
const questdbStoresMade = new Set<string>();
export const dropQuestdbTestTables = () => dropQuestdbTables([...questdbStoresMade]);

/**
 * Drops the QuestDB tables of the stores at these URLs (their `prefix`): each test store makes a
 * dozen tables, and a shared QuestDB that keeps them all runs out of file descriptors.
 */
export async function dropQuestdbTables(urls: string[]) {
  const prefixes = urls.filter((u) => u.startsWith("questdb://")).map((u) => new URL(u).searchParams.get("prefix") ?? "").filter((p) => p.startsWith("t_"));
  if (!prefixes.length || !QDB_PG_URL) return;
  const { default: postgres } = await import("postgres");
  const sql = postgres(QDB_PG_URL, { max: 1, fetch_types: false, onnotice: () => {} });
  try {
    for (const r of await sql`SELECT table_name FROM tables()`) {
      const t = String(r.table_name);
      if (prefixes.some((p) => t.startsWith(p))) await sql.unsafe(`DROP TABLE IF EXISTS "${t}"`).catch(() => {});
    }
  } finally {
    await sql.end();
  }
}

/** A store's content as a string: every (symbol, interval, day) digest, quarantine, checkpoints. */
export async function storeDigest(url: string): Promise<string> {
  const s = openStore(url);
  try {
    const d = await digestStore(s);
    return JSON.stringify([[...d.bars].map(([k, v]) => [k, v.count, v.sum.toString()]), [...d.quarantine], [...d.checkpoints]]);
  } finally {
    await s.close();
  }
}

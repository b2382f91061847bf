// The Postgres store as the registry lists it (src/stores/registry.ts), and its backups: pg_dump
// of the store's schema in its custom (compressed) format, restored with pg_restore after
// dropping the schema (only with force). libpq reads the connection from its environment, so no
// password is on a command line.
import { existsSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { redact, redactUrl } from "../../lib/redact.ts";
import type * as Incremental from "./backup-incremental.ts";
import { BackupError, type DescribeSnapshot, type SnapshotDigest, type StoreBackup } from "../backup.ts";
import { redactStoreUrl, storeUrlSchema, type StoreDescriptor } from "../descriptor.ts";
import type * as PgStore from "./index.ts";
import { parsePgUrl } from "./url.ts";

// The store and its increments are loaded when first used, not with the registry: every command
// imports the registry, and these bring in postgres.js (~50 ms of start for an SQLite ingest).
const pgStore = () => require("./index.ts") as typeof PgStore;
const incremental = () => require("./backup-incremental.ts") as typeof Incremental;

function pgTool(name: "pg_dump" | "pg_restore" | "psql"): string {
  const onPath = Bun.which(name);
  if (onPath) return onPath;
  if (existsSync("/usr/lib/postgresql"))
    for (const v of readdirSync("/usr/lib/postgresql").sort().reverse()) if (existsSync(`/usr/lib/postgresql/${v}/bin/${name}`)) return `/usr/lib/postgresql/${v}/bin/${name}`;
  throw new BackupError(`${name} is not installed: Postgres backups need it (Debian: apt-get install postgresql-client)`, "tool_missing");
}

/** libpq's environment for a postgres:// URL (no password on a command line). */
function pgEnv(url: string): { env: Record<string, string>; schema: string } {
  const { url: conn, schema } = parsePgUrl(url);
  const u = new URL(conn);
  const env: Record<string, string> = { PGHOST: u.hostname, PGPORT: u.port || "5432", PGDATABASE: decodeURIComponent(u.pathname.slice(1)) || "postgres" };
  if (u.username) env.PGUSER = decodeURIComponent(u.username);
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  return { env, schema };
}

async function run(cmd: string[], env: Record<string, string>): Promise<void> {
  const p = Bun.spawn(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new BackupError(`${basename(cmd[0]!)} exited ${code}: ${redact(err.trim().slice(-2000))}`, "failed");
}

async function pgSchemaHasTables(url: string): Promise<boolean> {
  const { env, schema } = pgEnv(url);
  const p = Bun.spawn([pgTool("psql"), "-At", "-c", `SELECT count(*) FROM information_schema.tables WHERE table_schema = '${schema.replace(/'/g, "''")}'`], {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new BackupError(`psql exited ${code}: ${err.trim()}`, "failed");
  return Number(out.trim()) > 0;
}

async function dump<T>(url: string, dir: string, name: string, describe: DescribeSnapshot<T>): Promise<{ file: string; described: T; digest: SnapshotDigest }> {
  const file = join(dir, `${name}.pgdump`);
  const { env, schema } = pgEnv(url);
  // pg_dump reads the snapshot of the transaction the manifest's counts and digests are read in.
  const pgDump = pgTool("pg_dump");
  try {
    const { described, digest } = await incremental().fullSnapshot(url, describe, (snapshotId) =>
      run([pgDump, "--format=custom", "--no-owner", "--no-privileges", `--schema=${schema}`, `--snapshot=${snapshotId}`, `--file=${file}.part`], env),
    );
    renameSync(`${file}.part`, file);
    return { file, described, digest };
  } finally {
    rmSync(`${file}.part`, { force: true });
  }
}

async function restore(url: string, file: string, opts: { force: boolean }): Promise<void> {
  const { env, schema } = pgEnv(url);
  const exists = await pgSchemaHasTables(url);
  if (exists && !opts.force) throw new BackupError(`schema ${schema} already has tables; restore replaces it only with --force`, "exists");
  if (exists) await run([pgTool("psql"), "-v", "ON_ERROR_STOP=1", "-q", "-c", `DROP SCHEMA IF EXISTS "${schema}" CASCADE`], env);
  await run([pgTool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", `--dbname=${env.PGDATABASE}`, file], env);
}

const postgresBackup: StoreBackup = {
  method: "pg_dump of the store's schema (custom format; pg_dump must be installed)",
  dump,
  restore,
  target: (url) => redactUrl(url),
  incremental: {
    snapshot: (...a) => incremental().postgresIncremental.snapshot(...a),
    apply: (...a) => incremental().postgresIncremental.apply(...a),
  },
};

export const postgresStoreDescriptor: StoreDescriptor = {
  type: "postgres",
  summary: "PostgreSQL (TimescaleDB when the extension is there): replicas, large data",
  schema: storeUrlSchema("postgres://user:pass@host:port/db[?schema=name]"),
  create: (url) => pgStore().postgresStore(url),
  prefixes: ["postgres://", "postgresql://"],
  urlForm: "postgres://user@host:port/db",
  parseUrl: parsePgUrl,
  redact: redactStoreUrl,
  pgWire: (url) => ({ url, catalog: true }),
  backup: postgresBackup,
  deletesBars: true,
};

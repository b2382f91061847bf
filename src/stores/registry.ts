// The stores, one descriptor each: the URL prefixes it answers to, how it opens, reads, redacts
// and backs up its URL. Everything that tells stores apart by URL (opening, the config's store
// URL field, a relative SQLite path, backups, readers of other databases) asks here. A new store
// is one folder and one line in STORES.
import { isAbsolute, resolve } from "node:path";
import * as v from "valibot";
import { findDescriptor, typesOf, type Descriptor } from "../lib/descriptor.ts";
import { redact, redactUrl } from "../lib/redact.ts";
import type { StoreBackup } from "./backup.ts";
import { parsePgUrl, postgresStore } from "./postgres/index.ts";
import { postgresBackup } from "./postgres-backup.ts";
import { parseQuestdbUrl, questdbStore } from "./questdb/index.ts";
import { sqliteBackup } from "./sqlite/backup.ts";
import { sqlitePath, sqliteStore } from "./sqlite/index.ts";
import type { Store } from "./types.ts";

export interface StoreDescriptor extends Descriptor<v.GenericSchema<string, string>, (url: string) => Store> {
  /** URL prefixes of this store (`postgres://`), matched without regard to case when opening. */
  readonly prefixes: readonly string[];
  /** The default store: also takes a URL no other store claims (SQLite: `file:<path>`, a bare path). */
  readonly fallback?: { readonly prefixes: readonly string[] };
  /** How its URL is written, for messages. */
  readonly urlForm: string;
  /** Its URL taken apart (a path, a connection and schema…). */
  readonly parseUrl: (url: string) => unknown;
  /** The URL as it may be shown: without its password or secret parameters. */
  readonly redact: (url: string) => string;
  /** The URL with a relative location made absolute against `baseDir` (a config file's folder). */
  readonly relativeTo?: (url: string, baseDir: string) => string;
  /** Its PostgreSQL-wire URL, where other readers can query its tables (src/sources/postgres.ts). */
  readonly pgWire?: (url: string) => string;
  /** How ticksync backs it up, or why it does not. */
  readonly backup: StoreBackup | { readonly unsupported: string };
}

/** A store URL as it may be shown (src/lib/redact.ts): one rule for every store. */
const redactStoreUrl = (url: string): string => redact(redactUrl(url));

const urlSchema = (description: string) => v.pipe(v.string(), v.nonEmpty(), v.description(description));

export const sqliteStoreDescriptor: StoreDescriptor = {
  type: "sqlite",
  summary: "the embedded default: one SQLite file in WAL mode",
  schema: urlSchema("sqlite:<path>, file:<path> or a path to a SQLite file (relative to the config file)"),
  create: sqliteStore,
  prefixes: ["sqlite:"],
  fallback: { prefixes: ["file:"] },
  urlForm: "sqlite:<path>, a path to a SQLite file",
  parseUrl: sqlitePath,
  redact: redactStoreUrl,
  relativeTo(url, baseDir) {
    const path = url.replace(/^(sqlite:|file:)/, "");
    return !isAbsolute(path) && path !== ":memory:" && !path.startsWith("//") ? `sqlite:${resolve(baseDir, path)}` : url;
  },
  backup: sqliteBackup,
};

export const postgresStoreDescriptor: StoreDescriptor = {
  type: "postgres",
  summary: "PostgreSQL (TimescaleDB when the extension is there): replicas, large data",
  schema: urlSchema("postgres://user:pass@host:port/db[?schema=name]"),
  create: postgresStore,
  prefixes: ["postgres://", "postgresql://"],
  urlForm: "postgres://user@host:port/db",
  parseUrl: parsePgUrl,
  redact: redactStoreUrl,
  pgWire: (url) => url,
  backup: postgresBackup,
};

export const questdbStoreDescriptor: StoreDescriptor = {
  type: "questdb",
  summary: "QuestDB: bars over ILP, everything else over its PostgreSQL wire",
  schema: urlSchema("questdb://user:pass@host:pgport/qdb?http=http://host:9000[&prefix=name][&lines=n]"),
  create: questdbStore,
  prefixes: ["questdb://"],
  urlForm: "questdb://user:pass@host:port/qdb?http=http://host:9000",
  parseUrl: parseQuestdbUrl,
  redact: redactStoreUrl,
  pgWire: (url) => parseQuestdbUrl(url).pg,
  backup: { unsupported: "the QuestDB store is backed up with QuestDB's own tools (SNAPSHOT / a copy of its root dir), not by ticksync" },
};

/** Every store, the default first. */
export const STORES: readonly StoreDescriptor[] = [sqliteStoreDescriptor, postgresStoreDescriptor, questdbStoreDescriptor];

export const storeTypes = (): string[] => typesOf(STORES);
export const findStore = (type: string): StoreDescriptor | undefined => findDescriptor(STORES, type);

const startsWithAny = (url: string, prefixes: readonly string[]) => prefixes.some((p) => url.slice(0, p.length).toLowerCase() === p);

/** The store a URL names: by its prefix (any case), else the default store. */
export function storeFor(url: string): StoreDescriptor {
  return STORES.find((d) => startsWithAny(url, d.prefixes)) ?? STORES.find((d) => d.fallback)!;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/**
 * What a field that takes a store URL accepts (case as written): the stores' prefixes; with
 * `paths`, also the default store's other forms (`file:`, a bare path with no colon); with
 * `pgWire`, only stores other programs can query over the PostgreSQL wire.
 */
export function storeUrlPattern(opts: { paths?: boolean; pgWire?: boolean } = {}): RegExp {
  const stores = STORES.filter((d) => !opts.pgWire || d.pgWire);
  const alternatives = stores.flatMap((d) => d.prefixes.map(escape));
  if (opts.paths) alternatives.push(...stores.flatMap((d) => (d.fallback?.prefixes ?? []).map(escape)), "[^:]+$");
  return new RegExp(`^(${alternatives.join("|")})`);
}

/** "expected …" for a store URL field: each store's URL form, in registry order. */
export function storeUrlForms(): string {
  const forms = STORES.map((d) => d.urlForm);
  return forms.length > 1 ? `${forms.slice(0, -1).join(", ")} or ${forms[forms.length - 1]}` : forms[0]!;
}

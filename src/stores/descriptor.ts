// What each store says about itself (src/lib/descriptor.ts's shape, for a store): the URL
// prefixes it answers to, how it opens, parses, redacts and backs up its URL. Each store's folder
// exports one; src/stores/registry.ts lists them.
import * as v from "valibot";
import type { Descriptor } from "../lib/descriptor.ts";
import { redact, redactUrl } from "../lib/redact.ts";
import type { StoreBackup } from "./backup.ts";
import type { Store } from "./types.ts";

/** A store's PostgreSQL-wire endpoint (StoreDescriptor.pgWire). */
export type PgWire = { readonly url: string; readonly catalog: boolean };

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
  /**
   * Where other readers query its tables over the PostgreSQL wire (the postgres table source, the
   * Pocketbase table sink): the URL, and whether its pg_catalog answers postgres.js's type lookup.
   */
  readonly pgWire?: (url: string) => PgWire;
  /** A store kept in one local file: that file (the disk alert watches its folder). */
  readonly localFile?: (url: string) => string;
  /** It deletes single bars (Store.deleteBarKeys): a table source's reconcile.deleteMissing needs it. */
  readonly deletesBars?: boolean;
  /** How ticksync backs it up, or why it does not. */
  readonly backup: StoreBackup | { readonly unsupported: string };
}

/** A store URL as it may be shown (src/lib/redact.ts): one rule for every store. */
export const redactStoreUrl = (url: string): string => redact(redactUrl(url));

/** A store URL's schema, with what it looks like. */
export const storeUrlSchema = (description: string) => v.pipe(v.string(), v.nonEmpty(), v.description(description));

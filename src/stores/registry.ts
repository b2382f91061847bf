// The stores: one descriptor each (src/stores/descriptor.ts), exported by the store's folder.
// Everything that tells stores apart by URL (opening, the config's store URL field, a relative
// SQLite path, backups, readers of other databases) asks here. A new store is one folder and
// one line in STORES.
import type { StoreDescriptor } from "./descriptor.ts";
import { postgresStoreDescriptor } from "./postgres/descriptor.ts";
import { questdbStoreDescriptor } from "./questdb/descriptor.ts";
import { sqliteStoreDescriptor } from "./sqlite/descriptor.ts";

export type { StoreDescriptor } from "./descriptor.ts";

/** Every store, the default first. */
export const STORES: readonly StoreDescriptor[] = [sqliteStoreDescriptor, postgresStoreDescriptor, questdbStoreDescriptor];

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

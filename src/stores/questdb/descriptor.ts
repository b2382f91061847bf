// The QuestDB store as the registry lists it (src/stores/registry.ts).
import { redactStoreUrl, storeUrlSchema, type StoreDescriptor } from "../descriptor.ts";
import type * as QdbStore from "./index.ts";

/** The store, loaded when first used (every command imports the registry). */
const qdbStore = () => require("./index.ts") as typeof QdbStore;

export const questdbStoreDescriptor: StoreDescriptor = {
  type: "questdb",
  summary: "QuestDB: bars over ILP, everything else over its PostgreSQL wire",
  schema: storeUrlSchema("questdb://user:pass@host:pgport/qdb?http=http://host:9000[&prefix=name][&lines=n]"),
  create: (url) => qdbStore().questdbStore(url),
  prefixes: ["questdb://"],
  urlForm: "questdb://user:pass@host:port/qdb?http=http://host:9000",
  parseUrl: (url) => qdbStore().parseQuestdbUrl(url),
  redact: redactStoreUrl,
  // QuestDB answers only part of pg_catalog.
  pgWire: (url) => ({ url: qdbStore().parseQuestdbUrl(url).pg, catalog: false }),
  backup: { unsupported: "a QuestDB store is backed up as a checksummed export of its tables (ticksync backup, a backup job: src/monitor/backup-questdb.ts), not as a file snapshot" },
};

// The QuestDB store as the registry lists it (src/stores/registry.ts).
import { redactStoreUrl, storeUrlSchema, type StoreDescriptor } from "../descriptor.ts";
import { parseQuestdbUrl, questdbStore } from "./index.ts";

export const questdbStoreDescriptor: StoreDescriptor = {
  type: "questdb",
  summary: "QuestDB: bars over ILP, everything else over its PostgreSQL wire",
  schema: storeUrlSchema("questdb://user:pass@host:pgport/qdb?http=http://host:9000[&prefix=name][&lines=n]"),
  create: questdbStore,
  prefixes: ["questdb://"],
  urlForm: "questdb://user:pass@host:port/qdb?http=http://host:9000",
  parseUrl: parseQuestdbUrl,
  redact: redactStoreUrl,
  // QuestDB answers only part of pg_catalog.
  pgWire: (url) => ({ url: parseQuestdbUrl(url).pg, catalog: false }),
  backup: { unsupported: "a QuestDB store is backed up as a checksummed export of its tables (ticksync backup, a backup job: src/monitor/backup-questdb.ts), not as a file snapshot" },
};

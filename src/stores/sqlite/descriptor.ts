// The SQLite store as the registry lists it (src/stores/registry.ts).
import { isAbsolute, resolve } from "node:path";
import { redactStoreUrl, storeUrlSchema, type StoreDescriptor } from "../descriptor.ts";
import { sqliteBackup } from "./backup.ts";
import { sqlitePath, sqliteStore } from "./index.ts";

export const sqliteStoreDescriptor: StoreDescriptor = {
  type: "sqlite",
  summary: "the embedded default: one SQLite file in WAL mode",
  schema: storeUrlSchema("sqlite:<path>, file:<path> or a path to a SQLite file (relative to the config file)"),
  create: sqliteStore,
  prefixes: ["sqlite:"],
  fallback: { prefixes: ["file:"] },
  urlForm: "sqlite:<path>, a path to a SQLite file",
  parseUrl: sqlitePath,
  localFile: sqlitePath,
  redact: redactStoreUrl,
  relativeTo(url, baseDir) {
    const path = url.replace(/^(sqlite:|file:)/i, "");
    return !isAbsolute(path) && path !== ":memory:" && !path.startsWith("//") ? `sqlite:${resolve(baseDir, path)}` : url;
  },
  deletesBars: true,
  backup: sqliteBackup,
};

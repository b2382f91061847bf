// Pick a store by its URL: sqlite:<path> (the default, embedded), postgres://… (PostgreSQL,
// TimescaleDB when the extension is there), questdb://user:pass@host:pgport/qdb?http=… (QuestDB).
import { sqliteStore } from "./sqlite.ts";
import { postgresStore } from "./postgres.ts";
import { questdbStore } from "./questdb.ts";
import type { Store } from "./types.ts";

export function openStore(url: string): Store {
  if (/^postgres(ql)?:\/\//i.test(url)) return postgresStore(url);
  if (/^questdb:\/\//i.test(url)) return questdbStore(url);
  return sqliteStore(url);
}

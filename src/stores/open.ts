// Pick a store by its URL: sqlite:<path> (the default, embedded), postgres://… (PostgreSQL,
// TimescaleDB when the extension is there).
import { sqliteStore } from "./sqlite.ts";
import { postgresStore } from "./postgres.ts";
import type { Store } from "./types.ts";

export function openStore(url: string): Store {
  if (/^postgres(ql)?:\/\//i.test(url)) return postgresStore(url);
  if (/^questdb:/i.test(url)) throw new Error("a QuestDB store is not available in this build; use sqlite:<path> or postgres://");
  return sqliteStore(url);
}

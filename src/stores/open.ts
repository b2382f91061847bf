// Pick a store by its URL. SQLite is the default; Postgres and QuestDB join here.
import { sqliteStore } from "./sqlite.ts";
import type { Store } from "./types.ts";

export function openStore(url: string): Store {
  if (/^(postgres|postgresql|questdb):/i.test(url)) throw new Error(`store ${url.split(":")[0]} is not available in this build; use sqlite:<path>`);
  return sqliteStore(url);
}

// Queries over QuestDB's HTTP `/exec` (JSON rows: doubles exact, and cheaper to read than the PG
// wire's text), with the text they travel in: a GET's URL, which QuestDB refuses past about 64 KB.
import { errorText } from "../../lib/errors.ts";
import type { QdbContext } from "./context.ts";
import { oneLine } from "./queue.ts";

/** A QuestDB SQL string literal. */
export const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** A query's rows (JSON arrays, null for SQL null). */
export async function exec(cx: QdbContext, query: string): Promise<unknown[][]> {
  const url = `${cx.execUrl}?query=${encodeURIComponent(query)}`;
  const res = await fetch(url).catch((e) => {
    throw new Error(`QuestDB /exec failed on a query of ${url.length} characters: ${oneLine(errorText(e))}`);
  });
  const body = (await res.json().catch(() => null)) as { dataset?: unknown[][]; error?: string } | null;
  if (res.status !== 200 || !body?.dataset) throw new Error(`QuestDB /exec answered ${res.status}: ${oneLine(body?.error ?? "no rows")}`);
  return body.dataset;
}

/** URL-encoded characters of symbols per query, leaving room for the rest of its text under QuestDB's limit. */
const SYMBOL_CHARS_PER_QUERY = 16_000;

/** `items` in runs of at most `count`, and of at most SYMBOL_CHARS_PER_QUERY URL-encoded characters of their symbols (one item at least). */
export function queryParts<T>(items: T[], symbol: (x: T) => string, count: number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let chars = 0;
  for (const x of items) {
    const n = encodeURIComponent(symbol(x)).length;
    if (cur.length > 0 && (cur.length === count || chars + n > SYMBOL_CHARS_PER_QUERY)) (out.push(cur), (cur = []), (chars = 0));
    cur.push(x);
    chars += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

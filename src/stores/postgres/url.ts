// The store's URL: postgres:// or postgresql://, with `?schema=` ours.
import { redactUrl } from "../../lib/redact.ts";

/** `?schema=name` picks the schema (default public); it is ours, not a libpq option. */
export function parsePgUrl(url: string): { url: string; schema: string } {
  const u = new URL(url.replace(/^postgresql:/, "postgres:"));
  const schema = u.searchParams.get("schema") ?? "public";
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`schema ${JSON.stringify(schema)} must be a lower-case SQL identifier`);
  u.searchParams.delete("schema");
  return { url: u.toString(), schema };
}

/** The URL without its password (the one redaction: src/lib/redact.ts). */
export const redactPgUrl = (url: string): string => redactUrl(url);

// Timestamp parsing for the spellings market data files use. Everything becomes epoch ms UTC.
import { zonedTimeToUtc } from "./calendar.ts";

export type TsFormat = "auto" | "iso" | "yyyymmdd" | "epoch_s" | "epoch_ms";

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const COMPACT = /^(\d{4})(\d{2})(\d{2})(?:[ T]?(\d{2})(\d{2})(\d{2})?)?$/;
const LOCAL_DATETIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?$/;
const MIN_TS = Date.UTC(1900, 0, 1);
const MAX_TS = Date.UTC(2200, 0, 1);

function utc(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number | null {
  // Date.UTC reads years 0..99 as 1900..1999: a `0001-01-01` placeholder is no date at all.
  if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return null;
  const t = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  // Date.UTC rolls 2024-02-30 over into March; a real date survives the round trip.
  if (new Date(t).getUTCDate() !== d) return null;
  return t;
}

function local(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number, tz: string | undefined): number | null {
  const asUtc = utc(y, mo, d, h, mi, s, ms);
  if (asUtc === null || !tz || tz === "UTC") return asUtc;
  const pad = (n: number) => String(n).padStart(2, "0");
  return zonedTimeToUtc(`${y}-${pad(mo)}-${pad(d)}`, `${pad(h)}:${pad(mi)}`, tz) + s * 1000 + ms;
}

/**
 * Parse a timestamp. Strings without a zone are read in `timeZone` (default UTC); numbers are
 * epoch seconds or milliseconds (auto: below 1e11 means seconds, i.e. before year 5138 in s).
 * Returns null for anything that is not a real instant between 1900 and 2200.
 */
export function parseTimestamp(value: unknown, format: TsFormat = "auto", timeZone?: string): number | null {
  let t: number | null = null;
  if (typeof value === "number" || typeof value === "bigint") {
    const n = Number(value);
    if (!Number.isFinite(n)) return null;
    t = format === "epoch_s" || (format === "auto" && Math.abs(n) < 1e11) ? n * 1000 : n;
    if (format === "yyyymmdd") return parseTimestamp(String(n), format, timeZone);
  } else if (typeof value === "string") {
    const s = value.trim();
    if (s === "") return null;
    let m: RegExpExecArray | null;
    if (format === "epoch_s" || format === "epoch_ms") {
      const n = Number(s);
      return Number.isFinite(n) && s !== "" ? parseTimestamp(n, format, timeZone) : null;
    }
    if ((m = DATE_ONLY.exec(s))) t = utc(+m[1]!, +m[2]!, +m[3]!);
    else if ((m = COMPACT.exec(s)) && format !== "iso")
      t = local(+m[1]!, +m[2]!, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), 0, m[4] ? timeZone : undefined);
    else if ((m = LOCAL_DATETIME.exec(s)))
      t = local(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +(m[6] ?? 0), +(m[7] ?? "0").padEnd(3, "0"), timeZone);
    else if ((m = /^(\d{4})-(\d{2})-(\d{2})T.*(Z|[+-]\d{2}:?\d{2})$/.exec(s))) {
      // Date.parse rolls 2024-02-30 over into March: the calendar date must exist on its own.
      const p = utc(+m[1]!, +m[2]!, +m[3]!) === null ? NaN : Date.parse(s);
      t = Number.isNaN(p) ? null : p;
    } else if (format === "auto" && /^-?\d+(\.\d+)?$/.test(s)) return parseTimestamp(Number(s), format, timeZone);
    else return null;
  } else if (value instanceof Date) {
    t = value.getTime();
  }
  if (t === null || !Number.isFinite(t) || t < MIN_TS || t > MAX_TS) return null;
  return Math.trunc(t);
}

/** `YYYY-MM-DD` of an instant in UTC. */
export function utcDate(ts: number): string {
  return new Date(ts).toISOString().slice(0, 10);
}

/** Start of the UTC day of an instant. */
export function floorUtcDay(ts: number): number {
  return ts - (((ts % 86_400_000) + 86_400_000) % 86_400_000);
}

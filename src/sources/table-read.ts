// What the table sources share beyond their column mapping: a `where` filter of column = value
// pairs (values always bound as parameters, columns checked against the table), key columns to
// page by where a table has no rowid (views), and decimal text read as a number only when the
// number holds it exactly. See docs/sources.md (Database tables).
import * as v from "valibot";

/** A `where` value: text or a finite number, compared with `=`; a list is `IN (…)`. */
const WhereScalar = v.union([v.string(), v.pipe(v.number(), v.finite())], "expected text or a number");

/** Most columns a `where` may name, and values a list may hold: a filter, not a query language. */
export const WHERE_MAX_COLUMNS = 8;
export const WHERE_MAX_VALUES = 100;

export type WhereValue = string | number;
export type Where = Record<string, WhereValue | WhereValue[]>;

export function whereSchema(column: v.GenericSchema<string, string>) {
  return v.optional(
    v.pipe(
      v.record(column, v.union([WhereScalar, v.pipe(v.array(WhereScalar), v.minLength(1, "expected at least one value"), v.maxLength(WHERE_MAX_VALUES, `expected at most ${WHERE_MAX_VALUES} values`))])),
      v.check((w) => Object.keys(w).length <= WHERE_MAX_COLUMNS, `expected at most ${WHERE_MAX_COLUMNS} columns`),
      v.description(
        `Read only rows where each named column equals the value (a list: any of the values), e.g. { interval = "1d" }. Values are bound as parameters and columns must exist in the table: no SQL is taken from config. At most ${WHERE_MAX_COLUMNS} columns and ${WHERE_MAX_VALUES} values a list.`,
      ),
    ),
  );
}

export function keySchema(column: v.GenericSchema<string, string>) {
  return v.optional(
    v.pipe(
      v.array(column),
      v.minLength(1, "expected at least one key column"),
      v.maxLength(4, "expected at most 4 key columns"),
      v.description(
        "Columns that identify a row, to page by in their order instead of rowid: needed for a view or a WITHOUT ROWID table (default there: the primary key, else the symbol and ts columns). A key that is not unique, or empty in a row, stops the read with the rows named.",
      ),
    ),
  );
}

/** A stream's name suffix for its filter (`?interval=1d`): each filter keeps its own checkpoint. */
export function whereSuffix(where: Where | undefined): string {
  if (!where) return "";
  const parts = Object.keys(where)
    .sort()
    .map((k) => `${k}=${([] as WhereValue[]).concat(where[k]!).join(",")}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

/** `"a" = ? AND "b" IN (?, ?)` and its parameters; columns quoted (and checked by the caller). */
export function whereSql(where: Where | undefined, quote: (column: string) => string): { sql: string; params: WhereValue[] } {
  const clauses: string[] = [];
  const params: WhereValue[] = [];
  for (const [col, value] of Object.entries(where ?? {})) {
    if (Array.isArray(value)) {
      clauses.push(`${quote(col)} IN (${value.map(() => "?").join(", ")})`);
      params.push(...value);
    } else {
      clauses.push(`${quote(col)} = ?`);
      params.push(value);
    }
  }
  return { sql: clauses.join(" AND "), params };
}

/** Beyond this an integer is not exact as a JavaScript number (2^53 − 1). */
export const MAX_EXACT_INTEGER = Number.MAX_SAFE_INTEGER;

const DECIMAL = /^\s*[+-]?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;

/** A decimal's significant digits and the power of ten before its first one (0.d1d2… × 10^p); null when not a decimal. */
function decimalParts(text: string): { digits: string; power: number } | null {
  const m = DECIMAL.exec(text);
  if (!m || (m[1] === "" && (m[2] ?? "") === "")) return null;
  const int = m[1]!;
  const all = int + (m[2] ?? "");
  const lead = all.length - all.replace(/^0+/, "").length;
  const digits = all.slice(lead).replace(/0+$/, "");
  return { digits, power: digits === "" ? 0 : int.length - lead + Number(m[3] ?? 0) };
}

/**
 * The number decimal text (a PostgreSQL numeric, a SQLite TEXT cell) stands for, when the number
 * gives the same decimal back (every decimal of up to 15 significant digits does); otherwise why
 * not (a reason to follow the text): a price with more digits than a double holds would be
 * rounded without a word.
 * Text that is not a decimal at all is returned as NaN, for the row rules to name.
 */
export function exactDecimal(text: string): number | { reason: string } {
  const n = Number(text);
  const parts = decimalParts(text);
  if (parts === null || text.trim() === "") return NaN;
  if (!Number.isFinite(n)) return { reason: "beyond the range of a number" };
  if (parts.digits.length <= 15) {
    // 15 significant digits always survive the trip; only the range can be lost (underflow to 0).
    if (n === 0 && parts.digits !== "") return { reason: "too small for a number" };
    return n;
  }
  const back = decimalParts(n.toExponential());
  if (back && back.digits === parts.digits && back.power === parts.power) return n;
  return { reason: `${parts.digits.length} significant digits: more than a number holds exactly` };
}

/**
 * A cell value as it goes to the row rules: decimal text that does not fit a number exactly
 * becomes text the rules reject as "not a number", with the reason in it; anything else as it is.
 */
export function exactCell(x: unknown): unknown {
  if (typeof x !== "string") return x;
  // Fast path, same answer as exactDecimal: trailing zeros are not significant digits (a
  // NUMERIC(38,18)'s "100.500000000000000000"), so text of at most 15 characters before them has
  // at most 15 digits, and a finite non-zero number from it is exact.
  let end = x.length;
  while (end > 0 && x.charCodeAt(end - 1) === 48) end--;
  if (end <= 15) {
    const quick = Number(x);
    if (quick !== 0 && Number.isFinite(quick)) return x;
  }
  const n = exactDecimal(x);
  return typeof n === "number" ? x : `${x} (${n.reason})`;
}

/** Bar fields read as numbers: an integer past 2^53 or over-long decimal text is not taken as one. */
export const NUMERIC_FIELDS: ReadonlySet<string> = new Set(["open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"]);

/** One cell as exactCells leaves it: decimal text checked, an infinity named, anything else as it is. */
export function exactValue(x: unknown): unknown {
  if (typeof x === "string") return exactCell(x);
  return x === Infinity || x === -Infinity ? `${x} (beyond the range of a number)` : x;
}

/**
 * Decimal text of the numeric fields checked for exactness, and an infinity (a REAL or NUMERIC
 * column stores '1e400' as one) named as such: finite numbers pass on two comparisons.
 */
export function exactCells(r: Record<string, unknown>, fields: readonly string[]): void {
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const x = r[f];
    if (typeof x === "string") r[f] = exactCell(x);
    else if (x === Infinity || x === -Infinity) r[f] = `${x} (beyond the range of a number)`;
  }
}

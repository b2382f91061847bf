// Bars in PostgreSQL's binary COPY format, and the COPY that sends them: the write path's per-row
// work (encodeCopy runs once per bar of every batch).
import { COLUMN_WIDTH, type BarColumns } from "../../domain/columns.ts";
import type { Tx } from "./sql.ts";

/** The columns a batch is COPYed into, bars or its staging table, in this order. */
const COPY_COLUMNS = "series_id, ts, open, high, low, close, volume, adj_close, turnover, trades, run_id";
const COPY_FIELDS = 11;
/** The widest row: field count, 11 lengths, int4 and 10 eight-byte values. */
const COPY_ROW_MAX = 2 + COPY_FIELDS * 4 + 4 + 10 * 8;
export const COPY_SIGNATURE = [0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]; // PGCOPY\n\377\r\n\0
/** Postgres counts timestamps in microseconds from 2000-01-01 UTC. */
export const PG_EPOCH_MS = 946_684_800_000;
export const TWO_32 = 4_294_967_296;

/**
 * An int8 field at `o`: its length, then the integer (up to 2^53) as two 32-bit halves, so no
 * BigInt per value. Returns the offset after it.
 */
export function putInt8(dv: DataView, o: number, x: number): number {
  const hi = Math.floor(x / TWO_32);
  dv.setInt32(o, 8);
  dv.setInt32(o + 4, hi);
  dv.setUint32(o + 8, x - hi * TWO_32);
  return o + 12;
}

/**
 * Bars in COPY's binary format: no number is formatted as text on this side or parsed on the
 * server's, which is most of what a text COPY costs both. Non-finite numbers go as NULL.
 * `seriesIds` holds the series id of each of the columns' series.
 */
export function encodeCopy(c: BarColumns, seriesIds: Int32Array, runId: number): Uint8Array {
  const out = new Uint8Array(19 + c.n * COPY_ROW_MAX + 2);
  const dv = new DataView(out.buffer);
  out.set(COPY_SIGNATURE);
  let o = 19; // signature, flags and header extension length (both 0)
  const f = c.f64;
  const float8 = (x: number) => {
    if (Number.isFinite(x)) {
      dv.setInt32(o, 8);
      dv.setFloat64(o + 4, x);
      o += 12;
    } else {
      dv.setInt32(o, -1);
      o += 4;
    }
  };
  for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
    dv.setInt16(o, COPY_FIELDS);
    dv.setInt32(o + 2, 4);
    dv.setInt32(o + 6, seriesIds[c.row[i]!]!);
    o += 10;
    o = putInt8(dv, o, (f[k]! - PG_EPOCH_MS) * 1000);
    float8(f[k + 1]!);
    float8(f[k + 2]!);
    float8(f[k + 3]!);
    float8(f[k + 4]!);
    float8(f[k + 5]!);
    float8(f[k + 6]!);
    float8(f[k + 7]!);
    const trades = f[k + 8]!;
    if (Number.isFinite(trades)) o = putInt8(dv, o, Math.round(trades));
    else dv.setInt32(o, -1), (o += 4);
    o = putInt8(dv, o, runId);
  }
  dv.setInt16(o, -1);
  return out.subarray(0, o + 2);
}

/** One binary COPY of encoded bars into `table`. */
export async function copyInto(tx: Tx, table: "bars" | "bars_stage", data: Uint8Array) {
  const stream = await tx.unsafe(`COPY ${table} (${COPY_COLUMNS}) FROM STDIN (FORMAT binary)`).writable();
  await new Promise<void>((resolve, reject) => {
    stream.on("error", reject);
    stream.write(data);
    stream.end(() => resolve());
  });
}

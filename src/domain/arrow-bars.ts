// Bars (and indicator rows) as Apache Arrow record batches, the columns typed as the JSON answer
// means them: strings Utf8, ts a Timestamp(ms, UTC), prices and volume Float64 (the JSON's
// doubles, so values compare exactly), adjClose/turnover nullable Float64, trades nullable Int64.
// Used by /api/bars|indicators?format=arrow (IPC stream) and `ticksync export --format arrow`
// (IPC file). Columns are filled straight into typed arrays (makeData), not through arrow's
// per-value builders: no call or allocation per row. Strings are plain Utf8, not dictionaries: an
// IPC file (export) cannot replace a dictionary between batches, and one schema serves both.
import {
  Field,
  Float64,
  Int64,
  makeData,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  TimestampMillisecond,
  Utf8,
  type Data,
  type DataType,
} from "apache-arrow";
import type { Bar } from "./bar.ts";

export const ARROW_STREAM_TYPE = "application/vnd.apache.arrow.stream";
export const ARROW_FILE_TYPE = "application/vnd.apache.arrow.file";

const str = (name: string) => new Field(name, new Utf8(), false);
const f64 = (name: string, nullable = false) => new Field(name, new Float64(), nullable);
const TS = () => new Field("ts", new TimestampMillisecond("UTC"), false);

/** The bar columns, in the JSON answer's field order and names. */
export const BAR_SCHEMA = new Schema([
  str("source"),
  str("symbol"),
  str("interval"),
  TS(),
  f64("open"),
  f64("high"),
  f64("low"),
  f64("close"),
  f64("volume"),
  f64("adjClose", true),
  f64("turnover", true),
  new Field("trades", new Int64(), true),
]);

const encoder = new TextEncoder();
const TWO32 = 4294967296;

/** Utf8 data of one string property; the few distinct values (source, symbol) are encoded once each. */
function utf8Column(bars: readonly Bar[], key: "source" | "symbol" | "interval"): Data<Utf8> {
  const n = bars.length;
  const encoded = new Map<string, Uint8Array>();
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const s = bars[i]![key];
    let e = encoded.get(s);
    if (e === undefined) encoded.set(s, (e = encoder.encode(s)));
    total += e.length;
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < n; i++) bytes.set(encoded.get(bars[i]![key])!, offsets[i]!);
  return makeData({ type: new Utf8(), length: n, nullCount: 0, valueOffsets: offsets, data: bytes });
}

/** Writes a safe integer as a little-endian int64 into an Int32Array view, without a BigInt per value. */
function putInt64(words: Int32Array, i: number, v: number): void {
  const hi = Math.floor(v / TWO32);
  words[2 * i] = (v - hi * TWO32) | 0;
  words[2 * i + 1] = hi;
}

/** A Float64 (or Int64) column with a validity bitmap: null, undefined and non-finite values are nulls. */
class NullableColumn {
  readonly values: Float64Array | BigInt64Array;
  private readonly words: Int32Array | null;
  readonly validity: Uint8Array;
  nulls = 0;
  constructor(
    readonly n: number,
    readonly int64: boolean,
  ) {
    this.values = int64 ? new BigInt64Array(n) : new Float64Array(n);
    this.words = int64 ? new Int32Array(this.values.buffer) : null;
    this.validity = new Uint8Array((n + 7) >> 3);
  }
  set(i: number, v: number | null | undefined): void {
    if (v == null || !Number.isFinite(v)) {
      this.nulls++;
      return;
    }
    this.validity[i >> 3]! |= 1 << (i & 7);
    if (this.words) putInt64(this.words, i, v);
    else (this.values as Float64Array)[i] = v;
  }
  data(): Data {
    const type: DataType = this.int64 ? new Int64() : new Float64();
    return makeData({ type, length: this.n, nullCount: this.nulls, data: this.values as never, nullBitmap: this.nulls ? this.validity : undefined } as never);
  }
}

function timestampColumn(ts: ArrayLike<number>): Data {
  const n = ts.length;
  const values = new BigInt64Array(n);
  const words = new Int32Array(values.buffer);
  for (let i = 0; i < n; i++) putInt64(words, i, ts[i]!);
  return makeData({ type: new TimestampMillisecond("UTC"), length: n, nullCount: 0, data: values });
}

const float64Column = (v: Float64Array) => makeData({ type: new Float64(), length: v.length, nullCount: 0, data: v });

function batch(schema: Schema, children: Data[], n: number): RecordBatch {
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children }));
}

/** The bars as one record batch of BAR_SCHEMA. */
export function barsBatch(bars: readonly Bar[]): RecordBatch {
  const n = bars.length;
  const ts = new Float64Array(n);
  const open = new Float64Array(n);
  const high = new Float64Array(n);
  const low = new Float64Array(n);
  const close = new Float64Array(n);
  const volume = new Float64Array(n);
  const adjClose = new NullableColumn(n, false);
  const turnover = new NullableColumn(n, false);
  const trades = new NullableColumn(n, true);
  for (let i = 0; i < n; i++) {
    const b = bars[i]!;
    ts[i] = b.ts;
    open[i] = b.open;
    high[i] = b.high;
    low[i] = b.low;
    close[i] = b.close;
    volume[i] = b.volume;
    adjClose.set(i, b.adjClose);
    turnover.set(i, b.turnover);
    trades.set(i, b.trades);
  }
  const children = [
    utf8Column(bars, "source"),
    utf8Column(bars, "symbol"),
    utf8Column(bars, "interval"),
    timestampColumn(ts),
    float64Column(open),
    float64Column(high),
    float64Column(low),
    float64Column(close),
    float64Column(volume),
    adjClose.data(),
    turnover.data(),
    trades.data(),
  ];
  return batch(BAR_SCHEMA, children, n);
}

/** One record batch as a whole IPC stream (schema, batch, end-of-stream marker). */
export function ipcStream(b: RecordBatch): Uint8Array {
  const writer = new RecordBatchStreamWriter();
  writer.write(b);
  writer.finish();
  return writer.toUint8Array(true);
}

/** The bars as an IPC stream: the body of /api/bars?format=arrow. */
export const barsArrow = (bars: readonly Bar[]): Uint8Array => ipcStream(barsBatch(bars));

/**
 * An /api/indicators page as an IPC stream: ts, close, then one nullable Float64 column per
 * indicator (null where the JSON has null); the series (symbol, interval, source, set) is the
 * schema's metadata. `values[key][offset + i]` is row i's value (the page follows its warm-up).
 */
export function indicatorsArrow(rows: readonly Pick<Bar, "ts" | "close">[], keys: readonly string[], values: Record<string, readonly (number | null | undefined)[]>, offset: number, meta: Record<string, string>): Uint8Array {
  const n = rows.length;
  const ts = new Float64Array(n);
  const close = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    ts[i] = rows[i]!.ts;
    close[i] = rows[i]!.close;
  }
  const children: Data[] = [timestampColumn(ts), float64Column(close)];
  for (const key of keys) {
    const col = new NullableColumn(n, false);
    const v = values[key]!;
    for (let i = 0; i < n; i++) col.set(i, v[offset + i]);
    children.push(col.data());
  }
  const schema = new Schema([TS(), f64("close"), ...keys.map((k) => f64(k, true))], new Map(Object.entries(meta)));
  return ipcStream(batch(schema, children, n));
}

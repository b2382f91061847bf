// Reading records back (verify): one symbol's bars, a whole collection in id order, a count, and
// the records of symbols the store does not know. Pages of 1000, each waited out like a write.
import { requestOptions, withRetry, type PbConnection } from "./client.ts";
import { recordFromServer, type BarRecord } from "./records.ts";
import { extrasFromServer, type RecordShape } from "./shape.ts";

/** A record read back, normalised as the sink writes it (its mapped extras too). */
const shaped = (r: Record<string, unknown>, shape: RecordShape) => (shape.extras.length ? extrasFromServer(recordFromServer(r), r, shape) : recordFromServer(r));

const PAGE = 1000;

/** Every record of one symbol (all sources and intervals), in pages. */
export async function recordsOf(conn: PbConnection, symbol: string, shape: RecordShape, each: (r: BarRecord) => void): Promise<number> {
  const { pb, cfg } = conn;
  let page = 1;
  let n = 0;
  for (;;) {
    const res = await withRetry(conn, "reading records", () =>
      pb.collection(cfg.collection).getList(page, PAGE, { filter: pb.filter("symbol = {:s}", { s: symbol }), sort: "ts,id", skipTotal: true, ...requestOptions(conn) }),
    );
    for (const r of res.items) each(shaped(r, shape));
    n += res.items.length;
    if (res.items.length < PAGE) return n;
    page++;
  }
}

/** Total records in a collection. */
export async function countRecords(conn: PbConnection, col: string): Promise<number> {
  const res = await withRetry(conn, "counting records", () => conn.pb.collection(col).getList(1, 1, { fields: "id", ...requestOptions(conn) }));
  return res.totalItems;
}

/** Every record of a collection, in id order, a page at a time (keyset: no deep offsets). */
export async function scanRecords(conn: PbConnection, col: string, each: (r: Record<string, unknown>) => void): Promise<number> {
  const { pb } = conn;
  let after = "";
  let n = 0;
  for (;;) {
    const res = await withRetry(conn, "reading records", () =>
      pb.collection(col).getList(1, PAGE, { filter: after ? pb.filter("id > {:a}", { a: after }) : "", sort: "id", skipTotal: true, ...requestOptions(conn) }),
    );
    for (const r of res.items) each(r);
    n += res.items.length;
    if (res.items.length < PAGE) return n;
    after = res.items[res.items.length - 1]!.id;
  }
}

/** Every bar record whose symbol is not in `known` (records no store bar accounts for). */
export async function strayRecords(conn: PbConnection, known: Set<string>, shape: RecordShape, each: (r: BarRecord) => void): Promise<void> {
  let page = 1;
  for (;;) {
    const res = await withRetry(conn, "reading records", () => conn.pb.collection(conn.cfg.collection).getList(page, PAGE, { sort: "id", skipTotal: true, ...requestOptions(conn) }));
    for (const r of res.items) if (!known.has(String(r.symbol))) each(shaped(r, shape));
    if (res.items.length < PAGE) return;
    page++;
  }
}

// The Python the format tests read ticksync's outputs back with (pyarrow, polars; installed by
// scripts/services/python.sh), and the reader script: a file in one format → its rows as JSON in
// the /api/bars JSON answer's shape (ts an ISO string in ms, absent values null) and its column types.
import { join } from "node:path";
import { ROOT } from "./helpers.ts";

/**
 * TICKSYNC_TEST_PYTHON, else the venv python.sh made (`path` starts nothing). With CI=true a
 * missing one (or one without pyarrow and polars) fails the file; without CI its cases skip with a warning.
 */
export function pythonForTests(what: string): string | null {
  let py = process.env.TICKSYNC_TEST_PYTHON;
  if (!py) {
    const r = Bun.spawnSync(["bash", join(ROOT, "scripts", "services", "python.sh"), "path"], { stdout: "pipe", stderr: "pipe" });
    py = /^TICKSYNC_TEST_PYTHON=(.+)$/m.exec(r.stdout.toString())?.[1];
  }
  const why = !py ? "no venv (scripts/services/python.sh ensure makes it; npm test does)" : Bun.spawnSync([py, "-c", "import pyarrow, polars"], { stdout: "ignore", stderr: "pipe" }).exitCode !== 0 ? `${py} cannot import pyarrow and polars` : null;
  if (why === null) return py!;
  if (process.env.CI === "true") throw new Error(`CI=true and no Python with pyarrow and polars: ${why}`);
  console.warn(`WARNING: ${what}: skipped: ${why}`);
  return null;
}

const READER = String.raw`
import sys, json, datetime
import pyarrow as pa, pyarrow.ipc as ipc, pyarrow.parquet as pq, polars as pl
kind, path = sys.argv[1], sys.argv[2]
F = pl.Float64
TEXT_SCHEMA = {"source": pl.String, "symbol": pl.String, "interval": pl.String, "ts": pl.String, "open": F, "high": F, "low": F, "close": F, "volume": F, "adjClose": F, "turnover": F, "trades": pl.Int64}
if kind == "arrow-stream":
    with open(path, "rb") as f: t = ipc.open_stream(f).read_all()
    check = pl.read_ipc_stream(path)
elif kind == "arrow-file":
    t = ipc.open_file(path).read_all()
    check = pl.read_ipc(path)
elif kind == "parquet":
    t = pq.read_table(path)
    check = pl.read_parquet(path)
elif kind == "csv":
    t = pl.read_csv(path, schema=TEXT_SCHEMA).to_arrow()
    check = None
elif kind == "ndjson":
    t = pl.read_ndjson(path, schema=TEXT_SCHEMA).to_arrow()
    check = None
# polars reads the same rows as pyarrow (timestamps and all)
if check is not None and check.to_dicts() != pl.from_arrow(t).to_dicts(): sys.exit("polars and pyarrow differ")
def iso(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None: sys.exit("naive timestamp")
        return v.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return v
rows = [{k: iso(v) for k, v in r.items()} for r in t.to_pylist()]
types = {f.name: str(f.type) for f in t.schema}
meta = {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()}
print(json.dumps({"rows": rows, "types": types, "meta": meta}))
`;

export type Read = { rows: Record<string, unknown>[]; types: Record<string, string>; meta: Record<string, string> };

/** Reads a file back with pyarrow/polars. */
export function readBack(py: string, kind: "arrow-stream" | "arrow-file" | "parquet" | "csv" | "ndjson", path: string): Read {
  const r = Bun.spawnSync([py, "-c", READER, kind, path], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`python read ${kind} ${path}: ${r.stderr.toString().slice(-2000)}`);
  return JSON.parse(r.stdout.toString()) as Read;
}

/** /api/bars JSON rows with every column present (absent nullable ones null), as the readers give them. */
export const fullRow = (r: Record<string, unknown>) => ({ adjClose: null, turnover: null, trades: null, ...r });

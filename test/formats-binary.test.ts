// `ticksync export` from the compiled executable (`bun build --compile`, alone in an empty dir):
// hyparquet-writer and apache-arrow are pure JavaScript, so Parquet and Arrow files come out of
// the single binary with nothing beside it; pyarrow reads them back equal to the bars stored.
import { beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import type { Bar } from "../src/domain/bar.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { cli, ROOT, tempDir } from "./helpers.ts";
import { pythonForTests, readBack } from "./formats-python.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const py = pythonForTests("export from the compiled executable (test/formats-binary.test.ts)");
const dir = tempDir("ticksync-formats-exe-");
const exe = join(dir, "ticksync");
const bars: Bar[] = Array.from({ length: 50 }, (_, i) => ({
  source: "stooq",
  symbol: "PKN.WA",
  interval: "1d",
  ts: Date.parse("2024-01-01T00:00:00Z") + i * 86_400_000,
  open: 60 + i / 3,
  high: 61 + i / 3,
  low: 59 + i / 3,
  close: 60.5 + i / 3,
  volume: 1e6 + i,
  ...(i % 2 ? { adjClose: 60.25 + i / 7 } : {}),
}));

beforeAll(async () => {
  if (!py) return;
  const build = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "build.ts"), "--outfile", join(dir, "build", "ticksync")], { stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
  copyFileSync(join(dir, "build", "ticksync"), exe);
  Bun.spawnSync(["chmod", "+x", exe]);
  const store = sqliteStore(`sqlite:${join(dir, "store.db")}`);
  await store.migrate();
  const runId = await store.startRun({ kind: "ingest", source: "test" });
  await store.commitBatch({ runId, source: "test", bars, quarantine: [], read: bars.length });
  await store.close();
});

describe.skipIf(!py)("export from the compiled executable", () => {
  for (const [format, kind] of [["parquet", "parquet"], ["arrow", "arrow-file"]] as const)
    test(`--format ${format}`, async () => {
      const env = { TICKSYNC_CONFIG: "", HOME: dir };
      const r = await cli(["export", "--store", "sqlite:store.db", "--out", `pkn.${format}`, "--row-group", "20"], { exe: [exe], cwd: dir, env });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const read = readBack(py!, kind, join(dir, `pkn.${format}`));
      expect(read.rows).toEqual(bars.map((b) => ({ ...b, ts: new Date(b.ts).toISOString(), adjClose: b.adjClose ?? null, turnover: null, trades: null })));
    });
});

// Backfill bench: the S&P 500 universe (500+ symbols) through `ticksync backfill` against the
// local provider server, under a configured rate limit. Prints the request rate the provider
// saw against the limit (target ≥ 95% of it, never above) and the wall time against the ideal
// (requests ÷ limit). The server itself counts any second in which the limit was exceeded.
//   bun scripts/bench/backfill.ts     (BENCH_RATE=… requests per second, default 50)
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listUniverses } from "../../src/universes/universes.ts";
import { startFakeProviders, syntheticBars } from "../../test/fakes/providers.ts";
import { backfillChild } from "./lib/backfill-child.ts";

const RATE_TARGET = 0.95;
const FROM = "2024-01-02";
const TO = "2024-06-28";

export async function run(): Promise<boolean> {
  const limit = Number(process.env.BENCH_RATE ?? 50);
  const sp500 = listUniverses().find((u) => u.name === "sp500");
  if (!sp500) throw new Error("the sp500 universe is missing");
  const symbols = sp500.symbols;
  const fake = await startFakeProviders();
  const dir = mkdtempSync(join(tmpdir(), "ticksync-bench-backfill-"));
  let ok = true;
  try {
    for (const s of symbols) fake.setBars("yahoo", s.replace(/\.US$/, ""), syntheticBars(s, FROM, TO));
    // The server enforces the same limit: any request over it is answered 429 and counted.
    fake.rateLimit("yahoo", limit);
    writeFileSync(
      join(dir, "ticksync.toml"),
      `[store]\nurl = "sqlite:bench.db"\n[sources.yahoo]\ntype = "yahoo"\nbaseUrl = "${fake.url}/yahoo"\nuniverse = "sp500"\nconcurrency = 8\nrateLimit = { perSecond = ${limit} }\n`,
    );
    console.log(`backfill: ${symbols.length} symbols (sp500 universe) × ${FROM}..${TO} from the local Yahoo server, limit ${limit} requests/s, concurrency 8`);
    const run = await backfillChild(dir, "yahoo", FROM, TO);
    if (!run.ok) return false;
    const { summary, wallMs } = run;
    const reqs = fake.requests.filter((r) => r.provider === "yahoo");
    const first = reqs[0]!.at;
    const last = reqs[reqs.length - 1]!.at;
    // n requests span n-1 intervals.
    const achieved = (reqs.length - 1) / ((last - first) / 1000);
    const ideal = reqs.length / limit;
    const violations = fake.violations("yahoo");
    const db = new Database(join(dir, "bench.db"), { readonly: true });
    const stored = (db.query("SELECT count(*) AS n FROM bars").get() as { n: number }).n;
    db.close();
    const expected = symbols.reduce((n, s) => n + syntheticBars(s, FROM, TO).length, 0);
    console.log(`requests      ${reqs.length} (${symbols.length} symbols, ${reqs.filter((r) => r.status !== 200).length} refused)`);
    console.log(`request rate  ${achieved.toFixed(2)}/s seen by the provider vs limit ${limit}/s: ${((100 * achieved) / limit).toFixed(1)}% (target ≥ ${RATE_TARGET * 100}%, never above): ${achieved >= RATE_TARGET * limit && violations === 0 ? "target met" : "target missed"}`);
    console.log(`over limit    ${violations} requests refused by the server for exceeding ${limit}/s`);
    console.log(`wall time     ${(wallMs / 1000).toFixed(2)}s (process start to exit) vs ideal ${ideal.toFixed(2)}s (requests ÷ limit): ${(wallMs / 1000 / ideal).toFixed(3)}×`);
    console.log(`rows          ${stored.toLocaleString("en-US")} stored (expected ${expected.toLocaleString("en-US")}), run outcome ${summary.outcome}`);
    if (stored !== expected || summary.outcome !== "succeeded" || reqs.length < symbols.length) {
      console.error(`FAIL stored ${stored} of ${expected} rows, outcome ${summary.outcome}`);
      ok = false;
    }
  } finally {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return ok;
}

if (import.meta.main) process.exit((await run()) ? 0 : 1);

// Loaded before every `bun test` (bunfig.toml [test] preload), so a plain `bun test` runs like
// `npm test` (scripts/test.sh):
// - (the per-test timeout is not set here: a preload's setDefaultTimeout reaches only the first
//   file of a run, oven-sh/bun#43787; every test file calls testTimeout() from test/timeout.ts);
// - the test servers: when the TICKSYNC_TEST_* variables are not set, the servers of
//   scripts/services that already run are found (`all.sh running`, which starts nothing) and
//   their variables set. Each one not found is one warning, and its tests skip; with CI=true a
//   missing server fails the run instead.
import { afterAll } from "bun:test";
import { join } from "node:path";

/** The variables each server of scripts/services/all.sh provides. */
export const SERVERS: { name: string; vars: string[]; without: string }[] = [
  { name: "PostgreSQL", vars: ["TICKSYNC_TEST_PG_URL"], without: "its tests are skipped" },
  { name: "QuestDB", vars: ["TICKSYNC_TEST_QUESTDB_URL", "TICKSYNC_TEST_QUESTDB_HTTP"], without: "its tests are skipped" },
  // The Pocketbase tests start their own servers from the binary; they skip when none can be built.
  { name: "Pocketbase", vars: ["TICKSYNC_TEST_PB_URL", "TICKSYNC_TEST_PB_BIN"], without: "its tests use scripts/services/pocketbase.sh bin, and skip when that fails" },
];

/** NAME=value lines of `all.sh running` (servers that answer now), as a map. */
export function runningServers(script = join(import.meta.dir, "..", "scripts", "services", "all.sh")): Map<string, string> {
  const r = Bun.spawnSync(["bash", script, "running"], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  const found = new Map<string, string>();
  for (const line of r.stdout.toString().split("\n")) {
    const eq = line.indexOf("=");
    if (line.startsWith("TICKSYNC_TEST_") && eq > 0 && eq < line.length - 1) found.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return found;
}

/**
 * Sets the variables of the servers that are running and not already set; returns one warning per
 * server still missing (with CI=true, throws instead).
 */
export function discoverServers(env: Record<string, string | undefined> = process.env, find = runningServers): string[] {
  const missing = SERVERS.filter((s) => s.vars.some((v) => !env[v]));
  if (missing.length === 0) return [];
  const found = find();
  const warnings: string[] = [];
  const absent: string[] = [];
  for (const s of missing) {
    if (s.vars.every((v) => env[v] || found.has(v))) {
      for (const v of s.vars) env[v] ||= found.get(v);
      continue;
    }
    absent.push(s.name);
    warnings.push(`WARNING: ${s.name} is not running (scripts/services/all.sh start starts it; npm test does): ${s.without}`);
  }
  if (absent.length && env.CI === "true") throw new Error(`CI=true and not running: ${absent.join(", ")} (scripts/services/all.sh start starts them): their tests cannot be skipped in CI`);
  return warnings;
}

for (const w of discoverServers()) console.warn(w);

// After the whole run (an afterAll in a preload is global): the QuestDB tables of every test store
// test/stores.ts made, so a QuestDB kept between runs does not fill with them (a dozen a store).
afterAll(async () => {
  const { dropQuestdbTestTables } = await import("./stores.ts");
  await dropQuestdbTestTables();
});

// `ticksync migrate`: copy every bar, checkpoint and quarantined row to another store, then verify.
import { loadConfig } from "../config/load.ts";
import { migrateStore, verifyStores } from "../pipeline/migrate.ts";
import { createProgressReporter } from "../pipeline/progress.ts";
import { defineCommand, flag, options, text, UsageError, type Options } from "./command.ts";
import { intFlag, loadCommandConfig, openMigrated } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { out } from "./io.ts";
import { STORES } from "../stores/registry.ts";

const schema = options({
  from: text("the store to copy from (default: the config's store.url)", "URL"),
  to: text("the store to copy to", "URL"),
  "verify-only": flag("compare the two stores, copy nothing"),
  "batch-size": text("bars per transaction (default 10000)", "N"),
  json: flag("print the result as JSON"),
});

type VerifyResult = Awaited<ReturnType<typeof verifyStores>>;

function printVerify(result: VerifyResult) {
  out(`verify: ${result.ok ? "equal" : "DIFFERENT"} — bars ${result.bars.from} vs ${result.bars.to} in ${result.keys} (symbol, interval, day) keys; quarantine ${result.quarantine.from} vs ${result.quarantine.to}; checkpoints ${result.checkpoints.from} vs ${result.checkpoints.to}`);
  for (const d of result.differing.slice(0, 50))
    out(`  differs ${d.key}: from ${d.from ? `${d.from.count} bars #${d.from.sum.toString(16)}` : "none"}, to ${d.to ? `${d.to.count} bars #${d.to.sum.toString(16)}` : "none"}`);
  if (result.differing.length > 50) out(`  … and ${result.differing.length - 50} more keys`);
  if (result.quarantine.missing) out(`  ${result.quarantine.missing} quarantined rows missing on the target`);
  for (const c of result.checkpoints.differing.slice(0, 20)) out(`  checkpoint differs: ${c}`);
}

const verifyJson = (result: VerifyResult) => ({
  ...result,
  differing: result.differing.map((d) => ({ key: d.key, from: d.from && { count: d.from.count, checksum: d.from.sum.toString(16) }, to: d.to && { count: d.to.count, checksum: d.to.sum.toString(16) } })),
});

async function run(v: Options<typeof schema>): Promise<number> {
  if (v.to === undefined) throw new UsageError("migrate needs --to URL");
  const loaded = loadCommandConfig(v, { store: { url: v.from } });
  const fromUrl = loaded.config.store.url;
  const toUrl = loadConfig(null, {}, { store: { url: v.to } }).config.store.url;
  if (fromUrl === toUrl) throw new UsageError("--from and --to are the same store");
  const batchSize = intFlag("batch-size", v["batch-size"]);
  const from = await openMigrated(fromUrl, "source");
  const to = await openMigrated(toUrl, "target");
  try {
    let copied: Awaited<ReturnType<typeof migrateStore>> | null = null;
    if (!v["verify-only"]) {
      const progress = createProgressReporter({ unit: "series" });
      const started = performance.now();
      copied = await migrateStore(from, to, { batchSize, onProgress: (done, total, bars) => progress.update({ runId: 0, done, total, failed: 0, rows: bars, elapsedMs: performance.now() - started }) });
      progress.finish();
      if (!v.json)
        out(`copied ${copied.bars} bars in ${copied.series} series${copied.resumedSeries ? ` (${copied.resumedSeries} resumed)` : ""}, ${copied.checkpoints} checkpoints, ${copied.quarantine} quarantined rows (run ${copied.runId} on the target)`);
    }
    const result = await verifyStores(from, to);
    if (v.json) out(JSON.stringify({ copied, verify: verifyJson(result) }, null, 2));
    else printVerify(result);
    return result.ok ? EXIT.ok : EXIT.mismatch;
  } finally {
    await from.close();
    await to.close();
  }
}

export const migrateCommand = defineCommand({
  type: "migrate",
  listed: [["migrate", "copy every bar, checkpoint and quarantined row to another store, then verify"]],
  schema,
  usage: `Usage: ticksync migrate --to URL [--from URL] [--batch-size N] [--json]
       ticksync migrate --verify-only --to URL [--from URL]`,
  about: `Copies all bars, checkpoints and quarantined rows from one store to another (any two of
${STORES.map((d) => `${d.prefixes[0]}…`).join(", ")}), series by series, resumable: run it again after an
interruption and it continues where it stopped. Then it verifies both sides: bar counts and an
order-independent checksum per (symbol, interval, day), the quarantine and the checkpoints. When
they differ it lists the differing keys and exits 6.`,
  flagGap: 3,
  footers: [EXIT_CODES_HELP],
  run,
});

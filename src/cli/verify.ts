// `ticksync verify`: compare the store with a sink per (symbol, day); --repair re-sends what differs.
import { verifySinkAll, type SinkVerifyResult } from "../pipeline/verify-sink.ts";
import { defineCommand, flag, options, texts, UsageError, type Options } from "./command.ts";
import { loadCommandConfig, withStore } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { out } from "./io.ts";
import { pickSinks } from "./sinks.ts";

const schema = options({
  sink: texts("a sink name from [sinks], or a sink type when exactly one sink has it", "NAME"),
  repair: flag("re-send what differs, delete what the store does not have, verify again"),
  json: flag("print the result as JSON"),
});

function printSinkVerify(r: SinkVerifyResult) {
  out(
    `verify ${r.sink} → ${r.collection}: ${r.ok ? "consistent" : "DIFFERENT"} — ${r.storeRecords} records expected, ${r.sinkRecords} in Pocketbase, ` +
      `${r.days} (symbol, day) keys; ${r.missing} missing, ${r.extra} extra, ${r.changed} changed (${(r.durationMs / 1000).toFixed(2)} s)`,
  );
  for (const d of r.differing.slice(0, 50))
    out(`  differs ${d.key}: store ${d.store ? `${d.store.count} #${d.store.sum.toString(16)}` : "none"}, pocketbase ${d.sink ? `${d.sink.count} #${d.sink.sum.toString(16)}` : "none"}`);
  if (r.differing.length > 50) out(`  … and ${r.differing.length - 50} more keys`);
  if (r.repaired) out(`  repaired: ${r.repaired.sent} records re-sent, ${r.repaired.deleted} deleted, ${r.repaired.rejected} refused (quarantined)`);
}

const sinkVerifyJson = (r: SinkVerifyResult) => ({
  ...r,
  differing: r.differing.map((d) => ({ key: d.key, store: d.store && { count: d.store.count, checksum: d.store.sum.toString(16) }, sink: d.sink && { count: d.sink.count, checksum: d.sink.sum.toString(16) } })),
});

async function run(v: Options<typeof schema>): Promise<number> {
  const names = v.sink ?? [];
  if (!names.length) throw new UsageError("verify needs --sink NAME (to compare two stores use: ticksync migrate --verify-only)");
  const loaded = loadCommandConfig(v);
  const sinks = pickSinks(loaded, names);
  return withStore(loaded, async (store) => {
    let ok = true;
    const results: unknown[] = [];
    for (const sink of sinks) {
      const firsts = await verifySinkAll(store, sink, { repair: !!v.repair, baseDir: loaded.baseDir });
      const afters = v.repair && firsts.some((r) => r.repaired) ? await verifySinkAll(store, sink, { baseDir: loaded.baseDir }) : null;
      firsts.forEach((first, i) => {
        const after = afters?.[i] ?? null;
        ok &&= (after ?? first).ok;
        if (v.json) results.push({ verify: sinkVerifyJson(first), ...(after ? { afterRepair: sinkVerifyJson(after) } : {}) });
        else {
          printSinkVerify(first);
          if (after) printSinkVerify(after);
        }
      });
    }
    if (v.json) out(JSON.stringify(results, null, 2));
    return ok ? EXIT.ok : EXIT.mismatch;
  });
}

export const verifyCommand = defineCommand({
  type: "verify",
  listed: [["verify", "compare the store with a sink per (symbol, day); --repair re-sends what differs"]],
  schema,
  usage: `Usage: ticksync verify --sink NAME|pocketbase [--repair] [--config FILE] [--json]`,
  about: `Compares the store with a sink: per (symbol, day), the record count and an order-independent
checksum of the records as the sink holds them. Lists the differing days and exits 6 when they
differ. With --repair it re-sends only the records that are missing or differ and deletes the
sink's records the store has no bar for, then verifies again. The outcome is kept in the store
and shown by /api/sinks and /metrics (ticksync_sink_consistent).`,
  flagGap: 3,
  footers: [EXIT_CODES_HELP],
  run,
});

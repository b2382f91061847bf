// Builds the single executable: dist/ticksync, with the runtime, the code and its data inside.
//   bun scripts/build.ts [--outfile PATH]
import { parseArgs } from "node:util";
import { join } from "node:path";

const { values } = parseArgs({ args: process.argv.slice(2), options: { outfile: { type: "string" } } });
const root = join(import.meta.dir, "..");
const outfile = values.outfile ?? join(root, "dist", "ticksync");
const started = performance.now();
// The read worker is a second entry point: the executable carries it and starts it as a thread.
const entries = [join(root, "src", "main.ts"), join(root, "src", "pipeline", "read-worker.ts")];
const proc = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", "--sourcemap", ...entries, "--outfile", outfile], {
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
});
if (proc.exitCode !== 0) {
  console.error(`build failed (exit ${proc.exitCode})`);
  process.exit(proc.exitCode ?? 1);
}
console.log(`built ${outfile} in ${((performance.now() - started) / 1000).toFixed(1)}s`);

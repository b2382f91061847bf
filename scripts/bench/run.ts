// Runs the benchmarks in scripts/bench/: every module here but this one, in name order. Each
// exports `run()`, prints its own numbers and returns false only when a correctness check fails;
// timings are reported, never asserted.
//   bun run bench [filter] [arg]   (filter: part of a bench's name, e.g. `ingest`; arg: passed to its
//                                   run(), e.g. `npm run bench -- stores questdb`)
import { Glob } from "bun";
import { basename } from "node:path";

type BenchModule = { run: (arg?: string) => Promise<boolean> };

const [filter, arg] = process.argv.slice(2);
const names = [...new Glob("*.ts").scanSync({ cwd: import.meta.dir })]
  .map((f) => basename(f, ".ts"))
  .filter((n) => n !== "run")
  .sort();
const selected = filter ? names.filter((n) => n.includes(filter)) : names;
if (selected.length === 0) {
  console.error(`no bench matches ${JSON.stringify(filter)} (available: ${names.join(", ")})`);
  process.exit(2);
}

const failed: string[] = [];
for (const name of selected) {
  const started = performance.now();
  const mod = (await import(`./${name}.ts`)) as BenchModule;
  let ok = false;
  try {
    ok = await mod.run(arg);
  } catch (e) {
    console.error(`bench ${name} crashed: ${(e as Error).stack ?? e}`);
  }
  if (!ok) failed.push(name);
  console.log(`bench ${name}: ${ok ? "ok" : "FAILED"} in ${((performance.now() - started) / 1000).toFixed(1)}s\n`);
}
if (failed.length) console.error(`failed: ${failed.join(", ")}`);
process.exit(failed.length ? 1 : 0);

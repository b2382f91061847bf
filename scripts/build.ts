// Builds the single executable: dist/ticksync, with the runtime, the code and its data inside, and
// a version stamp (`ticksync --version`: package version, git commit, build date) defined in.
//   bun scripts/build.ts [--outfile PATH]
// compile() is also what scripts/release.ts builds every target with.
import { parseArgs } from "node:util";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { gitCommit, type BuildStamp } from "../src/cli/version.ts";

export const ROOT = join(import.meta.dir, "..");
// The read worker is a second entry point: the executable carries it and starts it as a thread.
const ENTRIES = [join(ROOT, "src", "main.ts"), join(ROOT, "src", "pipeline", "read-worker.ts")];

/** The Bun target of this machine ("linux-x64", "darwin-arm64", "windows-x64"), which a build without --target is for. */
export const hostTarget = () => `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;

/** The stamp of a build made now from this checkout; the commit says "-dirty" when tracked files changed. */
export function stampNow(target = hostTarget(), gitDir = ROOT): BuildStamp & { dirty: boolean } {
  const git = gitCommit(gitDir);
  // SOURCE_DATE_EPOCH (reproducible-builds.org's convention) pins the date when set.
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  const date = new Date(Number.isFinite(epoch) && epoch > 0 ? epoch * 1000 : Date.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
  return { version: pkg.version, commit: git?.commit ?? "unknown", date, target, dirty: git?.dirty ?? true };
}

/** The `--define` flags that put a stamp into src/cli/version.ts's TICKSYNC_BUILD_* names. */
export function stampDefines(stamp: BuildStamp): string[] {
  const values: Record<string, string | undefined> = {
    TICKSYNC_BUILD_VERSION: stamp.version,
    TICKSYNC_BUILD_COMMIT: stamp.commit,
    TICKSYNC_BUILD_DATE: stamp.date,
    TICKSYNC_BUILD_TARGET: stamp.target,
  };
  return Object.entries(values).flatMap(([name, value]) => (value === undefined ? [] : ["--define", `${name}=${JSON.stringify(value)}`]));
}

/**
 * `bun build --compile` of the entry points into `outfile`, for `target` (a Bun target without its
 * "bun-" prefix, e.g. "linux-arm64"; the host's when absent). Bun fetches a foreign target's runtime
 * through the npm registry once and keeps it in its install cache (~/.bun/install/cache/bun-<target>-v<version>).
 * Returns bun's exit code and its output (printed as it comes when `quiet` is false).
 */
export function compile(opts: { outfile: string; stamp: BuildStamp; target?: string; quiet?: boolean }): { exitCode: number; output: string } {
  const target = opts.target ? [`--target=bun-${opts.target}`] : [];
  const cmd = [process.execPath, "build", "--compile", "--minify", "--sourcemap", ...target, ...stampDefines(opts.stamp), ...ENTRIES, "--outfile", opts.outfile];
  const io = opts.quiet ? "pipe" : "inherit";
  const proc = Bun.spawnSync(cmd, { cwd: ROOT, stdout: io, stderr: io });
  const output = opts.quiet ? `${proc.stdout?.toString() ?? ""}${proc.stderr?.toString() ?? ""}` : "";
  return { exitCode: proc.exitCode ?? 1, output };
}

if (import.meta.main) {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { outfile: { type: "string" } } });
  const outfile = values.outfile ?? join(ROOT, "dist", "ticksync");
  const started = performance.now();
  const stamp = stampNow();
  const { exitCode } = compile({ outfile, stamp });
  if (exitCode !== 0) {
    console.error(`build failed (exit ${exitCode})`);
    process.exit(exitCode);
  }
  console.log(`built ${outfile} (${stamp.version}, commit ${stamp.commit}) in ${((performance.now() - started) / 1000).toFixed(1)}s`);
}

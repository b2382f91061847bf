// `ticksync version` / `ticksync --version`: the version, git commit and build date of this build,
// and the Bun it runs on. A built executable carries a stamp that scripts/build.ts injects with
// `bun build --define` (TICKSYNC_BUILD_*); run from a checkout there is none, so it says "dev" and
// asks git for the commit (no git, or not a checkout: "commit unknown", never a failure).
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { defineRawCommand, helpText, options } from "./command.ts";
import { EXIT } from "./exit.ts";
import { out } from "./io.ts";

// Replaced by string literals at build time (scripts/build.ts); undeclared when run from source,
// where `typeof` of an undeclared name is "undefined" rather than a ReferenceError.
declare const TICKSYNC_BUILD_VERSION: string | undefined;
declare const TICKSYNC_BUILD_COMMIT: string | undefined;
declare const TICKSYNC_BUILD_DATE: string | undefined;
declare const TICKSYNC_BUILD_TARGET: string | undefined;

/** What a build is: its version, commit ("…-dirty" when built from a tree with changes), date, target. */
export interface BuildStamp {
  readonly version: string;
  readonly commit: string;
  readonly date?: string;
  readonly target?: string;
}

/** The commit of the checkout at `dir` (12 hex digits, "-dirty" when tracked files changed), or undefined without git. */
export function gitCommit(dir: string): { commit: string; dirty: boolean } | undefined {
  const git = (...args: string[]) => {
    try {
      const r = Bun.spawnSync(["git", "-C", dir, ...args], { stdout: "pipe", stderr: "ignore", timeout: 5_000 });
      return r.exitCode === 0 ? r.stdout.toString().trim() : undefined;
    } catch {
      return undefined; // no git executable
    }
  };
  const head = git("rev-parse", "--short=12", "HEAD");
  if (!head || !/^[0-9a-f]{7,40}$/.test(head)) return undefined;
  const changes = git("status", "--porcelain", "--untracked-files=no");
  const dirty = changes === undefined || changes !== "";
  return { commit: dirty ? `${head}-dirty` : head, dirty };
}

/** This build's stamp, or (run from source) "dev" with the checkout's commit. */
export function buildStamp(): BuildStamp {
  if (typeof TICKSYNC_BUILD_VERSION === "string") {
    return {
      version: TICKSYNC_BUILD_VERSION,
      commit: typeof TICKSYNC_BUILD_COMMIT === "string" ? TICKSYNC_BUILD_COMMIT : "unknown",
      date: typeof TICKSYNC_BUILD_DATE === "string" ? TICKSYNC_BUILD_DATE : undefined,
      target: typeof TICKSYNC_BUILD_TARGET === "string" ? TICKSYNC_BUILD_TARGET : undefined,
    };
  }
  return { version: "dev", commit: gitCommit(join(import.meta.dir, "..", ".."))?.commit ?? "unknown" };
}

/** The one line `ticksync version` prints, e.g. `ticksync 0.1.0 (commit 1a2b3c4d5e6f, built 2026-12-06T21:00:00Z, linux-arm64, bun 1.4.5)`. */
export function versionLine(stamp: BuildStamp = buildStamp()): string {
  const parts = [`commit ${stamp.commit}`];
  if (stamp.date) parts.push(`built ${stamp.date}`);
  if (stamp.target) parts.push(stamp.target);
  // From source the package.json version is what the code will be released as, not what it is.
  if (stamp.version === "dev") parts.push(`package ${pkg.version}`);
  parts.push(`bun ${Bun.version}`);
  return `ticksync ${stamp.version} (${parts.join(", ")})`;
}

const schema = options({});

// Any arguments but --help are ignored, as they always were: no options schema is enforced.
function run(argv: string[]): number {
  if (argv.includes("--help") || argv.includes("-h")) return out(help.version), EXIT.ok;
  out(versionLine());
  return EXIT.ok;
}

const help = {
  version: helpText(schema, {
    usage: "Usage: ticksync version",
    about: "Prints the version, the git commit and date it was built from, the target, and the Bun it runs on\n(`ticksync --version` too). Run from a checkout it says \"dev\" and the checkout's commit.",
  }),
};

export const versionCommand = defineRawCommand({
  type: "version",
  aliases: ["--version"],
  listed: [["version", "print the version, commit and build date"]],
  schema,
  help,
  run,
});

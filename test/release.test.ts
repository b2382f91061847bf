// `npm run release` (scripts/release.ts): every target is built once per test run into a temp dir
// (about 15 s here once Bun's install cache holds the target runtimes; the first run downloads
// them through the npm registry), then:
// - SHA256SUMS is what `sha256sum -c` reads, and lists exactly the executables;
// - each executable's header is its target's (ELF x86-64/aarch64 and libc, Mach-O, PE), by our
//   reader and by file(1), and no target's header passes for another's; the Mach-O ones are signed;
// - the version stamp (version, commit, build date, target) of the host's executable;
// - a tree with changes is refused without --allow-dirty (a temp git repo stands in for the checkout);
// - the linux-arm64 executable runs under qemu-user (scripts/services/qemu.sh): --version,
//   config check, ingest a CSV into SQLite, serve answering /readyz. Without qemu those skip with a
//   warning, or fail when CI=true.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { TARGETS, artifactName, executableKind, machoSigned, readHead, release, sha256File } from "../scripts/release.ts";
import { ROOT, cli, startServe, stooqCsv, tempDir, waitFor, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const out = tempDir("ticksync-release-");
const dir = join(out, pkg.version);
const path = (target: string) => join(dir, artifactName(pkg.version, target));
const git = (cwd: string, ...args: string[]) => {
  const r = Bun.spawnSync(["git", "-C", cwd, ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString().trim();
};
const has = (cmd: string) => Bun.which(cmd) !== null;

// qemu-aarch64 and the aarch64 glibc it loads the executable with (scripts/services/qemu.sh).
const QEMU_LD_PREFIX = "/usr/aarch64-linux-gnu";
function findQemu(): string {
  if (process.env.TICKSYNC_TEST_QEMU) return process.env.TICKSYNC_TEST_QEMU;
  const r = Bun.spawnSync(["bash", join(ROOT, "scripts", "services", "qemu.sh"), "path"], { stdout: "pipe", stderr: "pipe" });
  return r.exitCode === 0 ? r.stdout.toString().trim() : "";
}
const qemu = findQemu();
if (!qemu) {
  if (process.env.CI === "true") throw new Error("CI=true and no qemu-aarch64 for the linux-arm64 tests (scripts/services/qemu.sh ensure installs it)");
  console.warn("WARNING: no qemu-aarch64 (scripts/services/qemu.sh ensure installs qemu-user and libc6-arm64-cross): the linux-arm64 emulation tests are skipped");
}
const withQemu = qemu ? test : test.skip;

let built: Awaited<ReturnType<typeof release>>["built"] = [];

beforeAll(async () => {
  // --allow-dirty: the tree under test may hold uncommitted work; the refusal is tested below.
  ({ built } = await release({ out, targets: Object.keys(TARGETS), allowDirty: true }));
  console.log(built.map((b) => `${b.target} ${(b.bytes / 1e6).toFixed(1)} MB ${b.seconds.toFixed(1)} s`).join("; "));
}, 240_000);

describe("artifacts", () => {
  test("one executable per target and SHA256SUMS, nothing else", () => {
    expect(readdirSync(dir).sort()).toEqual([...Object.keys(TARGETS).map((t) => artifactName(pkg.version, t)), "SHA256SUMS"].sort());
    expect(existsSync(path("windows-x64"))).toBe(true); // the .exe name
  });

  test("SHA256SUMS is what sha256sum -c reads, and its digests are the files'", async () => {
    const lines = readFileSync(join(dir, "SHA256SUMS"), "utf8").trimEnd().split("\n");
    expect(lines).toHaveLength(Object.keys(TARGETS).length);
    expect(lines).toEqual(built.map((b) => `${b.sha256}  ${b.file}`));
    for (const line of lines) expect(line).toMatch(/^[0-9a-f]{64} {2}ticksync-\S+$/);
    // sha256sum checks the digests release computed; without it, they are computed again here.
    if (!has("sha256sum")) {
      console.warn("WARNING: no sha256sum: the `sha256sum -c` check is replaced by sha256File");
      for (const b of built) expect(await sha256File(join(dir, b.file))).toBe(b.sha256);
      return;
    }
    const ok = Bun.spawnSync(["sha256sum", "-c", "SHA256SUMS"], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    expect(ok.stdout.toString().trim().split("\n")).toEqual(lines.map((l) => `${l.slice(66)}: OK`));
    expect(ok.exitCode).toBe(0);
  });

  test("each executable's header is its target's, by our reader and by file(1)", () => {
    const FILE_SAYS: Record<string, RegExp> = {
      "elf x86-64 glibc": /ELF 64-bit LSB .*x86-64.*interpreter \/lib64\/ld-linux-x86-64\.so\.2/,
      "elf x86-64 musl": /ELF 64-bit LSB .*x86-64.*interpreter \/lib\/ld-musl-x86_64\.so\.1/,
      "elf aarch64 glibc": /ELF 64-bit LSB .*ARM aarch64.*interpreter \/lib\/ld-linux-aarch64\.so\.1/,
      "mach-o x86-64": /Mach-O 64-bit x86_64 executable/,
      "mach-o arm64": /Mach-O 64-bit arm64 executable/,
      "pe x86-64": /PE32\+ executable .*x86-64/,
    };
    for (const [target, kind] of Object.entries(TARGETS)) {
      expect(`${target}: ${JSON.stringify(executableKind(readHead(path(target))))}`).toBe(`${target}: "${kind}"`);
      if (has("file")) expect(Bun.spawnSync(["file", "-b", path(target)], { stdout: "pipe" }).stdout.toString()).toMatch(FILE_SAYS[kind]!);
    }
  });

  test("a wrong target fails: no executable's header passes for another target's (but x64 and its baseline)", () => {
    const kinds = new Set(Object.values(TARGETS));
    expect(kinds.size).toBe(Object.keys(TARGETS).length - 1); // linux-x64-baseline shares linux-x64's
    for (const target of Object.keys(TARGETS)) {
      const kind = executableKind(readHead(path(target)));
      for (const other of Object.keys(TARGETS)) if (TARGETS[other] !== TARGETS[target]) expect(kind).not.toBe(TARGETS[other]!);
    }
  });

  test("the macOS executables carry a code signature (Apple silicon runs no unsigned arm64 code)", () => {
    for (const target of ["darwin-arm64", "darwin-x64"]) expect(`${target} ${machoSigned(readHead(path(target), 65536))}`).toBe(`${target} true`);
    // The same header with its LC_CODE_SIGNATURE command renumbered (to LC_UUID) reads as unsigned.
    const head = readHead(path("darwin-arm64"), 65536).slice();
    const view = new DataView(head.buffer);
    for (let i = 0, at = 32; i < view.getUint32(16, true); i++, at += view.getUint32(at + 4, true)) if (view.getUint32(at, true) === 0x1d) view.setUint32(at, 0x1b, true);
    expect(machoSigned(head)).toBe(false);
    expect(machoSigned(head.subarray(0, 40))).toBeUndefined();
  });

  test("what is no executable we ship is named, not passed", () => {
    const elf = readHead(path("linux-arm64"));
    const as = (edit: (b: Uint8Array) => void) => {
      const b = elf.slice();
      edit(b);
      return executableKind(b);
    };
    expect(as((b) => (b[18] = 0x28))).toEqual({ unknown: "ELF for machine 0x28" }); // 32-bit ARM
    expect(as((b) => (b[4] = 1))).toEqual({ unknown: "ELF, but not 64-bit little-endian" });
    expect(executableKind(elf.subarray(0, 64))).toEqual({ unknown: "ELF with its program headers past the bytes read" });
    expect(executableKind(new TextEncoder().encode("#!/bin/sh\n"))).toEqual({ unknown: "no executable header (starts 23212f62)" });
    expect(executableKind(new Uint8Array([0x4d, 0x5a, 0, 0]))).toEqual({ unknown: "MZ header without a PE signature" });
    expect(executableKind(new Uint8Array(0))).toEqual({ unknown: "no executable header (starts )" });
  });
});

describe("version stamp", () => {
  const host = process.platform === "linux" && process.arch === "x64" ? "linux-x64" : undefined;
  const it = host ? test : test.skip;

  it("the host's executable prints version, commit, build date and target (`--version` and `version`)", async () => {
    const head = git(ROOT, "rev-parse", "--short=12", "HEAD");
    for (const word of ["--version", "version"]) {
      const r = await cli([word], { exe: [path(host!)], cwd: out });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^ticksync ${pkg.version.replaceAll(".", "\\.")} \\(commit ${head}(-dirty)?, built \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ, linux-x64, bun ${Bun.version.replaceAll(".", "\\.")}\\)\\n$`));
      const built = Date.parse(/built (\S+),/.exec(r.stdout)![1]!);
      expect(Math.abs(Date.now() - built)).toBeLessThan(30 * 60_000);
    }
  });

  test("from a checkout: dev and the commit; without git: dev and commit unknown, exit 0", async () => {
    const head = git(ROOT, "rev-parse", "--short=12", "HEAD");
    const r = await cli(["--version"], { cwd: out });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^ticksync dev \\(commit ${head}(-dirty)?, package ${pkg.version.replaceAll(".", "\\.")}, bun `));
    const none = await cli(["version"], { cwd: out, env: { PATH: "/nonexistent" } });
    expect(none.stderr).toBe("");
    expect(none.code).toBe(0);
    expect(none.stdout).toStartWith(`ticksync dev (commit unknown, package ${pkg.version}, bun `);
  });
});

describe("a tree with changes", () => {
  // A repo of its own stands in for the checkout: the release reads its commit and its changes.
  const repo = tempDir("ticksync-release-repo-");
  const outs = tempDir("ticksync-release-dirty-");
  beforeAll(() => {
    writeFile(join(repo, "file.txt"), "one\n");
    git(repo, "init", "-q");
    git(repo, "add", "file.txt");
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one");
  });
  const opts = (allowDirty: boolean) => ({ out: outs, targets: ["linux-x64"], allowDirty, gitDir: repo });

  test("a clean tree releases, stamped with its commit", async () => {
    const { built } = await release(opts(false));
    expect(built.map((b) => b.target)).toEqual(["linux-x64"]);
    if (process.platform !== "linux" || process.arch !== "x64") return;
    const r = await cli(["version"], { exe: [join(outs, pkg.version, artifactName(pkg.version, "linux-x64"))], cwd: outs });
    expect(r.stdout).toContain(`(commit ${git(repo, "rev-parse", "--short=12", "HEAD")}, built `);
  });

  test("a changed tracked file refuses the release, --allow-dirty builds it stamped -dirty", async () => {
    writeFile(join(repo, "file.txt"), "two\n");
    const head = git(repo, "rev-parse", "--short=12", "HEAD");
    await expect(release(opts(false))).rejects.toThrow(`the tree has uncommitted changes (or no git), so commit ${head}-dirty would not be what was built: commit first, or pass --allow-dirty`);
    await release(opts(true));
    if (process.platform !== "linux" || process.arch !== "x64") return;
    const r = await cli(["version"], { exe: [join(outs, pkg.version, artifactName(pkg.version, "linux-x64"))], cwd: outs });
    expect(r.stdout).toContain(`(commit ${head}-dirty, built `);
  });

  test("no git repo is refused too; an unknown target is named", async () => {
    await expect(release({ ...opts(false), gitDir: outs })).rejects.toThrow("commit unknown would not be what was built");
    await expect(release({ ...opts(true), targets: ["linux-sparc"] })).rejects.toThrow("unknown target linux-sparc (known: linux-x64, ");
  });

  test("an executable that is not its target's fails the release (a planted wrong expectation)", async () => {
    const targets = TARGETS as Record<string, string>;
    const kept = targets["linux-arm64"]!;
    targets["linux-arm64"] = "elf x86-64 glibc";
    try {
      await expect(release({ ...opts(true), targets: ["linux-arm64"] })).rejects.toThrow(
        `linux-arm64: ticksync-${pkg.version}-linux-arm64 is elf aarch64 glibc, not elf x86-64 glibc`,
      );
      expect(existsSync(join(outs, pkg.version, "SHA256SUMS"))).toBe(false);
    } finally {
      targets["linux-arm64"] = kept;
    }
  });

  test("the script: one line and exit 1 when refused", () => {
    const r = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "release.ts"), "--targets", "plan9-x64", "--out", outs], { stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toStartWith("release failed: unknown target plan9-x64");
    expect(r.stderr.toString().trim().split("\n")).toHaveLength(1);
  });
});

describe("linux-arm64 under qemu-user", () => {
  const work = tempDir("ticksync-arm64-");
  const exe = () => [qemu, path("linux-arm64")];
  const env = { PATH: "/usr/bin:/bin", HOME: work, TICKSYNC_LOG__LEVEL: "warn", QEMU_LD_PREFIX };
  let server: Awaited<ReturnType<typeof startServe>> | undefined;
  afterAll(async () => {
    server?.proc.kill("SIGTERM");
    await server?.proc.exited;
  });

  withQemu("--version says linux-arm64", async () => {
    const r = await cli(["--version"], { exe: exe(), cwd: work, env });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^ticksync ${pkg.version.replaceAll(".", "\\.")} \\(commit [0-9a-f]{12}(-dirty)?, built \\S+, linux-arm64, bun `));
  });

  withQemu("config check: a good config passes, a bad one exits 3 naming the field", async () => {
    writeFile(join(work, "ticksync.toml"), `[store]\nurl = "sqlite:store.db"\n`);
    const ok = await cli(["config", "check", "--config", "ticksync.toml"], { exe: exe(), cwd: work, env });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^config ok: /i);
    writeFile(join(work, "bad.toml"), `[ingest]\nbatchSize = -5\n`);
    const bad = await cli(["config", "check", "--config", "bad.toml"], { exe: exe(), cwd: work, env });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain("ingest.batchSize");
  });

  withQemu("ingest a CSV into SQLite, then serve it: /readyz and the bars", async () => {
    writeFile(join(work, "in", "cdr_d.csv"), stooqCsv([["2024-05-06", 120, 125, 119, 124, 5000], ["2024-05-07", 124, 126, 121, 122, 6000]]));
    const r = await cli(["ingest", "--file", "in", "--market", "WSE", "--store", "sqlite:store.db"], { exe: exe(), cwd: work, env });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("inserted 2");
    server = await startServe(["--store", "sqlite:store.db"], { exe: exe(), cwd: work, env });
    const ready = await waitFor(async () => ((await fetch(`${server!.url}/readyz`)).status === 200 ? true : undefined), 60_000, "/readyz 200");
    expect(ready).toBe(true);
    const bars = (await (await fetch(`${server.url}/api/bars?symbol=CDR.WA`)).json()) as { data: { close: number }[] };
    expect(bars.data.map((b) => b.close)).toEqual([124, 122]);
  }, 120_000);
});

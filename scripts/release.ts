// `npm run release`: the executable for every platform we ship, built like `npm run build`
// (scripts/build.ts compile(): same entry points, flags and version stamp) with
// `bun build --compile --target=bun-<target>`, into dist/release/<version>/:
//   ticksync-<version>-<target>[.exe]   one executable per target (nothing to unpack: what the
//                                        checksum verifies is the file that runs)
//   SHA256SUMS                          `<sha256>  <file>` lines, as `sha256sum -c` / `shasum -a 256 -c` read
// Each executable's header is checked against its target (ELF x86-64/aarch64 and its libc, Mach-O
// and its code signature, PE), so a build for the wrong platform fails the release. A tree with uncommitted changes is
// refused (the stamped commit would not be what was built) unless --allow-dirty.
//   bun scripts/release.ts [--targets linux-x64,linux-arm64] [--out DIR] [--allow-dirty]
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT, compile, stampNow } from "./build.ts";

/** What an executable's header says it is: format, CPU and (ELF) which C library its loader is. */
export type ExecutableKind = `elf ${"x86-64" | "aarch64"} ${"glibc" | "musl" | "static"}` | `mach-o ${"x86-64" | "arm64"}` | `pe ${"x86-64" | "arm64"}`;

/** The targets we ship (Bun's names, without "bun-") and the header each one's executable must have. */
export const TARGETS: Readonly<Record<string, ExecutableKind>> = {
  "linux-x64": "elf x86-64 glibc",
  // Same header as linux-x64: the difference (no AVX2 needed) is in the code, which no header shows.
  "linux-x64-baseline": "elf x86-64 glibc",
  "linux-x64-musl": "elf x86-64 musl",
  "linux-arm64": "elf aarch64 glibc",
  "darwin-x64": "mach-o x86-64",
  "darwin-arm64": "mach-o arm64",
  "windows-x64": "pe x86-64",
};

/** The file name of a target's executable in a release. */
export const artifactName = (version: string, target: string) => `ticksync-${version}-${target}${target.startsWith("windows") ? ".exe" : ""}`;

// Read by hand rather than through file(1): its wording differs between versions and it is not on
// every machine (macOS runners, minimal CI images); these are the few fixed fields that tell targets apart.
/** The kind of executable the first bytes of a file (4 KiB is enough) are, or a one-line reason it is none we ship. */
export function executableKind(head: Uint8Array): ExecutableKind | { unknown: string } {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const u32 = (at: number, le = true) => (at + 4 <= head.length ? view.getUint32(at, le) : -1);
  const u16 = (at: number) => (at + 2 <= head.length ? view.getUint16(at, true) : -1);
  if (u32(0, false) === 0x7f454c46) {
    if (head[4] !== 2 || head[5] !== 1) return { unknown: "ELF, but not 64-bit little-endian" };
    const cpu = ({ 0x3e: "x86-64", 0xb7: "aarch64" } as const)[u16(18) as 0x3e | 0xb7];
    if (!cpu) return { unknown: `ELF for machine 0x${u16(18).toString(16)}` };
    const interp = elfInterpreter(head, view);
    if (interp === null) return `elf ${cpu} static`;
    if (interp === undefined) return { unknown: "ELF with its program headers past the bytes read" };
    return `elf ${cpu} ${interp.includes("ld-musl-") ? "musl" : "glibc"}`;
  }
  if (u32(0) === 0xfeedfacf) {
    const cpu = ({ 0x01000007: "x86-64", 0x0100000c: "arm64" } as const)[u32(4) as 0x01000007 | 0x0100000c];
    return cpu ? `mach-o ${cpu}` : { unknown: `Mach-O for CPU type 0x${u32(4).toString(16)}` };
  }
  if (head[0] === 0x4d && head[1] === 0x5a) {
    const pe = u32(0x3c);
    if (pe < 0 || u32(pe, false) !== 0x50450000) return { unknown: "MZ header without a PE signature" };
    const cpu = ({ 0x8664: "x86-64", 0xaa64: "arm64" } as const)[u16(pe + 4) as 0x8664 | 0xaa64];
    return cpu ? `pe ${cpu}` : { unknown: `PE for machine 0x${u16(pe + 4).toString(16)}` };
  }
  return { unknown: `no executable header (starts ${Buffer.from(head.subarray(0, 4)).toString("hex")})` };
}

/**
 * Whether a Mach-O (64-bit, little-endian) carries a code signature (LC_CODE_SIGNATURE): macOS on
 * Apple silicon refuses to run arm64 code without one. Undefined when the load commands lie past `head`.
 */
export function machoSigned(head: Uint8Array): boolean | undefined {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length < 32) return undefined;
  const count = view.getUint32(16, true);
  for (let i = 0, at = 32; i < count; i++) {
    if (at + 8 > head.length) return undefined;
    if (view.getUint32(at, true) === 0x1d) return true; // LC_CODE_SIGNATURE
    const size = view.getUint32(at + 4, true);
    if (size < 8) return false; // malformed: a command is at least its own header
    at += size;
  }
  return false;
}

/** An ELF64's PT_INTERP path; null when it has none (static), undefined when it lies past `head`. */
function elfInterpreter(head: Uint8Array, view: DataView): string | null | undefined {
  const phoff = Number(view.getBigUint64(0x20, true));
  const size = view.getUint16(0x36, true);
  const count = view.getUint16(0x38, true);
  if (phoff + size * count > head.length) return undefined;
  for (let i = 0; i < count; i++) {
    const ph = phoff + i * size;
    if (view.getUint32(ph, true) !== 3) continue; // PT_INTERP
    const at = Number(view.getBigUint64(ph + 8, true));
    const len = Number(view.getBigUint64(ph + 32, true));
    if (at + len > head.length) return undefined;
    return new TextDecoder().decode(head.subarray(at, at + len)).replace(/\0+$/, "");
  }
  return null;
}

/** The first bytes of a file. */
export function readHead(path: string, bytes = 4096): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

/** The SHA-256 of a file, read in chunks (an executable is 60-120 MB). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of Bun.file(path).stream()) hash.update(chunk);
  return hash.digest("hex");
}

export interface Built {
  readonly target: string;
  readonly file: string;
  readonly bytes: number;
  readonly seconds: number;
  readonly sha256: string;
}

/**
 * Builds `targets` into `<out>/<version>/` (emptied first) with SHA256SUMS; throws one line on the
 * first failure. `gitDir` is the checkout whose commit is stamped and whose changes refuse the
 * release (this one; a test points it at a repo of its own).
 */
export async function release(opts: { out: string; targets: readonly string[]; allowDirty: boolean; gitDir?: string; log?: (line: string) => void }): Promise<{ dir: string; built: Built[] }> {
  const log = opts.log ?? (() => {});
  const unknown = opts.targets.filter((t) => !(t in TARGETS));
  if (unknown.length) throw new Error(`unknown target ${unknown.join(", ")} (known: ${Object.keys(TARGETS).join(", ")})`);
  const base = stampNow(undefined, opts.gitDir);
  if (base.dirty && !opts.allowDirty) {
    throw new Error(`the tree has uncommitted changes (or no git), so commit ${base.commit} would not be what was built: commit first, or pass --allow-dirty`);
  }
  const dir = join(opts.out, base.version);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const built: Built[] = [];
  for (const target of opts.targets) {
    const started = performance.now();
    const name = artifactName(base.version, target);
    // bun writes source maps beside the executable: build in a scratch dir, keep only the executable.
    const scratch = join(dir, `.build-${target}`);
    mkdirSync(scratch);
    try {
      const { exitCode, output } = compile({ outfile: join(scratch, name), stamp: { ...base, target }, target, quiet: true });
      if (exitCode !== 0 || !existsSync(join(scratch, name))) throw new Error(`${target}: bun build failed (exit ${exitCode}): ${lastLine(output)}`);
      renameSync(join(scratch, name), join(dir, name));
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    const kind = executableKind(readHead(join(dir, name)));
    if (kind !== TARGETS[target]) throw new Error(`${target}: ${name} is ${typeof kind === "string" ? kind : kind.unknown}, not ${TARGETS[target]}`);
    if (kind.startsWith("mach-o") && machoSigned(readHead(join(dir, name), 65536)) !== true) throw new Error(`${target}: ${name} has no code signature (macOS on Apple silicon would not run it)`);
    const seconds = (performance.now() - started) / 1000;
    built.push({ target, file: name, bytes: statSync(join(dir, name)).size, seconds, sha256: await sha256File(join(dir, name)) });
    log(`${target.padEnd(20)} ${(built.at(-1)!.bytes / 1e6).toFixed(1).padStart(6)} MB  ${seconds.toFixed(1).padStart(5)} s  ${name}`);
  }
  // Two spaces between digest and name: the text-mode line sha256sum writes and `-c` reads.
  writeFileSync(join(dir, "SHA256SUMS"), built.map((b) => `${b.sha256}  ${b.file}\n`).join(""));
  return { dir, built };
}

const lastLine = (text: string) => text.trim().split("\n").filter(Boolean).at(-1)?.slice(0, 500) ?? "no output";

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { targets: { type: "string" }, out: { type: "string" }, "allow-dirty": { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(`Usage: bun scripts/release.ts [--targets LIST] [--out DIR] [--allow-dirty]\n\nTargets (default all): ${Object.keys(TARGETS).join(", ")}\nOut (default dist/release): executables and SHA256SUMS go to <out>/<version>/`);
    process.exit(0);
  }
  const started = performance.now();
  try {
    const targets = values.targets ? values.targets.split(",").map((t) => t.trim()).filter(Boolean) : Object.keys(TARGETS);
    const { dir, built } = await release({ out: values.out ?? join(ROOT, "dist", "release"), targets, allowDirty: values["allow-dirty"] ?? false, log: console.log });
    console.log(`released ${built.length} executable(s) and SHA256SUMS into ${dir} in ${((performance.now() - started) / 1000).toFixed(1)}s (${basename(dir)})`);
  } catch (e) {
    console.error(`release failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}

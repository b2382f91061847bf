// log.file: the JSON log lines of `serve` in a rotated file (by size, at interval boundaries, keep
// N, gzip), scrubbed of secrets like stderr; a file that cannot be written falls back to stderr
// with one warning; the config refuses nonsense; the compiled executable writes and rotates it;
// and the systemd unit in deploy/ passes `systemd-analyze verify` and its offline security check.
import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { parseConfig } from "../src/config/load.ts";
import { log, setLogFile, setLogLevel } from "../src/lib/log.ts";
import { MAX_BACKLOG_BYTES, parseByteSize, rotationIntervalError } from "../src/lib/log-file.ts";
import { addSecrets, clearSecrets } from "../src/lib/redact.ts";
import { ROOT, cli, startServe, tempDir, waitFor, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-logfile-");
let n = 0;
/** A fresh directory per case, and the log file's path in it. */
const logPath = () => join(dir, `case${++n}`, "ticksync.log");
const lines = (text: string) => text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const fileLines = (path: string) => (existsSync(path) ? lines(readFileSync(path, "utf8")) : []);
const base = { maxSize: "1KB", keep: 3, compress: false, stderr: false };

// Test files share one process: another file may have left the level at "error".
beforeEach(() => setLogLevel("info"));
afterEach(() => {
  setLogFile(null);
  setLogLevel("info");
});

/** What process.stderr.write receives while fn runs. */
async function captureStderr(fn: () => Promise<void>): Promise<string> {
  const original = process.stderr.write.bind(process.stderr);
  let text = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = original;
  }
  return text;
}

describe("rotation", () => {
  test("by size: a file is rotated once it reaches maxSize, and only `keep` rotated files stay", async () => {
    const path = logPath();
    const file = setLogFile({ ...base, path, keep: 2 })!;
    // ~200-byte lines, each on disk before the next: a rotation every 5 or 6 lines.
    for (let i = 0; i < 40; i++) {
      log.info("line", { i, pad: "x".repeat(150) });
      await file.drained();
    }
    await file.close();
    const names = readdirSync(join(path, "..")).sort();
    expect(names).toEqual(["ticksync.log", "ticksync.log.1", "ticksync.log.2"]);
    for (const name of names) expect(readFileSync(join(path, "..", name)).length).toBeLessThan(1024 + 250);
    // The kept files hold the newest lines, oldest first in .2, without a gap; older ones are gone.
    const kept = [...fileLines(`${path}.2`), ...fileLines(`${path}.1`), ...fileLines(path)].map((l) => l.i);
    expect(kept.at(-1)).toBe(39);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, k) => 40 - kept.length + k));
    expect(kept.length).toBeLessThan(20);
  });

  test("by time: at each interval boundary the file is rotated", async () => {
    const path = logPath();
    const file = setLogFile({ ...base, path, maxSize: "1MB", interval: "1s" })!;
    log.info("before the boundary");
    await file.drained();
    await waitFor(() => fileLines(`${path}.1`).some((l) => l.msg === "before the boundary") || fileLines(`${path}.2`).some((l) => l.msg === "before the boundary"), 5_000, "a rotation");
    log.info("after the boundary");
    await file.close();
    expect(fileLines(path).map((l) => l.msg)).toContain("after the boundary");
    expect(fileLines(path).map((l) => l.msg)).not.toContain("before the boundary");
  });

  test("compress: rotated files are gzipped JSON lines", async () => {
    const path = logPath();
    const file = setLogFile({ ...base, path, compress: true })!;
    for (let i = 0; i < 12; i++) {
      log.info("zipped", { i, pad: "y".repeat(150) });
      await file.drained();
    }
    await file.close();
    expect(existsSync(`${path}.1.gz`)).toBe(true);
    expect(lines(gunzipSync(readFileSync(`${path}.1.gz`)).toString()).every((l) => l.msg === "zipped")).toBe(true);
  });

  test("lines queued when the process exits are written, once each", async () => {
    const path = join(dir, "exit", "t.log");
    const script = writeFile(
      join(dir, "exit.ts"),
      `import { log, setLogFile } from ${JSON.stringify(join(ROOT, "src/lib/log.ts"))};
setLogFile({ path: ${JSON.stringify(path)}, maxSize: "1MB", keep: 2, compress: false, stderr: false });
for (let i = 0; i < 500; i++) log.info("bye", { i });
process.exit(0);\n`,
    );
    const proc = Bun.spawnSync([process.execPath, script], { stderr: "pipe" });
    expect(proc.stderr.toString()).toBe("");
    expect(fileLines(path).map((l) => l.i)).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });
});

describe("redaction and failures", () => {
  afterAll(() => clearSecrets());

  test("the file gets the same scrubbed lines as stderr: no secret by key, value or URL", async () => {
    const secret = `FileSecret${Math.random().toString(36).slice(2)}`;
    addSecrets([secret]);
    const path = logPath();
    const file = setLogFile({ ...base, path, maxSize: "1MB" })!;
    log.warn(`cannot reach postgres://ticksync:UrlPw42x@db:5432/ticks using ${secret}`, { apiKey: "KeyValue77", note: `said ${secret}` });
    await file.close();
    const text = readFileSync(path, "utf8");
    expect(text).toContain("cannot reach");
    for (const leaked of [secret, "UrlPw42x", "KeyValue77"]) expect(text).not.toContain(leaked);
    expect(text).toContain("***");
  });

  test("stderr = true: each line in the file and on stderr; false: in the file only", async () => {
    for (const both of [true, false]) {
      const path = logPath();
      const stderr = await captureStderr(async () => {
        const file = setLogFile({ ...base, path, stderr: both })!;
        log.info("twice?", { both });
        await file.close();
      });
      expect(fileLines(path).map((l) => l.msg)).toEqual(["twice?"]);
      expect(lines(stderr).map((l) => l.msg)).toEqual(both ? ["twice?"] : []);
    }
  });

  test("a file that cannot be opened: the lines go to stderr, with one warning, and logging goes on", async () => {
    writeFileSync(join(dir, "not-a-dir"), "");
    const path = join(dir, "not-a-dir", "ticksync.log");
    setLogLevel("error"); // the warning is shown whatever the level
    const stderr = await captureStderr(async () => {
      setLogFile({ ...base, path });
      log.error("first");
      await Bun.sleep(300); // the open fails on the stream's first turn
      log.error("second");
      log.error("third");
    });
    const got = lines(stderr);
    expect(got.map((l) => l.msg)).toEqual(["first", "log file failed: logging to stderr from now on", "second", "third"]);
    expect(got[1]!.file).toBe(path);
    expect(String(got[1]!.error)).toMatch(/ENOTDIR|not a directory/i);
  });

  test("a file that fails mid-run (its rotation cannot rename): stderr from then on, nothing lost", async () => {
    const path = logPath();
    writeFile(join(`${path}.1`, "in-the-way"), ""); // a non-empty directory where <file>.1 goes
    const stderr = await captureStderr(async () => {
      const file = setLogFile({ ...base, path, keep: 1 })!;
      for (let i = 0; i < 20; i++) {
        log.info("row", { i, pad: "w".repeat(150) });
        await file.drained();
      }
    });
    const got = lines(stderr);
    const warnings = got.filter((l) => String(l.msg).startsWith("log file failed"));
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.error)).toMatch(/EISDIR|ENOTEMPTY|directory/i);
    const onDisk = fileLines(path).map((l) => l.i as number);
    expect(onDisk.length).toBeGreaterThan(0);
    const onStderr = got.filter((l) => l.i !== undefined).map((l) => l.i as number);
    expect([...new Set([...onDisk, ...onStderr])].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  test("a stalled disk: past MAX_BACKLOG_BYTES waiting, the file is given up, memory stays bounded", async () => {
    const path = logPath();
    const line = "z".repeat(1000);
    const stderr = await captureStderr(async () => {
      setLogFile({ ...base, path, maxSize: "1GB" });
      // No await: the disk never gets a turn, as if every write hung.
      for (let i = 0; i * 1000 < MAX_BACKLOG_BYTES * 1.5; i++) log.info(line, { i });
      await Bun.sleep(50);
    });
    const got = lines(stderr);
    const warning = got.findIndex((l) => l.msg === "log file failed: logging to stderr from now on");
    expect(warning).toBeGreaterThan(0);
    expect(String(got[warning]!.error)).toContain("not keeping up");
    expect(got.filter((l) => String(l.msg).startsWith("log file failed"))).toHaveLength(1);
    // Nothing lost: what the file had not taken went to stderr, in order, then every later line.
    const onDisk = fileLines(path).map((l) => l.i as number);
    const onStderr = got.filter((l) => l.i !== undefined).map((l) => l.i as number);
    const all = [...new Set([...onDisk, ...onStderr])].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i));
    expect(all.length).toBe(Math.ceil((MAX_BACKLOG_BYTES * 1.5) / 1000));
  });
});

describe("config", () => {
  test("sizes and intervals: what passes, what is refused and why", () => {
    expect(parseByteSize("100MB")).toBe(100 * 1024 * 1024);
    expect(parseByteSize("1KB")).toBe(1024);
    for (const bad of ["100 MB", "0MB", "1TB", "100", "MB", "-1KB", "1.5MB", "100B", "65GB"]) expect(parseByteSize(bad)).toBeNull();
    for (const ok of ["1d", "7d", "6h", "24h", "30m", "1s", "60s"]) expect(rotationIntervalError(ok)).toBeNull();
    expect(rotationIntervalError("7m")).toContain("minutes must divide 60");
    expect(rotationIntervalError("5h")).toContain("hours must divide 24");
    expect(rotationIntervalError("daily")).toContain('expected an interval such as "1d"');
  });

  test("[log] nonsense is refused with one clear line per field", () => {
    const issues = (log: Record<string, unknown>) => {
      try {
        parseConfig({ log });
        return "";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(issues({ file: "/var/log/ticksync/ticksync.log", maxSize: "10MB", interval: "1d", keep: 7, compress: true })).toBe("");
    expect(issues({ file: "logs/" })).toContain("log.file: expected a file path, not a directory");
    expect(issues({ file: "a.log", maxSize: "lots" })).toContain('log.maxSize: expected a size such as "100MB"');
    expect(issues({ file: "a.log", interval: "7m" })).toContain("log.interval: 7m: minutes must divide 60");
    expect(issues({ file: "a.log", keep: 0 })).toContain("log.keep: expected 1 to 1000 files");
    expect(issues({ file: "a.log", rotate: true })).toContain("rotate");
  });
});

describe("the compiled executable", () => {
  test("serve writes its log lines to log.file, not stderr, and rotates it", async () => {
    const bin = join(dir, "bin", "ticksync");
    const build = Bun.spawnSync(["nice", "-n", "15", process.execPath, join(ROOT, "scripts", "build.ts"), "--outfile", bin], { stdout: "pipe", stderr: "pipe" });
    expect(build.exitCode).toBe(0);
    const work = join(dir, "serve");
    writeFile(join(work, "ticksync.toml"), `[store]\nurl = "sqlite:store.db"\n[log]\nfile = "logs/ticksync.log"\ninterval = "1s"\nkeep = 50\n`);
    const server = await startServe(["--config", "ticksync.toml"], { exe: [bin], cwd: work, env: { TICKSYNC_LOG__LEVEL: "info" } });
    const path = join(work, "logs", "ticksync.log");
    const rotated = () => readdirSync(join(work, "logs")).filter((f) => /^ticksync\.log\.\d+$/.test(f));
    try {
      await waitFor(() => rotated().some((f) => readFileSync(join(work, "logs", f), "utf8").includes('"msg":"listening"')), 10_000, "the startup lines in a rotated file");
    } finally {
      server.proc.kill("SIGTERM");
    }
    expect(await server.proc.exited).toBe(0);
    expect(fileLines(path).map((l) => l.msg)).toContain("shutting down");
    expect(await new Response(server.proc.stderr).text()).toBe("");
  });
});

describe("deploy/ticksync.service", () => {
  const unit = readFileSync(join(ROOT, "deploy", "ticksync.service"), "utf8");
  const analyze = Bun.which("systemd-analyze");
  if (!analyze) console.warn("log-file.test.ts: systemd-analyze not found (apt-get install systemd): the unit's verify and security cases are skipped");

  test("has the restart policy, the hardening, journald and a dedicated user", () => {
    for (const line of [
      "Type=simple",
      "User=ticksync",
      "Restart=on-failure",
      "StartLimitBurst=5",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "ReadWritePaths=/var/lib/ticksync /var/log/ticksync",
      "CapabilityBoundingSet=",
      "StandardError=journal",
    ])
      expect(unit.split("\n")).toContain(line);
  });

  test("the example config keeps the store and the log file in the unit's writable directories", async () => {
    const r = await cli(["config", "check", "--config", join(ROOT, "deploy", "ticksync.toml")]);
    expect(r.code).toBe(0);
    const toml = readFileSync(join(ROOT, "deploy", "ticksync.toml"), "utf8");
    expect(toml).toContain('url = "sqlite:/var/lib/ticksync/');
    expect(toml).toContain('file = "/var/log/ticksync/');
  });

  /** The unit with ExecStart pointing at an executable that exists here (verify checks it). */
  const unitHere = (text: string) => writeFile(join(dir, "unit", "ticksync.service"), text.replace("/usr/local/bin/ticksync", process.execPath));

  test.skipIf(!analyze)("systemd-analyze verify reports nothing, and does report a planted mistake", () => {
    const verify = () => Bun.spawnSync([analyze!, "verify", join(dir, "unit", "ticksync.service")], { stdout: "pipe", stderr: "pipe" });
    unitHere(unit);
    const clean = verify();
    expect(clean.stderr.toString()).toBe("");
    expect(clean.exitCode).toBe(0);
    unitHere(unit.replace("ProtectSystem=strict", "ProtectSystm=strict"));
    expect(verify().stderr.toString()).toContain("Unknown key 'ProtectSystm'");
  });

  test.skipIf(!analyze)("systemd-analyze security (offline) rates its exposure at most 2.0 of 10", () => {
    unitHere(unit);
    const security = (file: string) => Bun.spawnSync([analyze!, "security", "--offline=yes", "--threshold=20", file], { stdout: "pipe", stderr: "pipe" });
    const r = security(join(dir, "unit", "ticksync.service"));
    expect(r.stdout.toString()).toMatch(/Overall exposure level for ticksync\.service: [0-9.]+/);
    expect(r.exitCode).toBe(0);
    // The check can fail: the same unit without its hardening is rated above the threshold.
    unitHere(unit.split("\n").filter((l) => !/^(Protect|Private|Restrict|Capability|NoNewPrivileges|SystemCall|Lock|RemoveIPC)/.test(l)).join("\n"));
    expect(security(join(dir, "unit", "ticksync.service")).exitCode).not.toBe(0);
  });
});

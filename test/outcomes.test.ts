// Clear outcomes: a failure prints one line (no stack trace) and the documented exit code
// (src/cli/exit.ts, docs/operations.md "Exit codes"): 1 a run, a backup or a restore failed; 5 the store
// cannot be opened. TICKSYNC_DEBUG=1 adds the stack for a bug report.
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { cli, stooqCsv, tempDir, writeFile, type CliResult } from "./helpers.ts";
import { EXIT } from "../src/cli/exit.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-outcomes-");
writeFile(join(dir, "data", "pkn_d.csv"), stooqCsv([["2024-01-02", 60, 61, 59, 60.5, 1000], ["2024-01-03", 60.5, 61, 60, 60.2, 1000]]));
const cfg = writeFile(
  join(dir, "ticksync.json"),
  JSON.stringify({ store: { url: "sqlite:./store.db" }, sources: { demo: { type: "csv", path: "data", market: "WSE" } }, sinks: { app: { type: "pocketbase", url: "http://127.0.0.1:1", email: "a@example.com", password: "pw-not-used", retryForS: 0 } } }),
);
const run = (args: string[], env: Record<string, string> = {}) => cli([...args, "--config", cfg], { cwd: dir, env });

/** One line on stderr, nothing that looks like a stack frame, and the expected code. */
function expectOneLine(r: CliResult, code: number, says: string) {
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code });
  expect(r.stderr).not.toContain("    at ");
  expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(r.stderr).toStartWith("ticksync: ");
  expect(r.stderr).toContain(says);
}

describe("failures are one line with a documented exit code", () => {
  test("backup into a directory that cannot be made: exit 1", async () => {
    expect((await run(["ingest", "--source", "demo"])).code).toBe(EXIT.ok);
    expectOneLine(await run(["backup", "--out", "/proc/nope"]), EXIT.runFailed, "cannot write to /proc/nope");
  });

  test("restore into a SQLite path that cannot be made: exit 1, nothing written", async () => {
    const b = await run(["backup", "--out", join(dir, "b")]);
    expect(b.code).toBe(EXIT.ok);
    const manifest = join(dir, "b", readdirSync(join(dir, "b")).find((f) => f.endsWith(".json"))!);
    expectOneLine(await run(["restore", "--from", manifest, "--to", "sqlite:/proc/nope/r.db"]), EXIT.runFailed, "cannot write to /proc/nope");
  });

  test("backup of an unreachable Postgres: exit 5 (the store cannot be opened)", async () => {
    expectOneLine(await run(["backup", "--out", join(dir, "b2"), "--store", "postgres://u:pw@127.0.0.1:1/db"]), EXIT.store, "cannot open the store postgres://u:***@127.0.0.1:1/db");
  });

  test("an error no command expected (verify against an unreachable sink): one line, exit 1; TICKSYNC_DEBUG=1 adds the stack", async () => {
    const r = await run(["verify", "--sink", "app"]);
    expectOneLine(r, EXIT.runFailed, "Pocketbase sink app");
    const debug = await run(["verify", "--sink", "app"], { TICKSYNC_DEBUG: "1" });
    expect(debug.code).toBe(EXIT.runFailed);
    expect(debug.stderr).toContain("    at ");
  });

  test("serve on an unreachable store: one line, exit 5", async () => {
    expectOneLine(await run(["serve", "--port", "0", "--store", "postgres://u:pw@127.0.0.1:1/db"]), EXIT.store, "cannot open the store");
  });
});

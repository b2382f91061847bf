// A plain `bun test` runs like npm test: test/preload.ts finds the test servers that already run
// (scripts/services/all.sh running), warning once per server it cannot find, and every test file
// gets npm test's timeout (test/timeout.ts).
import { describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { discoverServers, SERVERS } from "./preload.ts";
import { ROOT, tempDir, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const ALL = Object.fromEntries(SERVERS.flatMap((s) => s.vars.map((v) => [v, `value-of-${v}`])));

describe("server discovery", () => {
  test("variables of running servers are set; one warning per server not running; set ones are kept", () => {
    const env: Record<string, string | undefined> = { TICKSYNC_TEST_PG_URL: "postgres://mine" };
    let asked = 0;
    const found = new Map([
      ["TICKSYNC_TEST_PG_URL", "postgres://found"],
      ["TICKSYNC_TEST_QUESTDB_URL", "postgres://qdb"],
      ["TICKSYNC_TEST_QUESTDB_HTTP", "http://qdb"],
    ]);
    const warnings = discoverServers(env, () => (asked++, found));
    expect(asked).toBe(1);
    expect(env).toEqual({ TICKSYNC_TEST_PG_URL: "postgres://mine", TICKSYNC_TEST_QUESTDB_URL: "postgres://qdb", TICKSYNC_TEST_QUESTDB_HTTP: "http://qdb" });
    expect(warnings).toEqual([expect.stringMatching(/^WARNING: Pocketbase is not running \(scripts\/services\/all\.sh start starts it/)]);
  });

  test("nothing is asked when every variable is set", () => {
    const env = { ...ALL };
    expect(discoverServers(env, () => { throw new Error("asked"); })).toEqual([]);
    expect(env).toEqual(ALL);
  });

  test("a server with only some of its variables found counts as not running", () => {
    const env: Record<string, string | undefined> = {};
    const warnings = discoverServers(env, () => new Map([["TICKSYNC_TEST_QUESTDB_URL", "postgres://qdb"]]));
    expect(warnings.map((w) => w.split(" ")[1])).toEqual(["PostgreSQL", "QuestDB", "Pocketbase"]);
    expect(env).toEqual({});
  });

  test("with CI=true a server not running fails, naming each", () => {
    const env: Record<string, string | undefined> = { CI: "true", TICKSYNC_TEST_PG_URL: "postgres://x" };
    expect(() => discoverServers(env, () => new Map())).toThrow("CI=true and not running: QuestDB, Pocketbase (scripts/services/all.sh start starts them)");
  });

  test("all.sh running starts nothing where no server runs: no lines, exit 3, a line each on stderr", () => {
    const empty = tempDir("ticksync-services-");
    // Service dirs of this temp dir: nothing runs there.
    const env = { ...process.env, TICKSYNC_PG_DIR: join(empty, "pg", "data"), TICKSYNC_QDB_DIR: join(empty, "qdb"), TICKSYNC_PB_DIR: join(empty, "pb") };
    const r = Bun.spawnSync(["bash", join(ROOT, "scripts", "services", "all.sh"), "running"], { env, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(3);
    expect(r.stdout.toString()).toBe("");
    expect(r.stderr.toString().trim().split("\n")).toEqual(["all: PostgreSQL is not running", "all: QuestDB is not running", "all: Pocketbase is not running"]);
  });
});

test("a plain `bun test` of several files allows each a test longer than bun's default 5 s (test/timeout.ts)", () => {
  // Two files: a preload's setDefaultTimeout reached only the first (oven-sh/bun#43787).
  const dir = join(ROOT, "test", `.tmp-timeout-${process.pid}`);
  try {
    for (const name of ["a", "b"])
      writeFile(join(dir, `${name}.test.ts`), `import { test } from "bun:test";\nimport { testTimeout } from "../timeout.ts";\ntestTimeout();\ntest("5.3 s", async () => { await Bun.sleep(5300); });\n`);
    // Servers "found": the child does not look for them.
    const r = Bun.spawnSync([process.execPath, "test", dir], { cwd: ROOT, env: { ...process.env, ...ALL }, stdout: "pipe", stderr: "pipe" });
    const out = r.stdout.toString() + r.stderr.toString();
    expect(out).toContain("2 pass");
    expect(r.exitCode).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

test("every test file sets the budget in its own body (testTimeout())", () => {
  // Integration tests in test/, unit tests beside the code they test in src/.
  const files = ["test", "src"].flatMap((dir) => [...new Glob("**/*.test.ts").scanSync({ cwd: join(ROOT, dir) })].map((f) => join(dir, f)));
  expect(files.length).toBeGreaterThan(50);
  expect(files.filter((f) => f.startsWith("src/")).length).toBeGreaterThan(5);
  const without = files.filter((f) => !/^testTimeout\(\);$/m.test(readFileSync(join(ROOT, f), "utf8")));
  expect(without).toEqual([]);
});

// The CLI as a user meets it: help, exit codes, config errors that name the field.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { cli, stooqCsv, tempDir, writeFile } from "./helpers.ts";
import { HELP } from "../src/cli/registry.ts";
import { marketChoices } from "../src/domain/markets/index.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-cli-");
const good = writeFile(join(dir, "data", "pkn_d.csv"), stooqCsv([["2024-01-02", 60, 61, 59, 60.5, 1000], ["2024-01-03", 60.5, 60, 61, 60.2, 1000]]));

/** Each command's own usage line and some of its own flags, written out here (not read from help.ts). */
const OWN_HELP: Record<string, { usage: string; flags: string[] }> = {
  serve: { usage: "Usage: ticksync serve [--config FILE] [--host HOST] [--port PORT] [--store URL]", flags: ["--host HOST", "--port PORT"] },
  ingest: { usage: "Usage: ticksync ingest [--config FILE] [--source NAME ...]", flags: ["--file PATH", "--layout L", "--batch-size N", "--fail-on-quarantine"] },
  backfill: { usage: "Usage: ticksync backfill --source NAME --from YYYY-MM-DD", flags: ["--resume", "--retry-failed", "--concurrency N"] },
  "universe list": { usage: "Usage: ticksync universe list", flags: [] },
  "instruments import": { usage: "Usage: ticksync instruments import --file CSV", flags: ["--file CSV", "--columns MAP", "--delimiter C"] },
  "import stockula": { usage: "Usage: ticksync import stockula --sqlite FILE", flags: ["--sqlite FILE", "--market M", "--name NAME"] },
  migrate: { usage: "Usage: ticksync migrate --to URL [--from URL]", flags: ["--verify-only", "--batch-size N"] },
  sync: { usage: "Usage: ticksync sync [--config FILE] [--sink NAME ...]", flags: ["--sink NAME"] },
  verify: { usage: "Usage: ticksync verify --sink NAME|pocketbase [--repair]", flags: ["--repair"] },
  backup: { usage: "Usage: ticksync backup [--config FILE] [--store URL] [--out DIR] [--keep N]", flags: ["--out DIR", "--keep N"] },
  restore: { usage: "Usage: ticksync restore --from MANIFEST [--to URL] [--force]", flags: ["--from MANIFEST", "--force"] },
  export: { usage: "Usage: ticksync export --out PATH [--format parquet|arrow|csv]", flags: ["--out PATH", "--symbols LIST", "--universe NAME", "--row-group N"] },
  rollups: { usage: "Usage: ticksync rollups [--config FILE] [--store URL]", flags: ["--store URL"] },
  "config check": { usage: "Usage: ticksync config check [--config FILE]", flags: [] },
  init: { usage: "Usage: ticksync init [--out FILE] [--store URL]", flags: ["--source NAME=TYPE", "--force", "--yes"] },
  "config schema": { usage: "Usage: ticksync config schema", flags: [] },
  doctor: { usage: "Usage: ticksync doctor [--config FILE] [--json] [--timeout MS]", flags: ["--json", "--timeout MS"] },
  completion: { usage: "Usage: ticksync completion bash|zsh|fish", flags: [] },
  version: { usage: "Usage: ticksync version", flags: [] },
};

/** The commands the main help lists (src/cli/registry.ts): a command added there needs its own help. */
const LISTED = HELP.main!.split("Commands:\n")[1]!.split("\n\n")[0]!.split("\n").flatMap((l) => /^  ([a-z]+(?: [a-z]+)?)(?: {2,}|$)/.exec(l)?.[1] ?? []);

describe("help", () => {
  test("every command the main help lists has its own help checked here", () => {
    expect(LISTED.length).toBeGreaterThan(10);
    expect(LISTED.sort()).toEqual(Object.keys(OWN_HELP).sort());
  });
  test("ticksync --help", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith("ticksync — ingest, validate, store and serve market data");
    expect(r.stdout).toContain("Usage: ticksync <command> [flags]");
  });
  for (const cmd of LISTED)
    test(`ticksync ${cmd} --help prints its own usage and flags`, async () => {
      const r = await cli([...cmd.split(" "), "--help"]);
      expect(r.code).toBe(0);
      const own = OWN_HELP[cmd];
      expect(own).toBeDefined();
      expect(r.stdout).toStartWith(own!.usage);
      expect(r.stdout).not.toContain("Commands:"); // not the main help
      for (const f of own!.flags) expect(r.stdout).toMatch(new RegExp(`^  ${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} `, "m"));
    });
  test("`ticksync <word> --help` works for every command word (what a usage error tells to run)", async () => {
    for (const word of new Set(LISTED.map((c) => c.split(" ")[0]!))) {
      const r = await cli([word, "--help"]);
      expect({ word, code: r.code, stderr: r.stderr }).toEqual({ word, code: 0, stderr: "" });
      expect(r.stdout).toContain(`Usage: ticksync ${word}`);
    }
  });
  test("no command prints usage and exits 2", async () => {
    const r = await cli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("Commands:");
  });
  test("unknown command or flag exits 2 and says what", async () => {
    const a = await cli(["frobnicate"]);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("unknown command: frobnicate");
    const b = await cli(["ingest", "--nope"]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain("--nope");
    const c = await cli(["ingest", "--file", good, "--batch-size", "ten"]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain("--batch-size expects a whole number");
  });
});

describe("config", () => {
  test("check accepts a valid TOML config and summarises it", async () => {
    const f = writeFile(join(dir, "ok.toml"), `[sources.wse]\ntype = "csv"\npath = "data"\nmarket = "WSE"\n[[jobs]]\nname = "daily"\nsource = "wse"\nschedule = "0 30 18 * * 1-5"\ntimeZone = "Europe/Warsaw"\n`);
    const r = await cli(["config", "check", "--config", f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("config ok");
    expect(r.stdout).toContain("wse (csv)");
    expect(r.stdout).toContain("daily [0 30 18 * * 1-5 Europe/Warsaw]");
  });

  test("check names every bad field and what was expected, exit 3", async () => {
    const f = writeFile(
      join(dir, "bad.json"),
      JSON.stringify({ server: { port: "eighty" }, sources: { wse: { type: "csv", path: "x", layout: "excel" } }, jobs: [{ name: "j", source: "nope", schedule: "every day" }] }),
    );
    const r = await cli(["config", "check", "--config", f]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("server.port: expected a port number");
    expect(r.stderr).toContain("sources.wse.layout: expected stooq, stooq-bulk or generic");
    expect(r.stderr).toContain("jobs[0].schedule: expected a cron expression");
  });

  test("an undefined job source is named", async () => {
    const f = writeFile(join(dir, "bad2.toml"), `[sources.a]\ntype = "csv"\npath = "x"\n[[jobs]]\nname = "j"\nsource = "b"\n`);
    const r = await cli(["config", "check", "--config", f]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('jobs: job source "b" is not defined in sources (defined: a)');
  });

  test("an environment override that is wrong names its variable", async () => {
    const r = await cli(["config", "check"], { cwd: dir, env: { TICKSYNC_SERVER__PORT: "70000" } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("server.port");
    expect(r.stderr).toContain("(from TICKSYNC_SERVER__PORT)");
    const ok = await cli(["config", "check"], { cwd: dir, env: { TICKSYNC_SERVER__PORT: "9099" } });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("127.0.0.1:9099");
  });

  test("a file that does not parse is a config error naming the file", async () => {
    const f = writeFile(join(dir, "broken.toml"), `[server\nport = 1`);
    const r = await cli(["config", "check", "--config", f]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("broken.toml");
    expect(r.stderr).toContain("cannot parse TOML");
  });

  test("schema prints a JSON Schema of the config", async () => {
    const r = await cli(["config", "schema"]);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.type).toBe("object");
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["store", "server", "sources", "jobs", "ingest"]));
    expect(JSON.stringify(schema.properties.sources)).toContain("stooq-bulk");
  });
});

describe("ingest exit codes", () => {
  test("success prints the summary; --json prints it as JSON", async () => {
    const r = await cli(["ingest", "--file", good, "--market", "WSE", "--store", `sqlite:${join(dir, "a.db")}`, "--json"]);
    expect(r.code).toBe(0);
    const [s] = JSON.parse(r.stdout);
    expect(s).toMatchObject({ source: "stooq", outcome: "succeeded", read: 2, inserted: 1, quarantined: 1 });
  });
  test("--fail-on-quarantine exits 4 when a row was quarantined", async () => {
    const r = await cli(["ingest", "--file", good, "--market", "WSE", "--store", `sqlite:${join(dir, "b.db")}`, "--fail-on-quarantine"]);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain("quarantined 1");
  });
  test("a missing file fails the run: exit 1", async () => {
    const r = await cli(["ingest", "--file", join(dir, "missing.csv"), "--store", `sqlite:${join(dir, "c.db")}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("file not found");
  });
  test("a bad flag value for the source is a config error naming the field: exit 3", async () => {
    const r = await cli(["ingest", "--file", good, "--market", "XYZ", "--store", `sqlite:${join(dir, "d.db")}`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`sources.stooq.market: expected ${marketChoices()}`);
  });
  test("a store that cannot be opened: exit 5", async () => {
    const blocked = join(dir, "blocked");
    mkdirSync(join(blocked, "x.db"), { recursive: true });
    const r = await cli(["ingest", "--file", good, "--market", "WSE", "--store", `sqlite:${join(blocked, "x.db")}`]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("cannot open the store");
  });
  test("a bare ticker with no market is quarantined with the reason", async () => {
    const r = await cli(["ingest", "--file", good, "--store", `sqlite:${join(dir, "e.db")}`, "--json"]);
    // Every row quarantined: nothing usable, so the quality gate fails the run (exit 4).
    expect(r.code).toBe(4);
    const [s] = JSON.parse(r.stdout);
    expect(s).toMatchObject({ outcome: "failed", belowMinQuality: true });
    expect(s.quarantined).toBe(2);
    expect(s.quality.rules).toEqual({ symbol: 2 });
  });
});

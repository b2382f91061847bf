// The typed API client (src/http/client): its generated types (api.ts) and the dashboard bundle
// (dashboard.js) are up to date, the dashboard's browser code type-checks, the client calls a
// Hono app in process with its bearer token and turns refusals into ApiError, and a drift between
// the document and its users fails `tsc`: a field and a parameter renamed in a copy of
// docs/openapi.json, types regenerated into a temp tree, and tsc refuses the dashboard and a test.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { API_TYPES_PATH, OPENAPI_JSON, renderApiTypes } from "../scripts/gen-api-client.ts";
import { DASHBOARD_BUNDLE, renderDashboard } from "../scripts/gen-dashboard.ts";
import { apiClient, ApiError, ok } from "../src/http/client/index.ts";
import { createApp } from "../src/http/app.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { ROOT, tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
/** tsc -p `project`: its exit code and its diagnostics, one a line. */
function tsc(project: string): { code: number; lines: string[] } {
  const p = Bun.spawnSync([process.execPath, TSC, "--noEmit", "--pretty", "false", "-p", project], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const out = `${p.stdout.toString()}${p.stderr.toString()}`;
  return { code: p.exitCode ?? 1, lines: out.split("\n").filter((l) => /error TS\d+/.test(l)) };
}

describe("generated files", () => {
  test("src/http/client/api.ts is up to date with docs/openapi.json (else run: bun scripts/gen-api-client.ts)", async () => {
    const stale = readFileSync(API_TYPES_PATH, "utf8") !== (await renderApiTypes());
    expect(stale ? "src/http/client/api.ts is stale: run bun scripts/gen-api-client.ts" : "up to date").toBe("up to date");
  });

  test("src/http/dashboard/dashboard.js is the bundle of page/*.ts (else run: bun scripts/gen-dashboard.ts)", async () => {
    const stale = readFileSync(DASHBOARD_BUNDLE, "utf8") !== (await renderDashboard());
    expect(stale ? "src/http/dashboard/dashboard.js is stale: run bun scripts/gen-dashboard.ts" : "up to date").toBe("up to date");
  });

  test("the dashboard's browser code type-checks against the DOM and the client (tsc -p src/http/dashboard/page)", () => {
    expect(tsc("src/http/dashboard/page").lines).toEqual([]);
  });
});

describe("the client", () => {
  const dir = tempDir("ticksync-client-");
  const TOKEN = "client-test-token-0123456789";
  let store: Store;
  let app: ReturnType<typeof createApp>;
  beforeAll(async () => {
    store = sqliteStore(`sqlite:${join(dir, "c.db")}`);
    await store.migrate();
    const run = await store.startRun({ kind: "ingest", source: "files" });
    await store.finishRun(run, { outcome: "succeeded", quality: null, inserted: 0, updated: 0, unchanged: 0, read: 0, quarantined: 0, fromTs: null, toTs: null });
    app = createApp({ store, metrics: ticksyncMetrics(), security: { tokens: [TOKEN], authReads: true, corsOrigins: [], maxBodyBytes: 1 << 20 } });
  });
  afterAll(async () => await store?.close());

  test("calls a Hono app in process with the bearer token, typed by the document", async () => {
    const api = apiClient({ app, token: TOKEN });
    const runs = await ok(api.GET("/api/runs", { params: { query: { limit: "5" } } }));
    expect(runs.data.map((r) => [r.kind, r.source, r.outcome])).toEqual([["ingest", "files", "succeeded"]]);
    expect(runs.next).toBeNull();
  });

  test("a token given as a function is read at each request (the dashboard's, which the user changes)", async () => {
    let token: string | undefined;
    const api = apiClient({ app, token: () => token });
    expect((await api.GET("/api/runs")).response.status).toBe(401);
    token = TOKEN;
    expect((await api.GET("/api/runs")).response.status).toBe(200);
  });

  test("a refusal is an ApiError with the status and the server's reason", async () => {
    const anonymous = apiClient({ app });
    const err = await ok(anonymous.GET("/api/runs")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(401);
    const missing = await ok(apiClient({ app, token: TOKEN }).POST("/api/jobs/{name}/run", { params: { path: { name: "nope" } } })).catch((e: unknown) => e);
    // No scheduler in this app: the route says so, in one line.
    expect(missing).toBeInstanceOf(ApiError);
    expect((missing as ApiError).message).toMatch(/^(404|501) \S/);
  });
});

// A drift: the document renames a field the dashboard and the tests read (a run's `stored`) and a
// query parameter they send (/api/runs' `limit`). The types are regenerated from that copy into a
// temp tree that mirrors the checkout (symlinks, but a copy of src/http/client with the drifted
// api.ts), and tsc must refuse exactly those uses, in the dashboard and in a test.
describe("a drift between the document and its users fails tsc", () => {
  const tmp = tempDir("ticksync-drift-");
  /** A directory of symlinks to `from`'s entries, except `keep`, which the caller fills. */
  function mirror(from: string, to: string, keep: string): void {
    mkdirSync(to, { recursive: true });
    for (const name of readdirSync(from)) if (name !== keep) symlinkSync(join(from, name), join(to, name));
  }
  beforeAll(async () => {
    const doc = JSON.parse(readFileSync(OPENAPI_JSON, "utf8"));
    const runs = doc.paths["/api/runs"].get;
    const row = runs.responses["200"].content["application/json"].schema.properties.data.items;
    row.properties.storedRows = row.properties.stored;
    delete row.properties.stored;
    row.required = row.required.map((f: string) => (f === "stored" ? "storedRows" : f));
    for (const p of runs.parameters) if (p.name === "limit") p.name = "max";
    mirror(ROOT, tmp, "src");
    mirror(join(ROOT, "src"), join(tmp, "src"), "http");
    mirror(join(ROOT, "src", "http"), join(tmp, "src", "http"), "client");
    cpSync(join(ROOT, "src", "http", "client"), join(tmp, "src", "http", "client"), { recursive: true });
    writeFileSync(join(tmp, "src", "http", "client", "api.ts"), await renderApiTypes(doc));
    // The symlinked files keep their place in the temp tree: their imports of the client reach the copy.
    const drift = (files: string[], lib?: string[]) => ({ extends: "./tsconfig.json", compilerOptions: { preserveSymlinks: true, ...(lib ? { lib, types: [] } : {}) }, include: [], files });
    writeFileSync(join(tmp, "tsconfig.page.json"), JSON.stringify(drift(["src/http/dashboard/page/dashboard.ts"], ["ESNext", "DOM", "DOM.Iterable"])));
    writeFileSync(join(tmp, "tsconfig.tests.json"), JSON.stringify(drift(["test/http.test.ts"])));
  });

  const FIELD = /error TS2339: Property 'stored' does not exist/;
  const PARAM = /error TS2353: .*'limit' does not exist/;
  /** Every error is one of the renamed names, in `file` (nothing else of the temp tree is broken), and each of `kinds` is there. */
  const expectOnlyDrift = (lines: string[], file: string, kinds: RegExp[]) => {
    for (const l of lines) expect(l).toMatch(new RegExp(`${file.replaceAll(".", "\\.")}\\(\\d+,\\d+\\): (${FIELD.source}|${PARAM.source})`));
    for (const k of kinds) expect(lines.some((l) => k.test(l))).toBe(true);
  };

  test("the dashboard", () => {
    const { code, lines } = tsc(join(tmp, "tsconfig.page.json"));
    expect(code).not.toBe(0);
    expectOnlyDrift(lines, "src/http/dashboard/page/panels.ts", [FIELD, PARAM]);
  });

  test("a test that calls the API through the client", () => {
    const { code, lines } = tsc(join(tmp, "tsconfig.tests.json"));
    expect(code).not.toBe(0);
    expectOnlyDrift(lines, "test/http.test.ts", [FIELD]);
  });
});

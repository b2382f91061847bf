// The API reference (GET /docs, src/http/api-docs.ts): its page names no CDN, Scalar's bundle comes
// from the server with a year's Cache-Control and an ETag (304 on If-None-Match, compressed when
// asked), the routes need no token even with authReads, and in headless Chromium with every request
// to anything but 127.0.0.1 blocked the page renders the API's title and lists its operations.
//
// /openapi.json is the HTTP document's route (another slice of issue #19): the app's own when it
// serves one, else TICKSYNC_TEST_OPENAPI (a document file), else a small stand-in (STAND_IN below)
// served in front of the app. The title and operations looked for are the document's.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from "node:zlib";
import { chromium, type Browser } from "playwright-core";
import { createApp } from "../src/http/app.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const exe = process.env.TICKSYNC_TEST_CHROMIUM || (existsSync("/usr/bin/chromium") ? "/usr/bin/chromium" : "");
if (!exe) {
  if (process.env.CI === "true") throw new Error("CI=true and no Chromium for the /docs page test (scripts/services/chromium.sh ensure installs it)");
  console.warn("WARNING: no Chromium (/usr/bin/chromium or TICKSYNC_TEST_CHROMIUM): the /docs page test is skipped; apt-get install -y chromium");
}
const inBrowser = exe ? test : test.skip;

const TOKEN = "api-docs-test-token-0123456789";
const TITLE = "ticksync stand-in API";
const STAND_IN = {
  openapi: "3.1.0",
  info: { title: TITLE, version: "0.0.0-test" },
  paths: {
    "/healthz": { get: { operationId: "getHealthz", summary: "Liveness probe", responses: { "200": { description: "alive" } } } },
    "/api/bars": { get: { operationId: "getBars", summary: "Stored bars of a series", responses: { "200": { description: "a page of bars" } } } },
  },
};

const dir = tempDir("ticksync-apidocs-");
let store: Store;
let server: ReturnType<typeof Bun.serve>;
let browser: Browser | undefined;
let url: string;

/** The document's title and the labels Scalar shows for two of its operations (summary, else the path). */
let title = TITLE;
let operations: string[] = [];

beforeAll(async () => {
  store = sqliteStore(`sqlite:${join(dir, "store.db")}`);
  await store.migrate();
  // Reads need a token: the reference's routes must still load without one.
  const app = createApp({ store, metrics: ticksyncMetrics(), version: "1.2.3-test", security: { tokens: [TOKEN], authReads: true, corsOrigins: [], maxBodyBytes: 1 << 20 } });
  const own = await app.request("/openapi.json");
  const document: any = own.ok ? await own.json() : process.env.TICKSYNC_TEST_OPENAPI ? JSON.parse(readFileSync(process.env.TICKSYNC_TEST_OPENAPI, "utf8")) : STAND_IN;
  title = document.info.title;
  // Scalar lists operations under their tags, the first tag's open: look for those, and every tag.
  const firstTag: string | undefined = document.tags?.[0]?.name;
  const ops = Object.entries(document.paths as Record<string, Record<string, { summary?: string; tags?: string[] }>>)
    .flatMap(([path, item]) => Object.values(item).map((op) => ({ label: op.summary ?? path, tag: op.tags?.[0] })))
    .filter((op) => firstTag === undefined || op.tag === firstTag)
    .map((op) => op.label);
  operations = [ops[0]!, ops[ops.length - 1]!, ...((document.tags ?? []) as { name: string }[]).map((t) => t.name)];
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (req, srv) => (!own.ok && new URL(req.url).pathname === "/openapi.json" ? Response.json(document) : app.fetch(req, srv)),
  });
  url = `http://127.0.0.1:${server.port}`;
  if (exe) browser = await chromium.launch({ executablePath: exe, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
});

afterAll(async () => {
  await browser?.close();
  server?.stop(true);
  await store?.close();
});

test("/docs names no CDN and loads Scalar's bundle from the server, without a token", async () => {
  const res = await fetch(`${url}/docs`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/html");
  const html = await res.text();
  const scripts = [...html.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]!);
  expect(scripts).toHaveLength(1);
  expect(scripts[0]).toMatch(/^\/docs\/scalar\.js\?v=scalar-1\.2\.3-test-[0-9a-z]+$/);
  // No absolute URL at all in the page: everything it loads is relative to this server.
  expect(html).not.toMatch(/https?:\/\//);
  expect(html).toContain("/openapi.json");
  expect(html).toContain("/asyncapi.json");
  // The AsyncAPI document is public too.
  expect((await fetch(`${url}/asyncapi.json`)).status).toBe(200);
  // Other reads still need the token.
  expect((await fetch(`${url}/api/symbols`)).status).toBe(401);
});

test("the bundle: a year's Cache-Control, an ETag answered with 304, the same bytes gzipped", async () => {
  const html = await (await fetch(`${url}/docs`)).text();
  const src = /<script[^>]*\bsrc="([^"]+)"/.exec(html)![1]!;
  const plain = await fetch(`${url}${src}`, { headers: { "Accept-Encoding": "identity" } });
  expect(plain.status).toBe(200);
  expect(plain.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
  expect(plain.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
  const etag = plain.headers.get("etag")!;
  expect(etag).toMatch(/^"scalar-1\.2\.3-test-[0-9a-z]+"$/);
  // The page's URL carries the tag: a new bundle is a new URL.
  expect(src).toContain(encodeURIComponent(etag.slice(1, -1)));
  const body = new Uint8Array(await plain.arrayBuffer());
  const onDisk = await Bun.file(join(import.meta.dir, "..", "node_modules", "@scalar", "api-reference", "dist", "browser", "standalone.js")).bytes();
  expect(body.length).toBe(onDisk.length);
  expect(Bun.hash(body)).toBe(Bun.hash(onDisk));
  expect((await fetch(`${url}${src}`, { headers: { "If-None-Match": etag } })).status).toBe(304);
  const gz = await fetch(`${url}${src}`, { headers: { "Accept-Encoding": "gzip" }, decompress: false });
  expect(gz.headers.get("content-encoding")).toBe("gzip");
  expect(gz.headers.get("etag")).toBe(`${etag.slice(0, -1)}-gzip"`);
  expect((await fetch(`${url}${src}`, { headers: { "Accept-Encoding": "gzip", "If-None-Match": gz.headers.get("etag")! } })).status).toBe(304);
  const packed = new Uint8Array(await gz.arrayBuffer());
  expect(packed.length).toBeLessThan(body.length / 2);
  expect(Bun.hash(gunzipSync(packed))).toBe(Bun.hash(onDisk));
  // Brotli and zstd too, each the same bytes; asked for at once, the event loop still answers.
  const t0 = performance.now();
  const [br, zs, probe] = await Promise.all([
    fetch(`${url}${src}`, { headers: { "Accept-Encoding": "br" }, decompress: false }),
    fetch(`${url}${src}`, { headers: { "Accept-Encoding": "zstd" }, decompress: false }),
    Bun.sleep(20).then(() => fetch(`${url}/healthz`).then(() => performance.now() - t0)),
  ]);
  expect(probe).toBeLessThan(1000);
  expect(br.headers.get("content-encoding")).toBe("br");
  expect(Bun.hash(brotliDecompressSync(new Uint8Array(await br.arrayBuffer())))).toBe(Bun.hash(onDisk));
  expect(zs.headers.get("content-encoding")).toBe("zstd");
  expect(Bun.hash(zstdDecompressSync(new Uint8Array(await zs.arrayBuffer())))).toBe(Bun.hash(onDisk));
});

inBrowser("in Chromium, offline but for 127.0.0.1, the page renders the API's title and its operations", async () => {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  const blocked: string[] = [];
  const errors: string[] = [];
  await context.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === "127.0.0.1" || u.protocol === "data:" || u.protocol === "blob:") return route.continue();
    blocked.push(u.href);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${url}/docs`);
  await waitFor(async () => (await page.locator("h1").allTextContents()).some((t) => t.includes(title)), 30_000, "the API's title");
  await waitFor(async () => (await Promise.all(operations.map((o) => page.getByText(o, { exact: true }).count()))).every((n) => n > 0), 15_000, `the operations ${operations.join(", ")}`);
  // The stream's document is the page's other source: its channels render from /asyncapi.json.
  expect(await page.content()).toContain("Stream protocols (AsyncAPI)");
  await page.goto(`${url}/docs?api=stream`);
  await waitFor(async () => (await page.locator("h1").allTextContents()).some((t) => t.includes("ticksync stream")), 30_000, "the AsyncAPI document's title");
  for (const channel of ["WebSocket", "Server-Sent Events", "Compatibility protocol (on the main server)"]) expect(await page.getByText(channel, { exact: true }).count()).toBeGreaterThan(0);
  await page.screenshot({ path: join(import.meta.dir, "..", "test-artifacts", "api-docs.png") });
  expect(errors).toEqual([]);
  // What the page tried to load elsewhere (nothing should be needed; it rendered without it).
  if (blocked.length) console.warn(`/docs asked for (blocked): ${[...new Set(blocked)].slice(0, 10).join(", ")}`);
  expect(blocked.filter((b) => /cdn|jsdelivr|unpkg|fonts\./.test(b))).toEqual([]);
  await context.close();
});

// Writes docs/openapi.json, the OpenAPI 3.1 document of the HTTP API, from an app with every
// optional route mounted (the live feed, /api/ws/legacy) and the default page size: the same
// document GET /openapi.json serves (src/http/openapi.ts). Other tools generate a typed client
// from it; test/openapi.test.ts fails when the committed file is stale.
// Run: bun scripts/gen-openapi.ts
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../src/http/app.ts";
import { openApiDocument } from "../src/http/openapi.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { createHub } from "../src/stream/hub.ts";
import { defaultStreamConfig } from "../src/stream/config.ts";

export const OPENAPI_PATH = join(import.meta.dir, "..", "docs", "openapi.json");

/** The app the document is made from: an in-memory store (never read), every optional route on. */
export async function fullApp() {
  const store = sqliteStore("sqlite::memory:");
  const base = defaultStreamConfig();
  const config = { ...base, compat: { ...base.compat, path: true } };
  const hub = createHub({ store, config });
  const app = createApp({ store, metrics: ticksyncMetrics(), stream: { hub, config } });
  return { app, close: async () => (await hub.stop(), await store.close()) };
}

/** docs/openapi.json's text: the document, two-space indented, with a final newline. */
export async function renderOpenApi(): Promise<string> {
  const { app, close } = await fullApp();
  try {
    return `${JSON.stringify(await openApiDocument(app), null, 2)}\n`;
  } finally {
    await close();
  }
}

if (import.meta.main) {
  writeFileSync(OPENAPI_PATH, await renderOpenApi());
  console.log(`wrote ${OPENAPI_PATH}`);
}

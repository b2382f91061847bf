// The dashboard's files, imported as text so `bun build --compile` embeds them in the executable:
// the page, its stylesheet and script, and lightweight-charts' standalone build (from
// node_modules; its package exports do not list that file, hence the path). Nothing is read from
// disk at run time and nothing is built: the script is the committed bundle of page/*.ts
// (scripts/gen-dashboard.ts), which calls the API through the typed client (src/http/client).
import { Hono } from "hono";
import indexHtml from "./index.html" with { type: "text" };
import css from "./dashboard.css" with { type: "text" };
import script from "./dashboard.js" with { type: "text" };
import lightweightCharts from "../../../node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js" with { type: "text" };

// A Map, not an object: a name such as `constructor` or `__proto__` must find nothing.
const ASSETS = new Map<string, { body: string; type: string }>([
  ["dashboard.css", { body: css, type: "text/css; charset=utf-8" }],
  ["dashboard.js", { body: script, type: "text/javascript; charset=utf-8" }],
  ["lightweight-charts.js", { body: lightweightCharts, type: "text/javascript; charset=utf-8" }],
]);

/** `/` and `/assets/*`. Assets are named with the version in their query, so they may be cached. */
export function dashboardRoutes(version: string): Hono {
  const app = new Hono();
  // bun-types type an .html import as an HTML bundle; with type "text" it is the file's text.
  const html = (indexHtml as unknown as string).replaceAll("__VERSION__", version.replace(/[^\w.+-]/g, ""));
  const etags = new Map([...ASSETS].map(([name, a]) => [name, `"${Bun.hash(a.body).toString(36)}"`]));
  app.get("/", (c) => c.html(html, 200, { "Cache-Control": "no-cache" }));
  app.get("/assets/:name", (c) => {
    const name = c.req.param("name");
    const asset = ASSETS.get(name);
    if (!asset) return c.json({ error: "not found", path: c.req.path }, 404);
    const etag = etags.get(name)!;
    if (c.req.header("if-none-match") === etag) return c.body(null, 304, { ETag: etag });
    return c.body(asset.body, 200, { "Content-Type": asset.type, ETag: etag, "Cache-Control": "public, max-age=3600" });
  });
  return app;
}

// The API reference: GET /docs renders /openapi.json (the HTTP API) and /asyncapi.json (the stream
// protocols, src/http/asyncapi.ts) with Scalar's Hono middleware, working offline: Scalar's browser
// bundle is embedded in the executable (a `type: "file"` import) and served from /docs/scalar.js,
// so the page names no CDN. The pages hold no data: public, like the probes.
import { Hono, type Context } from "hono";
import { brotliCompressSync, zstdCompressSync } from "node:zlib";
import { Scalar } from "@scalar/hono-api-reference";
import scalarBundlePath from "../../node_modules/@scalar/api-reference/dist/browser/standalone.js" with { type: "file" };
import { negotiateEncoding } from "./representation.ts";
import { asyncApiDocument } from "./asyncapi.ts";

/**
 * The bundle, read at the first request for it or the page (4.9 MB: not at start-up, nor by a
 * server whose docs nobody opens), its ETag (a hash of its bytes), and each encoding asked for
 * (at most three, each made once).
 */
function scalarBundle(version: string) {
  let loaded: Promise<{ bytes: Uint8Array<ArrayBuffer>; tag: string }> | undefined;
  const encoded = new Map<string, Uint8Array<ArrayBuffer>>();
  const load = () =>
    (loaded ??= Bun.file(scalarBundlePath)
      .bytes()
      .then((bytes) => ({ bytes, tag: `"scalar-${version.replace(/[^\w.+-]/g, "")}-${Bun.hash.xxHash3(bytes).toString(36)}"` })));
  return {
    load,
    async encoded(encoding: "zstd" | "br" | "gzip"): Promise<Uint8Array<ArrayBuffer>> {
      let e = encoded.get(encoding);
      if (!e) {
        const { bytes } = await load();
        // Static text, compressed once: ~1.2 MB instead of 4.9 for a fraction of a second.
        e = (encoding === "gzip" ? Bun.gzipSync(bytes, { level: 9 }) : encoding === "br" ? brotliCompressSync(bytes) : zstdCompressSync(bytes)) as Uint8Array<ArrayBuffer>;
        encoded.set(encoding, e);
      }
      return e;
    },
  };
}

/** The paths these routes serve, for the security middleware's list of public paths. */
export const apiDocsPath = (p: string) => p === "/docs" || p === "/docs/" || p.startsWith("/docs/") || p === "/asyncapi.json";

/** `/docs`, `/docs/scalar.js` and `/asyncapi.json`. */
export function apiDocsRoutes(version: string): Hono {
  const app = new Hono();
  const bundle = scalarBundle(version);
  const asyncapi = asyncApiDocument(version);
  const page = async (c: Context) => {
    const { tag } = await bundle.load();
    // The bundle's URL changes with its bytes, so it may be kept a year.
    const render = Scalar({
      pageTitle: "ticksync API reference",
      // A URL given as `cdn` makes Scalar load its single-file bundle from there: ours.
      cdn: `/docs/scalar.js?v=${encodeURIComponent(tag.slice(1, -1))}`,
      sources: [
        { title: "HTTP API (OpenAPI)", slug: "http", url: "/openapi.json", default: true },
        { title: "Stream protocols (AsyncAPI)", slug: "stream", url: "/asyncapi.json" },
      ],
      // Offline and on its own: no web fonts, no telemetry, no hosted AI agent or MCP, no
      // developer toolbar (it offers Scalar's hosted services).
      withDefaultFonts: false,
      telemetry: false,
      agent: { disabled: true },
      mcp: { disabled: true },
      showDeveloperTools: "never",
    });
    const res = (await render(c, async () => {})) as Response;
    res.headers.set("Cache-Control", "no-cache");
    return res;
  };
  app.get("/docs", page);
  app.get("/docs/", page);
  app.get("/docs/scalar.js", async (c) => {
    const { bytes, tag } = await bundle.load();
    const headers = { ETag: tag, "Cache-Control": "public, max-age=31536000, immutable", Vary: "Accept-Encoding" };
    if (c.req.header("if-none-match")?.includes(tag)) return c.body(null, 304, headers);
    const encoding = negotiateEncoding(c.req.header("accept-encoding"));
    const type = { "Content-Type": "text/javascript; charset=utf-8" };
    if (!encoding) return c.body(bytes, 200, { ...headers, ...type });
    return c.body(await bundle.encoded(encoding), 200, { ...headers, ...type, "Content-Encoding": encoding });
  });
  app.get("/asyncapi.json", (c) => c.json(asyncapi(new URL(c.req.url).host), 200, { "Cache-Control": "no-cache" }));
  return app;
}

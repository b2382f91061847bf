// The API reference: GET /docs renders /openapi.json (the HTTP API) and /asyncapi.json (the stream
// protocols, src/http/asyncapi.ts) with Scalar's Hono middleware, working offline: Scalar's browser
// bundle is embedded in the executable (a `type: "file"` import) and served from /docs/scalar.js,
// so the page names no CDN. The pages hold no data: public, like the probes.
import { Hono, type Context } from "hono";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { Scalar } from "@scalar/hono-api-reference";
import scalarBundlePath from "../../node_modules/@scalar/api-reference/dist/browser/standalone.js" with { type: "file" };
import { negotiateEncoding } from "./representation.ts";
import { asyncApiDocument } from "./asyncapi.ts";
import { describe, json, textBody } from "./openapi.ts";
import * as v from "valibot";

type Encoding = "zstd" | "br" | "gzip";
const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);
const zstd = promisify(zlib.zstdCompress);

/**
 * The bundle, read at the first request for it or the page (4.9 MB: not at start-up, nor by a
 * server whose docs nobody opens), its ETag (a hash of its bytes), and each encoding asked for
 * (at most three, each made once).
 */
function scalarBundle(version: string) {
  let loaded: Promise<{ bytes: Uint8Array<ArrayBuffer>; tag: string }> | undefined;
  const encoded = new Map<Encoding, Promise<Uint8Array<ArrayBuffer>>>();
  const load = () =>
    (loaded ??= Bun.file(scalarBundlePath)
      .bytes()
      .then((bytes) => ({ bytes, tag: `"scalar-${version.replace(/[^\w.+-]/g, "")}-${Bun.hash.xxHash3(bytes).toString(36)}"` })));
  return {
    load,
    /** Compressed once, on zlib's thread pool (brotli of 4.9 MB takes seconds: never on the event loop). */
    encoded(encoding: Encoding): Promise<Uint8Array<ArrayBuffer>> {
      let e = encoded.get(encoding);
      if (!e) {
        e = load().then(({ bytes }) => {
          if (encoding === "gzip") return gzip(bytes, { level: 9 });
          if (encoding === "br") return brotli(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 9, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } });
          return zstd(bytes);
        }) as Promise<Uint8Array<ArrayBuffer>>;
        encoded.set(encoding, e);
      }
      return e;
    },
  };
}

/** The paths these routes serve, for the security middleware's list of public paths. */
export const apiDocsPath = (p: string) => p === "/docs" || p.startsWith("/docs/") || p === "/asyncapi.json";

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
  const pageDoc = describe({ summary: "The API reference: this document and the stream's AsyncAPI document, rendered (works offline)", tags: ["meta"], open: "page", responses: { 200: { description: "the page", content: { "text/html": textBody("the API reference") } } } });
  app.get("/docs", pageDoc, page);
  const slashDoc = describe({ summary: "/docs with a trailing slash: redirects to /docs", tags: ["meta"], open: "page", operationId: "getDocsSlash", responses: { 301: { description: "Moved Permanently: Location /docs (the query kept)" } } });
  app.get("/docs/", slashDoc, (c) => c.redirect(`/docs${new URL(c.req.url).search}`, 301));
  const bundleDoc = describe({
    summary: "The API reference's script (Scalar's browser bundle, embedded in the executable)",
    tags: ["meta"],
    open: "page",
    responses: { 200: { description: "the script (cached a year: its URL changes with its bytes)", content: { "text/javascript": textBody("Scalar's bundle") } }, 304: { description: "Not Modified: If-None-Match names its ETag" } },
  });
  app.get("/docs/scalar.js", bundleDoc, async (c) => {
    const { bytes, tag } = await bundle.load();
    const encoding = negotiateEncoding(c.req.header("accept-encoding"));
    // Each encoding its own strong tag (as bar pages' are: src/http/representation.ts); any of them matches.
    const headers = { ETag: encoding ? `${tag.slice(0, -1)}-${encoding}"` : tag, "Cache-Control": "public, max-age=31536000, immutable", Vary: "Accept-Encoding" };
    if (c.req.header("if-none-match")?.includes(tag.slice(0, -1))) return c.body(null, 304, headers);
    const type = { "Content-Type": "text/javascript; charset=utf-8" };
    if (!encoding) return c.body(bytes, 200, { ...headers, ...type });
    return c.body(await bundle.encoded(encoding), 200, { ...headers, ...type, "Content-Encoding": encoding });
  });
  const asyncDoc = describe({ summary: "The AsyncAPI 3.0 document of the stream protocols (WebSocket, SSE, the compatibility protocol)", tags: ["meta"], open: "page", responses: { 200: json(v.record(v.string(), v.unknown()), "the document") } });
  app.get("/asyncapi.json", asyncDoc, (c) => c.json(asyncapi(new URL(c.req.url).host), 200, { "Cache-Control": "no-cache" }));
  return app;
}

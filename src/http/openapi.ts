// The OpenAPI 3.1 document of the HTTP API (GET /openapi.json; docs/openapi.json is a copy,
// scripts/gen-openapi.ts). hono-openapi makes it from the routes themselves: `query(Schema)` both
// validates a route's query and documents its parameters (the input side of the valibot pipes:
// query values arrive as strings), `describe()` names its responses by the valibot schemas its
// handler's bodies satisfy. What the security middleware enforces is added from the route table:
// who may call (a token's role, requireScope's declaration) and the answers it gives (401/403/429).
import type { Context, Hono } from "hono";
import { describeRoute, generateSpecs, resolver, validator } from "hono-openapi";
import { toJsonSchema } from "@valibot/to-json-schema";
import type { OpenAPIV3_1 } from "openapi-types";
import * as v from "valibot";
import { badRequest } from "./query.ts";
import { declaredScope } from "./security.ts";
import { ErrorBody, InvalidBody, NotFoundBody } from "./schemas/common.ts";

/** The API's version (the document's info.version): raised when a route or a body changes incompatibly. */
export const API_VERSION = "1.0.0";

type Schema = v.GenericSchema;
type ResponseSpec = NonNullable<Parameters<typeof describeRoute>[0]["responses"]>[string];

/** Validates a route's query with `schema` (a 400 as src/http/query.ts answers it) and documents its parameters. */
export const query = <S extends Schema>(schema: S) =>
  validator("query", schema, (r, c: Context) => (r.success ? undefined : badRequest(c, r.error)), { options: { typeMode: "input" } });

const OUTPUT = { options: { typeMode: "output" } };

/** A JSON response of `schema`. */
export const json = (schema: Schema, description: string, headers?: Record<string, OpenAPIV3_1.HeaderObject>): ResponseSpec => ({
  description,
  ...(headers ? { headers } : {}),
  content: { "application/json": { schema: resolver(schema, OUTPUT) } },
});

/** A media type object of `schema` (for `content`). */
export const schemaOf = (schema: Schema) => ({ schema: resolver(schema, OUTPUT) });
/** A text or binary body of another format. */
export const textBody = (description: string) => ({ schema: { type: "string", description } as OpenAPIV3_1.SchemaObject });
export const binaryBody = (description: string) => ({ schema: { type: "string", contentMediaType: "application/octet-stream", description } as OpenAPIV3_1.SchemaObject });
/** A media type as a `content` key: without its parameters. */
export const mediaType = (contentType: string) => contentType.split(";")[0]!.trim();

/** An error answer: `{ error, message? }`. */
export const error = (description: string, schema: Schema = ErrorBody) => json(schema, description);

/** A JSON request body of `schema` (`required`: a request without one is refused). */
export const body = (schema: Schema, description: string, required = false) => ({ required, description, content: { "application/json": { schema: resolver(schema, { options: { typeMode: "input" } }) } } });

/** Query parameters of a schema a route does not validate itself (the stream's, parsed in src/stream/). */
export function queryParameters(schema: v.ObjectSchema<v.ObjectEntries, undefined>): OpenAPIV3_1.ParameterObject[] {
  const js = toJsonSchema(schema, { typeMode: "input", errorMode: "ignore" }) as { properties?: Record<string, { description?: string }>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => {
    const { description, ...rest } = s;
    return { in: "query", name, ...(js.required?.includes(name) ? { required: true } : {}), ...(description ? { description } : {}), schema: rest };
  });
}

export const ref = (name: string) => ({ $ref: `#/components/responses/${name}` }) as unknown as ResponseSpec;

/** Who may call a route without the security middleware's token rule. */
type Open = "probe" | "page";

export type RouteDoc = {
  summary: string;
  description?: string;
  tags: string[];
  /** probe: no token, no rate limit (/healthz, /readyz, /openapi.json); page: no token (the dashboard's files). */
  open?: Open;
  responses: Record<number, ResponseSpec>;
  requestBody?: ReturnType<typeof body>;
  parameters?: OpenAPIV3_1.ParameterObject[];
  /** Only where the one made from the method and path would repeat another's (`/docs` and `/docs/`). */
  operationId?: string;
};

/** A route's documentation, with the answers every route may give (the query bound, Host check, token rule, rate limit). */
export function describe(d: RouteDoc) {
  const responses: Record<string, ResponseSpec> = { 400: ref("BadRequest"), 403: ref("Forbidden"), 500: ref("InternalError") };
  if (d.open !== "probe") responses[429] = ref("TooManyRequests");
  if (d.open === undefined) responses[401] = ref("Unauthorized");
  for (const [k, r] of Object.entries(d.responses)) responses[k] = r;
  return describeRoute({
    summary: d.summary,
    ...(d.description ? { description: d.description } : {}),
    tags: d.tags,
    responses,
    ...(d.open ? { security: [] } : {}),
    ...(d.requestBody ? { requestBody: d.requestBody } : {}),
    ...(d.parameters ? { parameters: d.parameters } : {}),
    ...(d.operationId ? { operationId: d.operationId } : {}),
  });
}

/** Headers of a cached page (/api/bars, /api/indicators). */
export const PAGE_HEADERS: Record<string, OpenAPIV3_1.HeaderObject> = {
  ETag: { description: "strong tag of the body's bytes (the encoding a suffix)", schema: { type: "string" } },
  "Cache-Control": { description: "max-age for a page made only of closed sessions, else no-cache", schema: { type: "string" } },
  "X-Ticksync-Next": { description: "non-JSON formats: the `next` cursor of the page", schema: { type: "string" } },
};
export const NOT_MODIFIED: ResponseSpec = { description: "Not Modified: If-None-Match names the page's ETag" };

const TAGS = [
  { name: "probes", description: "Liveness and readiness; no token ever." },
  { name: "data", description: "Stored bars, indicators, symbols, gaps and freshness." },
  { name: "stream", description: "The live feed (WebSocket, SSE) and bulk replay; the protocols are docs/stream.md's." },
  { name: "operations", description: "Runs, jobs, quarantine, sinks, alerts, health and metrics." },
  { name: "monitoring", description: "The replaced monitoring service's routes, as aliases over the native ones." },
  { name: "meta", description: "The dashboard and this document." },
];

const DESCRIPTION = `ticksync's HTTP API. Reads need a token only with \`server.authReads\`; every mutation needs a
token whose role reaches the operation's \`x-ticksync-role\` (read < operate < admin), or, with no
server tokens configured, a caller on the same machine. Tokens go in \`Authorization: Bearer <token>\`
(or \`?token=\`, for browsers' WebSocket and EventSource). Requests are rate limited per token, or per
address without one (429 with Retry-After). docs/api.md tells how this document is made.`;

const RATE_HEADERS: Record<string, OpenAPIV3_1.HeaderObject> = {
  "Retry-After": { description: "seconds until a request is allowed again", schema: { type: "integer" } },
  "RateLimit-Limit": { schema: { type: "integer" } },
  "RateLimit-Remaining": { schema: { type: "integer" } },
  "RateLimit-Reset": { schema: { type: "integer" } },
};

const documentation: NonNullable<NonNullable<Parameters<typeof generateSpecs>[1]>["documentation"]> = {
  info: { title: "ticksync HTTP API", version: API_VERSION, description: DESCRIPTION },
  // Relative: the server that serves the document (a copy of docs/openapi.json: wherever ticksync runs).
  servers: [{ url: "/", description: "the ticksync server that serves this document" }],
  tags: TAGS,
  components: {
    securitySchemes: {
      bearer: { type: "http", scheme: "bearer", description: "an API token (server.tokens, [[server.token]]; [stream] tokens open /api/ws and /api/stream only)" },
      tokenQuery: { type: "apiKey", in: "query", name: "token", description: "the same token as a query parameter, for clients that cannot set headers" },
    },
    responses: {
      BadRequest: json(InvalidBody, "Bad Request: the query (or body) is invalid, or over a bound (docs/operations.md, HTTP limits)"),
      Unauthorized: json(ErrorBody, "Unauthorized: a token is needed, or the one given is not valid", { "WWW-Authenticate": { schema: { type: "string" } } }),
      Forbidden: json(ErrorBody, "Forbidden: the token's role is too low, the Host does not name this server, a cross-origin mutation, or no tokens configured and the caller is not on this machine"),
      TooManyRequests: json(ErrorBody, "Too Many Requests: over the rate limit of the token or address", RATE_HEADERS),
      InternalError: json(ErrorBody, "Internal Server Error: one line, secrets redacted"),
      NotFound: json(NotFoundBody, "Not Found"),
      PayloadTooLarge: json(ErrorBody, "Payload Too Large: the body is over server.maxBodyBytes"),
      UnsupportedMediaType: json(ErrorBody, "Unsupported Media Type: request bodies must be application/json"),
    },
  },
};

const OPTIONAL_TOKEN: OpenAPIV3_1.SecurityRequirementObject[] = [{}, { bearer: [] }, { tokenQuery: [] }];
const TOKEN: OpenAPIV3_1.SecurityRequirementObject[] = [{ bearer: [] }, { tokenQuery: [] }];
const MUTATING = new Set(["post", "put", "patch", "delete"]);
const toOpenApiPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?\??/g, "{$1}");

type Operation = OpenAPIV3_1.OperationObject & { "x-ticksync-role"?: string };

/**
 * The document of `app`'s routes. Reads take an optional token (needed with server.authReads);
 * mutations need one, of the role their route declares (requireScope), operate at least.
 */
export async function openApiDocument(app: Hono): Promise<OpenAPIV3_1.Document> {
  const doc = (await generateSpecs(app, { documentation, excludeStaticFile: false, defaultValidationErrorResponse: false })) as OpenAPIV3_1.Document;
  const scopes = new Map<string, string>();
  for (const r of app.routes) {
    const scope = declaredScope(r.handler);
    if (scope !== undefined) scopes.set(`${r.method.toLowerCase()} ${toOpenApiPath(r.path)}`, typeof scope === "string" ? scope : "operate");
  }
  for (const [path, item] of Object.entries(doc.paths ?? {}))
    for (const [method, op] of Object.entries(item ?? {}) as [string, Operation][]) {
      if (op.security?.length === 0) continue;
      const mutating = MUTATING.has(method);
      op.security = mutating ? TOKEN : OPTIONAL_TOKEN;
      op["x-ticksync-role"] = scopes.get(`${method} ${path}`) ?? (mutating ? "operate" : "read");
      if (mutating) {
        op.responses!["413"] ??= ref("PayloadTooLarge") as never;
        op.responses!["415"] ??= ref("UnsupportedMediaType") as never;
      }
    }
  return doc;
}

/** GET /openapi.json: `app`'s document, made on the first request and kept (a failure is retried on the next). */
export function openApiRoute(app: Hono) {
  let made: Promise<OpenAPIV3_1.Document> | undefined;
  return async (c: Context) => {
    made ??= openApiDocument(app).catch((e) => {
      made = undefined;
      throw e;
    });
    return c.json(await made, 200, { "Cache-Control": "no-cache" });
  };
}

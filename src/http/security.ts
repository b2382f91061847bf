// Who may call what. Every mutating request (POST, PUT, PATCH, DELETE) needs an API token from
// `server.tokens`; with no tokens configured only callers on this machine (loopback) may mutate,
// which keeps `npm start` usable and a service exposed on a network closed. With
// `server.authReads` the reads need a token too (the probes /healthz and /readyz never do), by
// the same rule (`access`) for the HTTP routes, the WebSocket and the SSE feed.
// Tokens are compared as SHA-256 digests in constant time. Request bodies are capped; CORS is
// closed unless origins are listed.
//
// Browsers: a loopback caller may be a browser showing another site's page. So the Host header
// must name this server (DNS rebinding), mutations and WebSocket upgrades from another origin are
// refused (cross-site request forgery, WebSocket hijacking), and mutation bodies must be JSON (a
// type another origin cannot send without a CORS preflight, which is closed).
import type { Context, MiddlewareHandler } from "hono";
import { getConnInfo } from "hono/bun";
import { cors } from "hono/cors";
import { bodyLimit } from "hono/body-limit";
import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";

export type SecurityConfig = {
  tokens: string[];
  authReads: boolean;
  corsOrigins: string[];
  maxBodyBytes: number;
  /** The address the server is bound to (its name is a valid Host too). */
  host?: string;
  /** Host names besides loopback ones and IP addresses that name this server (`server.allowedHosts`). */
  allowedHosts?: string[];
};

const digest = (s: string) => createHash("sha256").update(s).digest();
const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const OPEN = new Set(["/healthz", "/readyz"]);

/** The token a request carries: `Authorization: Bearer …`, or `?token=` (browsers' WebSocket and EventSource). */
export function requestToken(c: Context): string | null {
  return c.req.header("authorization")?.match(/^Bearer\s+(\S+)\s*$/i)?.[1] ?? c.req.query("token") ?? null;
}

export function tokenMatches(known: Buffer[], given: string | null): boolean {
  if (!given) return false;
  const d = digest(given);
  let ok = false;
  for (const k of known) ok = timingSafeEqual(k, d) || ok;
  return ok;
}

/** The peer is this machine. The socket's address only: X-Forwarded-For and the like are never trusted. */
export function isLoopback(c: Context): boolean {
  try {
    const a = getConnInfo(c).remote.address ?? "";
    return a === "::1" || a.startsWith("127.") || a.startsWith("::ffff:127.");
  } catch {
    // Not served by Bun (app.request in-process): there is no network peer.
    return true;
  }
}

/**
 * The one access rule, for reads (where `required`: authReads, or stream tokens) and mutations
 * (always required): no tokens known → this machine only; else a known token. null: let it through.
 */
function access(c: Context, known: Buffer[], required: boolean, realm: string): Response | null {
  if (!required) return null;
  if (known.length === 0) {
    if (isLoopback(c)) return null;
    return c.json({ error: "forbidden", message: "no API tokens are configured (server.tokens): only callers on this machine may do this" }, 403);
  }
  const given = requestToken(c);
  if (tokenMatches(known, given)) return null;
  c.header("WWW-Authenticate", `Bearer realm="${realm}"`);
  return c.json({ error: "unauthorized", message: given ? "the token is not valid" : "a token is required: Authorization: Bearer <token> or ?token=<token>" }, 401);
}

/**
 * /api/ws and /api/stream: the read rule with the stream's own tokens. They need a token when
 * `[stream] tokens` are set (any of those) or with authReads (those or the server's); with
 * authReads and no token anywhere, this machine only, as every other read.
 */
export function readGuard(cfg: SecurityConfig, streamTokens: string[]): MiddlewareHandler {
  const known = [...streamTokens, ...(cfg.authReads ? cfg.tokens : [])].map(digest);
  const required = cfg.authReads || streamTokens.length > 0;
  return async (c, next) => access(c, known, required, "ticksync stream") ?? next();
}

const hostName = (h: string) => {
  const name = h.startsWith("[") ? h.slice(0, h.indexOf("]") + 1) : h.replace(/:\d*$/, "");
  return name.toLowerCase().replace(/\.$/, "");
};

/**
 * Host names this server answers to: IP addresses (a rebinding attack needs a name it controls),
 * localhost and *.localhost (browsers resolve them to loopback themselves), the bound name, and
 * `server.allowedHosts` (".example.com" for the domain and its subdomains).
 */
export function hostAllowed(host: string, cfg: Pick<SecurityConfig, "host" | "allowedHosts">): boolean {
  const name = hostName(host);
  if (!name) return false;
  const bare = name.startsWith("[") ? name.slice(1, -1) : name;
  if (isIP(bare) !== 0) return true;
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  if (cfg.host && hostName(cfg.host) === name) return true;
  for (const a of cfg.allowedHosts ?? []) {
    const allowed = a.toLowerCase().replace(/\.$/, "");
    if (allowed === name || (allowed.startsWith(".") && (name === allowed.slice(1) || name.endsWith(allowed)))) return true;
  }
  return false;
}

/** Why a browser request comes from another origin than this server's (null: it does not, or it is not from a browser). */
function foreignOrigin(c: Context, host: string, corsOrigins: string[]): string | null {
  const origin = c.req.header("origin");
  if (origin !== undefined) {
    if (corsOrigins.includes(origin)) return null;
    let same = false;
    try {
      same = new URL(origin).host === host.toLowerCase();
    } catch {}
    return same ? null : `requests from origin ${origin.slice(0, 100)} may not change anything here`;
  }
  // Fetch metadata without Origin (older browsers on some requests): same-site is another port or
  // subdomain, still another origin.
  const site = c.req.header("sec-fetch-site");
  if (site === "cross-site" || site === "same-site") return `${site} requests may not change anything here`;
  return null;
}

const isJson = (type: string) => /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type);

/** A mutation's body is JSON: no body, or Content-Type application/json. */
function bodyTypeOk(c: Context): boolean {
  const type = c.req.header("content-type");
  if (type !== undefined) return isJson(type);
  const length = c.req.header("content-length");
  return c.req.header("transfer-encoding") === undefined && (length === undefined || length === "0");
}

export function securityMiddleware(cfg: SecurityConfig, opts: { skip?: (path: string) => boolean } = {}): MiddlewareHandler[] {
  const known = cfg.tokens.map(digest);
  // Our own check rather than hono/csrf: that one refuses a POST with neither Origin nor a JSON
  // type (curl, scripts), trusts the Host header for "same origin" (DNS rebinding controls it),
  // and does not look at WebSocket upgrades.
  const origin: MiddlewareHandler = async (c, next) => {
    const host = c.req.header("host") ?? new URL(c.req.url).host;
    if (!hostAllowed(host, cfg))
      return c.json({ error: "forbidden", message: `Host ${JSON.stringify(host.slice(0, 100))} does not name this server: add it to server.allowedHosts` }, 403);
    const upgrade = c.req.header("upgrade")?.toLowerCase() === "websocket";
    if (MUTATING.has(c.req.method) || upgrade) {
      const why = foreignOrigin(c, host, cfg.corsOrigins);
      if (why) return c.json({ error: "forbidden", message: why }, 403);
    }
    return next();
  };
  const auth: MiddlewareHandler = async (c, next) => {
    if (OPEN.has(c.req.path) || opts.skip?.(c.req.path)) return next();
    const mutating = MUTATING.has(c.req.method);
    return access(c, known, mutating || cfg.authReads, "ticksync") ?? next();
  };
  const json: MiddlewareHandler = async (c, next) => {
    if (!MUTATING.has(c.req.method) || bodyTypeOk(c)) return next();
    return c.json({ error: "unsupported media type", message: "request bodies must be JSON: Content-Type: application/json" }, 415);
  };
  const limit: MiddlewareHandler = bodyLimit({
    maxSize: cfg.maxBodyBytes,
    onError: (c) => c.json({ error: "payload too large", message: `request bodies are limited to ${cfg.maxBodyBytes} bytes` }, 413),
  });
  const headers: MiddlewareHandler = async (c, next) => {
    await next();
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    c.header("X-Frame-Options", "DENY");
  };
  const list: MiddlewareHandler[] = [headers, origin];
  // No CORS headers at all unless origins are listed: browsers keep other sites out.
  if (cfg.corsOrigins.length) list.push(cors({ origin: cfg.corsOrigins, allowHeaders: ["Authorization", "Content-Type", "Last-Event-ID"], allowMethods: ["GET", "POST", "OPTIONS"], maxAge: 600 }));
  list.push(auth, json, async (c, next) => (MUTATING.has(c.req.method) ? limit(c, next) : next()));
  return list;
}

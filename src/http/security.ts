// Who may call what. Every mutating request (POST, PUT, PATCH, DELETE) needs an API token; with
// no server tokens configured only callers on this machine (loopback) may mutate, which keeps
// `npm start` usable and a service exposed on a network closed. With `server.authReads` the reads
// need a token too (the probes /healthz and /readyz never do), by the same rule (`access`) for the
// HTTP routes, the WebSocket and the SSE feed.
// Tokens have roles (read < operate < admin; `server.tokens` entries are admin, `[stream] tokens`
// open the live feed only); a request needs the scope its route declares (`requireScope`), at
// least read for a read and operate for a mutation. Requests are rate limited per token, or per
// address without one (src/http/rate-limit.ts). Tokens are compared as SHA-256 digests in
// constant time and never logged. Request bodies are capped; CORS is closed unless origins are listed.
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
import { addressKey, keyedLimiter, type KeyedLimiter } from "./rate-limit.ts";

/** What a token may do: read < operate < admin, each including the ones before. */
export const ROLES = ["read", "operate", "admin"] as const;
export type Role = (typeof ROLES)[number];
/** What a route needs: a role. */
export type Scope = Role;
/** A `[stream] tokens` entry: the live feed (/api/ws, /api/stream) only. */
export type CallerRole = Role | "stream";
const RANK: Record<CallerRole, number> = { stream: 0, read: 1, operate: 2, admin: 3 };

/** A `[[server.token]]` entry. */
export type NamedToken = { name: string; secret: string; role: Role };

export type RateLimitConfig = {
  /** Requests per second per token (0: no limit), and at once. */
  tokenPerSecond: number;
  tokenBurst: number;
  /** Requests per second per address without a valid token (0: no limit), and at once. */
  addressPerSecond: number;
  addressBurst: number;
  /** Buckets kept at most (least recently used go first). */
  maxKeys: number;
  /** Limit loopback peers per address too (behind a proxy on this machine every client is one). */
  loopback: boolean;
};

export type SecurityConfig = {
  /** Plain tokens: each is an admin token (what a token meant before roles). */
  tokens: string[];
  /** Named tokens with a role (`[[server.token]]`). */
  token?: NamedToken[];
  authReads: boolean;
  corsOrigins: string[];
  maxBodyBytes: number;
  /** The address the server is bound to (its name is a valid Host too). */
  host?: string;
  /** Host names besides loopback ones and IP addresses that name this server (`server.allowedHosts`). */
  allowedHosts?: string[];
  /** Absent: no rate limits (embedders, tests); `ticksync serve` always has them (server.rateLimit). */
  rateLimit?: RateLimitConfig;
};

/** Who a request is, as the security middleware found it (c.get("access")). */
export type Access = {
  /** The role that lets it through: its token's; admin for this machine when no server token exists; null: anonymous. */
  role: CallerRole | null;
  /** The token's name (`[[server.token]]` name, `server.tokens[i]`, `stream.tokens[i]`), never the token. */
  name: string | null;
};

declare module "hono" {
  interface ContextVariableMap {
    access: Access;
  }
}

type KnownToken = { digest: Buffer; role: CallerRole; name: string };

const digest = (s: string) => createHash("sha256").update(s).digest();
const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** No token and no rate limit: the probes, and the API's document (src/http/openapi.ts). */
const OPEN = new Set(["/healthz", "/readyz", "/openapi.json"]);

/** Every token the server knows, with its role and name: `server.tokens` (admin), `[[server.token]]`, and stream tokens. */
export function knownTokens(cfg: Pick<SecurityConfig, "tokens" | "token">, streamTokens: readonly string[] = []): KnownToken[] {
  return [
    ...cfg.tokens.map((t, i) => ({ digest: digest(t), role: "admin" as const, name: `server.tokens[${i}]` })),
    ...(cfg.token ?? []).map((t) => ({ digest: digest(t.secret), role: t.role, name: t.name })),
    ...streamTokens.map((t, i) => ({ digest: digest(t), role: "stream" as const, name: `stream.tokens[${i}]` })),
  ];
}

/** The token a request carries: `Authorization: Bearer …`, or `?token=` (browsers' WebSocket and EventSource). */
export function requestToken(c: Context): string | null {
  return c.req.header("authorization")?.match(/^Bearer\s+(\S+)\s*$/i)?.[1] ?? c.req.query("token") ?? null;
}

/** The known token `given` is, compared with every one in constant time (no early exit). */
export function matchToken(known: readonly KnownToken[], given: string | null): KnownToken | null {
  if (!given) return null;
  const d = digest(given);
  let found: KnownToken | null = null;
  for (const k of known) if (timingSafeEqual(k.digest, d) && (found === null || RANK[k.role] > RANK[found.role])) found = k;
  return found;
}

/** The peer's socket address; null when not served by Bun (app.request in-process: there is no network peer). */
function peerAddress(c: Context): string | null {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}

const loopbackAddress = (a: string) => a === "::1" || a.startsWith("127.") || a.startsWith("::ffff:127.");

/** The peer is this machine. The socket's address only: X-Forwarded-For and the like are never trusted. */
export function isLoopback(c: Context): boolean {
  const a = peerAddress(c);
  return a === null || loopbackAddress(a);
}

const unauthorized = (c: Context, given: string | null, realm: string) => {
  c.header("WWW-Authenticate", `Bearer realm="${realm}"`);
  return c.json({ error: "unauthorized", message: given ? "the token is not valid" : "a token is required: Authorization: Bearer <token> or ?token=<token>" }, 401);
};

const forbiddenRole = (c: Context, a: Access, scope: Scope | "stream") =>
  c.json(
    {
      error: "forbidden",
      message: a.role === "stream" ? "this token opens the live stream only (stream.tokens)" : `token ${a.name} has the ${a.role} role; this needs ${scope === "stream" ? "a stream token or any server token" : scope}`,
    },
    403,
  );

/**
 * The one access rule, for reads (where `required`: authReads, or stream tokens) and mutations
 * (always required): no server tokens → this machine only (as admin); else a known token whose
 * role reaches `scope`. null: let it through (with `c.get("access")` set).
 */
function access(c: Context, known: readonly KnownToken[], required: boolean, scope: Scope | "stream", realm: string, token = matchToken(known, requestToken(c))): Response | null {
  const given = requestToken(c);
  const stream = scope === "stream";
  const anonymous: Access = token ? { role: token.role, name: token.name } : { role: null, name: null };
  // Stream tokens open the stream only: for everything else they are not "tokens configured".
  if (!(stream ? known.length > 0 : known.some((k) => k.role !== "stream"))) {
    // No token to ask for: this machine only, as admin (what `npm start` has always allowed).
    const local = isLoopback(c);
    c.set("access", local ? { role: "admin", name: null } : anonymous);
    if (!required || local) return null;
    return c.json({ error: "forbidden", message: "no API tokens are configured (server.tokens): only callers on this machine may do this" }, 403);
  }
  c.set("access", anonymous);
  if (!required) return null;
  if (!token) return unauthorized(c, given, realm);
  if (!stream && RANK[token.role] < RANK[scope]) return forbiddenRole(c, anonymous, scope);
  return null;
}

/**
 * A route's scope: the caller's role must reach it (`scope` may depend on the request, e.g. the
 * job a run names). The security middleware has already let through only callers whose role
 * reaches read (reads, where tokens are needed) or operate (mutations); this raises the bar.
 * Without the security middleware in front, refused (fail closed).
 */
export function requireScope(scope: Scope | ((c: Context) => Scope)): MiddlewareHandler {
  const mw: MiddlewareHandler = async (c, next) => {
    const need = typeof scope === "function" ? scope(c) : scope;
    const a = c.get("access") as Access | undefined;
    if (!a) return c.json({ error: "forbidden", message: "no access rule ran for this route" }, 403);
    if (a.role !== null && RANK[a.role] >= RANK[need]) return next();
    if (a.role === null) return unauthorized(c, requestToken(c), "ticksync");
    return forbiddenRole(c, a, need);
  };
  return Object.assign(mw, { scope });
}

/** The scope a route declared with requireScope (for the route table and its test). */
export const declaredScope = (handler: unknown): Scope | ((c: Context) => Scope) | undefined => (handler as { scope?: Scope })?.scope;

/**
 * /api/ws and /api/stream: the read rule with the stream's own tokens. They need a token when
 * `[stream] tokens` are set or with authReads; then a stream token or any server token (of any
 * role) opens them; with authReads and no token anywhere, this machine only, as every other read.
 */
export function readGuard(cfg: SecurityConfig, streamTokens: string[]): MiddlewareHandler {
  const known = knownTokens(cfg, streamTokens);
  const required = cfg.authReads || streamTokens.length > 0;
  return async (c, next) => access(c, known, required, "stream", "ticksync stream") ?? next();
}

/**
 * The scope of running a configured job by hand: admin for the jobs whose runs delete data
 * (retention; verify with repair, which deletes a sink's extra records; ingest from a source with
 * reconcile.deleteMissing, whose plain runs delete bars gone from the table), operate for the others.
 */
export function jobScope(job: { kind: string; repair?: boolean; source?: string }, sources: Record<string, object>): Scope {
  if (job.kind === "retention" || (job.kind === "verify" && job.repair)) return "admin";
  const source = job.kind !== "ingest" || job.source === undefined ? undefined : (sources[job.source] as { reconcile?: { deleteMissing?: boolean } } | undefined);
  if (source?.reconcile?.deleteMissing) return "admin";
  return "operate";
}

/** Defaults of server.rateLimit (the config schema's defaults are these). */
export const DEFAULT_RATE_LIMIT: RateLimitConfig = { tokenPerSecond: 50, tokenBurst: 200, addressPerSecond: 20, addressBurst: 100, maxKeys: 10_000, loopback: false };

/** A limiter for securityMiddleware (tests pass their own to look at its size). */
export function requestLimiter(cfg: Pick<SecurityConfig, "rateLimit">): KeyedLimiter {
  return keyedLimiter(cfg.rateLimit?.maxKeys ?? DEFAULT_RATE_LIMIT.maxKeys);
}

/**
 * The rate limit of one request: a valid token's bucket, else its address's (IPv6 by /64;
 * loopback peers only with `loopback`). A flood of invalid tokens counts against the address.
 */
function rateLimited(c: Context, token: KnownToken | null, rl: RateLimitConfig, limiter: KeyedLimiter): Response | null {
  let key: string | null = null;
  let rule = { perSecond: rl.tokenPerSecond, burst: rl.tokenBurst };
  if (token) key = rl.tokenPerSecond > 0 ? `token ${token.name}` : null;
  else {
    const address = peerAddress(c);
    rule = { perSecond: rl.addressPerSecond, burst: rl.addressBurst };
    if (address !== null && rl.addressPerSecond > 0 && (rl.loopback || !loopbackAddress(address))) key = `address ${addressKey(address)}`;
  }
  if (key === null) return null;
  const v = limiter.take(key, rule);
  if (v.ok) return null;
  const retry = Math.max(1, Math.ceil(v.retryAfterMs / 1000));
  c.header("Retry-After", String(retry));
  c.header("RateLimit-Limit", String(rule.burst));
  c.header("RateLimit-Remaining", "0");
  c.header("RateLimit-Reset", String(Math.max(1, Math.ceil(v.resetMs / 1000))));
  return c.json({ error: "too many requests", message: `rate limit of ${rule.perSecond}/s (bursts of ${rule.burst}) per ${token ? "token" : "address"}: retry in ${retry} s` }, 429);
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

export type SecurityOptions = {
  /** Paths whose access rule is their own (the stream's readGuard, the dashboard's page); they are rate limited still. */
  skip?: (path: string) => boolean;
  /** `[stream] tokens`: known here so that they get their own rate-limit bucket and a clear 403 elsewhere. */
  streamTokens?: readonly string[];
  limiter?: KeyedLimiter;
};

export function securityMiddleware(cfg: SecurityConfig, opts: SecurityOptions = {}): MiddlewareHandler[] {
  const known = knownTokens(cfg, opts.streamTokens);
  const rl = cfg.rateLimit;
  const limiter = rl ? (opts.limiter ?? requestLimiter(cfg)) : null;
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
    if (OPEN.has(c.req.path)) return next();
    const token = matchToken(known, requestToken(c));
    const limited = rl && limiter ? rateLimited(c, token, rl, limiter) : null;
    if (limited) return limited;
    if (opts.skip?.(c.req.path)) return next();
    // The floor of every route: read for a read, operate for a mutation; routes raise it (requireScope).
    const mutating = MUTATING.has(c.req.method);
    return access(c, known, mutating || cfg.authReads, mutating ? "operate" : "read", "ticksync", token) ?? next();
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

// Who may call what. Every mutating request (POST, PUT, PATCH, DELETE) needs an API token from
// `server.tokens`; with no tokens configured only callers on this machine (loopback) may mutate,
// which keeps `npm start` usable and a service exposed on a network closed. With
// `server.authReads` the reads need a token too (the probes /healthz and /readyz never do).
// Tokens are compared as SHA-256 digests in constant time. Request bodies are capped; CORS is
// closed unless origins are listed.
import type { Context, MiddlewareHandler } from "hono";
import { getConnInfo } from "hono/bun";
import { cors } from "hono/cors";
import { bodyLimit } from "hono/body-limit";
import { createHash, timingSafeEqual } from "node:crypto";

export type SecurityConfig = { tokens: string[]; authReads: boolean; corsOrigins: string[]; maxBodyBytes: number };

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

function isLoopback(c: Context): boolean {
  try {
    const a = getConnInfo(c).remote.address ?? "";
    return a === "127.0.0.1" || a === "::1" || a.startsWith("::ffff:127.") || a.startsWith("127.");
  } catch {
    // Not served by Bun (app.request in-process): there is no network peer.
    return true;
  }
}

export function securityMiddleware(cfg: SecurityConfig, opts: { skip?: (path: string) => boolean } = {}): MiddlewareHandler[] {
  const known = cfg.tokens.map(digest);
  const auth: MiddlewareHandler = async (c, next) => {
    if (OPEN.has(c.req.path) || opts.skip?.(c.req.path)) return next();
    const mutating = MUTATING.has(c.req.method);
    if (!mutating && !cfg.authReads) return next();
    if (known.length === 0) {
      if (isLoopback(c)) return next();
      return c.json({ error: "forbidden", message: "no API tokens are configured (server.tokens): only callers on this machine may change anything" }, 403);
    }
    const given = requestToken(c);
    if (tokenMatches(known, given)) return next();
    c.header("WWW-Authenticate", 'Bearer realm="ticksync"');
    return c.json({ error: "unauthorized", message: given ? "the token is not valid" : "a token is required: Authorization: Bearer <token>" }, 401);
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
  const list: MiddlewareHandler[] = [headers];
  // No CORS headers at all unless origins are listed: browsers keep other sites out.
  if (cfg.corsOrigins.length) list.push(cors({ origin: cfg.corsOrigins, allowHeaders: ["Authorization", "Content-Type", "Last-Event-ID"], allowMethods: ["GET", "POST", "OPTIONS"], maxAge: 600 }));
  list.push(auth, async (c, next) => (MUTATING.has(c.req.method) ? limit(c, next) : next()));
  return list;
}

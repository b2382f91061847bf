// API tokens for the stream endpoints: `Authorization: Bearer <token>` or `?token=<token>` (browsers
// cannot set headers on a WebSocket or an EventSource). Tokens are compared as SHA-256 digests
// with a constant-time comparison, against every configured token, so neither the time taken nor
// which token matched says anything about a guess.
import type { MiddlewareHandler } from "hono";
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string) => createHash("sha256").update(s).digest();

export function tokenAuth(tokens: string[]): MiddlewareHandler {
  const known = tokens.map(digest);
  return async (c, next) => {
    if (!known.length) return next();
    const header = c.req.header("authorization");
    const bearer = header?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    const given = bearer ?? c.req.query("token");
    let ok = false;
    if (given) {
      const d = digest(given);
      for (const k of known) ok = timingSafeEqual(k, d) || ok;
    }
    if (!ok) {
      c.header("WWW-Authenticate", 'Bearer realm="ticksync stream"');
      return c.json({ error: "unauthorized", message: given ? "the token is not valid" : "a token is required: Authorization: Bearer <token> or ?token=<token>" }, 401);
    }
    return next();
  };
}

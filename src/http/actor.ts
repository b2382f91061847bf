// Who calls a mutating route, for the audit trail (runs started through the API carry it).
import type { Context } from "hono";
import { getConnInfo } from "hono/bun";
import type { Actor } from "../monitor/audit.ts";

/** Who calls: the route, a fingerprint of the bearer token (never the token), the peer address. */
export function apiActor(c: Context): Actor {
  const token = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1] ?? c.req.query("token") ?? null;
  let remote: string | null = null;
  try {
    remote = getConnInfo(c).remote.address ?? null;
  } catch {}
  return { by: "api", route: `${c.req.method} ${c.req.path}`, tokenId: token ? `sha256:${new Bun.CryptoHasher("sha256").update(token).digest("hex").slice(0, 12)}` : null, remote };
}

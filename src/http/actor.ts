// Who calls a mutating route, for the audit trail (runs started through the API carry it): the
// route, the role and name of the token the security middleware matched, a fingerprint of the
// bearer token (never the token), and the peer address.
import type { Context } from "hono";
import { getConnInfo } from "hono/bun";
import type { Actor } from "../monitor/audit.ts";
import { requestToken, type Access } from "./security.ts";

export function apiActor(c: Context): Actor {
  const token = requestToken(c);
  let remote: string | null = null;
  try {
    remote = getConnInfo(c).remote.address ?? null;
  } catch {}
  const access = c.get("access") as Access | undefined;
  return {
    by: "api",
    route: `${c.req.method} ${c.req.path}`,
    tokenId: token ? `sha256:${new Bun.CryptoHasher("sha256").update(token).digest("hex").slice(0, 12)}` : null,
    remote,
    role: access?.role ?? null,
    caller: access?.name ?? null,
  };
}

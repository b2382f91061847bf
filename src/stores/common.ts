// What every store does alike: run ownership and readiness.
import { hostname } from "node:os";
import type { Readiness } from "./types.ts";
import { errorText } from "../lib/errors.ts";

// Who owns a running run: `host:pid:start`. A run left 'running' by a process of this host
// that no longer exists was cut off (crash, kill -9) and is marked interrupted by the next one.

export function newOwner(): string {
  return `${hostname()}:${process.pid}:${Date.now()}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e?.code === "EPERM";
  }
}

/** True when `owner` names a process of this host, other than `self`, that has ended. */
export function ownerGone(owner: string, self: string): boolean {
  const [host, pid] = owner.split(":");
  if (host !== hostname() || owner === self) return false;
  return Number(pid) === process.pid || !pidAlive(Number(pid));
}

/** Ready when the store answers and its schema is at the version this build expects. */
export async function readiness(schemaVersion: () => Promise<number>, expected: number): Promise<Readiness> {
  try {
    const v = await schemaVersion();
    return { ok: v === expected, schemaVersion: v, expectedVersion: expected, ...(v === expected ? {} : { error: "migrations pending" }) };
  } catch (e) {
    return { ok: false, schemaVersion: 0, expectedVersion: expected, error: errorText(e) };
  }
}

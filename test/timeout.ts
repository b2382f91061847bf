// The per-test timeout of every test file. bun's default (5 s) is too short for tests that start
// servers, kill processes or load a million rows. bunfig.toml has no timeout key, and a preload's
// setDefaultTimeout reaches only the first file of a run (oven-sh/bun#43787), so each test file
// calls testTimeout() in its own body: `bun test` and `npm test` then give every test the same
// budget. A `--timeout` on the command line wins (`npm run fuzz`).
import { setDefaultTimeout } from "bun:test";
import { readFileSync } from "node:fs";

export const TEST_TIMEOUT_MS = 120_000;

function timeoutGiven(): boolean {
  try {
    return readFileSync("/proc/self/cmdline", "utf8").split("\0").some((a) => a === "--timeout" || a.startsWith("--timeout="));
  } catch {
    return false; // no /proc (macOS): the budget applies
  }
}

const given = timeoutGiven();

/** Call at the top of a test file. */
export function testTimeout(): void {
  if (!given) setDefaultTimeout(TEST_TIMEOUT_MS);
}

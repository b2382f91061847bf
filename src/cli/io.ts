// What the CLI prints. Everything is scrubbed of secrets (src/lib/redact.ts): URL passwords and
// every secret the config holds.
import { redact } from "../lib/redact.ts";
import { oneLineError } from "../lib/errors.ts";

export const out = (s: string) => process.stdout.write(redact(s.endsWith("\n") ? s : s + "\n"));
export const err = (s: string) => process.stderr.write(redact(s.endsWith("\n") ? s : s + "\n"));

/** An error as one line: its message (a stack only with TICKSYNC_DEBUG=1). */
export const oneLine = (e: unknown) =>
  process.env.TICKSYNC_DEBUG === "1" && e instanceof Error && e.stack ? e.stack : oneLineError(e);

// Structured JSON logs on stderr, one object per line. Every line is scrubbed of secrets
// (src/lib/redact.ts: URL passwords, secret-named fields, and every secret the config holds).
import { redact, redactValue } from "./redact.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: number = ORDER.info;
let sink: (line: string) => void = (line) => process.stderr.write(line + "\n");

export function setLogLevel(level: LogLevel) {
  threshold = ORDER[level];
}

/** Send log lines elsewhere (tests capture them). */
export function setLogSink(fn: (line: string) => void) {
  sink = fn;
}

/** Fields with secret-named keys masked and every string scrubbed. */
export const redactFields = (value: unknown): unknown => redactValue(value);

function write(level: LogLevel, msg: string, fields?: Record<string, unknown>) {
  if (ORDER[level] < threshold) return;
  // Fields are masked by key; the whole line is scrubbed again for secrets by value or URL shape.
  sink(redact(JSON.stringify({ time: new Date().toISOString(), level, msg, ...(fields ? (redactValue(fields) as object) : {}) })));
}

export const log = {
  debug: (msg: string, fields?: Record<string, unknown>) => write("debug", msg, fields),
  info: (msg: string, fields?: Record<string, unknown>) => write("info", msg, fields),
  warn: (msg: string, fields?: Record<string, unknown>) => write("warn", msg, fields),
  error: (msg: string, fields?: Record<string, unknown>) => write("error", msg, fields),
};

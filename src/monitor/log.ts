// Structured JSON logs on stderr, one object per line. Secrets never reach here: callers log
// names and counts, and `redact` masks credentials in URLs and known secret keys.
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

const SECRET_KEY = /pass(word)?|secret|token|api[_-]?key|authorization/i;

export function redact(value: unknown): unknown {
  if (typeof value === "string") return value.replace(/(\/\/[^:/@\s]+:)[^@\s]+@/g, "$1***@");
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? "***" : redact(v);
    return out;
  }
  return value;
}

function write(level: LogLevel, msg: string, fields?: Record<string, unknown>) {
  if (ORDER[level] < threshold) return;
  sink(JSON.stringify({ time: new Date().toISOString(), level, msg, ...(fields ? (redact(fields) as object) : {}) }));
}

export const log = {
  debug: (msg: string, fields?: Record<string, unknown>) => write("debug", msg, fields),
  info: (msg: string, fields?: Record<string, unknown>) => write("info", msg, fields),
  warn: (msg: string, fields?: Record<string, unknown>) => write("warn", msg, fields),
  error: (msg: string, fields?: Record<string, unknown>) => write("error", msg, fields),
};

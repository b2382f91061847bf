// Structured JSON logs on stderr (or, for `serve` with log.file, a rotated file: log-file.ts), one
// object per line. Every line is scrubbed of secrets before it reaches any of them
// (src/lib/redact.ts: URL passwords, secret-named fields, and every secret the config holds).
import { LogFile, type LogFileOptions } from "./log-file.ts";
import { redact, redactValue } from "./redact.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: number = ORDER.info;
const toStderr = (line: string) => {
  process.stderr.write(line + "\n");
};
let sink: (line: string) => void = toStderr;
let logFile: LogFile | null = null;

export function setLogLevel(level: LogLevel) {
  threshold = ORDER[level];
}

/** Send log lines elsewhere (tests capture them). */
export function setLogSink(fn: (line: string) => void) {
  sink = fn;
}

/**
 * Lines go to a rotated file (and to stderr too with `stderr`), or back to stderr alone (null).
 * When the file fails (disk full, permissions, a stalled disk) logging goes on on stderr, with
 * what the file had not written and one warning; the service neither stops nor waits.
 */
export function setLogFile(options: (LogFileOptions & { stderr: boolean }) | null): LogFile | null {
  const previous = logFile;
  logFile = null;
  sink = toStderr;
  void previous?.close();
  if (!options) return null;
  const file = new LogFile(options, (reason, unwritten) => {
    if (logFile !== file) return;
    logFile = null;
    sink = toStderr;
    if (unwritten && !options.stderr) process.stderr.write(unwritten);
    // Whatever the level: the operator must learn where the lines went.
    emit("warn", "log file failed: logging to stderr from now on", { file: file.path, error: reason });
  });
  logFile = file;
  sink = options.stderr
    ? (line) => {
        file.write(line);
        toStderr(line);
      }
    : (line) => file.write(line);
  return file;
}

/** Fields with secret-named keys masked and every string scrubbed. */
export const redactFields = (value: unknown): unknown => redactValue(value);

function write(level: LogLevel, msg: string, fields?: Record<string, unknown>) {
  if (ORDER[level] >= threshold) emit(level, msg, fields);
}

function emit(level: LogLevel, msg: string, fields?: Record<string, unknown>) {
  // Fields are masked by key; the whole line is scrubbed again for secrets by value or URL shape.
  sink(redact(JSON.stringify({ time: new Date().toISOString(), level, msg, ...(fields ? (redactValue(fields) as object) : {}) })));
}

export const log = {
  debug: (msg: string, fields?: Record<string, unknown>) => write("debug", msg, fields),
  info: (msg: string, fields?: Record<string, unknown>) => write("info", msg, fields),
  warn: (msg: string, fields?: Record<string, unknown>) => write("warn", msg, fields),
  error: (msg: string, fields?: Record<string, unknown>) => write("error", msg, fields),
};

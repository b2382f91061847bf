// The log file of `ticksync serve`: JSON lines appended through rotating-file-stream (rotation by
// size and at interval boundaries, classical names <file>.1 … <file>.N, optional in-process gzip),
// which works under Bun and inside the compiled executable. Writing never blocks the caller: lines
// queue and go to the stream one batch at a time; a write error, or a backlog past
// MAX_BACKLOG_BYTES (a stalled disk), gives the file up and hands back what it had not written.
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { Options, RotatingFileStream } from "rotating-file-stream";

export type LogFileOptions = {
  /** The file written; rotated files sit beside it. */
  path: string;
  /** Rotated once it reaches this size, e.g. "100MB" (see parseByteSize). */
  maxSize: string;
  /** Also rotated at each boundary of this interval, e.g. "1d" (see rotationIntervalError). */
  interval?: string | undefined;
  /** Rotated files kept (<file>.1 the newest). */
  keep: number;
  compress: boolean;
};

/** Lines waiting for the disk at most (about 4 MiB): past it the file is given up, memory stays bounded. */
export const MAX_BACKLOG_BYTES = 4 << 20;

const BYTE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/** "100MB" → bytes (B, KB, MB, GB; 1KB = 1024 bytes), or null outside 1KB … 64GB or malformed. */
export function parseByteSize(text: string): number | null {
  const m = /^([1-9]\d{0,11})(B|KB|MB|GB)$/.exec(text);
  if (!m) return null;
  const bytes = Number(m[1]) * BYTE_UNITS[m[2]!]!;
  return bytes >= 1024 && bytes <= 64 * 1024 ** 3 ? bytes : null;
}

/** Why a rotation interval is refused ("1d", "6h", "30m", "10s" pass), or null when it is fine. */
export function rotationIntervalError(text: string): string | null {
  const m = /^([1-9]\d{0,3})(s|m|h|d)$/.exec(text);
  if (!m) return `expected an interval such as "1d": a whole number and s, m, h or d, got ${JSON.stringify(text.slice(0, 40))}`;
  const [n, unit] = [Number(m[1]), m[2]];
  // rotating-file-stream rotates at clock boundaries, so a part of a minute or a day must divide it.
  if ((unit === "s" || unit === "m") && 60 % n !== 0) return `${text}: ${unit === "s" ? "seconds" : "minutes"} must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60)`;
  if (unit === "h" && 24 % n !== 0) return `${text}: hours must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)`;
  if (unit === "d" && n > 366) return `${text}: at most 366 days`;
  return null;
}

/** Whether the file's last bytes are `text` (false when it cannot be read). */
function endsWith(path: string, text: string): boolean {
  const tail = Buffer.from(text);
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const size = fstatSync(fd).size;
    if (size < tail.length) return false;
    const read = Buffer.alloc(tail.length);
    readSync(fd, read, 0, tail.length, size - tail.length);
    return read.equals(tail);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export class LogFile {
  readonly path: string;
  private readonly stream: RotatingFileStream;
  private queue: string[] = [];
  /** Characters queued or in flight (close to bytes for JSON lines). */
  private backlog = 0;
  private inFlight: string | null = null;
  private done = false;
  private readonly onExit = () => this.flushSync();

  /** onFail gets the reason and the text it had not written, once; nothing is written after. */
  constructor(
    options: LogFileOptions,
    private readonly onFail: (reason: string, unwritten: string) => void,
  ) {
    this.path = resolve(options.path);
    const size = parseByteSize(options.maxSize);
    if (size === null) throw new Error(`log file size: expected e.g. "100MB", got ${JSON.stringify(options.maxSize)}`);
    const intervalError = options.interval === undefined ? null : rotationIntervalError(options.interval);
    if (intervalError) throw new Error(`log file interval: ${intervalError}`);
    // rotate = N: classical names and exactly N kept; gzip runs in-process (zlib), not a shell.
    const rfsOptions: Options = { path: dirname(this.path), size: `${size}B`, rotate: options.keep, mode: 0o640 };
    if (options.interval !== undefined) rfsOptions.interval = options.interval;
    if (options.compress) rfsOptions.compress = "gzip";
    // Loaded here, not at the top: every command imports the log, only `serve` with log.file needs this.
    const { createStream } = require("rotating-file-stream") as typeof import("rotating-file-stream");
    this.stream = createStream(basename(this.path), rfsOptions);
    // Without this listener a disk error would be an uncaught exception that ends the process.
    this.stream.on("error", (e) => this.fail(e.message));
    process.on("exit", this.onExit);
  }

  /** Queues one line (without its newline); never waits for the disk. */
  write(line: string): void {
    if (this.done) return;
    this.queue.push(line + "\n");
    this.backlog += line.length + 1;
    if (this.backlog > MAX_BACKLOG_BYTES) return this.fail(`writes are not keeping up (over ${MAX_BACKLOG_BYTES} bytes waiting)`);
    if (this.inFlight === null) this.pump();
  }

  private pump(): void {
    if (this.done || this.queue.length === 0) return;
    const batch = this.queue.join("");
    this.queue = [];
    this.inFlight = batch;
    this.stream.write(batch, (e) => {
      if (e) return this.fail(e.message);
      this.backlog -= batch.length;
      this.inFlight = null;
      this.pump();
    });
  }

  private fail(reason: string): void {
    if (this.done) return;
    this.done = true;
    const unwritten = (this.inFlight ?? "") + this.queue.join("");
    this.queue = [];
    this.inFlight = null;
    process.off("exit", this.onExit);
    this.stream.destroy();
    this.onFail(reason, unwritten);
  }

  /** At exit: what is still queued, and the batch in flight unless the file already ends with it, is appended synchronously. */
  private flushSync(): void {
    if (this.done) return;
    const inFlight = this.inFlight !== null && !endsWith(this.path, this.inFlight) ? this.inFlight : "";
    const rest = inFlight + this.queue.join("");
    if (rest === "") return;
    try {
      mkdirSync(dirname(this.path), { recursive: true }); // the stream may not have made it yet
      appendFileSync(this.path, rest);
    } catch {
      process.stderr.write(rest);
    }
  }

  /** Resolves once every line written so far is on disk (or the file failed), or after timeoutMs. */
  async drained(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight !== null && !this.done && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  /** Writes what is queued and closes the file; gives up after timeoutMs (a stalled disk). */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.done) return;
    const deadline = Date.now() + timeoutMs;
    await this.drained(timeoutMs);
    if (this.done) return;
    this.done = true;
    process.off("exit", this.onExit);
    const rest = this.queue.join("");
    this.queue = [];
    const closed = new Promise<void>((res) => {
      this.stream.once("finish", () => res());
      this.stream.once("error", () => res());
    });
    if (rest) this.stream.write(rest);
    this.stream.end();
    await Promise.race([closed, new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
  }
}

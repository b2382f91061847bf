// CPU-seconds of local processes from /proc, for the capacity bench: a server found by the TCP
// port it listens on (PostgreSQL's postmaster, QuestDB's JVM), and the CPU its process tree has
// used (its own threads, its reaped children, its live children). Linux only.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: `getconf CLK_TCK`, 100 when it cannot say). */
export const CLK_TCK = (() => {
  const r = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" });
  const n = Number(r.stdout.toString().trim());
  return r.exitCode === 0 && n > 0 ? n : 100;
})();

export type ProcTimes = { ppid: number; /** utime + stime, ticks */ self: number; /** cutime + cstime: children it has reaped, ticks */ reaped: number };

/** A process's CPU ticks, or null when it is gone. */
export function procTimes(pid: number): ProcTimes | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: the fields after it start at the last ")".
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // f[0] is field 3 (state): field n is f[n - 3].
  return { ppid: Number(f[1]), self: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
}

/** Every live process's parent, read once. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const t = procTimes(Number(d));
    if (t) out.set(Number(d), t.ppid);
  }
  return out;
}

/**
 * CPU-seconds used so far by `root` and its direct children: its threads, the children it has
 * reaped (PostgreSQL's backends of closed connections) and the ones alive now. The difference of
 * two readings is what the tree used between them, children born and gone in between included.
 */
export function treeCpuSeconds(root: number): number {
  const t = procTimes(root);
  if (!t) throw new Error(`process ${root} is gone`);
  let ticks = t.self + t.reaped;
  for (const [pid, ppid] of parents()) if (ppid === root) ticks += procTimes(pid)?.self ?? 0;
  return ticks / CLK_TCK;
}

/** The TCP sockets of this machine (IPv4 and IPv6), each line of /proc/net/tcp* cut into its fields. */
function* tcpSockets(): Generator<string[]> {
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length >= 10) yield c;
    }
  }
}

/** A socket field's port ("0100007F:1F90" → 8080). */
const portOf = (address: string) => parseInt(address.split(":")[1]!, 16);

/** Socket inodes listening on a local TCP port (IPv4 and IPv6). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  // c[3] 0A: LISTEN; c[1] the local address, c[9] the inode.
  for (const c of tcpSockets()) if (c[3] === "0A" && portOf(c[1]!) === port) inodes.add(c[9]!);
  return inodes;
}

/**
 * The process that listens on a local TCP port: of the processes holding the socket, the one
 * whose parent does not (a forked child may inherit it). Null when none is found (not local, or
 * /proc/<pid>/fd not readable by this user).
 */
export function pidListening(port: number): number | null {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return null;
  const holders: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${d}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link = "";
      try {
        link = readlinkSync(`/proc/${d}/fd/${fd}`);
      } catch {
        continue;
      }
      if (link.startsWith("socket:[") && inodes.has(link.slice(8, -1))) {
        holders.push(Number(d));
        break;
      }
    }
  }
  const held = new Set(holders);
  return holders.find((p) => !held.has(procTimes(p)?.ppid ?? -1)) ?? null;
}

/** Local ports of a process's TCP connections to `serverPort` (its sockets matched in /proc/net/tcp*). */
function clientPorts(pid: number, serverPort: number): Set<number> {
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return new Set();
  }
  for (const fd of fds) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link.startsWith("socket:[")) inodes.add(link.slice(8, -1));
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  // c[1] the local address, c[2] the remote one.
  for (const c of tcpSockets()) if (inodes.has(c[9]!) && portOf(c[2]!) === serverPort) ports.add(portOf(c[1]!));
  return ports;
}

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
};

/** PostgreSQL's shared background processes, whose work a load causes (WAL, dirty pages). */
const PG_BACKGROUND = /^postgres: (walwriter|checkpointer|background writer)/;

/**
 * The CPU a PostgreSQL server spends for one client process, on a server other clients use too:
 * the backends serving that client's connections (found by their title's client port, sampled
 * every `everyMs` while the client runs: a backend's last moments before it exits are missed), and
 * the shared WAL writer, checkpointer and background writer (their whole use, whoever caused it).
 */
export class PgClientCpu {
  private backends = new Map<number, number>();
  private background = new Map<number, number>();
  private timer: Timer | undefined;
  private client = 0;

  constructor(
    private postmaster: number,
    private port: number,
  ) {
    for (const [pid, ppid] of parents()) if (ppid === postmaster && PG_BACKGROUND.test(cmdline(pid))) this.background.set(pid, procTimes(pid)?.self ?? 0);
  }

  /** Start watching a client process. */
  watch(clientPid: number, everyMs = 50) {
    this.client = clientPid;
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample() {
    for (const [pid, ticks] of this.backends) this.backends.set(pid, Math.max(ticks, procTimes(pid)?.self ?? 0));
    const ports = clientPorts(this.client, this.port);
    if (ports.size === 0) return;
    for (const [pid, ppid] of parents()) {
      if (ppid !== this.postmaster || this.backends.has(pid)) continue;
      const m = /\((\d+)\)/.exec(cmdline(pid));
      if (m && ports.has(Number(m[1]))) this.backends.set(pid, procTimes(pid)?.self ?? 0);
    }
  }

  /** Stop sampling; the CPU-seconds of the client's backends and of the background processes since construction. */
  stop(): { backendsS: number; backgroundS: number; backends: number } {
    clearInterval(this.timer);
    this.sample();
    let bg = 0;
    for (const [pid, t0] of this.background) bg += Math.max(0, (procTimes(pid)?.self ?? t0) - t0);
    let be = 0;
    for (const t of this.backends.values()) be += t;
    return { backendsS: be / CLK_TCK, backgroundS: bg / CLK_TCK, backends: this.backends.size };
  }
}

// Who may call what, on a real `ticksync serve`: tokens for mutating requests (and reads when
// asked), constant-time comparison behind it, loopback-only changes without tokens, body limits,
// CORS closed by default, probes always open.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startServe, tempDir, writeFile } from "./helpers.ts";
import { createApp } from "../src/http/app.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { createScheduler } from "../src/scheduler/scheduler.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-security-");
const TOKEN = "s3cret-token-0123456789";

function config(name: string, server: string): string {
  return writeFile(join(dir, `${name}.toml`), `[store]\nurl = "sqlite:${name}.db"\n[server]\n${server}\n[sources.files]\ntype = "csv"\npath = "csv"\nlayout = "stooq"\n[[jobs]]\nname = "load"\nsource = "files"\n`);
}

test("tokens guard every mutating request; reads too with authReads; probes stay open", async () => {
  const srv = await startServe(["--config", config("tok", `tokens = ["${TOKEN}"]\nauthReads = true\ncorsOrigins = ["https://app.example.com"]\nmaxBodyBytes = 2048`)]);
  try {
    const post = (headers: Record<string, string> = {}, body?: string) => fetch(`${srv.url}/api/jobs/load/run`, { method: "POST", headers, body });
    expect((await post()).status).toBe(401);
    const wrong = await post({ Authorization: "Bearer not-the-token-at-all" });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: "unauthorized", message: "the token is not valid" });
    expect((await post({ Authorization: `Bearer ${TOKEN}` })).status).toBe(202);
    // Reads need it too here; the probes never do.
    expect((await fetch(`${srv.url}/api/runs`)).status).toBe(401);
    expect((await fetch(`${srv.url}/api/runs`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${srv.url}/metrics?token=${TOKEN}`)).status).toBe(200);
    expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${srv.url}/readyz`)).status).toBe(200);
    // Bodies are capped.
    const big = await post({ Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" }, JSON.stringify({ pad: "x".repeat(4096) }));
    expect(big.status).toBe(413);
    // CORS: the listed origin only.
    const pre = await fetch(`${srv.url}/api/runs`, { method: "OPTIONS", headers: { Origin: "https://app.example.com", "Access-Control-Request-Method": "GET" } });
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    const other = await fetch(`${srv.url}/healthz`, { headers: { Origin: "https://evil.example.com" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    expect(other.headers.get("x-content-type-options")).toBe("nosniff");
    // The stream takes the server's tokens when reads need one.
    expect((await fetch(`${srv.url}/api/stream?symbols=*`)).status).toBe(401);
  } finally {
    srv.proc.kill();
    await srv.proc.exited;
  }
});

test("without tokens only this machine may change anything; CORS is closed", async () => {
  const srv = await startServe(["--config", config("open", "")]);
  try {
    expect((await fetch(`${srv.url}/api/jobs/load/run`, { method: "POST" })).status).toBe(202);
    expect((await fetch(`${srv.url}/api/runs`, { headers: { Origin: "https://app.example.com" } })).headers.get("access-control-allow-origin")).toBeNull();
  } finally {
    srv.proc.kill();
    await srv.proc.exited;
  }
  // A caller from another machine (tests listen on 127.0.0.1 only, so the peer address is given
  // the way Bun's server gives it to the app).
  const store = sqliteStore(`sqlite:${join(dir, "remote.db")}`);
  await store.migrate();
  const app = createApp({ store, metrics: ticksyncMetrics(), scheduler: createScheduler() });
  const from = (address: string) => ({ requestIP: () => ({ address, family: "IPv4", port: 40000 }) });
  const remote = await app.fetch(new Request("http://localhost/api/jobs/load/run", { method: "POST" }), from("192.0.2.9"));
  expect(remote.status).toBe(403);
  expect(((await remote.json()) as any).message).toContain("server.tokens");
  expect((await app.fetch(new Request("http://localhost/api/runs"), from("192.0.2.9"))).status).toBe(200);
  expect((await app.fetch(new Request("http://localhost/api/jobs/load/run", { method: "POST" }), from("127.0.0.1"))).status).toBe(404); // allowed through: no such job here
  await store.close();
});

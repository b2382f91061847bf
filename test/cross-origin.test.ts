// Cross-site requests and DNS rebinding against a real `ticksync serve` with no tokens (the demo
// setup, where callers on this machine may change things): forged headers with fetch, then a page
// on another origin in headless Chromium (a second local server on 127.0.0.2) that posts forms and
// fetches at ticksync, and a rebinding host name mapped to 127.0.0.1. Whatever is refused, the
// store must show that nothing ran; the same requests from ticksync's own origin still work.
//
// The browser: $TICKSYNC_TEST_CHROMIUM, else /usr/bin/chromium; without one the browser test skips
// with a warning (fails when CI=true), as in test/dashboard.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { cli, startServe, tempDir, waitFor, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const exe = process.env.TICKSYNC_TEST_CHROMIUM || (existsSync("/usr/bin/chromium") ? "/usr/bin/chromium" : "");
if (!exe) {
  if (process.env.CI === "true") throw new Error("CI=true and no Chromium for the cross-origin browser test");
  console.warn("WARNING: no Chromium (/usr/bin/chromium or TICKSYNC_TEST_CHROMIUM): the cross-origin browser test is skipped; apt-get install -y chromium");
}

const dir = tempDir("ticksync-xorigin-");
const TOKEN = "cross-origin-token-0123456789";
const EVIL = "https://evil.example";

// Ten WSE sessions, one with high below low (quarantined): something for a replay to act on.
const rows = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08", "2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14", "2024-03-15"].map((d, i) =>
  i === 4 ? `${d},60,58,61,60,1000` : `${d},60,61,59,60.5,${1000 + i}`,
);
writeFile(join(dir, "csv", "pkn_d.csv"), ["Date,Open,High,Low,Close,Volume", ...rows].join("\n") + "\n");

function config(name: string, server: string): string {
  return writeFile(
    join(dir, `${name}.toml`),
    `[store]\nurl = "sqlite:${name}.db"\n[server]\n${server}\n[sources.files]\ntype = "csv"\npath = "csv"\nlayout = "stooq"\nmarket = "WSE"\n[[jobs]]\nname = "load"\nsource = "files"\n`,
  );
}

type Srv = Awaited<ReturnType<typeof startServe>>;
let open: Srv;
let port: number;

/** Runs in the store, read the way a script on this machine would (no Origin, loopback Host). */
async function runs(srv: Srv = open): Promise<{ kind: string; startedBy: { by: string } | null }[]> {
  return ((await (await fetch(`${srv.url}/api/audit?limit=1000`)).json()) as any).data;
}
const byApi = async (kind: string, srv?: Srv) => (await runs(srv)).filter((r) => r.kind === kind && r.startedBy?.by === "api").length;
const quarantined = async () => ((await (await fetch(`${open.url}/api/quarantine`)).json()) as any).data.length as number;

beforeAll(async () => {
  const cfg = config("open", `allowedHosts = ["ticksync.internal", ".corp.example"]`);
  const ing = await cli(["ingest", "--config", cfg], { cwd: dir });
  expect(ing.code).toBe(0);
  open = await startServe(["--config", cfg], { cwd: dir, env: { TICKSYNC_LOG__LEVEL: "warn" } });
  port = Number(new URL(open.url).port);
}, 60_000);
afterAll(async () => {
  open?.proc.kill();
  await open?.proc.exited;
});

/** The status line of a raw WebSocket upgrade request. */
function upgradeStatus(headers: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: "127.0.0.1", port }, () =>
      sock.write([`GET /api/ws?symbols=PKN.WA HTTP/1.1`, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", ...headers, "", ""].join("\r\n")),
    );
    sock.setTimeout(15_000, () => reject(new Error("no answer")));
    sock.on("data", (d) => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(d.toString("latin1"));
      if (m) {
        sock.destroy();
        resolve(Number(m[1]));
      }
    });
    sock.on("error", reject);
  });
}

describe("forged headers (curl-like fetch)", () => {
  const post = (path: string, headers: Record<string, string>, body?: string) => fetch(`${open.url}${path}`, { method: "POST", headers, body });

  test("cross-site posts are refused and change nothing; the same from a script on this machine works", async () => {
    const before = { runs: (await runs()).length, q: await quarantined() };
    expect(before.q).toBe(1);
    const refused: [string, Record<string, string>, string | undefined][] = [
      // The two requests.
      ["/api/jobs/load/run", { "Content-Type": "text/plain", Origin: EVIL }, "{}"],
      ["/api/quarantine/replay", { "Content-Type": "text/plain", Origin: EVIL }, '{"all":true}'],
      // Every other shape a browser may send from another origin.
      ["/api/jobs/load/run", { Origin: EVIL }, undefined],
      ["/api/jobs/load/run", { "Content-Type": "application/json", Origin: EVIL }, "{}"],
      ["/api/quarantine/replay", { "Content-Type": "application/x-www-form-urlencoded", Origin: EVIL }, "all=true"],
      ["/api/jobs/load/run", { Origin: "null" }, undefined],
      ["/api/jobs/load/run", { Origin: `http://127.0.0.2:${port}` }, undefined], // same site, another origin
      ["/api/jobs/load/run", { Origin: `http://localhost:${port + 1}` }, undefined],
      ["/api/jobs/load/run", { "Sec-Fetch-Site": "cross-site" }, undefined],
      ["/api/jobs/load/run", { "Sec-Fetch-Site": "same-site" }, undefined],
      ["/api/alerts/x/ack", { "Content-Type": "text/plain", Origin: EVIL }, "{}"],
    ];
    for (const [path, headers, body] of refused) {
      const r = await post(path, headers, body);
      expect(r.status, `${path} ${JSON.stringify(headers)}`).toBe(403);
      expect(((await r.json()) as any).error).toBe("forbidden");
    }
    // Not JSON: 415, whoever sends it.
    const plain = await post("/api/quarantine/replay", { "Content-Type": "text/plain" }, '{"all":true}');
    expect(plain.status).toBe(415);
    expect(((await plain.json()) as any).message).toContain("application/json");
    expect((await post("/api/jobs/load/run", {}, "{}")).status).toBe(415); // a body without a type
    expect({ runs: (await runs()).length, q: await quarantined() }).toEqual(before);

    // A script on this machine (no Origin), and the page's own origin, still may.
    expect((await post("/api/jobs/load/run", {})).status).toBe(202);
    await waitFor(async () => (await byApi("ingest")) === 1, 15_000, "the triggered run");
    const replay = await post("/api/quarantine/replay", { "Content-Type": "application/json", Origin: `http://127.0.0.1:${port}`, "Sec-Fetch-Site": "same-origin" }, '{"all":true}');
    expect(replay.status).toBe(200);
    expect(await byApi("replay")).toBe(1);
  });

  test("Host must name this server: DNS rebinding reads nothing", async () => {
    const get = (host: string, path = "/api/audit") => fetch(`${open.url}${path}`, { headers: { Host: host } });
    for (const host of ["rebind.attacker.example", `rebind.attacker.example:${port}`, "evilcorp.example", "ticksync.internal.evil.example", "localhost.evil.example", ""]) {
      const r = await get(host);
      expect(r.status, host).toBe(403);
      expect(((await r.json()) as any).message).toContain("server.allowedHosts");
    }
    // Rebinding with a matching Origin (the attacker's page is same-origin with its own name).
    const rebound = await fetch(`${open.url}/api/jobs/load/run`, { method: "POST", headers: { Host: `rebind.attacker.example:${port}`, Origin: `http://rebind.attacker.example:${port}` } });
    expect(rebound.status).toBe(403);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `192.0.2.7:${port}`, `app.localhost:${port}`, "ticksync.internal", `TICKSYNC.internal:${port}`, "corp.example", "a.b.corp.example:443"])
      expect((await get(host)).status, host).toBe(200);
  });

  test("a WebSocket upgrade from another origin is refused (the feed is not readable cross-site)", async () => {
    expect(await upgradeStatus([`Host: 127.0.0.1:${port}`, `Origin: ${EVIL}`])).toBe(403);
    expect(await upgradeStatus([`Host: rebind.attacker.example:${port}`])).toBe(403);
    expect(await upgradeStatus([`Host: 127.0.0.1:${port}`, `Origin: http://127.0.0.1:${port}`])).toBe(101);
    expect(await upgradeStatus([`Host: 127.0.0.1:${port}`])).toBe(101);
  });

  test("with tokens: a valid token from a script passes; a browser from another origin does not, even with it", async () => {
    const srv = await startServe(["--config", config("tok", `tokens = ["${TOKEN}"]`)], { cwd: dir, env: { TICKSYNC_LOG__LEVEL: "warn" } });
    try {
      const p = (headers: Record<string, string>, body?: string) => fetch(`${srv.url}/api/jobs/load/run`, { method: "POST", headers, body });
      expect((await p({ Authorization: `Bearer ${TOKEN}`, Origin: EVIL })).status).toBe(403);
      expect((await p({ Authorization: `Bearer ${TOKEN}`, "Content-Type": "text/plain" }, "{}")).status).toBe(415);
      expect((await p({})).status).toBe(401);
      expect((await p({ Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" }, "{}")).status).toBe(202);
      await waitFor(async () => (await byApi("ingest", srv)) === 1, 15_000, "the triggered run");
    } finally {
      srv.proc.kill();
      await srv.proc.exited;
    }
  });
});

/** The attacker's page: every way a page can make a browser send a request to ticksync without asking. */
const evilPage = (target: string) => `<!doctype html><meta charset="utf-8"><title>evil</title>
<body><script>
const T = ${JSON.stringify(target)};
const results = {};
async function tryFetch(name, path, init) {
  try { const r = await fetch(T + path, init); results[name] = r.type + " " + r.status; } catch (e) { results[name] = "error " + e.message; }
}
function formPost(name, path, enctype, field, value) {
  return new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.name = name;
    document.body.appendChild(frame);
    const f = document.createElement("form");
    f.method = "POST"; f.action = T + path; f.enctype = enctype; f.target = name;
    const i = document.createElement("input"); i.name = field; i.value = value; f.appendChild(i);
    document.body.appendChild(f);
    frame.onload = () => { results[name] = "loaded"; resolve(); };
    f.submit();
  });
}
(async () => {
  await tryFetch("run-nocors-text", "/api/jobs/load/run", { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: "{}" });
  await tryFetch("replay-nocors-text", "/api/quarantine/replay", { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: '{"all":true}' });
  await tryFetch("run-nocors-empty", "/api/jobs/load/run", { method: "POST", mode: "no-cors" });
  await tryFetch("run-cors-json", "/api/jobs/load/run", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  await tryFetch("audit-read", "/api/audit", {});
  await formPost("form-run", "/api/jobs/load/run", "text/plain", '{"a":"', '"}');
  await formPost("form-replay", "/api/quarantine/replay", "text/plain", '{"all":true,"x":"', '"}');
  await formPost("form-run-urlencoded", "/api/jobs/load/run", "application/x-www-form-urlencoded", "a", "b");
  await new Promise((resolve) => {
    const ws = new WebSocket(T.replace("http", "ws") + "/api/ws?symbols=PKN.WA");
    ws.onopen = () => { results.ws = "open"; ws.close(); resolve(); };
    ws.onerror = () => { results.ws = "refused"; resolve(); };
  });
  window.results = results;
  document.title = "done";
})();
</script></body>`;

const browserTest = exe ? test : test.skip;
browserTest("a page on another origin (Chromium) cannot run a job, replay the quarantine, open the feed or rebind a name to ticksync", async () => {
  const evil = Bun.serve({ hostname: "127.0.0.2", port: 0, fetch: () => new Response(evilPage(`http://127.0.0.1:${port}`), { headers: { "Content-Type": "text/html" } }) });
  let browser: Browser | undefined;
  try {
    const before = { runs: (await runs()).length, q: await quarantined() };
    browser = await chromium.launch({
      executablePath: exe,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--host-resolver-rules=MAP rebind.attacker.example 127.0.0.1"],
    });
    const page = await (await browser.newContext()).newPage();
    await page.goto(`http://127.0.0.2:${evil.port}/`);
    await page.waitForFunction(() => (globalThis as any).document.title === "done", undefined, { timeout: 30_000 });
    const results = (await page.evaluate(() => (globalThis as any).results)) as Record<string, string>;
    console.log("evil page:", JSON.stringify(results));
    // Nothing changed: no run started by the API, no replay (a replay's run is recorded before
    // its answer), the quarantine as it was.
    expect({ runs: (await runs()).length, q: await quarantined() }).toEqual(before);
    // The requests were sent (opaque answers, loaded frames); the feed was refused.
    expect(results["run-nocors-text"]).toBe("opaque 0");
    expect(results["form-run"]).toBe("loaded");
    expect(results.ws).toBe("refused");
    // DNS rebinding: the attacker's name now points at ticksync; the page on that name reads nothing.
    const rebound = await page.goto(`http://rebind.attacker.example:${port}/api/audit`);
    expect(rebound!.status()).toBe(403);
    expect(await page.content()).not.toContain('"kind"');

    // The same from ticksync's own origin (what the dashboard does) works.
    await page.goto(`${open.url}/`);
    const status = await page.evaluate(async () => (await fetch("/api/quarantine/replay", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ all: true }) })).status);
    expect(status).toBe(200);
    expect((await runs()).length).toBe(before.runs + 1);
  } finally {
    await browser?.close();
    evil.stop(true);
  }
}, 120_000);

// The dashboard in headless Chromium (playwright-core) against a real `ticksync serve` on a temp
// SQLite store: it loads without console errors, bars committed to the store while the page is
// open appear on the live chart (over the WebSocket), a firing alert is acknowledged from the
// page, the page fits a phone-width screen. Screenshots go to test-artifacts/.
//
// The browser: $TICKSYNC_TEST_CHROMIUM (scripts/test.sh sets it from scripts/services/chromium.sh,
// which installs Debian's chromium when missing), else /usr/bin/chromium. Without one the tests
// skip with a warning, or fail when CI=true.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Bar } from "../src/domain/bar.ts";
import { MARKET_CODES } from "../src/domain/markets/index.ts";
import { ROOT, startServe, tempDir, waitFor, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const exe = process.env.TICKSYNC_TEST_CHROMIUM || (existsSync("/usr/bin/chromium") ? "/usr/bin/chromium" : "");
if (!exe) {
  if (process.env.CI === "true") throw new Error("CI=true and no Chromium for the dashboard tests (scripts/services/chromium.sh ensure installs it)");
  console.warn("WARNING: no Chromium (/usr/bin/chromium or TICKSYNC_TEST_CHROMIUM): the dashboard tests are skipped; apt-get install -y chromium");
}
const it = exe ? test : test.skip;

const ARTIFACTS = join(ROOT, "test-artifacts");
const TOKEN = "dashboard-test-token-0123456789";
const DAY = 86_400_000;
const dir = tempDir("ticksync-dash-");

/** Weekday dates (UTC) of the last `n` weekdays before today, oldest first. */
function recentWeekdays(n: number): string[] {
  const out: string[] = [];
  for (let t = Math.floor(Date.now() / DAY) * DAY - DAY; out.length < n; t -= DAY) {
    const d = new Date(t);
    if (d.getUTCDay() !== 0 && d.getUTCDay() !== 6) out.unshift(d.toISOString().slice(0, 10));
  }
  return out;
}
const dates = recentWeekdays(25);
function csv(base: number, bad?: number): string {
  const lines = dates.map((d, i) => {
    const c = base + i / 10;
    // One row with high below low: quarantined (and the quarantine alert fires).
    if (i === bad) return `${d},${c},${c - 2},${c + 1},${c},1000`;
    return `${d},${c},${c + 1},${c - 1},${c + 0.5},${1000 + i}`;
  });
  return ["Date,Open,High,Low,Close,Volume", ...lines].join("\n") + "\n";
}

let srv: Awaited<ReturnType<typeof startServe>> | undefined;
let browser: Browser | undefined;
let context: BrowserContext;
let page: Page;
const consoleErrors: string[] = [];

beforeAll(async () => {
  if (!exe) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFile(join(dir, "csv", "pkn_d.csv"), csv(60, 5));
  writeFile(join(dir, "csv", "cdr_d.csv"), csv(120));
  writeFile(join(dir, "csv", "kgh_d.csv"), csv(150));
  const config = writeFile(
    join(dir, "ticksync.toml"),
    [
      `[store]\nurl = "sqlite:store.db"`,
      // Reads need the token too: the page gets it from its token field.
      `[server]\ntokens = ["${TOKEN}"]\nauthReads = true`,
      `[stream]\npollMs = 50`,
      `[sources.files]\ntype = "csv"\npath = "csv"\nlayout = "stooq"\nmarket = "WSE"`,
      `[[jobs]]\nname = "load"\nsource = "files"\nrunOnStart = true`,
      `[alerts]\nintervalS = 1`,
      `[[alerts.rules]]\nkind = "quarantine"\nname = "quarantined-rows"\nwindowS = 3600\nmaxRate = 0\nseverity = "warning"`,
    ].join("\n\n") + "\n",
  );
  srv = await startServe(["--config", config], { env: { TICKSYNC_LOG__LEVEL: "warn" } });
  const auth = { Authorization: `Bearer ${TOKEN}` };
  await waitFor(async () => ((await (await fetch(`${srv!.url}/api/runs`, { headers: auth })).json()) as any).data.some((r: any) => r.outcome === "succeeded"), 15_000, "the start-up run");
  browser = await chromium.launch({ executablePath: exe, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (srv) {
    srv.proc.kill();
    await srv.proc.exited;
  }
});

const api = async (path: string, init: RequestInit = {}) => (await fetch(`${srv!.url}${path}`, { ...init, headers: { Authorization: `Bearer ${TOKEN}`, ...init.headers } })).json() as Promise<any>;
// Inside page.evaluate the page's globals are reached through globalThis (no DOM lib in this tsconfig).
const attr = (name: string) => page.locator("#candles").getAttribute(name);

it("the page asks for the token, then loads every panel without console errors", async () => {
  await page.goto(srv!.url);
  // authReads: without a token the API answers 401 and the page says what it needs.
  await waitFor(async () => (await page.locator("#notice").textContent())?.includes("API token"), 10_000, "the token notice");
  await page.fill("#token", TOKEN);
  await page.click("#token-form button");
  await waitFor(async () => (await page.evaluate(() => localStorage.getItem("ticksync.token"))) === TOKEN, 5_000, "the stored token");
  // From here on (the token is stored) the page must not log a single error.
  consoleErrors.length = 0;
  await page.reload();
  await waitFor(async () => Number(await attr("data-bars")) >= dates.length - 1, 15_000, "the chart's history");
  await waitFor(async () => (await attr("data-ws")) === "live", 10_000, "the live feed");
  await waitFor(async () => (await page.locator("#heatmap .cell.stored").count()) > 0, 10_000, "the freshness heat map");
  await waitFor(async () => (await page.locator("#runs tbody tr").count()) > 0 && (await page.locator("#quarantine tbody tr[data-id]").count()) > 0, 10_000, "runs and quarantine");
  await waitFor(async () => (await page.locator("#store-pill").textContent())?.includes("ready"), 10_000, "the store pill");
  await waitFor(async () => (await page.locator("#rates canvas").count()) > 0, 10_000, "the rates chart");
  // The resources panel: the process's figures from /api/resources, and their chart.
  await waitFor(async () => (await page.locator("#resources .tile").count()) === 5 && (await page.locator("#resources-chart canvas").count()) > 0, 10_000, "the resources panel");
  expect(await page.locator('#resources [data-key="fds"] b').textContent()).toMatch(/^[1-9][\d,]*$/);
  expect(await page.locator('#resources [data-key="rss"] b').textContent()).toMatch(/^[\d.]+ (MiB|GiB)$/);
  expect(await page.locator('#resources [data-key="cpu"] b').textContent()).toMatch(/^[\d.,]+%$/);
  // Every market of the registry in the header, each with its phase.
  await waitFor(async () => (await page.locator("#markets .pill").count()) === MARKET_CODES.length, 10_000, "every market's status");
  expect((await page.locator("#markets").textContent())!).toContain(`${MARKET_CODES.at(-1)} `);
  expect(await page.locator("#candles canvas").count()).toBeGreaterThan(0);
  expect(await page.locator("#sources tbody").textContent()).toContain("files");
  expect(await page.locator("#quality tbody").textContent()).toContain("high");
  expect(await page.locator("#quarantine tbody").textContent()).toContain("high");
  // The heat map: three symbols, one of them with a missing session (its quarantined row).
  expect(await page.locator("#heatmap .cell.missing").count()).toBeGreaterThanOrEqual(1);
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-desktop.png"), fullPage: true });
  expect(consoleErrors).toEqual([]);
}, 60_000);

it("bars committed to the store while the page is open appear on the chart over the WebSocket", async () => {
  const symbol = await attr("data-symbol");
  expect(symbol).toMatch(/\.WA$/);
  const before = await attr("data-last-ts");
  const today = Math.floor(Date.now() / DAY) * DAY;
  expect(Date.parse(before!)).toBeLessThan(today);
  // Another writer (this test process) commits to the same SQLite file; serve's tailer streams it.
  const store = sqliteStore(`sqlite:${join(dir, "store.db")}`);
  try {
    const runId = await store.startRun({ kind: "ingest", source: "files" });
    const bar = (close: number): Bar => ({ source: "files", symbol: symbol!, interval: "1d", ts: today, open: 200, high: 210, low: 190, close, volume: 4321 });
    await store.commitBatch({ runId, source: "files", bars: [bar(205.5)], quarantine: [], read: 1 });
    await waitFor(async () => (await attr("data-last-ts")) === new Date(today).toISOString() && (await attr("data-last-close")) === "205.5", 10_000, "the new bar on the chart");
    // The same bar changed (an update event) moves the chart's last candle.
    await store.commitBatch({ runId, source: "files", bars: [bar(207.25)], quarantine: [], read: 1 });
    await waitFor(async () => (await attr("data-last-close")) === "207.25", 10_000, "the updated bar on the chart");
    await store.finishRun(runId, { outcome: "succeeded", read: 2, inserted: 1, updated: 1, unchanged: 0, quarantined: 0, fromTs: today, toTs: today, quality: null });
  } finally {
    await store.close();
  }
  const state = await page.evaluate(() => (globalThis as any).ticksync.chart);
  expect(state).toMatchObject({ symbol, lastBar: { close: 207.25, volume: 4321 } });
  expect(state.lastEventId).toBeGreaterThan(0);
  expect(await page.locator("#last-bar").textContent()).toContain("C 207.25");
  await page.locator("#live-card").screenshot({ path: join(ARTIFACTS, "dashboard-live-chart.png") });
  expect(consoleErrors).toEqual([]);
}, 30_000);

it("a source's failed run shows as a notice at once (provider_status over the WebSocket), not at the next poll", async () => {
  const store = sqliteStore(`sqlite:${join(dir, "store.db")}`);
  try {
    const runId = await store.startRun({ kind: "ingest", source: "files" });
    await store.finishRun(runId, { outcome: "failed", read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error: "HTTP 503 from the provider" });
    // serve reads the run ledger every stream.statusPollSeconds (5 s by default).
    await waitFor(async () => (await page.locator("#notice").textContent())?.includes(`source files: run ${runId} failed: HTTP 503`), 15_000, "the failure notice");
  } finally {
    await store.close();
  }
  expect(consoleErrors).toEqual([]);
}, 30_000);

it("a firing alert is acknowledged from the page (with the page's token)", async () => {
  const button = page.locator('button[data-ack="quarantined-rows"]');
  await waitFor(async () => (await button.count()) === 1, 15_000, "the firing alert's button");
  await button.click();
  await waitFor(async () => (await api("/api/alerts")).data.find((a: any) => a.name === "quarantined-rows")?.acknowledged, 10_000, "the acknowledgement");
  const alert = (await api("/api/alerts")).data.find((a: any) => a.name === "quarantined-rows");
  expect(alert).toMatchObject({ status: "firing", acknowledged: true, acknowledgedBy: expect.stringMatching(/^token sha256:[0-9a-f]{12}$/) });
  await waitFor(async () => (await page.locator('#alerts tr[data-alert="quarantined-rows"]').getAttribute("data-acknowledged")) === "true", 10_000, "the row acknowledged");
  expect(await button.count()).toBe(0);
  await page.locator("#alerts-card").screenshot({ path: join(ARTIFACTS, "dashboard-alert-acknowledged.png") });
  expect(consoleErrors).toEqual([]);
}, 30_000);

it("replay from the quarantine browser validates the rows again and reports what stayed", async () => {
  await page.click("#q-replay-all");
  await waitFor(async () => (await page.locator("#q-result").textContent())?.includes("examined"), 10_000, "the replay result");
  const text = (await page.locator("#q-result").textContent())!;
  // Nothing was fixed: the high < low row fails again and stays.
  expect(text).toContain("1 examined");
  expect(text).toContain("1 still failing");
  expect((await api("/api/quarantine")).data).toHaveLength(1);
  expect((await api("/api/runs?limit=5")).data.some((r: any) => r.kind === "replay" && r.params.startedBy?.by === "api")).toBe(true);
  expect(consoleErrors).toEqual([]);
}, 30_000);

it("a phone-width screen renders without horizontal overflow", async () => {
  const phone = await browser!.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  try {
    await phone.addInitScript((t) => localStorage.setItem("ticksync.token", t), TOKEN);
    const p = await phone.newPage();
    const errors: string[] = [];
    p.on("console", (m) => void (m.type() === "error" && errors.push(m.text())));
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(srv!.url);
    await waitFor(async () => Number(await p.locator("#candles").getAttribute("data-bars")) > 0, 15_000, "the chart on the phone");
    await waitFor(async () => (await p.locator("#heatmap .cell").count()) > 0, 10_000, "the heat map on the phone");
    const { scrollWidth, innerWidth } = await p.evaluate(() => ({ scrollWidth: (globalThis as any).document.documentElement.scrollWidth, innerWidth: (globalThis as any).innerWidth }));
    expect(scrollWidth).toBeLessThanOrEqual(innerWidth);
    // Every card fits the screen (wide tables and the heat map scroll inside their card).
    const widest = await p.evaluate(() => Math.max(...[...(globalThis as any).document.querySelectorAll(".card")].map((c: any) => c.getBoundingClientRect().right)));
    expect(widest).toBeLessThanOrEqual(innerWidth);
    await p.screenshot({ path: join(ARTIFACTS, "dashboard-phone.png"), fullPage: true });
    expect(errors).toEqual([]);
  } finally {
    await phone.close();
  }
}, 30_000);

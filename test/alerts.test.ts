// Alert rules against a real SQLite store; notifications to a local webhook receiver and a local
// SMTP receiver (a real SMTP dialogue with nodemailer): announced once while firing, a resolve
// message when cleared, acknowledgement kept in the store.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import * as v from "valibot";
import { tempDir, waitFor } from "./helpers.ts";
import { startSmtp } from "./fakes/smtp.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { alertsConfigSchema, createAlerts, emailNotifier, webhookNotifier, type AlertsConfig } from "../src/monitor/alerts.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-alerts-");
const smtp = startSmtp();
const posts: any[] = [];
const hook = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    posts.push(await req.json());
    return new Response("ok");
  },
});
afterAll(() => {
  smtp.stop();
  hook.stop(true);
});

const day = (d: string) => Date.parse(`${d}T00:00:00Z`);

test("rules fire once, stay quiet while firing, can be acknowledged, and resolve; both notifiers deliver", async () => {
  const url = `sqlite:${join(dir, "a.db")}`;
  const store = sqliteStore(url);
  await store.migrate();
  const cfg: AlertsConfig = v.parse(alertsConfigSchema, {
    rules: [
      { kind: "errors", name: "failed-runs", windowS: 3600, maxFailed: 0, severity: "critical" },
      { kind: "quarantine", name: "quarantine-rate", maxRate: 0.1 },
      { kind: "staleness", name: "wse-stale", market: "WSE", interval: "1d", maxAgeS: 86_400 * 3 },
      { kind: "consistency", name: "pb-consistent" },
      { kind: "disk", name: "disk", minFreeRatio: 0 },
    ],
    webhook: { url: `http://127.0.0.1:${hook.port}/hook` },
    email: { url: `smtp://127.0.0.1:${smtp.port}`, from: "ticksync@example.com", to: ["ops@example.com"] },
  });
  let now = day("2025-03-05") + 12 * 3600_000;
  let open = true;
  let consistency = [{ sink: "app", collection: "stock_data", status: "consistent", differingDays: 0 }];
  const inputs = { now: () => now, isOpen: () => open, consistency: async () => consistency, dataPath: dir };
  const alerts = createAlerts(store, cfg, inputs, [webhookNotifier(cfg.webhook!), emailNotifier(cfg.email!)]);

  // A failed run, 30 of 100 rows quarantined, and a stale WSE series.
  const r1 = await store.startRun({ kind: "ingest", source: "wse" });
  await store.commitBatch({ runId: r1, source: "wse", bars: [{ source: "wse", symbol: "PKN.WA", interval: "1d", ts: day("2025-02-20"), open: 1, high: 2, low: 1, close: 2, volume: 5 }], quarantine: [], read: 100 });
  await store.finishRun(r1, { outcome: "failed", read: 100, inserted: 1, updated: 0, unchanged: 0, quarantined: 30, fromTs: null, toTs: null, quality: null, error: "stooq: 503" });
  // Runs are timed by the clock of the store, ours is pinned: move "now" to the run's time.
  now = (await store.getRun(r1))!.startedAt + 1000;
  const first = await alerts.evaluate();
  const by = Object.fromEntries(first.map((s) => [s.name, s]));
  expect(by["failed-runs"]).toMatchObject({ status: "firing", value: 1 });
  expect(by["failed-runs"]!.message).toContain("stooq: 503");
  expect(by["quarantine-rate"]).toMatchObject({ status: "firing" });
  expect(by["quarantine-rate"]!.value).toBeCloseTo(0.3);
  expect(by["pb-consistent"]).toMatchObject({ status: "ok" });
  expect(by["disk"]).toMatchObject({ status: "ok" });
  expect(by["wse-stale"]!.status).toBe("firing");

  await waitFor(() => smtp.mails.length === 3, 10_000, "three e-mails");
  expect(posts.length).toBe(3);
  expect(posts.map((p) => p.text).join("\n")).toContain("🔴 FIRING [ticksync] failed-runs (errors, critical)");
  expect(smtp.mails[0]!.to).toEqual(["ops@example.com"]);
  expect(smtp.mails.map((m) => m.data).join("\n")).toContain("Subject: [ticksync] FIRING quarantine-rate (warning)");

  // Still firing: nothing new is sent.
  await alerts.evaluate();
  expect(posts.length).toBe(3);

  // Acknowledged: kept in the store, seen by a new instance (a restart, another replica).
  expect(await alerts.ack("failed-runs", "alice")).toMatchObject({ acknowledged: true, acknowledgedBy: "alice" });
  const again = createAlerts(store, cfg, inputs, []);
  expect((await again.evaluate()).find((s) => s.name === "failed-runs")).toMatchObject({ status: "firing", acknowledged: true, acknowledgedBy: "alice" });

  // The window moves past the failed run, the market closes, a sink differs: two resolve, one fires.
  now += 2 * 3600_000;
  open = false;
  consistency = [{ sink: "app", collection: "stock_data", status: "inconsistent", differingDays: 4 }];
  const later = await alerts.evaluate();
  expect(later.filter((s) => s.status === "firing").map((s) => s.name)).toEqual(["pb-consistent"]);
  const texts = posts.slice(3).map((p) => p.text);
  expect(texts.filter((t) => t.startsWith("✅ RESOLVED")).length).toBe(3);
  expect(texts.some((t) => t.includes("pb-consistent") && t.includes("app/stock_data (4 days)"))).toBe(true);
  await waitFor(() => smtp.mails.length === 3 + texts.length, 10_000, "the e-mails of the changes");
  await store.close();
});

test("a rule that cannot be evaluated fires with the reason; config errors name the field", () => {
  const bad = v.safeParse(alertsConfigSchema, { rules: [{ kind: "staleness", name: "x", market: "XYZ", maxAgeS: 10 }] });
  expect(bad.success).toBe(false);
  expect(bad.issues?.[0]?.message).toContain("WSE, NYSE, LSE, TSX or ASX");
  const bad2 = v.safeParse(alertsConfigSchema, { email: { url: "http://x", from: "a@b.c", to: ["d@e.f"] } });
  expect(bad2.success).toBe(false);
});

// How provider answers and symbols that cannot be loaded are named: Yahoo's HTTP 400 "Data
// doesn't exist for startDate …" is no_data (not a client error), and a symbol with the suffix of
// a market ticksync does not know says which suffix and which markets are known.
import { describe, expect, test } from "bun:test";
import type { Store } from "../src/stores/types.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { normaliseSymbol, MARKET_SUFFIX } from "../src/domain/symbols.ts";
import { syntheticBars, type FakeProviders } from "./fakes/providers.ts";
import { loadedSources, useProviderTestEnv } from "./provider-env.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
let fake: FakeProviders;
let store: Store;
const dir = useProviderTestEnv("ticksync-proverr-", (env) => void ({ fake, store } = env));

const loaded = (sources: Record<string, unknown>) => loadedSources(dir, sources);
const yahoo = (extra: Record<string, unknown>) => ({ type: "yahoo", baseUrl: `${fake.url}/yahoo`, rateLimit: { perSecond: 200 }, retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 }, ...extra });

describe("yahoo: Data doesn't exist for startDate", () => {
  test("the fake answers it in Yahoo's format for a period after a delisted symbol's last bar", async () => {
    fake.setBars("yahoo", "OLD", syntheticBars("OLD", "2020-01-02", "2020-06-30", { weekdaysOnly: true }));
    const p1 = Date.UTC(2024, 0, 1) / 1000;
    const p2 = Date.UTC(2024, 5, 1) / 1000;
    const res = await fetch(`${fake.url}/yahoo/v8/finance/chart/OLD?period1=${p1}&period2=${p2}&interval=1d`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ chart: { result: null, error: { code: "Bad Request", description: `Data doesn't exist for startDate = ${p1}, endDate = ${p2}` } } });
  });

  test("is recorded as no_data, not client_error", async () => {
    fake.setBars("yahoo", "OLD", syntheticBars("OLD", "2020-01-02", "2020-06-30", { weekdaysOnly: true }));
    const s = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["OLD.US"], start: "2024-01-01" }) }), store, source: "y" });
    expect(s.outcome).toBe("failed");
    expect(s.failures).toEqual({ no_data: 1 });
    expect(s.failedStreams).toEqual({ no_data: ["OLD.US"] });
    expect((await store.listRunStreams(s.runId, "failed"))[0]).toMatchObject({ stream: "OLD.US", cause: "no_data" });
  });

  test("over a few days (a weekend's incremental read) it is just nothing new", async () => {
    fake.setBars("yahoo", "OLD", syntheticBars("OLD", "2020-01-02", "2020-06-30", { weekdaysOnly: true }));
    const from = Date.parse("2024-01-06");
    const s = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["OLD.US"] }) }), store, source: "y", kind: "backfill", range: { from, to: from + 2 * 86_400_000 } });
    expect(s).toMatchObject({ outcome: "succeeded", read: 0, failures: {} });
    expect(fake.requests.filter((r) => r.provider === "yahoo").map((r) => r.status)).toEqual([400]);
  });
});

describe("a symbol with the suffix of a market ticksync does not know", () => {
  const known = Object.entries(MARKET_SUFFIX).map(([market, suffix]) => `.${suffix} (${market}`);

  test.each([
    ["NPN.JO", ".JO"],
    ["GC=F", "=F"],
  ])("%s names its suffix and the known markets", (symbol, suffix) => {
    const r = normaliseSymbol(symbol);
    expect(r.ok).toBe(false);
    const reason = (r as { reason: string }).reason;
    expect(reason).toStartWith(`${symbol}: unknown market suffix "${suffix}" (known: `);
    expect(reason).not.toContain("has no market suffix");
    for (const k of known) expect(reason).toContain(k);
  });

  test("a bare ticker still says it has no suffix", () => {
    expect(normaliseSymbol("PKN")).toEqual({ ok: false, reason: 'symbol "PKN" has no market suffix and no default market is configured' });
  });

  test("a provider source with such a symbol fails with that reason", async () => {
    const s = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["NPN.JO"] }) }), store, source: "y" });
    expect(s.outcome).toBe("failed");
    expect(s.error).toStartWith('source y: NPN.JO: unknown market suffix ".JO" (known: .WA (WSE');
  });
});

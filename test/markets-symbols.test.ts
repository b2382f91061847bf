// Issue #15's new-user case through Yahoo: an ASX listing, a currency pair and a crypto pair in one
// source. Each is asked for in Yahoo's own spelling (APS.AX, EURGBP=X, BTC-USD), stored under one
// canonical symbol of its own market (APS.AX, EURGBP.FX, BTC-USD.CRYPTO), with nothing
// quarantined and no gap warnings from another market's calendar.
import { describe, expect, test } from "bun:test";
import type { Store } from "../src/stores/types.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { syntheticBars, type FakeProviders } from "./fakes/providers.ts";
import { loadedSources, useProviderTestEnv } from "./provider-env.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
let fake: FakeProviders;
let store: Store;
const dir = useProviderTestEnv("ticksync-mktsym-", (env) => void ({ fake, store } = env));

const yahoo = (extra: Record<string, unknown>) => ({
  type: "yahoo",
  baseUrl: `${fake.url}/yahoo`,
  rateLimit: { perSecond: 200 },
  retry: { attempts: 2, rateLimitAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
  start: "2024-01-02",
  ...extra,
});
const dates = async (symbol: string) => (await store.queryBars({ symbol, interval: "1d", limit: 1000 })).map((b) => new Date(b.ts).toISOString().slice(0, 10));

describe("one source, three markets", () => {
  // Sydney's January: Australia Day (Friday 2024-01-26) is a holiday; New Year's Day too.
  const asx = syntheticBars("APS.AX", "2024-01-02", "2024-01-31").filter((b) => b.date !== "2024-01-26");
  const fx = syntheticBars("EURGBP=X", "2024-01-02", "2024-01-31");
  const btc = syntheticBars("BTC-USD", "2024-01-01", "2024-01-31", { weekdaysOnly: false });

  test("each is fetched in Yahoo's spelling and stored under its canonical symbol and market's dates", async () => {
    fake.setBars("yahoo", "APS.AX", asx);
    fake.setBars("yahoo", "EURGBP=X", fx);
    fake.setBars("yahoo", "BTC-USD", btc);
    const s = await ingestFromConfig({ loaded: loadedSources(dir, { y: yahoo({ symbols: ["APS.AX", "EURGBP=X", "BTC-USD.CRYPTO"] }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    expect(s.quarantined).toBe(0);
    expect(s.gapWarnings).toBe(0);
    const asked = fake.requests.filter((r) => r.provider === "yahoo").map((r) => decodeURIComponent(r.path.split("/").at(-1)!));
    expect(new Set(asked)).toEqual(new Set(["APS.AX", "EURGBP=X", "BTC-USD"]));
    expect([...new Set((await store.listSeries()).map((x) => x.symbol))].sort()).toEqual(["APS.AX", "BTC-USD.CRYPTO", "EURGBP.FX"]);
    expect(await dates("APS.AX")).toEqual(asx.map((b) => b.date));
    expect(await dates("EURGBP.FX")).toEqual(fx.map((b) => b.date));
    expect(await dates("BTC-USD.CRYPTO")).toEqual(btc.filter((b) => b.date >= "2024-01-02").map((b) => b.date));
  });

  test("a bare pair takes the source's market; an unknown suffix names the known markets", async () => {
    fake.setBars("yahoo", "BTC-USD", btc);
    const ok = await ingestFromConfig({ loaded: loadedSources(dir, { y: yahoo({ symbols: ["BTC-USD"], market: "CRYPTO" }) }), store, source: "y" });
    expect(ok.outcome).toBe("succeeded");
    expect((await dates("BTC-USD.CRYPTO")).length).toBeGreaterThan(20);
    const bad = await ingestFromConfig({ loaded: loadedSources(dir, { z: yahoo({ symbols: ["GC=F"] }) }), store, source: "z" });
    expect(bad.outcome).toBe("failed");
    const text = bad.error ?? "";
    expect(text).toContain('unknown market suffix "=F"');
    expect(text).toContain(".AX (ASX");
    expect(text).toContain(".FX (FX");
  });
});

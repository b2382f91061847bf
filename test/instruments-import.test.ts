// `ticksync instruments import`: a user's instrument list (ISIN, sector, …, which no provider we
// read publishes) through the real CLI into a real SQLite file and a real PostgreSQL schema; bad
// lines (a wrong ISIN check digit, no symbol, a symbol twice) rejected by line number while the
// others are stored; /api/symbols shows the ISIN.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { isinCheckDigit, isinProblem } from "../src/domain/isin.ts";
import { marketChoices } from "../src/domain/markets/index.ts";
import { createApp } from "../src/http/app.ts";
import { apiClient, ok } from "../src/http/client/index.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { parseInstrumentsCsv } from "../src/sources/instruments.ts";
import { SourceError } from "../src/sources/types.ts";
import type { Store } from "../src/stores/types.ts";
import { cli, stooqCsv, tempDir, waitFor, writeFile } from "./helpers.ts";
import { STORES } from "./stores.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-instruments-");
const barsDir = join(dir, "bars");
writeFile(join(barsDir, "pkn_d.csv"), stooqCsv([["2024-01-02", 60, 61, 59, 60.5, 1000], ["2024-01-03", 60.5, 61, 60, 60.2, 1000]]));
writeFile(join(barsDir, "cdr_d.csv"), stooqCsv([["2024-01-02", 120, 121, 119, 120.5, 500], ["2024-01-03", 120.5, 122, 120, 121, 700]]));

// Line numbers as an editor shows them: the header is line 1.
const LIST = [
  "Symbol,Name,ISIN,Exchange,Currency,Sector,Industry,Type,Notes",
  "PKN,ORLEN,PLPKN0000018,WSE,pln,Energy,Oil & Gas,EQUITY,first",
  'cdr.pl,"CD PROJEKT, S.A.",plopttc00011,WSE,PLN,Technology,Video games,EQUITY,',
  "XYZ,Bad Check Digit,PLPKN0000019,WSE,PLN,,,EQUITY,",
  ",No Symbol,,,,,,,",
  "PKN.WA,ORLEN again,PLPKN0000018,WSE,PLN,,,,",
  "KGH,KGHM,,WSE,PLN,Materials,,EQUITY,no ISIN given",
].join("\n");
const listFile = writeFile(join(dir, "gpw.csv"), LIST + "\n");

describe("ISIN check digit (ISO 6166)", () => {
  test("published ISINs pass", () => {
    for (const isin of ["US0378331005", "AU0000XVGZA3", "GB0002634946", "PLPKN0000018", "PLOPTTC00011", "DE000BAY0017"]) expect(isinProblem(isin)).toBeNull();
    // Letters count as two digits: A = 10 … Z = 35.
    expect(isinCheckDigit("AU0000XVGZA")).toBe(3);
  });
  test("a wrong check digit or shape is named", () => {
    expect(isinProblem("US0378331006")).toBe("ISIN US0378331006 has check digit 6, expected 5 (a typo, or another column?)");
    expect(isinProblem("US037833100")).toContain("is not 2 letters, 9 letters or digits and a check digit");
    expect(isinProblem("1S0378331005")).toContain("is not 2 letters");
  });
});

describe("reading an instrument list", () => {
  test("semicolons, a BOM, other header names mapped, unknown columns ignored", () => {
    const text = "\uFEFFKod ISIN;Skrót;Nazwa;Rynek\nPLPKN0000018;PKN;ORLEN;Główny\n";
    const r = parseInstrumentsCsv(text, { source: "gpw", market: "WSE", columns: { symbol: "skrót", isin: "KOD ISIN", name: "nazwa" } });
    expect(r.rejected).toEqual([]);
    expect(r.ignored).toEqual(["Rynek"]);
    expect(r.instruments).toEqual([{ source: "gpw", symbol: "PKN.WA", name: "ORLEN", isin: "PLPKN0000018", exchange: null, currency: null, type: null, sector: null, industry: null }]);
  });
  test("a bare ticker without a market is rejected saying to give --market", () => {
    const r = parseInstrumentsCsv("symbol\nPKN\nAAPL.US\n", { source: "x" });
    expect(r.instruments.map((i) => i.symbol)).toEqual(["AAPL.US"]);
    expect(r.rejected).toEqual([{ line: 2, reason: `symbol "PKN" has no market suffix and no default market is configured (give --market ${marketChoices()})` }]);
  });
  test("no symbol column, or a mapped column that is not there, is an error for the file", () => {
    expect(() => parseInstrumentsCsv("name,isin\nORLEN,PLPKN0000018\n", { source: "x" })).toThrow(SourceError);
    expect(() => parseInstrumentsCsv("name,isin\n", { source: "x" })).toThrow("no symbol column in the header (name, isin)");
    expect(() => parseInstrumentsCsv("symbol\n", { source: "x", columns: { isin: "ISIN code" } })).toThrow('no column "ISIN code" (for isin)');
  });
});

describe("the command line", () => {
  test("usage errors exit 2", async () => {
    const a = await cli(["instruments", "import"]);
    expect([a.code, a.stderr]).toEqual([2, expect.stringContaining("instruments import needs --file <csv>")]);
    const b = await cli(["instruments", "import", "--file", listFile, "--market", "XYZ"]);
    expect([b.code, b.stderr]).toEqual([2, expect.stringContaining(`--market expects ${marketChoices()}`)]);
    const c = await cli(["instruments", "import", "--file", listFile, "--columns", "ticker=Symbol"]);
    expect([c.code, c.stderr]).toEqual([2, expect.stringContaining('--columns: unknown field "ticker"')]);
  });
  test("a file that cannot be read fails the run: exit 1, recorded", async () => {
    const url = `sqlite:${join(dir, "missing.db")}`;
    const r = await cli(["instruments", "import", "--file", join(dir, "nope.csv"), "--store", url, "--json"]);
    expect(r.code).toBe(1);
    const res = JSON.parse(r.stdout);
    expect(res.error).toBe(`cannot read ${join(dir, "nope.csv")}: ENOENT`);
    expect(res).toMatchObject({ outcome: "failed", rows: 0, inserted: 0 });
  });
});

for (const kind of STORES.filter((k) => k.kind !== "questdb")) {
  describe.skipIf(kind.unavailable !== null)(`instruments import into ${kind.kind}${kind.unavailable ? ` (skipped: ${kind.unavailable})` : ""}`, () => {
    let url: string;
    let store: Store;
    let app: ReturnType<typeof createApp>;
    let first: Awaited<ReturnType<typeof cli>>;

    beforeAll(async () => {
      url = kind.freshUrl(dir);
      const ingest = await cli(["ingest", "--file", barsDir, "--market", "WSE", "--store", url]);
      expect(ingest.code).toBe(0);
      first = await cli(["instruments", "import", "--file", listFile, "--source", "gpw", "--market", "WSE", "--store", url]);
      store = kind.open(url);
      app = createApp({ store, metrics: ticksyncMetrics() });
    });
    afterAll(async () => {
      await store?.close();
    });

    test("bad lines are rejected by line number and reason, exit 4; the others are stored", async () => {
      expect(first.code).toBe(4);
      expect(first.stderr).toContain("gpw.csv:4: rejected: XYZ.WA: ISIN PLPKN0000019 has check digit 9, expected 8");
      expect(first.stderr).toContain("gpw.csv:5: rejected: no symbol");
      expect(first.stderr).toContain("gpw.csv:6: rejected: PKN.WA is already on line 2");
      expect(first.stdout).toContain("6 rows, inserted 3, updated 0, unchanged 0, rejected 3 (columns not read: Notes)");
      const stored = (await store.listInstruments!()).map(({ updatedAt, ...i }) => i);
      expect(stored).toEqual([
        { source: "gpw", symbol: "CDR.WA", name: "CD PROJEKT, S.A.", exchange: "WSE", currency: "PLN", type: "EQUITY", sector: "Technology", industry: "Video games", isin: "PLOPTTC00011" },
        { source: "gpw", symbol: "KGH.WA", name: "KGHM", exchange: "WSE", currency: "PLN", type: "EQUITY", sector: "Materials", industry: null, isin: null },
        { source: "gpw", symbol: "PKN.WA", name: "ORLEN", exchange: "WSE", currency: "PLN", type: "EQUITY", sector: "Energy", industry: "Oil & Gas", isin: "PLPKN0000018" },
      ]);
      const run = (await store.listRuns({ limit: 10 })).find((r) => r.kind === "instruments")!;
      expect(run).toMatchObject({ source: "gpw", outcome: "failed", read: 6, inserted: 3 });
      expect(run.error).toStartWith("3 of 6 rows rejected: line 4: XYZ.WA: ISIN PLPKN0000019 has check digit 9");
    });

    test("/api/symbols shows the ISIN beside the series", async () => {
      const r = await ok(apiClient({ app }).GET("/api/symbols"));
      // Symbols with stored series; KGH.WA has none, so it is not listed.
      expect(r.data.map((s) => [s.symbol, s.isin, s.name, s.sector])).toEqual([
        ["CDR.WA", "PLOPTTC00011", "CD PROJEKT, S.A.", "Technology"],
        ["PKN.WA", "PLPKN0000018", "ORLEN", "Energy"],
      ]);
      expect(r.data[1]!.instruments).toEqual([expect.objectContaining({ source: "gpw", isin: "PLPKN0000018", updatedAt: expect.any(String) })]);
    });

    test("the file fixed and imported again: exit 0, equal records not written again", async () => {
      const before = new Map((await store.listInstruments!()).map((i) => [i.symbol, i.updatedAt]));
      // A record written again would carry a later updatedAt: wait for the clock to pass them.
      const newest = Math.max(...[...before.values()].map((t) => new Date(t as string | number).getTime()));
      await waitFor(() => Date.now() > newest, 5000, "the clock past the stored updatedAt");
      const fixed = writeFile(join(dir, `gpw-fixed-${kind.kind}.csv`), [LIST.split("\n")[0], LIST.split("\n")[1], LIST.split("\n")[2], "KGH,KGHM,PLKGHM000017,WSE,PLN,Basic Materials,Copper,EQUITY,"].join("\r\n"));
      const r = await cli(["instruments", "import", "--file", fixed, "--source", "gpw", "--market", "WSE", "--store", url, "--json"]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ outcome: "succeeded", rows: 3, inserted: 0, updated: 1, unchanged: 2, rejected: [], error: null });
      const after = await store.listInstruments!();
      expect(after.find((i) => i.symbol === "KGH.WA")).toMatchObject({ isin: "PLKGHM000017", sector: "Basic Materials", industry: "Copper" });
      for (const s of ["PKN.WA", "CDR.WA"]) expect(after.find((i) => i.symbol === s)!.updatedAt).toBe(before.get(s)!);
    });
  });
}

// The dashboard's shared state: the typed API client (with the token the user saved), what the
// browser tests read (window.ticksync), the polling loop, and the chart library's setup.
// Panels call each other through `hooks` (set by dashboard.ts) so no two modules import each other.
import type * as LightweightCharts from "lightweight-charts";
import { apiClient, ApiError, ok, type paths } from "../../client/index.ts";
import { notice } from "./dom.ts";

declare global {
  interface Window {
    /** lightweight-charts' standalone build, loaded by index.html before this script. */
    LightweightCharts: typeof LightweightCharts;
    ticksync: typeof state;
  }
}

/** The JSON body of a GET route's 200 answer, as the OpenAPI document describes it. */
export type Body<P extends keyof paths> = paths[P] extends { get: { responses: { 200: { content: { "application/json": infer B } } } } } ? B : never;
export type Run = Body<"/api/runs">["data"][number];
export type Sink = Body<"/api/sinks">["data"][number];
export type BarRow = Body<"/api/bars">["data"][number];

const TOKEN_KEY = "ticksync.token";
export const state = {
  token: localStorage.getItem(TOKEN_KEY) || "",
  runs: [] as Run[],
  sinks: [] as Sink[],
  chart: { symbol: "", source: "", interval: "1d", bars: 0, lastBar: null as BarRow | null, lastEventId: 0, updates: 0 },
  ws: "closed",
  errors: [] as string[],
};
window.ticksync = state;

export function saveToken(token: string): void {
  state.token = token;
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** The API, on this page's origin, with the saved token (read at each request: it may change). */
export const api = apiClient({ token: () => state.token || undefined });
export { ok };

/** What panels ask of each other. */
export const hooks = {
  refreshRuns: async (): Promise<void> => {},
  refreshMarkets: async (): Promise<void> => {},
  filterQuarantine: (_f: { source?: string; rule?: string; run?: number }): void => {},
};

const tickers: (() => Promise<void>)[] = [];
/** Every poller again now (after the token changed). */
export const tickAll = () => tickers.forEach((t) => void t());

/** Runs fn now and every ms; a failure shows once in the notice bar and clears when it works again. */
export function every(ms: number, name: string, fn: () => Promise<void>): void {
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      await fn();
      if (state.errors.includes(name)) {
        state.errors = state.errors.filter((e) => e !== name);
        if (!state.errors.length) notice("");
      }
    } catch (e) {
      if (!state.errors.includes(name)) state.errors.push(name);
      const status = e instanceof ApiError ? e.status : 0;
      notice(status === 401 || status === 403 ? `${name}: the server wants an API token (enter it above)` : `${name}: ${e instanceof Error ? e.message : String(e)}`, "bad");
    } finally {
      busy = false;
    }
  };
  tickers.push(tick);
  void tick();
  setInterval(tick, ms);
}

export const LWC = () => window.LightweightCharts;
export function chartColors() {
  const cs = getComputedStyle(document.documentElement);
  return { text: cs.getPropertyValue("--muted").trim() || "#59636e", line: cs.getPropertyValue("--line").trim() || "#d8dee4" };
}
export function newChart(el: HTMLElement, timeVisible: boolean): LightweightCharts.IChartApi {
  const c = chartColors();
  return LWC().createChart(el, {
    autoSize: true,
    layout: { background: { type: LWC().ColorType.Solid, color: "transparent" }, textColor: c.text, attributionLogo: true },
    grid: { vertLines: { color: c.line }, horzLines: { color: c.line } },
    rightPriceScale: { borderColor: c.line },
    timeScale: { borderColor: c.line, timeVisible, secondsVisible: false },
  });
}
/** Seconds since the epoch as the chart library's time. */
export const chartTime = (seconds: number) => seconds as LightweightCharts.UTCTimestamp;

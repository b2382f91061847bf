// The dashboard's live candlestick chart: a series' recent history from /api/bars, then the
// WebSocket feed (/api/ws) keeps it current. On reconnect the feed resumes from the last event
// id it saw (the server replays the gap), else takes a fresh snapshot. Its protocol: docs/stream.md.
import type { IChartApi, ISeriesApi } from "lightweight-charts";
import { $, $select, h, message, notice, num } from "./dom.ts";
import { api, chartTime, hooks, LWC, newChart, ok, state, type BarRow, type Body } from "./state.ts";

const candles = {
  chart: null as IChartApi | null,
  price: null as ISeriesApi<"Candlestick"> | null,
  volume: null as ISeriesApi<"Histogram"> | null,
  byTime: new Map<number, BarRow>(),
  pending: undefined as ReturnType<typeof setTimeout> | undefined,
};
const el = () => $("#candles");
const seconds = (b: BarRow) => Math.floor(Date.parse(b.ts) / 1000);
const toPoint = (b: BarRow) => ({ time: chartTime(seconds(b)), open: b.open, high: b.high, low: b.low, close: b.close });
const toVolume = (b: BarRow) => ({ time: chartTime(seconds(b)), value: b.volume, color: b.close >= b.open ? "rgba(45,164,78,.35)" : "rgba(209,36,47,.35)" });

function ensureCandles(): { chart: IChartApi; price: ISeriesApi<"Candlestick">; volume: ISeriesApi<"Histogram"> } {
  if (!candles.chart || !candles.price || !candles.volume) {
    const chart = (candles.chart = newChart(el(), state.chart.interval !== "1d"));
    candles.price = chart.addSeries(LWC().CandlestickSeries, { upColor: "#2da44e", downColor: "#d1242f", borderVisible: false, wickUpColor: "#2da44e", wickDownColor: "#d1242f" });
    candles.volume = chart.addSeries(LWC().HistogramSeries, { priceScaleId: "vol", priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false });
    chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  }
  return { chart: candles.chart, price: candles.price, volume: candles.volume };
}
function showLast(): void {
  const b = state.chart.lastBar;
  const d = el().dataset;
  d.symbol = state.chart.symbol;
  d.bars = String(candles.byTime.size);
  d.lastTs = b ? b.ts : "";
  d.lastClose = b ? String(b.close) : "";
  d.updates = String(state.chart.updates);
  $("#last-bar").textContent = b ? `${b.symbol} ${b.interval} ${b.ts.slice(0, b.interval === "1d" ? 10 : 16).replace("T", " ")} · O ${b.open} H ${b.high} L ${b.low} C ${b.close} · V ${num(b.volume)} · ${b.source}` : "no bars";
}
function setAll(): void {
  const { price, volume } = ensureCandles();
  const bars = [...candles.byTime.values()].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
  price.setData(bars.map(toPoint));
  volume.setData(bars.map(toVolume));
  state.chart.lastBar = bars[bars.length - 1] || null;
  state.chart.bars = bars.length;
  showLast();
}
/** A bar from the feed: update() when it is the newest or replaces it, a full redraw when older. */
function applyBar(b: BarRow): void {
  if (b.symbol !== state.chart.symbol || b.interval !== state.chart.interval || (state.chart.source && b.source !== state.chart.source)) return;
  const { price, volume } = ensureCandles();
  const t = seconds(b);
  const last = state.chart.lastBar ? seconds(state.chart.lastBar) : -Infinity;
  candles.byTime.set(t, b);
  state.chart.updates++;
  if (t >= last) {
    price.update(toPoint(b));
    volume.update(toVolume(b));
    state.chart.lastBar = b;
    state.chart.bars = candles.byTime.size;
    showLast();
  } else {
    clearTimeout(candles.pending);
    candles.pending = setTimeout(setAll, 50);
  }
}

type Interval = Body<"/api/bars">["interval"];
type SeriesOption = { value: string; label: string; last: string; interval: Interval };
const symbols = { list: [] as SeriesOption[] };
export async function loadSymbols(): Promise<void> {
  const { data } = await ok(api.GET("/api/symbols"));
  const sel = $select("#symbol");
  const options: SeriesOption[] = [];
  for (const s of data)
    for (const x of s.series) options.push({ value: `${s.symbol}|${x.source}|${x.interval}`, label: `${s.symbol}${s.series.length > 1 ? ` · ${x.source} ${x.interval}` : ""}`, last: x.last, interval: x.interval });
  options.sort((a, b) => a.label.localeCompare(b.label));
  const had = sel.value;
  if (options.map((o) => o.value).join() !== symbols.list.map((o) => o.value).join()) {
    symbols.list = options;
    sel.replaceChildren(...options.map((o) => h("option", { value: o.value }, o.label)));
    const saved = localStorage.getItem("ticksync.symbol");
    const pick = [had, saved].find((v) => v && options.some((o) => o.value === v)) || (options.find((o) => o.interval === "1d") || options[0])?.value;
    if (pick) sel.value = pick;
    if (pick && pick !== had) await selectSeries(pick);
  }
}
const INTERVAL_S: Record<Interval, number> = { "1m": 60, "2m": 120, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400, "1w": 604800, "1mo": 2678400 };
const isInterval = (s: string): s is Interval => s in INTERVAL_S;

async function selectSeries(value: string): Promise<void> {
  const [symbol = "", source = "", interval = ""] = value.split("|");
  if (!isInterval(interval)) throw new Error(`unknown interval ${interval}`);
  const prev = state.chart.symbol;
  Object.assign(state.chart, { symbol, source, interval, lastBar: null, bars: 0, updates: 0 });
  localStorage.setItem("ticksync.symbol", value);
  if (candles.chart) {
    candles.chart.remove();
    candles.chart = candles.price = candles.volume = null;
  }
  candles.byTime.clear();
  ensureCandles();
  // History: the latest ~400 bars, then the feed keeps it current.
  const meta = symbols.list.find((o) => o.value === value);
  const lastMs = meta ? Date.parse(meta.last) : Date.now();
  const from = new Date(lastMs - 400 * INTERVAL_S[interval] * 1000 * (interval === "1d" ? 1.5 : 1)).toISOString();
  let cursor: string | undefined;
  for (let page = 0; page < 5; page++) {
    const r = await ok(api.GET("/api/bars", { params: { query: { symbol, interval, source, from, limit: "1000", cursor } } }));
    for (const b of r.data) candles.byTime.set(seconds(b), b);
    cursor = r.next ?? undefined;
    if (!cursor) break;
  }
  setAll();
  ensureCandles().chart.timeScale().fitContent();
  live.follow(prev, symbol);
}

/** Messages of the feed the page acts on (docs/stream.md has them all). */
type FeedMessage = {
  type?: string;
  id?: number;
  bar?: BarRow;
  previous?: unknown;
  status?: string;
  source?: string;
  runId?: number;
  error?: string;
  message?: string;
};

function onFeedMessage(m: FeedMessage, setStatus: (s: string, cls?: string) => void): void {
  if ((m.type === "bar" || m.type === "snapshot") && m.bar) {
    if (typeof m.id === "number" && m.id > state.chart.lastEventId) state.chart.lastEventId = m.id;
    applyBar(m.bar);
  } else if (m.type === "market_status" && m.previous !== null) hooks.refreshMarkets().catch(() => {});
  else if (m.type === "provider_status") {
    // The current state on connect (previous null) too: a source failing now is worth a notice.
    if (m.status === "failing") notice(`source ${m.source}: run ${m.runId} failed${m.error ? `: ${m.error}` : ""}`, "bad");
    if (m.previous !== null) hooks.refreshRuns().catch(() => {});
  } else if (m.type === "status" && m.status === "replay_unavailable") {
    state.chart.lastEventId = 0;
    selectSeries($select("#symbol").value).catch(() => {});
  } else if (m.type === "status" && m.status === "conflating") setStatus("live (conflating)", "warn");
  else if (m.type === "status" && m.status === "caught_up") setStatus("live", "ok");
  else if (m.type === "error") notice(`live feed: ${m.message}`, "bad");
}

// The WebSocket feed: one connection, subscribed to the chart's symbol.
export const live = (() => {
  let ws: WebSocket | null = null;
  let retry = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let symbol = "";
  const setStatus = (s: string, cls?: string) => {
    state.ws = s;
    const p = $("#live-status");
    p.textContent = s;
    p.className = `pill ${cls || ""}`;
    el().dataset.ws = s;
  };
  function send(m: object): void {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
  }
  function connect(): void {
    clearTimeout(timer);
    const url = new URL("/api/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (state.token) url.searchParams.set("token", state.token);
    setStatus("connecting", "warn");
    const sock = (ws = new WebSocket(url));
    sock.onopen = () => {
      retry = 0;
      setStatus("live", "ok");
      // A market opening or a source failing shows at once, not at the next poll.
      send({ op: "watch", events: ["market_status", "provider_status"] });
      if (symbol) send(state.chart.lastEventId ? { op: "subscribe", symbols: [symbol], since: state.chart.lastEventId } : { op: "subscribe", symbols: [symbol] });
    };
    sock.onmessage = (ev) => {
      let m: FeedMessage;
      try {
        m = JSON.parse(String(ev.data)) as FeedMessage;
      } catch {
        return;
      }
      if (m && typeof m === "object") onFeedMessage(m, setStatus);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      setStatus(ev.code === 1008 || ev.code === 4001 ? "token refused" : "reconnecting", "bad");
      retry = Math.min(retry + 1, 6);
      timer = setTimeout(connect, 500 * 2 ** retry);
    };
  }
  return {
    follow(prev: string, next: string): void {
      if (prev && prev !== next) send({ op: "unsubscribe", symbols: [prev] });
      symbol = next;
      state.chart.lastEventId = 0;
      if (!ws) connect();
      else send({ op: "subscribe", symbols: [next] });
    },
    reconnect(): void {
      const old = ws;
      ws = null;
      if (old) old.close();
      connect();
    },
  };
})();

/** The series picker. */
export function wireLive(): void {
  $select("#symbol").addEventListener("change", (e) => selectSeries((e.target as HTMLSelectElement).value).catch((err) => notice(`chart: ${message(err)}`, "bad")));
}

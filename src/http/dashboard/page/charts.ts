// The dashboard's time panels: ingest and sync rates, this process's resources, and the
// freshness heat map of each symbol's daily bars.
import type { IChartApi, ISeriesApi } from "lightweight-charts";
import { $, $select, bytes, h, num } from "./dom.ts";
import { api, chartColors, chartTime, LWC, newChart, ok } from "./state.ts";

const rates: { chart: IChartApi | null; series: Record<"read" | "stored" | "quar" | "sync", ISeriesApi<"Line">> | null } = { chart: null, series: null };
export async function refreshRates(): Promise<void> {
  const [windowS = "", bucketS = ""] = $select("#rates-window").value.split(":");
  const r = await ok(api.GET("/api/rates", { params: { query: { window: windowS, bucket: bucketS } } }));
  if (!rates.chart || !rates.series) {
    const chart = (rates.chart = newChart($("#rates"), true));
    const line = (color: string) => chart.addSeries(LWC().LineSeries, { color, lineWidth: 2, priceLineVisible: false, lastValueVisible: false });
    rates.series = { read: line("#0969da"), stored: line("#2da44e"), quar: line("#d1242f"), sync: line("#8250df") };
  }
  const pts = (f: "ingestRead" | "ingestStored" | "quarantined" | "synced") => r.points.map((p) => ({ time: chartTime(p.t), value: p[f] }));
  rates.series.read.setData(pts("ingestRead"));
  rates.series.stored.setData(pts("ingestStored"));
  rates.series.quar.setData(pts("quarantined"));
  rates.series.sync.setData(pts("synced"));
  rates.chart.timeScale().fitContent();
}

// The last 30 minutes of samples, kept in the page (the server keeps no history of its own).
const resources: { chart: IChartApi | null; cpu: ISeriesApi<"Line"> | null; lag: ISeriesApi<"Line"> | null; points: { time: number; cpu: number; lag: number }[] } = { chart: null, cpu: null, lag: null, points: [] };
export async function refreshResources(): Promise<void> {
  const r = await ok(api.GET("/api/resources"));
  const lag = r.eventLoopLagMs;
  const tile = (key: string, label: string, value: string, detail: string) => h("div", { class: "tile", dataset: { key } }, h("small", {}, label), h("b", {}, value), h("small", {}, detail));
  $("#resources").replaceChildren(
    tile("cpu", "CPU", `${num(r.cpu.percent)}%`, `of ${r.cpu.cores} cores · ${num(r.cpu.userSeconds + r.cpu.systemSeconds)} s in all`),
    tile("rss", "resident memory", bytes(r.memory.rssBytes), `${num(r.memory.rssPercent)}% of ${bytes(r.memory.systemTotalBytes)}`),
    tile("heap", "JS heap used", bytes(r.memory.heapUsedBytes), `heap ${bytes(r.memory.heapTotalBytes)}`),
    tile("lag", "event-loop lag p99", `${num(lag.p99)} ms`, `p50 ${num(lag.p50)} · max ${num(lag.max)} ms`),
    tile("fds", "open files", num(r.fds.open), r.fds.max ? `of ${num(r.fds.max)} allowed` : ""),
  );
  const time = Math.floor(Date.parse(r.timestamp) / 1000);
  const pts = resources.points;
  if (!pts.length || time > pts[pts.length - 1]!.time) pts.push({ time, cpu: r.cpu.percent, lag: lag.p99 ?? 0 });
  while (pts.length > 360) pts.shift();
  if (!resources.chart || !resources.cpu || !resources.lag) {
    const chart = (resources.chart = newChart($("#resources-chart"), true));
    chart.applyOptions({ leftPriceScale: { visible: true, borderColor: chartColors().line } });
    const line = (color: string, priceScaleId: string) => chart.addSeries(LWC().LineSeries, { color, priceScaleId, lineWidth: 2, priceLineVisible: false, lastValueVisible: false });
    resources.cpu = line("#0969da", "right");
    resources.lag = line("#bf8700", "left");
  }
  resources.cpu.setData(pts.map((p) => ({ time: chartTime(p.time), value: p.cpu })));
  resources.lag.setData(pts.map((p) => ({ time: chartTime(p.time), value: p.lag })));
}

const CELL: Record<string, string> = { S: "stored", M: "missing", P: "pending", "-": "closed", "?": "unknown" };
const CELL_TEXT: Record<string, string> = { S: "stored", M: "missing", P: "session not closed yet", "-": "not a session", "?": "before the series / unknown" };
export async function refreshFreshness(): Promise<void> {
  const days = $select("#fresh-days").value;
  let f = await ok(api.GET("/api/freshness", { params: { query: { days } } }));
  // Nothing stored in the window (an old data set, a stopped feed): the window ends at the newest bar instead.
  let note = "";
  if (f.rows.length && f.rows.every((r) => r.stored === 0)) {
    const newest = f.rows.map((r) => r.last.slice(0, 10)).sort().at(-1)!;
    note = ` · nothing stored in the last ${days} days: shown up to the newest bar, ${newest}`;
    f = await ok(api.GET("/api/freshness", { params: { query: { days, to: newest } } }));
  }
  const grid = $("#heatmap");
  grid.style.gridTemplateColumns = `max-content repeat(${f.dates.length}, 12px)`;
  const cells = [h("div", { class: "sym" })];
  f.dates.forEach((d, i) => cells.push(h("div", { class: "hd", title: d }, i % 5 === f.dates.length % 5 || i === f.dates.length - 1 ? d.slice(5) : "")));
  for (const r of f.rows) {
    cells.push(h("div", { class: "sym", title: `${r.source} · last ${r.last.slice(0, 10)}` }, r.symbol, r.missing ? h("small", { class: "bad" }, ` ${r.missing}`) : ""));
    [...r.cells].forEach((c, i) => cells.push(h("div", { class: `cell ${CELL[c]}`, title: `${r.symbol} ${f.dates[i]}: ${CELL_TEXT[c]}` })));
  }
  grid.replaceChildren(...cells);
  const missing = f.rows.reduce((n, r) => n + r.missing, 0);
  $("#fresh-summary").textContent = f.rows.length ? `${f.rows.length} series · ${missing} missing session bars · ${f.rows.filter((r) => r.missing === 0).length} complete${note}` : "No daily series stored yet.";
}

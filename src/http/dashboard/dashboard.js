// The ticksync dashboard: plain browser JavaScript served from the executable (no build step).
// It reads the JSON API, draws its charts with TradingView's lightweight-charts (loaded before
// this script as window.LightweightCharts), and follows the live feed on /api/ws.
// State the browser tests read is kept on window.ticksync and as data-* attributes on #candles.
(() => {
  "use strict";
  const LWC = window.LightweightCharts;
  const $ = (sel) => document.querySelector(sel);
  const TOKEN_KEY = "ticksync.token";
  const state = {
    token: localStorage.getItem(TOKEN_KEY) || "",
    runs: [],
    sinks: [],
    chart: { symbol: "", source: "", interval: "1d", bars: 0, lastBar: null, lastEventId: 0, updates: 0 },
    ws: "closed",
    errors: [],
  };
  window.ticksync = state;

  // ---- helpers ------------------------------------------------------------------------------

  /** An element with attributes (on* are listeners) and children (strings become text). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
    return el;
  }
  const fill = (tbody, rows, empty, cols) => tbody.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: cols, class: "muted" }, empty))]));
  const num = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 2 }));
  const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);
  function ago(iso) {
    if (!iso) return "—";
    const s = (Date.now() - Date.parse(iso)) / 1000;
    const a = Math.abs(s);
    const t = a < 90 ? `${Math.round(a)}s` : a < 5400 ? `${Math.round(a / 60)}m` : a < 172800 ? `${Math.round(a / 3600)}h` : `${Math.round(a / 86400)}d`;
    return s >= 0 ? `${t} ago` : `in ${t}`;
  }
  const when = (iso) => h("span", { title: iso || "" }, ago(iso));
  const outcomeClass = (o) => (o === "succeeded" || o === "consistent" || o === "ok" ? "ok" : o === "failed" || o === "inconsistent" || o === "firing" ? "bad" : o === "running" ? "warn" : "muted");
  const meter = (x) => h("span", {}, h("span", { class: "meter" }, h("i", { style: `width:${Math.round((x ?? 0) * 100)}%` })), pct(x));

  function notice(text, kind) {
    const el = $("#notice");
    el.textContent = text;
    el.className = `notice ${kind || ""}`;
    el.hidden = !text;
  }

  async function api(path, init) {
    const headers = { ...(init && init.headers) };
    if (state.token) headers.authorization = `Bearer ${state.token}`;
    if (init && init.body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(path, { ...init, headers });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const msg = body.message || (body.issues ? body.issues.map((i) => `${i.field}: ${i.message}`).join("; ") : body.error) || res.statusText;
      const err = new Error(`${res.status} ${msg}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }
  const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body || {}) });

  const tickers = [];
  /** Runs fn now and every ms; a failure shows once in the notice bar and clears when it works again. */
  function every(ms, name, fn) {
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
        notice(e.status === 401 || e.status === 403 ? `${name}: the server wants an API token (enter it above)` : `${name}: ${e.message}`, "bad");
      } finally {
        busy = false;
      }
    };
    tickers.push(tick);
    tick();
    return setInterval(tick, ms);
  }

  function chartColors() {
    const cs = getComputedStyle(document.documentElement);
    return { text: cs.getPropertyValue("--muted").trim() || "#59636e", line: cs.getPropertyValue("--line").trim() || "#d8dee4" };
  }
  function newChart(el, timeVisible) {
    const c = chartColors();
    return LWC.createChart(el, {
      autoSize: true,
      layout: { background: { type: "solid", color: "transparent" }, textColor: c.text, attributionLogo: true },
      grid: { vertLines: { color: c.line }, horzLines: { color: c.line } },
      rightPriceScale: { borderColor: c.line },
      timeScale: { borderColor: c.line, timeVisible, secondsVisible: false },
    });
  }

  // ---- token ---------------------------------------------------------------------------------

  $("#token").value = state.token;
  $("#token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("#token").value.trim();
    if (state.token) localStorage.setItem(TOKEN_KEY, state.token);
    else localStorage.removeItem(TOKEN_KEY);
    notice(state.token ? "token saved in this browser" : "token cleared", "ok");
    setTimeout(() => notice(""), 2500);
    // Everything again with the new token (reads may need it too).
    for (const t of tickers) t();
    loadQuarantine(false).catch((err) => notice(`quarantine: ${err.message}`, "bad"));
    live.reconnect();
  });

  // ---- header: store and markets -------------------------------------------------------------

  async function refreshReady() {
    const res = await fetch("/readyz");
    const r = await res.json();
    const pill = $("#store-pill");
    pill.textContent = r.ready ? `${r.store.kind} store ready · schema v${r.store.schemaVersion}` : `store not ready${r.store.error ? `: ${r.store.error}` : ""}`;
    pill.className = `pill ${r.ready ? "ok" : "bad"}`;
  }

  // Every market of the registry: its phase, when it next opens or closes, and a holiday by name.
  async function refreshMarkets() {
    const { data } = await api("/api/markets");
    $("#markets").replaceChildren(
      ...data.map((s) => {
        // A break in the session (Tokyo's lunch) is shown as one, not as a closed market.
        const lunch = s.phase === "break";
        const next = s.phase === "open" ? (s.nextClose ? ` · closes ${ago(s.nextClose)}` : "") : s.nextOpen ? ` · ${lunch ? "reopens" : "opens"} ${ago(s.nextOpen)}` : "";
        const title = `${s.name} (${s.timeZone}), ${s.date}${s.holiday ? `: ${s.holiday}` : ""} · next open ${s.nextOpen ?? "—"} · next close ${s.nextClose ?? "—"}`;
        return h("span", { class: `pill ${s.phase === "open" ? "ok" : s.phase === "closed" ? "" : "warn"}`, title }, `${s.market} ${lunch ? "lunch break" : s.phase}${s.holiday ? ` (${s.holiday})` : ""}${next}`);
      }),
    );
  }

  // ---- alerts --------------------------------------------------------------------------------

  async function refreshAlerts() {
    const { data } = await api("/api/alerts");
    const firing = data.filter((a) => a.status === "firing");
    $("#alerts-summary").textContent = data.length ? `${firing.length} firing of ${data.length}` : "";
    fill(
      $("#alerts tbody"),
      data.map((a) =>
        h(
          "tr",
          { dataset: { alert: a.name, status: a.status, acknowledged: String(a.acknowledged) } },
          h("td", {}, a.name, h("br"), h("small", {}, a.kind)),
          h("td", { class: a.severity === "critical" ? "bad" : a.severity === "warning" ? "warn" : "" }, a.severity),
          h("td", { class: outcomeClass(a.status) }, a.status, a.acknowledged ? h("small", {}, h("br"), `acknowledged by ${a.acknowledgedBy}`) : ""),
          h("td", {}, a.message),
          h("td", {}, a.since ? when(new Date(a.since).toISOString()) : "—"),
          h("td", {}, a.status === "firing" && !a.acknowledged ? h("button", { type: "button", class: "ack", "data-ack": a.name, onclick: () => ack(a.name) }, "Acknowledge") : ""),
        ),
      ),
      "No alert evaluated yet (rules are set in the config's [alerts] section).",
      6,
    );
  }
  async function ack(name) {
    try {
      await post(`/api/alerts/${encodeURIComponent(name)}/ack`, {});
      await refreshAlerts();
    } catch (e) {
      notice(`acknowledge ${name}: ${e.message}`, "bad");
    }
  }

  // ---- runs, sources, quality, lineage ----------------------------------------------------------

  const INGEST_KINDS = new Set(["ingest", "backfill", "replay"]);
  // A source's status and quality are its reads; a replay re-checks old rows and is not one.
  const SOURCE_KINDS = new Set(["ingest", "backfill"]);
  function actorText(by) {
    if (!by) return "—";
    if (by.by === "schedule") return `schedule ${by.job || ""}`.trim();
    if (by.by === "cli") return `cli ${by.command || ""}${by.user ? ` (${by.user})` : ""}`;
    if (by.by === "api") return `api ${by.route || ""}${by.tokenId ? ` ${by.tokenId}` : ""}`;
    return by.by || "—";
  }
  /** Which sinks have delivered a run's bars: their cursor's run id is at or past it. */
  function deliveredTo(run) {
    const out = [];
    for (const s of state.sinks)
      for (const c of s.collections) {
        const at = c.cursor && typeof c.cursor.runId === "number" ? c.cursor.runId : null;
        out.push(h("span", { class: at !== null && at >= run.id ? "ok" : "muted", title: at === null ? "nothing delivered yet" : `delivered up to run ${at}` }, `${s.name}/${c.collection}${at !== null && at >= run.id ? " ✓" : " …"}`));
      }
    return out;
  }

  async function refreshRuns() {
    const [{ data: runs }, { data: jobs }] = await Promise.all([api("/api/runs?limit=200"), api("/api/jobs")]);
    state.runs = runs;
    // Sources: the latest ingest-like run of each source.
    const bySource = new Map();
    for (const r of runs) if (SOURCE_KINDS.has(r.kind) && !bySource.has(r.source)) bySource.set(r.source, r);
    fill(
      $("#sources tbody"),
      [...bySource.values()].map((r) =>
        h("tr", {}, h("td", {}, r.source), h("td", {}, when(r.finishedAt || r.startedAt)), h("td", { class: outcomeClass(r.outcome) }, r.outcome, r.error ? h("small", { title: r.error }, " ⚠") : ""), h("td", { class: "num" }, `${num(r.read)} → ${num(r.stored)}`), h("td", {}, r.quality ? meter(r.quality.score) : "—")),
      ),
      "No runs yet.",
      5,
    );
    fill(
      $("#jobs tbody"),
      jobs.map((j) =>
        h(
          "tr",
          {},
          h("td", {}, j.name, j.market ? h("small", {}, ` ${j.market} ${j.marketPhase}`) : j.markets ? h("small", {}, ` ${j.markets.map((m) => `${m.market} ${m.phase}`).join(", ")}`) : ""),
          h("td", {}, h("code", {}, j.schedule || "manual")),
          h("td", { class: outcomeClass(j.running ? "running" : j.lastOutcome) }, j.running ? "running" : j.lastOutcome || "—", h("br"), h("small", {}, ago(j.lastFinishedAt || j.lastStartedAt))),
          h("td", {}, j.nextRun ? when(j.nextRun) : "—"),
          h("td", {}, h("button", { type: "button", disabled: j.running, onclick: () => runJob(j.name) }, "Run now")),
        ),
      ),
      "No jobs in the config.",
      5,
    );
    // Quality: per source, the last score, the average, and the rules broken over these runs.
    const q = new Map();
    for (const r of runs) {
      if (!SOURCE_KINDS.has(r.kind) || !r.quality) continue;
      let e = q.get(r.source);
      if (!e) q.set(r.source, (e = { last: r.quality.score, sum: 0, n: 0, rules: {} }));
      e.sum += r.quality.score;
      e.n++;
      for (const [rule, n] of Object.entries(r.quality.rules || {})) e.rules[rule] = (e.rules[rule] || 0) + n;
    }
    fill(
      $("#quality tbody"),
      [...q].map(([source, e]) =>
        h(
          "tr",
          {},
          h("td", {}, source),
          h("td", {}, meter(e.last)),
          h("td", {}, meter(e.sum / e.n), h("small", {}, ` over ${e.n} runs`)),
          h("td", {}, Object.entries(e.rules).map(([rule, n]) => h("a", { href: "#quarantine-card", onclick: () => filterQuarantine({ source, rule }) }, `${rule} ${num(n)} `))),
        ),
      ),
      "No scored runs yet.",
      4,
    );
    fill(
      $("#runs tbody"),
      runs.slice(0, 30).map((r) => {
        const by = r.params && r.params.startedBy;
        return h(
          "tr",
          {},
          h("td", {}, `#${r.id}`, h("br"), h("small", {}, ago(r.startedAt))),
          h("td", {}, r.kind),
          h(
            "td",
            { class: "lineage" },
            h("small", {}, actorText(by)),
            h("br"),
            h("b", {}, r.source),
            r.job ? h("small", {}, ` (${r.job})`) : "",
            r.from ? h("small", {}, ` ${r.from.slice(0, 10)}…${(r.to || "").slice(0, 10)}`) : "",
            INGEST_KINDS.has(r.kind) && r.stored > 0 && state.sinks.length ? h("span", {}, h("br"), "→ ", ...deliveredTo(r).flatMap((x) => [x, " "])) : "",
          ),
          h("td", { class: outcomeClass(r.outcome) }, r.outcome, r.error ? h("small", { title: r.error }, h("br"), r.error.slice(0, 80)) : ""),
          h(
            "td",
            { class: "num" },
            `${num(r.read)} → ${num(r.stored)}`,
            r.quarantined ? h("a", { href: "#quarantine-card", class: "bad", onclick: () => filterQuarantine({ run: r.id }) }, h("br"), `${num(r.quarantined)} quarantined`) : "",
          ),
          h("td", {}, r.quality ? pct(r.quality.score) : "—"),
        );
      }),
      "No runs yet.",
      6,
    );
  }
  async function runJob(name) {
    try {
      const r = await post(`/api/jobs/${encodeURIComponent(name)}/run`, {});
      notice(`${name}: ${r.status}${r.note ? ` (${r.note})` : ""}`, "ok");
      setTimeout(refreshRuns, 1000);
    } catch (e) {
      notice(`run ${name}: ${e.message}`, "bad");
    }
  }

  // ---- sinks ---------------------------------------------------------------------------------

  async function refreshSinks() {
    const { data } = await api("/api/sinks");
    state.sinks = data;
    const rows = [];
    for (const s of data)
      for (const c of s.collections) {
        const k = c.consistency;
        rows.push(
          h(
            "tr",
            { dataset: { sink: s.name, collection: c.collection, status: k.status } },
            h("td", {}, s.name, h("br"), h("small", { title: s.location }, s.kind)),
            h("td", {}, c.collection),
            h("td", {}, c.cursor ? [`run ${c.cursor.runId ?? "—"}`, c.cursor.ts ? h("small", {}, h("br"), c.cursor.ts.slice(0, 19).replace("T", " ")) : ""] : h("span", { class: "muted" }, "nothing yet")),
            h("td", { class: outcomeClass(k.status) }, k.status, k.differingDays ? h("small", {}, h("br"), `${num(k.differingDays)} days differ`) : "", k.storeRecords !== null && k.storeRecords !== undefined ? h("small", {}, h("br"), `${num(k.storeRecords)} / ${num(k.sinkRecords)} records`) : ""),
            h("td", {}, k.checkedAt ? when(k.checkedAt) : "never"),
          ),
        );
      }
    fill($("#sinks tbody"), rows, "No sinks in the config.", 5);
  }

  // ---- rates ---------------------------------------------------------------------------------

  const rates = { chart: null, series: null };
  async function refreshRates() {
    const [windowS, bucketS] = $("#rates-window").value.split(":");
    const r = await api(`/api/rates?window=${windowS}&bucket=${bucketS}`);
    if (!rates.chart) {
      rates.chart = newChart($("#rates"), true);
      const line = (color) => rates.chart.addSeries(LWC.LineSeries, { color, lineWidth: 2, priceLineVisible: false, lastValueVisible: false });
      rates.series = { read: line("#0969da"), stored: line("#2da44e"), quar: line("#d1242f"), sync: line("#8250df") };
    }
    const pts = (f) => r.points.map((p) => ({ time: p.t, value: p[f] }));
    rates.series.read.setData(pts("ingestRead"));
    rates.series.stored.setData(pts("ingestStored"));
    rates.series.quar.setData(pts("quarantined"));
    rates.series.sync.setData(pts("synced"));
    rates.chart.timeScale().fitContent();
  }
  $("#rates-window").addEventListener("change", () => refreshRates().catch((e) => notice(`rates: ${e.message}`, "bad")));

  // ---- resources (GET /api/resources) --------------------------------------------------------

  function bytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  }
  // The last 30 minutes of samples, kept in the page (the server keeps no history of its own).
  const resources = { chart: null, cpu: null, lag: null, points: [] };
  async function refreshResources() {
    const r = await api("/api/resources");
    const lag = r.eventLoopLagMs;
    const tile = (key, label, value, detail) => h("div", { class: "tile", dataset: { key } }, h("small", {}, label), h("b", {}, value), h("small", {}, detail));
    $("#resources").replaceChildren(
      tile("cpu", "CPU", `${num(r.cpu.percent)}%`, `of ${r.cpu.cores} cores · ${num(r.cpu.userSeconds + r.cpu.systemSeconds)} s in all`),
      tile("rss", "resident memory", bytes(r.memory.rssBytes), `${num(r.memory.rssPercent)}% of ${bytes(r.memory.systemTotalBytes)}`),
      tile("heap", "JS heap used", bytes(r.memory.heapUsedBytes), `heap ${bytes(r.memory.heapTotalBytes)}`),
      tile("lag", "event-loop lag p99", `${num(lag.p99)} ms`, `p50 ${num(lag.p50)} · max ${num(lag.max)} ms`),
      tile("fds", "open files", num(r.fds.open), r.fds.max ? `of ${num(r.fds.max)} allowed` : ""),
    );
    const time = Math.floor(Date.parse(r.timestamp) / 1000);
    const pts = resources.points;
    if (!pts.length || time > pts[pts.length - 1].time) pts.push({ time, cpu: r.cpu.percent, lag: lag.p99 ?? 0 });
    while (pts.length > 360) pts.shift();
    if (!resources.chart) {
      resources.chart = newChart($("#resources-chart"), true);
      resources.chart.applyOptions({ leftPriceScale: { visible: true, borderColor: chartColors().line } });
      const line = (color, priceScaleId) => resources.chart.addSeries(LWC.LineSeries, { color, priceScaleId, lineWidth: 2, priceLineVisible: false, lastValueVisible: false });
      resources.cpu = line("#0969da", "right");
      resources.lag = line("#bf8700", "left");
    }
    resources.cpu.setData(pts.map((p) => ({ time: p.time, value: p.cpu })));
    resources.lag.setData(pts.map((p) => ({ time: p.time, value: p.lag })));
  }

  // ---- freshness heat map --------------------------------------------------------------------

  const CELL = { S: "stored", M: "missing", P: "pending", "-": "closed", "?": "unknown" };
  const CELL_TEXT = { S: "stored", M: "missing", P: "session not closed yet", "-": "not a session", "?": "before the series / unknown" };
  async function refreshFreshness() {
    const days = $("#fresh-days").value;
    let f = await api(`/api/freshness?days=${days}`);
    // Nothing stored in the window (an old data set, a stopped feed): the window ends at the newest bar instead.
    let note = "";
    if (f.rows.length && f.rows.every((r) => r.stored === 0)) {
      const newest = f.rows.map((r) => r.last.slice(0, 10)).sort().at(-1);
      note = ` · nothing stored in the last ${days} days: shown up to the newest bar, ${newest}`;
      f = await api(`/api/freshness?days=${days}&to=${newest}`);
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
  $("#fresh-days").addEventListener("change", () => refreshFreshness().catch((e) => notice(`freshness: ${e.message}`, "bad")));

  // ---- quarantine ----------------------------------------------------------------------------

  const quarantine = { filter: {}, next: null, rows: [] };
  function filterQuarantine(f) {
    $("#q-source").value = f.source || "";
    $("#q-rule").value = f.rule || "";
    $("#q-run").value = f.run || "";
    loadQuarantine(false).catch((e) => notice(`quarantine: ${e.message}`, "bad"));
  }
  function ensureOption(sel, value) {
    if (value && ![...sel.options].some((o) => o.value === value)) sel.append(h("option", { value }, value));
  }
  async function loadQuarantine(more) {
    const f = { source: $("#q-source").value, rule: $("#q-rule").value, run: $("#q-run").value.trim() };
    const qs = new URLSearchParams({ limit: "50" });
    for (const [k, v] of Object.entries(f)) if (v) qs.set(k, v);
    if (more && quarantine.next) qs.set("before", quarantine.next);
    const r = await api(`/api/quarantine?${qs}`);
    quarantine.filter = f;
    quarantine.next = r.next;
    quarantine.rows = more ? [...quarantine.rows, ...r.data] : r.data;
    for (const q of r.data) {
      ensureOption($("#q-source"), q.source);
      ensureOption($("#q-rule"), q.rule);
    }
    for (const s of state.runs) if (INGEST_KINDS.has(s.kind)) ensureOption($("#q-source"), s.source);
    fill(
      $("#quarantine tbody"),
      quarantine.rows.map((q) =>
        h(
          "tr",
          { dataset: { id: q.id } },
          h("td", {}, h("input", { type: "checkbox", class: "q-pick", value: q.id, "aria-label": `select ${q.id}`, onchange: pickChanged })),
          h("td", {}, q.id, h("br"), h("small", {}, `run ${q.runId}`)),
          h("td", {}, q.source, h("br"), h("small", { title: q.locator }, q.locator.length > 40 ? `…${q.locator.slice(-40)}` : q.locator)),
          h("td", { class: "bad" }, q.rule),
          h("td", {}, q.reason),
          h("td", {}, q.symbol || "—"),
          h("td", {}, q.ts ? q.ts.slice(0, 10) : "—"),
          h("td", {}, h("pre", { class: "raw" }, JSON.stringify(q.raw))),
        ),
      ),
      "Nothing in quarantine" + (f.source || f.rule || f.run ? " for this filter." : "."),
      8,
    );
    $("#q-more").hidden = !quarantine.next;
    $("#q-all").checked = false;
    pickChanged();
  }
  function picked() {
    return [...document.querySelectorAll(".q-pick:checked")].map((x) => Number(x.value));
  }
  function pickChanged() {
    $("#q-replay-selected").disabled = picked().length === 0;
  }
  async function replay(body) {
    const out = $("#q-result");
    out.hidden = false;
    out.className = "notice";
    out.textContent = "replaying…";
    try {
      const { data: r } = await post("/api/quarantine/replay", body);
      out.className = `notice ${r.released ? "ok" : ""}`;
      const kept = r.kept.slice(0, 5).map((k) => `#${k.id} ${k.rule}: ${k.reason}`);
      out.replaceChildren(
        `${r.examined} examined · ${r.released} stored and released · ${r.stillFailing} still failing · ${r.skipped} skipped`,
        ...r.sources.filter((s) => s.runId).map((s) => h("small", {}, ` · ${s.source}: run #${s.runId}`)),
        ...kept.map((k) => h("div", {}, h("small", {}, k))),
      );
      await loadQuarantine(false);
      refreshRuns().catch(() => {});
    } catch (e) {
      out.className = "notice bad";
      out.textContent = `replay: ${e.message}`;
    }
  }
  $("#q-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    loadQuarantine(false).catch((err) => notice(`quarantine: ${err.message}`, "bad"));
  });
  $("#q-more").addEventListener("click", () => loadQuarantine(true).catch((e) => notice(`quarantine: ${e.message}`, "bad")));
  $("#q-all").addEventListener("change", (e) => {
    for (const x of document.querySelectorAll(".q-pick")) x.checked = e.target.checked;
    pickChanged();
  });
  $("#q-replay-selected").addEventListener("click", () => replay({ ids: picked() }));
  $("#q-replay-all").addEventListener("click", () => {
    const f = quarantine.filter;
    const body = { all: true };
    if (f.source) body.source = f.source;
    if (f.rule) body.rule = f.rule;
    if (f.run) body.run = Number(f.run);
    replay(body);
  });

  // ---- live candlestick chart ----------------------------------------------------------------

  const candles = { chart: null, price: null, volume: null, byTime: new Map(), pending: null };
  const el = $("#candles");
  const toPoint = (b) => ({ time: Math.floor(Date.parse(b.ts) / 1000), open: b.open, high: b.high, low: b.low, close: b.close });
  const toVolume = (b) => ({ time: Math.floor(Date.parse(b.ts) / 1000), value: b.volume, color: b.close >= b.open ? "rgba(45,164,78,.35)" : "rgba(209,36,47,.35)" });
  function ensureCandles() {
    if (candles.chart) return;
    candles.chart = newChart(el, state.chart.interval !== "1d");
    candles.price = candles.chart.addSeries(LWC.CandlestickSeries, { upColor: "#2da44e", downColor: "#d1242f", borderVisible: false, wickUpColor: "#2da44e", wickDownColor: "#d1242f" });
    candles.volume = candles.chart.addSeries(LWC.HistogramSeries, { priceScaleId: "vol", priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false });
    candles.chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  }
  function showLast() {
    const b = state.chart.lastBar;
    el.dataset.symbol = state.chart.symbol;
    el.dataset.bars = String(candles.byTime.size);
    el.dataset.lastTs = b ? b.ts : "";
    el.dataset.lastClose = b ? String(b.close) : "";
    el.dataset.updates = String(state.chart.updates);
    $("#last-bar").textContent = b ? `${b.symbol} ${b.interval} ${b.ts.slice(0, b.interval === "1d" ? 10 : 16).replace("T", " ")} · O ${b.open} H ${b.high} L ${b.low} C ${b.close} · V ${num(b.volume)} · ${b.source}` : "no bars";
  }
  function setAll() {
    const bars = [...candles.byTime.values()].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
    candles.price.setData(bars.map(toPoint));
    candles.volume.setData(bars.map(toVolume));
    state.chart.lastBar = bars[bars.length - 1] || null;
    state.chart.bars = bars.length;
    showLast();
  }
  /** A bar from the feed: update() when it is the newest or replaces it, a full redraw when older. */
  function applyBar(b) {
    if (b.symbol !== state.chart.symbol || b.interval !== state.chart.interval || (state.chart.source && b.source !== state.chart.source)) return;
    ensureCandles();
    const t = Math.floor(Date.parse(b.ts) / 1000);
    const last = state.chart.lastBar ? Math.floor(Date.parse(state.chart.lastBar.ts) / 1000) : -Infinity;
    candles.byTime.set(t, b);
    state.chart.updates++;
    if (t >= last) {
      candles.price.update(toPoint(b));
      candles.volume.update(toVolume(b));
      state.chart.lastBar = b;
      state.chart.bars = candles.byTime.size;
      showLast();
    } else {
      clearTimeout(candles.pending);
      candles.pending = setTimeout(setAll, 50);
    }
  }

  const symbols = { list: [] };
  async function loadSymbols() {
    const { data } = await api("/api/symbols");
    const sel = $("#symbol");
    const options = [];
    for (const s of data)
      for (const x of s.series) options.push({ value: `${s.symbol}|${x.source}|${x.interval}`, label: `${s.symbol}${s.series.length > 1 ? ` · ${x.source} ${x.interval}` : ""}`, last: x.last, interval: x.interval });
    options.sort((a, b) => a.label.localeCompare(b.label));
    const had = sel.value;
    if (options.map((o) => o.value).join() !== symbols.list.map((o) => o.value).join()) {
      symbols.list = options;
      sel.replaceChildren(...options.map((o) => h("option", { value: o.value }, o.label)));
      const saved = localStorage.getItem("ticksync.symbol");
      const pick = [had, saved].find((v) => v && options.some((o) => o.value === v)) || (options.find((o) => o.interval === "1d") || options[0] || {}).value;
      if (pick) sel.value = pick;
      if (pick && pick !== had) await selectSeries(pick);
    }
  }
  const INTERVAL_S = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400, "1w": 604800, "1mo": 2678400 };
  async function selectSeries(value) {
    const [symbol, source, interval] = value.split("|");
    const prev = state.chart.symbol;
    Object.assign(state.chart, { symbol, source, interval, lastBar: null, bars: 0, updates: 0 });
    localStorage.setItem("ticksync.symbol", value);
    if (candles.chart) {
      candles.chart.remove();
      candles.chart = null;
    }
    candles.byTime.clear();
    ensureCandles();
    // History: the latest ~400 bars, then the feed keeps it current.
    const meta = symbols.list.find((o) => o.value === value);
    const lastMs = meta ? Date.parse(meta.last) : Date.now();
    const from = new Date(lastMs - 400 * INTERVAL_S[interval] * 1000 * (interval === "1d" ? 1.5 : 1)).toISOString();
    let cursor = null;
    for (let page = 0; page < 5; page++) {
      const qs = new URLSearchParams({ symbol, interval, source, from, limit: "1000" });
      if (cursor) qs.set("cursor", cursor);
      const r = await api(`/api/bars?${qs}`);
      for (const b of r.data) candles.byTime.set(Math.floor(Date.parse(b.ts) / 1000), b);
      cursor = r.next;
      if (!cursor) break;
    }
    setAll();
    candles.chart.timeScale().fitContent();
    live.follow(prev, symbol);
  }
  $("#symbol").addEventListener("change", (e) => selectSeries(e.target.value).catch((err) => notice(`chart: ${err.message}`, "bad")));

  // The WebSocket feed: one connection, subscribed to the chart's symbol; on reconnect it resumes
  // from the last event id it saw (the server replays the gap), else takes a fresh snapshot.
  const live = (() => {
    let ws = null;
    let retry = 0;
    let timer = null;
    let symbol = "";
    const setStatus = (s, cls) => {
      state.ws = s;
      const p = $("#live-status");
      p.textContent = s;
      p.className = `pill ${cls || ""}`;
      el.dataset.ws = s;
    };
    function send(m) {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
    }
    function connect() {
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
        let m;
        try {
          m = JSON.parse(ev.data);
        } catch {
          return;
        }
        if ((m.type === "bar" || m.type === "snapshot") && m.bar) {
          if (typeof m.id === "number" && m.id > state.chart.lastEventId) state.chart.lastEventId = m.id;
          applyBar(m.bar);
        } else if (m.type === "market_status" && m.previous !== null) refreshMarkets().catch(() => {});
        else if (m.type === "provider_status") {
          // The current state on connect (previous null) too: a source failing now is worth a notice.
          if (m.status === "failing") notice(`source ${m.source}: run ${m.runId} failed${m.error ? `: ${m.error}` : ""}`, "bad");
          if (m.previous !== null) refreshRuns().catch(() => {});
        } else if (m.type === "status" && m.status === "replay_unavailable") {
          state.chart.lastEventId = 0;
          selectSeries($("#symbol").value).catch(() => {});
        } else if (m.type === "status" && m.status === "conflating") setStatus("live (conflating)", "warn");
        else if (m.type === "status" && m.status === "caught_up") setStatus("live", "ok");
        else if (m.type === "error") notice(`live feed: ${m.message}`, "bad");
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
      follow(prev, next) {
        if (prev && prev !== next) send({ op: "unsubscribe", symbols: [prev] });
        symbol = next;
        state.chart.lastEventId = 0;
        if (!ws) connect();
        else send({ op: "subscribe", symbols: [next] });
      },
      reconnect() {
        const old = ws;
        ws = null;
        if (old) old.close();
        connect();
      },
    };
  })();

  // ---- start ---------------------------------------------------------------------------------

  every(5000, "store", refreshReady);
  every(5000, "alerts", refreshAlerts);
  every(30000, "markets", refreshMarkets);
  every(5000, "sinks", async () => {
    await refreshSinks();
    await refreshRuns();
  });
  every(30000, "rates", refreshRates);
  every(5000, "resources", refreshResources);
  every(60000, "freshness", refreshFreshness);
  every(30000, "symbols", loadSymbols);
  loadQuarantine(false).catch((e) => notice(`quarantine: ${e.message}`, "bad"));
})();

// The dashboard's status panels: the store pill and market pills of the header, alerts, sources
// and jobs, quality scores, recent runs with their lineage, and sinks with their consistency.
import { $, ago, fill, h, message, meter, notice, num, outcomeClass, pct, when } from "./dom.ts";
import { api, hooks, ok, state, type Run } from "./state.ts";

export const INGEST_KINDS = new Set(["ingest", "backfill", "replay"]);
// A source's status and quality are its reads; a replay re-checks old rows and is not one.
const SOURCE_KINDS = new Set(["ingest", "backfill"]);

// Who started a run is free-form in the document (its params are the ledger's JSON); these are
// the fields the page reads.
type StartedBy = { by?: string; job?: string; command?: string; user?: string; route?: string; tokenId?: string };
const quality = (r: Run) => r.quality;
const startedBy = (r: Run) => (r.params?.startedBy ?? null) as StartedBy | null;

export async function refreshReady(): Promise<void> {
  // 503 (not ready) has the same body as 200: either is the answer.
  const { data, error } = await api.GET("/readyz");
  const r = data ?? error;
  if (!r || !("ready" in r)) throw new Error("/readyz gave no answer");
  const pill = $("#store-pill");
  pill.textContent = r.ready ? `${r.store.kind} store ready · schema v${r.store.schemaVersion}` : `store not ready${r.store.error ? `: ${r.store.error}` : ""}`;
  pill.className = `pill ${r.ready ? "ok" : "bad"}`;
}

// Every market of the registry: its phase, when it next opens or closes, and a holiday by name.
export async function refreshMarkets(): Promise<void> {
  const { data } = await ok(api.GET("/api/markets"));
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

export async function refreshAlerts(): Promise<void> {
  const { data } = await ok(api.GET("/api/alerts"));
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
async function ack(name: string): Promise<void> {
  try {
    await ok(api.POST("/api/alerts/{name}/ack", { params: { path: { name } }, body: {} }));
    await refreshAlerts();
  } catch (e) {
    notice(`acknowledge ${name}: ${message(e)}`, "bad");
  }
}

function actorText(by: StartedBy | null): string {
  if (!by) return "—";
  if (by.by === "schedule") return `schedule ${by.job || ""}`.trim();
  if (by.by === "cli") return `cli ${by.command || ""}${by.user ? ` (${by.user})` : ""}`;
  if (by.by === "api") return `api ${by.route || ""}${by.tokenId ? ` ${by.tokenId}` : ""}`;
  return by.by || "—";
}
/** Which sinks have delivered a run's bars: their cursor's run id is at or past it. */
function deliveredTo(run: Run): HTMLElement[] {
  const out: HTMLElement[] = [];
  for (const s of state.sinks)
    for (const c of s.collections) {
      const at = c.cursor && typeof c.cursor.runId === "number" ? c.cursor.runId : null;
      out.push(h("span", { class: at !== null && at >= run.id ? "ok" : "muted", title: at === null ? "nothing delivered yet" : `delivered up to run ${at}` }, `${s.name}/${c.collection}${at !== null && at >= run.id ? " ✓" : " …"}`));
    }
  return out;
}

async function runJob(name: string): Promise<void> {
  try {
    const r = await ok(api.POST("/api/jobs/{name}/run", { params: { path: { name } } }));
    notice(`${name}: ${r.status}${r.note ? ` (${r.note})` : ""}`, "ok");
    setTimeout(() => void hooks.refreshRuns().catch(() => {}), 1000);
  } catch (e) {
    notice(`run ${name}: ${message(e)}`, "bad");
  }
}

/** Sources (the latest read of each), jobs, quality per source and the recent runs. */
export async function refreshRuns(): Promise<void> {
  const [{ data: runs }, { data: jobs }] = await Promise.all([ok(api.GET("/api/runs", { params: { query: { limit: "200" } } })), ok(api.GET("/api/jobs"))]);
  state.runs = runs;
  const bySource = new Map<string, Run>();
  for (const r of runs) if (SOURCE_KINDS.has(r.kind) && !bySource.has(r.source)) bySource.set(r.source, r);
  fill(
    $("#sources tbody"),
    [...bySource.values()].map((r) =>
      h("tr", {}, h("td", {}, r.source), h("td", {}, when(r.finishedAt || r.startedAt)), h("td", { class: outcomeClass(r.outcome) }, r.outcome, r.error ? h("small", { title: r.error }, " ⚠") : ""), h("td", { class: "num" }, `${num(r.read)} → ${num(r.stored)}`), h("td", {}, quality(r) ? meter(quality(r)!.score) : "—")),
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
  fillQuality(runs);
  fillRuns(runs);
}

// Quality: per source, the last score, the average, and the rules broken over these runs.
function fillQuality(runs: Run[]): void {
  const q = new Map<string, { last: number; sum: number; n: number; rules: Record<string, number> }>();
  for (const r of runs) {
    const s = quality(r);
    if (!SOURCE_KINDS.has(r.kind) || !s) continue;
    let e = q.get(r.source);
    if (!e) q.set(r.source, (e = { last: s.score, sum: 0, n: 0, rules: {} }));
    e.sum += s.score;
    e.n++;
    for (const [rule, n] of Object.entries(s.rules || {})) e.rules[rule] = (e.rules[rule] || 0) + n;
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
        h("td", {}, Object.entries(e.rules).map(([rule, n]) => h("a", { href: "#quarantine-card", onclick: () => hooks.filterQuarantine({ source, rule }) }, `${rule} ${num(n)} `))),
      ),
    ),
    "No scored runs yet.",
    4,
  );
}

function fillRuns(runs: Run[]): void {
  fill(
    $("#runs tbody"),
    runs.slice(0, 30).map((r) =>
      h(
        "tr",
        {},
        h("td", {}, `#${r.id}`, h("br"), h("small", {}, ago(r.startedAt))),
        h("td", {}, r.kind),
        h(
          "td",
          { class: "lineage" },
          h("small", {}, actorText(startedBy(r))),
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
          r.quarantined ? h("a", { href: "#quarantine-card", class: "bad", onclick: () => hooks.filterQuarantine({ run: r.id }) }, h("br"), `${num(r.quarantined)} quarantined`) : "",
        ),
        h("td", {}, quality(r) ? pct(quality(r)!.score) : "—"),
      ),
    ),
    "No runs yet.",
    6,
  );
}

export async function refreshSinks(): Promise<void> {
  const { data } = await ok(api.GET("/api/sinks"));
  state.sinks = data;
  const rows: HTMLElement[] = [];
  for (const s of data)
    for (const c of s.collections) {
      const k = c.consistency;
      const cursorTs = c.cursor && typeof c.cursor.ts === "string" ? c.cursor.ts : null;
      rows.push(
        h(
          "tr",
          { dataset: { sink: s.name, collection: c.collection, status: k.status } },
          h("td", {}, s.name, h("br"), h("small", { title: s.location }, s.kind)),
          h("td", {}, c.collection),
          h("td", {}, c.cursor ? [`run ${c.cursor.runId ?? "—"}`, cursorTs ? h("small", {}, h("br"), cursorTs.slice(0, 19).replace("T", " ")) : ""] : h("span", { class: "muted" }, "nothing yet")),
          h("td", { class: outcomeClass(k.status) }, k.status, k.differingDays ? h("small", {}, h("br"), `${num(k.differingDays)} days differ`) : "", k.storeRecords !== null && k.storeRecords !== undefined ? h("small", {}, h("br"), `${num(k.storeRecords)} / ${num(k.sinkRecords)} records`) : ""),
          h("td", {}, k.checkedAt ? when(k.checkedAt) : "never"),
        ),
      );
    }
  fill($("#sinks tbody"), rows, "No sinks in the config.", 5);
}

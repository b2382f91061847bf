// The dashboard's quarantine panel: filter the quarantined rows, page back through them, and
// replay a selection or everything matching the filter.
import { $, $input, $select, h, fill, message, notice } from "./dom.ts";
import { api, hooks, ok, state } from "./state.ts";
import { INGEST_KINDS } from "./panels.ts";

type Filter = { source: string; rule: string; run: string };
type Row = Awaited<ReturnType<typeof page>>["data"][number];
const quarantine = { filter: { source: "", rule: "", run: "" } as Filter, next: null as string | null, rows: [] as Row[] };

const page = (f: Filter, before: string | undefined) =>
  ok(api.GET("/api/quarantine", { params: { query: { limit: "50", source: f.source || undefined, rule: f.rule || undefined, run: f.run || undefined, before } } }));

export function filterQuarantine(f: { source?: string; rule?: string; run?: number }): void {
  $select("#q-source").value = f.source || "";
  $select("#q-rule").value = f.rule || "";
  $input("#q-run").value = f.run === undefined ? "" : String(f.run);
  loadQuarantine(false).catch((e) => notice(`quarantine: ${message(e)}`, "bad"));
}
function ensureOption(sel: HTMLSelectElement, value: string): void {
  if (value && ![...sel.options].some((o) => o.value === value)) sel.append(h("option", { value }, value));
}

export async function loadQuarantine(more: boolean): Promise<void> {
  const f: Filter = { source: $select("#q-source").value, rule: $select("#q-rule").value, run: $input("#q-run").value.trim() };
  const r = await page(f, more && quarantine.next ? quarantine.next : undefined);
  quarantine.filter = f;
  quarantine.next = r.next;
  quarantine.rows = more ? [...quarantine.rows, ...r.data] : r.data;
  for (const q of r.data) {
    ensureOption($select("#q-source"), q.source);
    ensureOption($select("#q-rule"), q.rule);
  }
  for (const s of state.runs) if (INGEST_KINDS.has(s.kind)) ensureOption($select("#q-source"), s.source);
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
  $input("#q-all").checked = false;
  pickChanged();
}
const picked = () => [...document.querySelectorAll<HTMLInputElement>(".q-pick:checked")].map((x) => Number(x.value));
function pickChanged(): void {
  $<HTMLButtonElement>("#q-replay-selected").disabled = picked().length === 0;
}

type ReplayBody = { ids?: number[]; all?: true; source?: string; rule?: string; run?: number };
async function replay(body: ReplayBody): Promise<void> {
  const out = $("#q-result");
  out.hidden = false;
  out.className = "notice";
  out.textContent = "replaying…";
  try {
    const { data: r } = await ok(api.POST("/api/quarantine/replay", { body }));
    out.className = `notice ${r.released ? "ok" : ""}`;
    const kept = r.kept.slice(0, 5).map((k) => `#${k.id} ${k.rule}: ${k.reason}`);
    out.replaceChildren(
      `${r.examined} examined · ${r.released} stored and released · ${r.stillFailing} still failing · ${r.skipped} skipped`,
      ...r.sources.filter((s) => s.runId).map((s) => h("small", {}, ` · ${s.source}: run #${s.runId}`)),
      ...kept.map((k) => h("div", {}, h("small", {}, k))),
    );
    await loadQuarantine(false);
    hooks.refreshRuns().catch(() => {});
  } catch (e) {
    out.className = "notice bad";
    out.textContent = `replay: ${message(e)}`;
  }
}

/** The panel's controls. */
export function wireQuarantine(): void {
  $("#q-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    loadQuarantine(false).catch((err) => notice(`quarantine: ${message(err)}`, "bad"));
  });
  $("#q-more").addEventListener("click", () => loadQuarantine(true).catch((e) => notice(`quarantine: ${message(e)}`, "bad")));
  $input("#q-all").addEventListener("change", (e) => {
    for (const x of document.querySelectorAll<HTMLInputElement>(".q-pick")) x.checked = (e.target as HTMLInputElement).checked;
    pickChanged();
  });
  $("#q-replay-selected").addEventListener("click", () => replay({ ids: picked() }));
  $("#q-replay-all").addEventListener("click", () => {
    const f = quarantine.filter;
    const body: ReplayBody = { all: true };
    if (f.source) body.source = f.source;
    if (f.rule) body.rule = f.rule;
    if (f.run) body.run = Number(f.run);
    replay(body);
  });
}

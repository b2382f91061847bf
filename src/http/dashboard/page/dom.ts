// The dashboard's small DOM helpers: building elements, filling tables, formatting numbers and times,
// the notice bar. Hand-written because they are a few lines each and the page has no framework.

export type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, unknown>;

/** The element matching `sel`; a missing one is a bug in index.html, so it throws. */
export function $<T extends HTMLElement = HTMLElement>(sel: string): T {
  const el = document.querySelector<T>(sel);
  if (!el) throw new Error(`the page has no ${sel}`);
  return el;
}
export const $input = (sel: string) => $<HTMLInputElement>(sel);
export const $select = (sel: string) => $<HTMLSelectElement>(sel);

/** An element with attributes (on* are listeners) and children (strings become text). */
export function h(tag: string, attrs?: Attrs | null, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v as EventListener);
    else if (k === "class") el.className = String(v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of (children as unknown[]).flat(Infinity as 1)) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const fill = (tbody: HTMLElement, rows: HTMLElement[], empty: string, cols: number) =>
  tbody.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: cols, class: "muted" }, empty))]));
export const num = (n: number | null | undefined) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 2 }));
export const pct = (x: number | null | undefined) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);

export function ago(iso: string | null | undefined): string {
  if (!iso) return "—";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  const a = Math.abs(s);
  const t = a < 90 ? `${Math.round(a)}s` : a < 5400 ? `${Math.round(a / 60)}m` : a < 172800 ? `${Math.round(a / 3600)}h` : `${Math.round(a / 86400)}d`;
  return s >= 0 ? `${t} ago` : `in ${t}`;
}
export const when = (iso: string | null | undefined) => h("span", { title: iso || "" }, ago(iso));
export const outcomeClass = (o: string | null | undefined) =>
  o === "succeeded" || o === "consistent" || o === "ok" ? "ok" : o === "failed" || o === "inconsistent" || o === "firing" ? "bad" : o === "running" ? "warn" : "muted";
export const meter = (x: number | null | undefined) => h("span", {}, h("span", { class: "meter" }, h("i", { style: `width:${Math.round((x ?? 0) * 100)}%` })), pct(x));

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function notice(text: string, kind?: string): void {
  const el = $("#notice");
  el.textContent = text;
  el.className = `notice ${kind || ""}`;
  el.hidden = !text;
}

/** An error's message for the notice bar. */
export const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

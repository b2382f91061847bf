// A plain landing page so a person who opens localhost sees what is there. The full dashboard
// (charts, alerts, quarantine browser) grows from here.
export function indexPage(version: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ticksync</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 960px; padding: 1rem; color: #1b1f24; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem } small { color: #57606a }
  table { border-collapse: collapse; width: 100%; margin: .8rem 0 } td, th { border-bottom: 1px solid #d0d7de; padding: .3rem .4rem; text-align: left; }
  th { font-weight: 600 } code { background: #f6f8fa; padding: 0 .2rem } .bad { color: #b42318 } .ok { color: #1a7f37 }
  @media (max-width: 600px) { .wide { display: none } }
</style></head>
<body>
<h1>ticksync</h1><small>version ${version} · <span id="ready">checking store…</span></small>
<h2>Symbols</h2><table id="symbols"><thead><tr><th>symbol</th><th>market</th><th class="wide">source</th><th>bars</th><th>last</th></tr></thead><tbody></tbody></table>
<h2>Recent runs</h2><table id="runs"><thead><tr><th>id</th><th>source</th><th>outcome</th><th>read</th><th>stored</th><th class="wide">unchanged</th><th>quarantined</th><th class="wide">score</th></tr></thead><tbody></tbody></table>
<p>API: <code>/api/symbols</code> · <code>/api/bars?symbol=PKN.WA</code> · <code>/api/runs</code> · <code>/api/quarantine</code> · <code>/api/jobs</code> · <code>/metrics</code> · <code>/healthz</code> · <code>/readyz</code></p>
<script>
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
async function refresh() {
  const ready = await fetch("/readyz").then((r) => r.json()).catch(() => null);
  const el = document.getElementById("ready");
  el.textContent = ready && ready.ready ? "store " + ready.store.kind + " ready" : "store not ready";
  el.className = ready && ready.ready ? "ok" : "bad";
  const sym = await fetch("/api/symbols").then((r) => r.json());
  document.querySelector("#symbols tbody").innerHTML = sym.data.flatMap((s) => s.series.map((x) =>
    "<tr><td><a href='/api/bars?symbol=" + encodeURIComponent(s.symbol) + "&interval=" + x.interval + "'>" + esc(s.symbol) + "</a></td><td>" + esc(s.market) +
    "</td><td class='wide'>" + esc(x.source) + "</td><td>" + x.bars + "</td><td>" + x.last.slice(0, 10) + "</td></tr>")).join("");
  const runs = await fetch("/api/runs?limit=10").then((r) => r.json());
  document.querySelector("#runs tbody").innerHTML = runs.data.map((r) =>
    "<tr><td>" + r.id + "</td><td>" + esc(r.source) + "</td><td class='" + (r.outcome === "failed" ? "bad" : "ok") + "'>" + r.outcome + "</td><td>" + r.read +
    "</td><td>" + r.stored + "</td><td class='wide'>" + r.unchanged + "</td><td>" + r.quarantined + "</td><td class='wide'>" + (r.quality ? r.quality.score : "") + "</td></tr>").join("");
}
refresh(); setInterval(refresh, 5000);
</script>
</body></html>`;
}

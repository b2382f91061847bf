// The ticksync dashboard, the browser side: it reads the JSON API through the typed client
// (src/http/client), draws its charts with TradingView's lightweight-charts (loaded before this
// script as window.LightweightCharts) and follows the live feed on /api/ws. Bundled by
// scripts/gen-dashboard.ts into ../dashboard.js, which the server embeds.
// State the browser tests read is kept on window.ticksync and as data-* attributes on #candles.
import { refreshFreshness, refreshRates, refreshResources } from "./charts.ts";
import { $, $input, $select, message, notice } from "./dom.ts";
import { live, loadSymbols, wireLive } from "./live.ts";
import { refreshAlerts, refreshMarkets, refreshReady, refreshRuns, refreshSinks } from "./panels.ts";
import { filterQuarantine, loadQuarantine, wireQuarantine } from "./quarantine.ts";
import { every, hooks, saveToken, state, tickAll } from "./state.ts";

Object.assign(hooks, { refreshRuns, refreshMarkets, filterQuarantine });

$input("#token").value = state.token;
$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  saveToken($input("#token").value.trim());
  notice(state.token ? "token saved in this browser" : "token cleared", "ok");
  setTimeout(() => notice(""), 2500);
  // Everything again with the new token (reads may need it too).
  tickAll();
  loadQuarantine(false).catch((err) => notice(`quarantine: ${message(err)}`, "bad"));
  live.reconnect();
});
$select("#rates-window").addEventListener("change", () => refreshRates().catch((e) => notice(`rates: ${message(e)}`, "bad")));
$select("#fresh-days").addEventListener("change", () => refreshFreshness().catch((e) => notice(`freshness: ${message(e)}`, "bad")));
wireQuarantine();
wireLive();

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
loadQuarantine(false).catch((e) => notice(`quarantine: ${message(e)}`, "bad"));

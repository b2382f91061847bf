// `ticksync doctor`: checks what a config depends on, one line each (ok / warn / fail, what was
// found, what to do): the config, the store (opens, migrated; never migrated here), each sink (an
// authenticated call), each provider source (its base URL answers, one request; its API key is
// there), the clock, the disk, the server's port. The checks run at once, each bounded by
// --timeout; the generic probes are in src/monitor/preflight.ts.
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ConfigError, type LoadedConfig } from "../config/load.ts";
import { findDescriptor } from "../lib/descriptor.ts";
import { errorText } from "../lib/errors.ts";
import { redactUrl } from "../lib/redact.ts";
import { clockCheck, diskCheck, httpAnswer, portCheck, result, runChecks, type Check, type CheckResult, type ClockSample } from "../monitor/preflight.ts";
import { createSink } from "../sinks/registry.ts";
import { SOURCES, type SourceConfig } from "../sources/registry.ts";
import { openStore } from "../stores/open.ts";
import { storeFor } from "../stores/registry.ts";
import { defineCommand, flag, options, text, UsageError, type Options } from "./command.ts";
import { CONFIG_HELP, intFlag, loadCommandConfig } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { out } from "./io.ts";

const DEFAULT_TIMEOUT_MS = 5_000;

const schema = options({
  json: flag("print the report as JSON ({ok, exitCode, checks: [{name, status, what, remedy}]})"),
  timeout: text(`time each check may take, ms (default ${DEFAULT_TIMEOUT_MS})`, "MS"),
});

/** `TICKSYNC_SOURCES__NAME__API_KEY`: the variable that sets a source's key (names match in any case). */
const envName = (section: string, name: string, field: string) => `TICKSYNC_${section}__${name.toUpperCase()}__${field}`;

/** The store opens and its schema is the one this ticksync writes: how many migrations are pending, none applied. */
async function storeCheck(url: string, signal: AbortSignal): Promise<CheckResult> {
  const shown = redactUrl(storeFor(url).redact(url));
  const localFile = storeFor(url).localFile?.(url);
  // Opening a file that is not there would make it (and its folder): the doctor changes nothing.
  if (localFile !== undefined && localFile !== ":memory:" && !existsSync(localFile))
    return result("store", "fail", `${shown} does not exist yet (not migrated)`, "ticksync serve (or ingest) creates and migrates it on its first run; check store.url if it should exist");
  let store: ReturnType<typeof openStore>;
  try {
    store = openStore(url);
  } catch (e) {
    return result("store", "fail", `cannot open ${shown}: ${errorText(e)}`, "check store.url (TICKSYNC_STORE__URL): the file or server it names, and this user's access to it");
  }
  signal.addEventListener("abort", () => void store.close().catch(() => {}), { once: true });
  try {
    const r = await store.ready();
    if (r.error && r.error !== "migrations pending")
      return result("store", "fail", `cannot open ${shown}: ${r.error}`, "check store.url (TICKSYNC_STORE__URL), that its server runs and that the user may sign in");
    if (r.schemaVersion > r.expectedVersion)
      return result("store", "fail", `${shown}: schema version ${r.schemaVersion} is newer than this ticksync's (${r.expectedVersion})`, "run the ticksync that migrated it (upgrade this one)");
    const pending = r.expectedVersion - r.schemaVersion;
    if (pending > 0)
      return result(
        "store",
        "fail",
        `${shown}: ${pending} migration${pending === 1 ? "" : "s"} pending (schema version ${r.schemaVersion}, this ticksync's ${r.expectedVersion})`,
        "back it up (ticksync backup), then start ticksync serve: it migrates the store as it opens it",
      );
    return result("store", "ok", `${shown}: opens, migrated (schema version ${r.schemaVersion})`);
  } finally {
    await store.close().catch(() => {});
  }
}

/** A sink: reachable and its credentials accepted by an authenticated call (the health probe's). */
function sinkChecks(loaded: LoadedConfig): Check[] {
  return Object.entries(loaded.config.sinks).map(([name, cfg]) => ({
    name: `sink:${name}`,
    async run() {
      const sink = createSink(name, cfg);
      const p = await sink.probe();
      const where = `${sink.kind} ${sink.location}`;
      if (!p.reachable) return result(`sink:${name}`, "fail", `${where} unreachable: ${p.error ?? "no answer"}`, `check sinks.${name}.url and that the server runs`);
      if (!p.authenticated)
        return result(`sink:${name}`, "fail", `${where} reachable, not authenticated: ${p.error ?? "refused"}`, `check sinks.${name}.email and password (${envName("SINKS", name, "PASSWORD")})`);
      return result(`sink:${name}`, "ok", `${where} reachable, signed in, an authenticated call answered (${p.latencyMs} ms)`);
    },
  }));
}

type ProviderLike = { baseUrl?: unknown; apiKey?: unknown };

/**
 * A provider source: one GET of its base URL (any HTTP answer means it is there; 429 is reachable
 * but rate-limited), and its API key present when it needs one (never shown). Adds the answer's
 * Date to `clock`.
 */
function sourceChecks(loaded: LoadedConfig, clock: ClockSample[]): Check[] {
  return Object.entries(loaded.config.sources).flatMap(([name, cfg]): Check[] => {
    const d = findDescriptor(SOURCES, (cfg as SourceConfig).type);
    const c = cfg as ProviderLike;
    if (!d?.provider || typeof c.baseUrl !== "string") return [];
    const baseUrl = c.baseUrl;
    const keyCheck: Check = {
      name: `apikey:${name}`,
      run: async () => {
        const has = typeof c.apiKey === "string" && c.apiKey !== "";
        if (has) return result(`apikey:${name}`, "ok", `${d.type} source ${name}: API key present (not shown)`);
        if (d.apiKey === "required")
          return result(`apikey:${name}`, "fail", `${d.type} source ${name}: no API key (${d.type} needs one)`, `set ${envName("SOURCES", name, "API_KEY")} (or apiKey in [sources.${name}])`);
        return result(`apikey:${name}`, "ok", `${d.type} source ${name}: no API key (${d.apiKey === "optional" ? "optional" : "none needed"})`);
      },
    };
    const urlCheck: Check = {
      name: `source:${name}`,
      async run(signal) {
        const shown = redactUrl(baseUrl);
        let a;
        try {
          a = await httpAnswer(baseUrl, signal);
        } catch (e) {
          return result(`source:${name}`, "fail", `${d.type} source ${name} at ${shown}: ${errorText(e)}`, `check sources.${name}.baseUrl, the network, a proxy or firewall`);
        }
        clock.push({ from: `${name} (${shown})`, answer: a });
        if (a.status === 429) {
          const wait = a.retryAfterMs === undefined ? "" : `, Retry-After ${Math.ceil(a.retryAfterMs / 1000)} s`;
          return result(`source:${name}`, "warn", `${d.type} source ${name} at ${shown}: reachable, rate-limited (429${wait})`, `its calls are being refused for now: wait, or lower sources.${name}.rateLimit`);
        }
        if (a.status >= 500) return result(`source:${name}`, "warn", `${d.type} source ${name} at ${shown}: answers with HTTP ${a.status}`, "the provider has trouble on its side; runs retry, try again later");
        return result(`source:${name}`, "ok", `${d.type} source ${name} at ${shown}: answers (HTTP ${a.status})`);
      },
    };
    return [urlCheck, keyCheck];
  });
}

/** Where the store, the backups and the log file are written (directories, deduplicated by path). */
function diskChecks(loaded: LoadedConfig): CheckResult[] {
  const { config, baseDir } = loaded;
  const places: [name: string, what: string, dir: string][] = [];
  const localFile = storeFor(config.store.url).localFile?.(config.store.url);
  if (localFile !== undefined && localFile !== ":memory:") places.push(["disk:store", "store", dirname(resolve(baseDir, localFile))]);
  for (const j of config.jobs) if (j.kind === "backup") places.push([`disk:backup:${j.name}`, `backup job ${j.name}`, resolve(baseDir, (j as { dir?: string }).dir ?? "backups")]);
  if (config.log.file) places.push(["disk:log", "log file", dirname(resolve(baseDir, config.log.file))]);
  const seen = new Set<string>();
  return places.filter(([, , dir]) => !seen.has(dir) && seen.add(dir)).map(([name, what, dir]) => diskCheck(name, what, dir));
}

/** Every check of a loaded config, the clock last (it reads the answers the source checks got). */
async function checkConfig(loaded: LoadedConfig, timeoutMs: number): Promise<CheckResult[]> {
  const clock: ClockSample[] = [];
  const first = await runChecks(
    [
      { name: "store", run: (signal) => storeCheck(loaded.config.store.url, signal) },
      ...sinkChecks(loaded),
      ...sourceChecks(loaded, clock),
      { name: "disk", run: async () => diskChecks(loaded) },
      { name: "port", run: (signal) => portCheck(loaded.config.server.host, loaded.config.server.port, signal) },
    ],
    timeoutMs,
  );
  // No provider answered: the sinks' servers are asked for the time instead (one GET each).
  if (clock.length === 0) {
    const urls = Object.entries(loaded.config.sinks).flatMap(([name, s]) => (typeof (s as { url?: unknown }).url === "string" ? [[name, (s as { url: string }).url] as const] : []));
    await runChecks(
      urls.map(([name, url]) => ({
        name: `clock:${name}`,
        run: async (signal) => (clock.push({ from: `sink ${name} (${redactUrl(url)})`, answer: await httpAnswer(url, signal) }), []),
      })),
      timeoutMs,
    );
  }
  return [...first, clockCheck(clock)];
}

function configLine(loaded: LoadedConfig): CheckResult {
  if (loaded.file) return result("config", "ok", `${loaded.file} is valid`);
  return result("config", "warn", "no config file: built-in defaults and TICKSYNC_* variables only", "give --config FILE or set TICKSYNC_CONFIG");
}

function report(lines: CheckResult[], code: number, json: boolean) {
  if (json) return out(JSON.stringify({ ok: code === EXIT.ok, exitCode: code, checks: lines }, null, 2));
  const width = Math.max(...lines.map((l) => l.name.length)) + 2;
  for (const l of lines) out(`${l.status.toUpperCase().padEnd(5)} ${l.name.padEnd(width)}${l.what}${l.remedy ? ` — ${l.remedy}` : ""}`);
  const failed = lines.filter((l) => l.status === "fail").length;
  const warned = lines.filter((l) => l.status === "warn").length;
  out(failed ? `${failed} check${failed === 1 ? "" : "s"} failed${warned ? `, ${warned} warned` : ""} (exit ${code})` : `all checks passed${warned ? ` (${warned} warning${warned === 1 ? "" : "s"})` : ""}`);
}

async function run(v: Options<typeof schema>): Promise<number> {
  const timeoutMs = intFlag("timeout", v.timeout) ?? DEFAULT_TIMEOUT_MS;
  if (timeoutMs < 1) throw new UsageError("--timeout expects a number of milliseconds above 0");
  let loaded: LoadedConfig;
  try {
    loaded = loadCommandConfig(v);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // Nothing else can be checked without a valid config: its own line, every bad field on it.
    const fields = e.issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ");
    report([result("config", "fail", `invalid config${e.file ? ` in ${e.file}` : ""}: ${fields}`, "fix the fields named (docs/config.md; ticksync config check)")], EXIT.config, v.json === true);
    return EXIT.config;
  }
  const lines = [configLine(loaded), ...(await checkConfig(loaded, timeoutMs))];
  const code = lines.some((l) => l.status === "fail") ? EXIT.checkFailed : EXIT.ok;
  report(lines, code, v.json === true);
  return code;
}

export const doctorCommand = defineCommand({
  type: "doctor",
  listed: [["doctor", "check what a config depends on (store, sinks, providers, clock,\ndisk, port), each with a remedy"]],
  schema,
  usage: `Usage: ticksync doctor [--config FILE] [--json] [--timeout MS]`,
  about: `Checks what the config depends on and prints one line per check: ok, warn or fail, what it
found and, when not ok, what to do. Changes nothing: the store is opened but never migrated
(a SQLite file that is not there is not made), each provider gets one request.
  config      the config is valid
  store       it opens and is migrated to this ticksync's schema (how many migrations pending)
  sink:NAME   reachable, and an authenticated call with its credentials answers
  source:NAME the provider's base URL answers (one GET; 429 counts as reachable, rate-limited)
  apikey:NAME its API key is present when the provider needs one (never shown)
  clock       within 5 s of a configured server's Date header (warns when none answered)
  disk:…      room where the store, backups and log file live (warns below 1 GiB or 5 %)
  port        server.host:port is free, or taken by a running ticksync
The checks run at once, each for at most --timeout ms. Exit 0 when none fails (warnings
allowed), 7 when one does, 3 when the config itself is invalid.`,
  footers: [CONFIG_HELP, EXIT_CODES_HELP],
  run,
});

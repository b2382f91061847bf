// Alerts: rules from config, evaluated on an interval in `serve`. A rule that starts firing is
// announced once (webhook with a Slack-compatible payload, and/or e-mail over SMTP); while it
// keeps firing nothing more is sent (unless `repeatS` asks for reminders); when it clears a
// resolve message goes out. A person can acknowledge a firing alert (API or dashboard): that
// silences reminders until it clears. The state lives in the store (as checkpoints named
// alert:<name>), so it survives restarts and every replica sees the same.
import * as v from "valibot";
import nodemailer from "nodemailer";
import { statfsSync } from "node:fs";
import { IntervalSchema } from "../domain/bar.ts";
import { nextBarDue } from "../domain/gaps.ts";
import { marketOf } from "../domain/symbols.ts";
import type { Store } from "../stores/types.ts";
import { log } from "../lib/log.ts";
import { redact } from "../lib/redact.ts";
import { MarketSchema, marketChoices, type Market } from "../domain/markets/index.ts";
import { errorText } from "../lib/errors.ts";
import { selects, type DependencyState } from "./health.ts";

const Name = v.pipe(v.string(), v.regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, "expected a name of letters, digits, _ and - starting with a letter"));
const Severity = v.optional(v.pipe(v.picklist(["info", "warning", "critical"], "expected info, warning or critical"), v.description("info, warning or critical.")), "warning");
const Seconds = v.pipe(v.number("expected seconds"), v.minValue(1, "expected at least 1 second"));
const described = <S extends v.GenericSchema>(schema: S, text: string) => v.pipe(schema, v.description(text));
const ruleKind = <T extends string>(kind: T, text: string) => described(v.literal(kind), text);
const ruleName = described(Name, "The alert's name (its state is kept as alert:<name>).");
/** A dependency as /api/health names it, or a group of them (server.readiness uses the same). */
export const DependencySelector = v.pipe(
  v.string(),
  v.regex(/^(?:store|sinks|disk|sink:[A-Za-z][A-Za-z0-9_-]{0,63})$/, 'expected "store", "sinks", "sink:<name>" or "disk"'),
);
const windowS = v.optional(described(Seconds, "The window looked back over, seconds."), 3600);

export const alertRuleSchema = v.variant(
  "kind",
  [
    v.strictObject({
      kind: ruleKind(
        "staleness",
        "A market's series are stale: the bar that should follow their newest one, by the market's sessions, is due more than maxAgeS ago, while the market trades.",
      ),
      name: ruleName,
      severity: Severity,
      market: v.optional(described(MarketSchema, `The market whose series are watched (${marketChoices()}); default: every series, each by its own market.`)),
      interval: v.optional(described(IntervalSchema, "The interval of the series watched."), "1d"),
      maxAgeS: described(Seconds, "Seconds past the instant the next bar was due (counted in the market's sessions: weekends, holidays and nights never count) beyond which the rule fires."),
    }),
    v.strictObject({
      kind: ruleKind("errors", "Runs that failed within the window."),
      name: ruleName,
      severity: Severity,
      windowS,
      maxFailed: v.optional(described(v.pipe(v.number(), v.integer(), v.minValue(0)), "Failed runs allowed in the window; more fire."), 0),
    }),
    v.strictObject({
      kind: ruleKind("quarantine", "Share of rows quarantined over the window's runs."),
      name: ruleName,
      severity: Severity,
      windowS,
      maxRate: described(v.pipe(v.number(), v.minValue(0), v.maxValue(1)), "Share of rows read (0..1) that may be quarantined; more fire."),
    }),
    v.strictObject({
      kind: ruleKind("consistency", "The last verify of a sink's collection found differences."),
      name: ruleName,
      severity: Severity,
      sink: v.optional(described(Name, "The sink watched (default: every sink).")),
    }),
    v.strictObject({
      kind: ruleKind("sink_backlog", "More bars than maxPending wait to be delivered to a sink."),
      name: ruleName,
      severity: Severity,
      sink: described(Name, "The sink watched."),
      maxPending: described(v.pipe(v.number(), v.integer(), v.minValue(0)), "Bars that may wait for the sink; more fire."),
    }),
    v.strictObject({
      kind: ruleKind("disk", "Free space where the store (or path) lives is below a floor."),
      name: ruleName,
      severity: Severity,
      path: v.optional(described(v.string(), "The directory whose file system is watched (default: the store's).")),
      minFreeBytes: v.optional(described(v.pipe(v.number(), v.minValue(0)), "Fires below this many free bytes.")),
      minFreeRatio: v.optional(described(v.pipe(v.number(), v.minValue(0), v.maxValue(1)), "Fires below this share (0..1) of the file system free.")),
    }),
    v.strictObject({
      kind: ruleKind(
        "dependency",
        "A dependency is down, as GET /api/health probes it (the store; a sink unreachable or refusing its sign-in; the disk): fires at the first evaluation that finds it down, not when a run's retries run out, and resolves when it is back.",
      ),
      name: ruleName,
      severity: Severity,
      dependencies: v.optional(
        described(
          v.pipe(v.array(DependencySelector), v.minLength(1, "name at least one dependency")),
          'What is watched: "store", "sinks" (every sink), "sink:<name>", "disk".',
        ),
        ["store", "sinks"],
      ),
    }),
  ],
  "expected an alert rule with kind staleness, errors, quarantine, consistency, sink_backlog, disk or dependency",
);
export type AlertRule = v.InferOutput<typeof alertRuleSchema>;

export const alertsConfigSchema = v.strictObject({
  intervalS: v.optional(described(Seconds, "How often the rules are evaluated, seconds."), 30),
  repeatS: v.optional(described(v.pipe(v.number(), v.minValue(0)), "Remind every repeatS seconds while an unacknowledged alert fires (0: announce once)."), 0),
  rules: v.optional(described(v.array(alertRuleSchema), "The alert rules, each with a kind."), []),
  webhook: v.optional(
    described(
      v.strictObject({
        url: described(v.pipe(v.string(), v.url("expected the webhook's URL")), "The URL POSTed to; best set with TICKSYNC_ALERTS__WEBHOOK__URL (its path is a secret)."),
        format: v.optional(described(v.picklist(["slack", "json"]), 'slack: { text } as Slack\'s incoming webhooks take it; json: { event, alert, text }.'), "slack"),
      }),
      "POST a JSON message per notification.",
    ),
  ),
  email: v.optional(
    described(
      v.strictObject({
        url: described(
          v.pipe(v.string(), v.regex(/^smtps?:\/\//, "expected smtp://user:pass@host:port or smtps://…")),
          "smtp://user:pass@host:port or smtps://…; the password is best set with TICKSYNC_ALERTS__EMAIL__URL.",
        ),
        from: described(v.pipe(v.string(), v.email("expected an e-mail address")), "The sender's address."),
        to: described(v.pipe(v.array(v.pipe(v.string(), v.email("expected an e-mail address"))), v.minLength(1)), "Recipients' addresses."),
      }),
      "Send notifications by e-mail over SMTP.",
    ),
  ),
});
export type AlertsConfig = v.InferOutput<typeof alertsConfigSchema>;

export type AlertStatus = "ok" | "firing";
export type AlertState = {
  name: string;
  kind: AlertRule["kind"];
  severity: string;
  status: AlertStatus;
  /** What the rule saw last, in words. */
  message: string;
  value: number | null;
  since: number | null;
  lastEvaluated: number | null;
  lastNotified: number | null;
  acknowledged: boolean;
  acknowledgedBy: string | null;
};

export type Notification = { alert: AlertState; event: "firing" | "resolved" | "reminder" };
export type Notifier = { name: string; send(n: Notification): Promise<void> };

/** What rules read besides the store; injected so serve and the tests wire them alike. */
export type AlertInputs = {
  now?: () => number;
  /** Is the market trading at this instant? */
  isOpen: (market: Market, at: Date) => boolean;
  /** Bars pending for a sink (at most `atMost + 1` counted). */
  sinkBacklog?: (sink: string, atMost: number) => Promise<number>;
  /** Consistency status per sink collection. */
  consistency?: () => Promise<{ sink: string; collection: string; status: string; differingDays: number | null }[]>;
  /** Where the store's data lives, for the disk rule. */
  dataPath?: string;
  /** Every dependency's state now (the health checks), for the dependency rule. */
  dependencies?: () => Promise<DependencyState[]>;
};

type Check = { firing: boolean; message: string; value: number | null };

const stream = (name: string) => `alert:${name}`;

function describeText(n: Notification): string {
  const a = n.alert;
  const icon = n.event === "resolved" ? "✅ RESOLVED" : n.event === "reminder" ? "🔁 STILL FIRING" : a.severity === "critical" ? "🔴 FIRING" : "🟠 FIRING";
  return `${icon} [ticksync] ${a.name} (${a.kind}, ${a.severity}): ${a.message}`;
}

export function webhookNotifier(cfg: NonNullable<AlertsConfig["webhook"]>): Notifier {
  return {
    name: "webhook",
    async send(n) {
      const body = cfg.format === "slack" ? { text: describeText(n) } : { event: n.event, alert: n.alert, text: describeText(n) };
      const r = await fetch(cfg.url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      if (!r.ok) throw new Error(`webhook answered ${r.status}`);
    },
  };
}

export function emailNotifier(cfg: NonNullable<AlertsConfig["email"]>): Notifier {
  const transport = nodemailer.createTransport(cfg.url);
  return {
    name: "email",
    async send(n) {
      const text = describeText(n);
      await transport.sendMail({
        from: cfg.from,
        to: cfg.to.join(", "),
        // Plain ASCII: mail clients show it as is, and filters can match it.
        subject: `[ticksync] ${n.event === "resolved" ? "RESOLVED" : n.event === "reminder" ? "STILL FIRING" : "FIRING"} ${n.alert.name} (${n.alert.severity})`,
        text: `${text}\n\nsince: ${n.alert.since ? new Date(n.alert.since).toISOString() : "-"}\nvalue: ${n.alert.value ?? "-"}\n`,
      });
    },
  };
}

/** A rule's state as kept in the store, or a fresh one. */
async function loadState(store: Store, r: AlertRule): Promise<AlertState> {
  const cp = await store.getCheckpoint(stream(r.name));
  const c = (cp?.cursor ?? {}) as Record<string, any>;
  return {
    name: r.name,
    kind: r.kind,
    severity: r.severity,
    status: c.status === "firing" ? "firing" : "ok",
    message: typeof c.message === "string" ? c.message : "not evaluated yet",
    value: typeof c.value === "number" ? c.value : null,
    since: typeof c.since === "number" ? c.since : null,
    lastEvaluated: typeof c.lastEvaluated === "number" ? c.lastEvaluated : null,
    lastNotified: typeof c.lastNotified === "number" ? c.lastNotified : null,
    acknowledged: c.acknowledged === 1,
    acknowledgedBy: typeof c.acknowledgedBy === "string" ? c.acknowledgedBy : null,
  };
}

async function saveState(store: Store, s: AlertState): Promise<void> {
  await store.putCheckpoints(
    [
      {
        stream: stream(s.name),
        cursor: {
          status: s.status,
          message: s.message,
          value: s.value,
          since: s.since,
          lastEvaluated: s.lastEvaluated,
          lastNotified: s.lastNotified,
          acknowledged: s.acknowledged ? 1 : 0,
          acknowledgedBy: s.acknowledgedBy,
        },
        lastTs: s.since,
        lastKey: s.status,
      },
    ],
    0,
  );
}

/** The runs started in the last `windowS` seconds, newest first. */
async function recentRuns(store: Store, now: () => number, windowS: number) {
  const from = now() - windowS * 1000;
  const out = [];
  for (let before: number | undefined; ; ) {
    const page = await store.listRuns({ limit: 200, before });
    for (const r of page) if (r.startedAt >= from) out.push(r);
    if (page.length < 200 || page[page.length - 1]!.startedAt < from) break;
    before = page[page.length - 1]!.id;
  }
  return out;
}

type StalenessRule = Extract<AlertRule, { kind: "staleness" }>;

/**
 * Staleness per market, each series by its own market (the symbol's suffix): of the market's
 * series the newest bar counts, and the bar after it is due by the market's sessions
 * (`nextBarDue`), so a Tokyo series is not stale over a Tokyo holiday or a weekend. A market that
 * is not trading now is not looked at: nobody is paged at night for the close's bar.
 */
async function checkStaleness(r: StalenessRule, store: Store, inputs: AlertInputs, t: number): Promise<Check> {
  const newest = new Map<Market, number>();
  for (const s of await store.listSeries()) {
    const market = marketOf(s.symbol);
    if (s.interval !== r.interval || market === undefined || (r.market !== undefined && market !== r.market) || s.bars === 0) continue;
    newest.set(market, Math.max(newest.get(market) ?? -Infinity, s.lastTs));
  }
  const watched = r.market !== undefined ? [r.market] : [...newest.keys()];
  const trading = watched.filter((m) => inputs.isOpen(m, new Date(t)));
  const scope = r.market ?? "any market";
  if (trading.length === 0) return { firing: false, message: watched.length ? `${watched.join(", ")} not trading` : `no ${r.interval} series`, value: null };
  const stale: string[] = [];
  let worst = -Infinity;
  for (const m of trading) {
    const last = newest.get(m);
    if (last === undefined) {
      stale.push(`no ${r.interval} bars for ${m} at all`);
      continue;
    }
    const age = Math.round((t - nextBarDue(m, r.interval, last)) / 1000);
    worst = Math.max(worst, age);
    if (age > r.maxAgeS) stale.push(`${m}: the ${r.interval} bar after ${new Date(last).toISOString()} was due ${age} s ago`);
  }
  const value = worst === -Infinity ? null : worst;
  if (stale.length) return { firing: true, message: `${stale.join("; ")} (limit ${r.maxAgeS} s)`, value };
  return { firing: false, message: `${trading.join(", ")} ${r.interval} bars on time (${scope}; limit ${r.maxAgeS} s)`, value };
}

/** What a rule sees now. */
async function checkRule(r: AlertRule, store: Store, inputs: AlertInputs, now: () => number): Promise<Check> {
  switch (r.kind) {
    case "staleness":
      return checkStaleness(r, store, inputs, now());
    case "errors": {
      const failed = (await recentRuns(store, now, r.windowS)).filter((x) => x.outcome === "failed" || x.outcome === "interrupted");
      return { firing: failed.length > r.maxFailed, message: `${failed.length} runs failed in the last ${r.windowS} s (limit ${r.maxFailed})${failed[0] ? `; latest: run ${failed[0].id} ${failed[0].source}: ${failed[0].error ?? failed[0].outcome}` : ""}`, value: failed.length };
    }
    case "quarantine": {
      const runs = (await recentRuns(store, now, r.windowS)).filter((x) => x.kind === "ingest" || x.kind === "backfill");
      const read = runs.reduce((n, x) => n + x.read, 0);
      const q = runs.reduce((n, x) => n + x.quarantined, 0);
      const rate = read ? q / read : 0;
      return { firing: rate > r.maxRate, message: `${q} of ${read} rows quarantined in the last ${r.windowS} s (${(rate * 100).toFixed(2)}%, limit ${(r.maxRate * 100).toFixed(2)}%)`, value: rate };
    }
    case "consistency": {
      const list = (await inputs.consistency?.()) ?? [];
      const bad = list.filter((c) => (!r.sink || c.sink === r.sink) && c.status === "inconsistent");
      return { firing: bad.length > 0, message: bad.length ? `differs from the store: ${bad.map((c) => `${c.sink}/${c.collection} (${c.differingDays} days)`).join(", ")}` : "every verified sink matches the store", value: bad.length };
    }
    case "sink_backlog": {
      if (!inputs.sinkBacklog) return { firing: false, message: "no such sink in this service", value: null };
      const pending = await inputs.sinkBacklog(r.sink, r.maxPending);
      return { firing: pending > r.maxPending, message: `${pending > r.maxPending ? `more than ${r.maxPending}` : pending} bars wait for sink ${r.sink} (limit ${r.maxPending})`, value: pending };
    }
    case "dependency": {
      if (!inputs.dependencies) return { firing: false, message: "no health checks in this process", value: null };
      const watched = (await inputs.dependencies()).filter((d) => r.dependencies.some((sel) => selects(sel, d.name)));
      const down = watched.filter((d) => d.status === "down");
      if (down.length) return { firing: true, message: `down: ${down.map((d) => `${d.name} (${d.reason ?? "no reason given"})`).join("; ")}`, value: down.length };
      return { firing: false, message: watched.length ? `up: ${watched.map((d) => d.name).join(", ")}` : `nothing matches ${r.dependencies.join(", ")}`, value: 0 };
    }
    case "disk": {
      const path = r.path ?? inputs.dataPath ?? ".";
      const st = statfsSync(path);
      const free = Number(st.bavail) * Number(st.bsize);
      const ratio = free / (Number(st.blocks) * Number(st.bsize));
      const low = (r.minFreeBytes !== undefined && free < r.minFreeBytes) || (r.minFreeRatio !== undefined && ratio < r.minFreeRatio);
      return { firing: low, message: `${(free / 2 ** 30).toFixed(2)} GiB free (${(ratio * 100).toFixed(1)}%) at ${path}`, value: free };
    }
  }
}

/**
 * A check's result applied to the rule's state at `t`: what to announce, if anything (it starts
 * firing, it clears, or with `repeatS` it still fires unacknowledged).
 */
function transition(s: AlertState, c: Check, t: number, repeatS: number): Notification["event"] | null {
  const was = s.status;
  // Scrubbed here, so the API, the log and every notification get the same safe text.
  s.message = redact(c.message);
  s.value = c.value;
  s.lastEvaluated = t;
  if (c.firing && was === "ok") {
    s.status = "firing";
    s.since = t;
    s.acknowledged = false;
    s.acknowledgedBy = null;
    return "firing";
  }
  if (!c.firing && was === "firing") {
    s.status = "ok";
    return "resolved";
  }
  if (c.firing && repeatS > 0 && !s.acknowledged && s.lastNotified !== null && t - s.lastNotified >= repeatS * 1000) return "reminder";
  return null;
}

/** Every notifier in turn; one that fails is logged and the others still run. */
async function notify(notifiers: Notifier[], n: Notification): Promise<void> {
  for (const x of notifiers)
    try {
      await x.send(n);
    } catch (e) {
      log.error("alert notification failed", { alert: n.alert.name, notifier: x.name, error: errorText(e) });
    }
}

export function createAlerts(store: Store, cfg: AlertsConfig, inputs: AlertInputs, notifiers: Notifier[]) {
  const now = inputs.now ?? Date.now;
  const states = new Map<string, AlertState>();
  let loaded = false;

  async function load() {
    if (loaded) return;
    for (const r of cfg.rules) states.set(r.name, await loadState(store, r));
    loaded = true;
  }

  return {
    /** Evaluate every rule once; announce what started, cleared, or (repeatS) still fires. */
    async evaluate(): Promise<AlertState[]> {
      await load();
      for (const r of cfg.rules) {
        const s = states.get(r.name)!;
        let c: Check;
        try {
          c = await checkRule(r, store, inputs, now);
        } catch (e) {
          c = { firing: true, message: `the rule could not be evaluated: ${errorText(e)}`, value: null };
        }
        const t = now();
        const event = transition(s, c, t, cfg.repeatS);
        if (event) {
          s.lastNotified = t;
          log[event === "resolved" ? "info" : "warn"](`alert ${event}`, { alert: s.name, kind: s.kind, message: s.message });
          await notify(notifiers, { alert: { ...s }, event });
          if (event === "resolved") s.since = null;
        }
        await saveState(store, s);
      }
      return this.list();
    },
    list(): AlertState[] {
      return cfg.rules.map((r) => states.get(r.name)).filter((s): s is AlertState => !!s).map((s) => ({ ...s }));
    },
    async ack(name: string, by: string): Promise<AlertState | null> {
      await load();
      const s = states.get(name);
      if (!s) return null;
      if (s.status === "firing") {
        s.acknowledged = true;
        s.acknowledgedBy = by;
        await saveState(store, s);
      }
      return { ...s };
    },
  };
}
export type Alerts = ReturnType<typeof createAlerts>;

// What the HTTP app is given: the store, metrics and the optional parts of the process it serves
// (scheduler, alerts, sinks, the live feed, quarantine replay). One type, shared by app.ts and
// the route modules.
import type { Store } from "../stores/types.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import type { Scheduler } from "../scheduler/scheduler.ts";
import type { Hub } from "../stream/hub.ts";
import type { StreamConfig } from "../stream/config.ts";
import type { ReplayConfig } from "../stream/range-read.ts";
import type { Alerts } from "../monitor/alerts.ts";
import type { Health } from "../monitor/health.ts";
import type { ContextOf } from "../pipeline/replay-quarantine.ts";
import type { IndicatorsConfig } from "../domain/indicators.ts";
import type { Scope, SecurityConfig } from "./security.ts";
import type { KeyedLimiter } from "./rate-limit.ts";

/** What the HTTP layer needs to know of a sink: its name, collection and where it is. */
export type SinkInfo = { name: string; kind: string; collections: string[]; location: string };

export type AppDeps = {
  store: Store;
  metrics: TicksyncMetrics;
  alerts?: Alerts;
  security?: SecurityConfig;
  scheduler?: Scheduler;
  maxPageSize?: number;
  /** `[indicators]`: the sets /api/indicators computes when a request names none. */
  indicators?: IndicatorsConfig;
  /** The config's own universes (for `[indicators.universes]`). */
  universes?: Record<string, string[]>;
  /** Clock for gap detection (the latest completed session); tests pin it. */
  now?: () => number;
  version?: string;
  sinks?: SinkInfo[];
  /** `[replay]`: the bounds of GET /api/replay and the WebSocket's replay. */
  replay?: ReplayConfig;
  /** The live feed: /api/ws and /api/stream (Bun.serve needs the hub's `websocket` handler too). */
  stream?: { hub: Hub; config: StreamConfig };
  /** How a configured source validates rows now (quarantine replay); absent: replay is unavailable. */
  replayContext?: ContextOf;
  /** Every dependency's state (/api/health, /readyz beyond the store, the dependency alert). */
  health?: Health;
  /** The rate limiter of security.rateLimit (tests pass one to look at its size); absent: a new one. */
  limiter?: KeyedLimiter;
  /** The scope POST /api/jobs/:name/run needs per job (security.ts jobScope); a job not in it: operate. */
  jobScopes?: ReadonlyMap<string, Scope>;
  /** The backup jobs and where each writes (/api/backups, POST /api/trigger_backup). */
  backups?: { job: string; dir: string }[];
};

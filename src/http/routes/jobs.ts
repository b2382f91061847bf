// GET /api/jobs: the scheduler's jobs and what each is doing; POST /api/jobs/:name/run: start one now.
import { Hono } from "hono";
import { jobWaiting } from "../../pipeline/progress.ts";
import { withActor } from "../../monitor/audit.ts";
import { apiActor } from "../actor.ts";
import type { AppDeps } from "../deps.ts";
import { requireScope } from "../security.ts";
import { describe, error, json } from "../openapi.ts";
import { BusyBody, JobStartedBody, JobsBody } from "../schemas/ops.ts";
import type { Body } from "../schemas/common.ts";

export function jobRoutes(deps: Pick<AppDeps, "scheduler" | "jobScopes">): Hono {
  const app = new Hono();
  // A running job in a long wait (rate limit, Retry-After) says so: `waiting: {reason, until, seconds}`.
  const list = describe({ summary: "The scheduler's jobs and what each is doing", tags: ["operations"], responses: { 200: json(JobsBody, "every job") } });
  app.get("/", list, (c) => c.json({ data: (deps.scheduler?.list() ?? []).map((j) => ({ ...j, waiting: j.running ? jobWaiting(j.name) : null })) } satisfies Body<typeof JobsBody>));
  const run = describe({
    summary: "Start a job now",
    description: "Needs operate; admin for a job whose runs delete data (retention, verify with repair, ingest from a source with reconcile.deleteMissing). Market hours gate cron ticks only: a manual run starts whatever the market's phase, and says so.",
    tags: ["operations"],
    responses: {
      202: json(JobStartedBody, "started"),
      404: error("Not Found: no scheduler in this process, or no such job"),
      409: json(BusyBody, "Conflict: the job is running; it does not overlap itself"),
    },
  });
  // operate; admin for a job that deletes data (security.ts jobScope).
  app.post("/:name/run", run, requireScope((c) => deps.jobScopes?.get(c.req.param("name")!) ?? "operate"), async (c) => {
    if (!deps.scheduler) return c.json({ error: "no scheduler in this process" }, 404);
    const r = await withActor(apiActor(c), () => deps.scheduler!.trigger(c.req.param("name")));
    if (r === "unknown") return c.json({ error: "unknown job", job: c.req.param("name") }, 404);
    if (r === "busy") return c.json({ status: "busy", message: "the job is running; it does not overlap itself" } satisfies Body<typeof BusyBody>, 409);
    // Market hours gate cron ticks only: a manual run starts whatever the market's phase, and says so.
    const job = deps.scheduler.list().find((j) => j.name === c.req.param("name"));
    const gated = job?.market
      ? { marketPhase: job.marketPhase, note: `manual runs ignore market hours (${job.market} is ${job.marketPhase})` }
      : job?.markets
        ? { markets: job.markets, note: `manual runs ignore market hours and read every symbol (${job.markets.map((m) => `${m.market} is ${m.phase}`).join(", ")})` }
        : {};
    return c.json({ status: "started", ...gated } satisfies Body<typeof JobStartedBody>, 202);
  });
  return app;
}

// GET /api/jobs: the scheduler's jobs and what each is doing; POST /api/jobs/:name/run: start one now.
import { Hono } from "hono";
import { jobWaiting } from "../../pipeline/progress.ts";
import { withActor } from "../../monitor/audit.ts";
import { apiActor } from "../actor.ts";
import type { AppDeps } from "../deps.ts";
import { requireScope } from "../security.ts";

export function jobRoutes(deps: Pick<AppDeps, "scheduler" | "jobScopes">): Hono {
  const app = new Hono();
  // A running job in a long wait (rate limit, Retry-After) says so: `waiting: {reason, until, seconds}`.
  app.get("/", (c) => c.json({ data: (deps.scheduler?.list() ?? []).map((j) => ({ ...j, waiting: j.running ? jobWaiting(j.name) : null })) }));
  // operate; admin for a job that deletes data (security.ts jobScope).
  app.post("/:name/run", requireScope((c) => deps.jobScopes?.get(c.req.param("name")!) ?? "operate"), async (c) => {
    if (!deps.scheduler) return c.json({ error: "no scheduler in this process" }, 404);
    const r = await withActor(apiActor(c), () => deps.scheduler!.trigger(c.req.param("name")));
    if (r === "unknown") return c.json({ error: "unknown job", job: c.req.param("name") }, 404);
    if (r === "busy") return c.json({ status: "busy", message: "the job is running; it does not overlap itself" }, 409);
    // Market hours gate cron ticks only: a manual run starts whatever the market's phase, and says so.
    const job = deps.scheduler.list().find((j) => j.name === c.req.param("name"));
    const gated = job?.market
      ? { marketPhase: job.marketPhase, note: `manual runs ignore market hours (${job.market} is ${job.marketPhase})` }
      : job?.markets
        ? { markets: job.markets, note: `manual runs ignore market hours and read every symbol (${job.markets.map((m) => `${m.market} is ${m.phase}`).join(", ")})` }
        : {};
    return c.json({ status: "started", ...gated }, 202);
  });
  return app;
}

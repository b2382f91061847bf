// The reads bench's load generator, in its own process (a Bun child of the bench, apart from
// both servers): autocannon against one server for a bounded
// time, each request's path drawn at random from the list given. Prints one JSON line.
//   bun scripts/bench/lib/reads-load.ts '{"url","paths","connections","seconds"}'
// @ts-expect-error autocannon ships no types (@types/autocannon is not a dependency)
import autocannon from "autocannon";

type Args = { url: string; paths: string[]; connections: number; seconds: number };
const args = JSON.parse(process.argv[2] ?? "{}") as Args;
const { paths } = args;

const result = await autocannon({
  url: args.url,
  connections: args.connections,
  duration: args.seconds,
  // A random symbol each request: setupRequest runs before every request of the connection.
  requests: [{ setupRequest: (req: Record<string, unknown>) => ({ ...req, path: paths[Math.floor(Math.random() * paths.length)] }) }],
});
console.log(
  JSON.stringify({
    requests: result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  }),
);

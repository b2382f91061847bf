// Settings for the property-based and fuzz tests (fast-check), named test/fuzz-*.test.ts.
// In `npm test` / `bun test` they run a bounded number of cases from a fixed seed, so a failure
// reproduces; `npm run fuzz` (TICKSYNC_FUZZ=long) runs many more cases from a fresh seed and
// prints the seed, so whatever it finds can be replayed with TICKSYNC_FUZZ_SEED.
import type { Parameters } from "fast-check";

const LONG = process.env.TICKSYNC_FUZZ === "long";
const SEED_ENV = process.env.TICKSYNC_FUZZ_SEED;
/** The seed of this run: fixed in the test suite, fresh (and printed) in a long run. */
export const FUZZ_SEED = SEED_ENV !== undefined && SEED_ENV !== "" ? Number(SEED_ENV) : LONG ? (Date.now() ^ (process.pid << 8)) | 0 : 20261206;
if (LONG) console.log(`fuzz: seed ${FUZZ_SEED} (replay with TICKSYNC_FUZZ_SEED=${FUZZ_SEED})`);

/** Timeout (ms) for a fuzz test: the long run is bounded by its case count, not the clock. */
export const FUZZ_TIMEOUT_MS = LONG ? 3_600_000 : 60_000;

/**
 * fast-check parameters for one property: `runs` cases in the suite (keep the suite fast),
 * `longRuns` (default 100× runs) under `npm run fuzz`.
 */
export function fuzzParams<T>(runs: number, longRuns = runs * 100): Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: LONG ? longRuns : runs, verbose: 1 };
}

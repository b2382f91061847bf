// The setup every provider test file shares: the local provider servers for the file, a fresh
// migrated SQLite store for each test (provider limiters reset), and a config of given sources
// relative to the file's temp dir.
import { afterAll, beforeAll, beforeEach } from "bun:test";
import { join } from "node:path";
import { parseConfig, type LoadedConfig } from "../src/config/load.ts";
import { resetSharedLimiters } from "../src/sources/provider.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { startFakeProviders, type FakeProviders, type FakeProvidersOptions } from "./fakes/providers.ts";
import { tempDir } from "./helpers.ts";

export type ProviderTestEnv = { readonly dir: string; fake: FakeProviders; store: Store; storePath: string };
/** A local provider server a test file starts once and resets before each test. */
type FakeServer = { reset(): void; stop(): unknown };
export type FakeServerTestEnv<F> = { readonly dir: string; fake: F; store: Store; storePath: string };

/**
 * Registers the hooks; `bind` is called with the env once the servers run and again with each
 * test's new store, so a file keeps its own `fake` and `store` variables. Returns the temp dir.
 */
export function useProviderTestEnv(prefix: string, bind: (env: ProviderTestEnv) => void, opts: FakeProvidersOptions = {}): string {
  return useFakeServerTestEnv(prefix, () => startFakeProviders(opts), bind);
}

/** The same for any local provider server (Binance's): started once, reset with each test's new store. */
export function useFakeServerTestEnv<F extends FakeServer>(prefix: string, start: () => Promise<F>, bind: (env: FakeServerTestEnv<F>) => void): string {
  const env = { dir: tempDir(prefix) } as FakeServerTestEnv<F>;
  let n = 0;
  beforeAll(async () => {
    env.fake = await start();
    bind(env);
  });
  afterAll(async () => {
    await env.fake.stop();
  });
  beforeEach(async () => {
    env.fake.reset();
    resetSharedLimiters();
    env.storePath = join(env.dir, `store-${++n}.db`);
    env.store = sqliteStore(env.storePath);
    await env.store.migrate();
    bind(env);
  });
  return env.dir;
}

/** A loaded config of just these sources, relative to `dir`. */
export const loadedSources = (dir: string, sources: Record<string, unknown>): LoadedConfig => ({ config: parseConfig({ sources }), file: null, baseDir: dir });

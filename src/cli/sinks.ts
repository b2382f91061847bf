// The sinks a command works on: those named by --sink (a name, or a type when exactly one sink
// has it), or every sink in the config.
import type { LoadedConfig } from "../config/load.ts";
import { createSink, type Sink } from "../sinks/registry.ts";
import { UsageError } from "./command.ts";

export function pickSinks(loaded: LoadedConfig, names: string[], signal?: AbortSignal): Sink[] {
  const all = loaded.config.sinks;
  if (Object.keys(all).length === 0) throw new UsageError("no sinks in the config: add a [sinks.<name>] section (see docs/pocketbase.md)");
  const chosen = names.length ? names : Object.keys(all);
  return chosen.map((n) => {
    if (all[n]) return createSink(n, all[n], { signal });
    const ofType = Object.entries(all).filter(([, c]) => c.type === n);
    if (ofType.length === 1) return createSink(ofType[0]![0], ofType[0]![1], { signal });
    if (ofType.length > 1) throw new UsageError(`--sink ${n}: ${ofType.length} sinks have type ${n} (${ofType.map(([k]) => k).join(", ")}); name one`);
    throw new UsageError(`--sink ${n}: no such sink (defined: ${Object.keys(all).join(", ")})`);
  });
}

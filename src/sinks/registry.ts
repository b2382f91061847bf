// Sinks by type. Adding one is a file in sinks/ and a line here, as with sources.
import * as v from "valibot";
import { pocketbaseSink, pocketbaseSinkConfigSchema } from "./pocketbase.ts";

export const sinkConfigSchema = v.variant("type", [pocketbaseSinkConfigSchema], 'expected a sink with type = "pocketbase"');
export type SinkConfig = v.InferOutput<typeof sinkConfigSchema>;

export function createSink(name: string, cfg: SinkConfig, opts: { signal?: AbortSignal } = {}) {
  switch (cfg.type) {
    case "pocketbase":
      return pocketbaseSink(name, cfg, opts);
  }
}
export type Sink = ReturnType<typeof createSink>;

// Sinks by type, built from their descriptors: adding one is a folder in sinks/ and a line in SINKS.
import * as v from "valibot";
import { findDescriptor } from "../lib/descriptor.ts";
import { pocketbaseSinkDescriptor } from "./pocketbase/index.ts";

/** Every sink, in the order help and docs list them. */
export const SINKS = [pocketbaseSinkDescriptor] as const;

type SinkDescriptor = (typeof SINKS)[number];
type SchemasOf<T extends readonly { schema: unknown }[]> = { -readonly [K in keyof T]: T[K]["schema"] };
type SinkSchemas = SchemasOf<typeof SINKS>;

export const sinkConfigSchema = v.variant(
  "type",
  SINKS.map((d) => d.schema) as unknown as SinkSchemas,
  `expected a sink with type = ${SINKS.map((d) => `"${d.type}"`).join(" or ")}`,
);
export type SinkConfig = v.InferOutput<typeof sinkConfigSchema>;
export type Sink = ReturnType<SinkDescriptor["create"]>;

export function createSink(name: string, cfg: SinkConfig, opts: { signal?: AbortSignal } = {}): Sink {
  const d = findDescriptor(SINKS, cfg.type);
  if (!d) throw new Error(`no sink of type ${cfg.type}`);
  return d.create(name, cfg as Parameters<SinkDescriptor["create"]>[1], opts);
}

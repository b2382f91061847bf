// What every pluggable component (source, store, sink, job kind, CLI command) exports about
// itself. Registries are lists of descriptors; config unions, help text, the JSON Schema and
// docs/config.md are derived from them (docs/architecture.md, "Every component describes itself").
import type * as v from "valibot";

export interface Descriptor<TSchema extends v.GenericSchema = v.GenericSchema, TFactory = unknown> {
  /** The config `type` (sources, sinks), URL scheme (stores), job `kind` or command name. */
  readonly type: string;
  /** One line for help text and docs. */
  readonly summary: string;
  /** Its config (or options) schema; every field carries a `v.description`. */
  readonly schema: TSchema;
  /** Builds the component from its parsed config. */
  readonly create: TFactory;
}

/** The `type`s of a list of descriptors, in registry order. */
export const typesOf = (ds: readonly { type: string }[]): string[] => ds.map((d) => d.type);

/** A descriptor by type, or undefined. */
export function findDescriptor<D extends { type: string }>(ds: readonly D[], type: string): D | undefined {
  return ds.find((d) => d.type === type);
}

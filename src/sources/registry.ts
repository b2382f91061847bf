// The source registry: every source type describes itself (schema, factory, capabilities) beside
// its code; this list joins them. The config union, the type list, createSource and the set of
// providers gapfill may use are derived from it, so a new source is one file plus one line here.
import * as v from "valibot";
import { findDescriptor, typesOf } from "../lib/descriptor.ts";
import { csvDescriptor } from "./csv.ts";
import { sqliteDescriptor } from "./sqlite.ts";
import { postgresDescriptor } from "./postgres.ts";
import { stooqDescriptor } from "./stooq.ts";
import { yahooDescriptor } from "./yahoo.ts";
import { polygonDescriptor } from "./polygon.ts";
import { alphaVantageDescriptor } from "./alphavantage.ts";
import { replayDescriptor } from "./replay.ts";
import { binanceDescriptor } from "./binance.ts";
import type { Source, SourceContext, SourceDescriptor, SourceFactory } from "./types.ts";

/** Every source type, in the order help, errors and docs list them. */
export const SOURCES = [csvDescriptor, sqliteDescriptor, postgresDescriptor, stooqDescriptor, yahooDescriptor, polygonDescriptor, alphaVantageDescriptor, binanceDescriptor, replayDescriptor] as const;

export const SOURCE_TYPES = typesOf(SOURCES);

/** Source types that are HTTP market-data providers: the ones gapfill may ask for missing sessions. */
export const PROVIDER_SOURCE_TYPES = typesOf(SOURCES.filter((d) => d.provider));

type SchemasOf<T> = { -readonly [K in keyof T]: T[K] extends SourceDescriptor<infer S> ? S : never };

export const sourceConfigSchema = v.variant(
  "type",
  SOURCES.map((d) => d.schema) as SchemasOf<typeof SOURCES>,
  (issue) => `expected a source type of ${SOURCE_TYPES.join(", ")}, got ${JSON.stringify(issue.input)}`,
);
export type SourceConfig = v.InferOutput<typeof sourceConfigSchema>;

/** One line per source type (`  csv           CSV files…`), for help text. */
export function sourceTypesHelp(indent = "  "): string {
  const width = Math.max(...SOURCE_TYPES.map((t) => t.length)) + 2;
  return SOURCES.map((d) => `${indent}${d.type.padEnd(width)}${d.summary}`).join("\n");
}

export function createSource(name: string, cfg: SourceConfig, baseDir?: string, ctx: SourceContext = {}): Source {
  const d = findDescriptor(SOURCES, cfg.type);
  if (!d) throw new Error(`unknown source type ${cfg.type}`);
  // The config was validated by this descriptor's own schema (the variant picked it by type).
  const source = (d.create as SourceFactory<SourceConfig>)(name, cfg, baseDir, ctx);
  return d.rebuildInWorker ? { ...source, spec: { name, config: cfg, baseDir } } : source;
}

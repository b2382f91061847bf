// The source registry: each source type declares its config schema beside its code; this file
// joins them so config is validated before anything starts. A new source is one line here.
import * as v from "valibot";
import { csvSource, csvSourceSchema } from "./csv.ts";
import { sqliteSource, sqliteSourceSchema } from "./sqlite.ts";
import { stooqSource, stooqSourceSchema } from "./stooq.ts";
import { yahooSource, yahooSourceSchema } from "./yahoo.ts";
import { polygonSource, polygonSourceSchema } from "./polygon.ts";
import { alphaVantageSource, alphaVantageSourceSchema } from "./alphavantage.ts";
import { postgresSource, postgresSourceSchema } from "./postgres.ts";
import { replaySource, replaySourceSchema } from "./replay.ts";
import type { Source, SourceContext } from "./types.ts";

export const SOURCE_TYPES = ["csv", "sqlite", "postgres", "stooq", "yahoo", "polygon", "alphavantage", "replay"] as const;

export const sourceConfigSchema = v.variant(
  "type",
  [csvSourceSchema, sqliteSourceSchema, postgresSourceSchema, stooqSourceSchema, yahooSourceSchema, polygonSourceSchema, alphaVantageSourceSchema, replaySourceSchema],
  (issue) => `expected a source type of ${SOURCE_TYPES.join(", ")}, got ${JSON.stringify(issue.input)}`,
);
export type SourceConfig = v.InferOutput<typeof sourceConfigSchema>;

export function createSource(name: string, cfg: SourceConfig, baseDir?: string, ctx: SourceContext = {}): Source {
  switch (cfg.type) {
    // Local readers are CPU-bound: the pipeline may rebuild them in a worker from this spec.
    case "csv":
      return { ...csvSource(name, cfg, baseDir), spec: { name, config: cfg, baseDir } };
    case "sqlite":
      return { ...sqliteSource(name, cfg, baseDir), spec: { name, config: cfg, baseDir } };
    case "postgres":
      return postgresSource(name, cfg);
    case "stooq":
      return stooqSource(name, cfg, ctx);
    case "yahoo":
      return yahooSource(name, cfg, ctx);
    case "polygon":
      return polygonSource(name, cfg, ctx);
    case "alphavantage":
      return alphaVantageSource(name, cfg, ctx);
    case "replay":
      return replaySource(name, cfg, baseDir, ctx);
  }
}

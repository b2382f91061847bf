// The source registry: each source type declares its config schema beside its code; this file
// joins them so config is validated before anything starts. A new source is one line here.
import * as v from "valibot";
import { csvSource, csvSourceSchema } from "./csv.ts";
import { sqliteSource, sqliteSourceSchema } from "./sqlite.ts";
import type { Source } from "./types.ts";

export const sourceConfigSchema = v.variant("type", [csvSourceSchema, sqliteSourceSchema], (issue) => `expected a source type of csv or sqlite, got ${JSON.stringify(issue.input)}`);
export type SourceConfig = v.InferOutput<typeof sourceConfigSchema>;

export function createSource(name: string, cfg: SourceConfig, baseDir?: string): Source {
  switch (cfg.type) {
    case "csv":
      return csvSource(name, cfg, baseDir);
    case "sqlite":
      return sqliteSource(name, cfg, baseDir);
  }
}

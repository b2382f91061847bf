// docs/config.md is generated from the config schema (scripts/gen-config-docs.ts), and every
// config field carries a description: the reference and `ticksync config schema` say what it is.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { CONFIG_DOCS_PATH, missingDescriptions, renderConfigDocs } from "../scripts/gen-config-docs.ts";
import { configJsonSchema } from "../src/config/load.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

describe("config reference", () => {
  test("docs/config.md is up to date with the schema (else run: bun scripts/gen-config-docs.ts)", () => {
    const stale = readFileSync(CONFIG_DOCS_PATH, "utf8") !== renderConfigDocs();
    expect(stale ? "docs/config.md is stale: run bun scripts/gen-config-docs.ts" : "up to date").toBe("up to date");
  });

  test("every config field has a description (the paths listed lack one)", () => {
    expect(missingDescriptions()).toEqual([]);
  });

  test("the JSON Schema carries the descriptions", () => {
    const schema = configJsonSchema() as { properties: Record<string, { properties?: Record<string, { description?: string }> }> };
    expect(schema.properties.server!.properties!.port!.description).toBeString();
  });
});

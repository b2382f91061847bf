// The config's JSON Schema as editors use it: every property described (the descriptions of
// docs/config.md), `config schema --out` writes it, and Taplo (the engine of Even Better TOML)
// accepts the demo config against it and rejects a misspelt key or a wrong type.
import { describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { configJsonSchema } from "../src/config/load.ts";
import { cli, ROOT, tempDir, writeFile } from "./helpers.ts";
import { taploCheck } from "./taplo.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

type Node = { [key: string]: unknown; properties?: Record<string, Node>; items?: Node; additionalProperties?: Node | boolean; oneOf?: Node[]; anyOf?: Node[]; description?: string };

/** Paths of properties without a description, everywhere in the schema (variants, lists and maps included). */
function undescribed(node: Node, path = ""): string[] {
  const out: string[] = [];
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    if (!child.description) out.push(`${path}.${name}`);
    out.push(...undescribed(child, `${path}.${name}`));
  }
  if (node.items) out.push(...undescribed(node.items, `${path}[]`));
  if (typeof node.additionalProperties === "object") out.push(...undescribed(node.additionalProperties, `${path}.<name>`));
  for (const [i, option] of [...(node.oneOf ?? []), ...(node.anyOf ?? [])].entries()) out.push(...undescribed(option, `${path}{${i}}`));
  return out;
}

const dir = tempDir("ticksync-config-schema-");
const schemaFile = join(dir, "ticksync.schema.json");

describe("config JSON Schema", () => {
  const schema = configJsonSchema() as Node;

  test("every property at every depth has a description", () => {
    expect(undescribed(schema)).toEqual([]);
  });

  test("the walk finds a property without one (it can fail)", () => {
    const planted: Node = { properties: { sources: { description: "d", additionalProperties: { oneOf: [{ properties: { type: { description: "t" }, path: {} } }] } } } };
    expect(undescribed(planted)).toEqual([".sources.<name>{0}.path"]);
  });

  test("defaults are carried where there is one", () => {
    const server = schema.properties!.server!.properties!;
    expect(server.port!.default).toBe(8080);
    expect(server.host!.default).toBe("127.0.0.1");
    expect(schema.properties!.store!.properties!.url!.default).toBe("sqlite:./.data/ticksync.db");
  });

  test("config schema --out writes what it prints", async () => {
    const printed = await cli(["config", "schema"]);
    const written = await cli(["config", "schema", "--out", schemaFile]);
    expect([printed.code, written.code, written.stdout]).toEqual([0, 0, ""]);
    expect(JSON.parse(readFileSync(schemaFile, "utf8"))).toEqual(JSON.parse(printed.stdout));
    expect(JSON.parse(printed.stdout).properties.server.properties.port.description).toBeString();
  });
});

describe("taplo checks configs against the schema", () => {
  test("the demo config passes (by --schema, and by its #:schema line)", async () => {
    await cli(["config", "schema", "--out", schemaFile]);
    const demo = join(dir, "demo.toml");
    copyFileSync(join(ROOT, "demo", "ticksync.toml"), demo);
    expect(await taploCheck(demo, schemaFile)).toMatchObject({ code: 0 });
    const directed = writeFile(join(dir, "directed.toml"), `#:schema ./ticksync.schema.json\n${readFileSync(demo, "utf8")}`);
    expect(await taploCheck(directed)).toMatchObject({ code: 0 });
  });

  test("a misspelt key is rejected, naming it", async () => {
    await cli(["config", "schema", "--out", schemaFile]);
    const bad = writeFile(join(dir, "misspelt.toml"), '#:schema ./ticksync.schema.json\n[server]\nprot = 8080\n');
    const r = await taploCheck(bad);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain("'prot' was unexpected");
  });

  test("a wrong type is rejected, and a misspelt source field inside a variant too", async () => {
    await cli(["config", "schema", "--out", schemaFile]);
    const wrongType = writeFile(join(dir, "wrong-type.toml"), '[server]\nport = "eighty"\n');
    const r = await taploCheck(wrongType, schemaFile);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('"eighty" is not of type "integer"');
    const variant = writeFile(join(dir, "variant.toml"), '[sources.demo]\ntype = "csv"\npaht = "data"\n');
    expect((await taploCheck(variant, schemaFile)).code).not.toBe(0);
  });
});

// The commands' descriptors agree with their help: every flag a help text lists under "Flags:"
// is an option the command parses, and every option carries a description.
import { expect, test } from "bun:test";
import * as v from "valibot";
import { COMMANDS, findCommand, HELP } from "./registry.ts";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();

for (const command of COMMANDS)
  test(`${command.type}: options described, listed flags parsed`, () => {
    const entries = command.schema.entries;
    for (const [name, option] of Object.entries(entries)) expect({ name, description: v.getDescription(option) }).toEqual({ name, description: expect.any(String) });
    for (const text of Object.values(command.help)) {
      const flags = text.split("\nFlags:\n")[1]?.split("\n\n")[0] ?? "";
      for (const [, flag] of flags.matchAll(/^ {2}--([a-z-]+)/gm)) expect(Object.keys(entries)).toContain(flag!);
    }
  });

test("every command word finds its command, and has a help text or subcommands with one", () => {
  for (const command of COMMANDS) {
    expect(findCommand(command.type)).toBe(command);
    for (const alias of command.aliases ?? []) expect(findCommand(alias)).toBe(command);
    expect(Object.keys(command.help).every((name) => name === command.type || name.startsWith(`${command.type} `))).toBe(true);
  }
  expect(HELP.main).toContain("Commands:\n  serve ");
});

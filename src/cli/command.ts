// What a CLI command is (a descriptor: name, summary, options schema, help, run) and how its
// options are read: the parseArgs options are derived from the valibot schema.
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import * as v from "valibot";
import type { Descriptor } from "../lib/descriptor.ts";

/** A bad command line: the dispatcher prints it with a pointer to the command's help (exit 2). */
export class UsageError extends Error {}

type OptionSchema = v.GenericSchema<unknown, string | boolean | string[] | undefined>;
export type OptionsSchema = v.ObjectSchema<Record<string, OptionSchema>, undefined>;

/** A flag with a value (`--store URL`). */
export const text = (description: string) => v.pipe(v.optional(v.string()), v.description(description));
/** A flag with a value that may be repeated (`--source A --source B`). */
export const texts = (description: string) => v.pipe(v.optional(v.array(v.string())), v.description(description));
/** A flag without a value (`--json`). */
export const flag = (description: string) => v.pipe(v.optional(v.boolean()), v.description(description));

/** Options every command takes. */
const COMMON = {
  help: flag("print the command's help"),
  config: text("JSON or TOML config file (default: $TICKSYNC_CONFIG, else ./ticksync.toml or ./ticksync.json)"),
};
const SHORT: Readonly<Record<string, string>> = { help: "h", config: "c" };

/** A command's options schema: its own options and the common ones (--help, --config). */
export const options = <E extends Record<string, OptionSchema>>(entries: E) => v.object({ ...entries, ...COMMON });

export type Options<S extends OptionsSchema> = v.InferOutput<S>;

/** The parseArgs options of a schema: a boolean, a string, or a repeatable string per option. */
function parseArgsOptions(schema: OptionsSchema): ParseArgsOptionsConfig {
  const config: ParseArgsOptionsConfig = {};
  for (const [name, option] of Object.entries(schema.entries)) {
    const inner = (option as unknown as { wrapped: { type: string } }).wrapped.type;
    config[name] = { type: inner === "boolean" ? "boolean" : "string", ...(inner === "array" ? { multiple: true } : {}), ...(SHORT[name] ? { short: SHORT[name] } : {}) };
  }
  return config;
}

/** Reads argv by the command's options schema; an unknown flag or a missing value is a UsageError. */
export function parseOptions<S extends OptionsSchema>(schema: S, argv: string[]): { values: Options<S>; positionals: string[] } {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: parseArgsOptions(schema), allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return { values: v.parse(schema, { ...parsed.values }), positionals: parsed.positionals };
}

export interface Command<S extends OptionsSchema = OptionsSchema> extends Omit<Descriptor<S>, "create"> {
  /** The command word(s) that run it besides its type (`--version`). */
  readonly aliases?: readonly string[];
  /** How the main help lists it: a name (the command, or command and subcommand) and its text. */
  readonly listed: readonly (readonly [name: string, text: string])[];
  /** Its --help text, by the name the dispatcher points a usage error to (`config check`). */
  readonly help: Readonly<Record<string, string>>;
  /** Runs it with the arguments after the command word; returns the exit code. */
  run(argv: string[]): Promise<number> | number;
}

/** A command; its one-line summary is the text the main help lists it with. */
export const defineCommand = <S extends OptionsSchema>(c: Omit<Command<S>, "summary">): Command<S> => ({ ...c, summary: c.listed[0]![1].replace(/\s*\n\s*/g, " ") });

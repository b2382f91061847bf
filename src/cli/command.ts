// What a CLI command is (a descriptor: name, summary, options schema, help, run), how its options
// are read (the parseArgs options are derived from the valibot schema) and how its --help text
// is laid out (the "Flags:" section is derived from the same schema).
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import * as v from "valibot";
import type { Descriptor } from "../lib/descriptor.ts";
import { EXIT } from "./exit.ts";
import { out } from "./io.ts";
import { errorText } from "../lib/errors.ts";

/** A bad command line: the dispatcher prints it with a pointer to the command's help (exit 2). */
export class UsageError extends Error {}

type OptionSchema = v.GenericSchema<unknown, string | boolean | string[] | undefined>;
export type OptionsSchema = v.ObjectSchema<Record<string, OptionSchema>, undefined>;

/** What the help shows of an option besides its description. */
interface OptionHelp {
  /** The word its value is shown by (`--out DIR`); none for a flag without a value. */
  readonly value?: string;
  /** Left out of the "Flags:" section (another option's text, or none, speaks of it). */
  readonly unlisted?: boolean;
}

// An option's description is its text in the "Flags:" section; a "\n" in it starts a
// continuation line, indented to the descriptions' column.
/** A flag with a value (`--store URL`). */
export const text = (description: string, value: string) => v.pipe(v.optional(v.string()), v.description(description), v.metadata({ value }));
/** A flag with a value that may be repeated (`--source A --source B`). */
export const texts = (description: string, value: string) => v.pipe(v.optional(v.array(v.string())), v.description(description), v.metadata({ value }));
/** A flag without a value (`--json`). */
export const flag = (description: string) => v.pipe(v.optional(v.boolean()), v.description(description));
/** An option the command parses that its "Flags:" section does not list. */
export const unlisted = <S extends OptionSchema>(option: S) => v.pipe(option, v.metadata({ unlisted: true }));

/** Options every command takes; the help's Config footer speaks of --config. */
const COMMON = {
  help: flag("print the command's help"),
  config: text("JSON or TOML config file (default: $TICKSYNC_CONFIG, else ./ticksync.toml or ./ticksync.json)", "FILE"),
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
    throw new UsageError(errorText(e));
  }
  return { values: v.parse(schema, { ...parsed.values }), positionals: parsed.positionals };
}

/** The "Flags:" section of a schema's own listed options, or "" when it has none. */
function flagsSection(schema: OptionsSchema, gap: number): string {
  const rows = Object.entries(schema.entries).flatMap(([name, option]) => {
    const help = v.getMetadata(option) as OptionHelp;
    if (name in COMMON || help.unlisted) return [];
    return [{ flag: help.value ? `--${name} ${help.value}` : `--${name}`, description: v.getDescription(option) ?? "" }];
  });
  if (rows.length === 0) return "";
  const column = Math.max(...rows.map((r) => r.flag.length)) + gap;
  const indent = `\n${" ".repeat(2 + column)}`;
  return `\n\nFlags:\n${rows.map((r) => `  ${r.flag.padEnd(column)}${r.description.split("\n").join(indent)}`).join("\n")}`;
}

/** The parts of a --help text written beside the command; its "Flags:" come from the schema. */
export interface HelpText {
  /** The usage line(s), `Usage: ticksync …`. */
  readonly usage: string;
  /** What the command does (paragraphs). */
  readonly about?: string;
  /** The texts after the flags (the Config and Exit codes sections). */
  readonly footers?: readonly string[];
  /** Spaces between the widest flag and the descriptions (default 2; some helps keep the wider column they always had). */
  readonly flagGap?: number;
}

/** A --help text: usage, what it does, the schema's flags, then the footers. */
export function helpText(schema: OptionsSchema, h: HelpText): string {
  const about = h.about === undefined ? "" : `\n\n${h.about}`;
  const footers = (h.footers ?? []).map((f) => `\n\n${f}`).join("");
  return `${h.usage}${about}${flagsSection(schema, h.flagGap ?? 2)}${footers}\n`;
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

/** A command's one-line summary is the text the main help lists it with. */
const summary = (listed: Command["listed"]) => listed[0]![1].replace(/\s*\n\s*/g, " ");

/** A command that reads its own arguments (subcommands, or none) and has its help texts by name. */
export const defineRawCommand = <S extends OptionsSchema>(c: Omit<Command<S>, "summary">): Command<S> => ({ ...c, summary: summary(c.listed) });

/** A command with one help text: its options are parsed, --help prints the help, else it runs. */
export function defineCommand<S extends OptionsSchema>(
  c: Pick<Command<S>, "type" | "aliases" | "listed" | "schema"> & HelpText & { run(values: Options<S>): Promise<number> | number },
): Command<S> {
  const help = helpText(c.schema, c);
  return {
    type: c.type,
    ...(c.aliases ? { aliases: c.aliases } : {}),
    summary: summary(c.listed),
    listed: c.listed,
    schema: c.schema,
    help: { [c.type]: help },
    run(argv) {
      const { values } = parseOptions(c.schema, argv);
      if ((values as { help?: boolean }).help) return out(help), EXIT.ok;
      return c.run(values);
    },
  };
}

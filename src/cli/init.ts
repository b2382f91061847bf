// `ticksync init`: writes a commented starter config (src/config/starter.ts) and the config's JSON
// Schema beside it. On a terminal it asks for the store, the sources and the sinks (numbered
// choices, Enter takes the default); otherwise (stdin not a terminal, or --yes) it takes the
// flags and the defaults and never waits for input.
import { createInterface } from "node:readline";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import * as v from "valibot";
import { configJsonSchema } from "../config/load.ts";
import { storeConfigSchema } from "../config/schema.ts";
import { renderStarter, type StarterChoice, type StarterPlan } from "../config/starter.ts";
import { SINKS } from "../sinks/registry.ts";
import { SOURCES, sourceTypesHelp } from "../sources/registry.ts";
import { STORES } from "../stores/registry.ts";
import { defineCommand, flag, options, text, texts, UsageError, type Options } from "./command.ts";
import { EXIT } from "./exit.ts";
import { err, out } from "./io.ts";

const schema = options({
  out: text("the config file to write (default ./ticksync.toml); the schema goes beside it", "FILE"),
  store: text("the store's URL (default: $TICKSYNC_STORE__URL, else the embedded SQLite file)", "URL"),
  source: texts("a source to add, by name and type (repeatable): --source quotes=polygon", "NAME=TYPE"),
  sink: texts("a sink to add, by name and type (repeatable): --sink app=pocketbase", "NAME=TYPE"),
  token: flag("generate an admin API token for the server (written to the file, readable by you only)"),
  force: flag("overwrite the config file if it exists"),
  yes: flag("ask nothing on a terminal either: the flags and the defaults"),
});

/** Names init gives entries: also valid in a TICKSYNC_<SECTION>__<NAME>__<FIELD> variable. */
const ENTRY_NAME = /^[A-Za-z][A-Za-z0-9_]{0,50}$/;
/** Answers a question may get wrong before init gives up (input that keeps failing is no person). */
const TRIES = 3;
/** What a terminal run offers when Enter is pressed, and what a run without one writes. */
const DEFAULT_SOURCES: readonly StarterChoice[] = [{ name: SOURCES[0].type, type: SOURCES[0].type }];

type Kind = { type: string; summary: string };

function parseChoice(what: "source" | "sink", spec: string, kinds: readonly Kind[]): StarterChoice {
  const m = /^([^=]+)=(.+)$/.exec(spec);
  if (!m || !ENTRY_NAME.test(m[1]!)) throw new UsageError(`--${what} expects NAME=TYPE with a name of letters, digits and _ starting with a letter, got ${JSON.stringify(spec)}`);
  if (!kinds.some((k) => k.type === m[2])) throw new UsageError(`--${what} ${spec}: unknown type ${JSON.stringify(m[2])} (expected ${kinds.map((k) => k.type).join(", ")})`);
  return { name: m[1]!, type: m[2]! };
}

function storeUrlProblem(url: string): string | undefined {
  const r = v.safeParse(storeConfigSchema, { url });
  return r.success ? undefined : r.issues[0].message;
}

function checkedStore(url: string, origin: string): string {
  const problem = storeUrlProblem(url);
  if (problem) throw new UsageError(`${origin}: ${problem}`);
  return url;
}

/** Asks one question at a time; the end of the input answers every question with its default. */
export type Prompter = { ask(question: string, fallback: string): Promise<string>; say(text: string): void; close(): void };

export function createPrompter(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Prompter {
  const rl = createInterface({ input, terminal: false });
  // Lines are read through the iterator, which keeps those typed ahead of their question.
  const lines = rl[Symbol.asyncIterator]();
  return {
    async ask(question, fallback) {
      output.write(`${question}${fallback ? ` [${fallback}]` : ""}: `);
      const next = await lines.next();
      const answer = next.done ? "" : String(next.value).trim();
      return answer === "" ? fallback : answer;
    },
    say: (t) => void output.write(`${t}\n`),
    close: () => rl.close(),
  };
}

/** Asks until `accept` returns a value (or TRIES answers failed: a usage error). */
async function askUntil<T>(p: Prompter, question: string, fallback: string, accept: (answer: string) => T | string): Promise<T> {
  for (let i = 0; i < TRIES; i++) {
    const r = accept(await p.ask(question, fallback));
    if (typeof r !== "string") return r;
    p.say(`  ${r}`);
  }
  throw new UsageError(`no usable answer to "${question}" after ${TRIES} tries`);
}

const menu = (kinds: readonly Kind[]) => {
  const width = Math.max(...kinds.map((k) => k.type.length)) + 2;
  return kinds.map((k, i) => `  ${String(i + 1).padStart(2)}) ${k.type.padEnd(width)}${k.summary}`).join("\n");
};

/** Numbers ("1 3", "1,3") into kinds; "0" or "none" is none. */
function pickNumbers(answer: string, kinds: readonly Kind[]): Kind[] | string {
  if (/^(0|none|-)$/i.test(answer)) return [];
  const picked = answer.split(/[\s,]+/).filter(Boolean).map(Number);
  if (picked.some((n) => !Number.isInteger(n) || n < 1 || n > kinds.length)) return `expected numbers from 1 to ${kinds.length}, or 0 for none`;
  return picked.map((n) => kinds[n - 1]!);
}

async function askStore(p: Prompter): Promise<string | undefined> {
  p.say(`Store (where bars, runs and checkpoints are kept):\n${menu(STORES)}`);
  const store = await askUntil(p, "Store", "1", (a) => {
    const picked = pickNumbers(a, STORES);
    return typeof picked !== "string" && picked.length !== 1 ? "expected one number" : picked;
  });
  if (store[0] === STORES[0]) return undefined;
  const form = STORES.find((d) => d.type === store[0]!.type)!.urlForm;
  const answer = await askUntil(p, `${store[0]!.type} URL (${form})`, "", (a) => (a === "" ? "a URL is needed" : (storeUrlProblem(a) ?? { url: a })));
  return answer.url;
}

async function askComponents(p: Prompter, what: "source" | "sink", kinds: readonly Kind[], fallback: readonly StarterChoice[], taken: Set<string>): Promise<StarterChoice[]> {
  const title = `${what[0]!.toUpperCase()}${what.slice(1)}s`;
  p.say(`${title} (numbers separated by spaces, 0 for none):\n${menu(kinds)}`);
  const defaults = fallback.map((c) => String(kinds.findIndex((k) => k.type === c.type) + 1)).join(" ") || "0";
  const picked = await askUntil(p, title, defaults, (a) => pickNumbers(a, kinds));
  const chosen: StarterChoice[] = [];
  for (const kind of picked) {
    let suggestion = kind.type;
    for (let i = 2; taken.has(suggestion); i++) suggestion = `${kind.type}${i}`;
    const name = await askUntil(p, `Name of the ${kind.type} ${what}`, suggestion, (a) =>
      !ENTRY_NAME.test(a) ? "expected letters, digits and _ starting with a letter" : taken.has(a) ? `${a} is taken` : { name: a },
    );
    taken.add(name.name);
    chosen.push({ name: name.name, type: kind.type });
  }
  return chosen;
}

type Given = { storeUrl?: string; storeFromEnv?: boolean; sources?: StarterChoice[]; sinks?: StarterChoice[]; token?: boolean };
type Answers = { storeUrl?: string; storeFromEnv?: boolean; sources: StarterChoice[]; sinks: StarterChoice[]; token: boolean };

/** What a terminal run settles: each part the flags left open is asked for. */
export async function askAnswers(p: Prompter, given: Given): Promise<Answers> {
  const fromStore = given.storeUrl === undefined ? { storeUrl: await askStore(p) } : { storeUrl: given.storeUrl, storeFromEnv: given.storeFromEnv };
  // Names are unique across sources and sinks, as with the flags.
  const taken = new Set([...(given.sources ?? []), ...(given.sinks ?? [])].map((c) => c.name));
  const sources = given.sources ?? (await askComponents(p, "source", SOURCES, DEFAULT_SOURCES, taken));
  const sinks = given.sinks ?? (await askComponents(p, "sink", SINKS, [], taken));
  const token = given.token ?? (await askUntil(p, "Generate an admin API token for the server? (y/n)", "n", (a) => (/^(y|yes)$/i.test(a) ? { yes: true } : /^(n|no)$/i.test(a) ? { yes: false } : "expected y or n"))).yes;
  return { ...fromStore, sources, sinks, token };
}

/** What the flags (and the environment, for the store) settle; undefined where nothing was given. */
function givenByFlags(values: Options<typeof schema>, env: Record<string, string | undefined>): Given {
  const given: Given = {};
  if (values.store !== undefined) given.storeUrl = checkedStore(values.store, "--store");
  else if (env.TICKSYNC_STORE__URL) Object.assign(given, { storeUrl: checkedStore(env.TICKSYNC_STORE__URL, "TICKSYNC_STORE__URL"), storeFromEnv: true });
  if (values.source) given.sources = values.source.map((s) => parseChoice("source", s, SOURCES));
  if (values.sink) given.sinks = values.sink.map((s) => parseChoice("sink", s, SINKS));
  const names = [...(given.sources ?? []), ...(given.sinks ?? [])].map((c) => c.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new UsageError(`the name ${dup} is given twice (sources and sinks need names of their own)`);
  if (values.token) given.token = true;
  return given;
}

/** A URL-safe random token, 256 bits. */
const generateToken = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");

function refuseOverwrite(file: string): number {
  err(`ticksync: ${file} exists: pass --force to overwrite it`);
  return EXIT.usage;
}

export type InitIo = { env: Record<string, string | undefined>; interactive: boolean; prompter?: () => Prompter };

/** Runs init; the streams and the environment are injected for tests. */
export async function runInit(values: Options<typeof schema>, io: InitIo): Promise<number> {
  const file = values.out ?? "ticksync.toml";
  if (extname(file).toLowerCase() !== ".toml") throw new UsageError(`--out ${file}: init writes TOML (a .toml file), the format that keeps its comments`);
  const given = givenByFlags(values, io.env);
  // Said before any question is asked (the write below refuses it again, atomically).
  if (!values.force && existsSync(file)) return refuseOverwrite(file);
  let answers: Answers;
  if (io.interactive && !values.yes) {
    const p = io.prompter ? io.prompter() : createPrompter(process.stdin, process.stdout);
    try {
      answers = await askAnswers(p, given);
    } finally {
      p.close();
    }
  } else answers = { ...given, sources: given.sources ?? [...DEFAULT_SOURCES], sinks: given.sinks ?? [], token: given.token ?? false };
  const schemaFile = join(dirname(file), "ticksync.schema.json");
  const plan: StarterPlan = { ...answers, token: answers.token ? generateToken() : undefined, schemaFile: `./${basename(schemaFile)}`, env: io.env };
  const starter = renderStarter(plan);
  mkdirSync(dirname(file), { recursive: true });
  try {
    // "wx": refused if the file exists, in the same call that creates it. Readable by its owner
    // only when it holds a token.
    writeFileSync(file, starter.text, { flag: values.force ? "w" : "wx", mode: plan.token ? 0o600 : 0o644 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return refuseOverwrite(file);
    throw e;
  }
  // A file replaced (--force) keeps its mode: one that now holds a token is narrowed.
  if (plan.token) chmodSync(file, 0o600);
  writeFileSync(schemaFile, JSON.stringify(configJsonSchema(), null, 2) + "\n");
  out(`wrote ${file} and its schema ${schemaFile}`);
  if (plan.token) out(`  an admin API token is in ${file} ([[server.token]] "admin"); the file is readable by you only`);
  for (const name of starter.variables) out(`  set ${name} in the service's environment${io.env[name] === undefined ? " (not set here)" : ""}`);
  out(`  check it: ticksync config check --config ${file}`);
  return EXIT.ok;
}

export const initCommand = defineCommand({
  type: "init",
  listed: [["init", "write a commented starter config (asks on a terminal, takes flags otherwise)"]],
  schema,
  usage: `Usage: ticksync init [--out FILE] [--store URL] [--source NAME=TYPE …] [--sink NAME=TYPE …]
                     [--token] [--force] [--yes]`,
  about: `Writes a starter config: TOML, each field with its description as a comment, its first line
"#:schema ./ticksync.schema.json" (written beside it, replaced every time) for completion and
checks in editors. On a terminal it asks for the store, the sources and the sinks the flags do
not give (Enter takes the default); without one it takes the flags and the defaults (the
embedded SQLite store, one csv source). A secret you hold is never written: a field that needs
one is a "\${NAME}" reference to an environment variable, read when the config is loaded (a
store URL with a password: \${TICKSYNC_STORE__URL}); init lists the variables to set. A token
made by --token is written, and the file is then readable by its owner only. Exit 0 when
written, 2 when the file exists (without --force) or a flag is wrong.`,
  footers: [`Source types:\n${sourceTypesHelp()}`, `Sink types:\n${SINKS.map((d) => `  ${d.type.padEnd(12)}${d.summary}`).join("\n")}`],
  run: (values) => runInit(values, { env: process.env, interactive: process.stdin.isTTY === true }),
});

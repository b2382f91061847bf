// `ticksync completion bash|zsh|fish`: the scripts, loaded into the real shells, complete the
// registry's commands, subcommands and each command's flags; a command added to the registry
// appears with no change to the completion code. fish and zsh cases skip with a warning where the
// shell is not installed (apt-get install fish zsh).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { bashScript, fishScript, zshScript } from "../src/cli/completion.ts";
import { defineCommand, flag, options, text, type Command } from "../src/cli/command.ts";
import { COMMANDS } from "../src/cli/registry.ts";
import { cli, tempDir, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-completion-");
const BASH = Bun.which("bash");
const ZSH = Bun.which("zsh");
const FISH = Bun.which("fish");
if (!ZSH) console.warn("completion: zsh cases skipped: zsh is not installed (apt-get install zsh)");
if (!FISH) console.warn("completion: fish cases skipped: fish is not installed (apt-get install fish)");

/** A command the registry does not have, to show a new one needs nothing of the completion code. */
const frobnicate = defineCommand({
  type: "frobnicate",
  listed: [["frobnicate", "a command added after the completion code was written"]],
  schema: options({ widgets: text("how many widgets", "N"), loud: flag("say it loudly") }),
  usage: "Usage: ticksync frobnicate [--widgets N] [--loud]",
  run: () => 0,
});

let n = 0;
const scriptFile = (text: string) => writeFile(join(dir, `script-${++n}`), text);

async function run(cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** What bash's completion function offers for the words typed so far (the last one being completed). */
async function bashComplete(script: string, typed: string[]): Promise<string[]> {
  const words = typed.map((w) => `'${w}'`).join(" ");
  const r = await run([BASH!, "-c", `source '${script}'; COMP_WORDS=(${words}); COMP_CWORD=${typed.length - 1}; COMP_LINE='${typed.join(" ")}'; COMP_POINT=\${#COMP_LINE}; _ticksync; printf '%s\\n' "\${COMPREPLY[@]}"`]);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  return r.stdout.split("\n").filter(Boolean).sort();
}

const flagsOf = (c: Command) => Object.keys(c.schema.entries).map((f) => `--${f}`).sort();
const doctor = COMMANDS.find((c) => c.type === "doctor")!;

describe.skipIf(!BASH)("bash", () => {
  test("`ticksync completion bash` registers _ticksync, which completes every command and a command's flags", async () => {
    const r = await cli(["completion", "bash"]);
    expect(r.code).toBe(0);
    const script = scriptFile(r.stdout);
    const registered = await run([BASH!, "-c", `source '${script}'; complete -p ticksync`]);
    expect(registered.stdout.trim()).toBe("complete -o default -F _ticksync ticksync");

    const commands = await bashComplete(script, ["ticksync", ""]);
    for (const c of COMMANDS) expect(commands).toContain(c.type);
    expect(commands).toContain("--version");
    expect(await bashComplete(script, ["ticksync", "ba"])).toEqual(["backfill", "backup"]);
    expect(await bashComplete(script, ["ticksync", "doctor", "--"])).toEqual(flagsOf(doctor));
    expect(await bashComplete(script, ["ticksync", "doctor", "--t"])).toEqual(["--timeout"]);
    // Subcommands, then the flags after them.
    expect(await bashComplete(script, ["ticksync", "config", ""])).toEqual(["check", "schema"]);
    expect(await bashComplete(script, ["ticksync", "config", "check", "--c"])).toEqual(["--config"]);
    // A flag's value: nothing of ours (bash falls back to file names).
    expect(await bashComplete(script, ["ticksync", "doctor", "--timeout", ""])).toEqual([]);
    expect(await bashComplete(script, ["ticksync", "nosuch", "--"])).toEqual([]);
  });

  test("a command added to the registry is completed with its flags", async () => {
    const script = scriptFile(bashScript([...COMMANDS, frobnicate]));
    expect(await bashComplete(script, ["ticksync", "frob"])).toEqual(["frobnicate"]);
    expect(await bashComplete(script, ["ticksync", "frobnicate", "--"])).toEqual(["--config", "--help", "--loud", "--widgets"]);
  });
});

describe.skipIf(!FISH)("fish", () => {
  const fishComplete = async (script: string, line: string) => {
    const r = await run([FISH!, "--no-config", "-c", `source '${script}'; complete -C '${line}'`]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    return r.stdout.split("\n").filter(Boolean).map((l) => l.split("\t")[0]!).sort();
  };

  test("`ticksync completion fish` completes commands, subcommands and flags", async () => {
    const r = await cli(["completion", "fish"]);
    expect(r.code).toBe(0);
    const script = scriptFile(r.stdout);
    expect(await fishComplete(script, "ticksync ba")).toEqual(["backfill", "backup"]);
    const all = await fishComplete(script, "ticksync ");
    for (const c of COMMANDS) expect(all).toContain(c.type);
    expect(await fishComplete(script, "ticksync doctor --")).toEqual(flagsOf(doctor));
    expect(await fishComplete(script, "ticksync config ")).toEqual(["check", "schema"]);
  });

  test("a command added to the registry is completed", async () => {
    const script = scriptFile(fishScript([...COMMANDS, frobnicate]));
    expect(await fishComplete(script, "ticksync frob")).toEqual(["frobnicate"]);
    expect(await fishComplete(script, "ticksync frobnicate --")).toEqual(["--config", "--help", "--loud", "--widgets"]);
  });
});

describe.skipIf(!ZSH)("zsh", () => {
  const load = (script: string) =>
    run([ZSH!, "-f", "-c", `autoload -U compinit && compinit -u -D && source '${script}' && print -r -- "$_comps[ticksync] $+functions[_ticksync]"`]);

  test("`ticksync completion zsh` loads without error and registers _ticksync for ticksync", async () => {
    const r = await cli(["completion", "zsh"]);
    expect(r.code).toBe(0);
    const loaded = await load(scriptFile(r.stdout));
    expect(loaded).toEqual({ code: 0, stdout: "_ticksync 1\n", stderr: "" });
  });

  test("the script carries every command of the registry, and a new one", () => {
    const script = zshScript([...COMMANDS, frobnicate]);
    for (const c of [...COMMANDS, frobnicate]) expect(script).toContain(`'${c.type}:`);
    expect(script).toContain("'--widgets[how many widgets]:N: '");
    expect(script).toContain("'--config[JSON or TOML config file (default: $TICKSYNC_CONFIG, else ./ticksync.toml or ./ticksync.json)]:FILE:_files'");
  });
});

test("completion needs a known shell: usage error (exit 2) otherwise", async () => {
  expect((await cli(["completion"])).code).toBe(2);
  const r = await cli(["completion", "tcsh"]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("unknown shell: tcsh (expected bash, zsh, fish)");
  expect((await cli(["completion", "--help"])).stdout).toContain("Usage: ticksync completion bash|zsh|fish");
});

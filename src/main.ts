#!/usr/bin/env bun
// CLI entry: finds the command (src/cli/registry.ts) and runs it, and turns what it throws into
// the documented exit code with one clear line. No business logic here.
import { ConfigError } from "./config/load.ts";
import { cliActor, withActor } from "./monitor/audit.ts";
import { UsageError } from "./cli/command.ts";
import { EXIT } from "./cli/exit.ts";
import { err, oneLine, out } from "./cli/io.ts";
import { findCommand, HELP } from "./cli/registry.ts";

export async function main(argv: string[]): Promise<number> {
  // Runs started from here on record who started them (src/monitor/audit.ts); serve's jobs and
  // API calls name themselves.
  return withActor(cliActor(argv.slice(0, 2).join(" ")), () => dispatch(argv));
}

async function dispatch(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
      out(HELP.main!);
      return cmd === undefined ? EXIT.usage : EXIT.ok;
    }
    const command = findCommand(cmd);
    if (!command) throw new UsageError(`unknown command: ${cmd}`);
    return await command.run(rest);
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`ticksync: ${e.message}`);
      return EXIT.config;
    }
    if (e instanceof UsageError) {
      err(`ticksync: ${e.message}\nRun 'ticksync ${cmd && HELP[cmd] ? cmd + " " : ""}--help' for usage.`);
      return EXIT.usage;
    }
    // One line, never a stack (TICKSYNC_DEBUG=1 shows it), scrubbed like every output.
    err(`ticksync: ${oneLine(e)}`);
    return EXIT.runFailed;
  }
}

if (import.meta.main) {
  // A failure nobody awaited (a background task) ends the process as before (exit 1), but as one
  // scrubbed line like every other failure, not Bun's source excerpt and stack.
  const crash = (e: unknown) => {
    err(`ticksync: ${oneLine(e)}`);
    process.exit(EXIT.runFailed);
  };
  process.on("unhandledRejection", crash);
  process.on("uncaughtException", crash);
  process.exit(await main(process.argv.slice(2)));
}

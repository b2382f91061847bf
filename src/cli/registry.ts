// The commands, in the order the main help lists them, and what is derived from them: the main
// help's command list and every --help text by the name a usage error points to.
import { backfillCommand } from "./backfill.ts";
import { backupCommand } from "./backup.ts";
import type { Command } from "./command.ts";
import { completionCommand } from "./completion.ts";
import { configCommand } from "./config.ts";
import { CONFIG_HELP } from "./context.ts";
import { doctorCommand } from "./doctor.ts";
import { EXIT_CODES_HELP } from "./exit.ts";
import { exportCommand } from "./export.ts";
import { importCommand } from "./import.ts";
import { initCommand } from "./init.ts";
import { ingestCommand } from "./ingest.ts";
import { instrumentsCommand } from "./instruments.ts";
import { migrateCommand } from "./migrate.ts";
import { restoreCommand } from "./restore.ts";
import { rollupsCommand } from "./rollups.ts";
import { serveCommand } from "./serve.ts";
import { syncCommand } from "./sync.ts";
import { universeCommand } from "./universe.ts";
import { verifyCommand } from "./verify.ts";
import { versionCommand } from "./version.ts";

export const COMMANDS: readonly Command[] = [
  serveCommand,
  ingestCommand,
  backfillCommand,
  universeCommand,
  instrumentsCommand,
  importCommand,
  migrateCommand,
  syncCommand,
  verifyCommand,
  backupCommand,
  restoreCommand,
  exportCommand,
  rollupsCommand,
  configCommand,
  initCommand,
  doctorCommand,
  completionCommand(() => COMMANDS),
  versionCommand,
];

/** The command a command word runs (its type or an alias). */
export const findCommand = (word: string): Command | undefined => COMMANDS.find((c) => c.type === word || c.aliases?.includes(word));

const NAME_WIDTH = 16;
const INDENT = " ".repeat(2 + NAME_WIDTH);

/** One command of the main help's list: its name, then its text (on the next line when the name leaves no two-space gap). */
function listing(name: string, text: string): string {
  const lines = text.split("\n").join(`\n${INDENT}`);
  return name.length < NAME_WIDTH - 1 ? `  ${name.padEnd(NAME_WIDTH)}${lines}` : `  ${name}\n${INDENT}${lines}`;
}

const MAIN_HELP = `ticksync — ingest, validate, store and serve market data (OHLCV bars)

Usage: ticksync <command> [flags]

Commands:
${COMMANDS.flatMap((c) => c.listed.map(([name, text]) => listing(name, text))).join("\n")}

Run 'ticksync <command> --help' for a command's flags.

${CONFIG_HELP}

${EXIT_CODES_HELP}
`;

/** --help texts: `main`, and each command's by its name (`config check` for a subcommand). */
export const HELP: Readonly<Record<string, string>> = Object.assign({ main: MAIN_HELP }, ...COMMANDS.map((c) => c.help));

// The layer and size rules of docs/architecture.md, enforced on src/: dependency-cruiser
// (.dependency-cruiser.cjs: imports point down the layer order, no cycles, lib/ is the base) and
// ESLint (eslint.config.js: no file over 600 lines, no function over 150). Each check is also run
// against a planted violation, so a rule that stopped matching fails here too.
import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const BIN = join(ROOT, "node_modules", ".bin");

type Violation = { from: string; to: string; rule: { name: string } };

function depcruise(): Violation[] {
  const r = Bun.spawnSync([join(BIN, "depcruise"), "src", "--config", ".dependency-cruiser.cjs", "--output-type", "json"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString();
  if (!out.startsWith("{")) throw new Error(`depcruise failed (exit ${r.exitCode}): ${r.stderr.toString().slice(0, 2000)}`);
  return (JSON.parse(out) as { summary: { violations: Violation[] } }).summary.violations;
}

type Lint = { filePath: string; messages: { ruleId: string | null; line: number; message: string }[] };

function eslint(args: string[], stdin?: string): Lint[] {
  const r = Bun.spawnSync([join(BIN, "eslint"), "--format", "json", ...args], { cwd: ROOT, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString();
  if (!out.startsWith("[")) throw new Error(`eslint failed (exit ${r.exitCode}): ${r.stderr.toString().slice(0, 2000)}`);
  return JSON.parse(out) as Lint[];
}

const readable = (vs: Violation[]) => vs.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
const problems = (ls: Lint[]) => ls.flatMap((l) => l.messages.map((m) => `${l.filePath.replace(ROOT + "/", "")}:${m.line} ${m.ruleId}: ${m.message}`));

describe("layers (dependency-cruiser)", () => {
  test("src/ has no upward import, no cycle, and lib/ imports nothing of ours", () => {
    expect(readable(depcruise())).toEqual([]);
  });

  test("a planted upward import and a planted cycle are caught", () => {
    const dir = join(ROOT, "src", "domain", `.arch-probe-${process.pid}`);
    try {
      writeFile(join(dir, "up.ts"), 'import { createApp } from "../../http/app.ts";\nexport const x = createApp;\n');
      writeFile(join(dir, "a.ts"), 'import { b } from "./b.ts";\nexport const a = () => b;\n');
      writeFile(join(dir, "b.ts"), 'import { a } from "./a.ts";\nexport const b = () => a;\n');
      const names = depcruise().filter((v) => v.from.includes(".arch-probe-")).map((v) => v.rule.name);
      expect(names).toContain("no-upward-from-srcdomain");
      expect(names).toContain("no-cycle");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("sizes (ESLint)", () => {
  test("no file in src/ over 600 lines, no function over 150", () => {
    expect(problems(eslint(["src"]))).toEqual([]);
  });

  test("a planted 151-line function and a 601-line file are caught", () => {
    const body = Array.from({ length: 149 }, (_, i) => `  const v${i} = ${i};`).join("\n");
    const fn = `export function long() {\n${body}\n}\n`;
    const fnRules = problems(eslint(["--stdin", "--stdin-filename", "src/domain/probe.ts"], fn)).map((p) => p.split(" ")[1]);
    expect(fnRules).toEqual(["max-lines-per-function:"]);
    const file = Array.from({ length: 601 }, (_, i) => `export const c${i} = ${i};`).join("\n") + "\n";
    const fileRules = problems(eslint(["--stdin", "--stdin-filename", "src/domain/probe.ts"], file)).map((p) => p.split(" ")[1]);
    expect(fileRules).toEqual(["max-lines:"]);
    const ok = `export function short() {\n${body.split("\n").slice(0, 147).join("\n")}\n}\n`;
    expect(problems(eslint(["--stdin", "--stdin-filename", "src/domain/probe.ts"], ok))).toEqual([]);
  });
});

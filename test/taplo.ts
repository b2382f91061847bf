// `taplo check` (the engine of the Even Better TOML editor extension) of a config file, for the
// tests of the config's JSON Schema and of `ticksync init`.
import { join } from "node:path";
import { ROOT } from "./helpers.ts";

const TAPLO = join(ROOT, "node_modules", ".bin", "taplo");

/** `taplo check` of a file, against `schema` (else the file's `#:schema` line). */
export async function taploCheck(file: string, schema?: string): Promise<{ code: number; output: string }> {
  const args = schema ? ["--schema", `file://${schema}`] : [];
  // Offline: no schema catalog to fetch, no config file of Taplo's own to find.
  const proc = Bun.spawn([TAPLO, "check", "--no-auto-config", ...args, file], { stdout: "pipe", stderr: "pipe", env: { ...process.env, RUST_LOG: "error" } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, output: out + err };
}

/**
 * The pinned cosign as the e2e tests use it: found where scripts/cosign-tools.sh built it (never
 * built here: scripts/test.sh builds it first, so no test waits minutes for it silently), and run
 * by hand the way a user verifies a ref, with no Strata code in between.
 */
import { execFileSync, spawnSync } from "node:child_process";
import path from "node:path";
import { repoRoot } from "./harness.js";

export const cosignBinary = (): string => {
  try {
    return execFileSync(path.join(repoRoot, "scripts/cosign-tools.sh"), ["path"], { encoding: "utf8", env: { ...process.env, STRATA_COSIGN_NO_BUILD: "1" } }).trim();
  } catch {
    throw new Error("cosign is not built: run scripts/cosign-tools.sh ensure before the e2e tests (scripts/test.sh does)");
  }
};

/** Plain cosign, as a user runs it by hand (`env`: what the user would export, as COSIGN_PASSWORD). */
export function cosignCli(binary: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): { code: number; out: string } {
  const result = spawnSync(binary, args, { encoding: "utf8", env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env }, timeout: 120_000 });
  return { code: result.status ?? -1, out: `${result.stdout}${result.stderr}` };
}

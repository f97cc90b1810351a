/**
 * Files of this Strata checkout that are not compiled (scripts, data tables), found from a module
 * whether it runs from src/ (tests) or from dist/src/ (the CLI, the program).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout's file at `relative` (`scripts/services.sh`): the first folder up from this module that has it; undefined when none does. */
export function checkoutFile(relative: string): string | undefined {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, relative);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

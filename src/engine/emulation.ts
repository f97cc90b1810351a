/**
 * Before a run whose stack builds a foreign platform on this machine's engine: has the kernel an
 * interpreter for it (qemu-user-static through binfmt_misc)? If not, `scripts/services.sh emulation`
 * registers Debian's (root), or says why it cannot, and the run stops with that. The program checks
 * again before declaring anything (pulumi/docker-engine.ts), whoever started it.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type StackConfig } from "../core/config.js";
import { enginePlatform } from "../core/platforms.js";
import { UserError } from "../core/problems.js";
import { emulationRegistered } from "../pulumi/docker-engine.js";

/** This machine's own platform, as Docker names it. */
export function hostPlatform(): string {
  return enginePlatform("linux", process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : process.arch);
}

/** The platforms this machine's engine would have to emulate and cannot yet (a pool of engines decides for itself). */
export function platformsToEmulate(config: Pick<StackConfig, "platforms" | "engines">, binfmtDir?: string): string[] {
  if (config.engines !== undefined) return [];
  return config.platforms.filter((platform) => platform !== hostPlatform() && !emulationRegistered(platform, binfmtDir));
}

/** scripts/services.sh of this checkout: the first folder up from this module that has it (compiled under dist/ or not). */
function servicesScript(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, "scripts/services.sh");
    if (existsSync(candidate)) return candidate;
  }
  throw new UserError("scripts/services.sh is not in this checkout: run scripts/services.sh emulation <os/arch> from a clone of Strata");
}

/** Registers emulation for `platforms` through services.sh; its own message when it cannot. */
export function registerEmulation(platforms: readonly string[], progress: (text: string) => void): Promise<void> {
  if (platforms.length === 0) return Promise.resolve();
  progress(`registering emulation for ${platforms.join(", ")} (scripts/services.sh emulation)\n`);
  return new Promise((resolve, reject) => {
    execFile(servicesScript(), ["emulation", ...platforms], (error, _stdout, stderr) => {
      const reason = stderr.trim().split("\n").pop() || error?.message;
      if (error === null) resolve();
      else reject(new UserError(`${platforms.join(", ")} build steps need emulation on this machine, and it could not be set up: ${reason ?? "services.sh failed"}. Nothing was built or pushed.`));
    });
  });
}

/**
 * Before a run whose stack builds a foreign platform on an engine of this machine: has the kernel an
 * interpreter for it (qemu-user-static through binfmt_misc)? If not, `scripts/services.sh emulation`
 * registers Debian's (root), or says why it cannot, and the run stops with that. The program checks
 * again before declaring anything (pulumi/docker-engine.ts), whoever started it. An engine elsewhere
 * runs its builds under its own kernel: this machine's binfmt_misc is nothing to it, and nothing is
 * installed here for it (the program asks that engine what it builds natively).
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { machine } from "node:os";
import { checkoutFile } from "../core/checkout.js";
import { type PoolEngine, type StackConfig } from "../core/config.js";
import { enginePlatform, isLocalEngine, qemuBinfmtName } from "../core/platforms.js";
import { UserError } from "../core/problems.js";

/** Where binfmt_misc lists the interpreters the kernel runs foreign binaries with. */
export const BINFMT_DIR = process.env.STRATA_BINFMT_DIR ?? "/proc/sys/fs/binfmt_misc";

/** Whether this machine's kernel runs binaries of a platform's architecture through qemu-user-static (binfmt_misc). */
export function emulationRegistered(platform: string, binfmtDir: string = BINFMT_DIR): boolean {
  const name = qemuBinfmtName(platform);
  if (name === undefined) return false;
  try {
    return readFileSync(`${binfmtDir}/${name}`, "utf8").split("\n")[0] === "enabled";
  } catch {
    return false;
  }
}

/** This machine's own platform, as Docker names it (from the kernel's machine name, through scripts/platforms.tsv). */
export function hostPlatform(): string {
  return enginePlatform("linux", machine());
}

/**
 * The platforms an engine of this machine would have to emulate and cannot yet. A platform's builds
 * go to the engines naming it, else to those naming none (core/placement.ts); without strata:engines,
 * to DOCKER_HOST's. Only when one of those is on this machine and the platform is not this machine's
 * does this machine's binfmt_misc matter.
 */
export function platformsToEmulate(config: Pick<StackConfig, "platforms" | "engines">, binfmtDir?: string, dockerHost: string | undefined = process.env.DOCKER_HOST): string[] {
  const engines: readonly PoolEngine[] = config.engines ?? [{ host: dockerHost ?? "" }];
  return config.platforms.filter((platform) =>
    platform !== hostPlatform()
    && !engines.some((engine) => engine.platform === platform)
    && engines.some((engine) => engine.platform === undefined && isLocalEngine(engine.host))
    && !emulationRegistered(platform, binfmtDir));
}

/**
 * Registers emulation for `platforms` through services.sh; its own message when it cannot. `env` is
 * the run's (STRATA_BINFMT_DIR, as platformsToEmulate and the program read it).
 */
export function registerEmulation(platforms: readonly string[], progress: (text: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (platforms.length === 0) return Promise.resolve();
  const script = checkoutFile("scripts/services.sh");
  if (script === undefined) return Promise.reject(new UserError("scripts/services.sh is not in this checkout: run scripts/services.sh emulation <os/arch> from a clone of Strata"));
  progress(`registering emulation for ${platforms.join(", ")} (scripts/services.sh emulation)\n`);
  return new Promise((resolve, reject) => {
    execFile(script, ["emulation", ...platforms], { env }, (error, _stdout, stderr) => {
      const reason = stderr.trim().split("\n").pop() || error?.message;
      if (error === null) resolve();
      else reject(new UserError(`${platforms.join(", ")} build steps need emulation on this machine, and it could not be set up: ${reason ?? "services.sh failed"}. Nothing was built or pushed.`));
    });
  });
}

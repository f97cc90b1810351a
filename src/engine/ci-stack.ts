/**
 * The per-change stack of a CI run (core/ci-build.ts names it). Its config is
 * the channel stack's file, written again before every run: the same keys, and
 * the same encryption salt, so the channel's secrets (the registry password)
 * read the same with the same passphrase — but never the channel's signing key
 * (core/ci-stack-config.ts). Nothing else of the channel's is touched.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ciStackConfigText } from "../core/ci-stack-config.js";

/** Writes `Pulumi.<ciStack>.yaml` from `Pulumi.<channelStack>.yaml` in the project folder. */
export function writeCiStackConfig(projectDir: string, channelStack: string, ciStack: string): void {
  const channelFile = path.join(projectDir, `Pulumi.${channelStack}.yaml`);
  if (!existsSync(channelFile)) throw new Error(`${channelFile} does not exist`);
  writeFileSync(path.join(projectDir, `Pulumi.${ciStack}.yaml`), ciStackConfigText(readFileSync(channelFile, "utf8"), channelFile));
}

/**
 * Removes a CI stack from the backend, with its config file, if it exists. Its
 * resources are not deleted one by one: the tags are removed from the registry
 * by `strata ci-clean` itself, and docker.Image's delete does nothing anyway.
 */
export async function removeCiStack(projectDir: string, stack: string, env: Record<string, string>): Promise<boolean> {
  const { LocalWorkspace } = await import("@pulumi/pulumi/automation/index.js");
  const workspace = await LocalWorkspace.create({ workDir: projectDir, envVars: env });
  const stacks = await workspace.listStacks();
  if (!stacks.some((summary) => summary.name === stack || summary.name.endsWith(`/${stack}`))) return false;
  await workspace.removeStack(stack, { force: true });
  return true;
}

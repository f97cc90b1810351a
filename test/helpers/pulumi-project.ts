/**
 * A Pulumi project named "strata" beside an empty file backend, for unit tests that run the real
 * Pulumi CLI on its state (no program is ever run): `<root>/project` and `<root>/state`.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { scratchDir } from "./catalog.js";

export interface PulumiProject {
  readonly root: string;
  readonly project: string;
  /** The backend, passphrase and `settings`: what each CLI call here gets, and what the code under test is given. */
  readonly env: Readonly<Record<string, string>>;
  /** Runs `pulumi <args>` in the project with `env`, then `extra`; its stdout. */
  pulumi(args: readonly string[], extra?: Readonly<Record<string, string>>): string;
}

export function pulumiProject(prefix: string, settings: Readonly<Record<string, string>> = {}): PulumiProject {
  const root = scratchDir(prefix);
  const project = path.join(root, "project");
  mkdirSync(project);
  mkdirSync(path.join(root, "state"));
  writeFileSync(path.join(project, "Pulumi.yaml"), "name: strata\nruntime: nodejs\n");
  const env = { PULUMI_BACKEND_URL: pathToFileURL(path.join(root, "state")).href, PULUMI_CONFIG_PASSPHRASE: "test", PULUMI_SKIP_UPDATE_CHECK: "true", ...settings };
  return {
    root,
    project,
    env,
    pulumi: (args, extra = {}) => execFileSync("pulumi", args, { cwd: project, env: { ...process.env, ...env, ...extra }, encoding: "utf8" }),
  };
}

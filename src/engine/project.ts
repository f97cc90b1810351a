/**
 * The project a command runs on: its folder, its catalog, a stack's config (with the CI
 * environment), the stack an engine run uses, where per-clone output goes, and the environment
 * handed to the engine. Every command reads them the same way; nothing here prints.
 */
import path from "node:path";
import { type Catalog, loadCatalog } from "../core/catalog.js";
import { CI_ENVIRONMENT, resolveStackConfig, type StackConfig } from "../core/config.js";
import { ciStackName } from "../core/ci-build.js";
import { PULL_PARENT_FIRST_ENV } from "../core/parent-pull.js";
import { gather, InputError, throwIfAny } from "../core/problems.js";
import { stackConfigSource } from "../core/stack-files.js";
import { absoluteFileBackendUrl } from "./file-backend.js";

/** Where a command stands: its working folder and environment. */
export interface ProjectContext {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface ProjectOptions {
  /** The layer catalog folder (default: <project>/layers). */
  readonly catalog?: string;
  /** The Pulumi project folder (default: the working folder). */
  readonly project?: string;
}

export interface StackSelection extends ProjectOptions {
  readonly stack?: string;
  /** A stack config file to read instead of Pulumi.<stack>.yaml. */
  readonly config?: string;
}

export interface ResolvedStack {
  readonly config: StackConfig;
  /** The stack file problems name. */
  readonly file: string;
  /** The change came from the CI environment (the stack file names none). */
  readonly ciFromEnvironment: boolean;
}

/** Backend, secrets, engine and CI settings from the command's environment, passed on to the engine and the program. */
export function engineEnv(context: ProjectContext): Record<string, string> {
  const env: Record<string, string> = {};
  const ciNames = CI_ENVIRONMENT.flatMap((pair) => [pair.change, pair.patchset]);
  // PGPASSFILE: the PostgreSQL backend's password; DOCKER_HOST and TLS: the engine this runner builds
  // on; DOCKER_CONFIG: where docker login left the registry login; STRATA_REGISTRY_TIMEOUT: seconds a registry request may take;
  // STRATA_BINFMT_DIR: where binfmt_misc is mounted, if not at /proc/sys/fs/binfmt_misc (foreign platforms' emulation);
  // STRATA_PULL_PARENT_FIRST: whether docker.Image pulls each parent through the engine first (core/parent-pull.ts).
  // PULUMI_BACKEND_URL: a relative file:// folder made absolute here, once, so the engine and Strata read one folder.
  for (const name of ["PULUMI_BACKEND_URL", "PGPASSFILE", "PULUMI_CONFIG_PASSPHRASE", "STRATA_SOURCE_REVISION", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_CONFIG", "STRATA_REGISTRY_TIMEOUT", "STRATA_BINFMT_DIR", PULL_PARENT_FIRST_ENV, ...ciNames]) {
    const value = context.env[name];
    if (value !== undefined) env[name] = name === "PULUMI_BACKEND_URL" ? absoluteFileBackendUrl(value, context.cwd) : value;
  }
  return env;
}

export function projectDirOf(options: ProjectOptions, context: ProjectContext): string {
  return path.resolve(context.cwd, options.project ?? ".");
}

/** Per-clone output (image sets and the like): $STRATA_STATE, else the project's .strata folder. */
export function stateDirOf(options: ProjectOptions, context: ProjectContext): string {
  return context.env.STRATA_STATE ?? path.join(projectDirOf(options, context), ".strata");
}

export function catalogOf(options: ProjectOptions, context: ProjectContext): Catalog {
  return loadCatalog(path.resolve(context.cwd, options.catalog ?? path.join(projectDirOf(options, context), "layers")), context.cwd);
}

export function stackConfigOf(options: StackSelection, context: ProjectContext): ResolvedStack {
  const source = stackConfigSource({
    projectDir: projectDirOf(options, context),
    ...(options.stack === undefined ? {} : { stack: options.stack }),
    ...(options.config === undefined ? {} : { configFile: path.resolve(context.cwd, options.config) }),
    env: context.env,
    displayRoot: context.cwd,
  });
  const { config, problems } = resolveStackConfig(source);
  if (config === undefined) throw new InputError(problems);
  // The stack file names no change: a change in the config came from the CI environment.
  const ciFromEnvironment = config.ci !== undefined && source.values.change === undefined && source.values.patchset === undefined;
  return { config, file: source.file, ciFromEnvironment };
}

/** The catalog and a stack's config, with the problems of both in one error: a user sees all of them at once. */
export function inputsOf(options: StackSelection, context: ProjectContext): ResolvedStack & { readonly catalog: Catalog } {
  const catalog = gather(() => catalogOf(options, context));
  const stack = gather(() => stackConfigOf(options, context));
  throwIfAny([...catalog.problems, ...stack.problems]);
  return { ...(stack.value as ResolvedStack), catalog: catalog.value as Catalog };
}

/**
 * The stack an engine run uses. A CI run whose change comes from the CI environment runs on its
 * change's own stack (`<stack>-ci-<change>`, config copied from the channel's), never on the
 * channel's: the channel's state stays as its own runs left it, and changes do not queue behind
 * one lock. A stack whose file names a change is already a CI stack and is used as it is.
 * `note` says which stack a CI run took, for the command to print.
 */
export async function runStackOf(options: StackSelection & { stack: string }, context: ProjectContext, resolved: ResolvedStack): Promise<{ stack: string; note?: string }> {
  const { config, ciFromEnvironment } = resolved;
  if (config.ci === undefined || !ciFromEnvironment || options.config !== undefined) return { stack: options.stack };
  const stack = ciStackName(options.stack, config.ci);
  const { writeCiStackConfig } = await import("./ci-stack.js");
  writeCiStackConfig(projectDirOf(options, context), options.stack, stack);
  return { stack, note: `CI build of change ${config.ci.change}${config.ci.patchset === undefined ? "" : ` patchset ${config.ci.patchset}`}: stack ${stack} (config from Pulumi.${options.stack}.yaml)` };
}

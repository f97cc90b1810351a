/**
 * What `strata up` does before it prints: the catalog and config (every problem at once), the
 * stack (a CI run's own), one `pulumi up` through the CLI with its events, and the layers the
 * summary is about. The command renders the summary and writes the files.
 */
import path from "node:path";
import { formatCiBuild } from "../core/version.js";
import { type StackConfig } from "../core/config.js";
import { planTargets } from "../core/plan.js";
import { immutableTags } from "../core/channel.js";
import { buildTargets } from "../core/platform-targets.js";
import { throwIfAny } from "../core/problems.js";
import { type SigningDecision, signingConfigProblems, signingDecision, signingKeyConfigured, signingKeyFields } from "../core/signing-config.js";
import { stackConfigSource } from "../core/stack-files.js";
import { TRUST_KEY } from "../core/trust-policy.js";
import { runIdOf } from "./run-logs.js";
import { type EngineRun } from "./events.js";
import { engineEnv, inputsOf, projectDirOf, type ProjectContext, runStackOf, type StackSelection, stateDirOf } from "./project.js";

/** A layer the summary reports on. */
export interface UpLayer {
  readonly layer: string;
  readonly image: string;
  readonly ref: string;
  readonly parent: string | null;
  /** A promoting channel: the digest its output held before this run. */
  readonly previousDigestRef?: string;
  /** Whether the stack signs its images (core/signing-config.ts), and if not, why. */
  readonly signing?: SigningDecision;
}

export interface UpOutcome {
  /** The stack the engine ran (a CI run's own, or the channel's). */
  readonly runStack: string;
  readonly config: StackConfig;
  readonly run: EngineRun;
  readonly layers: readonly UpLayer[];
  /** The run was refused because another run holds the stack's lock. */
  readonly lockHeld: boolean;
  /** Where the image set goes: asked for, or by default for a CI run (under the per-clone state folder). */
  readonly imageSetDir?: string;
}

/**
 * The engine refused the run because another holds the stack's lock. Two forms: Pulumi's own
 * message, and, on the file backend when two runs start at the same instant, a failed stat of the
 * other run's lock while it is still a temp file being renamed into place (seen in the e2e suite).
 */
export function isLockRefusal(engineError: string): boolean {
  return /currently locked|\.pulumi\/locks\/\S+: no such file or directory/.test(engineError);
}

export interface UpRequest extends StackSelection {
  readonly stack: string;
  readonly parallel: number;
  readonly imageSet?: string;
}

export async function upFlow(request: UpRequest, context: ProjectContext, progress: (text: string) => void): Promise<UpOutcome> {
  const resolved = inputsOf(request, context);
  const { config, file, catalog } = resolved;
  // The stack file as it is (a secret is {secure: …} there): a signing key must be a secret, with its passphrase.
  const values = stackConfigSource({ projectDir: projectDirOf(request, context), stack: request.stack, ...(request.config === undefined ? {} : { configFile: path.resolve(context.cwd, request.config) }), env: context.env, displayRoot: context.cwd }).values;
  throwIfAny(signingConfigProblems(values, file));
  // A change's run signs with the change key only, whichever stack it runs on (signingKeyFields).
  const changeRun = config.ci !== undefined;
  const signing = signingDecision(config, signingKeyConfigured(values, signingKeyFields(config)), changeRun);
  // A foreign platform on this machine's engine: register its emulation first (or stop, saying why).
  const { platformsToEmulate, registerEmulation } = await import("./emulation.js");
  // The script runs in this process's environment (PATH and all) with the run's own settings on top.
  await registerEmulation(platformsToEmulate(config, context.env.STRATA_BINFMT_DIR, context.env.DOCKER_HOST), progress, { ...process.env, ...context.env });
  const run = await runStackOf(request, context, resolved);
  if (run.note !== undefined) progress(`${run.note}\n`);
  // The run's id in its images' provenance (the program falls back to its own start when run without
  // strata up); the project folder, which strata:trust's key paths are relative to.
  const env: Record<string, string> = { ...engineEnv(context), STRATA_CATALOG: catalog.dir, STRATA_CHANNEL_STACK: request.stack, STRATA_RUN_ID: runIdOf(new Date()), STRATA_PROJECT_DIR: projectDirOf(request, context) };
  // cosign only when a stack needs it: a trust policy to verify against (the promotion gate runs
  // cosign verify). Signing does not: the provider writes cosign's format itself
  // (registry/signatures.ts), so a signing dev stack never waits for cosign's first build. Found, or
  // built the first time on this machine (scripts/cosign-tools.sh, minutes), before the engine starts.
  if (values[TRUST_KEY] !== undefined) {
    const { locateCosign } = await import("./cosign.js");
    if (context.env.STRATA_COSIGN === undefined) progress("cosign: making sure the pinned cosign is available (built once per machine; scripts/cosign-tools.sh)\n");
    env.STRATA_COSIGN = await locateCosign({ ...process.env, ...context.env });
  }
  const stackOptions = { projectDir: projectDirOf(request, context), stack: run.stack, env };
  const { ensureStack, upRun } = await import("./cli-run.js");
  const { projectName } = await import("./lock-owner.js");
  const project = projectName(stackOptions.projectDir);
  await ensureStack({ ...stackOptions, project });
  // Every step, "same" included, reports its outputs as an engine event: no stack read is needed
  // for a building channel (a promoting one learns its layers from the outputs afterwards).
  const engineRun = await upRun({ ...stackOptions, project, parallel: request.parallel, progress, checkpointEveryStep: immutableTags(config) });
  let layers: UpLayer[];
  if (config.promoteFrom === undefined) {
    // A multi-platform stack: each layer per platform (`keystone@linux-arm64`), then each layer's index.
    const { builds, indexes } = buildTargets(planTargets(catalog, config, file), config);
    layers = [
      ...builds.map((target) => ({ layer: target.layer.name, image: target.layer.image, ref: target.ref, parent: target.parent ?? null, signing })),
      ...indexes.map((index) => ({ layer: index.layer, image: index.target.layer.image, ref: index.target.ref, parent: null, signing })),
    ];
  } else {
    const automation = await import("./automation.js");
    const current = await automation.previousLayers<{ layer: string; image: string; ref: string; digestRef?: string }>(await automation.openStack(stackOptions));
    layers = Object.values(current).map((layer) => ({ layer: layer.layer, image: layer.image, ref: layer.ref, parent: null, signing, ...(layer.digestRef === undefined ? {} : { previousDigestRef: layer.digestRef }) }));
  }
  const imageSetDir = request.imageSet !== undefined ? path.resolve(context.cwd, request.imageSet)
    : config.ci === undefined ? undefined : path.join(stateDirOf(request, context), "image-sets", run.stack, formatCiBuild(config.ci));
  return {
    runStack: run.stack,
    config,
    run: engineRun,
    layers,
    lockHeld: engineRun.error !== undefined && isLockRefusal(engineRun.error),
    ...(imageSetDir === undefined ? {} : { imageSetDir }),
  };
}

/**
 * What `strata plan` (and `strata graph --stack`) needs to say which layers a stack's next up
 * would build, and why: the registry's look-ups, the channel's decision (both witnesses), and an
 * engine preview. No build, no push. A registry that cannot answer stops it before the preview,
 * and the command shows every layer blocked.
 */
import path from "node:path";
import { decideChannel, immutableTags, indexConflicts, type PublishedIndex, type RegistryView, type TagConflict, unreadableStateProblem } from "../core/channel.js";
import { type LayerFingerprint, fingerprintTargets } from "../core/fingerprint.js";
import { BUILD_RESOURCE_TYPES, CI_COPY_SET_TYPE, COPIED_IMAGE_TYPE } from "../core/image-types.js";
import { type LayerTarget, planTargets } from "../core/plan.js";
import { buildTargets, type IndexTarget } from "../core/platform-targets.js";
import { InputError, throwIfAny, UserError } from "../core/problems.js";
import { planPromotion, type PromotionTarget, type SourceLayer } from "../core/promotion-plan.js";
import { digestOf } from "../core/reference.js";
import { type StackConfig } from "../core/config.js";
import { stackConfigSource } from "../core/stack-files.js";
import { TRUST_KEY } from "../core/trust-policy.js";
import { lookUpIndexes, lookUpPublished, RegistryLookupError } from "../registry/lookups.js";
import { engineEnv, inputsOf, projectDirOf, type ProjectContext, runStackOf, type StackSelection } from "./project.js";
import { registryClientFor } from "./registry-access.js";
import { engineErrorText, eventCollector } from "./events.js";
import { projectName } from "./lock-owner.js";
import { readBuiltLayers, type StateRead } from "./stack-state.js";

/** Everything the plan's statuses are decided from (cli/plan-status.ts decides them). */
export interface PlanEvidence<Previous> {
  readonly targets: readonly LayerTarget[];
  readonly fingerprints: ReadonlyMap<string, LayerFingerprint>;
  /** The stack's `layers` output as last recorded. */
  readonly previous: Readonly<Record<string, Previous>>;
  /** The preview's operation per layer. */
  readonly operations: ReadonlyMap<string, string>;
  readonly conflicts: readonly TagConflict[];
  /** A multi-platform stack's indexes, each over its platforms' targets. */
  readonly indexes: readonly IndexTarget[];
  /** Index tags an immutable channel would move: layer → why. */
  readonly blockedIndexes: ReadonlyMap<string, string>;
  /** Layers the preview adopts (a CopiedImage) or copies (the CI run's CiCopySet). */
  readonly adopted: ReadonlySet<string>;
  readonly copied: ReadonlySet<string>;
}

/** What a promoting channel's plan is decided from (cli/plan-status.ts promotionRows). */
export interface PromotionEvidence<Previous> {
  readonly targets: readonly PromotionTarget[];
  /** Source layer → its platform images' digests (a multi-platform layer's `platforms` output). */
  readonly platformDigests: ReadonlyMap<string, readonly string[]>;
  readonly previous: Readonly<Record<string, Previous>>;
  readonly operations: ReadonlyMap<string, string>;
  /** The promotion gate's paragraphs: the program's `refused: ` warnings in the preview, prefix removed. */
  readonly refusals: readonly string[];
}

export type PlanOutcome<Previous> =
  | { readonly evidence: PlanEvidence<Previous>; readonly note?: string }
  | { readonly promotion: PromotionEvidence<Previous> }
  | { readonly blocked: RegistryLookupError; readonly targets: readonly LayerTarget[] };

/** The prefix of the promotion gate's warnings in a `strata plan` preview (STRATA_PLAN=1), as `blocked: ` is the channel's. */
export const REFUSED_PREFIX = "refused: ";

export async function planOutcome<Previous>(options: StackSelection & { stack: string }, context: ProjectContext): Promise<PlanOutcome<Previous>> {
  const resolved = inputsOf(options, context);
  const { config, file, catalog } = resolved;
  if (config.promoteFrom !== undefined) return { promotion: await promotionOutcome<Previous>(options, context, config, file, catalog.dir) };
  // A multi-platform stack's statuses are per layer and platform (core/platform-targets.ts).
  const { builds: targets, indexes } = buildTargets(planTargets(catalog, config, file), config);
  const fingerprints = await fingerprintTargets(targets, config.platform);
  const projectDir = projectDirOf(options, context);
  const env = engineEnv(context);
  let view: RegistryView = { published: new Map() };
  let publishedIndexes: Map<string, PublishedIndex> = new Map();
  if (config.push) {
    try {
      const client = await registryClientFor(config, { projectDir, stack: options.stack, env });
      view = await lookUpPublished(targets, client, fingerprints);
      // What an immutable channel's index tags hold, as the program asks (core/channel.ts indexConflicts).
      if (immutableTags(config)) publishedIndexes = await lookUpIndexes(indexes, client);
    } catch (error) {
      // Fail closed: no preview over an unknown.
      if (error instanceof RegistryLookupError) return { blocked: error, targets };
      throw error;
    }
  }
  const run = await runStackOf(options, context, resolved);
  const automation = await import("./automation.js");
  // Opened (a first plan creates the stack) before its state is read.
  const stack = await automation.openStack({ projectDir, stack: run.stack, env: { ...env, STRATA_PLAN: "1", STRATA_CATALOG: catalog.dir, STRATA_CHANNEL_STACK: options.stack, STRATA_PROJECT_DIR: projectDir } }).catch(stackProblem(run.stack, options.stack));
  // The stack's own state is an immutable channel's second witness, as in the program; a state that
  // cannot be read stops the plan on every channel, since the preview could not read it either.
  const state: StateRead = await readBuiltLayers(run.stack, BUILD_RESOURCE_TYPES[config.builder], { project: projectName(projectDir), cwd: projectDir, env });
  if (state.unreadable !== undefined) throw new InputError([unreadableStateProblem(state.unreadable, file, options.stack)]);
  const { conflicts } = decideChannel(targets, fingerprints, view, config, state.witness);
  const previous = await automation.previousLayers<Previous>(stack).catch(stackProblem(run.stack, options.stack));
  const preview = await automation.previewRun(stack);
  // The program's own stop (a user error: an engine down, emulation missing) is one paragraph, as in `strata up`.
  if (preview.error !== undefined) throw new UserError(`the preview of stack ${run.stack} stopped: ${engineErrorText(preview.error)}`);
  const events = [...preview.events];
  return {
    evidence: {
      targets, fingerprints, previous, conflicts,
      indexes,
      // The problems' layer names are the indexes': one line each, their message the reason.
      blockedIndexes: new Map(indexes.flatMap((index) => indexConflicts([index], config, publishedIndexes, view, file, options.stack, { tags: state.witness, fingerprints }).map((problem) => [index.layer, problem.message] as const))),
      operations: new Map(events.map(([layer, event]) => [layer, event.op] as const)),
      adopted: new Set(events.filter(([, event]) => event.type === COPIED_IMAGE_TYPE).map(([layer]) => layer)),
      copied: new Set(events.filter(([, event]) => event.type === CI_COPY_SET_TYPE).map(([layer]) => layer)),
    },
    ...(run.note === undefined ? {} : { note: run.note }),
  };
}

/**
 * A promoting channel: a preview of the program (which, with a trust policy, runs the promotion
 * gate and, under STRATA_PLAN=1, logs each refusal as a `refused: ` warning instead of stopping),
 * then the source channel's layers (the preview has proved the stack exists) for the targets.
 */
async function promotionOutcome<Previous>(options: StackSelection & { stack: string }, context: ProjectContext, config: StackConfig, file: string, catalogDir: string): Promise<PromotionEvidence<Previous>> {
  const source = config.promoteFrom as string;
  const projectDir = projectDirOf(options, context);
  // The catalog's checkout is the one the gate asks whether a provenance's commit is reviewed; the
  // trust policy's keys are relative to the project folder, which the program is told (it runs in dist/), as on strata up.
  const env: Record<string, string> = { ...engineEnv(context), STRATA_PLAN: "1", STRATA_CATALOG: catalogDir, STRATA_CHANNEL_STACK: options.stack, STRATA_PROJECT_DIR: projectDir };
  // The gate verifies with cosign: found or built before the engine starts, as strata up does.
  const values = stackConfigSource({ projectDir, stack: options.stack, ...(options.config === undefined ? {} : { configFile: path.resolve(context.cwd, options.config) }), env: context.env, displayRoot: context.cwd }).values;
  if (values[TRUST_KEY] !== undefined) {
    const { locateCosign } = await import("./cosign.js");
    env.STRATA_COSIGN = await locateCosign({ ...process.env, ...context.env });
  }
  const automation = await import("./automation.js");
  const stack = await automation.openStack({ projectDir, stack: options.stack, env }).catch(stackProblem(options.stack, options.stack));
  const previous = await automation.previousLayers<Previous>(stack).catch(stackProblem(options.stack, options.stack));
  // automation.previewRun keeps only the layers' events; the gate's refusals are program warnings.
  const { events, programWarnings, onEvent } = eventCollector();
  try {
    await stack.preview({ onEvent });
  } catch (error) {
    throw new UserError(`the preview of stack ${options.stack} stopped: ${engineErrorText((error as Error).message)}`);
  }
  const sourceStack = await automation.openStack({ projectDir, stack: source, env: engineEnv(context) }).catch(stackProblem(source, source));
  const sourceLayers = await automation.previousLayers<SourceLayer & { platforms?: Record<string, string> }>(sourceStack).catch(stackProblem(source, source));
  const plan = planPromotion(sourceLayers, config, file);
  throwIfAny(plan.problems);
  return {
    targets: plan.targets,
    platformDigests: new Map(Object.values(sourceLayers).map((layer) => [layer.layer, Object.values(layer.platforms ?? {}).map(digestOf)] as const)),
    previous,
    operations: new Map([...events].map(([layer, event]) => [layer, event.op] as const)),
    refusals: programWarnings.filter((warning) => warning.startsWith(REFUSED_PREFIX)).map((warning) => warning.slice(REFUSED_PREFIX.length)),
  };
}

/** The engine could not open or read the stack: one paragraph with Pulumi's reason, never a stack trace. */
function stackProblem(runStack: string, channelStack: string): (error: unknown) => never {
  return (error: unknown) => {
    throw new UserError(`Pulumi could not open or read stack ${runStack}: ${engineErrorText(error instanceof Error ? error.message : String(error))}; fix: check PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE, and after a killed run: scripts/strata recover --stack ${channelStack}`);
  };
}

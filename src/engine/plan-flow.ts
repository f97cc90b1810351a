/**
 * What `strata plan` (and `strata graph --stack`) needs to say which layers a stack's next up
 * would build, and why: the registry's look-ups, the channel's decision (both witnesses), and an
 * engine preview. No build, no push. A registry that cannot answer stops it before the preview,
 * and the command shows every layer blocked.
 */
import { decideChannel, immutableTags, indexConflicts, type PublishedIndex, type RegistryView, type TagConflict, unreadableStateProblem } from "../core/channel.js";
import { type LayerFingerprint, fingerprintTargets } from "../core/fingerprint.js";
import { BUILD_RESOURCE_TYPES, CI_COPY_SET_TYPE, COPIED_IMAGE_TYPE } from "../core/image-types.js";
import { type LayerTarget, planTargets } from "../core/plan.js";
import { buildTargets, type IndexTarget } from "../core/platforms.js";
import { InputError, UserError } from "../core/problems.js";
import { lookUpIndexes, lookUpPublished, RegistryLookupError } from "../registry/lookups.js";
import { engineEnv, inputsOf, projectDirOf, type ProjectContext, runStackOf, type StackSelection } from "./project.js";
import { registryClientFor } from "./registry-access.js";
import { engineErrorText } from "./events.js";
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

export type PlanOutcome<Previous> =
  | { readonly evidence: PlanEvidence<Previous>; readonly note?: string }
  | { readonly blocked: RegistryLookupError; readonly targets: readonly LayerTarget[] };

export async function planOutcome<Previous>(options: StackSelection & { stack: string }, context: ProjectContext): Promise<PlanOutcome<Previous>> {
  const resolved = inputsOf(options, context);
  const { config, file, catalog } = resolved;
  if (config.promoteFrom !== undefined) {
    throw new InputError([{ file, field: "strata:promoteFrom", message: "this channel is fed by promotion, not builds", fix: "use pulumi preview to see what would be promoted" }]);
  }
  // A multi-platform stack's statuses are per layer and platform (core/platforms.ts).
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
  const stack = await automation.openStack({ projectDir, stack: run.stack, env: { ...env, STRATA_PLAN: "1", STRATA_CATALOG: catalog.dir, STRATA_CHANNEL_STACK: options.stack } }).catch(stackProblem(run.stack, options.stack));
  // The stack's own state is an immutable channel's second witness, as in the program; a state that
  // cannot be read stops the plan on every channel, since the preview could not read it either.
  const state: StateRead = await readBuiltLayers(run.stack, BUILD_RESOURCE_TYPES[config.builder], projectDir, env);
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

/** The engine could not open or read the stack: one paragraph with Pulumi's reason, never a stack trace. */
function stackProblem(runStack: string, channelStack: string): (error: unknown) => never {
  return (error: unknown) => {
    throw new UserError(`Pulumi could not open or read stack ${runStack}: ${engineErrorText(error instanceof Error ? error.message : String(error))}; fix: check PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE, and after a killed run: scripts/strata recover --stack ${channelStack}`);
  };
}

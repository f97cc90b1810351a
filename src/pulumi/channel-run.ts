/**
 * What one run of the program declares on its channel: a build of the catalog's layers (with their
 * indexes and, on a signing stack, their signature sets), or a promotion of another channel's
 * images. index.ts reads the stack's config, its secrets and the run's environment and hands them
 * here (RunContext); each step's policy lives in core/ (channel, layer-origin, promotion-plan,
 * trust-policy) and is called here.
 */
import * as pulumi from "@pulumi/pulumi";
import { type Catalog } from "../core/catalog.js";
import { conflictProblems, decideChannel, immutableTags, indexConflicts, type LedgerEntry, nextLedger, promotionWitnessConflicts, type RegistryView, type StateWitness, unreadableStateProblem } from "../core/channel.js";
import { type StackConfig } from "../core/config.js";
import { fingerprintTargets } from "../core/fingerprint.js";
import { BUILD_RESOURCE_TYPES } from "../core/image-types.js";
import { adoptedOf, builtAsIs, copiedFromOf, decideSources } from "../core/layer-origin.js";
import { type ParentPullMode, parentPulls } from "../core/parent-pull.js";
import { placeByPlatform } from "../core/placement.js";
import { planTargets } from "../core/plan.js";
import { buildTargets } from "../core/platform-targets.js";
import { InputError, throwIfAny, UserError } from "../core/problems.js";
import { planPromotion, type PromotionTarget, refusalMessage } from "../core/promotion-plan.js";
import { readTrustedKeys, type TrustPolicy } from "../core/trust-policy.js";
import { locateCosign, type SigningKey } from "../engine/cosign.js";
import { readReviewedTip } from "../engine/image-verify.js";
import { readBuiltLayers, type StateRead } from "../engine/stack-state.js";
import { type RegistryClient, type RegistryCredentials } from "../registry/client.js";
import { lookUpIndexes, lookUpPublished, promotionConflicts } from "../registry/lookups.js";
import { checkEngines } from "./docker-engine.js";
import { type AttestedLayer, declareAttestations, runFacts } from "./image-attestations.js";
import { declareIndexes } from "./image-index.js";
import { checkPromotion, type PromotedLayer, Promotion, readSourceLayers } from "./promotion.js";
import { type LayerOutput, LayerTree } from "./tree.js";

/** What a build and a promotion are given: the stack, its config, its registry and the run's settings. */
export interface RunContext {
  readonly stack: string;
  /** The stack file problems name (a CI run's channel file, not its per-change stack's). */
  readonly stackFile: string;
  readonly config: StackConfig;
  /** The folder the catalog is read from, the checkout the images' provenance names. */
  readonly catalogDir: string;
  /** The folder a trust policy's key paths are relative to: the project's (where Pulumi.yaml is). */
  readonly trustKeysDir: string;
  /** A `strata plan` preview: a blocked channel's conflicts and the gate's refusals are warnings, to report them all. */
  readonly planPreview: boolean;
  /** The client the program's own lookups use, with the stack's login. */
  readonly registry: RegistryClient;
  /** The stack's registry login as a secret Output, for the resources (encrypted in the state, never in outputs). */
  readonly registryAuth?: pulumi.Output<RegistryCredentials>;
  /** The same login's values, for cosign's verification in this process. */
  readonly credentials?: RegistryCredentials;
}

/** The layers a run declares, and every tag the stack's state says it published before (carried forward in `published`). */
export interface Declared {
  readonly layers: readonly (LayerOutput | PromotedLayer)[];
  readonly witness: StateWitness;
  /** A signing stack's signature, SBOM and provenance refs and package count, by layer. */
  readonly attested?: ReadonlyMap<string, AttestedLayer>;
}

/**
 * Build every selected layer; adopt tags the channel already holds with the same content, and copy
 * them to CI tags. With several platforms, every layer is built per platform and its tag holds an
 * index over them (core/platform-targets.ts). `signingKey` is given when the stack signs
 * (core/signing-config.ts signingDecision).
 */
export async function declareBuild(context: RunContext, catalog: Catalog, parentPull: ParentPullMode, signingKey?: pulumi.Output<SigningKey>): Promise<Declared> {
  const { config, stack, stackFile, registry, registryAuth } = context;
  const { builds: targets, indexes } = buildTargets(planTargets(catalog, config, stackFile), config);
  // What this stack's state holds as built (a `pulumi stack export`), read while the rest goes on.
  // Read on every run, pushing or not: the ledger of published tags is carried forward by each run (publishedLedger).
  const builtHereRead: Promise<StateRead> = readBuiltLayers(stack, BUILD_RESOURCE_TYPES[config.builder]);
  const apiVersions = await checkEngines(config.engines, config.platforms, config.builder);
  const fingerprints = await fingerprintTargets(targets, config.platform);
  // Before anything is built: what does the channel already hold under these tags? An answer that
  // is neither found nor not found stops the run here (RegistryLookupError), on every channel.
  const view: RegistryView = config.push ? await lookUpPublished(targets, registry, fingerprints) : { published: new Map() };
  const publishedIndexes = config.push && immutableTags(config) ? await lookUpIndexes(indexes, registry) : new Map();
  const state = await builtHereRead;
  if (immutableTags(config) && state.unreadable !== undefined) throw new InputError([unreadableStateProblem(state.unreadable, stackFile, stack)]);
  const builtHere = state.built;
  // Every tag this stack ever published is witnessed by its state, whatever the registry answers.
  const decision = decideChannel(targets, fingerprints, view, config, state.witness);
  const conflicts = [...conflictProblems(decision.conflicts, stackFile, stack), ...indexConflicts(indexes, config, publishedIndexes, view, stackFile, stack, { tags: state.witness, fingerprints })];
  // `strata plan` previews a blocked channel to report every layer's status; a preview pushes nothing.
  if (conflicts.length > 0 && context.planPreview) {
    for (const conflict of conflicts) await pulumi.log.warn(`blocked: ${conflict.message}`);
  } else {
    throwIfAny(conflicts);
  }
  // A layer this stack's state holds as built at this fingerprint and reference stays built; CI runs
  // copy what the channel holds with the same fingerprint; other published ones are adopted.
  const sources = decideSources(targets, fingerprints, view, builtHere, config);
  const dockerModule = config.builder === "docker" ? await import("@pulumi/docker") : undefined;
  // A pool of engines: each layer on one, subtrees together, the same placement on every runner.
  // Engines that name a platform take that platform's builds (checkEngines made sure every platform has one).
  const engineOf = config.engines === undefined ? undefined
    : placeByPlatform(targets.map((target) => ({ name: target.layer.name, platform: target.platform ?? config.platform, ...(target.parent === undefined ? {} : { parent: target.parent }) })), config.engines).engineOf;
  const keptAsBuilt = builtAsIs(targets, fingerprints, builtHere);
  const tree = new LayerTree("layers", {
    targets, config, fingerprints, sources, builtAsIs: keptAsBuilt,
    pullsParentFirst: parentPulls({ layers: targets.map((target) => target.layer.name), builtAsIs: keptAsBuilt, builtHere, ...(engineOf === undefined ? {} : { engineOf }), apiVersions, mode: parentPull }),
    ...(engineOf === undefined ? {} : { engineOf }),
    ...(registryAuth === undefined ? {} : { registryAuth }),
    ...(dockerModule === undefined ? {} : { dockerModule }),
  });
  const perPlatform = new Map(tree.layers.map((layer) => [layer.layer, layer] as const));
  const layers = indexes.length === 0 ? tree.layers
    : [...tree.layers, ...declareIndexes(indexes, perPlatform, { registry: config.registry, immutable: immutableTags(config), ...(registryAuth === undefined ? {} : { registryAuth }) }, tree)];
  if (signingKey === undefined) return { layers, witness: state.witness };
  // Every published image signed and attested, keyed on its digest (image-attestations.ts).
  const facts = await runFacts({ catalogDir: context.catalogDir, stack, config });
  const attested = declareAttestations(layers, { registry: config.registry, targets, indexes, platform: config.platform, facts, copiedFrom: copiedFromOf(sources), adopted: adoptedOf(sources), signingKey, ...(registryAuth === undefined ? {} : { registryAuth }) }, tree);
  return { layers, witness: state.witness, attested };
}

/** Copy another channel's images by digest, refusing to move an immutable tag; with a trust policy, only what it admits. */
export async function declarePromotion(context: RunContext, source: string, trust: TrustPolicy | undefined): Promise<Declared> {
  const { config, stack, stackFile, registry, registryAuth } = context;
  const stateRead = readBuiltLayers(stack, BUILD_RESOURCE_TYPES[config.builder]);
  const plan = planPromotion(await readSourceLayers(source), config, stackFile);
  throwIfAny(plan.problems);
  const state = await stateRead;
  if (config.immutable) {
    if (state.unreadable !== undefined) throw new InputError([unreadableStateProblem(state.unreadable, stackFile, stack)]);
    throwIfAny([...promotionWitnessConflicts(plan.targets, state.witness, stackFile, stack), ...await promotionConflicts(plan.targets, registry, stackFile, stack)]);
  }
  // Before any copy is declared, so a direct `pulumi up` is gated too and a preview shows the refusal.
  // The copies carry the .sig/.att manifests the gate verified, by digest.
  const signatures = trust === undefined ? undefined : await gatePromotion(context, plan.targets, trust);
  return { layers: new Promotion("layers", { targets: plan.targets, registry: config.registry, immutable: config.immutable, ...(signatures === undefined ? {} : { signatures }), ...(registryAuth === undefined ? {} : { registryAuth }) }).layers, witness: state.witness };
}

/**
 * The promotion gate (issue 29, item 5): with a trust policy, every image the promotion would copy
 * must pass it, or nothing is copied. There is no switch to skip it. `strata plan` gets each
 * refusal as a `refused:` warning instead, to show them all.
 */
async function gatePromotion(context: RunContext, targets: readonly PromotionTarget[], policy: TrustPolicy): Promise<ReadonlyMap<string, Readonly<Record<string, string>>>> {
  // Reviewed-ness is asked of the checkout the catalog is in, the one the images' provenance names
  // (runFacts reads the same).
  const keys = readTrustedKeys(policy, context.trustKeysDir, context.stackFile);
  throwIfAny(keys.problems);
  const reviewed = await readReviewedTip(context.catalogDir, policy.reviewedRef, context.stackFile);
  const registryLogin = context.credentials === undefined ? undefined : { registry: context.config.registry, ...context.credentials };
  const { refusals, total, signatures } = await checkPromotion(targets, context.registry, { keys: keys.keys, reviewed, checkoutDir: context.catalogDir }, { cosignBinary: await locateCosign(), ...(registryLogin === undefined ? {} : { registryLogin }) });
  if (refusals.length === 0) return signatures;
  if (context.planPreview) {
    for (const refusal of refusals) await pulumi.log.warn(`refused: ${refusal}`);
    return signatures;
  }
  throw new UserError(refusalMessage(refusals, total, context.stackFile));
}

/**
 * The ledger of every tag this stack has published (ref → digest and fingerprint): the state's
 * witness for an immutable channel, kept after a tag's resource leaves the state. Every run writes
 * it, so a run that publishes nothing (a local build, a CI run's tags, which are not the channel's)
 * carries it forward unchanged rather than drop it.
 */
export function publishedLedger(config: Pick<StackConfig, "push" | "ci">, declared: Declared): pulumi.Output<Record<string, LedgerEntry>> | Record<string, LedgerEntry> {
  if (!config.push || config.ci !== undefined) return nextLedger(declared.witness, []);
  return pulumi.all(declared.layers.map((layer) => pulumi.output(layer.digestRef))).apply((digestRefs) =>
    nextLedger(declared.witness, declared.layers.map((layer, position) => ({ ref: layer.ref, digestRef: digestRefs[position] as string, fingerprint: layer.fingerprint, inputsDigest: layer.inputsDigest }))));
}

/**
 * Pulumi entry point: stack config → catalog → LayerTree (or a Promotion) → stack outputs.
 * Everything with logic lives in src/; this file only reads and wires.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { type Catalog, loadCatalog } from "./src/core/catalog.js";
import { conflictProblems, decideChannel, immutableTags, indexConflicts, nextLedger, promotionWitnessConflicts, type RegistryView, type StateWitness, unreadableStateProblem } from "./src/core/channel.js";
import { CONFIG_KEYS, CONFIG_NAMESPACE, REGISTRY_PASSWORD_KEY, resolveStackConfig, type StackConfig } from "./src/core/config.js";
import { signingDecision, signingKeyFields, signingKeyProblems } from "./src/core/signing-config.js";
import { type AttestedLayer, declareAttestations, runFacts } from "./src/pulumi/image-attestations.js";
import { runIdOf } from "./src/engine/run-logs.js";
import { type SigningKey } from "./src/engine/cosign.js";
import { checkEngines } from "./src/pulumi/docker-engine.js";
import { fingerprintTargets } from "./src/core/fingerprint.js";
import { BUILD_RESOURCE_TYPES } from "./src/core/image-types.js";
import { adoptedOf, builtAsIs, copiedFromOf, decideSources } from "./src/core/layer-origin.js";
import { planTargets } from "./src/core/plan.js";
import { parentPullMode, parentPulls } from "./src/core/parent-pull.js";
import { placeByPlatform } from "./src/core/placement.js";
import { buildTargets } from "./src/core/platform-targets.js";
import { gather, InputError, throwIfAny, UserError } from "./src/core/problems.js";
import { planPromotion, type PromotionTarget, refusalMessage } from "./src/core/promotion-plan.js";
import { parseTrustPolicy, readTrustedKeys, type TrustPolicy } from "./src/core/trust-policy.js";
import { locateCosign } from "./src/engine/cosign.js";
import { readReviewedTip } from "./src/engine/image-verify.js";
import { checkPromotion, type PromotedLayer, Promotion, readSourceLayers } from "./src/pulumi/promotion.js";
import { defaultBlobCache } from "./src/registry/blob-cache.js";
import { RegistryClient } from "./src/registry/client.js";
import { readBuiltLayers, type StateRead } from "./src/engine/stack-state.js";
import { forUser } from "./src/pulumi/user-errors.js";
import { declareIndexes } from "./src/pulumi/image-index.js";
import { type LayerOutput, LayerTree } from "./src/pulumi/tree.js";
import { usePlainStackTraces } from "./src/pulumi/stack-traces.js";
import { keepSecretsFromChildren } from "./src/pulumi/secret-env.js";
import { lookUpIndexes, lookUpPublished, promotionConflicts } from "./src/registry/lookups.js";

usePlainStackTraces();
// The SDK's store holds the config from here on (allConfig reads it in); no child gets it decrypted.
pulumi.runtime.allConfig();
keepSecretsFromChildren();

// Compiled to dist/index.js; the project root is one level up from it.
const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const catalogDir = process.env.STRATA_CATALOG ?? path.join(projectDir, "layers");
const stack = pulumi.getStack();

// Benchmarks ask for this process's peak memory; nothing is written otherwise.
if (process.env.STRATA_MEMORY_REPORT !== undefined) {
  const reportFile = process.env.STRATA_MEMORY_REPORT;
  process.on("exit", () => writeFileSync(reportFile, JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS })));
}
// A CI run's per-change stack has its config copied from the channel's file (strata up): problems name that one.
const stackFile = `Pulumi.${process.env.STRATA_CHANNEL_STACK ?? stack}.yaml`;

const engineConfig = new pulumi.Config(CONFIG_NAMESPACE);
const values: Record<string, unknown> = {};
for (const key of CONFIG_KEYS) {
  const value = engineConfig.get(key);
  if (value !== undefined) values[key] = value;
}
const resolved = resolveStackConfig({ values, file: stackFile, env: process.env });
// The catalog's problems and the config's in one list: a user fixing both sees both in the first run.
// A promoting channel (promoteFrom set; Pulumi.yaml's default is "") builds nothing and reads no catalog.
const promoting = typeof values.promoteFrom === "string" && values.promoteFrom !== "";
const catalogRead = promoting ? undefined : gather(() => loadCatalog(catalogDir, projectDir));
// The channel's trust policy (core/trust-policy.ts): what promotion into it admits.
const trustRead = parseTrustPolicy(values.trust, stackFile);
// Read only where docker.Image builds: a promotion or Strata's own builder never pulls a parent first.
const parentPull = parentPullMode(promoting || values.builder === "strata" ? {} : process.env);
await forUser(async () => throwIfAny([...resolved.problems, ...(catalogRead?.problems ?? []), ...trustRead.problems, ...parentPull.problems]));
const config = resolved.config as StackConfig;

// Registry login: the password is a config secret. Resources get it as a secret Output (encrypted in
// the state, never in outputs); the registry lookups below need its value in this process only.
const registryPassword = engineConfig.getSecret(REGISTRY_PASSWORD_KEY);
const registryAuth = config.registryUsername !== undefined && registryPassword !== undefined
  ? pulumi.secret(pulumi.all([config.registryUsername, registryPassword]).apply(([username, password]) => ({ username, password })))
  : undefined;
const credentials = registryAuth === undefined ? undefined : await new Promise<{ username: string; password: string }>((resolve) => registryAuth.apply(resolve));
// Signing (core/signing-config.ts): the cosign key and its passphrase are config secrets. The
// resources get them as one secret Output (encrypted in the state's inputs, never in outputs); their
// values are read here only to check their form, and no message quotes them.
const signingFields = signingKeyFields(config);
const signingKeySecret = engineConfig.getSecret(signingFields.key);
const signingPassphraseSecret = engineConfig.getSecret(signingFields.passphrase);
const plainOf = (secret: pulumi.Output<string> | undefined): Promise<string | undefined> => (secret === undefined ? Promise.resolve(undefined) : new Promise((resolve) => secret.apply(resolve)));
await forUser(async () => throwIfAny(signingKeyProblems(await plainOf(signingKeySecret), await plainOf(signingPassphraseSecret), stackFile, signingFields)));
const signingKey: pulumi.Output<SigningKey> | undefined = signingKeySecret === undefined || signingPassphraseSecret === undefined ? undefined
  : pulumi.secret(pulumi.all([signingKeySecret, signingPassphraseSecret]).apply(([privateKeyPem, password]) => ({ privateKeyPem, password, ...(signingFields.change ? { change: true as const } : {}) })));
const signing = signingDecision(config, signingKey !== undefined, config.ci !== undefined);
const blobCache = defaultBlobCache();
const registry = await forUser(async () => new RegistryClient({ registry: config.registry, ...(credentials === undefined ? {} : { credentials }), ...(blobCache === undefined ? {} : { blobCache }) }));

/**
 * Build every selected layer; adopt tags the channel already holds with the same content, and copy
 * them to CI tags. With several platforms, every layer is built per platform and its tag holds an
 * index over them (core/platform-targets.ts).
 */
async function build(): Promise<Declared> {
  const catalog = catalogRead?.value as Catalog;
  const { builds: targets, indexes } = buildTargets(planTargets(catalog, config, stackFile), config);
  // What this stack's state holds as built (a `pulumi stack export`), read while the rest goes on.
  // Read on every run, pushing or not: the ledger of published tags is carried forward by each run (below).
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
  if (conflicts.length > 0 && pulumi.runtime.isDryRun() && process.env.STRATA_PLAN === "1") {
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
    pullsParentFirst: parentPulls({ layers: targets.map((target) => target.layer.name), builtAsIs: keptAsBuilt, builtHere, ...(engineOf === undefined ? {} : { engineOf }), apiVersions, mode: parentPull.mode }),
    ...(engineOf === undefined ? {} : { engineOf }),
    ...(registryAuth === undefined ? {} : { registryAuth }),
    ...(dockerModule === undefined ? {} : { dockerModule }),
  });
  const perPlatform = new Map(tree.layers.map((layer) => [layer.layer, layer] as const));
  const layers = indexes.length === 0 ? tree.layers
    : [...tree.layers, ...declareIndexes(indexes, perPlatform, { registry: config.registry, immutable: immutableTags(config), ...(registryAuth === undefined ? {} : { registryAuth }) }, tree)];
  if (!signing.sign || signingKey === undefined) return { layers, witness: state.witness };
  // Every published image signed and attested, keyed on its digest (src/pulumi/image-attestations.ts).
  const facts = await runFacts({ catalogDir, stack, config, runId: process.env.STRATA_RUN_ID ?? runIdOf(new Date()) });
  const attested = declareAttestations(layers, { registry: config.registry, targets, indexes, platform: config.platform, facts, copiedFrom: copiedFromOf(sources), adopted: adoptedOf(sources), signingKey, ...(registryAuth === undefined ? {} : { registryAuth }) }, tree);
  return { layers, witness: state.witness, attested };
}

/** Copy another channel's images by digest, refusing to move an immutable tag. */
async function promote(source: string): Promise<Declared> {
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
  const signatures = trustRead.policy === undefined ? undefined : await gatePromotion(plan.targets, trustRead.policy);
  return { layers: new Promotion("layers", { targets: plan.targets, registry: config.registry, immutable: config.immutable, ...(signatures === undefined ? {} : { signatures }), ...(registryAuth === undefined ? {} : { registryAuth }) }).layers, witness: state.witness };
}

/**
 * The promotion gate (issue 29, item 5): with a trust policy, every image the promotion would copy
 * must pass it, or nothing is copied. There is no switch to skip it. `strata plan` (a preview with
 * STRATA_PLAN=1) gets each refusal as a `refused:` warning instead, to show them all.
 */
async function gatePromotion(targets: readonly PromotionTarget[], policy: TrustPolicy): Promise<ReadonlyMap<string, Readonly<Record<string, string>>>> {
  // Keys are relative to the project folder (where Pulumi.yaml is), the one `strata verify` reads
  // them from: strata up names it (STRATA_PROJECT_DIR), since the engine runs the program in dist/
  // and this language host does not say; run directly, the checkout this program is in. Reviewed-ness is asked of the
  // checkout the catalog is in, the one the images' provenance names (runFacts reads the same).
  const keys = readTrustedKeys(policy, process.env.STRATA_PROJECT_DIR ?? projectDir, stackFile);
  throwIfAny(keys.problems);
  const reviewed = await readReviewedTip(catalogDir, policy.reviewedRef, stackFile);
  const { refusals, total, signatures } = await checkPromotion(targets, registry, { keys: keys.keys, reviewed, checkoutDir: catalogDir }, { cosignBinary: await locateCosign(), ...(credentials === undefined ? {} : { registryLogin: { registry: config.registry, ...credentials } }) });
  if (refusals.length === 0) return signatures;
  if (pulumi.runtime.isDryRun() && process.env.STRATA_PLAN === "1") {
    for (const refusal of refusals) await pulumi.log.warn(`refused: ${refusal}`);
    return signatures;
  }
  throw new UserError(refusalMessage(refusals, total, stackFile));
}

/** The layers this run declares, and every tag the stack's state says it published before (carried forward in `published`). */
interface Declared {
  readonly layers: readonly (LayerOutput | PromotedLayer)[];
  readonly witness: StateWitness;
  /** A signing stack's signature, SBOM and provenance refs and package count, by layer. */
  readonly attested?: ReadonlyMap<string, AttestedLayer>;
}

const declared = await forUser(() => (config.promoteFrom === undefined ? build() : promote(config.promoteFrom)));

export const group = config.group;
export const registryAddress = config.registry;
export const promotedFrom = config.promoteFrom ?? null;
/** The source revision is recorded here, never in build inputs: it would rebuild every layer on every commit. */
export const sourceRevision = process.env.STRATA_SOURCE_REVISION ?? "unknown";
export const layers = Object.fromEntries(declared.layers.map((layer) => [layer.layer, { ...layer, ...declared.attested?.get(layer.layer) }]));
/** Whether this stack's images are signed and attested, and if not, why (the summary says the same). */
export const signed = signing.sign ? `signed and attested (strata:${signingFields.key})` : `not signed (${signing.reason})`;
/**
 * The ledger of every tag this stack has published (ref → digest and fingerprint): the state's
 * witness for an immutable channel, kept after a tag's resource leaves the state. Every run writes
 * it, so a run that publishes nothing (a local build, a CI run's tags, which are not the channel's)
 * carries it forward unchanged rather than drop it.
 */
const publishing = config.push && config.ci === undefined;
export const published = publishing
  ? pulumi.all(declared.layers.map((layer) => pulumi.output(layer.digestRef))).apply((digestRefs) =>
    nextLedger(declared.witness, declared.layers.map((layer, position) => ({ ref: layer.ref, digestRef: digestRefs[position] as string, fingerprint: layer.fingerprint, inputsDigest: layer.inputsDigest }))))
  : nextLedger(declared.witness, []);

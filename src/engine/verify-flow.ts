/**
 * What `strata verify` does before it prints (issue 29, item 7): the trust to verify against (the
 * stack's `strata:trust`, or one `--key`), every image the stack exports (each layer; for a
 * multi-platform layer its index and each platform image), cosign found or built on first need, and
 * the shared verifier's verdict per image (image-verify.ts). The command renders the verdicts.
 *
 * Fails closed: a stack that exports no image, an image whose platforms the registry cannot list, a
 * stack with neither a policy nor a key, each stops with one paragraph; nothing unknown passes.
 */
import path from "node:path";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation/index.js";
import { mapLimited } from "../core/concurrency.js";
import { InputError, type Problem, throwIfAny, UserError } from "../core/problems.js";
import { formatPlatform, platformLayerName } from "../core/platforms.js";
import { parseReference } from "../core/reference.js";
import { holdsSecret, stackConfigSource } from "../core/stack-files.js";
import { parseTrustPolicy, readTrustedKeys, TRUST_KEY, type TrustedKey } from "../core/trust-policy.js";
import { type RegistryClient } from "../registry/client.js";
import { isIndexManifest } from "../registry/copy.js";
import { engineErrorText } from "./events.js";
import { type ImageVerdict, type VerifyTarget } from "./image-verify.js";
import { type ReviewedTip } from "./source-info.js";
import { admitParentsFirst, NESTED_INDEX, NESTED_INDEX_FIX, type VerifyFailure } from "../core/trust-verdict.js";
import { engineEnv, projectDirOf, type ProjectContext, type StackSelection, stackConfigOf } from "./project.js";
import { registryAccessFor } from "./registry-access.js";

/** Registry reads at once (an index's platforms, what each exported tag holds): one each, about 400 at N=200, where a registry far away makes each a round trip. */
const REGISTRY_CONCURRENCY = 16;

export interface VerifyRequest extends StackSelection {
  readonly stack: string;
  /** A PEM public key: verify against it alone (the stack's policy, if any, is not used; reviewed is not checked). */
  readonly key?: string;
}

export interface VerifyOutcome {
  /** What was trusted: the stack file's `strata:trust`, or the key given. */
  readonly trustedBy: string;
  /** The trust policy's reviewed ref and the commit it named when read (none with --key). */
  readonly reviewed?: ReviewedTip;
  readonly verdicts: readonly ImageVerdict[];
}

/** One entry of the stack's `layers` output, as far as verification reads it. */
export interface ExportedLayer {
  readonly layer: string;
  /** The tag users pull (`registry/group/image:tag`). */
  readonly ref?: string;
  readonly digestRef?: string;
  /** A multi-platform layer built by this stack: platform → its image's digest reference in the index's repository. */
  readonly platforms?: Readonly<Record<string, string>>;
}

/**
 * The images a stack exports, from its `layers` output. Pure. A multi-platform layer's index and
 * each platform image in the index's repository (its `platforms`); a per-platform entry
 * (`tools@linux-arm64`) is the platform image in its own repository, its platform named by the
 * index it belongs to. Entries without `platforms` are returned in `unexpanded`: an index among
 * them (a promoted one) is only known from the registry.
 */
export function exportedTargets(layers: Readonly<Record<string, ExportedLayer>>): { targets: VerifyTarget[]; unexpanded: VerifyTarget[] } {
  const entries = Object.entries(layers).map(([name, entry]) => ({ name: typeof entry?.layer === "string" ? entry.layer : name, entry }));
  const platformOf = new Map<string, { layer: string; platform: string }>();
  for (const { name, entry } of entries) {
    for (const platform of Object.keys(entry.platforms ?? {})) platformOf.set(platformLayerName(name, platform), { layer: name, platform });
  }
  const targets: VerifyTarget[] = [];
  const unexpanded: VerifyTarget[] = [];
  for (const { name, entry } of entries) {
    // A layer without a pushed digest (push false) is still a target: the verifier refuses what is not a digest reference.
    const digestRef = typeof entry.digestRef === "string" ? entry.digestRef : "(no digest in the stack's outputs)";
    const perPlatform = platformOf.get(name);
    if (perPlatform !== undefined) {
      targets.push({ layer: name, platform: perPlatform.platform, digestRef });
      continue;
    }
    if (entry.platforms !== undefined) {
      targets.push({ layer: name, digestRef });
      for (const [platform, platformRef] of Object.entries(entry.platforms)) targets.push({ layer: name, platform, digestRef: platformRef });
      continue;
    }
    unexpanded.push({ layer: name, digestRef });
  }
  return { targets, unexpanded };
}

/**
 * Reads every target's manifest and adds each image index's platform images after it (an index the
 * stack promoted carries no `platforms` output): the registry says what each digest is. The
 * platform images found that way are read too. `missing`: the digest references the registry
 * answered 404 for. cosign, given a digest reference, reads only its `.sig`/`.att` tags, so it would
 * verify an image that is gone; withMissingManifests refuses those. A registry that cannot answer
 * stops the run: an index whose platforms are unknown would leave images unverified.
 */
/**
 * Strata reads tags and manifests at the stack's `strata:registry` only, while cosign verifies at
 * the registry a reference names: an output naming another registry (the setting changed since the
 * last up) would be verified at one and read at the other. Stops there, naming both.
 */
function sameRegistry(ref: string, named: string, configured: string): void {
  if (named === configured) return;
  throw new UserError(`${ref} is at registry ${named}, but the stack's strata:registry is ${configured}, where Strata reads tags and manifests: what cosign verified there and what Strata read here would be two registries' answers, so nothing is verified; fix: run scripts/strata up on the stack (its outputs then name ${configured}), or set strata:registry back to ${named}`);
}

export async function withIndexEntries(targets: readonly VerifyTarget[], client: Pick<RegistryClient, "manifest" | "registry">): Promise<{ targets: VerifyTarget[]; missing: ReadonlySet<string>; nested: ReadonlySet<string> }> {
  const missing = new Set<string>();
  const nested = new Set<string>();
  const read = new Set<string>();
  const readOne = async (target: VerifyTarget): Promise<Awaited<ReturnType<RegistryClient["manifest"]>> | "not read"> => {
    let reference;
    try {
      reference = parseReference(target.digestRef);
    } catch {
      return "not read"; // Not a reference: the verifier refuses it.
    }
    if (reference.digest === undefined) return "not read";
    sameRegistry(target.digestRef, reference.registry, client.registry);
    read.add(target.digestRef);
    let found;
    try {
      found = await client.manifest(reference.path, reference.digest);
    } catch (error) {
      throw new UserError(`cannot tell what ${target.digestRef} (layer ${target.layer}) is: registry ${reference.registry} answered ${(error as Error).message}; fix: make the registry reachable (scripts/services.sh status) and run strata verify again`);
    }
    if (found === undefined) missing.add(target.digestRef);
    return found;
  };
  const expanded = await mapLimited(targets, REGISTRY_CONCURRENCY, async (target): Promise<VerifyTarget[]> => {
    const found = await readOne(target);
    if (found === "not read" || found === undefined) return [target];
    // A platform's image that is itself an index (its images would go unverified): refused, not looked into.
    if (target.platform !== undefined && isIndexManifest(found.mediaType, found.manifest)) {
      nested.add(target.digestRef);
      return [target];
    }
    const { registry, path: repository } = parseReference(target.digestRef);
    return [target, ...(found.manifest.manifests ?? []).map((entry) => ({ layer: target.layer, platform: entry.platform === undefined ? "unknown" : formatPlatform(entry.platform), digestRef: `${registry}/${repository}@${entry.digest}` }))];
  });
  const all = expanded.flat();
  // The platform images only the indexes named, each digest once (the first target naming it).
  const unread = new Map<string, VerifyTarget>();
  for (const target of all) if (!read.has(target.digestRef) && !unread.has(target.digestRef)) unread.set(target.digestRef, target);
  // An index among an index's entries is not looked into (its images would go unverified): refused (withMissingManifests).
  await mapLimited([...unread.values()], REGISTRY_CONCURRENCY, async (target) => {
    const found = await readOne(target);
    if (found !== "not read" && found !== undefined && isIndexManifest(found.mediaType, found.manifest)) nested.add(target.digestRef);
  });
  return { targets: all, missing, nested };
}

/**
 * Refuses each verdict about a digest the registry does not hold (withIndexEntries' `missing`), and
 * about an index an index names (`nested`, whose own images are not verified), whatever cosign said
 * of its tags. Pure.
 */
export function withMissingManifests(verdicts: readonly ImageVerdict[], missing: ReadonlySet<string>, nested: ReadonlySet<string> = new Set()): ImageVerdict[] {
  return verdicts.map((verdict) => {
    if (missing.has(verdict.digestRef)) {
      return { ...verdict, admitted: false, failures: [...verdict.failures, { what: "the registry holds no manifest for it (HTTP 404): the image the stack exported is gone, whatever its signature tags still say", fix: `find out who deleted it (the registry's log), then publish the layer again as a new version on the channel that builds it (strata bump --stack <that channel> --minor ${verdict.layer}, then strata up there, and promote it along to this stack): the state still records it as published, so an up alone does not push it again` }] };
    }
    if (nested.has(verdict.digestRef)) return { ...verdict, admitted: false, failures: [...verdict.failures, { what: NESTED_INDEX, fix: NESTED_INDEX_FIX }] };
    return verdict;
  });
}

/**
 * What each exported tag holds now, against the digest the stack exported. Pure. A tag that holds
 * another digest, or is gone, refuses that layer's verdict: what users pull is then not what was
 * verified. `held` maps each tag ref to the digest the registry answered, undefined for "no such tag".
 */
export function withTagChecks(verdicts: readonly ImageVerdict[], layers: Readonly<Record<string, ExportedLayer>>, held: ReadonlyMap<string, string | undefined>): ImageVerdict[] {
  const failures = new Map<string, VerifyFailure>();
  for (const [name, entry] of Object.entries(layers)) {
    if (typeof entry?.digestRef !== "string") continue; // No digest: the verifier refuses it already.
    const layerName = typeof entry.layer === "string" ? entry.layer : name;
    if (typeof entry.ref !== "string" || !held.has(entry.ref)) {
      // Without a tag Strata can read, what users pull cannot be compared with what was verified.
      failures.set(`${layerName}\n${entry.digestRef}`, { what: `the stack exports no tag that can be read for it (${typeof entry.ref === "string" ? `"${entry.ref}" is not a tag reference` : "no ref in its outputs"}): what users pull cannot be told`, fix: "publish the stack again with this Strata (scripts/strata up), which exports each layer's tag" });
      continue;
    }
    const exported = entry.digestRef.slice(entry.digestRef.indexOf("@") + 1);
    const now = held.get(entry.ref);
    if (now === exported) continue;
    failures.set(`${layerName}\n${entry.digestRef}`, {
      what: now === undefined ? `its tag ${entry.ref} is gone from the registry` : `its tag ${entry.ref} now holds ${now}, not the ${exported} the stack exported (layer ${layerName}): what users pull is not what was verified`,
      fix: now === undefined ? "publish it again (scripts/strata up) or find out who deleted the tag" : "find out who moved the tag (the registry's log); publish the stack again to put back what it exported",
    });
  }
  return verdicts.map((verdict) => {
    const failure = failures.get(`${verdict.layer}\n${verdict.digestRef}`);
    return failure === undefined ? verdict : { ...verdict, admitted: false, failures: [...verdict.failures, failure] };
  });
}

/**
 * The verdicts verify reports: cosign's and git's (verifyImages), each refused too when the image
 * it was built on is (admitParentsFirst), when the registry no longer holds its manifest or it is
 * an index inside an index (withMissingManifests), and when its layer's tag holds another digest or
 * none (withTagChecks). Pure; one place, so a test of it is a test of what verify says.
 */
export function reportedVerdicts(verdicts: readonly ImageVerdict[], read: { readonly missing: ReadonlySet<string>; readonly nested: ReadonlySet<string> }, layers: Readonly<Record<string, ExportedLayer>>, held: ReadonlyMap<string, string | undefined>): ImageVerdict[] {
  // An index inside an index is refused for the images under it, which nothing verified: that
  // passes on to what was built on it. A manifest gone or a tag moved says nothing of the bytes.
  const trusted = admitParentsFirst(withMissingManifests(verdicts, new Set(), read.nested));
  return withTagChecks(withMissingManifests(trusted, read.missing), layers, held);
}

/** What each exported tag holds now; a registry that cannot answer stops the run (an unknown is no pass). */
export async function heldDigests(layers: Readonly<Record<string, ExportedLayer>>, client: Pick<RegistryClient, "manifest" | "registry">): Promise<Map<string, string | undefined>> {
  const tags = new Map<string, { path: string; tag: string; registry: string }>();
  for (const entry of Object.values(layers)) {
    if (typeof entry?.ref !== "string" || tags.has(entry.ref)) continue;
    let reference;
    try {
      reference = parseReference(entry.ref);
    } catch {
      continue; // Not a reference: the digest's own verdict stands.
    }
    if (reference.tag === undefined) continue;
    sameRegistry(entry.ref, reference.registry, client.registry);
    tags.set(entry.ref, { path: reference.path, tag: reference.tag, registry: reference.registry });
  }
  const held = await mapLimited([...tags], REGISTRY_CONCURRENCY, async ([ref, reference]) => {
    try {
      return [ref, (await client.manifest(reference.path, reference.tag))?.digest] as const;
    } catch (error) {
      throw new UserError(`cannot tell what ${ref} holds now: registry ${reference.registry} answered ${(error as Error).message}; fix: make the registry reachable (scripts/services.sh status) and run strata verify again`);
    }
  });
  return new Map(held);
}

/** The key given with --key, read and checked as a policy's keys are (trust-policy.ts), its problems named as the option's. */
function givenKey(key: string, context: ProjectContext): TrustedKey[] {
  const read = readTrustedKeys({ keys: [key], reviewedRef: "unused" }, context.cwd, "command line", { inProjectOnly: false });
  throwIfAny(read.problems.map((problem): Problem => ({ ...problem, file: "command line", field: "--key" })));
  return read.keys;
}

/** Pulumi could not open or read the stack: what to check. */
function stackUnreadable(stackName: string, error: unknown): UserError {
  return new UserError(`Pulumi could not open or read stack ${stackName}: ${engineErrorText(error instanceof Error ? error.message : String(error))}; fix: check the stack's name, PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE`);
}

/** The other way to verify, when a stack's trust policy cannot be read or is not set: one key on the command line. */
function keyOptionFix(stackName: string): string {
  return `name the public key to verify with: strata verify --stack ${stackName} --key cosign.pub`;
}

/** `strata:trust` as the engine decrypts it (a JSON text for a structured value); a failure says how to read it or do without. */
async function secretTrust(openStack: () => Promise<Stack>, request: VerifyRequest, file: string): Promise<string> {
  const withoutIt = `${keyOptionFix(request.stack)} (a trust policy holds public keys' paths and a ref, nothing secret: it may be stored in plain text)`;
  // The Automation API reads a stack's config from the stack's own file (its getConfig takes no
  // config file), so a secret in a file given with --config is not read here.
  if (request.config !== undefined) {
    throw new InputError([{ file, field: `strata:${TRUST_KEY}`, message: "is stored as a secret in a config file given with --config, which strata verify does not decrypt", fix: `keep it in the stack's own file, or ${withoutIt}` }]);
  }
  let stack: Stack;
  try {
    stack = await openStack();
  } catch (error) {
    throw stackUnreadable(request.stack, error);
  }
  try {
    return (await stack.getConfig(`strata:${TRUST_KEY}`)).value;
  } catch (error) {
    throw new UserError(`strata:${TRUST_KEY} in ${file} is stored as a secret, and Pulumi could not decrypt it for stack ${request.stack}: ${engineErrorText(error instanceof Error ? error.message : String(error))}; fix: set PULUMI_CONFIG_PASSPHRASE (or the stack's secrets provider) as for pulumi up, or ${withoutIt}`);
  }
}

export async function verifyFlow(request: VerifyRequest, context: ProjectContext, progress: (text: string) => void): Promise<VerifyOutcome> {
  const projectDir = projectDirOf(request, context);
  const env = engineEnv(context);
  // Opened once, when first needed: for a trust policy stored as a secret, and for the stack's outputs.
  let opened: Promise<Stack> | undefined;
  const openStack = (): Promise<Stack> => (opened ??= LocalWorkspace.selectStack({ stackName: request.stack, workDir: projectDir }, { envVars: env }));
  const { config, file } = stackConfigOf(request, context);
  const values = stackConfigSource({ projectDir, stack: request.stack, ...(request.config === undefined ? {} : { configFile: path.resolve(context.cwd, request.config) }), env: context.env, displayRoot: context.cwd }).values;
  let keys: TrustedKey[];
  let reviewedRef: string | undefined;
  let trustedBy: string;
  if (request.key !== undefined) {
    keys = givenKey(request.key, context);
    trustedBy = `the key ${request.key} (--key)`;
    if (values[TRUST_KEY] !== undefined) progress(`--key: the images are checked against ${request.key} alone; the stack's strata:${TRUST_KEY} (its keys and reviewed ref) is not read, so reviewed is not checked\n`);
  } else {
    // A policy stored as a secret, whole or in some of its fields, is read through the engine, which
    // decrypts it, as the promotion gate's program gets it; the stack file holds ciphertext there.
    const policyValue = holdsSecret(values[TRUST_KEY]) ? await secretTrust(openStack, request, file) : values[TRUST_KEY];
    const parsed = parseTrustPolicy(policyValue, file);
    throwIfAny(parsed.problems);
    if (parsed.policy === undefined) {
      throw new InputError([{ file, field: `strata:${TRUST_KEY}`, message: `is not set: stack ${request.stack} has no trust policy to verify its images against`, fix: `add one to ${file} (strata:${TRUST_KEY}: {keys: [keys/ci.pub], reviewedRef: origin/main}), or ${keyOptionFix(request.stack)}` }]);
    }
    const read = readTrustedKeys(parsed.policy, projectDir, file);
    throwIfAny(read.problems);
    keys = read.keys;
    reviewedRef = parsed.policy.reviewedRef;
    trustedBy = `strata:${TRUST_KEY} in ${file}`;
  }
  const { readReviewedTip, verifyImages } = await import("./image-verify.js");
  // The provenance's commit is the catalog checkout's (source-info.ts): that checkout answers
  // whether it is reviewed, as in the gate; its reviewed ref read once, before the stack's outputs
  // or any image are read.
  const catalogDir = path.resolve(context.cwd, request.catalog ?? path.join(projectDir, "layers"));
  const reviewed = reviewedRef === undefined ? undefined : await readReviewedTip(catalogDir, reviewedRef, file);

  let layers: Record<string, ExportedLayer>;
  try {
    layers = ((await (await openStack()).outputs()).layers?.value ?? {}) as Record<string, ExportedLayer>;
  } catch (error) {
    throw stackUnreadable(request.stack, error);
  }
  const exported = exportedTargets(layers);
  if (exported.targets.length + exported.unexpanded.length === 0) {
    throw new UserError(`stack ${request.stack} exports no images (its layers output is empty): there is nothing to verify, which is not a pass; fix: run scripts/strata up --stack ${request.stack} first`);
  }
  const { client, credentials } = await registryAccessFor(config, { projectDir, stack: request.stack, env });
  // Every index is expanded through the registry too, not only through the stack's `platforms`
  // output: an index entry that output does not list would otherwise go unverified.
  const read = await withIndexEntries([...exported.targets, ...exported.unexpanded], client);
  const seen = new Set<string>();
  // The stack's own order first (as before), then what only the registry's indexes name.
  const targets = [...exported.targets, ...read.targets].filter((target) => {
    const key = `${target.layer}\n${target.digestRef}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });

  const { locateCosign } = await import("./cosign.js");
  if (context.env.STRATA_COSIGN === undefined) progress("cosign: making sure the pinned cosign is available (built once per machine; scripts/cosign-tools.sh)\n");
  const cosignBinary = await locateCosign({ ...process.env, ...context.env });
  const verdicts = await verifyImages(targets, { keys, reviewed, checkoutDir: catalogDir }, {
    cosignBinary,
    ...(env.DOCKER_CONFIG === undefined ? {} : { env: { DOCKER_CONFIG: env.DOCKER_CONFIG } }),
    // cosign reads the registry as the client above does: with the stack's login, when it has one.
    ...(credentials === undefined ? {} : { registryLogin: { registry: config.registry, ...credentials } }),
    // The same client reads the signatures itself when a key's batch fails (a key that made none is not asked image by image).
    signatureReader: client,
  });
  return { trustedBy, ...(reviewed === undefined ? {} : { reviewed }), verdicts: reportedVerdicts(verdicts, read, layers, await heldDigests(layers, client)) };
}

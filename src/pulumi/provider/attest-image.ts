/**
 * What `strata:index:ImageAttestationsSet` does for each image it signs (issue 29): the SBOM of the pushed
 * image read from its registry layers (registry/image-files.ts, core/sbom.ts), its SLSA provenance
 * (core/provenance.ts), then the digest signed and both attested in this process
 * (registry/signatures.ts, in the bytes cosign v2 writes: core/cosign-format.ts), in cosign's
 * classic `.sig`/`.att` tags of the image's own repository. The cosign CLI is not needed to sign:
 * one `cosign sign` and two `cosign attest` processes cost ~2 CPU-s an image (scrypt each time), an
 * in-process signature a few ms once the key is unlocked, once per provider process (KeyUnlocker).
 *
 * Never signs a digest twice (a second signature appends a layer to the `.sig` manifest): a `.sig`
 * tag that holds this key's signature over this digest (an adopted image an earlier run signed, or
 * a run of the set that failed after signing it) is left as it is, and only the attestation
 * types the `.att` manifest lacks from this key are written. Whether another key's signature beside
 * it is trusted is the verifier's question (the promotion gate, `cosign verify`), never this one's.
 */
import { createHmac, randomBytes } from "node:crypto";
import { attestationTag, CHANGE_KEY, type CosignKey, type KeySource, PREDICATE_TYPES, signatureTag, unlockCosignKey } from "../../core/cosign-format.js";
import { provenancePredicateBytes } from "../../core/provenance.js";
import { parseReference, referenceProblems } from "../../core/reference.js";
import { type ImagePackage, imagePackages, packageKeyDelta, sbomPackageKeys, serializeSpdx, spdxCreated, spdxDocument } from "../../core/sbom.js";
import { type SigningKey } from "../../engine/cosign.js";
import { RegistryError } from "../../registry/client.js";
import { type ImageFilesRegistry, imageFiles, type LayerChangesets } from "../../registry/image-files.js";
import { attestImage as writeAttestations, type SignatureRegistry, signImages } from "../../registry/signatures.js";
import { type ImageAttestationsInputs, type ImageAttestationsOutputs, type ImageAttestationsSetInputs } from "./image-attestations-inputs.js";
import { mapLimited } from "../../core/concurrency.js";

/** What attesting an image needs of a registry: reading its files, and writing the cosign tags. */
export type AttestationRegistry = ImageFilesRegistry & SignatureRegistry;

/**
 * The stack's key unlocked once per provider process, whatever number of images it signs: the
 * scrypt of cosign's key format costs ~0.5 CPU-s. Kept by an HMAC of the PEM and passphrase under a
 * key of this process alone, so what is kept is no faster guessing oracle than the PEM itself; a
 * key that does not open is remembered too (it will not open for the next image either), and its
 * error names the passphrase's field (strata:signingKeyPassphrase, or strata:changeSigningKeyPassphrase in a change's run), never the passphrase.
 */
export class KeyUnlocker {
  private readonly secret = randomBytes(32);
  private readonly unlocked = new Map<string, Promise<CosignKey>>();
  /** Times the scrypt work was done (for tests and measurements). */
  unlocks = 0;

  constructor(private readonly unlock: (pem: string, passphrase: string, source?: KeySource) => Promise<CosignKey> = unlockCosignKey) {}

  key(signingKey: SigningKey): Promise<CosignKey> {
    const id = createHmac("sha256", this.secret).update(signingKey.privateKeyPem).update("\0").update(signingKey.password).update(signingKey.change === true ? "\0change" : "").digest("hex");
    let found = this.unlocked.get(id);
    if (found === undefined) {
      this.unlocks++;
      // Its errors name the fields the run read the key from: a change's run never reads strata:signingKey.
      found = this.unlock(signingKey.privateKeyPem, signingKey.password, ...(signingKey.change === true ? [CHANGE_KEY] : []));
      this.unlocked.set(id, found);
    }
    return found;
  }
}

/** The SBOM of one image, or of an index: the packages of every platform image, each listed once. */
export async function sbomOf(client: ImageFilesRegistry, inputs: Pick<ImageAttestationsInputs, "registry" | "repository" | "digest" | "tag">, tool: string, changesets?: LayerChangesets): Promise<{ bytes: string; packages: number; packageKeys: ReadonlySet<string> }> {
  const image = `${inputs.registry}/${inputs.repository}@${inputs.digest}`;
  const found = await client.manifest(inputs.repository, inputs.digest);
  if (found === undefined) throw new RegistryError(`${image}: the registry has no such manifest (HTTP 404), so its SBOM cannot be read and it is not signed; push it again (strata up)`, 404, "no such manifest");
  const children = found.manifest.manifests;
  const subject = { ref: `${inputs.registry}/${inputs.repository}:${inputs.tag}`, digest: inputs.digest, tool };
  if (children === undefined) {
    const read = await imageFiles(client, inputs.repository, inputs.digest, undefined, changesets, found);
    const architecture = read.config.architecture === undefined ? undefined : `${read.config.architecture}${read.config.variant === undefined ? "" : `/${read.config.variant}`}`;
    const document = spdxDocument({ ...subject, ...(architecture === undefined ? {} : { architecture }), ...(read.config.created === undefined ? {} : { created: read.config.created }) }, imagePackages(read.files));
    return { bytes: serializeSpdx(document), packages: document.packages.length - 1, packageKeys: sbomPackageKeys(document) };
  }
  // An index: what a pull of any platform can bring. A package the same in two platforms (same purl,
  // same file: `all` packages) is listed once; the time is the newest platform image's.
  const union = new Map<string, ImagePackage>();
  let created: string | undefined;
  for (const child of children) {
    const read = await imageFiles(client, inputs.repository, child.digest, undefined, changesets);
    for (const found of imagePackages(read.files)) union.set(`${found.purl}\0${found.foundIn}`, found);
    // Each platform's time read as the SBOM reads one (a time that is no moment refused, whichever platform's it is), in UTC: compared as text.
    const time = read.config.created;
    if (time === undefined || time === "") continue;
    const utc = spdxCreated(time, `${inputs.registry}/${inputs.repository}@${child.digest}`);
    if (created === undefined || utc > created) created = utc;
  }
  const document = spdxDocument({ ...subject, ...(created === undefined ? {} : { created }) }, [...union.values()]);
  return { bytes: serializeSpdx(document), packages: document.packages.length - 1, packageKeys: sbomPackageKeys(document) };
}

/** What a provider process keeps across the images it attests: the run, the unlocked key, the layers it read. */
export interface AttestationContext {
  /** The run's id, what the provenance's invocationId says (not an input: it differs on every run). */
  readonly runId: string;
  readonly keys: KeyUnlocker;
  readonly changesets?: LayerChangesets;
  /**
   * The package keys (core/sbom.ts sbomPackageKeys) of the images this process read an SBOM of, by `repository@digest`: what a child's
   * "packages added" is counted against, its parent usually signed by the same process before it.
   */
  readonly packageKeys?: Map<string, Promise<ReadonlySet<string> | undefined>>;
}

/**
 * The package keys of the image a layer was made on (`registry/repository@sha256:…`), to count what the
 * layer added: from the context when this process read it already, else its SBOM read again (its
 * layers' files are in the context's changesets). Undefined when it cannot be read (another
 * registry, a registry that fails): the count is only shown, so it is then shown as not known, and
 * the signing goes on; what is signed does not depend on it.
 */
function parentPackageKeys(client: ImageFilesRegistry, registry: string, parent: string, tool: string, context: AttestationContext): Promise<ReadonlySet<string> | undefined> {
  const reference = referenceProblems(parent).length === 0 ? parseReference(parent) : undefined;
  if (reference?.digest === undefined || reference.registry !== registry) return Promise.resolve(undefined);
  const { path: repository, digest } = reference;
  const key = `${repository}@${digest}`;
  let found = context.packageKeys?.get(key);
  if (found === undefined) {
    found = sbomOf(client, { registry, repository, digest, tag: "parent" }, tool, context.changesets).then((sbom) => sbom.packageKeys, () => undefined);
    context.packageKeys?.set(key, found);
  }
  return found;
}

export async function attestImage(client: AttestationRegistry, inputs: ImageAttestationsInputs, context: AttestationContext): Promise<ImageAttestationsOutputs> {
  const { provenanceFacts: facts } = inputs;
  // The key first: a passphrase that does not open it fails before any registry read.
  const key = await context.keys.key(inputs.signingKey);
  const tool = `Strata-${facts.strataVersion}`;
  const sbom = await sbomOf(client, inputs, tool, context.changesets);
  context.packageKeys?.set(`${inputs.repository}@${inputs.digest}`, Promise.resolve(sbom.packageKeys));
  const parent = facts.parent === null ? undefined : await parentPackageKeys(client, inputs.registry, facts.parent, tool, context);
  // A root layer added every package its SBOM lists; a child, those its parent's does not (by purl and place, as `packages` counts them).
  const packagesAdded = facts.parent === null ? sbom.packages : parent === undefined ? undefined : packageKeyDelta(parent, sbom.packageKeys).added;
  const predicate = provenancePredicateBytes({
    image: `${inputs.registry}/${inputs.repository}`,
    digest: inputs.digest,
    source: facts.source,
    fingerprint: facts.fingerprint,
    layer: facts.layer,
    ...(facts.parent === null ? {} : { parent: facts.parent }),
    ...(facts.copiedFrom === undefined ? {} : { copiedFrom: facts.copiedFrom }),
    ...(facts.adopted === true ? { adopted: true as const } : {}),
    ...(facts.adoptedAncestor === undefined ? {} : { adoptedAncestor: facts.adoptedAncestor }),
    buildArgs: facts.buildArgs,
    platform: facts.platform,
    stack: facts.stack,
    channel: facts.channel,
    strataVersion: facts.strataVersion,
    runId: context.runId,
    engine: facts.engine,
  });
  // Two tags, written apart: the signature and both attestations (one `.att` manifest, one write).
  const [[signed], attested] = await Promise.all([
    signImages(client, [inputs.digestRef], key),
    writeAttestations(client, inputs.digestRef, [
      { predicateType: PREDICATE_TYPES.spdxjson, predicate: Buffer.from(sbom.bytes, "utf8") },
      { predicateType: PREDICATE_TYPES.slsaprovenance1, predicate },
    ], key),
  ]);
  const [sbomAttestationDigest, provenanceAttestationDigest] = attested.layers;
  if (sbomAttestationDigest === undefined || provenanceAttestationDigest === undefined) throw new Error(`attestImage: ${inputs.digestRef}: the .att write named ${attested.layers.length} layers for the 2 attestations asked for`);
  const at = (tagOf: (digest: string) => string): string => `${inputs.registry}/${inputs.repository}:${tagOf(inputs.digest)}`;
  return {
    digestRef: inputs.digestRef,
    signature: at(signatureTag),
    sbom: at(attestationTag),
    provenance: at(attestationTag),
    packages: sbom.packages,
    ...(packagesAdded === undefined ? {} : { packagesAdded }),
    // The layers the `.att` holds, found or written: an earlier run's provenance names its own run.
    sbomAttestationDigest,
    provenanceAttestationDigest,
    // Nothing written for it: a run that signed it and was stopped before its attestations is not "before".
    signedBefore: signed?.written === false && !attested.written,
  };
}

/**
 * Images signed at once: each is 19 registry requests (its SBOM's 3 reads, its `.sig` and `.att`),
 * and one or two more when its parent was not signed earlier by this process (the parent's manifest
 * and config, for the packages it added; its layers are read once a process), and a few ms of CPU
 * once the key is unlocked.
 */
const ATTEST_CONCURRENCY = 8;

/**
 * The set's step: signs and attests the images named in `sign` (all of them on create; on an update
 * those whose digest its state has not signed), keeps `kept` (the others' outputs from the state).
 * The outputs are the registry and, by image name, what was signed where: never the key, the login,
 * or the provenance facts (the state holds those once, as inputs). A failure fails the step and the
 * engine keeps the state as it was: the next run signs the same images again and finds what this one
 * wrote (attestImage never signs a digest twice).
 */
export async function attestImageSet(client: AttestationRegistry, inputs: ImageAttestationsSetInputs, sign: readonly string[], kept: Readonly<Record<string, unknown>>, context: AttestationContext): Promise<{ registry: string; attested: Record<string, unknown> }> {
  const signed = await mapLimited(sign, ATTEST_CONCURRENCY, async (name) => {
    const image = inputs.images.get(name);
    if (image === undefined) throw new Error(`ImageAttestationsSet: no image "${name}" in the set's inputs`);
    return [name, await attestImage(client, image, context)] as const;
  });
  return { registry: inputs.registry, attested: { ...kept, ...Object.fromEntries(signed) } };
}

/**
 * Inputs of `strata:index:ImageAttestationsSet`: images a signing stack publishes (each layer's; a
 * multi-platform layer's index and each platform's image), keyed by name, each with its digest
 * reference and what its provenance says about it. No Pulumi import. Which images a set holds, and
 * why sets rather than one resource per image: core/attestation-sets.ts.
 *
 * Which images a step signs, and what it keeps: core/attestation-steps.ts.
 */
import { type SigningKey } from "../../engine/cosign.js";
import { type BuildEngine, type SourceState } from "../../core/provenance.js";
import { parseReference } from "../../core/reference.js";
import { type RegistryCredentials } from "../../registry/client.js";
import { parseCredentials, unwrapSecret } from "./layer-image-inputs.js";

/**
 * What one run's provenance says of every image it attests: where it came from, and who built it.
 * Not the run id, which differs on every run: a set whose inputs differ is written to the state
 * again on a run that signs nothing. The provider takes the run id from the run when it signs
 * (STRATA_RUN_ID). The commit in `source` differs on a new commit too: the provider's check keeps
 * the facts each image was signed with while its digest stays (core/attestation-steps.ts).
 */
export interface RunFacts {
  readonly stack: string;
  readonly channel: string;
  readonly strataVersion: string;
  readonly engine: BuildEngine;
  readonly source: SourceState;
}

/** What the provenance of one image records beyond its digest (core/provenance.ts ProvenanceInput): the run's facts and the image's own. */
export interface ProvenanceFacts extends RunFacts {
  readonly layer: string;
  readonly fingerprint: string;
  /** The parent image's `registry/repo@sha256:…` the image was made on, null for a root layer. */
  readonly parent: string | null;
  /**
   * The `registry/repo@sha256:…` the image was copied from (a CI run's unchanged layer); absent, not
   * null, for a built image, so a built image's inputs are what they were before this field existed.
   */
  readonly copiedFrom?: string;
  /**
   * True when this run found the image in the registry under its own tag with its fingerprint
   * (pushed by another runner, or by a run stopped before it was recorded) and recorded it as it is:
   * the engine and run named beside it are this run's, not those of the run that built it. Absent
   * for an image this run built, as copiedFrom is.
   */
  readonly adopted?: true;
  /** The nearest ancestor this run adopted, which the image was built on (core/provenance.ts); absent when there is none. */
  readonly adoptedAncestor?: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  /** `os/arch`; an index's platforms joined by commas. */
  readonly platform: string;
}

/** One image to sign and attest, with the set's key and login: what attest-image.ts takes. */
export interface ImageAttestationsInputs {
  /** `host[:port]` */
  readonly registry: string;
  /** `group/image` inside the registry (from digestRef). */
  readonly repository: string;
  /** `sha256:<hex>` of the image manifest or index (from digestRef). */
  readonly digest: string;
  /** `registry/group/image@sha256:<hex>`: what is signed. */
  readonly digestRef: string;
  /** The tag the image was published under: the SBOM document's name (`registry/group/image:tag`). */
  readonly tag: string;
  /** Named apart from the `provenance` output (a ref). */
  readonly provenanceFacts: ProvenanceFacts;
  readonly signingKey: SigningKey;
  readonly registryAuth?: RegistryCredentials;
}

export interface ImageAttestationsSetInputs {
  readonly registry: string;
  /** Name → the image, parsed (registry, repository and digest from its digestRef), key and login from the set. */
  readonly images: ReadonlyMap<string, ImageAttestationsInputs>;
  readonly signingKey: SigningKey;
  readonly registryAuth?: RegistryCredentials;
}

/** What the set reports of each image: where its signature and attestations are, and what the SBOM holds. */
export interface ImageAttestationsOutputs {
  /** `registry/group/image@sha256:<hex>`: the image these are about (a later run signs a new digest under the same name). */
  readonly digestRef: string;
  /** `registry/group/image:sha256-<hex>.sig`: cosign's classic signature tag. */
  readonly signature: string;
  /** `registry/group/image:sha256-<hex>.att`: the attestations (SBOM and provenance, one layer each). */
  readonly sbom: string;
  readonly provenance: string;
  /** Packages the SBOM lists (the image itself not counted). */
  readonly packages: number;
  /**
   * Packages (by purl) the image has and the image it was made on (its provenance's parent) has not:
   * what the layer added; every package for a root layer. Absent when the parent's SBOM could not
   * be read, and in the entries of a state written before it (an image not signed since).
   */
  readonly packagesAdded?: number;
  /**
   * The `.att` layers (DSSE envelopes) that attest the SBOM and the provenance by this key, as the
   * registry holds them: written by this set, or found there (an image an earlier run signed, whose
   * provenance names that run). Absent from the entries a state written before them keeps (an image
   * not signed since), which have `sbomDigest` and `provenanceDigest` (what that run would have
   * written) in their place; nothing reads either.
   */
  readonly sbomAttestationDigest?: string;
  readonly provenanceAttestationDigest?: string;
  /**
   * The registry held this key's signature over this digest and both its attestations before the
   * set came to it (an image an earlier run signed, adopted or moved from another set): nothing was
   * written. False when anything was, the attestations of a run stopped after the signature included.
   */
  readonly signedBefore: boolean;
}

const fail = (what: string): never => {
  throw new Error(`ImageAttestationsSet: ${what}`);
};

const text = (value: unknown, what: string): string => (typeof value === "string" && value !== "" ? value : fail(`${what} must be a non-empty string`));

const record = (value: unknown, what: string): Record<string, unknown> => (typeof value === "object" && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : fail(`${what} must be an object`));

function parseProvenance(value: unknown, image: string): ProvenanceFacts {
  const facts = record(value, `${image}.provenanceFacts`);
  const engine = record(facts.engine, `${image}.provenanceFacts.engine`);
  const source = record(facts.source, `${image}.provenanceFacts.source`);
  if (typeof source.clean !== "boolean") fail(`${image}.provenanceFacts.source.clean must be true or false (a tree not known to be clean is never recorded as clean)`);
  const buildArgs = record(facts.buildArgs ?? {}, `${image}.provenanceFacts.buildArgs`);
  return {
    layer: text(facts.layer, `${image}.provenanceFacts.layer`),
    fingerprint: text(facts.fingerprint, `${image}.provenanceFacts.fingerprint`),
    parent: facts.parent === null || facts.parent === undefined ? null : text(facts.parent, `${image}.provenanceFacts.parent`),
    ...(facts.copiedFrom === null || facts.copiedFrom === undefined ? {} : { copiedFrom: text(facts.copiedFrom, `${image}.provenanceFacts.copiedFrom`) }),
    ...(facts.adopted === true ? { adopted: true as const } : {}),
    ...(facts.adoptedAncestor === null || facts.adoptedAncestor === undefined ? {} : { adoptedAncestor: text(facts.adoptedAncestor, `${image}.provenanceFacts.adoptedAncestor`) }),
    buildArgs: Object.fromEntries(Object.entries(buildArgs).map(([key, item]) => [key, String(item)])),
    platform: text(facts.platform, `${image}.provenanceFacts.platform`),
    stack: text(facts.stack, `${image}.provenanceFacts.stack`),
    channel: text(facts.channel, `${image}.provenanceFacts.channel`),
    strataVersion: text(facts.strataVersion, `${image}.provenanceFacts.strataVersion`),
    engine: {
      name: text(engine.name, `${image}.provenanceFacts.engine.name`),
      version: text(engine.version, `${image}.provenanceFacts.engine.version`),
      // Absent in the facts of images signed before strata:buildNetwork existed.
      ...(engine.network === undefined ? {} : { network: text(engine.network, `${image}.provenanceFacts.engine.network`) }),
    },
    source: { repository: text(source.repository, `${image}.provenanceFacts.source.repository`), commit: text(source.commit, `${image}.provenanceFacts.source.commit`), clean: source.clean as boolean },
  };
}

/**
 * The key as the engine hands it over (a secret, possibly wrapped). The message never holds any
 * part of it: it says which part is missing, nothing more.
 */
function parseSigningKey(wrapped: unknown): SigningKey {
  const value = unwrapSecret(wrapped);
  if (typeof value !== "object" || value === null) return fail("the signing key is missing (strata:signingKey)");
  const privateKeyPem = unwrapSecret((value as Record<string, unknown>).privateKeyPem);
  const password = unwrapSecret((value as Record<string, unknown>).password);
  if (typeof privateKeyPem !== "string" || privateKeyPem === "") fail("the signing key is missing (strata:signingKey)");
  if (typeof password !== "string") fail("the signing key's passphrase is missing (strata:signingKeyPassphrase)");
  return { privateKeyPem: privateKeyPem as string, password: password as string, ...(unwrapSecret((value as Record<string, unknown>).change) === true ? { change: true as const } : {}) };
}

/** One image of the set; `name` says which in an error. */
function parseImage(name: string, value: unknown, set: { registry: string; signingKey: SigningKey; registryAuth?: RegistryCredentials }): ImageAttestationsInputs {
  const image = record(value, `images["${name}"]`);
  const digestRef = text(image.digestRef, `images["${name}"].digestRef`);
  const reference = parseReference(digestRef);
  if (reference.digest === undefined || !/^sha256:[a-f0-9]{64}$/.test(reference.digest)) fail(`images["${name}"]: digestRef "${digestRef}" is not registry/repository@sha256:<64 hex>`);
  if (reference.registry !== set.registry) fail(`images["${name}"]: digestRef "${digestRef}" is not in the registry ${set.registry}`);
  return {
    registry: set.registry,
    repository: reference.path,
    digest: reference.digest as string,
    digestRef,
    tag: text(image.tag, `images["${name}"].tag`),
    provenanceFacts: parseProvenance(image.provenanceFacts, `images["${name}"]`),
    signingKey: set.signingKey,
    ...(set.registryAuth === undefined ? {} : { registryAuth: set.registryAuth }),
  };
}

export function parseImageAttestationsSetInputs(inputs: Readonly<Record<string, unknown>>): ImageAttestationsSetInputs {
  const registry = text(inputs.registry, "registry");
  const signingKey = parseSigningKey(inputs.signingKey);
  const { registryAuth } = parseCredentials(inputs.registryAuth);
  const set = { registry, signingKey, ...(registryAuth === undefined ? {} : { registryAuth }) };
  const images = new Map(Object.entries(record(inputs.images, "images")).map(([name, value]) => [name, parseImage(name, value, set)] as const));
  return { ...set, images };
}

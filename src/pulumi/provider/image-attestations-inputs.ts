/**
 * Inputs of `strata:index:ImageAttestations`: one published image (or a multi-platform layer's
 * index), keyed on its digest reference, and what its provenance says about it. No Pulumi import.
 *
 * Only the digest reference decides a change: a signature is about exactly those bytes, and signing
 * the same digest again would append a second signature to its `.sig` manifest. Whatever else
 * differs on a later run (the commit, the run id, the key) is no reason to touch the registry; a
 * new digest is a new resource (a replacement), and the old digest keeps its signature.
 */
import { type SigningKey } from "../../engine/cosign.js";
import { type SourceState } from "../../core/provenance.js";
import { parseReference } from "../../core/reference.js";
import { type RegistryCredentials } from "../../registry/client.js";
import { parseCredentials, unwrapSecret } from "./layer-image-inputs.js";

/** The Pulumi type token (beside core/image-types.ts's: move it there when that file is next touched). */
export const IMAGE_ATTESTATIONS_TYPE = "strata:index:ImageAttestations";

/** The inputs whose change means new attestations: the image's digest reference alone. */
export const IMAGE_ATTESTATIONS_KEY = ["digestRef"] as const;

/**
 * What the provenance of one image records beyond its digest (core/provenance.ts ProvenanceInput),
 * but the run id: that differs on every run, and a resource whose inputs differ is written to the
 * state again on a run that signs nothing; the provider takes it from the run (STRATA_RUN_ID) when
 * it signs.
 */
export interface ProvenanceFacts {
  readonly layer: string;
  readonly fingerprint: string;
  /** The parent image's `registry/repo@sha256:…` the image was made on, null for a root layer. */
  readonly parent: string | null;
  /**
   * The `registry/repo@sha256:…` the image was copied from (a CI run's unchanged layer); absent, not
   * null, for a built image, so a built image's inputs are what they were before this field existed.
   */
  readonly copiedFrom?: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  /** `os/arch`; an index's platforms joined by commas. */
  readonly platform: string;
  readonly stack: string;
  readonly channel: string;
  readonly strataVersion: string;
  readonly engine: { readonly name: string; readonly version: string };
  readonly source: SourceState;
}

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

/** What the resource reports: where its signature and attestations are, and what the SBOM holds. */
export interface ImageAttestationsOutputs {
  /** `registry/group/image:sha256-<hex>.sig`: cosign's classic signature tag. */
  readonly signature: string;
  /** `registry/group/image:sha256-<hex>.att`: the attestations (SBOM and provenance, one layer each). */
  readonly sbom: string;
  readonly provenance: string;
  /** Packages the SBOM lists (the image itself not counted). */
  readonly packages: number;
  /** sha256 of the SPDX document's bytes (the same image gives the same bytes: core/sbom.ts). */
  readonly sbomDigest: string;
  /** sha256 of the provenance predicate's bytes. */
  readonly provenanceDigest: string;
  /** The `.sig` tag held this key's signature over this digest before this resource (an adopted image an earlier run signed): it was not signed again. */
  readonly signedBefore: boolean;
}

export const IMAGE_ATTESTATIONS_OUTPUTS = ["signature", "sbom", "provenance", "packages", "sbomDigest", "provenanceDigest", "signedBefore"] as const satisfies readonly (keyof ImageAttestationsOutputs)[];

/** The outputs a resource's state holds (what an update keeps: it never signs again). */
export function attestationOutputsOf(props: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(IMAGE_ATTESTATIONS_OUTPUTS.filter((key) => props[key] !== undefined).map((key) => [key, props[key]]));
}

/** The classic cosign tag of a digest: `sha256:<hex>` → `sha256-<hex>.<suffix>`. */
export function cosignTag(digest: string, suffix: "sig" | "att"): string {
  return `${digest.replace(":", "-")}.${suffix}`;
}

const fail = (what: string): never => {
  throw new Error(`ImageAttestations: ${what}`);
};

const text = (value: unknown, what: string): string => (typeof value === "string" && value !== "" ? value : fail(`${what} must be a non-empty string`));

const record = (value: unknown, what: string): Record<string, unknown> => (typeof value === "object" && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : fail(`${what} must be an object`));

function parseProvenance(value: unknown): ProvenanceFacts {
  const facts = record(value, "provenanceFacts");
  const engine = record(facts.engine, "provenanceFacts.engine");
  const source = record(facts.source, "provenanceFacts.source");
  if (typeof source.clean !== "boolean") fail("provenance.source.clean must be true or false (a tree not known to be clean is never recorded as clean)");
  const buildArgs = record(facts.buildArgs ?? {}, "provenanceFacts.buildArgs");
  return {
    layer: text(facts.layer, "provenanceFacts.layer"),
    fingerprint: text(facts.fingerprint, "provenanceFacts.fingerprint"),
    parent: facts.parent === null || facts.parent === undefined ? null : text(facts.parent, "provenanceFacts.parent"),
    ...(facts.copiedFrom === null || facts.copiedFrom === undefined ? {} : { copiedFrom: text(facts.copiedFrom, "provenanceFacts.copiedFrom") }),
    buildArgs: Object.fromEntries(Object.entries(buildArgs).map(([key, item]) => [key, String(item)])),
    platform: text(facts.platform, "provenanceFacts.platform"),
    stack: text(facts.stack, "provenanceFacts.stack"),
    channel: text(facts.channel, "provenanceFacts.channel"),
    strataVersion: text(facts.strataVersion, "provenanceFacts.strataVersion"),
    engine: { name: text(engine.name, "provenanceFacts.engine.name"), version: text(engine.version, "provenanceFacts.engine.version") },
    source: { repository: text(source.repository, "provenanceFacts.source.repository"), commit: text(source.commit, "provenanceFacts.source.commit"), clean: source.clean as boolean },
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
  return { privateKeyPem: privateKeyPem as string, password: password as string };
}

export function parseImageAttestationsInputs(inputs: Readonly<Record<string, unknown>>): ImageAttestationsInputs {
  const registry = text(inputs.registry, "registry");
  const digestRef = text(inputs.digestRef, "digestRef");
  const reference = parseReference(digestRef);
  if (reference.digest === undefined || !/^sha256:[a-f0-9]{64}$/.test(reference.digest)) fail(`digestRef "${digestRef}" is not registry/repository@sha256:<64 hex>`);
  if (reference.registry !== registry) fail(`digestRef "${digestRef}" is not in the registry ${registry}`);
  return {
    registry,
    repository: reference.path,
    digest: reference.digest as string,
    digestRef,
    tag: text(inputs.tag, "tag"),
    provenanceFacts: parseProvenance(inputs.provenanceFacts),
    signingKey: parseSigningKey(inputs.signingKey),
    ...parseCredentials(inputs.registryAuth),
  };
}

/** The inputs a resource keeps from when it signed while its digest stays (the key and the login are news' own). */
const ATTESTED_AS_MADE = ["provenanceFacts", "tag"] as const;

/**
 * The inputs the engine keeps for a resource (the provider's check): on the same digest, the
 * provenance facts and tag the attestations were made with, not this run's. A run on a new commit
 * changes every resource's `provenanceFacts.source`; were those the inputs, each unchanged
 * resource would be a "same" step with other inputs, and the engine writes the whole state once
 * per such resource (N=200 signed: 18.5 CPU-s of the Pulumi engine against 2.0 on the same commit,
 * most of it in SnapshotManager.saveSnapshot). They would also misstate what was attested: an
 * update never signs again (diff), so the registry's provenance names the commit it was made on.
 * A new digest (a replacement) or a resource without state takes this run's inputs as they are.
 */
export function checkImageAttestations(olds: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>): Record<string, unknown> {
  if (olds.digestRef === undefined || diffImageAttestations(olds, news).length > 0) return { ...news };
  const kept = Object.fromEntries(ATTESTED_AS_MADE.filter((key) => olds[key] !== undefined).map((key) => [key, olds[key]]));
  return { ...news, ...kept };
}

/** What the engine's diff reports: the digest reference, or nothing (unknown during a preview counts as changed). */
export function diffImageAttestations(olds: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>): string[] {
  return IMAGE_ATTESTATIONS_KEY.filter((key) => JSON.stringify(olds[key]) !== JSON.stringify(news[key]));
}

/** Inputs as they are kept in the resource's outputs: the key and the login never. */
export function withoutSecrets(props: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { signingKey: _key, registryAuth: _auth, ...rest } = props;
  return rest;
}

/**
 * Signatures and attestations written by Strata itself into cosign's classic tags (issue 29):
 * `<repo>:sha256-<hex>.sig` and `.att` beside the image, in the bytes cosign v2 writes
 * (core/cosign-format.ts), so plain `cosign verify --key … --insecure-ignore-tlog=true` and
 * `cosign verify-attestation --type …` accept them. The key is unlocked once per run by the caller
 * (unlockCosignKey); signing here costs an ECDSA signature and small requests per image (7 for the `.sig`, 9 for an
 * `.att` of two layers: README *What the registry spends on signing*), not a cosign process with its scrypt.
 *
 * Idempotent: a tag that already holds what is asked for — a signature by this key over this
 * digest (carrying the annotations asked for), an attestation by this key whose statement is about
 * this digest and of this predicate type — is left as it is; only what is missing is appended, one
 * layer each, never a duplicate. Fails closed: a registry answer that is neither found nor not found
 * is an error (the client's), and a tag holding something Strata could not rewrite faithfully is
 * refused, not overwritten.
 */
import { createHash, type KeyObject } from "node:crypto";
import { mapLimited } from "../core/concurrency.js";
import {
  attestationLayer, attestationTag, IN_TOTO_PAYLOAD_TYPE, pae, type CosignKey, type CosignLayer, cosignManifest, cosignRepositoryName, DSSE_ENVELOPE_TYPE, dsseSignedBy,
  PREDICATE_TYPE_ANNOTATION, readCosignManifest, readDsseEnvelope, readSimpleSigning, readStatementHead, SIGNATURE_ANNOTATION, signatureLayer, signatureTag,
  SIMPLE_SIGNING_TYPE, simpleSigningPayload, verifiesBase64,
} from "../core/cosign-format.js";
import { UserError } from "../core/problems.js";
import { externalParametersOf, SLSA_PROVENANCE_V1 } from "../core/provenance.js";
import { parseReference } from "../core/reference.js";
import { type RegistryClient, RegistryError } from "./client.js";

/**
 * What writing signatures needs of a registry: the client's reads and manifest puts, and an upload
 * of a small blob (`putBlob`: POST then PUT with the digest; the blob being there already is
 * success; `unchecked`, uploaded without asking first).
 */
export interface SignatureRegistry extends Pick<RegistryClient, "registry" | "manifest" | "putManifest" | "blobStream"> {
  putBlob(repository: string, bytes: Buffer, options?: { unchecked?: boolean }): Promise<unknown>;
}

/** One attestation to make: the predicate type (a URI, PREDICATE_TYPES) and the predicate's JSON bytes. */
export interface AttestationRequest {
  readonly predicateType: string;
  readonly predicate: Buffer;
}

export interface TagWrite {
  /** The image reference signed or attested (`registry/repo@sha256:…`). */
  readonly ref: string;
  /** `registry/repo:sha256-<hex>.sig` (or `.att`). */
  readonly tagRef: string;
  /**
   * Whether the tag holds a manifest this call put: false when it held everything asked for
   * already, including when another writer replaced this call's put with a manifest that holds it
   * all (the registry keeps the other's layers, and those are what `layers` names).
   */
  readonly written: boolean;
  /** The digest of the manifest the tag holds now. */
  readonly manifestDigest: string;
  /**
   * The digest of the layer that holds each thing asked for, in the order asked: the one the tag
   * held already (an earlier run's, which may differ from what this run would write: a provenance
   * names its run) or the one written now. What the registry holds, never what this run meant to write.
   */
  readonly layers: readonly string[];
}

/** Images signed or attested at once: the work is requests (a few each), not CPU. */
const CONCURRENCY = 8;
/** Writers of the same tag at once (two runs): the tag is read, extended and written again this often before giving up. */
const TAG_ATTEMPTS = 3;
/** The largest layer read back from a `.sig`/`.att` tag to check it (an SBOM of a large image is a few MiB). */
const MAX_LAYER_BYTES = 64 << 20;

/** One layer a tag should hold: whether an existing layer is it, and how to make it when none is. */
interface Wanted {
  readonly what: string;
  satisfiedBy(layer: CosignLayer, blob: (layer: CosignLayer) => Promise<Buffer>): Promise<boolean>;
  make(): { layer: CosignLayer; blob: Buffer };
}

/**
 * Signs each digest reference with `key`, one signature layer in its `.sig` tag, with
 * `annotations` in the payload (what `cosign sign -a` puts there). All references must be in the
 * registry `registry` speaks to. A reference already signed by this key is left as it is.
 */
export async function signImages(registry: SignatureRegistry, refs: readonly string[], key: CosignKey, annotations?: Readonly<Record<string, string>>): Promise<TagWrite[]> {
  const unique = [...new Set(refs)];
  return mapLimited(unique, CONCURRENCY, async (ref) => {
    const { repository, name, digest } = imageOf(registry, ref);
    const payload = simpleSigningPayload(name, digest, annotations);
    const payloadDigest = sha256(payload);
    const wanted: Wanted = {
      what: "signature",
      satisfiedBy: async (layer, blob) => {
        if (layer.mediaType !== SIMPLE_SIGNING_TYPE) return false;
        // Our own earlier payload is known without asking; another (a copy's, other annotations) is read.
        const bytes = layer.digest === payloadDigest ? payload : await blob(layer);
        if (!verifiesBase64(key, bytes, layer.annotations[SIGNATURE_ANNOTATION] ?? "")) return false;
        const said = readSimpleSigning(bytes);
        return said?.digest === digest && Object.entries(annotations ?? {}).every(([field, value]) => said.annotations[field] === value);
      },
      make: () => signatureLayer(key, payload),
    };
    return writeTag(registry, ref, repository, signatureTag(digest), [wanted]);
  });
}

/**
 * Attests one digest reference: each request becomes one layer of its `.att` tag (several
 * predicate types in one manifest, as cosign stores them), the statement's subject this
 * repository and digest. A predicate type already attested by this key for this digest is left as
 * it is (whatever its predicate says: the image is the same).
 */
export async function attestImage(registry: SignatureRegistry, ref: string, attestations: readonly AttestationRequest[], key: CosignKey): Promise<TagWrite> {
  const { repository, name, digest } = imageOf(registry, ref);
  const types = attestations.map((attestation) => attestation.predicateType);
  if (types.length === 0 || new Set(types).size !== types.length) throw new Error(`attestImage: ${ref}: give each predicate type once, at least one (${types.join(", ")})`);
  const wanted = attestations.map((attestation): Wanted => ({
    what: `${attestation.predicateType} attestation`,
    satisfiedBy: async (layer, blob) => {
      if (layer.mediaType !== DSSE_ENVELOPE_TYPE || layer.annotations[PREDICATE_TYPE_ANNOTATION] !== attestation.predicateType) return false;
      const envelope = readDsseEnvelope(await blob(layer));
      if (envelope === undefined || !dsseSignedBy(envelope, key)) return false;
      const head = readStatementHead(envelope.payload);
      return head?.predicateType === attestation.predicateType && head.subjectDigests.includes(digest);
    },
    make: () => attestationLayer(key, name, digest, attestation.predicateType, attestation.predicate),
  }));
  return writeTag(registry, ref, repository, attestationTag(digest), wanted);
}

function imageOf(registry: SignatureRegistry, ref: string): { repository: string; name: string; digest: string } {
  const parsed = parseReference(ref);
  if (parsed.digest === undefined || !/^sha256:[a-f0-9]{64}$/.test(parsed.digest)) throw new Error(`signatures: "${ref}" is not a digest reference (repository@sha256:…): only a digest is signed, a tag can move`);
  if (parsed.registry !== registry.registry) throw new Error(`signatures: "${ref}" is in ${parsed.registry}, not in ${registry.registry}, the registry this client speaks to`);
  return { repository: parsed.path, name: cosignRepositoryName(parsed.registry, parsed.path), digest: parsed.digest };
}

const sha256 = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/**
 * Makes `tag` hold every wanted layer: reads what it holds, appends what is missing (blobs, then
 * the manifest), and reads the tag back. A registry has no conditional put, so another writer of
 * the same tag at the same moment can replace what was written; then the whole is done again.
 */
async function writeTag(registry: SignatureRegistry, ref: string, repository: string, tag: string, wanted: readonly Wanted[]): Promise<TagWrite> {
  const tagRef = `${registry.registry}/${repository}:${tag}`;
  const blob = async (layer: CosignLayer): Promise<Buffer> => {
    if (layer.size > MAX_LAYER_BYTES) throw new UserError(`${tagRef} has a layer of ${layer.size} bytes (${layer.digest}), larger than any signature or attestation Strata reads (${MAX_LAYER_BYTES} bytes): it cannot tell whether it is a signature of its own. Look at what wrote it; delete the tag to have Strata write it anew`);
    return readWhole(await registry.blobStream(repository, layer.digest, layer.size));
  };
  for (let attempt = 1; ; attempt++) {
    const existing = await registry.manifest(repository, tag);
    let layers: CosignLayer[] = [];
    let mediaType: string | undefined;
    if (existing !== undefined) {
      const read = readCosignManifest(existing.manifest as unknown);
      if ("problem" in read) {
        throw new UserError(`${tagRef} ${read.problem}: it is not a cosign signature manifest Strata can add to without changing what it holds, so ${ref} was not signed. Look at what wrote that tag; if it is not needed, delete it (by its digest ${existing.digest}) and run again`);
      }
      ({ layers, mediaType } = read);
    }
    // Per thing asked for: the layer already there that is it, or undefined (to be made).
    const held: (string | undefined)[] = [];
    for (const want of wanted) {
      let found: string | undefined;
      for (const layer of layers) {
        if (await want.satisfiedBy(layer, blob)) {
          found = layer.digest;
          break;
        }
      }
      held.push(found);
    }
    if (existing !== undefined && held.every((digest): digest is string => digest !== undefined)) return { ref, tagRef, written: false, manifestDigest: existing.digest, layers: held };

    // What the tag holds of each thing asked for once written: the layer found, or one made now.
    const placed = wanted.map((want, index) => held[index] ?? want.make());
    const made = placed.filter((entry) => typeof entry !== "string");
    const layerDigests = placed.map((entry) => (typeof entry === "string" ? entry : entry.layer.digest));
    const next = cosignManifest([...layers, ...made.map((entry) => entry.layer)], mediaType);
    // Unchecked: each is new but for rare cases (an attestation layer carries a signature made just
    // now, the config names the layers; a signature's payload is there only if another key signed
    // this digest), and uploading a few KiB again costs the registry less than a HEAD per blob of
    // every image (5 an image, a fifth of what signing asks of it). The manifest comes after them all.
    await Promise.all([...made.map((entry) => entry.blob), next.config].map((bytes) => registry.putBlob(repository, bytes, { unchecked: true })));
    const written = await registry.putManifest(repository, tag, next.manifest, next.mediaType);
    const now = await registry.manifest(repository, tag);
    if (now?.digest === written) return { ref, tagRef, written: true, manifestDigest: written, layers: layerDigests };
    if (now === undefined) {
      throw new RegistryError(`${tagRef} was written as ${written}, but the registry now answers that the tag does not exist: it does not hold what it just accepted (its storage, or something between, is not answering truly). Check the registry, then run again`, undefined, "a tag just written that the registry no longer answers for");
    }
    if (attempt >= TAG_ATTEMPTS) {
      throw new RegistryError(`${tagRef} was replaced by another writer each of ${TAG_ATTEMPTS} times Strata wrote it (now ${now.digest}): something keeps writing the signatures of ${ref} at the same time. Find the other run, then run again`, undefined, "a tag another writer keeps replacing");
    }
    // Another run wrote the tag between our read and our write: what it holds now is read again, and what is missing added to it.
  }
}

/**
 * The stack each SLSA provenance statement in an `.att` manifest names (`externalParameters.stack`:
 * the run that attested the image), for `strata ci-clean` to tell a change's orphaned image from
 * anyone else's; or why they cannot be read. Not a verification: only used to choose what to keep.
 */
export async function provenanceStacks(registry: Pick<RegistryClient, "manifest" | "blobStream">, repository: string, attestationDigest: string): Promise<{ stacks: string[] } | { unreadable: string }> {
  const found = await registry.manifest(repository, attestationDigest);
  if (found === undefined) return { unreadable: `its .att manifest ${attestationDigest} is gone` };
  const read = readCosignManifest(found.manifest as unknown);
  if ("problem" in read) return { unreadable: `its .att manifest ${read.problem}` };
  const stacks: string[] = [];
  for (const layer of read.layers.filter((candidate) => candidate.annotations[PREDICATE_TYPE_ANNOTATION] === SLSA_PROVENANCE_V1)) {
    if (layer.size > MAX_LAYER_BYTES) return { unreadable: `a provenance layer of ${layer.size} bytes` };
    const envelope = readDsseEnvelope(await readWhole(await registry.blobStream(repository, layer.digest, layer.size)));
    if (envelope === undefined) return { unreadable: `layer ${layer.digest} is not a DSSE envelope of an in-toto statement` };
    let statement: unknown;
    try {
      statement = JSON.parse(envelope.payload.toString("utf8"));
    } catch {
      return { unreadable: `layer ${layer.digest}'s statement is not JSON` };
    }
    const stack = externalParametersOf(statement).stack;
    if (typeof stack !== "string") return { unreadable: `layer ${layer.digest}'s provenance names no stack` };
    stacks.push(stack);
  }
  return { stacks };
}

/** A trusted public key as cosignSigners takes it: `id` names it among the signers (the verifier gives its configured path). */
export interface SignerKey {
  readonly id: string;
  readonly publicKey: KeyObject;
}

/**
 * Which of `keys` made the signatures a digest's `.sig` and `.att` tags hold, by Strata's own check
 * of each one: a `.sig` layer's signature annotation over its payload, and every signature of each
 * `.att` layer's DSSE envelope over its statement. `{ signers }` only when every signature there
 * verifies with one of `keys` (no tag: no signature, none); `{ unaccounted }` when one does not,
 * or a tag or layer is not one Strata reads whole (a keyless signature, another shape, a layer too
 * large), so only cosign can say what another key finds there. A read the registry fails is the
 * caller's to catch. Not a verification: the verifier (engine/image-verify.ts) uses it only to leave
 * out the calls of a key that made none of these signatures, which cosign could only refuse. `tags`:
 * the manifest digest each tag held when read (null: none), for the caller to read again
 * (cosignTagDigests) once cosign has answered about the others.
 */
export async function cosignSigners(registry: Pick<RegistryClient, "manifest" | "blobStream">, repository: string, digest: string, keys: readonly SignerKey[]): Promise<{ signers: ReadonlySet<string>; tags: Readonly<Record<string, string | null>> } | { unaccounted: string }> {
  const signers = new Set<string>();
  const tags: Record<string, string | null> = {};
  /** The keys a signature verifies with; none: unaccounted. */
  const account = (data: Buffer, signature: string): boolean => {
    const by = keys.filter((key) => verifiesBase64(key, data, signature));
    for (const key of by) signers.add(key.id);
    return by.length > 0;
  };
  for (const [tag, envelopes] of [[signatureTag(digest), false], [attestationTag(digest), true]] as const) {
    const found = await registry.manifest(repository, tag);
    tags[tag] = found?.digest ?? null;
    if (found === undefined) continue;
    const read = readCosignManifest(found.manifest as unknown);
    if ("problem" in read) return { unaccounted: `${tag} ${read.problem}` };
    for (const layer of read.layers) {
      if (layer.size > MAX_LAYER_BYTES) return { unaccounted: `${tag} has a layer of ${layer.size} bytes` };
      const bytes = await readWhole(await registry.blobStream(repository, layer.digest, layer.size));
      if (!envelopes) {
        if (!account(bytes, layer.annotations[SIGNATURE_ANNOTATION] ?? "")) return { unaccounted: `a signature in ${tag} (layer ${layer.digest}) verifies with none of the trusted keys` };
        continue;
      }
      const envelope = readDsseEnvelope(bytes);
      if (envelope === undefined || envelope.signatures.length === 0) return { unaccounted: `${tag}'s layer ${layer.digest} is not a signed DSSE envelope Strata reads` };
      const signed = pae(IN_TOTO_PAYLOAD_TYPE, envelope.payload);
      for (const signature of envelope.signatures) {
        if (!account(signed, signature)) return { unaccounted: `a signature in ${tag} (layer ${layer.digest}) verifies with none of the trusted keys` };
      }
    }
  }
  return { signers, tags };
}

/** The manifest digest a digest's `.sig` and `.att` tags hold now (null: none), as cosignSigners records them. */
export async function cosignTagDigests(registry: Pick<RegistryClient, "manifest">, repository: string, digest: string): Promise<Record<string, string | null>> {
  const tags: Record<string, string | null> = {};
  for (const tag of [signatureTag(digest), attestationTag(digest)]) tags[tag] = (await registry.manifest(repository, tag))?.digest ?? null;
  return tags;
}

/** A small blob's bytes, whole; the stream has checked them against their digest and size. */
async function readWhole(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

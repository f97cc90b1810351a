/**
 * cosign's classic storage format (v2, key-based, no transparency log), written by Strata itself
 * (issue 29): one `cosign sign` costs ~0.64 CPU-s here (0.5 of it scrypt, unlocking the key) and
 * one `cosign attest` ~0.75, per image, which at N=200 would make a cold run ~2.5× as long. So the
 * key is unlocked once per run and every signature is made in this process, in exactly the bytes
 * and layout `cosign verify` / `verify-attestation` v2.6.5 read. Pure: node:crypto and the
 * XSalsa20-Poly1305 cipher of @noble/ciphers (node:crypto has none), no Pulumi, no I/O.
 *
 * What cosign v2.6.5 writes, read from its source and checked against what it pushed here:
 * - the encrypted private key: PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older `… COSIGN …`)
 *   around JSON `{kdf: {name: "scrypt", params: {N, r, p}, salt}, cipher: {name:
 *   "nacl/secretbox", nonce}, ciphertext}` (byte fields base64), the ciphertext secretbox(PKCS#8
 *   DER) under scrypt(passphrase, salt) (go-securesystemslib/encrypted);
 * - a signature: the simple-signing payload (sigstore/pkg/signature/payload) as Go's encoding/json
 *   writes it, signed ECDSA P-256/SHA-256 (ASN.1 DER, base64) into the layer annotation
 *   `dev.cosignproject.cosign/signature`; the payload is the layer;
 * - an attestation: an in-toto Statement v0.1 around the predicate, in a DSSE envelope (PAE
 *   signing), the envelope the layer, with annotations `predicateType` and an empty signature;
 * - both in an OCI image manifest under `<repo>:sha256-<hex>.sig` / `.att`, one layer per
 *   signature or attestation, over a config as go-containerregistry's mutate.Append makes it.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, scrypt, sign, verify } from "node:crypto";
import { xsalsa20poly1305 } from "@noble/ciphers/salsa.js";
import { CHANGE_SIGNING_KEY_KEY, CHANGE_SIGNING_PASSPHRASE_KEY, CONFIG_NAMESPACE, SIGNING_KEY_KEY, SIGNING_PASSPHRASE_KEY } from "./config.js";
import { UserError } from "./problems.js";
import { IN_TOTO_STATEMENT_V01, SLSA_PROVENANCE_V1 } from "./provenance.js";
import { COSIGN_PRIVATE_KEY_TYPES } from "./signing-config.js";

export const OCI_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
export const OCI_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json";
/** What cosign writes with COSIGN_DOCKER_MEDIA_TYPES=1; read and kept when a tag already has it. */
export const DOCKER_MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json";

export const SIMPLE_SIGNING_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
export const DSSE_ENVELOPE_TYPE = "application/vnd.dsse.envelope.v1+json";
export const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
export const PREDICATE_TYPE_ANNOTATION = "predicateType";
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
export const COSIGN_SIGNATURE_TYPE = "cosign container image signature";
export const SPDX_DOCUMENT = "https://spdx.dev/Document";

/** cosign's `--type` names Strata attests with, and the predicate type each stands for. */
export const PREDICATE_TYPES = { spdxjson: SPDX_DOCUMENT, slsaprovenance1: SLSA_PROVENANCE_V1 } as const;

/**
 * The scrypt parameters go-securesystemslib accepts (legacy, standard, OWASP); cosign refuses any
 * other, so a key file cannot make it spend unbounded memory or time, and neither can it here.
 */
const SCRYPT_PARAMS: readonly { readonly N: number; readonly r: number; readonly p: number }[] = [
  { N: 32768, r: 8, p: 1 },
  { N: 65536, r: 8, p: 1 },
  { N: 131072, r: 8, p: 1 },
];

/** An unlocked key: what signs, and what checks that an existing signature is this key's. Never serialised. */
export interface CosignKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Where the key came from, for messages (the field names, never the values). */
export interface KeySource {
  readonly key: string;
  readonly passphrase: string;
}

const STACK_KEY: KeySource = { key: `${CONFIG_NAMESPACE}:${SIGNING_KEY_KEY}`, passphrase: `${CONFIG_NAMESPACE}:${SIGNING_PASSPHRASE_KEY}` };
/** The key a change's run signs with (core/signing-config.ts signingKeyFields). */
export const CHANGE_KEY: KeySource = { key: `${CONFIG_NAMESPACE}:${CHANGE_SIGNING_KEY_KEY}`, passphrase: `${CONFIG_NAMESPACE}:${CHANGE_SIGNING_PASSPHRASE_KEY}` };

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Decrypts cosign's encrypted private key PEM with its passphrase: the scrypt work (~0.5 CPU-s)
 * happens here once, not once per image. Only ECDSA P-256 keys (what `cosign generate-key-pair`
 * makes) are accepted. Every error names the config field and the fix, never the key or the
 * passphrase.
 */
export async function unlockCosignKey(pem: string, passphrase: string, source: KeySource = STACK_KEY): Promise<CosignKey> {
  const refuse = (why: string, fix: string): UserError => new UserError(`${source.key}: ${why}. ${fix}`);
  const remake = `set ${source.key} to the whole cosign.key that cosign generate-key-pair wrote (pulumi config set --secret ${source.key} < cosign.key)`;
  const block = /-----BEGIN ([A-Z ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----/.exec(pem);
  if (block === null) throw refuse("is not a PEM block", remake);
  const type = block[1] ?? "";
  if (!(COSIGN_PRIVATE_KEY_TYPES as readonly string[]).includes(type)) {
    throw refuse(`is a PEM "${type}", not cosign's encrypted private key (${COSIGN_PRIVATE_KEY_TYPES.join(" or ")})`, `${remake}; a plain key is made into one with cosign import-key-pair`);
  }
  let sealed: unknown;
  try {
    sealed = JSON.parse(Buffer.from((block[2] ?? "").replace(/\s+/g, ""), "base64").toString("utf8"));
  } catch {
    throw refuse("holds no readable encrypted key (its body is not base64 JSON)", remake);
  }
  const kdf = isRecord(sealed) && isRecord(sealed.kdf) ? sealed.kdf : {};
  const params = isRecord(kdf.params) ? kdf.params : {};
  const cipher = isRecord(sealed) && isRecord(sealed.cipher) ? sealed.cipher : {};
  const ciphertext = isRecord(sealed) && typeof sealed.ciphertext === "string" ? Buffer.from(sealed.ciphertext, "base64") : undefined;
  const salt = typeof kdf.salt === "string" ? Buffer.from(kdf.salt, "base64") : undefined;
  const nonce = typeof cipher.nonce === "string" ? Buffer.from(cipher.nonce, "base64") : undefined;
  if (kdf.name !== "scrypt" || cipher.name !== "nacl/secretbox" || ciphertext === undefined || salt === undefined || nonce?.length !== 24) {
    throw refuse("is not encrypted the way cosign encrypts keys (scrypt and nacl/secretbox with a 24-byte nonce)", remake);
  }
  const known = SCRYPT_PARAMS.find((allowed) => allowed.N === params.N && allowed.r === params.r && allowed.p === params.p);
  if (known === undefined) throw refuse(`uses scrypt parameters cosign does not accept (${JSON.stringify(params)})`, remake);
  // scrypt needs 128·N·r bytes; Node refuses past 32 MiB unless told (N=2^17 needs 128 MiB).
  const derived = await new Promise<Buffer>((resolve, reject) => {
    scrypt(Buffer.from(passphrase, "utf8"), salt, 32, { N: known.N, r: known.r, p: known.p, maxmem: 256 * known.N * known.r }, (error, key) => (error === null ? resolve(key) : reject(error)));
  });
  let der: Uint8Array;
  try {
    der = xsalsa20poly1305(new Uint8Array(derived), new Uint8Array(nonce)).decrypt(new Uint8Array(ciphertext));
  } catch {
    // The cipher's tag check is the only thing that knows: a wrong passphrase, or a damaged key.
    throw new UserError(`${source.passphrase} does not open ${source.key} (the decryption failed: a wrong passphrase, or a damaged key). Set the passphrase cosign generate-key-pair asked for: pulumi config set --secret ${source.passphrase} '<passphrase>'`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" });
  } catch {
    throw refuse("decrypts to something that is not a PKCS#8 private key", remake);
  }
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  if (privateKey.asymmetricKeyType !== "ec" || curve !== "prime256v1") {
    throw refuse(`is a ${privateKey.asymmetricKeyType ?? "unknown"}${curve === undefined ? "" : ` ${curve}`} key; Strata signs with ECDSA P-256 keys only, what cosign generate-key-pair makes`, `make a new pair with cosign generate-key-pair and ${remake}`);
  }
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** The public key in the PEM cosign writes as cosign.pub (SPKI). */
export function publicKeyPem(key: CosignKey): string {
  return key.publicKey.export({ type: "spki", format: "pem" }).toString();
}

/**
 * A string as Go's encoding/json writes it: JSON.stringify's escapes, plus the HTML-safe ones Go
 * adds (`<`, `>`, `&`, U+2028, U+2029 as \u00XX, lowercase hex).
 */
export function goJsonString(value: string): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A string map as Go writes a map[string]…: keys sorted by their UTF-8 bytes. */
function goStringMap(map: Readonly<Record<string, string>>): string {
  const keys = Object.keys(map).sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
  return `{${keys.map((key) => `${goJsonString(key)}:${goJsonString(map[key] ?? "")}`).join(",")}}`;
}

const SHA256 = /^sha256:([a-f0-9]{64})$/;

function hexOf(digest: string): string {
  const hex = SHA256.exec(digest)?.[1];
  if (hex === undefined) throw new Error(`cosign format: "${digest}" is not sha256:<64 hex>`);
  return hex;
}

/**
 * A repository's name as go-containerregistry's `name.Repository.Name()` spells it, which is what
 * cosign puts in a payload: Docker Hub as `index.docker.io`, its one-part names under `library/`.
 */
export function cosignRepositoryName(registry: string, path: string): string {
  if (registry === "docker.io" || registry === "index.docker.io") return `index.docker.io/${path.includes("/") ? path : `library/${path}`}`;
  return `${registry}/${path}`;
}

/** `sha256-<hex>.sig`: the tag cosign stores a digest's signatures under, in the image's repository. */
export function signatureTag(digest: string): string {
  return `sha256-${hexOf(digest)}.sig`;
}

/** `sha256-<hex>.att`: the tag of a digest's attestations. */
export function attestationTag(digest: string): string {
  return `sha256-${hexOf(digest)}.att`;
}

/** The digest a cosign tag (`sha256-<hex>.sig`, `.att`) is about: `sha256:<hex>`. */
export function cosignTagSubject(tag: string): string {
  return `sha256:${tag.slice("sha256-".length, tag.lastIndexOf("."))}`;
}

/** Whether a tag is one of cosign's (`sha256-<hex>.sig`, `.att`, `.sbom`): each names a manifest of its own, never an image. */
export function isCosignTag(tag: string): boolean {
  return /^sha256-[0-9a-f]{64}\.(sig|att|sbom)$/.test(tag);
}

/**
 * The simple-signing payload `cosign sign` signs, byte for byte: `optional` is null without
 * annotations (what the CLI writes when no `-a` is given), else the annotations as a sorted map.
 */
export function simpleSigningPayload(repository: string, digest: string, annotations?: Readonly<Record<string, string>>): Buffer {
  hexOf(digest);
  const optional = annotations === undefined || Object.keys(annotations).length === 0 ? "null" : goStringMap(annotations);
  return Buffer.from(`{"critical":{"identity":{"docker-reference":${goJsonString(repository)}},"image":{"docker-manifest-digest":${goJsonString(digest)}},"type":${goJsonString(COSIGN_SIGNATURE_TYPE)}},"optional":${optional}}`, "utf8");
}

/** What a simple-signing payload says, when it is one; undefined for anything else. */
export interface SimpleSigning {
  readonly repository: string;
  readonly digest: string;
  readonly annotations: Readonly<Record<string, unknown>>;
}

export function readSimpleSigning(payload: Buffer): SimpleSigning | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString("utf8"));
  } catch {
    return undefined;
  }
  const critical = isRecord(parsed) && isRecord(parsed.critical) ? parsed.critical : undefined;
  const identity = critical !== undefined && isRecord(critical.identity) ? critical.identity : {};
  const image = critical !== undefined && isRecord(critical.image) ? critical.image : {};
  if (critical?.type !== COSIGN_SIGNATURE_TYPE || typeof image["docker-manifest-digest"] !== "string") return undefined;
  const optional = isRecord(parsed) && isRecord(parsed.optional) ? parsed.optional : {};
  return { repository: typeof identity["docker-reference"] === "string" ? identity["docker-reference"] : "", digest: image["docker-manifest-digest"], annotations: optional };
}

/** ECDSA P-256 over SHA-256 of `data`, ASN.1 DER, base64: what cosign puts in the signature annotation and DSSE's `sig`. */
export function signBase64(key: CosignKey, data: Buffer): string {
  return sign("sha256", data, { key: key.privateKey, dsaEncoding: "der" }).toString("base64");
}

/**
 * Whether `signature` (base64; ASN.1 DER for ECDSA) is `key`'s over `data`, as cosign checks it:
 * SHA-256 for ECDSA and RSA (PKCS #1 v1.5), the message itself for Ed25519. A malformed signature
 * is a no, never an exception.
 */
export function verifiesBase64(key: Pick<CosignKey, "publicKey">, data: Buffer, signature: string): boolean {
  if (signature === "" || !/^[A-Za-z0-9+/]+=*$/.test(signature)) return false;
  try {
    return verify(key.publicKey.asymmetricKeyType === "ed25519" ? null : "sha256", data, { key: key.publicKey, dsaEncoding: "der" }, Buffer.from(signature, "base64"));
  } catch {
    return false;
  }
}

/** DSSE's pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(payload)> <payload>`, lengths in bytes. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, "utf8"), type, Buffer.from(` ${payload.length} `, "utf8"), payload]);
}

/**
 * The in-toto statement `cosign attest` signs: Statement v0.1, the header in cosign's field order,
 * subject = the repository and digest. The predicate goes in as the caller's bytes (a JSON object,
 * surrounding whitespace dropped): cosign re-encodes it through Go structs, which for
 * slsaprovenance1 even renames SLSA's `invocationId` to `invocationID`; verification reads the
 * signed bytes whatever their layout, so Strata keeps its own, reproducible ones.
 */
export function inTotoStatement(repository: string, digest: string, predicateType: string, predicate: Buffer): Buffer {
  const hex = hexOf(digest);
  const text = predicate.toString("utf8").trim();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`cosign format: the ${predicateType} predicate is not JSON`);
  }
  if (!isRecord(parsed)) throw new Error(`cosign format: the ${predicateType} predicate is not a JSON object`);
  // What `cosign attest --type slsaprovenance1` refuses, refused here too (its checkRequiredJSONFields).
  const missing = predicateType === SLSA_PROVENANCE_V1 ? ["buildDefinition", "runDetails"].filter((field) => !(field in parsed)) : [];
  if (missing.length > 0) throw new Error(`cosign format: the SLSA provenance v1 predicate lacks ${missing.join(" and ")}`);
  const header = `"_type":${goJsonString(IN_TOTO_STATEMENT_V01)},"predicateType":${goJsonString(predicateType)},"subject":[{"name":${goJsonString(repository)},"digest":{"sha256":"${hex}"}}]`;
  return Buffer.from(`{${header},"predicate":${text}}`, "utf8");
}

/** The DSSE envelope cosign stores as an attestation layer (`keyid` empty, as cosign leaves it). */
export function dsseEnvelope(payload: Buffer, signature: string): Buffer {
  return Buffer.from(`{"payloadType":${goJsonString(IN_TOTO_PAYLOAD_TYPE)},"payload":"${payload.toString("base64")}","signatures":[{"keyid":"","sig":${goJsonString(signature)}}]}`, "utf8");
}

/**
 * The fields of a DSSE envelope as cosign writes it, and the only ones an envelope read here may
 * have. Go's decoder, which cosign verifies with, takes a field whatever its case, the last one
 * named winning: `{"payload": A, …, "Payload": B}` is B to cosign and A to JSON.parse. One payload
 * verified and the other read is what this shuts out (trust-verdict.ts statementsAbout also checks the signature).
 */
const DSSE_FIELDS = ["payload", "payloadType", "signatures"].join();

/**
 * A DSSE envelope's payload and signatures, when `bytes` is one of in-toto statements with exactly
 * cosign's fields (DSSE_FIELDS); undefined otherwise.
 */
export function readDsseEnvelope(bytes: Buffer): { payload: Buffer; signatures: readonly string[] } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
  if (!isRecord(parsed) || Object.keys(parsed).sort().join() !== DSSE_FIELDS) return undefined;
  if (parsed.payloadType !== IN_TOTO_PAYLOAD_TYPE || typeof parsed.payload !== "string" || !Array.isArray(parsed.signatures)) return undefined;
  const signatures = parsed.signatures.map((entry) => (isRecord(entry) && typeof entry.sig === "string" ? entry.sig : "")).filter((sig) => sig !== "");
  return { payload: Buffer.from(parsed.payload, "base64"), signatures };
}

/** Whether one of an envelope's signatures is `key`'s over its payload (DSSE's PAE of the in-toto type and the payload's bytes). */
export function dsseSignedBy(envelope: { readonly payload: Buffer; readonly signatures: readonly string[] }, key: Pick<CosignKey, "publicKey">): boolean {
  const signed = pae(IN_TOTO_PAYLOAD_TYPE, envelope.payload);
  return envelope.signatures.some((signature) => verifiesBase64(key, signed, signature));
}

/** The subjects' sha256 digests and the predicate type of a statement's bytes; undefined when it is none. */
export function readStatementHead(payload: Buffer): { predicateType: string; subjectDigests: readonly string[] } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString("utf8"));
  } catch {
    return undefined;
  }
  if (!isRecord(parsed) || typeof parsed.predicateType !== "string" || !Array.isArray(parsed.subject)) return undefined;
  const subjectDigests = parsed.subject.flatMap((subject) => (isRecord(subject) && isRecord(subject.digest) && typeof subject.digest.sha256 === "string" ? [`sha256:${subject.digest.sha256}`] : []));
  return { predicateType: parsed.predicateType, subjectDigests };
}

/** One layer of a `.sig`/`.att` manifest, in the fields cosign writes (no others are read or kept). */
export interface CosignLayer {
  readonly mediaType: string;
  readonly size: number;
  readonly digest: string;
  readonly annotations: Readonly<Record<string, string>>;
}

const sha256Digest = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** A signature layer: the payload is the blob, its signature an annotation. */
export function signatureLayer(key: CosignKey, payload: Buffer): { layer: CosignLayer; blob: Buffer } {
  return { layer: { mediaType: SIMPLE_SIGNING_TYPE, size: payload.length, digest: sha256Digest(payload), annotations: { [SIGNATURE_ANNOTATION]: signBase64(key, payload) } }, blob: payload };
}

/** An attestation layer: the statement signed in a DSSE envelope, which is the blob. */
export function attestationLayer(key: CosignKey, repository: string, digest: string, predicateType: string, predicate: Buffer): { layer: CosignLayer; blob: Buffer } {
  const statement = inTotoStatement(repository, digest, predicateType, predicate);
  const envelope = dsseEnvelope(statement, signBase64(key, pae(IN_TOTO_PAYLOAD_TYPE, statement)));
  return { layer: { mediaType: DSSE_ENVELOPE_TYPE, size: envelope.length, digest: sha256Digest(envelope), annotations: { [PREDICATE_TYPE_ANNOTATION]: predicateType, [SIGNATURE_ANNOTATION]: "" } }, blob: envelope };
}

/**
 * The config go-containerregistry's mutate.Append gives cosign's empty image after appending
 * these layers (they are uncompressed: each diff_id is the layer's digest).
 */
export function cosignConfig(layers: readonly CosignLayer[]): Buffer {
  const zero = `{"created":"0001-01-01T00:00:00Z"}`;
  return Buffer.from(`{"architecture":"","created":"0001-01-01T00:00:00Z","history":[${layers.map(() => zero).join(",")}],"os":"","rootfs":{"type":"layers","diff_ids":[${layers.map((layer) => goJsonString(layer.digest)).join(",")}]},"config":{}}`, "utf8");
}

/** A layer descriptor in go-containerregistry's field order; no annotations, no field (`omitempty`). */
function layerJson(layer: CosignLayer): string {
  const annotations = Object.keys(layer.annotations).length === 0 ? "" : `,"annotations":${goStringMap(layer.annotations)}`;
  return `{"mediaType":${goJsonString(layer.mediaType)},"size":${layer.size},"digest":${goJsonString(layer.digest)}${annotations}}`;
}

/** A `.sig`/`.att` manifest over `layers` and its config, byte for byte as cosign pushes them; Docker media types when `mediaType` says so. */
export function cosignManifest(layers: readonly CosignLayer[], mediaType: string = OCI_MANIFEST_TYPE): { manifest: Buffer; mediaType: string; config: Buffer } {
  if (mediaType !== OCI_MANIFEST_TYPE && mediaType !== DOCKER_MANIFEST_TYPE) throw new Error(`cosign format: a signature manifest is not a ${mediaType}`);
  const config = cosignConfig(layers);
  const configType = mediaType === OCI_MANIFEST_TYPE ? OCI_CONFIG_TYPE : DOCKER_CONFIG_TYPE;
  const manifest = `{"schemaVersion":2,"mediaType":${goJsonString(mediaType)},"config":{"mediaType":${goJsonString(configType)},"size":${config.length},"digest":"${sha256Digest(config)}"},"layers":[${layers.map(layerJson).join(",")}]}`;
  return { manifest: Buffer.from(manifest, "utf8"), mediaType, config };
}

/**
 * The layers of an existing `.sig`/`.att` manifest (parsed JSON), or why Strata will not append to
 * it: anything but an image manifest of cosign's fields, which a rewrite could not keep faithfully.
 */
export function readCosignManifest(manifest: unknown): { mediaType: string; layers: CosignLayer[] } | { problem: string } {
  if (!isRecord(manifest)) return { problem: "is not a JSON object" };
  const mediaType = manifest.mediaType;
  if (mediaType !== OCI_MANIFEST_TYPE && mediaType !== DOCKER_MANIFEST_TYPE) return { problem: `is a ${JSON.stringify(mediaType)}, not an image manifest` };
  const extra = Object.keys(manifest).filter((field) => !["schemaVersion", "mediaType", "config", "layers"].includes(field));
  if (extra.length > 0) return { problem: `has fields cosign does not write (${extra.join(", ")})` };
  if (!Array.isArray(manifest.layers)) return { problem: "has no layer list" };
  const layers: CosignLayer[] = [];
  for (const entry of manifest.layers) {
    if (!isRecord(entry) || typeof entry.mediaType !== "string" || typeof entry.size !== "number" || typeof entry.digest !== "string" || !SHA256.test(entry.digest)) return { problem: "has a layer that is not a descriptor (mediaType, size, sha256 digest)" };
    const others = Object.keys(entry).filter((field) => !["mediaType", "size", "digest", "annotations"].includes(field));
    if (others.length > 0) return { problem: `has a layer with fields cosign does not write (${others.join(", ")})` };
    const annotations = entry.annotations === undefined ? {} : entry.annotations;
    if (!isRecord(annotations) || Object.values(annotations).some((value) => typeof value !== "string")) return { problem: "has a layer whose annotations are not strings" };
    layers.push({ mediaType: entry.mediaType, size: entry.size, digest: entry.digest, annotations: annotations as Record<string, string> });
  }
  return { mediaType, layers };
}

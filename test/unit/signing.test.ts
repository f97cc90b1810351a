/**
 * Signing (issue 29): the stack's decision and the key's checks (core/signing-config.ts), the
 * ImageAttestationsSet inputs (each image keyed on its digest alone; the key never in outputs), the
 * provider's signing in this process (signed and attested with the key unlocked once, never a second signature
 * on a digest, a shared layer read once), and the summary's signing line.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { NOT_SIGNED, signingConfigProblems, signingDecision, signingKeyProblems } from "../../src/core/signing-config.js";
import { renderSummary, type SummaryLayer, summaryRows } from "../../src/cli/summary.js";
import { type LayerEvent } from "../../src/engine/events.js";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { packTar } from "modern-tar";
import { attestationTag, type CosignKey, IN_TOTO_PAYLOAD_TYPE, OCI_MANIFEST_TYPE, pae, PREDICATE_TYPES, readCosignManifest, readDsseEnvelope, readSimpleSigning, readStatementHead, SIGNATURE_ANNOTATION, signatureTag, unlockCosignKey, verifiesBase64 } from "../../src/core/cosign-format.js";
import { serializeSpdx } from "../../src/core/sbom.js";
import { type AttestationRegistry, attestImage, attestImageSet, KeyUnlocker, sbomOf } from "../../src/pulumi/provider/attest-image.js";
import { diffImageAttestationsSet, imagesToSign, keptAttestations } from "../../src/core/attestation-steps.js";
import { type ImageAttestationsInputs, parseImageAttestationsSetInputs } from "../../src/pulumi/provider/image-attestations-inputs.js";
import { SECRET_SIGNATURE } from "../../src/pulumi/provider/layer-image-inputs.js";
import { type ImageConfig, type ManifestResult } from "../../src/registry/client.js";
import { LayerChangesets } from "../../src/registry/image-files.js";
import { attestImage as writeAttestations, signImages } from "../../src/registry/signatures.js";
import { MemoryRegistry } from "../helpers/memory-registry.js";

const PEM_BODY = "eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6OCwicCI6MX0sInNhbHQiOiJzZWNyZXQtbGluZSJ9";
const PEM = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${PEM_BODY}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
const PASSPHRASE = "passphrase-never-shown-93b1";
const DIGEST = `sha256:${"a".repeat(64)}`;
const PARENT = `127.0.0.1:5000/g/base@sha256:${"b".repeat(64)}`;

const secret = (value: unknown): Record<string, unknown> => ({ [SECRET_SIGNATURE[0]]: SECRET_SIGNATURE[1], value });

const FACTS = {
  layer: "app", fingerprint: "f".repeat(64), parent: PARENT, buildArgs: { A: "1" }, platform: "linux/amd64", stack: "dev", channel: "dev",
  strataVersion: "0.1.0", runId: "2026-12-02T18-00-00-000Z", engine: { name: "docker.Image (@pulumi/docker)", version: "29.0.0" },
  source: { repository: "file:///src", commit: "c".repeat(40), clean: true },
};

/** The set's inputs as the engine hands them over, with one image, "app"; `extra` sets its digestRef, tag or provenanceFacts, or the set's own fields. */
const inputs = (extra: Record<string, unknown> = {}): Record<string, unknown> => {
  const { digestRef = `127.0.0.1:5000/g/app@${DIGEST}`, tag = "1.0-p0", provenanceFacts = FACTS, ...set } = extra;
  return {
    registry: "127.0.0.1:5000",
    images: { app: { digestRef, tag, provenanceFacts } },
    signingKey: secret({ privateKeyPem: secret(PEM), password: secret(PASSPHRASE) }),
    ...set,
  };
};

/** The one image of `inputs`, parsed. */
const parseApp = (raw: Record<string, unknown>): ImageAttestationsInputs => {
  const image = parseImageAttestationsSetInputs(raw).images.get("app");
  if (image === undefined) throw new Error("test: no image app");
  return image;
};

describe("signing decision and key checks", () => {
  it("signs with a key and pushed images only, and says why not otherwise", () => {
    expect(signingDecision({ push: true }, true)).toEqual({ sign: true });
    expect(signingDecision({ push: true }, false)).toEqual({ sign: false, reason: NOT_SIGNED.noKey });
    expect(NOT_SIGNED.noKey).toBe("no strata:signingKey");
    expect(signingDecision({ push: false }, true)).toEqual({ sign: false, reason: NOT_SIGNED.notPushed });
    expect(signingDecision({ push: true, promoteFrom: "dev" }, true)).toEqual({ sign: false, reason: NOT_SIGNED.promoted });
  });

  it("refuses a key or passphrase in plain text in the stack file, and one without the other, never quoting them", () => {
    const plain = signingConfigProblems({ signingKey: PEM, signingKeyPassphrase: PASSPHRASE }, "Pulumi.dev.yaml");
    expect(plain.map((problem) => problem.field)).toEqual(["strata:signingKey", "strata:signingKeyPassphrase"]);
    expect(plain[0]?.message).toContain("plain text");
    expect(signingConfigProblems({ signingKey: { secure: "v1:abc" } }, "Pulumi.dev.yaml").map((problem) => [problem.field, problem.message])).toEqual([["strata:signingKeyPassphrase", "is missing, but strata:signingKey is set: cosign cannot open the key without it"]]);
    expect(signingConfigProblems({ signingKeyPassphrase: { secure: "v1:abc" } }, "Pulumi.dev.yaml").map((problem) => problem.field)).toEqual(["strata:signingKey"]);
    expect(signingConfigProblems({ signingKey: { secure: "v1:abc" }, signingKeyPassphrase: { secure: "v1:def" } }, "Pulumi.dev.yaml")).toEqual([]);
    for (const problem of plain) expect(JSON.stringify(problem)).not.toMatch(new RegExp(`${PEM_BODY}|${PASSPHRASE}`));
  });

  it("takes a cosign private key PEM only, and says what the value is not without showing it", () => {
    expect(signingKeyProblems(PEM, PASSPHRASE, "Pulumi.dev.yaml")).toEqual([]);
    expect(signingKeyProblems(undefined, undefined, "Pulumi.dev.yaml")).toEqual([]);
    const publicKey = signingKeyProblems(`-----BEGIN PUBLIC KEY-----\n${PEM_BODY}\n-----END PUBLIC KEY-----\n`, PASSPHRASE, "Pulumi.dev.yaml");
    expect(publicKey.map((problem) => problem.message)).toEqual([expect.stringContaining('type "PUBLIC KEY", not a cosign private key')]);
    const notPem = signingKeyProblems(PEM_BODY, PASSPHRASE, "Pulumi.dev.yaml");
    expect(notPem.map((problem) => problem.message)).toEqual([expect.stringContaining("is not one PEM block")]);
    expect(signingKeyProblems(PEM, undefined, "Pulumi.dev.yaml").map((problem) => problem.field)).toEqual(["strata:signingKeyPassphrase"]);
    for (const problem of [...publicKey, ...notPem]) expect(JSON.stringify(problem)).not.toContain(PEM_BODY);
  });
});

describe("ImageAttestationsSet inputs", () => {
  it("reads each image's digest reference and provenance facts, and the set's wrapped secret key", () => {
    const parsed = parseApp(inputs());
    expect(parsed.repository).toBe("g/app");
    expect(parsed.digest).toBe(DIGEST);
    expect(parsed.signingKey).toEqual({ privateKeyPem: PEM, password: PASSPHRASE });
    expect(parsed.provenanceFacts.parent).toBe(PARENT);
    expect(parsed.provenanceFacts.source.clean).toBe(true);
    expect(parsed.provenanceFacts.adopted).toBeUndefined();
    expect(parseApp(inputs({ provenanceFacts: { ...FACTS, adopted: true } })).provenanceFacts.adopted).toBe(true);
    expect(parsed.provenanceFacts.adoptedAncestor).toBeUndefined();
    expect(parseApp(inputs({ provenanceFacts: { ...FACTS, adoptedAncestor: PARENT } })).provenanceFacts.adoptedAncestor).toBe(PARENT);
    expect(() => parseApp(inputs({ provenanceFacts: { ...FACTS, adoptedAncestor: 7 } }))).toThrow(/provenanceFacts.adoptedAncestor must be a non-empty string/);
  });

  it("refuses a tag instead of a digest, another registry, a missing key, and a tree not known to be clean, naming the image", () => {
    expect(() => parseApp(inputs({ digestRef: "127.0.0.1:5000/g/app:1.0-p0" }))).toThrow(/images\["app"\]: digestRef .* is not registry\/repository@sha256/);
    expect(() => parseApp(inputs({ digestRef: `10.0.0.1:5000/g/app@${DIGEST}` }))).toThrow(/not in the registry/);
    expect(() => parseApp(inputs({ signingKey: undefined }))).toThrow(/signing key is missing/);
    expect(() => parseApp(inputs({ provenanceFacts: { ...FACTS, source: { repository: "file:///src", commit: "c".repeat(40) } } }))).toThrow(/images\["app"\]\.provenanceFacts\.source\.clean must be true or false/);
  });

  it("signs an image again only for a new digest: a new commit, run or key is no reason", () => {
    const state = { registry: "127.0.0.1:5000", attested: { app: { digestRef: `127.0.0.1:5000/g/app@${DIGEST}`, signature: "s" } } };
    const later = inputs({ provenanceFacts: { ...FACTS, runId: "later", source: { repository: "file:///src", commit: "d".repeat(40), clean: false } }, signingKey: secret({ privateKeyPem: "other", password: "other" }) });
    expect(diffImageAttestationsSet(state, later)).toBe(false);
    expect(imagesToSign(state, inputs({ digestRef: `127.0.0.1:5000/g/app@sha256:${"e".repeat(64)}` }))).toEqual(["app"]);
    expect(signatureTag(DIGEST)).toBe(`sha256-${"a".repeat(64)}.sig`);
  });
});

/**
 * The registry in memory holding one image (one layer with a dpkg status of `packages` packages)
 * under g/app, answering what attesting it reads and writes.
 */
class AppRegistry extends MemoryRegistry implements AttestationRegistry {
  readonly image: string;

  constructor(layer: Buffer) {
    super("127.0.0.1:5000");
    this.image = this.addImage("g/app", [layer]);
  }

  /** The layers of a cosign tag of the image, and each layer's blob. */
  tagLayers(suffix: "sig" | "att"): { digest: string; annotations: Readonly<Record<string, string>>; blob: Buffer }[] {
    return this.layersOf("g/app", (suffix === "sig" ? signatureTag : attestationTag)(this.image));
  }
}

const sha256 = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/cosign");
/** The test-only key pair of the fixtures (test/fixtures/cosign/README.md). */
const FIXTURE_PEM = readFileSync(path.join(fixtures, "cosign.key"), "utf8");
const FIXTURE_PASSPHRASE = "test-only-passphrase";
const RUN_ID = "2026-12-03T00-30-00-000Z";

async function imageRegistry(): Promise<AppRegistry> {
  const status = ["Package: base-files", "Status: install ok installed", "Architecture: amd64", "Version: 12.4", "", "Package: bash", "Status: install ok installed", "Architecture: amd64", "Version: 5.2.15-2", ""].join("\n");
  return new AppRegistry(Buffer.from(await packTar([{ header: { name: "var/lib/dpkg/status", type: "file", size: Buffer.byteLength(status), mtime: new Date(0) }, body: status }])));
}

/** The inputs for the registry's image, signed with the fixture key (or `passphrase`). */
const imageInputs = (registry: AppRegistry, passphrase = FIXTURE_PASSPHRASE): ImageAttestationsInputs => parseApp(setInputs(registry, passphrase));

/** The set's raw inputs for the registry's image, with a login. */
const setInputs = (registry: AppRegistry, passphrase = FIXTURE_PASSPHRASE): Record<string, unknown> =>
  inputs({ digestRef: `127.0.0.1:5000/g/app@${registry.image}`, signingKey: secret({ privateKeyPem: secret(FIXTURE_PEM), password: secret(passphrase) }), registryAuth: secret({ username: "u", password: "login-password-5e2a" }) });

describe("signing an image, in this process", () => {
  let key: CosignKey;
  beforeAll(async () => {
    key = await unlockCosignKey(FIXTURE_PEM, FIXTURE_PASSPHRASE);
  });

  it("signs the digest once and attests its SBOM and provenance in one .att, verifiable with the key", async () => {
    const registry = await imageRegistry();
    const outputs = await attestImage(registry, imageInputs(registry), { runId: RUN_ID, keys: new KeyUnlocker() });
    const ref = `127.0.0.1:5000/g/app@${registry.image}`;
    expect(outputs).toMatchObject({ signature: `127.0.0.1:5000/g/app:${signatureTag(registry.image)}`, sbom: `127.0.0.1:5000/g/app:${attestationTag(registry.image)}`, packages: 2, signedBefore: false });
    const [signature, ...moreSignatures] = registry.tagLayers("sig");
    expect(moreSignatures).toEqual([]);
    expect(verifiesBase64(key, signature?.blob ?? Buffer.alloc(0), signature?.annotations[SIGNATURE_ANNOTATION] ?? "")).toBe(true);
    expect(readSimpleSigning(signature?.blob ?? Buffer.alloc(0))?.digest).toBe(registry.image);
    const attestations = registry.tagLayers("att");
    expect(attestations.map((layer) => layer.annotations.predicateType)).toEqual([PREDICATE_TYPES.spdxjson, PREDICATE_TYPES.slsaprovenance1]);
    for (const layer of attestations) {
      const envelope = readDsseEnvelope(layer.blob);
      expect(envelope?.signatures.some((sig) => verifiesBase64(key, pae(IN_TOTO_PAYLOAD_TYPE, envelope.payload), sig))).toBe(true);
      expect(readStatementHead(envelope?.payload ?? Buffer.alloc(0))?.subjectDigests).toEqual([registry.image]);
    }
    // The attestations the outputs name are the layers the .att holds.
    expect([outputs.sbomAttestationDigest, outputs.provenanceAttestationDigest]).toEqual(attestations.map((layer) => layer.digest));
    expect(JSON.stringify(outputs)).not.toContain(FIXTURE_PASSPHRASE);
    expect(ref).toBe(imageInputs(registry).digestRef);
    // The SBOM asked for the image's manifest once (sbomOf hands it to imageFiles), and once for the
    // parent's, which this registry does not have: what the layer added is then not known, and the
    // image is signed all the same.
    expect(registry.digestReads).toBe(2);
    expect(outputs.packagesAdded).toBeUndefined();
  });

  it("writes an adopted ancestor the facts name into the provenance, where the gate refuses it", async () => {
    const registry = await imageRegistry();
    const facts = { ...imageInputs(registry).provenanceFacts, adoptedAncestor: PARENT };
    await attestImage(registry, { ...imageInputs(registry), provenanceFacts: facts }, { runId: RUN_ID, keys: new KeyUnlocker() });
    const provenance = registry.tagLayers("att").find((layer) => layer.annotations.predicateType === PREDICATE_TYPES.slsaprovenance1);
    const statement = JSON.parse(readDsseEnvelope(provenance?.blob ?? Buffer.alloc(0))?.payload.toString("utf8") ?? "{}") as { predicate: { buildDefinition: { internalParameters: Record<string, unknown> } } };
    expect(statement.predicate.buildDefinition.internalParameters.adoptedAncestor).toBe(PARENT);
  });

  it("counts the packages a layer added over its parent, reading a parent this process signed no second time; a root layer added all", async () => {
    const statusOf = (...names: string[]): string => names.map((name) => [`Package: ${name}`, "Status: install ok installed", "Architecture: amd64", "Version: 1.0", ""].join("\n")).join("\n");
    const layerOf = async (status: string): Promise<Buffer> => Buffer.from(await packTar([{ header: { name: "var/lib/dpkg/status", type: "file", size: Buffer.byteLength(status), mtime: new Date(0) }, body: status }]));
    const baseLayer = await layerOf(statusOf("base-files", "libc6"));
    // The child's layer replaces the status: one package kept, one upgraded away (libc6 gone), two new.
    const childLayer = await layerOf(statusOf("base-files", "bash", "curl"));
    const registry = new AppRegistry(baseLayer);
    const base = registry.image;
    const child = registry.addImage("g/child", [baseLayer, childLayer]);
    const context = { runId: RUN_ID, keys: new KeyUnlocker(), changesets: new LayerChangesets(), packageKeys: new Map<string, Promise<ReadonlySet<string> | undefined>>() };
    const root = await attestImage(registry, { ...imageInputs(registry), provenanceFacts: { ...imageInputs(registry).provenanceFacts, parent: null } }, context);
    expect(root).toMatchObject({ packages: 2, packagesAdded: 2 });
    // A root layer added every package it lists, as packages counts them: one Python distribution in two places is two.
    const twice = Buffer.from(await packTar(["a", "b"].map((dir) => ({ header: { name: `${dir}/six-1.16.0.dist-info/METADATA`, type: "file" as const, size: 26, mtime: new Date(0) }, body: "Name: six\nVersion: 1.16.0\n" }))));
    const pythonRoot = registry.addImage("g/py", [twice]);
    const inputsOf = imageInputs(registry);
    expect(await attestImage(registry, { ...inputsOf, repository: "g/py", digest: pythonRoot, digestRef: `127.0.0.1:5000/g/py@${pythonRoot}`, provenanceFacts: { ...inputsOf.provenanceFacts, parent: null } }, context)).toMatchObject({ packages: 2, packagesAdded: 2 });
    const readsBefore = registry.digestReads;
    const childInputs = imageInputs(registry);
    const added = await attestImage(registry, { ...childInputs, repository: "g/child", digest: child, digestRef: `127.0.0.1:5000/g/child@${child}`, provenanceFacts: { ...childInputs.provenanceFacts, parent: `127.0.0.1:5000/g/app@${base}` } }, context);
    expect(added).toMatchObject({ packages: 3, packagesAdded: 2 });
    // Its own manifest only: the parent's package keys were kept from its own signing.
    expect(registry.digestReads - readsBefore).toBe(1);
    // A process that did not sign the parent reads its SBOM (the same count), and a parent in another registry is not known.
    const fresh = { runId: RUN_ID, keys: context.keys, changesets: new LayerChangesets(), packageKeys: new Map<string, Promise<ReadonlySet<string> | undefined>>() };
    registry.tagged.clear();
    expect(await attestImage(registry, { ...childInputs, repository: "g/child", digest: child, digestRef: `127.0.0.1:5000/g/child@${child}`, provenanceFacts: { ...childInputs.provenanceFacts, parent: `127.0.0.1:5000/g/app@${base}` } }, fresh)).toMatchObject({ packagesAdded: 2 });
    registry.tagged.clear();
    const elsewhere = await attestImage(registry, { ...childInputs, repository: "g/child", digest: child, digestRef: `127.0.0.1:5000/g/child@${child}`, provenanceFacts: { ...childInputs.provenanceFacts, parent: `other.example:5000/g/app@${base}` } }, { ...fresh, packageKeys: new Map() });
    expect(elsewhere.packages).toBe(3);
    expect(elsewhere.packagesAdded).toBeUndefined();
  });

  it("writes nothing on a second create (signedBefore), and adds its own signature beside another key's, once", async () => {
    const registry = await imageRegistry();
    const context = { runId: RUN_ID, keys: new KeyUnlocker() };
    await attestImage(registry, imageInputs(registry), context);
    const puts = registry.puts;
    const again = await attestImage(registry, imageInputs(registry), context);
    expect(registry.puts).toBe(puts);
    expect(again.signedBefore).toBe(true);
    expect(registry.tagLayers("sig")).toHaveLength(1);
    expect(registry.tagLayers("att")).toHaveLength(2);

    const other = await imageRegistry();
    const { generateKeyPairSync } = await import("node:crypto");
    const pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    await signImages(other, [`127.0.0.1:5000/g/app@${other.image}`], { privateKey: pair.privateKey, publicKey: pair.publicKey });
    const beside = await attestImage(other, imageInputs(other), context);
    expect(beside.signedBefore).toBe(false);
    expect(other.tagLayers("sig")).toHaveLength(2);
  });

  it("says signed, not signed before, for an image whose signature was there but not its attestations (a run stopped between them)", async () => {
    const registry = await imageRegistry();
    const key = await unlockCosignKey(FIXTURE_PEM, FIXTURE_PASSPHRASE);
    await signImages(registry, [`127.0.0.1:5000/g/app@${registry.image}`], key);
    const signature = registry.tagLayers("sig");
    const outputs = await attestImage(registry, imageInputs(registry), { runId: RUN_ID, keys: new KeyUnlocker() });
    expect(outputs.signedBefore).toBe(false);
    // The signature found, not written again; the attestations written.
    expect(registry.tagLayers("sig")).toEqual(signature);
    expect(registry.tagLayers("att")).toHaveLength(2);
  });

  it("says signed for an image whose attestations were there but not its signature (the two tags are written at once: a run can stop between them)", async () => {
    const registry = await imageRegistry();
    const context = { runId: RUN_ID, keys: new KeyUnlocker() };
    const image = imageInputs(registry);
    const earlier = [PREDICATE_TYPES.spdxjson, PREDICATE_TYPES.slsaprovenance1].map((predicateType) => ({ predicateType, predicate: Buffer.from(`{"buildDefinition":{},"runDetails":{},"earlier":"${predicateType}"}`) }));
    await writeAttestations(registry, image.digestRef, earlier, key);
    const attestations = registry.tagLayers("att");
    expect(registry.tagged.has(`g/app:${signatureTag(registry.image)}`)).toBe(false);
    const outputs = await attestImage(registry, image, context);
    expect(outputs.signedBefore).toBe(false);
    expect(registry.tagLayers("sig")).toHaveLength(1);
    // The attestations found, not written again.
    expect(registry.tagLayers("att")).toEqual(attestations);
  });

  it("says signed for an image whose .att held one of its two attestations: the other is written beside it, the one found kept", async () => {
    const registry = await imageRegistry();
    const image = imageInputs(registry);
    await signImages(registry, [image.digestRef], key);
    await writeAttestations(registry, image.digestRef, [{ predicateType: PREDICATE_TYPES.spdxjson, predicate: Buffer.from('{"earlier":"sbom"}') }], key);
    const [earlierSbom] = registry.tagLayers("att");
    const outputs = await attestImage(registry, image, { runId: RUN_ID, keys: new KeyUnlocker() });
    expect(outputs.signedBefore).toBe(false);
    const attestations = registry.tagLayers("att");
    expect(attestations.map((layer) => layer.annotations.predicateType)).toEqual([PREDICATE_TYPES.spdxjson, PREDICATE_TYPES.slsaprovenance1]);
    expect(attestations[0]).toEqual(earlierSbom);
    expect(outputs.sbomAttestationDigest).toBe(earlierSbom?.digest);
    expect(registry.tagLayers("sig")).toHaveLength(1);
  });

  it("unlocks the key once for every image of a process, and a passphrase that does not open it fails before any write, naming the field, never the passphrase", async () => {
    let unlocks = 0;
    const keys = new KeyUnlocker(async (pem, passphrase) => {
      unlocks++;
      return unlockCosignKey(pem, passphrase);
    });
    for (let image = 0; image < 3; image++) {
      const registry = await imageRegistry();
      await attestImage(registry, imageInputs(registry), { runId: RUN_ID, keys });
    }
    expect(unlocks).toBe(1);

    const registry = await imageRegistry();
    const wrong = "not-the-passphrase-61c4";
    const failure = await attestImage(registry, imageInputs(registry, wrong), { runId: RUN_ID, keys }).then(() => undefined, (error: unknown) => error as Error);
    expect(failure?.message).toMatch(/^strata:signingKeyPassphrase does not open strata:signingKey/);
    expect(failure?.message).not.toContain(wrong);
    expect(registry.puts).toBe(0);
    expect(registry.blobReads).toBe(0);
    // Remembered: the next image with the same wrong passphrase costs no second scrypt.
    await expect(attestImage(registry, imageInputs(registry, wrong), { runId: RUN_ID, keys })).rejects.toThrow(/strata:signingKeyPassphrase/);
    expect(unlocks).toBe(2);
  });

  it("names the change key's fields when a change's run cannot open its key: such a run never reads strata:signingKey", async () => {
    const registry = await imageRegistry();
    const wrong = "not-the-change-passphrase-0b7e";
    const raw = inputs({ digestRef: `127.0.0.1:5000/g/app@${registry.image}`, signingKey: secret({ privateKeyPem: secret(FIXTURE_PEM), password: secret(wrong), change: true }) });
    const parsed = parseApp(raw);
    expect(parsed.signingKey.change).toBe(true);
    const failure = await attestImage(registry, parsed, { runId: RUN_ID, keys: new KeyUnlocker() }).then(() => undefined, (error: unknown) => error as Error);
    expect(failure?.message).toMatch(/^strata:changeSigningKeyPassphrase does not open strata:changeSigningKey/);
    expect(failure?.message).not.toMatch(/strata:signingKey/);
    expect(failure?.message).not.toContain(wrong);
    expect(registry.puts).toBe(0);
  });

  it("reads a layer blob once for every image of a process that shares it", async () => {
    const registry = await imageRegistry();
    const changesets = new LayerChangesets();
    const context = { runId: RUN_ID, keys: new KeyUnlocker(), changesets };
    const first = await attestImage(registry, imageInputs(registry), context);
    const reads = registry.blobReads;
    // The same image under a second digest (another tag's manifest): its one layer is not read again.
    const manifest = registry.manifests.get(`g/app@${registry.image}`) as Buffer;
    const twin = Buffer.from(`${manifest.toString("utf8")}\n`);
    registry.manifests.set(`g/app@${sha256(twin)}`, twin);
    const second = await attestImage(registry, parseApp(inputs({ digestRef: `127.0.0.1:5000/g/app@${sha256(twin)}`, signingKey: secret({ privateKeyPem: secret(FIXTURE_PEM), password: secret(FIXTURE_PASSPHRASE) }) })), context);
    expect(registry.blobReads).toBe(reads);
    expect(changesets.counts).toEqual({ read: 1, reused: 1 });
    expect(second.packages).toBe(first.packages);
  });

  it("records the run it signs in from its context, not from its inputs (which so stay the same from run to run)", async () => {
    const registry = await imageRegistry();
    await attestImage(registry, imageInputs(registry), { runId: RUN_ID, keys: new KeyUnlocker() });
    const provenance = registry.tagLayers("att").find((layer) => layer.annotations.predicateType === PREDICATE_TYPES.slsaprovenance1);
    const statement = JSON.parse(readDsseEnvelope(provenance?.blob ?? Buffer.alloc(0))?.payload.toString("utf8") ?? "{}") as { predicate: { runDetails: { metadata: { invocationId: string } } } };
    expect(statement.predicate.runDetails.metadata.invocationId).toBe(RUN_ID);
  });

  it("gives the same SBOM bytes for the same image", async () => {
    // The signed bytes themselves (the DSSE payload: the statement around the SPDX document), not a
    // parse and re-serialization of them, which would hide a change of key order or spacing.
    const sbomOfRegistry = async (): Promise<Buffer> => {
      const registry = await imageRegistry();
      await attestImage(registry, imageInputs(registry), { runId: RUN_ID, keys: new KeyUnlocker() });
      const layer = registry.tagLayers("att").find((found) => found.annotations.predicateType === PREDICATE_TYPES.spdxjson);
      const payload = readDsseEnvelope(layer?.blob ?? Buffer.alloc(0))?.payload;
      if (payload === undefined) throw new Error("no SPDX attestation was written");
      return payload;
    };
    const first = await sbomOfRegistry();
    const document = (JSON.parse(first.toString("utf8")) as { predicate: Parameters<typeof serializeSpdx>[0] }).predicate;
    expect(serializeSpdx(document)).toContain("bash");
    expect((await sbomOfRegistry()).equals(first)).toBe(true);
  });

  it("dates an index's SBOM by its newest platform image, and refuses a platform's created that is no moment, newest or not (review 135)", async () => {
    const registry = await imageRegistry();
    const layer = registry.blobs.get(`g/app@${(JSON.parse((registry.manifests.get(`g/app@${registry.image}`) as Buffer).toString("utf8")) as { layers: { digest: string }[] }).layers[0]?.digest}`) as Buffer;
    const index = (times: readonly string[]): string => registry.add("g/app", undefined, {
      schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: times.map((time, at) => ({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: registry.addImage("g/app", [layer], time), size: 1, platform: { architecture: ["amd64", "arm64"][at], os: "linux" } })),
    }, "application/vnd.oci.image.index.v1+json");
    const created = async (digest: string): Promise<string> => (JSON.parse((await sbomOf(registry, { registry: "127.0.0.1:5000", repository: "g/app", digest, tag: "1.0-p0" }, "Strata-0.1.0")).bytes) as { creationInfo: { created: string } }).creationInfo.created;
    expect(await created(index(["2026-12-01T10:00:00Z", "2026-12-02T09:30:00+01:00"]))).toBe("2026-12-02T08:30:00Z");
    expect(await created(index(["0001-01-01T00:00:00Z", "2026-12-01T10:00:00Z"]))).toBe("2026-12-01T10:00:00Z");
    await expect(created(index(["2024-02-30T00:00:00Z", "2026-12-01T10:00:00Z"]))).rejects.toThrow(/g\/app@sha256:[0-9a-f]{64} has created "2024-02-30T00:00:00Z", which is not an RFC 3339 time/);
  });

  it("names the attestations the registry holds when an earlier run attested the image, not the ones this run would have written", async () => {
    const registry = await imageRegistry();
    const earlier = await attestImage(registry, imageInputs(registry), { runId: "run-earlier", keys: new KeyUnlocker() });
    const puts = registry.puts;
    // Another set (a later run, its own run id) comes to the same image: nothing is written, and what
    // it reports is the earlier run's provenance, the one a verifier reads.
    const later = await attestImage(registry, imageInputs(registry), { runId: "run-later", keys: new KeyUnlocker() });
    expect(registry.puts).toBe(puts);
    expect(later.signedBefore).toBe(true);
    const held = registry.tagLayers("att");
    expect([later.sbomAttestationDigest, later.provenanceAttestationDigest]).toEqual(held.map((layer) => layer.digest));
    expect(later.provenanceAttestationDigest).toBe(earlier.provenanceAttestationDigest);
    const provenance = held.find((layer) => layer.digest === later.provenanceAttestationDigest);
    const statement = JSON.parse(readDsseEnvelope(provenance?.blob ?? Buffer.alloc(0))?.payload.toString("utf8") ?? "{}") as { predicate: { runDetails: { metadata: { invocationId: string } } } };
    expect(statement.predicate.runDetails.metadata.invocationId).toBe("run-earlier");
  });
});

describe("the set's step", () => {
  it("signs the images its state has not signed, keeps the others' outputs, and writes nothing on a rerun", async () => {
    const registry = await imageRegistry();
    const context = { runId: RUN_ID, keys: new KeyUnlocker() };
    const news = setInputs(registry);
    const created = await attestImageSet(registry, parseImageAttestationsSetInputs(news), imagesToSign({}, news), keptAttestations({}, news), context);
    expect(Object.keys(created)).toEqual(["registry", "attested"]);
    expect(created.attested.app).toMatchObject({ digestRef: `127.0.0.1:5000/g/app@${registry.image}`, signature: `127.0.0.1:5000/g/app:${signatureTag(registry.image)}`, packages: 2, signedBefore: false });
    // Never the key, the passphrase or the login in what the state keeps as outputs.
    for (const secretText of [FIXTURE_PASSPHRASE, FIXTURE_PEM.split("\n")[1] as string, "login-password-5e2a"]) expect(JSON.stringify(created)).not.toContain(secretText);
    const puts = registry.puts;
    const reads = registry.blobReads;
    // A rerun on a new commit: the same digest, nothing to sign, the outputs as they were.
    const later = { ...news, images: { app: { ...(news.images as { app: Record<string, unknown> }).app, provenanceFacts: { ...FACTS, source: { repository: "file:///src", commit: "d".repeat(40), clean: true } } } } };
    expect(imagesToSign(created, later)).toEqual([]);
    const rerun = await attestImageSet(registry, parseImageAttestationsSetInputs(later), imagesToSign(created, later), keptAttestations(created, later), context);
    expect(rerun).toEqual(created);
    expect([registry.puts, registry.blobReads]).toEqual([puts, reads]);
  });

  it("refuses to sign a name its inputs do not have", async () => {
    const registry = await imageRegistry();
    await expect(attestImageSet(registry, parseImageAttestationsSetInputs(setInputs(registry)), ["db"], {}, { runId: RUN_ID, keys: new KeyUnlocker() })).rejects.toThrow(/no image "db"/);
    expect(registry.puts).toBe(0);
  });
});

describe("summary signing line", () => {
  const layer = (name: string, signing: SummaryLayer["signing"]): SummaryLayer => ({ layer: name, image: `img-${name}`, ref: `r:5000/g/img-${name}:1.0-p0`, parent: null, ...(signing === undefined ? {} : { signing }) });
  /** A built layer's event; its set's step reported its image (`attested`) unless told not to. */
  const event = (name: string, char: string, attested = true): [string, LayerEvent] => [name, { layer: name, type: "docker:index/image:Image", op: "create", failed: false, digestRef: `r:5000/g/img-${name}@sha256:${char.repeat(64)}`, ...(attested ? { attestation: { op: "create", failed: false } } : {}) }];

  it("says a stack without a key is not signed", () => {
    const rows = summaryRows([layer("base", { sign: false, reason: NOT_SIGNED.noKey })], new Map([event("base", "a")]));
    expect(renderSummary(rows).split("\n").at(-1)).toBe("not signed (no strata:signingKey)");
  });

  it("names each signed layer's .sig tag, and claims none when the run failed", () => {
    const rows = summaryRows([layer("base", { sign: true }), layer("app", { sign: true })], new Map([event("base", "a"), event("app", "b")]));
    expect(rows.map((row) => row.signature)).toEqual([`r:5000/g/img-base:sha256-${"a".repeat(64)}.sig`, `r:5000/g/img-app:sha256-${"b".repeat(64)}.sig`]);
    expect(renderSummary(rows).split("\n").at(-1)).toMatch(/^signed and attested \(SBOM, provenance\): 2 images/);
    const failed = summaryRows([layer("base", { sign: true })], new Map([event("base", "a")]), "update failed");
    expect(failed[0]?.signature).toBeUndefined();
    expect(renderSummary(failed).split("\n").at(-1)).toBe("not signed (the run did not finish: its signatures are not known)");
  });

  it("claims no signature for an image no set's step reported, though the run ended well", () => {
    const rows = summaryRows([layer("base", { sign: true }), layer("app", { sign: true })], new Map([event("base", "a"), event("app", "b", false)]));
    expect(rows.map((row) => [row.signature === undefined, row.unsigned])).toEqual([[false, undefined], [true, "no signing step reported this image: its signature is not known"]]);
    expect(renderSummary(rows).split("\n").at(-1)).toBe("signed and attested (SBOM, provenance): 1 image, signatures in each repository's sha256-<digest>.sig tag; 1 not signed (no signing step reported this image: its signature is not known)");
  });

  it("adds no line for a run that says nothing of signing", () => {
    const rows = summaryRows([layer("base", undefined)], new Map([event("base", "a")]));
    expect(renderSummary(rows).split("\n").at(-1)).toBe("1 built");
  });
});

/**
 * registry/signatures.ts against an in-memory registry: what is appended and what is left alone,
 * and the answers a real registry gives only now and then (another writer between our read and our
 * write, a tag gone right after it was written). The e2e test (cosign-native) holds the same code
 * against a real registry and plain cosign.
 */
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { attestationLayer, attestationTag, type CosignKey, cosignManifest, PREDICATE_TYPES, signatureLayer, signatureTag, simpleSigningPayload, unlockCosignKey } from "../../src/core/cosign-format.js";
import { attestImage, cosignSigners, provenanceStacks, signImages } from "../../src/registry/signatures.js";
import { MemoryRegistry, sha256 } from "../helpers/memory-registry.js";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/cosign");
const HOST = "registry.test:5000";
const DIGEST = `sha256:${"ab".repeat(32)}`;
const REF = `${HOST}/g/app@${DIGEST}`;

let key: CosignKey;
let other: CosignKey;
beforeAll(async () => {
  key = await unlockCosignKey(readFileSync(path.join(fixtures, "cosign.key"), "utf8"), "test-only-passphrase");
  const { generateKeyPairSync } = await import("node:crypto");
  const pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  other = { privateKey: pair.privateKey, publicKey: pair.publicKey };
});

describe("signImages", () => {
  it("signs once: a second call, or a list naming a digest twice, writes nothing more", async () => {
    const registry = new MemoryRegistry();
    const [first] = await signImages(registry, [REF, REF], key);
    expect(first).toMatchObject({ written: true, tagRef: `${HOST}/g/app:${signatureTag(DIGEST)}` });
    expect(await signImages(registry, [REF], key)).toMatchObject([{ written: false, manifestDigest: first?.manifestDigest }]);
    expect(registry.puts).toBe(1);
    expect(registry.layersOf("g/app", signatureTag(DIGEST))).toHaveLength(1);
  });

  it("appends its own beside another key's, and beside its own with other annotations", async () => {
    const registry = new MemoryRegistry();
    await signImages(registry, [REF], other);
    await signImages(registry, [REF], key);
    expect(registry.layersOf("g/app", signatureTag(DIGEST))).toHaveLength(2);
    // Annotations asked for must be in a signature of this key's; one without them is not it.
    await signImages(registry, [REF], key, { commit: "abc" });
    expect(registry.layersOf("g/app", signatureTag(DIGEST))).toHaveLength(3);
    expect(await signImages(registry, [REF], key, { commit: "abc" })).toMatchObject([{ written: false }]);
    // A signature carrying more annotations than asked for still is one: what cosign verify -a accepts.
    expect(await signImages(registry, [REF], key)).toMatchObject([{ written: false }]);
  });

  it("does not take a signature of this key over another digest, copied under this tag, for one over this digest", async () => {
    const registry = new MemoryRegistry();
    const elsewhere = signatureLayer(key, simpleSigningPayload(`${HOST}/g/app`, `sha256:${"cd".repeat(32)}`));
    await registry.putBlob("g/app", elsewhere.blob);
    const forged = cosignManifest([elsewhere.layer]);
    await registry.putBlob("g/app", forged.config);
    await registry.putManifest("g/app", signatureTag(DIGEST), forged.manifest);
    await signImages(registry, [REF], key);
    expect(registry.layersOf("g/app", signatureTag(DIGEST))).toHaveLength(2);
  });

  it("reads the tag again and adds to it when another writer replaced it between our read and our write", async () => {
    const registry = new MemoryRegistry();
    let raced = false;
    registry.afterPut = (repository, tag) => {
      if (raced) return;
      raced = true;
      // The other run read the tag empty too, and writes its own signature over ours.
      const theirs = signatureLayer(other, simpleSigningPayload(`${HOST}/${repository}`, DIGEST));
      registry.blobs.set(`${repository}@${theirs.layer.digest}`, theirs.blob);
      const next = cosignManifest([theirs.layer]);
      registry.blobs.set(`${repository}@${sha256(next.config)}`, next.config);
      registry.manifests.set(`${repository}@${sha256(next.manifest)}`, next.manifest);
      registry.tagged.set(`${repository}:${tag}`, sha256(next.manifest));
    };
    const [write] = await signImages(registry, [REF], key);
    expect(write?.written).toBe(true);
    expect(registry.layersOf("g/app", signatureTag(DIGEST))).toHaveLength(2);
  });

  it("says a tag the registry lost right after accepting it, and refuses references it cannot sign", async () => {
    const registry = new MemoryRegistry();
    registry.afterPut = (repository, tag) => registry.tagged.delete(`${repository}:${tag}`);
    await expect(signImages(registry, [REF], key)).rejects.toThrow(/now answers that the tag does not exist/);
    await expect(signImages(registry, [`${HOST}/g/app:1.0`], key)).rejects.toThrow(/not a digest reference/);
    await expect(signImages(registry, [`elsewhere.test/g/app@${DIGEST}`], key)).rejects.toThrow(/is in elsewhere\.test, not in registry\.test:5000/);
  });
});

describe("attestImage", () => {
  const sbom = { predicateType: PREDICATE_TYPES.spdxjson, predicate: Buffer.from('{"spdxVersion":"SPDX-2.3"}\n') };
  const provenance = { predicateType: PREDICATE_TYPES.slsaprovenance1, predicate: Buffer.from('{"buildDefinition":{},"runDetails":{}}\n') };

  it("writes each missing type once, one layer each, in one manifest", async () => {
    const registry = new MemoryRegistry();
    // Slow uploads: the manifest is put only once every blob it names has landed (putManifest refuses an unknown blob).
    registry.blobDelayMs = 20;
    await attestImage(registry, REF, [sbom], key);
    registry.blobDelayMs = 0;
    const second = await attestImage(registry, REF, [provenance, sbom], key);
    expect(second.written).toBe(true);
    const held = registry.layersOf("g/app", attestationTag(DIGEST));
    expect(held.map((layer) => layer.annotations.predicateType)).toEqual([PREDICATE_TYPES.spdxjson, PREDICATE_TYPES.slsaprovenance1]);
    // In the order asked: the provenance written now, the SBOM found there.
    expect(second.layers).toEqual([held[1]?.digest, held[0]?.digest]);
    expect(await attestImage(registry, REF, [sbom, provenance], key)).toMatchObject({ written: false, manifestDigest: second.manifestDigest, layers: [held[0]?.digest, held[1]?.digest] });
    // Another key's attestation of the same type is not this key's.
    await attestImage(registry, REF, [sbom], other);
    expect(registry.layersOf("g/app", attestationTag(DIGEST))).toHaveLength(3);
    expect(registry.puts).toBe(3);
    // Each write uploaded its new layer and the config, without asking whether they were there (a HEAD each).
    expect(registry.uploads).toEqual([true, true, true, true, true, true]);
  });

  it("does not take an attestation of this key about another digest, copied under this tag, for one about this digest (review 122)", async () => {
    const registry = new MemoryRegistry();
    const elsewhere = attestationLayer(key, `${HOST}/g/app`, `sha256:${"cd".repeat(32)}`, sbom.predicateType, sbom.predicate);
    await registry.putBlob("g/app", elsewhere.blob);
    const moved = cosignManifest([elsewhere.layer]);
    await registry.putBlob("g/app", moved.config);
    await registry.putManifest("g/app", attestationTag(DIGEST), moved.manifest);
    expect(await attestImage(registry, REF, [sbom], key)).toMatchObject({ written: true });
    expect(registry.layersOf("g/app", attestationTag(DIGEST))).toHaveLength(2);
  });

  it("refuses an empty or repeated list, and a predicate that is not a JSON object", async () => {
    const registry = new MemoryRegistry();
    await expect(attestImage(registry, REF, [], key)).rejects.toThrow(/each predicate type once/);
    await expect(attestImage(registry, REF, [sbom, sbom], key)).rejects.toThrow(/each predicate type once/);
    await expect(attestImage(registry, REF, [{ ...sbom, predicate: Buffer.from("[]") }], key)).rejects.toThrow(/not a JSON object/);
    expect(registry.puts).toBe(0);
  });
});

describe("provenanceStacks: which runs attested an image, for ci-clean's orphans", () => {
  const provenanceOf = (stack: unknown) => ({ predicateType: PREDICATE_TYPES.slsaprovenance1, predicate: Buffer.from(JSON.stringify({ buildDefinition: { externalParameters: { stack } }, runDetails: {} })) });
  const sbom = { predicateType: PREDICATE_TYPES.spdxjson, predicate: Buffer.from('{"spdxVersion":"SPDX-2.3"}\n') };

  it("reads each provenance statement's stack (an SBOM is not one); a statement naming none, or an .att that is gone or no cosign manifest, is unreadable", async () => {
    const registry = new MemoryRegistry();
    const written = await attestImage(registry, REF, [sbom, provenanceOf("dev-ci-19026")], key);
    expect(await provenanceStacks(registry, "g/app", written.manifestDigest)).toEqual({ stacks: ["dev-ci-19026"] });
    // Another key's run appends its own provenance: both stacks.
    const both = await attestImage(registry, REF, [provenanceOf("dev")], other);
    expect(await provenanceStacks(registry, "g/app", both.manifestDigest)).toEqual({ stacks: ["dev-ci-19026", "dev"] });
    const nameless = new MemoryRegistry();
    const noStack = await attestImage(nameless, REF, [provenanceOf(42)], key);
    expect(await provenanceStacks(nameless, "g/app", noStack.manifestDigest)).toMatchObject({ unreadable: expect.stringMatching(/provenance names no stack/) });
    expect(await provenanceStacks(registry, "g/app", `sha256:${"0".repeat(64)}`)).toMatchObject({ unreadable: expect.stringMatching(/is gone/) });
    const image = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] }));
    registry.manifests.set(`g/app@${sha256(image)}`, image);
    expect(await provenanceStacks(registry, "g/app", sha256(image))).toMatchObject({ unreadable: expect.stringMatching(/^its \.att manifest is a/) });
  });
});

describe("cosignSigners: which trusted keys made an image's signatures, for the verifier to leave out a key that made none", () => {
  const sbom = { predicateType: PREDICATE_TYPES.spdxjson, predicate: Buffer.from('{"spdxVersion":"SPDX-2.3"}\n') };
  const keysOf = (...pairs: [string, CosignKey][]) => pairs.map(([id, pair]) => ({ id, publicKey: pair.publicKey }));

  it("names the keys whose signatures the .sig and .att hold, when every signature there is one of theirs; no tags, no signers", async () => {
    const registry = new MemoryRegistry();
    expect(await cosignSigners(registry, "g/app", DIGEST, keysOf(["ci", key], ["new", other]))).toEqual({ signers: new Set(), tags: { [signatureTag(DIGEST)]: null, [attestationTag(DIGEST)]: null } });
    await signImages(registry, [REF], key);
    await attestImage(registry, REF, [sbom], key);
    expect(await cosignSigners(registry, "g/app", DIGEST, keysOf(["ci", key], ["new", other]))).toMatchObject({ signers: new Set(["ci"]) });
    // The other key attests too: both, from the .att alone.
    await attestImage(registry, REF, [sbom], other);
    expect(await cosignSigners(registry, "g/app", DIGEST, keysOf(["ci", key], ["new", other]))).toMatchObject({ signers: new Set(["ci", "new"]) });
  });

  it("finds an RSA key's signatures by the key as a policy holds it, PKCS#1 (BEGIN RSA PUBLIC KEY) or SPKI", async () => {
    const registry = new MemoryRegistry();
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    await signImages(registry, [REF], rsa);
    await attestImage(registry, REF, [sbom], rsa);
    for (const type of ["pkcs1", "spki"] as const) {
      const publicKey = createPublicKey(rsa.publicKey.export({ type, format: "pem" }).toString());
      expect(await cosignSigners(registry, "g/app", DIGEST, [{ id: "ci", publicKey: key.publicKey }, { id: "rsa", publicKey }]), type).toMatchObject({ signers: new Set(["rsa"]) });
    }
  });

  it("is unaccounted when a signature verifies with none of the keys given (a key not trusted, a tampered payload, an envelope it cannot read)", async () => {
    const registry = new MemoryRegistry();
    await signImages(registry, [REF], other);
    // Only "ci" given: the other key's signature is nobody's the verifier knows, so cosign must be asked.
    expect(await cosignSigners(registry, "g/app", DIGEST, keysOf(["ci", key]))).toMatchObject({ unaccounted: expect.stringMatching(/a signature in sha256-.*\.sig .* verifies with none of the trusted keys/) });
    // A .sig layer whose payload is not what its signature was made over.
    const tampered = new MemoryRegistry();
    const made = signatureLayer(key, simpleSigningPayload(`${HOST}/g/app`, DIGEST));
    const changed = Buffer.from(made.blob.toString("utf8").replace("cosign container image signature", "cosign container image signaturE"));
    await tampered.putBlob("g/app", changed);
    const manifest = cosignManifest([{ ...made.layer, digest: sha256(changed), size: changed.length }]);
    await tampered.putBlob("g/app", manifest.config);
    await tampered.putManifest("g/app", signatureTag(DIGEST), manifest.manifest);
    expect(await cosignSigners(tampered, "g/app", DIGEST, keysOf(["ci", key], ["new", other]))).toMatchObject({ unaccounted: expect.stringMatching(/verifies with none of the trusted keys/) });
    // An .att layer that is no DSSE envelope Strata reads.
    const odd = new MemoryRegistry();
    const notEnvelope = Buffer.from('{"payloadType":"text/plain","payload":"","signatures":[]}');
    await odd.putBlob("g/app", notEnvelope);
    const attestation = attestationLayer(key, `${HOST}/g/app`, DIGEST, PREDICATE_TYPES.spdxjson, sbom.predicate);
    const oddManifest = cosignManifest([{ ...attestation.layer, digest: sha256(notEnvelope), size: notEnvelope.length }]);
    await odd.putBlob("g/app", oddManifest.config);
    await odd.putManifest("g/app", attestationTag(DIGEST), oddManifest.manifest);
    expect(await cosignSigners(odd, "g/app", DIGEST, keysOf(["ci", key], ["new", other]))).toMatchObject({ unaccounted: expect.stringMatching(/is not a signed DSSE envelope Strata reads/) });
    // An .att tag that is an index (cosign would read a platform's manifest in it): no cosign manifest, so unaccounted, never "no signatures".
    const indexed = new MemoryRegistry();
    await signImages(indexed, [REF], key);
    indexed.add("g/app", attestationTag(DIGEST), { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] }, "application/vnd.oci.image.index.v1+json");
    expect(await cosignSigners(indexed, "g/app", DIGEST, keysOf(["ci", key], ["new", other]))).toMatchObject({ unaccounted: expect.stringMatching(/^sha256-.*\.att /) });
    // A layer larger than Strata reads: unaccounted.
    const large = new MemoryRegistry();
    await signImages(large, [REF], key);
    const held = JSON.parse((await large.rawManifest("g/app", signatureTag(DIGEST))).bytes.toString("utf8")) as { layers: object[] };
    large.add("g/app", signatureTag(DIGEST), { ...held, layers: [{ ...held.layers[0], size: (64 << 20) + 1 }] });
    expect(await cosignSigners(large, "g/app", DIGEST, keysOf(["ci", key]))).toMatchObject({ unaccounted: expect.stringMatching(/has a layer of 67108865 bytes/) });
  });

  it("is unaccounted when one of an envelope's signatures is no trusted key's, though another is", async () => {
    const registry = new MemoryRegistry();
    const attestation = attestationLayer(key, `${HOST}/g/app`, DIGEST, PREDICATE_TYPES.spdxjson, sbom.predicate);
    // The same statement signed by the trusted key and by another: an envelope of two signatures.
    const parsed = JSON.parse(attestation.blob.toString("utf8")) as { signatures: { keyid: string; sig: string }[] };
    const statement = Buffer.from((JSON.parse(attestation.blob.toString("utf8")) as { payload: string }).payload, "base64");
    const { signBase64, pae, IN_TOTO_PAYLOAD_TYPE } = await import("../../src/core/cosign-format.js");
    parsed.signatures.push({ keyid: "", sig: signBase64(other, pae(IN_TOTO_PAYLOAD_TYPE, statement)) });
    const twoSignatures = Buffer.from(JSON.stringify(parsed));
    await registry.putBlob("g/app", twoSignatures);
    const manifest = cosignManifest([{ ...attestation.layer, digest: sha256(twoSignatures), size: twoSignatures.length }]);
    await registry.putBlob("g/app", manifest.config);
    await registry.putManifest("g/app", attestationTag(DIGEST), manifest.manifest);
    expect(await cosignSigners(registry, "g/app", DIGEST, keysOf(["ci", key]))).toMatchObject({ unaccounted: expect.stringMatching(/a signature in sha256-.*\.att .* verifies with none of the trusted keys/) });
    expect(await cosignSigners(registry, "g/app", DIGEST, keysOf(["ci", key], ["new", other]))).toEqual({ signers: new Set(["ci", "new"]), tags: { [signatureTag(DIGEST)]: null, [attestationTag(DIGEST)]: expect.stringMatching(/^sha256:/) } });
  });
});

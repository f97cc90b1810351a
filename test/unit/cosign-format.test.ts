/**
 * cosign-format.ts against what cosign v2.6.5 itself wrote (test/fixtures/cosign, a test-only key
 * pair and the `.sig`/`.att` manifests, configs and layers cosign pushed with it).
 */
import { createHash, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  attestationLayer, attestationTag, cosignConfig, cosignManifest, type CosignKey, cosignRepositoryName, DSSE_ENVELOPE_TYPE, goJsonString, IN_TOTO_PAYLOAD_TYPE,
  dsseSignedBy, inTotoStatement, pae, PREDICATE_TYPES, publicKeyPem, readCosignManifest, readDsseEnvelope, readSimpleSigning, readStatementHead, SIGNATURE_ANNOTATION,
  signatureLayer, signatureTag, simpleSigningPayload, unlockCosignKey, verifiesBase64,
} from "../../src/core/cosign-format.js";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/cosign");
const fixture = (name: string): Buffer => readFileSync(path.join(fixtures, name));
const PASSPHRASE = "test-only-passphrase";
const REPOSITORY = "127.0.0.1:5000/helper-native-probe/app";
const DIGEST = "sha256:170920ec9d2c262b436c05986f0cad050c40b300b14139ad34f4f8fc7b90de10";

interface Manifest { layers: { mediaType: string; size: number; digest: string; annotations: Record<string, string> }[] }
const manifestOf = (name: string): Manifest => JSON.parse(fixture(name).toString("utf8")) as Manifest;

let unlocked: Promise<CosignKey> | undefined;
/** The fixture key, unlocked once for the file (scrypt is the slow part). */
const fixtureKey = (): Promise<CosignKey> => (unlocked ??= unlockCosignKey(fixture("cosign.key").toString("utf8"), PASSPHRASE));

describe("cosign's encrypted private key", () => {
  it("decrypts to the key whose public half is cosign.pub", async () => {
    const key = await fixtureKey();
    const expected = createPublicKey(fixture("cosign.pub")).export({ type: "spki", format: "der" });
    expect(key.publicKey.export({ type: "spki", format: "der" }).equals(expected)).toBe(true);
    expect(publicKeyPem(key)).toBe(fixture("cosign.pub").toString("utf8"));
  });

  it("reads the older ENCRYPTED COSIGN PRIVATE KEY name too", async () => {
    const older = fixture("cosign.key").toString("utf8").replaceAll("SIGSTORE", "COSIGN");
    const key = await unlockCosignKey(older, PASSPHRASE);
    expect(publicKeyPem(key)).toBe(fixture("cosign.pub").toString("utf8"));
  });

  it("says a wrong passphrase without repeating it or the key", async () => {
    const pem = fixture("cosign.key").toString("utf8");
    const error = await unlockCosignKey(pem, "wrong-passphrase-5c1d").then(() => undefined, (caught: unknown) => caught as Error);
    expect(error?.message).toMatch(/strata:signingKeyPassphrase does not open strata:signingKey/);
    expect(error?.message).not.toContain("wrong-passphrase-5c1d");
    for (const line of pem.split("\n").filter((part) => part.length > 20)) expect(error?.message).not.toContain(line);
  });

  it("refuses what is not cosign's encrypted key, naming the field and the fix", async () => {
    const plain = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
    await expect(unlockCosignKey(plain, PASSPHRASE)).rejects.toThrow(/strata:signingKey: is a PEM "PRIVATE KEY", not cosign's encrypted private key.*cosign import-key-pair/);
    await expect(unlockCosignKey("not a pem", PASSPHRASE)).rejects.toThrow(/strata:signingKey: is not a PEM block/);
    // scrypt parameters outside cosign's three sets are refused before any work (a DoS guard, as cosign's).
    const body = JSON.parse(Buffer.from(fixture("cosign.key").toString("utf8").split("\n").slice(1, -2).join(""), "base64").toString("utf8")) as { kdf: { params: { N: number } } };
    body.kdf.params.N = 1 << 24;
    const tampered = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from(JSON.stringify(body)).toString("base64")}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
    await expect(unlockCosignKey(tampered, PASSPHRASE)).rejects.toThrow(/scrypt parameters cosign does not accept/);
  });
});

describe("simple-signing payload", () => {
  it("is byte for byte what cosign generate prints, without and with annotations", () => {
    expect(simpleSigningPayload(REPOSITORY, DIGEST).equals(fixture("payload-no-annotations.json"))).toBe(true);
    expect(simpleSigningPayload(REPOSITORY, DIGEST, { b: "2", a: "x<y&z" }).equals(fixture("payload-annotations.json"))).toBe(true);
    expect(simpleSigningPayload(REPOSITORY, DIGEST).equals(fixture("sig-layer.json"))).toBe(true);
  });

  it("reads back what it says, and nothing from other JSON", () => {
    expect(readSimpleSigning(fixture("payload-annotations.json"))).toEqual({ repository: REPOSITORY, digest: DIGEST, annotations: { a: "x<y&z", b: "2" } });
    expect(readSimpleSigning(Buffer.from('{"critical":{"type":"atomic container signature"}}'))).toBeUndefined();
    expect(readSimpleSigning(Buffer.from("not json"))).toBeUndefined();
  });

  it("escapes strings as Go does, names repositories as go-containerregistry does", () => {
    expect(goJsonString("a<b>&c\u2028\"\n\t\b")).toBe('"a\\u003cb\\u003e\\u0026c\\u2028\\"\\n\\t\\b"');
    expect(cosignRepositoryName("docker.io", "debian")).toBe("index.docker.io/library/debian");
    expect(cosignRepositoryName("127.0.0.1:5000", "g/app")).toBe("127.0.0.1:5000/g/app");
    expect(signatureTag(DIGEST)).toBe(`sha256-${DIGEST.slice(7)}.sig`);
    expect(attestationTag(DIGEST)).toBe(`sha256-${DIGEST.slice(7)}.att`);
    expect(() => signatureTag("sha256:abc")).toThrow(/not sha256:<64 hex>/);
  });
});

describe("signatures and the .sig manifest", () => {
  it("verifies cosign's own signature with the unlocked key, and a signature of ours the same way", async () => {
    const key = await fixtureKey();
    const cosignLayer = manifestOf("sig-manifest.json").layers[0];
    expect(verifiesBase64(key, fixture("sig-layer.json"), cosignLayer?.annotations[SIGNATURE_ANNOTATION] ?? "")).toBe(true);
    const { layer, blob } = signatureLayer(key, simpleSigningPayload(REPOSITORY, DIGEST));
    expect(layer.digest).toBe(cosignLayer?.digest);
    expect(verifiesBase64(key, blob, layer.annotations[SIGNATURE_ANNOTATION] ?? "")).toBe(true);
    expect(verifiesBase64(key, Buffer.concat([blob, Buffer.from(" ")]), layer.annotations[SIGNATURE_ANNOTATION] ?? "")).toBe(false);
    expect(verifiesBase64(key, blob, "not base64!")).toBe(false);
  });

  it("writes the manifest and config cosign writes, byte for byte, for the same layer", () => {
    const cosignLayers = manifestOf("sig-manifest.json").layers;
    const { manifest, config } = cosignManifest(cosignLayers);
    expect(config.equals(fixture("sig-config.json"))).toBe(true);
    expect(manifest.equals(fixture("sig-manifest.json"))).toBe(true);
  });
});

describe("attestations and the .att manifest", () => {
  it("computes DSSE's pre-authentication encoding with byte lengths", () => {
    expect(pae("t", Buffer.from("héllo")).toString("utf8")).toBe("DSSEv1 1 t 6 héllo");
    expect(pae(IN_TOTO_PAYLOAD_TYPE, Buffer.alloc(0)).toString("utf8")).toBe(`DSSEv1 28 ${IN_TOTO_PAYLOAD_TYPE} 0 `);
  });

  it("verifies cosign's envelopes over PAE with the unlocked key", async () => {
    const key = await fixtureKey();
    for (const name of ["att-layer-spdxjson.json", "att-layer-slsaprovenance1.json"]) {
      const envelope = readDsseEnvelope(fixture(name));
      expect(envelope?.signatures).toHaveLength(1);
      expect(verifiesBase64(key, pae(IN_TOTO_PAYLOAD_TYPE, envelope?.payload ?? Buffer.alloc(0)), envelope?.signatures[0] ?? "")).toBe(true);
    }
  });

  it("reads an envelope only with exactly cosign's fields: a second payload under another case (Go's decoder folds case) or any other field is not read", async () => {
    const key = await fixtureKey();
    const envelope = readDsseEnvelope(fixture("att-layer-slsaprovenance1.json"));
    expect(envelope).toBeDefined();
    expect(dsseSignedBy(envelope!, key)).toBe(true);
    const fields = JSON.parse(fixture("att-layer-slsaprovenance1.json").toString("utf8")) as Record<string, unknown>;
    for (const extra of [{ Payload: fields.payload }, { PAYLOADTYPE: fields.payloadType }, { signatures: fields.signatures, Signatures: [] }, { note: "x" }]) {
      expect(readDsseEnvelope(Buffer.from(JSON.stringify({ ...fields, ...extra }))), JSON.stringify(Object.keys(extra))).toBeUndefined();
    }
    const { payload: _payload, ...withoutPayload } = fields;
    expect(readDsseEnvelope(Buffer.from(JSON.stringify(withoutPayload)))).toBeUndefined();
    // Signed over another payload than the one it holds: read, but not signed by the key.
    expect(dsseSignedBy({ ...envelope!, payload: Buffer.concat([envelope!.payload, Buffer.from(" ")]) }, key)).toBe(false);
  });

  it("writes the statement header cosign writes, around the predicate's own bytes", () => {
    const cosignStatement = readDsseEnvelope(fixture("att-layer-spdxjson.json"))?.payload.toString("utf8") ?? "";
    const ours = inTotoStatement(REPOSITORY, DIGEST, PREDICATE_TYPES.spdxjson, fixture("predicate-spdxjson.json")).toString("utf8");
    // Up to the predicate, the same bytes; cosign then re-encodes the predicate through Go, Strata keeps it as given.
    expect(ours.slice(0, ours.indexOf('"predicate":{'))).toBe(cosignStatement.slice(0, cosignStatement.indexOf('"predicate":{')));
    expect(ours.endsWith(`"predicate":${fixture("predicate-spdxjson.json").toString("utf8").trim()}}`)).toBe(true);
    expect(readStatementHead(Buffer.from(ours))).toEqual({ predicateType: PREDICATE_TYPES.spdxjson, subjectDigests: [DIGEST] });
    expect(() => inTotoStatement(REPOSITORY, DIGEST, PREDICATE_TYPES.spdxjson, Buffer.from("[1]"))).toThrow(/not a JSON object/);
    expect(() => inTotoStatement(REPOSITORY, DIGEST, PREDICATE_TYPES.slsaprovenance1, Buffer.from('{"buildDefinition":{}}'))).toThrow(/lacks runDetails/);
  });

  it("signs an envelope that verifies, in a layer shaped like cosign's", async () => {
    const key = await fixtureKey();
    const { layer, blob } = attestationLayer(key, REPOSITORY, DIGEST, PREDICATE_TYPES.slsaprovenance1, fixture("predicate-slsaprovenance1.json"));
    const cosignLayer = manifestOf("att-manifest.json").layers[1];
    expect(layer.mediaType).toBe(DSSE_ENVELOPE_TYPE);
    expect(layer.annotations).toEqual(cosignLayer?.annotations);
    expect(layer.digest).toBe(`sha256:${createHash("sha256").update(blob).digest("hex")}`);
    const envelope = readDsseEnvelope(blob);
    expect(Object.keys(JSON.parse(blob.toString("utf8")) as object)).toEqual(Object.keys(JSON.parse(fixture("att-layer-slsaprovenance1.json").toString("utf8")) as object));
    expect(verifiesBase64(key, pae(IN_TOTO_PAYLOAD_TYPE, envelope?.payload ?? Buffer.alloc(0)), envelope?.signatures[0] ?? "")).toBe(true);
  });

  it("writes the two-layer manifest and config cosign writes, byte for byte", () => {
    const cosignLayers = manifestOf("att-manifest.json").layers;
    expect(cosignConfig(cosignLayers).equals(fixture("att-config.json"))).toBe(true);
    expect(cosignManifest(cosignLayers).manifest.equals(fixture("att-manifest.json"))).toBe(true);
  });

  it("reads an existing manifest's layers, and refuses one it could not rewrite faithfully", () => {
    const read = readCosignManifest(JSON.parse(fixture("att-manifest.json").toString("utf8")));
    expect("layers" in read && read.layers.map((layer) => layer.annotations.predicateType)).toEqual([PREDICATE_TYPES.spdxjson, PREDICATE_TYPES.slsaprovenance1]);
    expect(readCosignManifest({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] })).toEqual({ problem: expect.stringContaining("not an image manifest") });
    // A layer without annotations is written without the field, as Go's omitempty leaves it.
    const bare = readCosignManifest({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: {}, layers: [{ mediaType: "x", size: 1, digest: DIGEST }] });
    expect("layers" in bare && cosignManifest(bare.layers).manifest.toString("utf8")).toContain(`"layers":[{"mediaType":"x","size":1,"digest":"${DIGEST}"}]`);
    const withSubject = { ...JSON.parse(fixture("sig-manifest.json").toString("utf8")) as object, subject: { digest: DIGEST } };
    expect(readCosignManifest(withSubject)).toEqual({ problem: expect.stringContaining("subject") });
  });
});

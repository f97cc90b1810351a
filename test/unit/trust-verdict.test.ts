import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type CosignKey, dsseEnvelope, inTotoStatement, IN_TOTO_PAYLOAD_TYPE, pae, publicKeyPem, signBase64, simpleSigningPayload, SPDX_DOCUMENT } from "../../src/core/cosign-format.js";
import { provenancePredicateBytes, SLSA_PROVENANCE_V1, type ProvenanceInput } from "../../src/core/provenance.js";
import { admitParentsFirst, decideVerdict, type ImageVerdict, readEvidence, refusalParagraph, type ReviewAnswer, spdxPackageCount, type CosignAnswer, type KeyAnswers, type VerifyTarget, withReviewedProvenance } from "../../src/core/trust-verdict.js";

const repository = "127.0.0.1:5000/g/keystone";
const digest = `sha256:${"a".repeat(64)}`;
const other = `sha256:${"c".repeat(64)}`;
const commit = "0123456789abcdef0123456789abcdef01234567";
const target: VerifyTarget = { layer: "keystone", digestRef: `${repository}@${digest}` };

const provenanceInput = (about: string, clean = true): ProvenanceInput => ({
  image: repository,
  digest: about,
  source: { repository: "file:///catalog", commit, clean },
  fingerprint: "f".repeat(64),
  layer: "keystone",
  buildArgs: {},
  platform: "linux/amd64",
  stack: "dev",
  channel: "dev",
  strataVersion: "0.1.0",
  runId: "run-1",
  engine: { name: "docker", version: "29.0.0" },
});

/** A line of `cosign verify --output json`: the array of verified payloads. */
const signatureLine = (about: string): string => `[${simpleSigningPayload(repository, about).toString("utf8")}]`;
/** The trusted key (keys/ci.pub): each envelope's payload must carry its signature, which Strata checks too. */
const ciKey: CosignKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
/** A DSSE envelope of `statement`, signed by `key`, as one line of `cosign verify-attestation`'s output. */
const signedEnvelope = (statement: Buffer, key: CosignKey = ciKey): string => dsseEnvelope(statement, signBase64(key, pae(IN_TOTO_PAYLOAD_TYPE, statement))).toString("utf8");
/** A line of `cosign verify-attestation --output json`: one DSSE envelope, by the trusted key. */
const envelope = (about: string, predicateType: string, predicate: Buffer): string => signedEnvelope(inTotoStatement(repository, about, predicateType, predicate));
const spdx = Buffer.from(JSON.stringify({
  spdxVersion: "SPDX-2.3",
  SPDXID: "SPDXRef-DOCUMENT",
  name: `${repository}:1.0-p0`,
  packages: [{ SPDXID: "SPDXRef-Image" }, { SPDXID: "SPDXRef-a" }, { SPDXID: "SPDXRef-b" }],
  relationships: [{ spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: "SPDXRef-Image" }],
}));
const verified = (...payloads: string[]): CosignAnswer => ({ kind: "verified", payloads });

const good: KeyAnswers = {
  key: "keys/ci.pub",
  pem: publicKeyPem(ciKey),
  signature: verified(signatureLine(digest)),
  provenance: verified(envelope(digest, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(digest)))),
  sbom: verified(envelope(digest, SPDX_DOCUMENT, spdx)),
};

describe("trust verdict", () => {
  it("admits a digest signed, attested with clean reviewed provenance and an SBOM by a trusted key", () => {
    const evidence = readEvidence(target, [good]);
    expect(evidence.failures).toEqual([]);
    const verdict = decideVerdict(target, evidence, { kind: "reviewed" }, "reviewed");
    expect(verdict).toEqual({ ...target, admitted: true, signedBy: "keys/ci.pub", commit, clean: true, reviewed: "yes", packages: 2, failures: [] });
    expect(decideVerdict(target, evidence, undefined, undefined)).toMatchObject({ admitted: true, reviewed: "not checked" });
  });

  it("refuses a trusted provenance of another layer or platform: a stack output pointing this layer at another layer's signed image does not pass", () => {
    const provenanceOf = (layer: string, platform: string): KeyAnswers => ({ ...good, provenance: verified(envelope(digest, SLSA_PROVENANCE_V1, provenancePredicateBytes({ ...provenanceInput(digest), layer, platform }))) });
    const nova = decideVerdict(target, readEvidence(target, [provenanceOf("nova", "linux/amd64")]), { kind: "reviewed" }, "origin/main");
    expect(nova.admitted).toBe(false);
    expect(refusalParagraph(nova)).toMatch(/its provenance buildDefinition\.externalParameters\.layer says the image was built as nova, not keystone; fix: point the layer at its own image/);
    // A platform's image verified as the layer itself (the index's place), and the other platform's image as this platform's.
    expect(readEvidence(target, [provenanceOf("keystone@linux-arm64", "linux/arm64")]).failures).toMatchObject([{ what: expect.stringContaining("built as keystone@linux-arm64, not keystone") }, { what: expect.stringContaining("the linux/arm64 image of keystone, not an image for g/keystone (where the layer's index goes)") }]);
    const arm64 = { layer: "keystone", platform: "linux/arm64", digestRef: target.digestRef };
    expect(readEvidence(arm64, [provenanceOf("keystone@linux-amd64", "linux/amd64")]).failures).toMatchObject([{ what: expect.stringContaining("built for linux/amd64, not linux/arm64") }]);
    // Its own: the platform's image in the index's repository (the gate names it by its layer) and in its own (strata verify names it keystone@linux-arm64).
    expect(readEvidence(arm64, [provenanceOf("keystone@linux-arm64", "linux/arm64")]).failures).toEqual([]);
    expect(readEvidence({ ...arm64, layer: "keystone@linux-arm64" }, [provenanceOf("keystone@linux-arm64", "linux/arm64")]).failures).toEqual([]);
    expect(readEvidence({ ...arm64, layer: "nova" }, [provenanceOf("keystone@linux-arm64", "linux/arm64")]).failures).toMatchObject([{ what: expect.stringContaining("not nova") }]);
    // Another trusted provenance of the same digest that is this layer's is the one the verdict rests on.
    const both: KeyAnswers = { ...good, provenance: verified(envelope(digest, SLSA_PROVENANCE_V1, provenancePredicateBytes({ ...provenanceInput(digest), layer: "nova" })), envelope(digest, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(digest)))) };
    expect(decideVerdict(target, readEvidence(target, [both]), { kind: "reviewed" }, "origin/main").admitted).toBe(true);
  });

  it("refuses a provenance whose subject names another image than the one it is promoted to or published as: the layer name and the repository come from the same stack outputs", () => {
    // A source output for nova's image (layer nova, as its provenance says) with image keystone: the copy would go to g-stable/keystone.
    const nova = { ...target, layer: "nova", digestRef: `127.0.0.1:5000/g/nova@${digest}` };
    const novaProvenance = (subjectRepository: string): KeyAnswers => ({ ...good, provenance: verified(signedEnvelope(inTotoStatement(subjectRepository, digest, SLSA_PROVENANCE_V1, provenancePredicateBytes({ ...provenanceInput(digest), layer: "nova" })))) });
    const asKeystone = readEvidence({ ...nova, publishedAs: "g-stable/keystone" }, [novaProvenance("127.0.0.1:5000/g/nova")]);
    expect(asKeystone.failures).toMatchObject([{ what: expect.stringContaining("subject names the image 127.0.0.1:5000/g/nova, not keystone (g-stable/keystone), which this image is promoted to") }]);
    // Its own: promoted to its own image in another group, and, without publishedAs, its own repository.
    expect(readEvidence({ ...nova, publishedAs: "g-stable/nova" }, [novaProvenance("127.0.0.1:5000/g/nova")]).failures).toEqual([]);
    expect(readEvidence(nova, [novaProvenance("127.0.0.1:5000/g/nova")]).failures).toEqual([]);
    // A platform's image in its own repository (strata verify) and in the index's (the gate).
    const arm64Provenance = (subjectRepository: string): KeyAnswers => ({ ...good, provenance: verified(signedEnvelope(inTotoStatement(subjectRepository, digest, SLSA_PROVENANCE_V1, provenancePredicateBytes({ ...provenanceInput(digest), layer: "keystone@linux-arm64", platform: "linux/arm64" })))) });
    expect(readEvidence({ layer: "keystone@linux-arm64", platform: "linux/arm64", digestRef: `127.0.0.1:5000/g/keystone/linux-arm64@${digest}` }, [arm64Provenance("127.0.0.1:5000/g/keystone/linux-arm64")]).failures).toEqual([]);
    expect(readEvidence({ layer: "keystone", platform: "linux/arm64", digestRef: `127.0.0.1:5000/g/keystone@${digest}`, publishedAs: "g-stable/keystone" }, [arm64Provenance("127.0.0.1:5000/g/keystone")]).failures).toEqual([]);
    expect(readEvidence({ layer: "keystone", platform: "linux/arm64", digestRef: `127.0.0.1:5000/g/keystone@${digest}`, publishedAs: "g-stable/keystone" }, [arm64Provenance("127.0.0.1:5000/g/keystone/linux-arm64")]).failures).toMatchObject([{ what: expect.stringContaining("not keystone (g-stable/keystone)") }]);
  });

  it("refuses a platform's image named as a layer of its own (keystone@linux-arm64) but published where the layer's index goes; admits it in its own repository", () => {
    const arm64 = (subjectRepository: string): KeyAnswers => ({ ...good, provenance: verified(signedEnvelope(inTotoStatement(subjectRepository, digest, SLSA_PROVENANCE_V1, provenancePredicateBytes({ ...provenanceInput(digest), layer: "keystone@linux-arm64", platform: "linux/arm64" })))) });
    // A source output {layer: keystone@linux-arm64, image: keystone} pointing at the arm64 image in the index's repository (signed there too).
    expect(readEvidence({ layer: "keystone@linux-arm64", digestRef: `127.0.0.1:5000/g/keystone@${digest}`, publishedAs: "g-stable/keystone" }, [arm64("127.0.0.1:5000/g/keystone")]).failures).toMatchObject([{ what: expect.stringContaining("the linux/arm64 image of keystone, not an image for g-stable/keystone") }]);
    // A promoted stack's per-platform entry, which strata verify finds without its platform: its own repository.
    expect(readEvidence({ layer: "keystone@linux-arm64", digestRef: `127.0.0.1:5000/g-stable/keystone/linux-arm64@${digest}` }, [arm64("127.0.0.1:5000/g/keystone/linux-arm64")]).failures).toEqual([]);
  });

  it("matches the subject of this digest only, and refuses names with no group and image to compare", () => {
    // Two subjects: this layer's name on another digest, another image's name on this one.
    const twoSubjects = `{"_type":"https://in-toto.io/Statement/v0.1","predicateType":${JSON.stringify(SLSA_PROVENANCE_V1)},"subject":[{"name":"127.0.0.1:5000/g/keystone","digest":{"sha256":"${other.slice(7)}"}},{"name":"127.0.0.1:5000/g/nova","digest":{"sha256":"${digest.slice(7)}"}}],"predicate":${provenancePredicateBytes(provenanceInput(digest)).toString("utf8").trim()}}`;
    const answers: KeyAnswers = { ...good, provenance: verified(signedEnvelope(Buffer.from(twoSubjects))) };
    expect(readEvidence(target, [answers]).failures).toMatchObject([{ what: expect.stringContaining("subject names the image 127.0.0.1:5000/g/nova, not keystone") }]);
    // A reference with no group (hand-edited outputs) against a subject with none either: nothing to compare, refused.
    const bare = { layer: "keystone", digestRef: `keystone@${digest}` };
    const bareAnswers: KeyAnswers = { ...good, provenance: verified(signedEnvelope(inTotoStatement("nova", digest, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(digest))))) };
    expect(readEvidence(bare, [bareAnswers]).failures).toMatchObject([{ what: expect.stringContaining("subject names the image nova, not (none)") }]);
    // A path with an empty part (`g/` and nothing after it) names no image either.
    const emptyPart = { layer: "keystone", digestRef: `127.0.0.1:5000/g/@${digest}` };
    const emptyAnswers: KeyAnswers = { ...good, provenance: verified(signedEnvelope(inTotoStatement("127.0.0.1:5000/h/", digest, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(digest))))) };
    expect(readEvidence(emptyPart, [emptyAnswers]).failures).toMatchObject([{ what: expect.stringContaining("not (none) (g/)") }]);
  });

  it("refuses an image whose only trusted provenance says its run adopted it, and admits it when another trusted provenance says it was built", () => {
    const adoptedProvenance = envelope(digest, SLSA_PROVENANCE_V1, provenancePredicateBytes({ ...provenanceInput(digest), adopted: true }));
    const adopted = decideVerdict(target, readEvidence(target, [{ ...good, provenance: verified(adoptedProvenance) }]), { kind: "reviewed" }, "reviewed");
    expect(adopted.admitted).toBe(false);
    expect(refusalParagraph(adopted)).toMatch(/its provenance buildDefinition\.internalParameters\.adopted says the run that signed it did not build it: .*fix: publish the layer as a new version on the channel that builds it/);
    // A later run that adopted a promoted image appends its own; the build's, there before, still admits it.
    const both = decideVerdict(target, readEvidence(target, [{ ...good, provenance: verified(adoptedProvenance, envelope(digest, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(digest)))) }]), { kind: "reviewed" }, "reviewed");
    expect(both).toMatchObject({ admitted: true, commit, clean: true, failures: [] });
  });

  it("refuses an unsigned image, and one signed by another key, saying which", () => {
    const unsigned = decideVerdict(target, readEvidence(target, [{ ...good, signature: { kind: "no signature", detail: "none" } }]), { kind: "reviewed" }, "reviewed");
    const bare = { kind: "no signature" as const, detail: "none" };
    const nothing = decideVerdict(target, readEvidence(target, [{ key: "keys/ci.pub", pem: good.pem, signature: bare, provenance: bare, sbom: bare }]), undefined, "reviewed");
    expect(refusalParagraph(nothing)).toMatch(/^keystone 127\.0\.0\.1:5000\/g\/keystone@sha256:a{64} is refused: it has no signature by a trusted key \(keys\/ci\.pub\); it has no SLSA provenance attestation by a trusted key \(keys\/ci\.pub\); it has no SPDX SBOM attestation by a trusted key \(keys\/ci\.pub\); fix: sign and attest it/);
    // A source stack signs a digest once: the way to sign again one whose tags were removed is named.
    expect(refusalParagraph(nothing)).toContain("is signed again when its strata:index:ImageAttestationsSet is replaced: pulumi up --stack <that stack> --replace");
    expect(unsigned.admitted).toBe(false);
    expect(unsigned.failures.map((failure) => failure.what)).toEqual(["it has no signature by a trusted key (keys/ci.pub)"]);
    const otherKey = decideVerdict(target, readEvidence(target, [{ ...good, signature: { kind: "mismatch", detail: "key mismatch" } }]), { kind: "reviewed" }, "reviewed");
    expect(otherKey.failures[0]?.what).toMatch(/does not verify with a trusted key/);
    expect(refusalParagraph(otherKey)).toMatch(/^keystone 127\.0\.0\.1:5000\/g\/keystone@sha256:a{64} is refused: its signature does not verify with a trusted key .*; fix: sign and attest this digest with the key/);
  });

  it("refuses a verified signature or attestation that names another digest (cosign does not read the payload)", () => {
    const moved = readEvidence(target, [{ ...good, signature: verified(signatureLine(other)), provenance: verified(envelope(other, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(other)))) }]);
    expect(moved.signers).toBeUndefined();
    expect(moved.provenance).toBeUndefined();
    expect(moved.failures.map((failure) => failure.what).join("\n")).toMatch(/signatures name other digests[\s\S]*provenance attestations by a trusted key name another subject/);
    expect(decideVerdict(target, moved, undefined, "reviewed").admitted).toBe(false);
  });

  it("reads an attestation only where the trusted key signed the payload read: an envelope re-wrapped around an unsigned payload is refused, not read", () => {
    // What the trusted key signed: a provenance from a dirty tree (refused), and the image's SBOM.
    const signedStatement = inTotoStatement(repository, digest, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(digest, false)));
    const signature = signBase64(ciKey, pae(IN_TOTO_PAYLOAD_TYPE, signedStatement));
    // What someone who can write the .att tag puts in its place: a clean one, unsigned, beside the
    // signed one under "Payload", which cosign's Go decoder verifies (case folded, the last wins).
    const forgedStatement = inTotoStatement(repository, digest, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(digest)));
    const rewrapped = `{"payloadType":"${IN_TOTO_PAYLOAD_TYPE}","payload":"${forgedStatement.toString("base64")}","signatures":[{"keyid":"","sig":"${signature}"}],"Payload":"${signedStatement.toString("base64")}"}`;
    // The same without the second field: the signature is over another payload than the one read.
    const swapped = dsseEnvelope(forgedStatement, signature).toString("utf8");
    // Signed, but by another key than the one cosign says it verified with.
    const otherKeys = signedEnvelope(forgedStatement, generateKeyPairSync("ec", { namedCurve: "P-256" }));
    const pattern = /^its SLSA provenance attestation holds a payload that the trusted key cosign verified it with did not sign .*: what it says is not read$/;
    for (const [name, line] of Object.entries({ rewrapped, swapped, otherKeys })) {
      const evidence = readEvidence(target, [{ ...good, provenance: verified(line) }]);
      expect(evidence.provenance, name).toBeUndefined();
      expect(evidence.failures.map((failure) => failure.what), name).toEqual([expect.stringMatching(pattern)]);
      const verdict = decideVerdict(target, evidence, { kind: "reviewed" }, "reviewed");
      expect(verdict.admitted, name).toBe(false);
      expect(refusalParagraph(verdict), name).toContain("fix: find out who wrote this digest's .att tag");
    }
    // Beside the signed provenance, the forged one is not read: the verdict rests on what was signed (dirty).
    const beside = decideVerdict(target, readEvidence(target, [{ ...good, provenance: verified(rewrapped, signedEnvelope(signedStatement)) }]), { kind: "reviewed" }, "reviewed");
    expect(beside).toMatchObject({ admitted: false, clean: false });
    // The SBOM the same way: its package count is never read from an unsigned payload.
    const sbom = readEvidence(target, [{ ...good, sbom: verified(dsseEnvelope(inTotoStatement(repository, digest, SPDX_DOCUMENT, spdx), signature).toString("utf8")) }]);
    expect(sbom.packages).toBeUndefined();
    expect(sbom.failures.map((failure) => failure.what)).toEqual([expect.stringMatching(/^its SPDX SBOM attestation holds a payload that the trusted key cosign verified it with did not sign/)]);
    // A trusted key whose PEM cannot be read reads nothing either.
    expect(readEvidence(target, [{ ...good, pem: "not a key" }]).failures.map((failure) => failure.what)).toEqual([expect.stringMatching(/^its SLSA provenance attestation holds a payload/), expect.stringMatching(/^its SPDX SBOM attestation holds a payload/)]);
  });

  it("reads attestations a trusted Ed25519 or RSA key signed, as cosign verifies them (Ed25519 over the message, RSA over its SHA-256; an RSA key in either PEM form)", () => {
    for (const [type, form] of [["ed25519", "spki"], ["rsa", "spki"], ["rsa", "pkcs1"]] as const) {
      const pair = type === "ed25519" ? generateKeyPairSync("ed25519") : generateKeyPairSync("rsa", { modulusLength: 2048 });
      const signedBy = (statement: Buffer): string => dsseEnvelope(statement, sign(type === "ed25519" ? null : "sha256", pae(IN_TOTO_PAYLOAD_TYPE, statement), pair.privateKey).toString("base64")).toString("utf8");
      const answers: KeyAnswers = {
        ...good,
        pem: pair.publicKey.export({ type: form, format: "pem" }).toString(),
        provenance: verified(signedBy(inTotoStatement(repository, digest, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(digest))))),
        sbom: verified(signedBy(inTotoStatement(repository, digest, SPDX_DOCUMENT, spdx))),
      };
      const evidence = readEvidence(target, [answers]);
      expect(evidence.failures, `${type} ${form}`).toEqual([]);
      expect(evidence, `${type} ${form}`).toMatchObject({ provenance: { commit, clean: true }, packages: 2 });
      // And the ci key's envelopes do not pass for it.
      expect(readEvidence(target, [{ ...good, pem: answers.pem }]).failures.length, `${type} ${form}`).toBe(2);
    }
  });

  it("blames an unsigned envelope only on the digest it claims: a batch's payloads go to each of its digests", () => {
    const forged = dsseEnvelope(inTotoStatement(repository, other, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(other))), "MEUCIQ==").toString("utf8");
    const evidence = readEvidence(target, [{ ...good, provenance: verified(forged) }]);
    expect(evidence.failures.map((failure) => failure.what)).toEqual([expect.stringMatching(/^its SLSA provenance attestations by a trusted key name another subject, not this digest/)]);
    const aboutThis = dsseEnvelope(inTotoStatement(repository, digest, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(digest))), "MEUCIQ==").toString("utf8");
    expect(readEvidence(target, [{ ...good, provenance: verified(forged, aboutThis) }]).failures.map((failure) => failure.what)).toEqual([expect.stringMatching(/^its SLSA provenance attestation holds a payload that the trusted key/)]);
  });

  it("refuses a dirty tree and an unreviewed commit, reporting commit and cleanliness", () => {
    const dirty = readEvidence(target, [{ ...good, provenance: verified(envelope(digest, SLSA_PROVENANCE_V1, provenancePredicateBytes(provenanceInput(digest, false)))) }]);
    const verdict = decideVerdict(target, dirty, { kind: "reviewed" }, "reviewed");
    expect(verdict).toMatchObject({ admitted: false, commit, clean: false, reviewed: "yes" });
    expect(verdict.failures[0]?.what).toMatch(/dirty tree/);
    const unreviewed = decideVerdict(target, readEvidence(target, [good]), { kind: "not reviewed", detail: `commit ${commit} is not in reviewed` }, "reviewed");
    expect(unreviewed).toMatchObject({ admitted: false, reviewed: "no" });
    expect(unreviewed.failures[0]?.what).toMatch(/not in the reviewed ref reviewed/);
  });

  it("rests on the same provenance whatever order the keys and the .att put them in, and admits when any passing provenance's commit is reviewed (review 133)", async () => {
    const [c1, c2] = ["1".repeat(40), "2".repeat(40)];
    const built = (from: string): string => envelope(digest, SLSA_PROVENANCE_V1, provenancePredicateBytes({ ...provenanceInput(digest), source: { repository: "file:///catalog", commit: from, clean: true } }));
    const inOrder = readEvidence(target, [{ ...good, provenance: verified(built(c1), built(c2)) }]);
    const reversed = readEvidence(target, [{ ...good, provenance: verified(built(c2), built(c1)) }]);
    expect(reversed).toEqual(inOrder);
    expect(inOrder.provenance?.commit).toBe(c1);
    expect(inOrder.otherProvenanceCommits).toEqual([{ attestedBy: "keys/ci.pub", commit: c2 }]);
    const asked: string[] = [];
    const reviewOf = (reviewedCommit: string) => async (asking: string): Promise<ReviewAnswer> => {
      asked.push(asking);
      return asking === reviewedCommit ? { kind: "reviewed" } : { kind: "not reviewed", detail: `${asking} is not in origin/main` };
    };
    // Only c2 reviewed: admitted on c2's provenance, in either order.
    for (const evidence of [inOrder, reversed]) {
      const chosen = await withReviewedProvenance(evidence, reviewOf(c2));
      expect(decideVerdict(target, chosen.evidence, chosen.review, "origin/main")).toMatchObject({ admitted: true, commit: c2, reviewed: "yes" });
    }
    // Neither reviewed: refused, naming the least commit; c1 reviewed: c2 is never asked about.
    const neither = await withReviewedProvenance(inOrder, reviewOf("none"));
    expect(decideVerdict(target, neither.evidence, neither.review, "origin/main")).toMatchObject({ admitted: false, commit: c1, reviewed: "no" });
    // Neither reviewed, c2's answer not known (a shallow clone): refused on c2, saying git could not tell, not that c1 is unreviewed.
    const unknown = await withReviewedProvenance(inOrder, async (asking) => (asking === c2 ? { kind: "could not tell", detail: `${c2} is not in this clone` } : { kind: "not reviewed", detail: `${asking} is not in origin/main` }));
    expect(decideVerdict(target, unknown.evidence, unknown.review, "origin/main")).toMatchObject({ admitted: false, commit: c2, reviewed: "could not tell" });
    asked.length = 0;
    const first = await withReviewedProvenance(reversed, reviewOf(c1));
    expect(decideVerdict(target, first.evidence, first.review, "origin/main")).toMatchObject({ admitted: true, commit: c1 });
    expect(asked).toEqual([c1]);
  });

  it("shows as the signer the key whose provenance the commit is read from, when that key signed the digest too: a row's key and commit speak for one key", async () => {
    const [c1, c2] = ["1".repeat(40), "2".repeat(40)];
    const rotatedKey: CosignKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const builtBy = (key: CosignKey, from: string): string => signedEnvelope(inTotoStatement(repository, digest, SLSA_PROVENANCE_V1, provenancePredicateBytes({ ...provenanceInput(digest), source: { repository: "file:///catalog", commit: from, clean: true } })), key);
    // keys/ci.pub (first in the policy) attested c2, keys/rotated.pub c1; both signed the digest.
    const ci: KeyAnswers = { ...good, provenance: verified(builtBy(ciKey, c2)) };
    const rotated: KeyAnswers = { ...good, key: "keys/rotated.pub", pem: publicKeyPem(rotatedKey), provenance: verified(builtBy(rotatedKey, c1)), sbom: verified(signedEnvelope(inTotoStatement(repository, digest, SPDX_DOCUMENT, spdx), rotatedKey)) };
    const reviewOnly = (reviewedCommit: string) => async (asking: string): Promise<ReviewAnswer> => (asking === reviewedCommit ? { kind: "reviewed" } : { kind: "not reviewed", detail: `${asking} is not in origin/main` });
    const decide = async (answers: KeyAnswers[], reviewedCommit: string): Promise<ImageVerdict> => {
      const chosen = await withReviewedProvenance(readEvidence(target, answers), reviewOnly(reviewedCommit));
      return decideVerdict(target, chosen.evidence, chosen.review, "origin/main");
    };
    // c1 reviewed: the verdict rests on rotated's provenance, so rotated is the signer shown, not ci.
    expect(await decide([ci, rotated], c1)).toMatchObject({ admitted: true, signedBy: "keys/rotated.pub", commit: c1 });
    // c2 reviewed: on ci's.
    expect(await decide([ci, rotated], c2)).toMatchObject({ admitted: true, signedBy: "keys/ci.pub", commit: c2 });
    // rotated attested but did not sign this digest: the signer is the key that did.
    const unsignedByRotated: KeyAnswers = { ...rotated, signature: verified(signatureLine(other)) };
    expect(await decide([ci, unsignedByRotated], c1)).toMatchObject({ admitted: true, signedBy: "keys/ci.pub", commit: c1 });
    // Two keys attested c1, the least by name (keys/a.pub) without signing: the provenance of the one
    // that signed (keys/b.pub) is the one the row rests on, not keys/ci.pub, which said c2 (review 138).
    const [aKey, bKey] = [generateKeyPairSync("ec", { namedCurve: "P-256" }), generateKeyPairSync("ec", { namedCurve: "P-256" })];
    const attesting = (key: string, pair: CosignKey, from: string, signs: boolean): KeyAnswers => ({
      ...good, key, pem: publicKeyPem(pair), signature: verified(signatureLine(signs ? digest : other)), provenance: verified(builtBy(pair, from)), sbom: verified(signedEnvelope(inTotoStatement(repository, digest, SPDX_DOCUMENT, spdx), pair)),
    });
    const [a1, b1] = [attesting("keys/a.pub", aKey, c1, false), attesting("keys/b.pub", bKey, c1, true)];
    expect(await decide([ci, b1, a1], c1)).toMatchObject({ admitted: true, signedBy: "keys/b.pub", commit: c1 });
    // The same when the verdict moves to the other commit, the reviewed one (withReviewedProvenance).
    const c0 = "0".repeat(40);
    const ciAtC0: KeyAnswers = { ...good, provenance: verified(builtBy(ciKey, c0)) };
    const [a2, b2] = [attesting("keys/a.pub", aKey, c2, false), attesting("keys/b.pub", bKey, c2, true)];
    expect(await decide([ciAtC0, b2, a2], c2)).toMatchObject({ admitted: true, signedBy: "keys/b.pub", commit: c2 });
    // The commit comes first, the signer only breaks a tie: a key that did not sign, attesting the
    // least commit, is still the one a refusal names (review 139).
    const [aLeast, bMore] = [attesting("keys/a.pub", aKey, c1, false), attesting("keys/b.pub", bKey, c2, true)];
    expect(await decide([bMore, aLeast], "none")).toMatchObject({ admitted: false, commit: c1, reviewed: "no" });
    expect(await decide([bMore, aLeast], c1)).toMatchObject({ admitted: true, signedBy: "keys/b.pub", commit: c1 });
  });

  it("never admits what could not be told: cosign or the registry failing, git unable to answer, no answer at all", () => {
    const failing = readEvidence(target, [{ key: "keys/ci.pub", pem: good.pem, signature: { kind: "could not tell", detail: "registry 503" }, provenance: { kind: "could not tell", detail: "registry 503" }, sbom: { kind: "could not tell", detail: "registry 503" } }]);
    expect(failing.failures).toHaveLength(3);
    expect(failing.failures.every((failure) => failure.what.startsWith("could not verify"))).toBe(true);
    const verdict = decideVerdict(target, failing, undefined, "reviewed");
    expect(verdict).toMatchObject({ admitted: false, reviewed: "could not tell" });
    // The three failures share their fix: the paragraph says it once.
    expect(refusalParagraph(verdict).match(/fix:/g)).toHaveLength(1);
    expect(refusalParagraph(verdict)).toMatch(/is refused: could not verify its signature: registry 503; could not verify its SLSA provenance attestation: registry 503; could not verify its SPDX SBOM attestation: registry 503; fix: make sure the registry answers/);
    const unknownCommit = decideVerdict(target, readEvidence(target, [good]), { kind: "could not tell", detail: "commit … is not in the checkout" }, "reviewed");
    expect(unknownCommit).toMatchObject({ admitted: false, reviewed: "could not tell" });
    // The commit's history, fetched into the catalog's checkout (where git is asked): a problem of the ref itself is said once, before any image (readReviewedTip).
    expect(unknownCommit.failures.map((failure) => failure.fix)).toEqual([expect.stringMatching(/^fetch reviewed and the commit into the catalog's git checkout \(git fetch; a shallow clone: git fetch --unshallow\)/)]);
    expect(decideVerdict(target, readEvidence(target, [good]), undefined, "reviewed").admitted).toBe(false);
    expect(decideVerdict(target, readEvidence(target, []), undefined, undefined).admitted).toBe(false);
    // One key could not tell, another says unsigned: Strata does not know it is unsigned.
    const mixed = readEvidence(target, [{ ...good, signature: { kind: "no signature", detail: "none" } }, { ...good, key: "keys/b.pub", signature: { kind: "could not tell", detail: "timeout" } }]);
    expect(mixed.failures[0]?.what).toMatch(/^could not verify its signature: timeout/);
  });

  it("does not admit on one key's provenance while another trusted key's provenance check could not be made (review 131: that one could name another parent)", () => {
    const newKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const unsigned = { key: "keys/new.pub", pem: publicKeyPem(newKey), signature: { kind: "mismatch" as const, detail: "not by this key" }, sbom: { kind: "mismatch" as const, detail: "not by this key" } };
    // The new key signed nothing: admitted by the CI key.
    expect(decideVerdict(target, readEvidence(target, [good, { ...unsigned, provenance: { kind: "mismatch", detail: "not by this key" } }]), undefined, undefined).admitted).toBe(true);
    expect(decideVerdict(target, readEvidence(target, [good, { ...unsigned, provenance: { kind: "no signature", detail: "none" } }]), undefined, undefined).admitted).toBe(true);
    // Its provenance check could not be made: refused, saying which key and why.
    const unknown = decideVerdict(target, readEvidence(target, [good, { ...unsigned, provenance: { kind: "could not tell", detail: "cosign verify-attestation took longer than 120 s" } }]), undefined, undefined);
    expect(unknown.admitted).toBe(false);
    expect(unknown.failures.map((failure) => failure.what)).toEqual(["could not check its SLSA provenance attestations with keys/new.pub (cosign verify-attestation took longer than 120 s), and one by that key could name an image it was built on that is not verified"]);
  });

  it("refuses a tag reference and admits by any one of several trusted keys", () => {
    expect(readEvidence({ layer: "x", digestRef: `${repository}:latest` }, [good]).failures[0]?.what).toMatch(/not a digest reference/);
    const second = readEvidence(target, [{ ...good, key: "keys/a.pub", signature: { kind: "mismatch", detail: "x" } }, { ...good, key: "keys/b.pub" }]);
    expect(second.signers).toEqual(["keys/b.pub"]);
  });

  it("counts SBOM packages without the image's own package", () => {
    expect(spdxPackageCount({ predicate: JSON.parse(spdx.toString()) })).toBe(2);
    expect(spdxPackageCount({ predicate: {} })).toBeUndefined();
    // A stand-in with the document's id and no packages is no SPDX document: no version, no name.
    expect(spdxPackageCount({ predicate: { SPDXID: "SPDXRef-DOCUMENT", packages: [] } })).toBeUndefined();
    expect(spdxPackageCount({ predicate: { ...JSON.parse(spdx.toString()), spdxVersion: "SPDX-3.0" } })).toBeUndefined();
    expect(spdxPackageCount({ predicate: { ...JSON.parse(spdx.toString()), name: "" } })).toBeUndefined();
  });
});

describe("an image is admitted only with the image it was built on", () => {
  const ref = (layer: string, hex: string): string => `127.0.0.1:5000/g/${layer}@sha256:${hex.repeat(64)}`;
  const verdict = (layer: string, hex: string, parent?: string, admitted = true): ImageVerdict => ({
    layer, digestRef: ref(layer, hex), admitted, reviewed: "yes", ...(parent === undefined ? {} : { parentDigestRefs: [parent] }),
    failures: admitted ? [] : [{ what: "it has no signature by a trusted key (keys/ci.pub)", fix: "sign it" }],
  });

  it("reads the parents from every provenance that passes, none from one that fails; a root only when none names one", () => {
    const provenanceOn = (parent: string | undefined, clean = true): string => envelope(digest, SLSA_PROVENANCE_V1, provenancePredicateBytes({ ...provenanceInput(digest, clean), ...(parent === undefined ? {} : { parent }) }));
    const judge = (...lines: string[]): ImageVerdict => decideVerdict(target, readEvidence(target, [{ ...good, provenance: verified(...lines) }]), { kind: "reviewed" }, "origin/main");
    expect(judge(provenanceOn(ref("base", "e")))).toMatchObject({ admitted: true, parentDigestRefs: [ref("base", "e")] });
    // Two runs attested the digest (review 123): both parents, whatever their order.
    expect(judge(provenanceOn(ref("base", "e")), provenanceOn(ref("base", "f"))).parentDigestRefs).toEqual([ref("base", "e"), ref("base", "f")]);
    // A dirty provenance's parent is not one the image is judged with.
    expect(judge(provenanceOn(ref("base", "9"), false), provenanceOn(ref("base", "e"))).parentDigestRefs).toEqual([ref("base", "e")]);
    expect("parentDigestRefs" in judge(provenanceOn(undefined))).toBe(false);
    // A second provenance that names none does not make it a root (review 124).
    expect(judge(provenanceOn(ref("base", "e")), provenanceOn(undefined)).parentDigestRefs).toEqual([ref("base", "e")]);
    expect(judge(provenanceOn(undefined), provenanceOn(ref("base", "e"))).parentDigestRefs).toEqual([ref("base", "e")]);
  });

  it("admits an image only when every parent its provenances name is admitted (review 124: another provenance cannot name its way past a refused one)", () => {
    const twice: ImageVerdict = { ...verdict("tools", "2"), parentDigestRefs: [ref("base", "1"), ref("base", "9")] };
    expect(admitParentsFirst([twice, verdict("base", "1"), verdict("base", "9")])[0]?.admitted).toBe(true);
    const [refused] = admitParentsFirst([twice, verdict("base", "1"), verdict("base", "9", undefined, false)]);
    expect(refused?.admitted).toBe(false);
    expect(refused?.failures[0]?.what).toContain(`it was built on ${ref("base", "9")}, which is refused here`);
    expect(admitParentsFirst([{ ...twice, parentDigestRefs: [ref("base", "1"), ref("base", "7")] }, verdict("base", "1")])[0]?.admitted).toBe(false);
  });

  it("refuses an image that names itself, or a chain that leads back to it, as what it was built on; and one whose provenance names an empty list", () => {
    expect(admitParentsFirst([verdict("tools", "2", ref("tools", "2"))])[0]?.admitted).toBe(false);
    // Though the same digest is trusted through another verdict of it: no build is its own parent.
    const [self] = admitParentsFirst([verdict("tools", "2", ref("tools", "2")), { ...verdict("tools", "2", ref("base", "1")), layer: "tools-again" }, verdict("base", "1")]);
    expect(self?.admitted).toBe(false);
    expect(self?.failures[0]?.what).toBe(`its provenance says it was built on ${ref("tools", "2")}, itself: a provenance no build writes`);
    const cycle = admitParentsFirst([verdict("a", "3", ref("b", "4")), verdict("b", "4", ref("a", "3")), verdict("base", "1")]);
    expect(cycle.map((entry) => entry.admitted)).toEqual([false, false, true]);
    const [unnamed] = admitParentsFirst([{ ...verdict("tools", "2"), parentDigestRefs: [] }]);
    expect(unnamed?.admitted).toBe(false);
    expect(unnamed?.failures[0]?.what).toContain("names the image it was built on as nothing");
  });

  it("judges each verdict with its own provenances' parents, though another verdict of the same digest is trusted (review 125)", () => {
    // A platform's image verified twice: in its own repository (naming a refused parent) and in its index's (naming an admitted one).
    const judged = admitParentsFirst([
      { ...verdict("tools@linux-arm64", "2", ref("base", "9")), digestRef: `127.0.0.1:5000/g/tools/linux-arm64@sha256:${"2".repeat(64)}` },
      verdict("tools", "2", ref("base", "1")),
      verdict("base", "1"),
      verdict("base", "9", undefined, false),
    ]);
    expect(judged.map((entry) => entry.admitted)).toEqual([false, true, true, false]);
  });

  it("gives each untrusted parent its own reason (review 125)", () => {
    const [child] = admitParentsFirst([{ ...verdict("tools", "2"), parentDigestRefs: [ref("base", "7"), ref("base", "9"), ref("base", "8")] }, verdict("base", "9", undefined, false)], new Set([`sha256:${"8".repeat(64)}`]));
    expect(child?.failures.map((failure) => failure.what.slice(0, 120))).toEqual([
      `it was built on ${ref("base", "9")}, which is refused here`.slice(0, 120),
      `it was built on ${ref("base", "8")}, which could not be verified here`.slice(0, 120),
      `it was built on ${ref("base", "7")}, which is not among the images verified with it`.slice(0, 120),
    ]);
  });

  it("grounds a long chain given leaves first", () => {
    const hexOf = (at: number): string => at.toString(16).padStart(64, "0");
    const chain = Array.from({ length: 3000 }, (_, at) => ({ layer: `l${at}`, digestRef: `127.0.0.1:5000/g/l${at}@sha256:${hexOf(at + 1)}`, admitted: true, reviewed: "yes" as const, ...(at === 0 ? {} : { parentDigestRefs: [`127.0.0.1:5000/g/l${at - 1}@sha256:${hexOf(at)}`] }), failures: [] })).reverse();
    expect(admitParentsFirst(chain).every((entry) => entry.admitted)).toBe(true);
    const broken = chain.map((entry) => (entry.layer === "l1500" ? { ...entry, admitted: false } : entry));
    expect(admitParentsFirst(broken).filter((entry) => entry.admitted)).toHaveLength(1500);
  });

  it("admits a tree whose every parent is admitted, the parent found by digest in another repository (a promotion's source, an index's platform images)", () => {
    const tree = [verdict("base", "1"), verdict("tools", "2", ref("base", "1")), verdict("app", "3", `127.0.0.1:5000/other-group/tools@sha256:${"2".repeat(64)}`)];
    expect(admitParentsFirst(tree)).toEqual(tree);
  });

  it("refuses each descendant of a refused image (review 121: one built on an image its run adopted, planted under its tag), to the leaves, whatever the order", () => {
    const judged = admitParentsFirst([verdict("app", "3", ref("tools", "2")), verdict("tools", "2", ref("base", "1")), verdict("base", "1", undefined, false), verdict("db", "4", ref("base", "1")), verdict("other", "5")]);
    expect(judged.map((entry) => [entry.layer, entry.admitted])).toEqual([["app", false], ["tools", false], ["base", false], ["db", false], ["other", true]]);
    expect(judged[1]?.failures).toEqual([{ what: `it was built on ${ref("base", "1")}, which is refused here: that image's bytes are in this one, so it is not trusted either`, fix: `fix what refuses ${ref("base", "1")} (its own paragraph), then promote or verify again` }]);
    expect(refusalParagraph(judged[0] as ImageVerdict)).toContain(`it was built on ${ref("tools", "2")}, which is refused here`);
    // The refused parent's own paragraph is unchanged.
    expect(judged[2]?.failures).toHaveLength(1);
  });

  it("refuses an image whose parent the caller could not verify, saying so", () => {
    const [child] = admitParentsFirst([verdict("tools", "2", ref("base", "1"))], new Set([`sha256:${"1".repeat(64)}`]));
    expect(child?.failures).toEqual([{ what: `it was built on ${ref("base", "1")}, which could not be verified here (its own paragraph says why): that image's bytes are in this one`, fix: `fix what kept ${ref("base", "1")} from being verified (its own paragraph), then promote or verify again` }]);
  });

  it("refuses an image whose parent is not among those verified with it", () => {
    const [child] = admitParentsFirst([verdict("tools", "2", ref("base", "9")), verdict("base", "1")]);
    expect(child?.admitted).toBe(false);
    expect(child?.failures).toMatchObject([{ what: expect.stringContaining(`built on ${ref("base", "9")}, which is not among the images verified with it`), fix: expect.stringContaining("strata bump --stack <the channel that builds it> --minor tools") }]);
    // A parent that names no digest is not one.
    expect(admitParentsFirst([verdict("tools", "2", "127.0.0.1:5000/g/base:1.0-p0"), verdict("base", "1")])[0]?.admitted).toBe(false);
  });
});

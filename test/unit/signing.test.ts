/**
 * Signing (issue 29): the stack's decision and the key's checks (core/signing-config.ts), the
 * ImageAttestations inputs (keyed on the digest alone; the key never in outputs), the provider's
 * create (never a second signature on a digest), and the summary's signing line.
 */
import { describe, expect, it } from "vitest";
import { NOT_SIGNED, signingConfigProblems, signingDecision, signingKeyProblems } from "../../src/core/signing-config.js";
import { renderSummary, type SummaryLayer, summaryRows } from "../../src/cli/summary.js";
import { type LayerEvent } from "../../src/engine/events.js";
import { type AttestationType, type Cosign, type SigningKey } from "../../src/engine/cosign.js";
import { attestImage, PREDICATE_TYPES } from "../../src/pulumi/provider/attest-image.js";
import { attestationOutputsOf, cosignTag, diffImageAttestations, parseImageAttestationsInputs, withoutSecrets } from "../../src/pulumi/provider/image-attestations-inputs.js";
import { SECRET_SIGNATURE } from "../../src/pulumi/provider/layer-image-inputs.js";
import { type ManifestResult, type RegistryClient } from "../../src/registry/client.js";

const PEM_BODY = "eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6OCwicCI6MX0sInNhbHQiOiJzZWNyZXQtbGluZSJ9";
const PEM = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${PEM_BODY}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
const PASSPHRASE = "passphrase-never-shown-93b1";
const DIGEST = `sha256:${"a".repeat(64)}`;
const PARENT = `127.0.0.1:5000/g/base@sha256:${"b".repeat(64)}`;

const secret = (value: unknown): Record<string, unknown> => ({ [SECRET_SIGNATURE[0]]: SECRET_SIGNATURE[1], value });

const inputs = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  registry: "127.0.0.1:5000",
  digestRef: `127.0.0.1:5000/g/app@${DIGEST}`,
  tag: "1.0-p0",
  provenanceFacts: {
    layer: "app", fingerprint: "f".repeat(64), parent: PARENT, buildArgs: { A: "1" }, platform: "linux/amd64", stack: "dev", channel: "dev",
    strataVersion: "0.1.0", runId: "2026-12-02T18-00-00-000Z", engine: { name: "docker.Image (@pulumi/docker)", version: "29.0.0" },
    source: { repository: "file:///src", commit: "c".repeat(40), clean: true },
  },
  signingKey: secret({ privateKeyPem: secret(PEM), password: secret(PASSPHRASE) }),
  ...extra,
});

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

describe("ImageAttestations inputs", () => {
  it("reads the digest reference, the provenance facts and the wrapped secret key", () => {
    const parsed = parseImageAttestationsInputs(inputs());
    expect(parsed.repository).toBe("g/app");
    expect(parsed.digest).toBe(DIGEST);
    expect(parsed.signingKey).toEqual({ privateKeyPem: PEM, password: PASSPHRASE });
    expect(parsed.provenanceFacts.parent).toBe(PARENT);
    expect(parsed.provenanceFacts.source.clean).toBe(true);
  });

  it("refuses a tag instead of a digest, another registry, a missing key, and a tree not known to be clean", () => {
    expect(() => parseImageAttestationsInputs(inputs({ digestRef: "127.0.0.1:5000/g/app:1.0-p0" }))).toThrow(/not registry\/repository@sha256/);
    expect(() => parseImageAttestationsInputs(inputs({ digestRef: `10.0.0.1:5000/g/app@${DIGEST}` }))).toThrow(/not in the registry/);
    expect(() => parseImageAttestationsInputs(inputs({ signingKey: undefined }))).toThrow(/signing key is missing/);
    const unknownTree = inputs();
    (unknownTree.provenanceFacts as { source: Record<string, unknown> }).source = { repository: "file:///src", commit: "c".repeat(40) };
    expect(() => parseImageAttestationsInputs(unknownTree)).toThrow(/clean must be true or false/);
  });

  it("changes only with the digest: a new commit, run or key is no reason to sign again", () => {
    const old = withoutSecrets(inputs());
    const later = inputs({ provenanceFacts: { ...(inputs().provenanceFacts as object), runId: "later", source: { repository: "file:///src", commit: "d".repeat(40), clean: false } }, signingKey: secret({ privateKeyPem: "other", password: "other" }) });
    expect(diffImageAttestations(old, later)).toEqual([]);
    expect(diffImageAttestations(old, inputs({ digestRef: `127.0.0.1:5000/g/app@sha256:${"e".repeat(64)}` }))).toEqual(["digestRef"]);
  });

  it("keeps the key and the login out of what it stores, and the outputs across an update", () => {
    const stored = withoutSecrets(inputs({ registryAuth: secret({ username: "u", password: "p" }) }));
    expect(stored.signingKey).toBeUndefined();
    expect(stored.registryAuth).toBeUndefined();
    expect(JSON.stringify(stored)).not.toContain(PASSPHRASE);
    expect(attestationOutputsOf({ ...stored, signature: "s", packages: 3, signedBefore: false })).toEqual({ signature: "s", packages: 3, signedBefore: false });
    expect(cosignTag(DIGEST, "sig")).toBe(`sha256-${"a".repeat(64)}.sig`);
  });
});

/** A registry holding one empty image (no layers), and whatever cosign tags `tags` names. */
function fakeRegistry(tags: Record<string, { annotations?: Record<string, string> }[]>): RegistryClient {
  const manifest = async (_repository: string, reference: string): Promise<ManifestResult | undefined> => {
    if (reference === DIGEST) return { digest: DIGEST, mediaType: "application/vnd.oci.image.manifest.v1+json", manifest: { mediaType: "application/vnd.oci.image.manifest.v1+json", config: { digest: `sha256:${"9".repeat(64)}`, mediaType: "application/vnd.oci.image.config.v1+json" }, layers: [] } };
    const layers = tags[reference];
    return layers === undefined ? undefined : { digest: `sha256:${"8".repeat(64)}`, mediaType: "application/vnd.oci.image.manifest.v1+json", manifest: { layers: layers.map((layer) => ({ digest: `sha256:${"7".repeat(64)}`, ...layer })) } };
  };
  return { registry: "127.0.0.1:5000", manifest, configOf: async () => ({ created: "2026-12-02T18:00:00Z", architecture: "amd64", os: "linux" }) } as unknown as RegistryClient;
}

/** A cosign that records what it was asked to do. */
function recordingCosign(calls: string[]): (env: Record<string, string>) => Cosign {
  return () => ({
    sign: async (refs: readonly string[], key: SigningKey) => {
      calls.push(`sign ${refs.join(" ")} ${key.password === PASSPHRASE ? "with the key" : "with another key"}`);
      return { wallMs: 0 };
    },
    attest: async (ref: string, _key: SigningKey, type: AttestationType, predicate: Buffer) => {
      calls.push(`attest ${type} ${ref} ${predicate.length > 0 ? "predicate" : "empty"}`);
      return { wallMs: 0 };
    },
  }) as unknown as Cosign;
}

describe("ImageAttestations create", () => {
  const ref = `127.0.0.1:5000/g/app@${DIGEST}`;

  it("signs the digest once and attests its SBOM and provenance", async () => {
    const calls: string[] = [];
    const outputs = await attestImage(fakeRegistry({}), parseImageAttestationsInputs(inputs()), recordingCosign(calls));
    expect(calls).toEqual([`sign ${ref} with the key`, `attest spdxjson ${ref} predicate`, `attest slsaprovenance1 ${ref} predicate`]);
    expect(outputs).toMatchObject({ signature: `127.0.0.1:5000/g/app:${cosignTag(DIGEST, "sig")}`, sbom: `127.0.0.1:5000/g/app:${cosignTag(DIGEST, "att")}`, packages: 0, signedBefore: false });
    expect(JSON.stringify(outputs)).not.toContain(PASSPHRASE);
  });

  it("never signs a digest whose .sig is in the registry again, and writes only the attestations missing", async () => {
    const calls: string[] = [];
    const registry = fakeRegistry({ [cosignTag(DIGEST, "sig")]: [{}], [cosignTag(DIGEST, "att")]: [{ annotations: { predicateType: PREDICATE_TYPES.spdxjson } }] });
    const outputs = await attestImage(registry, parseImageAttestationsInputs(inputs()), recordingCosign(calls));
    expect(calls).toEqual([`attest slsaprovenance1 ${ref} predicate`]);
    expect(outputs.signedBefore).toBe(true);
  });

  it("gives the same SBOM and provenance digests for the same image and facts", async () => {
    const first = await attestImage(fakeRegistry({}), parseImageAttestationsInputs(inputs()), recordingCosign([]));
    const second = await attestImage(fakeRegistry({}), parseImageAttestationsInputs(inputs()), recordingCosign([]));
    expect(second.sbomDigest).toBe(first.sbomDigest);
    expect(second.provenanceDigest).toBe(first.provenanceDigest);
  });
});

describe("summary signing line", () => {
  const layer = (name: string, signing: SummaryLayer["signing"]): SummaryLayer => ({ layer: name, image: `img-${name}`, ref: `r:5000/g/img-${name}:1.0-p0`, parent: null, ...(signing === undefined ? {} : { signing }) });
  const event = (name: string, char: string): [string, LayerEvent] => [name, { layer: name, type: "docker:index/image:Image", op: "create", failed: false, digestRef: `r:5000/g/img-${name}@sha256:${char.repeat(64)}` }];

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

  it("adds no line for a run that says nothing of signing", () => {
    const rows = summaryRows([layer("base", undefined)], new Map([event("base", "a")]));
    expect(renderSummary(rows).split("\n").at(-1)).toBe("1 built");
  });
});

/**
 * cosign.ts against the real pinned cosign and a real registry (issue 29): tiny images are pushed
 * with the registry API (no Docker engine), signed, attested and verified offline with generated
 * ECDSA keys. cosign must be there already: scripts/test.sh runs `scripts/cosign-tools.sh ensure`
 * before this project, and a missing binary fails the test loudly rather than building inside it.
 */

import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provenancePredicateBytes, provenanceProblems, statementOfEnvelope } from "../../src/core/provenance.js";
import { Cosign, cosignArgs, PRIVATE_KEY_VARIABLE, type SigningKey } from "../../src/engine/cosign.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";
import { freePort } from "../helpers/net.js";
import { registry, registryAddress } from "./harness.js";
import { cosignBinary } from "./cosign-cli.js";

const sha256 = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** Puts one blob with the distribution API's two-step upload (POST, then PUT with the digest). */
async function pushBlob(repository: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`http://${registryAddress}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get("location") ?? "", `http://${registryAddress}`);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: new Uint8Array(bytes) });
  expect(put.status).toBe(201);
  return digest;
}

/** A one-layer image of random bytes under `repository:tag`; its `repository@digest` reference. */
async function pushTinyImage(repository: string, tag: string): Promise<string> {
  const layer = randomBytes(64);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(layer)] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: await pushBlob(repository, config), size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: await pushBlob(repository, layer), size: layer.length }],
  }));
  const digest = await registry.putManifest(repository, tag, manifest, "application/vnd.oci.image.manifest.v1+json");
  return `${registryAddress}/${repository}@${digest}`;
}

describe("cosign", () => {
  const keysDir = mkdtempSync(path.join(tmpdir(), "strata-cosign-keys-"));
  const group = `e2e-cosign-${randomBytes(3).toString("hex")}`;
  let cosign: Cosign;
  let ci: { publicKeyFile: string; key: SigningKey };
  let other: { publicKeyFile: string; key: SigningKey };

  beforeAll(async () => {
    cosign = new Cosign({ binary: cosignBinary() });
    // A passphrase that would be easy to spot anywhere it leaks.
    for (const name of ["ci", "other"]) mkdirSync(path.join(keysDir, name));
    ci = await cosign.generateKeyPair(path.join(keysDir, "ci"), "ci-passphrase-7f3a9c");
    other = await cosign.generateKeyPair(path.join(keysDir, "other"), "other-passphrase-21be");
  });
  afterAll(() => rmSync(keysDir, { recursive: true, force: true }));

  it("keeps the key and its passphrase out of every argv it builds", () => {
    const ref = `${registryAddress}/${group}/app@sha256:${"a".repeat(64)}`;
    const argvs = [cosignArgs.sign([ref], { commit: "abc" }), cosignArgs.attest(ref, "slsaprovenance1", "/tmp/p.json"), cosignArgs.verify(ref, ci.publicKeyFile), cosignArgs.verifyAttestation(ref, ci.publicKeyFile, "spdxjson")];
    for (const argv of argvs) {
      const joined = argv.join(" ");
      expect(joined).not.toContain(ci.key.password);
      expect(joined).not.toContain("PRIVATE KEY");
      expect(joined).toContain("--allow-http-registry=true");
    }
    expect(argvs[0]).toContain(`env://${PRIVATE_KEY_VARIABLE}`);
    // A tag can move between signing and use: only digests are signed or verified.
    expect(() => cosignArgs.sign([`${registryAddress}/${group}/app:1.0`])).toThrow(/not a digest reference/);
    // A remote registry never gets plain HTTP because a loopback one is in the same call.
    expect(() => cosignArgs.sign([ref, `registry.example.org/${group}/app@sha256:${"a".repeat(64)}`])).toThrow(/mixes loopback and remote/);
    expect(cosignArgs.verify(`registry.example.org/${group}/app@sha256:${"a".repeat(64)}`, "k.pub")).not.toContain("--allow-http-registry=true");
  });

  it("verifies a signed digest with its key, and tells another key and an unsigned digest apart", async () => {
    const signed = await pushTinyImage(`${group}/app`, "1.0");
    const unsigned = await pushTinyImage(`${group}/app`, "1.1");
    await cosign.sign([signed], ci.key, { "org.strata.commit": "0123abc" });

    const verified = await cosign.verify(signed, ci.publicKeyFile);
    expect(verified.kind).toBe("verified");
    expect(verified.kind === "verified" && verified.payloads.join("\n")).toContain(signed.slice(signed.indexOf("@") + 1));
    expect((await cosign.verify(signed, ci.publicKeyFile, { "org.strata.commit": "0123abc" })).kind).toBe("verified");

    expect(await cosign.verify(signed, other.publicKeyFile)).toMatchObject({ kind: "mismatch" });
    expect(await cosign.verify(signed, ci.publicKeyFile, { "org.strata.commit": "ffff" })).toMatchObject({ kind: "mismatch" });
    expect(await cosign.verify(unsigned, ci.publicKeyFile)).toMatchObject({ kind: "no signature" });
  });

  it("signs several digests in one call", async () => {
    const refs = [await pushTinyImage(`${group}/many`, "1"), await pushTinyImage(`${group}/many`, "2"), await pushTinyImage(`${group}/other`, "1")];
    await cosign.sign(refs, ci.key);
    for (const ref of refs) expect((await cosign.verify(ref, ci.publicKeyFile)).kind).toBe("verified");
    // Verified together in one call too; one unsigned among them and the call is not "verified".
    expect((await cosign.verify(refs, ci.publicKeyFile)).kind).toBe("verified");
    const unsigned = await pushTinyImage(`${group}/many`, "3");
    expect(await cosign.verify([...refs, unsigned], ci.publicKeyFile)).toMatchObject({ kind: "no signature" });
  });

  it("attests provenance that the gate's checks read back from the verified envelope", async () => {
    const ref = await pushTinyImage(`${group}/attested`, "1.0");
    const [image, digest] = ref.split("@") as [string, string];
    const predicate = provenancePredicateBytes({
      image, digest, layer: "attested", fingerprint: "f".repeat(64), buildArgs: {}, platform: "linux/amd64", stack: "dev", channel: "dev",
      source: { repository: "https://git.example.org/strata.git", commit: "0123456789abcdef0123456789abcdef01234567", clean: true },
      strataVersion: "0.1.0", runId: "run-1", engine: { name: "docker", version: "29.0.0" },
    });
    await cosign.attest(ref, ci.key, "slsaprovenance1", predicate);

    const verified = await cosign.verifyAttestation(ref, ci.publicKeyFile, "slsaprovenance1");
    expect(verified.kind).toBe("verified");
    if (verified.kind !== "verified") return;
    const { statement, problem } = statementOfEnvelope(verified.payloads[0] ?? "", ref);
    expect(problem).toBeUndefined();
    expect(provenanceProblems(statement, ref)).toMatchObject({ provenance: { commit: "0123456789abcdef0123456789abcdef01234567" }, problems: [] });

    expect(await cosign.verifyAttestation(ref, other.publicKeyFile, "slsaprovenance1")).toMatchObject({ kind: "mismatch" });
    // Attested provenance is no SBOM, and a signature is no attestation.
    expect(await cosign.verifyAttestation(ref, ci.publicKeyFile, "spdxjson")).toMatchObject({ kind: "no signature" });
    const signedOnly = await pushTinyImage(`${group}/attested`, "1.1");
    await cosign.sign([signedOnly], ci.key);
    expect(await cosign.verifyAttestation(signedOnly, ci.publicKeyFile, "slsaprovenance1")).toMatchObject({ kind: "no signature" });
    // An attestation is no signature either.
    expect(await cosign.verify(ref, ci.publicKeyFile)).toMatchObject({ kind: "no signature" });
  });

  it("could not tell when the registry is unreachable, failing or too slow; never verified or unsigned", async () => {
    const signed = await pushTinyImage(`${group}/faults`, "1.0");
    await cosign.sign([signed], ci.key);
    const pathAndDigest = signed.slice(registryAddress.length);

    const nobody = await freePort();
    expect(await cosign.verify(`127.0.0.1:${nobody}${pathAndDigest}`, ci.publicKeyFile)).toMatchObject({ kind: "could not tell" });

    const [host, port] = registryAddress.split(":") as [string, string];
    const proxy = await startFaultProxy({ host, port: Number(port) });
    try {
      proxy.setRule((request) => (request.kind === "manifest" ? { kind: "status", status: 500 } : undefined));
      expect(await cosign.verify(`${proxy.address}${pathAndDigest}`, ci.publicKeyFile)).toMatchObject({ kind: "could not tell" });
      proxy.setRule((request) => (request.kind === "manifest" ? { kind: "stall", ms: 30_000 } : undefined));
      const impatient = new Cosign({ binary: cosign.binary, timeoutMs: 3_000 });
      expect(await impatient.verify(`${proxy.address}${pathAndDigest}`, ci.publicKeyFile)).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("took longer than 3 s") });
    } finally {
      await proxy.close();
    }

    const missing = new Cosign({ binary: path.join(keysDir, "no-cosign-here") });
    expect(await missing.verify(signed, ci.publicKeyFile)).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("scripts/cosign-tools.sh ensure") });
  });

  it("says a wrong passphrase without repeating the key or the passphrase", async () => {
    const ref = await pushTinyImage(`${group}/wrong-pass`, "1.0");
    const error = await cosign.sign([ref], { privateKeyPem: ci.key.privateKeyPem, password: "not-the-passphrase-0000" }).then(() => undefined, (caught: unknown) => caught as Error);
    expect(error?.message).toMatch(/cosign could not sign/);
    expect(error?.message).not.toContain("not-the-passphrase-0000");
    expect(error?.message).not.toContain(ci.key.privateKeyPem.split("\n")[1] ?? "PEM");
    expect((await cosign.verify(ref, ci.publicKeyFile)).kind).toBe("no signature");
  });
});

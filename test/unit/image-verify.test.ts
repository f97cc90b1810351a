/**
 * The shared verifier (engine/image-verify.ts) against fake cosign binaries, for the answers the
 * real one gives only under faults: a call that hangs past its time, one killed by a signal, exit 0
 * with nothing printed, and a batch whose payloads name only some of its digests. Each must refuse
 * the image (could not tell, or not signed), never admit it. The real cosign's verdicts are the e2e
 * suite's (test/e2e/cosign.test.ts, promotion-gate.test.ts).
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import { attestationTag, type CosignKey, dsseEnvelope, inTotoStatement, IN_TOTO_PAYLOAD_TYPE, pae, publicKeyPem, signBase64, simpleSigningPayload, SPDX_DOCUMENT } from "../../src/core/cosign-format.js";
import { provenancePredicateBytes, SLSA_PROVENANCE_V1 } from "../../src/core/provenance.js";
import { refusalParagraph } from "../../src/core/trust-verdict.js";
import { Cosign } from "../../src/engine/cosign.js";
import { COSIGN_BATCH_LIMIT, readReviewedTip, verifyImages } from "../../src/engine/image-verify.js";
import { attestImage, signImages } from "../../src/registry/signatures.js";
import { MemoryRegistry } from "../helpers/memory-registry.js";

const root = mkdtempSync(path.join(tmpdir(), "strata-image-verify-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const repository = "127.0.0.1:5000/g/keystone";
const digestA = `sha256:${"a".repeat(64)}`;
const digestB = `sha256:${"b".repeat(64)}`;
const refA = `${repository}@${digestA}`;
const refB = `${repository}@${digestB}`;
/** The trusted key: the fake cosigns print envelopes it signed, since Strata checks each payload's signature too. */
const ciKey: CosignKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
const otherPem = publicKeyPem(generateKeyPairSync("ec", { namedCurve: "P-256" }));
const trust = { keys: [{ configured: "keys/ci.pub", file: path.join(root, "ci.pub"), pem: publicKeyPem(ciKey) }], checkoutDir: root, reviewed: undefined };
const signedEnvelope = (statement: Buffer): string => dsseEnvelope(statement, signBase64(ciKey, pae(IN_TOTO_PAYLOAD_TYPE, statement))).toString("utf8");

/** A cosign that runs `body` (bash) with its arguments; `$calls` gets a line per call. */
function fakeCosign(name: string, body: string): { binary: string; calls: string } {
  const binary = path.join(root, name);
  const calls = path.join(root, `${name}.calls`);
  writeFileSync(binary, `#!/bin/bash\necho "$*" >> '${calls}'\n${body}\n`);
  chmodSync(binary, 0o755);
  return { binary, calls };
}

/** Each call a fake cosign was given, a line each. */
const callsOf = (fake: { calls: string }): string[] => readFileSync(fake.calls, "utf8").split("\n").filter((line) => line !== "");

/** What an image's refusal says, a failure a line. */
const said = (verdict: { failures: readonly { what: string }[] } | undefined): string => verdict?.failures.map((failure) => failure.what).join("\n") ?? "";

/** What the real cosign prints for digest A only, by check: a simple-signing array, a provenance envelope, an SBOM envelope. */
function payloadsFor(digest: string, commit = "0".repeat(40)): Record<string, string> {
  const provenance = provenancePredicateBytes({ image: repository, digest, source: { repository: "file:///catalog", commit, clean: true }, fingerprint: "f".repeat(64), layer: "keystone", buildArgs: {}, platform: "linux/amd64", stack: "dev", channel: "dev", strataVersion: "0.1.0", runId: "run-1", engine: { name: "docker", version: "29" } });
  const spdx = Buffer.from(JSON.stringify({ spdxVersion: "SPDX-2.3", SPDXID: "SPDXRef-DOCUMENT", name: "keystone", packages: [{ SPDXID: "SPDXRef-a" }], relationships: [] }));
  return {
    verify: `[${simpleSigningPayload(repository, digest).toString("utf8")}]`,
    slsaprovenance1: signedEnvelope(inTotoStatement(repository, digest, SLSA_PROVENANCE_V1, provenance)),
    spdxjson: signedEnvelope(inTotoStatement(repository, digest, SPDX_DOCUMENT, spdx)),
  };
}

describe("the verifier under cosign's faults", () => {
  it("refuses, as could not tell, a cosign that runs past its time, one killed by a signal, one that exits 0 printing nothing, and one that exits 0 printing what is not JSON", async () => {
    const hangs = fakeCosign("hangs", "exec sleep 30");
    const killed = fakeCosign("killed", "kill -KILL $$");
    const silent = fakeCosign("silent", "exit 0");
    // Not read as verified payloads naming other digests (another key's, another image's): review 133.
    const prose = fakeCosign("prose", "echo 'Verification for the image -- The following checks were performed'; exit 0");
    // The short limit only where the fake hangs: a busy machine may take longer than that to start bash.
    for (const [fake, said, timeoutMs] of [[hangs, /took longer than 300 ms and was stopped/, 300], [killed, /cannot verify the signature of .*: cosign verify was ended by SIGKILL before it answered/, 30_000], [silent, /verified the signature of .* but printed no payload/, 30_000], [prose, /verified the signature of .* but printed a line that is not JSON \("Verification for the image/, 30_000]] as const) {
      const started = Date.now();
      const [verdict] = await verifyImages([{ layer: "keystone", digestRef: refA }], trust, { cosignBinary: fake.binary, timeoutMs });
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(verdict?.admitted, fake.binary).toBe(false);
      expect(verdict?.failures.map((failure) => failure.what).join("\n"), fake.binary).toMatch(said);
      expect(verdict?.failures.every((failure) => failure.what.startsWith("could not verify")), fake.binary).toBe(true);
      expect(refusalParagraph(verdict!)).toContain("nothing is admitted that could not be verified");
    }
    // Stopped for time is said so (a batch that hangs alone too is not asked further); ended by a signal is not.
    const timedOutOf = async (binary: string, timeoutMs: number): Promise<boolean | undefined> => {
      const answer = await new Cosign({ binary, timeoutMs }).verify(refA, path.join(root, "ci.pub"));
      return answer.kind === "could not tell" ? answer.timedOut : undefined;
    };
    expect(await timedOutOf(hangs.binary, 300)).toBe(true);
    expect(await timedOutOf(killed.binary, 30_000)).toBeUndefined();
  });

  it("gives a batch more time for each further digest: a large release's batch is not stopped by the one-digest limit", async () => {
    // A cosign that takes a second a call and verifies both digests (their payloads, a line each).
    for (const [check, text] of Object.entries(payloadsFor(digestA))) writeFileSync(path.join(root, `both-${check}.out`), `${text}\n${payloadsFor(digestB)[check] ?? ""}\n`);
    const slow = fakeCosign("slow", `
sleep 1
case "$1" in
  verify) cat '${path.join(root, "both-verify.out")}' ;;
  verify-attestation) type=""; prev=""; for arg in "$@"; do [ "$prev" = --type ] && type="$arg"; prev="$arg"; done; cat "${root}/both-$type.out" ;;
esac`);
    const targets = [{ layer: "keystone", digestRef: refA }, { layer: "keystone", digestRef: refB }];
    // 400 ms for one digest, 3 s more for the second: each check's one call of both finishes in time.
    const given = await verifyImages(targets, trust, { cosignBinary: slow.binary, timeoutMs: 400, perReferenceMs: 3_000 });
    expect(given.map((verdict) => verdict.admitted)).toEqual([true, true]);
    expect(readFileSync(slow.calls, "utf8").trim().split("\n")).toHaveLength(3);
    // Without the allowance the same batch is stopped, and so is each digest's own call: refused, never admitted.
    const fixed = await verifyImages(targets, trust, { cosignBinary: slow.binary, timeoutMs: 400, perReferenceMs: 0 });
    expect(fixed.map((verdict) => verdict.admitted)).toEqual([false, false]);
    expect(fixed[0]?.failures.map((failure) => failure.what).join("\n")).toMatch(/took longer than 400 ms and was stopped/);
  }, 30_000);

  it("counts a call's digests, not a digest's characters, and says the call's own limit; a batch that hangs alone too is not asked digest by digest", async () => {
    const hangs = fakeCosign("always-slow", "sleep 2");
    const cosign = new Cosign({ binary: hangs.binary, timeoutMs: 300, perReferenceMs: 200 });
    // One digest, as a string: the one-digest limit, whatever its length.
    expect(await cosign.verify(refA, path.join(root, "ci.pub"))).toMatchObject({ kind: "could not tell", timedOut: true, detail: expect.stringMatching(/took longer than 300 ms and was stopped/) });
    expect(await cosign.verify([refA, refB], path.join(root, "ci.pub"))).toMatchObject({ kind: "could not tell", timedOut: true, detail: expect.stringMatching(/took longer than 500 ms and was stopped/) });
    // Three digests: the batch runs out of time, then the first alone; the other two are not asked (refused all the same).
    const refC = `${repository}@sha256:${"c".repeat(64)}`;
    const verdicts = await verifyImages([refA, refB, refC].map((digestRef) => ({ layer: "keystone", digestRef })), trust, { cosignBinary: hangs.binary, timeoutMs: 300, perReferenceMs: 0 });
    expect(verdicts.map((verdict) => verdict.admitted)).toEqual([false, false, false]);
    const hung = `cosign ran out of time at 127.0.0.1:5000 twice in a row, on the signature check of a batch of 3 images with keys/ci.pub, then on the signature check of ${refA} alone with keys/ci.pub, so the registry or cosign seems to hang`;
    expect(said(verdicts[2])).toContain(`could not verify its signature: cosign was not asked about it: ${hung}`);
    // The attestation checks: not asked either, the same reason given.
    expect(said(verdicts[2])).toContain(`could not verify its SLSA provenance attestation: cosign was not asked about it: ${hung}`);
    expect(said(verdicts[0])).toContain(`could not verify its SPDX SBOM attestation: cosign was not asked about it: ${hung}`);
    // The two calls above, then the signature's batch and the first digest alone; nothing more.
    expect(callsOf(hangs)).toHaveLength(2 + 2);
  }, 30_000);

  it("once cosign seems to hang at a registry, asks it nothing more there, for any check or key, and still asks the other registries", async () => {
    const refElsewhere = `127.0.0.1:5001/g/keystone@${digestA}`;
    // Every call about a digest at 127.0.0.1:5000 hangs; one about 127.0.0.1:5001 answers "no signature" at once.
    const hangsAtOne = fakeCosign("hangs-at-5000", `
case "$*" in *127.0.0.1:5000/*) exec sleep 30 ;; esac
echo "no signatures found" >&2; exit 10`);
    const twoKeys = { ...trust, keys: [...trust.keys, { configured: "keys/other.pub", file: path.join(root, "other.pub"), pem: otherPem }] };
    const targets = [refA, refB, refElsewhere].map((digestRef) => ({ layer: "keystone", digestRef }));
    // A limit a busy machine's bash start stays well inside, for the calls that answer.
    const verdicts = await verifyImages(targets, twoKeys, { cosignBinary: hangsAtOne.binary, timeoutMs: 2_000, perReferenceMs: 0 });
    expect(verdicts.map((verdict) => verdict.admitted)).toEqual([false, false, false]);
    const calls = callsOf(hangsAtOne);
    // At :5000 the signature's batch of A and B, then A alone: out of time twice in a row; then nothing more there.
    expect(calls.filter((call) => call.includes("127.0.0.1:5000/"))).toHaveLength(2);
    // At :5001 every check with every key: 3 checks × 2 keys, one digest each.
    expect(calls.filter((call) => call.includes("127.0.0.1:5001/"))).toHaveLength(6);
    const hung = `cosign was not asked about it: cosign ran out of time at 127.0.0.1:5000 twice in a row, on the signature check of a batch of 2 images with keys/ci.pub, then on the signature check of ${refA} alone with keys/ci.pub`;
    expect(said(verdicts[1])).toContain(hung);
    // A's and B's attestations, with either key: not asked, for the same reason.
    for (const verdict of verdicts.slice(0, 2)) expect(said(verdict).split("\n").filter((line) => line.includes(hung))).toHaveLength(verdict === verdicts[0] ? 2 : 3);
    expect(said(verdicts[2])).toMatch(/no signature/);
    expect(said(verdicts[2])).not.toMatch(/seems to hang/);
  }, 30_000);

  it("after a batch refused at once, stops asking digest by digest once two digests alone in a row run out of time", async () => {
    const [refC, refD] = ["c", "d"].map((hex) => `${repository}@sha256:${hex.repeat(64)}`) as [string, string];
    // The batch: "no signature" at once; each digest alone hangs.
    const aloneHangs = fakeCosign("alone-hangs", `
refs=0; for arg in "$@"; do case "$arg" in *@sha256:*) refs=$((refs + 1)) ;; esac; done
[ "$refs" -gt 1 ] && { echo "no signatures found" >&2; exit 10; }
exec sleep 30`);
    const verdicts = await verifyImages([refA, refB, refC, refD].map((digestRef) => ({ layer: "keystone", digestRef })), trust, { cosignBinary: aloneHangs.binary, timeoutMs: 2_000, perReferenceMs: 0 });
    expect(verdicts.map((verdict) => verdict.admitted)).toEqual([false, false, false, false]);
    // The batch, A alone, B alone; C and D not asked, and no attestation check asked.
    expect(callsOf(aloneHangs)).toHaveLength(3);
    expect(said(verdicts[3])).toContain(`cosign was not asked about it: cosign ran out of time at 127.0.0.1:5000 twice in a row, on the signature check of ${refA} alone with keys/ci.pub, then on the signature check of ${refB} alone with keys/ci.pub`);
  }, 30_000);

  it("counts only calls out of time, and only in a row: an answer between two, or a call that failed otherwise, starts the count again", async () => {
    const [refC, refD] = ["c", "d"].map((hex) => `${repository}@sha256:${hex.repeat(64)}`) as [string, string];
    const targets = [refA, refB, refC, refD].map((digestRef) => ({ layer: "keystone", digestRef }));
    // The batch runs out of time; A alone says "no signature"; B alone runs out of time; C and D answer "no signature".
    const between = fakeCosign("out-answer-out", `
refs=0; for arg in "$@"; do case "$arg" in *@sha256:*) refs=$((refs + 1)); last="$arg" ;; esac; done
[ "$refs" -gt 1 ] && exec sleep 30
case "$last" in *@sha256:bbbb*) exec sleep 30 ;; esac
echo "no signatures found" >&2; exit 10`);
    const first = await verifyImages(targets, trust, { cosignBinary: between.binary, timeoutMs: 2_000, perReferenceMs: 0 });
    expect(first.map((verdict) => verdict.admitted)).toEqual([false, false, false, false]);
    // Each check: the batch and all four alone (each call out of time is followed by one that answers).
    expect(callsOf(between).filter((call) => call.startsWith("verify "))).toHaveLength(5);
    expect(callsOf(between)).toHaveLength(15);
    expect(said(first[2])).toMatch(/no signature/);
    expect(first.map(said).join("\n")).not.toMatch(/not asked/);
    // A batch that failed at once (not for time), then A alone out of time: B and C are still asked.
    const failedThenOut = fakeCosign("failed-then-out", `
refs=0; for arg in "$@"; do case "$arg" in *@sha256:*) refs=$((refs + 1)); last="$arg" ;; esac; done
[ "$refs" -gt 1 ] && { echo "registry said 500" >&2; exit 1; }
case "$last" in *@sha256:aaaa*) exec sleep 30 ;; esac
echo "no signatures found" >&2; exit 10`);
    await verifyImages(targets.slice(0, 3), trust, { cosignBinary: failedThenOut.binary, timeoutMs: 2_000, perReferenceMs: 0 });
    expect(callsOf(failedThenOut).filter((call) => call.startsWith("verify "))).toHaveLength(4);
  }, 60_000);

  it("a batch's answer between two calls out of time starts the count again too", async () => {
    // Signature and SBOM checks: the batch runs out of time, A alone says "no signature", B alone runs out of time.
    // The provenance check's batch verifies both (prints both payloads).
    for (const [name, digest] of [["a", digestA], ["b", digestB]] as const) writeFileSync(path.join(root, `reset-${name}.out`), `${payloadsFor(digest).slsaprovenance1 ?? ""}\n`);
    const batchBetween = fakeCosign("batch-between", `
refs=0; for arg in "$@"; do case "$arg" in *@sha256:*) refs=$((refs + 1)); last="$arg" ;; esac; done
case "$*" in *slsaprovenance1*) [ "$refs" -gt 1 ] && { cat "${root}/reset-a.out" "${root}/reset-b.out"; exit 0; } ;; esac
[ "$refs" -gt 1 ] && exec sleep 30
case "$last" in *@sha256:bbbb*) exec sleep 30 ;; esac
echo "no signatures found" >&2; exit 10`);
    await verifyImages([refA, refB].map((digestRef) => ({ layer: "keystone", digestRef })), trust, { cosignBinary: batchBetween.binary, timeoutMs: 2_000, perReferenceMs: 0 });
    // B alone out of time, then the provenance batch verified: the SBOM check's batch out of time is the first again, so A and B are asked alone.
    expect(callsOf(batchBetween)).toHaveLength(3 + 1 + 3);
  }, 60_000);

  it("a key rotation: a trusted key that made none of the images' signatures is asked once a batch, not image by image, when Strata accounts for every signature with another trusted key", async () => {
    // cosign: the CI key verifies both digests (their payloads, a line each); the new key finds nothing anywhere.
    for (const [check, text] of Object.entries(payloadsFor(digestA))) writeFileSync(path.join(root, `rotation-${check}.out`), `${text}\n${payloadsFor(digestB)[check] ?? ""}\n`);
    const rotation = fakeCosign("rotation", `
case "$*" in *new.pub*) echo "Error: no matching signatures: none of the signatures matched" >&2; exit 12 ;; esac
case "$1" in
  verify) cat '${path.join(root, "rotation-verify.out")}' ;;
  verify-attestation) type=""; prev=""; for arg in "$@"; do [ "$prev" = --type ] && type="$arg"; prev="$arg"; done; cat "${root}/rotation-$type.out" ;;
esac`);
    const newKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const rotating = { ...trust, keys: [...trust.keys, { configured: "keys/new.pub", file: path.join(root, "new.pub"), pem: publicKeyPem(newKey) }] };
    const targets = [refA, refB].map((digestRef) => ({ layer: "keystone", digestRef }));
    /** The registry's .sig and .att of both digests, signed by `signer` (B's .sig by `bSigner` too, when given). */
    const registryOf = async (bSigner?: CosignKey): Promise<MemoryRegistry> => {
      const registry = new MemoryRegistry("127.0.0.1:5000");
      await signImages(registry, [refA, refB], ciKey);
      if (bSigner !== undefined) await signImages(registry, [refB], bSigner);
      for (const ref of [refA, refB]) await attestImage(registry, ref, [{ predicateType: SLSA_PROVENANCE_V1, predicate: Buffer.from('{"buildDefinition":{},"runDetails":{}}') }], ciKey);
      return registry;
    };
    writeFileSync(rotation.calls, "");
    const newKeyCalls = (): number => callsOf(rotation).filter((call) => call.includes("new.pub")).length;
    const run = async (options: Partial<Parameters<typeof verifyImages>[2]>): Promise<{ admitted: boolean[]; calls: number; said: string[] }> => {
      const before = newKeyCalls();
      const verdicts = await verifyImages(targets, rotating, { cosignBinary: rotation.binary, ...options });
      return { admitted: verdicts.map((verdict) => verdict.admitted), calls: newKeyCalls() - before, said: verdicts.map(said) };
    };
    // Every signature there the CI key's: the new key's three batch calls, and nothing alone; admitted by the CI key as before.
    const read = await run({ signatureReader: await registryOf() });
    expect(read.admitted).toEqual([true, true]);
    expect(read.calls).toBe(3);
    // Without the reader, or with cosign sent elsewhere for signatures (COSIGN_REPOSITORY): each image alone too.
    for (const options of [{}, { signatureReader: await registryOf(), env: { COSIGN_REPOSITORY: "127.0.0.1:5000/elsewhere" } }]) {
      const asked = await run(options);
      expect(asked.admitted).toEqual([true, true]);
      expect(asked.calls).toBe(3 + 3 * 2);
    }
    // B's .sig holds a signature by a key that is not trusted: only cosign can say what the new key finds there, so B is asked alone.
    const unaccounted = await run({ signatureReader: await registryOf(generateKeyPairSync("ec", { namedCurve: "P-256" })) });
    expect(unaccounted.calls).toBe(3 + 3);
    expect(callsOf(rotation).slice(-9).filter((call) => call.includes("new.pub") && !call.includes(digestA) && call.includes(digestB))).toHaveLength(3);
    // The new key signed B: the reader names it among B's signers, so B is asked alone with it (and A, which it did not sign, is not).
    const signedByNew = await run({ signatureReader: await registryOf(newKey) });
    expect(signedByNew.calls).toBe(3 + 3);
    // A registry that fails the read: asked alone, never left out.
    const failing = await registryOf();
    failing.manifest = async () => {
      throw new Error("HTTP 500");
    };
    expect((await run({ signatureReader: failing })).calls).toBe(3 + 3 * 2);

    // Each image's tags read once for every key and check, and once more after cosign: then they must be unchanged.
    const counted = await registryOf();
    const reads = new Map<string, number>();
    const countingManifest = counted.manifest.bind(counted);
    counted.manifest = async (repositoryName: string, reference: string) => {
      reads.set(reference, (reads.get(reference) ?? 0) + 1);
      return countingManifest(repositoryName, reference);
    };
    expect((await run({ signatureReader: counted })).calls).toBe(3);
    expect([...reads.values()]).toEqual([2, 2, 2, 2]);
    // B's .att changed between the read and the read again (another run attested it meanwhile): the new key's answers about B are not known, so B is refused.
    const moving = await registryOf();
    const movingManifest = moving.manifest.bind(moving);
    let attReads = 0;
    moving.manifest = async (repositoryName: string, reference: string) => {
      const found = await movingManifest(repositoryName, reference);
      if (reference !== attestationTag(digestB) || found === undefined || ++attReads === 1) return found;
      return { ...found, digest: `sha256:${"9".repeat(64)}` };
    };
    const moved = await run({ signatureReader: moving });
    expect(moved.calls).toBe(3);
    expect(moved.admitted).toEqual([true, false]);
    expect(moved.said[1]).toContain(`its .sig or .att changed while cosign was asked about the others, so whether keys/new.pub signed it is not known; run again`);
    // Another registry than the reader's: asked alone.
    const elsewhere = await registryOf();
    expect((await run({ signatureReader: { registry: "127.0.0.1:5001", manifest: elsewhere.manifest.bind(elsewhere), blobStream: elsewhere.blobStream.bind(elsewhere) } })).calls).toBe(3 + 3 * 2);
    // The same key listed twice, its PEM written otherwise (and cosign, here, failing with that file): it made the
    // signatures, so it is asked image by image as before, never left out.
    const again = { ...rotating, keys: [...trust.keys, { configured: "keys/again.pub", file: path.join(root, "again.pub"), pem: publicKeyPem(ciKey).replace(/\n/g, "\r\n") }] };
    const failsAgain = fakeCosign("fails-again", `case "$*" in *again.pub*) echo "Error: no matching signatures" >&2; exit 12 ;; esac; exec '${rotation.binary}' "$@"`);
    const twice = await verifyImages(targets, again, { cosignBinary: failsAgain.binary, signatureReader: await registryOf() });
    expect(twice.map((verdict) => verdict.admitted)).toEqual([true, true]);
    expect(callsOf(failsAgain).filter((call) => call.includes("again.pub"))).toHaveLength(3 + 3 * 2);
  }, 60_000);

  it("leaves no key out on a registry name cosign reads elsewhere (no dot, port or localhost: a Docker Hub repository to it)", async () => {
    const hubLike = fakeCosign("hub-like", `case "$*" in *new.pub*) echo "Error: no matching signatures" >&2; exit 12 ;; esac; echo "Error: no matching signatures" >&2; exit 12`);
    const registry = new MemoryRegistry("myreg");
    const refs = [digestA, digestB].map((digest) => `myreg/g/keystone@${digest}`);
    await signImages(registry, refs, ciKey);
    const newKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const twoKeys = { ...trust, keys: [...trust.keys, { configured: "keys/new.pub", file: path.join(root, "new.pub"), pem: publicKeyPem(newKey) }] };
    await verifyImages(refs.map((digestRef) => ({ layer: "keystone", digestRef })), twoKeys, { cosignBinary: hubLike.binary, signatureReader: registry });
    // Each key: a batch and each image alone, for each check.
    expect(callsOf(hubLike).filter((call) => call.includes("new.pub"))).toHaveLength(3 + 3 * 2);
  }, 30_000);

  it("counts across checks: a registry holding one image is not asked a third time after two calls about it ran out of time", async () => {
    const hangs = fakeCosign("one-image-hangs", "exec sleep 30");
    const [verdict] = await verifyImages([{ layer: "keystone", digestRef: refA }], { ...trust, keys: [...trust.keys, { configured: "keys/other.pub", file: path.join(root, "other.pub"), pem: otherPem }] }, { cosignBinary: hangs.binary, timeoutMs: 300, perReferenceMs: 0 });
    expect(verdict?.admitted).toBe(false);
    // The signature and the provenance checks with the first key; then nothing, for either key.
    expect(callsOf(hangs)).toHaveLength(2);
    expect(said(verdict)).toContain(`cosign was not asked about it: cosign ran out of time at 127.0.0.1:5000 twice in a row, on the signature check of ${refA} alone with keys/ci.pub, then on the provenance attestation check of ${refA} alone with keys/ci.pub`);
  }, 30_000);

  it("never asks about one digest twice in a call: two repositories holding it are each judged on their own attestations", async () => {
    const side = `127.0.0.1:5000/side/keystone@${digestA}`;
    // A cosign that prints, for each reference it is given, what that repository's tags hold: dev's verify, side's are another digest's.
    for (const [check, text] of Object.entries(payloadsFor(digestA))) writeFileSync(path.join(root, `dev-${check}.out`), `${text}\n`);
    for (const [check, text] of Object.entries(payloadsFor(digestB))) writeFileSync(path.join(root, `side-${check}.out`), `${text}\n`);
    const perRepository = fakeCosign("per-repository", `
check=verify; prev=""; for arg in "$@"; do [ "$prev" = --type ] && check="$arg"; prev="$arg"; done
for arg in "$@"; do case "$arg" in *side/keystone@*) cat "${root}/side-$check.out" ;; *g/keystone@*) cat "${root}/dev-$check.out" ;; esac; done`);
    const verdicts = await verifyImages([{ layer: "keystone", digestRef: refA }, { layer: "keystone", digestRef: side }], trust, { cosignBinary: perRepository.binary });
    // Asked together, side's reference would be given dev's payloads, which name digest A: admitted on them.
    expect(verdicts.map((verdict) => verdict.admitted)).toEqual([true, false]);
    expect(callsOf(perRepository).every((call) => !(call.includes(refA) && call.includes(side)))).toBe(true);
  });

  it("asks the rest of a batch that ran out of time one by one while the digests alone answer, whatever they answer", async () => {
    const refC = `${repository}@sha256:${"c".repeat(64)}`;
    for (const [name, digest] of [["b", digestB], ["c", `sha256:${"c".repeat(64)}`]] as const) {
      for (const [check, text] of Object.entries(payloadsFor(digest))) writeFileSync(path.join(root, `one-${name}-${check}.out`), `${text}\n`);
    }
    // The batch hangs; A alone has no signature (exit 10, no time lost); B and C alone verify.
    const answers = fakeCosign("hangs-as-batch", `
refs=0; for arg in "$@"; do case "$arg" in *@sha256:*) refs=$((refs + 1)); last="$arg" ;; esac; done
[ "$refs" -gt 1 ] && exec sleep 30
case "$last" in *@sha256:aaaa*) echo "no signatures found" >&2; exit 10 ;; *@sha256:bbbb*) name=b ;; *) name=c ;; esac
case "$1" in
  verify) cat "${root}/one-$name-verify.out" ;;
  verify-attestation) type=""; prev=""; for arg in "$@"; do [ "$prev" = --type ] && type="$arg"; prev="$arg"; done; cat "${root}/one-$name-$type.out" ;;
esac`);
    // A limit a busy machine's bash start stays well inside, for the calls that answer; only the batch reaches it.
    const verdicts = await verifyImages([refA, refB, refC].map((digestRef) => ({ layer: "keystone", digestRef })), trust, { cosignBinary: answers.binary, timeoutMs: 3_000, perReferenceMs: 0 });
    expect(verdicts.map((verdict) => verdict.admitted)).toEqual([false, true, true]);
    expect(verdicts[0]?.failures.map((failure) => failure.what).join("\n")).toMatch(/no signature/);
    // A batch refused at once (not for time), then A alone hangs: nothing says the registry hangs, so B and C are still asked.
    const fastThenHangs = fakeCosign("fast-batch-slow-a", readFileSync(answers.binary, "utf8").split("\n").slice(2).join("\n").replace('[ "$refs" -gt 1 ] && exec sleep 30', '[ "$refs" -gt 1 ] && { echo "no signatures found" >&2; exit 10; }').replace('*@sha256:aaaa*) echo "no signatures found" >&2; exit 10 ;;', "*@sha256:aaaa*) exec sleep 30 ;;"));
    const afterFastBatch = await verifyImages([refA, refB, refC].map((digestRef) => ({ layer: "keystone", digestRef })), trust, { cosignBinary: fastThenHangs.binary, timeoutMs: 3_000, perReferenceMs: 0 });
    expect(afterFastBatch.map((verdict) => verdict.admitted)).toEqual([false, true, true]);
  }, 30_000);

  it("gives a batch's payloads to each of its digests and admits only the digest they name", async () => {
    const payloads = payloadsFor(digestA);
    for (const [check, text] of Object.entries(payloads)) writeFileSync(path.join(root, `${check}.out`), `${text}\n`);
    // Exit 0 for the whole batch (as if both verified), printing only digest A's payloads; asked about B alone, "no signature" (exit 10).
    const batch = fakeCosign("batch", `
for arg in "$@"; do last="$arg"; done
if [ "$last" = '${refB}' ] && [[ "$*" != *'${refA}'* ]]; then echo "no signatures found" >&2; exit 10; fi
case "$1" in
  verify) cat '${path.join(root, "verify.out")}' ;;
  verify-attestation) type=""; prev=""; for arg in "$@"; do [ "$prev" = --type ] && type="$arg"; prev="$arg"; done; cat "${root}/$type.out" ;;
esac`);
    const verdicts = await verifyImages([{ layer: "keystone", digestRef: refA }, { layer: "keystone", digestRef: refB }], trust, { cosignBinary: batch.binary });
    expect(verdicts.map((verdict) => verdict.admitted)).toEqual([true, false]);
    expect(verdicts[0]).toMatchObject({ signedBy: "keys/ci.pub", reviewed: "not checked", packages: 1 });
    const refusedB = verdicts[1]!.failures.map((failure) => failure.what).join("\n");
    expect(refusedB).toMatch(/signature does not verify with a trusted key .* the verified signatures name other digests/);
    expect(refusedB).toMatch(/SLSA provenance attestations by a trusted key name another subject/);
    expect(refusedB).toMatch(/SPDX SBOM attestations by a trusted key name another subject/);
  });
  it("asks each image alone when a batch's statements name several subjects: another image's .att never decides this one's verdict (review 133)", async () => {
    const provenance = (about: string, clean: boolean): Buffer => provenancePredicateBytes({ image: repository, digest: about, source: { repository: "file:///catalog", commit: "0".repeat(40), clean }, fingerprint: "f".repeat(64), layer: "keystone", buildArgs: {}, platform: "linux/amd64", stack: "dev", channel: "dev", strataVersion: "0.1.0", runId: "run-1", engine: { name: "docker", version: "29" } });
    // A's own provenance records a dirty tree; B's .att holds a clean one whose subjects are B and A.
    const dirtyA = signedEnvelope(inTotoStatement(repository, digestA, SLSA_PROVENANCE_V1, provenance(digestA, false)));
    const both = JSON.parse(inTotoStatement(repository, digestB, SLSA_PROVENANCE_V1, provenance(digestB, true)).toString("utf8")) as { subject: unknown[] };
    both.subject.push({ name: repository, digest: { sha256: digestA.slice("sha256:".length) } });
    const aboutBoth = signedEnvelope(Buffer.from(JSON.stringify(both)));
    const files = { verify: `${payloadsFor(digestA).verify}\n${payloadsFor(digestB).verify}`, spdxjson: `${payloadsFor(digestA).spdxjson}\n${payloadsFor(digestB).spdxjson}` };
    for (const [name, text] of Object.entries({ ...files, "slsa-a": dirtyA, "slsa-b": aboutBoth, "slsa-ab": `${dirtyA}\n${aboutBoth}` })) writeFileSync(path.join(root, `several-${name}.out`), `${text}\n`);
    const several = fakeCosign("several-subjects", `
type=""; prev=""; for arg in "$@"; do [ "$prev" = --type ] && type="$arg"; prev="$arg"; done
case "$1" in
  verify) cat '${path.join(root, "several-verify.out")}' ;;
  verify-attestation)
    [ "$type" = spdxjson ] && { cat '${path.join(root, "several-spdxjson.out")}'; exit 0; }
    case "$*" in
      *'${refA}'*'${refB}'*) cat '${path.join(root, "several-slsa-ab.out")}' ;;
      *'${refA}'*) cat '${path.join(root, "several-slsa-a.out")}' ;;
      *) cat '${path.join(root, "several-slsa-b.out")}' ;;
    esac ;;
esac`);
    const verdicts = await verifyImages([{ layer: "keystone", digestRef: refA }, { layer: "keystone", digestRef: refB }], trust, { cosignBinary: several.binary });
    expect(verdicts.map((verdict) => verdict.admitted)).toEqual([false, true]);
    expect(said(verdicts[0])).toMatch(/dirty tree/);
    // The provenance batch was asked, then each image alone; the signature and SBOM batches were not split.
    expect(callsOf(several).filter((call) => call.includes("slsaprovenance1")).map((call) => [call.includes(refA), call.includes(refB)])).toEqual([[true, true], [true, false], [false, true]]);
    expect(callsOf(several).filter((call) => !call.includes("slsaprovenance1"))).toHaveLength(2);
  });

  it("asks git whether each image's commit is in the reviewed ref it is given: a commit outside it is refused, one inside admitted", async () => {
    const checkout = path.join(root, "catalog");
    const gitEnv = { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org", GIT_CONFIG_NOSYSTEM: "1" };
    const git = (...args: string[]): string => execFileSync("git", ["-C", checkout, ...args], { env: gitEnv, encoding: "utf8" }).trim();
    execFileSync("git", ["init", "-q", "-b", "main", checkout], { env: gitEnv });
    git("commit", "-q", "--allow-empty", "-m", "reviewed");
    const reviewedCommit = git("rev-parse", "HEAD");
    git("update-ref", "refs/remotes/origin/main", reviewedCommit);
    git("commit", "-q", "--allow-empty", "-m", "not reviewed");
    const unreviewedCommit = git("rev-parse", "HEAD");
    const reviewed = await readReviewedTip(checkout, "origin/main", "Pulumi.stable.yaml");
    // A cosign that verifies digest A with payloads whose provenance names the commit in `$commit.out`.
    const verdictFor = async (commit: string): Promise<Awaited<ReturnType<typeof verifyImages>>[number] | undefined> => {
      for (const [check, text] of Object.entries(payloadsFor(digestA, commit))) writeFileSync(path.join(root, `${commit}-${check}.out`), `${text}\n`);
      const answers = fakeCosign(`answers-${commit}`, `
case "$1" in
  verify) cat '${path.join(root, `${commit}-verify.out`)}' ;;
  verify-attestation) type=""; prev=""; for arg in "$@"; do [ "$prev" = --type ] && type="$arg"; prev="$arg"; done; cat "${root}/${commit}-$type.out" ;;
esac`);
      return (await verifyImages([{ layer: "keystone", digestRef: refA }], { ...trust, checkoutDir: checkout, reviewed }, { cosignBinary: answers.binary }))[0];
    };
    expect(await verdictFor(unreviewedCommit)).toMatchObject({ admitted: false, reviewed: "no", commit: unreviewedCommit, failures: [{ what: expect.stringContaining(`which is not in the reviewed ref origin/main`) }] });
    expect(await verdictFor(reviewedCommit)).toMatchObject({ admitted: true, reviewed: "yes", commit: reviewedCommit, failures: [] });

    // The same bytes attested as built from two commits (review 133/135): admitted on the reviewed
    // one, though the verdict rests first on the least commit, an unreviewed one (made so here).
    let lesser = unreviewedCommit;
    for (let tries = 0; lesser > reviewedCommit; tries++) {
      if (tries > 64) throw new Error("no commit sorted before the reviewed one in 64 tries");
      git("commit", "-q", "--allow-empty", "-m", `not reviewed ${tries}`);
      lesser = git("rev-parse", "HEAD");
    }
    const twice = payloadsFor(digestA, reviewedCommit);
    const both = { ...twice, slsaprovenance1: `${payloadsFor(digestA, lesser).slsaprovenance1}\n${twice.slsaprovenance1}` };
    for (const [check, text] of Object.entries(both)) writeFileSync(path.join(root, `both-${check}.out`), `${text}\n`);
    const bothAnswers = fakeCosign("answers-both", `
case "$1" in
  verify) cat '${path.join(root, "both-verify.out")}' ;;
  verify-attestation) type=""; prev=""; for arg in "$@"; do [ "$prev" = --type ] && type="$arg"; prev="$arg"; done; cat "${root}/both-$type.out" ;;
esac`);
    const [builtTwice] = await verifyImages([{ layer: "keystone", digestRef: refA }], { ...trust, checkoutDir: checkout, reviewed }, { cosignBinary: bothAnswers.binary });
    expect(builtTwice).toMatchObject({ admitted: true, reviewed: "yes", commit: reviewedCommit, failures: [] });
  });
});

describe("cosign reads the registry as Strata's client does", () => {
  /** A cosign that writes down, on its first call, the login and CAs it was given, then fails saying the login (as a registry's error might). */
  function recordingCosign(name: string): { binary: string; calls: string; record: string } {
    const record = path.join(root, `${name}.record`);
    const fake = fakeCosign(name, [
      `if [ ! -f '${record}' ]; then {`,
      '  echo "DOCKER_CONFIG=${DOCKER_CONFIG-unset}"',
      '  echo "SSL_CERT_DIR=${SSL_CERT_DIR-unset}"',
      '  echo "NO_PROXY=${NO_PROXY-unset}"; echo "no_proxy=${no_proxy-unset}"',
      '  if [ -f "${DOCKER_CONFIG-}/config.json" ]; then echo "config=$(cat "$DOCKER_CONFIG/config.json")"; echo "modes=$(stat -c %a "$(dirname "$DOCKER_CONFIG")" "$DOCKER_CONFIG" "$DOCKER_CONFIG/config.json" | tr "\\n" " ")"; fi',
      '  last="${SSL_CERT_DIR##*:}"; if [ -n "$last" ] && [ -d "$last" ]; then echo "ca=$(cat "$last"/* | base64 -w0)"; fi',
      `} > '${record}'; fi`,
      'if [ -f "${DOCKER_CONFIG-}/config.json" ]; then cat "$DOCKER_CONFIG/config.json" >&2; echo "Error: UNAUTHORIZED as $(sed -n \'s/.*"auth":"\\([^"]*\\)".*/\\1/p\' "$DOCKER_CONFIG/config.json" | base64 -d)" >&2; fi',
      "exit 1",
    ].join("\n"));
    return { ...fake, record };
  }
  const recorded = (fake: { record: string }): Record<string, string> => Object.fromEntries(readFileSync(fake.record, "utf8").split("\n").filter((line) => line.includes("=")).map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
  const login = { registry: "127.0.0.1:5000", username: "strata-ci", password: "pw-9f3c2a71e4" };

  it("hands the stack's login to cosign in a Docker config of its own (0600 in 0700), never argv; the CA Strata was given through SSL_CERT_DIR; both gone after the call, and neither the password nor its encoding in a refusal", async () => {
    const fake = recordingCosign("logs-in");
    const ca = path.join(root, "registry-ca.pem");
    writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n");
    const [verdict] = await verifyImages([{ layer: "keystone", digestRef: refA }], trust, { cosignBinary: fake.binary, registryLogin: login, env: { DOCKER_CONFIG: "/home/someone/.docker", NODE_EXTRA_CA_CERTS: ca, SSL_CERT_DIR: "" } });
    const seen = recorded(fake);
    const auth = Buffer.from(`${login.username}:${login.password}`).toString("base64");
    // The stack's login wins over the caller's Docker config, as it does in Strata's own client.
    expect(seen.DOCKER_CONFIG).not.toBe("/home/someone/.docker");
    expect(JSON.parse(seen.config ?? "")).toEqual({ auths: { "127.0.0.1:5000": { auth } } });
    expect(seen.modes?.trim()).toBe("700 700 600");
    const certs = (seen.SSL_CERT_DIR ?? "").split(":");
    // Go's own folders are still read (the system's CAs), the given CA beside them.
    expect(certs.slice(0, -1)).toEqual(["/etc/ssl/certs", "/etc/pki/tls/certs"]);
    expect(Buffer.from(seen.ca ?? "", "base64").toString("utf8")).toBe(readFileSync(ca, "utf8"));
    expect(path.dirname(certs.at(-1) ?? "")).toBe(path.dirname(seen.DOCKER_CONFIG ?? ""));
    expect(() => readFileSync(path.join(seen.DOCKER_CONFIG ?? "", "config.json"))).toThrow(/ENOENT/);
    expect(() => readdirSync(path.dirname(seen.DOCKER_CONFIG ?? ""))).toThrow(/ENOENT/);
    const calls = readFileSync(fake.calls, "utf8");
    expect(calls).not.toContain(login.password);
    expect(calls).not.toContain(auth);
    // The refusal says what cosign said, scrubbed: it was read (the error reached it), the secrets were not.
    expect(verdict?.admitted).toBe(false);
    expect(said(verdict)).toContain("UNAUTHORIZED as strata-ci:[redacted]");
    expect(said(verdict)).not.toContain(login.password);
    expect(said(verdict)).not.toContain(auth);
  });

  it("without a login of the stack's, cosign keeps the caller's Docker config; a caller's SSL_CERT_DIR comes first; an unreadable CA file is passed over, as Node passes it over", async () => {
    const kept = recordingCosign("keeps-config");
    const ca = path.join(root, "other-ca.pem");
    writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nMIIBother\n-----END CERTIFICATE-----\n");
    await verifyImages([{ layer: "keystone", digestRef: refA }], trust, { cosignBinary: kept.binary, env: { DOCKER_CONFIG: "/home/someone/.docker", NODE_EXTRA_CA_CERTS: ca, SSL_CERT_DIR: "/opt/certs" } });
    const seen = recorded(kept);
    expect(seen.DOCKER_CONFIG).toBe("/home/someone/.docker");
    expect((seen.SSL_CERT_DIR ?? "").split(":")[0]).toBe("/opt/certs");
    expect(Buffer.from(seen.ca ?? "", "base64").toString("utf8")).toBe(readFileSync(ca, "utf8"));

    const unreadable = recordingCosign("no-ca");
    await verifyImages([{ layer: "keystone", digestRef: refA }], trust, { cosignBinary: unreadable.binary, env: { NODE_EXTRA_CA_CERTS: path.join(root, "missing-ca.pem"), SSL_CERT_DIR: "/opt/certs" } });
    expect(recorded(unreadable).SSL_CERT_DIR).toBe("/opt/certs");
  });

  it("sends cosign to the registry directly, as Strata's client goes, when a proxy is set for this process (a CI runner's HTTPS_PROXY)", async () => {
    const proxied = recordingCosign("proxied");
    await verifyImages([{ layer: "keystone", digestRef: refA }], trust, { cosignBinary: proxied.binary, env: { HTTPS_PROXY: "http://proxy.example:3128", NO_PROXY: "", no_proxy: "internal.example" } });
    expect(recorded(proxied)).toMatchObject({ NO_PROXY: "internal.example,127.0.0.1:5000", no_proxy: "internal.example,127.0.0.1:5000" });
    const unproxied = recordingCosign("unproxied");
    await verifyImages([{ layer: "keystone", digestRef: refA }], trust, { cosignBinary: unproxied.binary, env: { HTTPS_PROXY: "", HTTP_PROXY: "", https_proxy: "", http_proxy: "", NO_PROXY: "kept.example" } });
    expect(recorded(unproxied).NO_PROXY).toBe("kept.example");
  });

  it("asks cosign about at most COSIGN_BATCH_LIMIT images a call, so a release's SBOMs never outgrow what a call's output may hold", async () => {
    // Each call "verifies" (prints a line), so none falls back to a call per image: the batches alone are counted.
    const counted = fakeCosign("counted", "echo '{}'");
    const refs = Array.from({ length: 2 * COSIGN_BATCH_LIMIT + 6 }, (_, index) => `${repository}@sha256:${index.toString(16).padStart(64, "0")}`);
    await verifyImages(refs.map((digestRef) => ({ layer: "keystone", digestRef })), trust, { cosignBinary: counted.binary });
    const calls = callsOf(counted);
    expect(calls).toHaveLength(3 * 3);
    const sizes = calls.map((call) => call.split(" ").filter((word) => word.startsWith(`${repository}@`)).length);
    expect(sizes.sort((a, b) => a - b)).toEqual([6, 6, 6, 32, 32, 32, 32, 32, 32]);
    expect(new Set(calls.flatMap((call) => call.split(" ").filter((word) => word.startsWith(`${repository}@`))))).toEqual(new Set(refs));
  });
});

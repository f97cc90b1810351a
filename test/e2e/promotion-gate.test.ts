/**
 * The promotion gate (issue 29, item 5) with the real engine, registry and pinned cosign: dev signs
 * (a generated ECDSA key), staging promotes it without a policy, stable promotes staging under
 * `strata:trust`; every stable ref verifies with plain cosign, digests unchanged, and a rerun adds
 * nothing. Then a gated channel refuses, copying nothing: an unsigned image, another key's, an
 * attestation about another digest, a dirty tree, an image planted under a channel's tag that the
 * channel's next runner adopted and signed, the registry failing while cosign verifies,
 * cosign missing, a reviewed ref that is a local branch (said once), a commit not in the reviewed ref. Each refusal runs against a channel that would
 * copy if the gate let it (the last test shows it does once the source is good), so a gate that
 * failed open fails these tests by the tags it would leave.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeImages } from "../../bench/docker-images.js";
import { PREDICATE_TYPES, unlockCosignKey, type CosignKey } from "../../src/core/cosign-format.js";
import { provenancePredicateBytes } from "../../src/core/provenance.js";
import { Cosign, type SigningKey } from "../../src/engine/cosign.js";
import { attestImage } from "../../src/registry/signatures.js";
import { RegistryClient } from "../../src/registry/client.js";
import { type FaultProxy, startFaultProxy } from "../helpers/fault-proxy.js";
import { catalogGit, commitCatalog, createWorld, type E2eStack, type E2eWorld, registry, registryAddress, registryContents } from "./harness.js";
import { cosignBinary, cosignCli } from "./cosign-cli.js";

const PASSPHRASE = "gate-passphrase-3b7c21";
const TRUST = JSON.stringify({ keys: ["keys/ci.pub"], reviewedRef: "origin/main" });
const LAYERS = ["app", "app-base", "base", "db", "libs", "tools"];

/** Every tag of a group with the digest it holds: what "the target's tags" means before and after. */
async function tagsWithDigests(group: string, client: RegistryClient = registry): Promise<Record<string, string>> {
  const tags: Record<string, string> = {};
  for (const [repository, names] of Object.entries(await registryContents(group, client))) {
    for (const tag of names) tags[`${repository}:${tag}`] = (await client.manifest(`${group}/${repository}`, tag))?.digest ?? "(gone)";
  }
  return tags;
}

/** The message of a run that failed: pulumi's output, where the program's paragraph is. */
async function failure(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (error) {
    return String(error instanceof Error ? error.message : error);
  }
  throw new Error("the run succeeded: the gate let it through");
}

describe("the promotion gate", () => {
  let world: E2eWorld;
  let cosign: string;
  let keysDir: string;
  let key: SigningKey;
  let cosignKey: CosignKey;
  let publicKeyFile: string;
  let other: SigningKey;
  let dev: E2eStack;
  let staging: E2eStack;
  let stable: E2eStack;
  let gate: E2eStack;
  let proxy: FaultProxy | undefined;

  const git = (...args: string[]): string => catalogGit(world, ...args);
  /** A source channel that builds only the base layer (one image: quick), signed with `signer` or not. */
  const source = (name: string, signer?: SigningKey, extra: Record<string, string> = {}): Promise<E2eStack> =>
    world.stack(name, { channel: name, layers: JSON.stringify(["base"]), ...extra }, signer === undefined ? {} : { secrets: { signingKey: signer.privateKeyPem, signingKeyPassphrase: signer.password } });
  /** The gated channel promotes `from` and is refused; the paragraph, and its tags before and after. */
  async function refused(from: string, target: E2eStack = gate, client: RegistryClient = registry): Promise<{ message: string; before: Record<string, string>; after: Record<string, string> }> {
    await target.stack.setConfig("strata:promoteFrom", { value: from });
    const before = await tagsWithDigests(target.group, client);
    const message = await failure(target.up());
    return { message, before, after: await tagsWithDigests(target.group, client) };
  }

  beforeAll(async () => {
    cosign = cosignBinary();
    world = createWorld("gate");
    // Provenance names the catalog's commit: the catalog is a checkout, its commit in origin/main (as a clone that fetched the reviewed branch has it).
    commitCatalog(world);
    git("update-ref", "refs/remotes/origin/main", "HEAD");
    keysDir = mkdtempSync(path.join(tmpdir(), "strata-gate-keys-"));
    const pair = await new Cosign({ binary: cosign }).generateKeyPair(keysDir, PASSPHRASE);
    key = pair.key;
    publicKeyFile = pair.publicKeyFile;
    cosignKey = await unlockCosignKey(key.privateKeyPem, PASSPHRASE);
    mkdirSync(path.join(world.projectDir, "keys"));
    copyFileSync(publicKeyFile, path.join(world.projectDir, "keys/ci.pub"));
    const otherDir = path.join(keysDir, "other");
    mkdirSync(otherDir);
    other = (await new Cosign({ binary: cosign }).generateKeyPair(otherDir, "other-passphrase")).key;
    dev = await world.stack("dev", {}, { secrets: { signingKey: key.privateKeyPem, signingKeyPassphrase: PASSPHRASE } });
    staging = await world.stack("staging", { channel: "staging", immutable: "true", promoteFrom: "dev" });
    // The project folder strata:trust's keys are relative to: strata up names it so; a direct pulumi up is told the same way.
    const project = { env: { STRATA_PROJECT_DIR: world.projectDir } };
    stable = await world.stack("stable", { channel: "stable", immutable: "true", promoteFrom: "staging", trust: TRUST }, project);
    gate = await world.stack("gate", { channel: "gate", immutable: "true", promoteFrom: "staging", trust: TRUST }, project);
  });
  afterAll(async () => {
    await proxy?.close();
    if (proxy !== undefined) removeImages(`${proxy.address}/`);
    await world?.cleanup();
    if (keysDir !== undefined) rmSync(keysDir, { recursive: true, force: true });
  });

  it("dev (signed) → staging → stable (trust policy): every stable ref verifies with plain cosign, digests unchanged; a rerun adds nothing", async () => {
    await dev.up();
    await staging.up();
    await stable.up();
    const devLayers = await dev.outputs();
    const stableLayers = await stable.outputs();
    expect(Object.keys(stableLayers).sort()).toEqual(LAYERS);
    for (const layer of LAYERS) {
      const promoted = stableLayers[layer]?.digestRef ?? "";
      const built = devLayers[layer]?.digestRef ?? "";
      expect(promoted.startsWith(`${registryAddress}/${stable.group}/`)).toBe(true);
      expect(promoted.slice(promoted.indexOf("@"))).toBe(built.slice(built.indexOf("@")));
      const common = ["--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry"];
      for (const args of [["verify", ...common, promoted], ["verify-attestation", ...common, "--type", "spdxjson", promoted], ["verify-attestation", ...common, "--type", "slsaprovenance1", promoted]]) {
        const verified = cosignCli(cosign, args);
        expect(verified.code, `${args.join(" ")}\n${verified.out}`).toBe(0);
      }
    }
    // The rerun: no step, no tag, no signature added.
    const before = await tagsWithDigests(stable.group);
    expect(Object.values(before).length).toBe(LAYERS.length * 3); // each image's tag, .sig and .att
    const rerun = await stable.up();
    expect([...rerun.operations.values()].every((op) => op === "same"), JSON.stringify([...rerun.operations])).toBe(true);
    expect(await tagsWithDigests(stable.group)).toEqual(before);
  });

  it("refuses an unsigned image, naming it and the fix, and copies nothing; strata plan's preview lists it as refused", async () => {
    await (await source("plain")).up();
    const { message, before, after } = await refused("plain");
    expect(message).toMatch(/the promotion is refused: 1 of 1 images did not pass strata:trust/);
    expect(message).toMatch(/base 127\.0\.0\.1:\d+\/[^ ]+-plain\/base@sha256:[0-9a-f]{64} is refused: it has no signature by a trusted key \(keys\/ci\.pub\); it has no SLSA provenance attestation by a trusted key \(keys\/ci\.pub\); it has no SPDX SBOM attestation by a trusted key \(keys\/ci\.pub\); fix: sign and attest it/);
    expect(after).toEqual(before);
    expect(after).toEqual({});
    // A preview is refused too; with STRATA_PLAN=1 (strata plan) each refusal is a warning instead.
    expect(await failure(gate.stack.preview())).toMatch(/no signature by a trusted key/);
    gate.stack.workspace.envVars.STRATA_PLAN = "1";
    try {
      const preview = await gate.stack.preview();
      expect(preview.stdout).toMatch(/refused: base .* is refused: it has no signature by a trusted key/);
    } finally {
      delete gate.stack.workspace.envVars.STRATA_PLAN;
    }
  });

  it("refuses an image signed and attested by another key", async () => {
    await (await source("otherkey", other)).up();
    const { message, before, after } = await refused("otherkey");
    expect(message).toMatch(/its signature does not verify with a trusted key \(keys\/ci\.pub\)/);
    expect(message).toMatch(/its SLSA provenance attestation does not verify with a trusted key/);
    expect(after).toEqual(before);
    expect(after).toEqual({});
  });

  it("refuses an attestation whose subject is another digest, moved under this digest's .att tag", async () => {
    const tampered = await source("tampered", key);
    await tampered.up();
    const base = (await tampered.outputs()).base?.digestRef ?? "";
    const repository = base.slice(registryAddress.length + 1, base.indexOf("@"));
    const digest = base.slice(base.indexOf("@") + 1);
    // The native signer attests a digest that is not this image's, with the trusted key…
    const elsewhere = `sha256:${"e".repeat(64)}`;
    const predicate = provenancePredicateBytes({
      image: `${registryAddress}/${repository}`, digest: elsewhere, source: { repository: `file://${world.catalogDir}`, commit: git("rev-parse", "HEAD"), clean: true },
      fingerprint: "f".repeat(64), layer: "base", buildArgs: {}, platform: "linux/amd64", stack: "tampered", channel: "tampered", strataVersion: "0.1.0", runId: "e2e", engine: { name: "docker", version: "0" },
    });
    const written = await attestImage(registry, `${registryAddress}/${repository}@${elsewhere}`, [{ predicateType: PREDICATE_TYPES.slsaprovenance1, predicate }], cosignKey);
    // …and that manifest goes under this image's .att tag, replacing its own attestations.
    const moved = await registry.rawManifest(repository, written.manifestDigest);
    await registry.putManifest(repository, `sha256-${digest.slice("sha256:".length)}.att`, moved.bytes, moved.mediaType);
    // The signature over it is good (cosign v2.6.5 then refuses it for its subject, and so does the gate).
    const plain = cosignCli(cosign, ["verify-attestation", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--type", "slsaprovenance1", base]);
    expect(plain.out).toMatch(/no matching subject digest found/);
    const { message, before, after } = await refused("tampered");
    expect(message).toMatch(/its SLSA provenance attestation does not verify with a trusted key \(keys\/ci\.pub\) for this digest: .*no matching subject digest found/);
    expect(after).toEqual(before);
    expect(after).toEqual({});
  });

  it("refuses an image built from a dirty tree", async () => {
    const stray = path.join(world.catalogDir, "uncommitted.txt");
    writeFileSync(stray, "not in any commit\n");
    try {
      // The signing run says why, as it signs: the provenance itself records only "dirty".
      const { log } = await (await source("dirty", key)).up();
      expect(log).toMatch(/the catalog's git checkout is not its commit [0-9a-f]{12} \(untracked: uncommitted\.txt\): the images this run signs record a dirty tree/);
    } finally {
      rmSync(stray);
    }
    const { message, before, after } = await refused("dirty");
    expect(message).toMatch(/its provenance buildDefinition\.externalParameters\.source\.tree records a dirty tree/);
    expect(after).toEqual(before);
    expect(after).toEqual({});
  });

  it("refuses a provenance re-wrapped around a payload nobody signed, which plain cosign verifies (its Go decoder reads the signed one, under \"Payload\")", async () => {
    const stray = path.join(world.catalogDir, "uncommitted-too.txt");
    writeFileSync(stray, "not in any commit\n");
    let rewrapped: E2eStack;
    try {
      rewrapped = await source("rewrapped", key);
      await rewrapped.up();
    } finally {
      rmSync(stray);
    }
    const base = (await rewrapped.outputs()).base?.digestRef ?? "";
    const repository = base.slice(registryAddress.length + 1, base.indexOf("@"));
    const attTag = `sha256-${base.slice(base.indexOf("@") + "@sha256:".length)}.att`;
    const att = await registry.rawManifest(repository, attTag);
    const manifest = JSON.parse(att.bytes.toString("utf8")) as { layers: { digest: string; size: number; annotations: Record<string, string> }[] };
    const layer = manifest.layers.find((entry) => entry.annotations.predicateType === PREDICATE_TYPES.slsaprovenance1);
    expect(layer, att.bytes.toString("utf8")).toBeDefined();
    const signed = JSON.parse(Buffer.from(await new Response(await registry.blobStream(repository, layer!.digest, layer!.size)).arrayBuffer()).toString("utf8")) as { payloadType: string; payload: string; signatures: unknown[] };
    // What the trusted key signed says dirty (refused); the payload put in front of it says clean.
    const signedStatement = Buffer.from(signed.payload, "base64").toString("utf8");
    expect(signedStatement).toContain('"tree":"dirty"');
    const clean = Buffer.from(signedStatement.replace('"tree":"dirty"', '"tree":"clean"')).toString("base64");
    const forged = Buffer.from(JSON.stringify({ payloadType: signed.payloadType, payload: clean, signatures: signed.signatures, Payload: signed.payload }));
    const forgedDigest = await registry.putBlob(repository, forged);
    manifest.layers = manifest.layers.map((entry) => (entry === layer ? { ...entry, digest: forgedDigest, size: forged.length } : entry));
    await registry.putManifest(repository, attTag, Buffer.from(JSON.stringify(manifest)), att.mediaType);
    // Plain cosign verifies it: the premise of the test (and why Strata checks the payload it reads itself).
    const plain = cosignCli(cosign, ["verify-attestation", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--type", "slsaprovenance1", base]);
    expect(plain.code, plain.out).toBe(0);
    const { message, before, after } = await refused("rewrapped");
    expect(message).toMatch(/its SLSA provenance attestation holds a payload that the trusted key cosign verified it with did not sign .*: what it says is not read; fix: find out who wrote this digest's \.att tag/);
    expect(after).toEqual(before);
    expect(after).toEqual({});
  });

  it("refuses an image planted under a channel's tag: the run that adopts it signs it as adopted, and the gate refuses what no trusted run built", async () => {
    // The channel publishes base; then someone with push access (no key) puts other bytes under the
    // tag, carrying base's labels (a child image inherits them): its fingerprint, which anyone who
    // reads the catalog can compute.
    const planted = await source("planted", key);
    await planted.up();
    const built = (await planted.outputs()).base;
    const tag = built?.ref ?? "";
    expect(tag).toMatch(/:[^/]+$/);
    const context = mkdtempSync(path.join(tmpdir(), "strata-planted-"));
    try {
      writeFileSync(path.join(context, "Dockerfile"), `FROM ${built?.digestRef ?? ""}\nRUN echo planted > /planted\n`);
      execFileSync("docker", ["build", "--quiet", "--tag", tag, context], { stdio: ["ignore", "ignore", "pipe"] });
      execFileSync("docker", ["push", "--quiet", tag], { stdio: ["ignore", "ignore", "pipe"] });
    } finally {
      rmSync(context, { recursive: true, force: true });
      execFileSync("docker", ["image", "rm", "--force", tag], { stdio: "ignore" });
    }
    // Another runner on that channel (a fresh state) adopts what the tag holds, and signs it with the
    // channel's key; it builds tools, which the planted channel did not publish, on that image.
    const twin = await source("planted-twin", key, { channel: "planted", layers: JSON.stringify(["base", "tools"]) });
    expect(twin.group).toBe(planted.group);
    await twin.up();
    const adopted = (await twin.outputs()).base;
    expect(adopted?.origin).toBe("adopted");
    expect((await twin.outputs()).tools?.origin).toBe("built");
    expect(adopted?.digestRef).not.toBe(built?.digestRef);
    // Its signature verifies with the trusted key: only the provenance says it was not built.
    const verified = cosignCli(cosign, ["verify", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", adopted?.digestRef ?? ""]);
    expect(verified.code, verified.out).toBe(0);
    const { message, before, after } = await refused("planted-twin");
    expect(message).toMatch(/the promotion is refused: 2 of 2 images did not pass strata:trust/);
    expect(message).toMatch(/its provenance buildDefinition\.internalParameters\.adopted says the run that signed it did not build it: it adopted what the image's tag already held/);
    // tools was built by the trusted run, but on the planted bytes, which it holds (review 119): an
    // image is admitted only with its parent.
    expect(message).toContain(`it was built on ${adopted?.digestRef ?? ""}, which is refused here: that image's bytes are in this one, so it is not trusted either`);
    expect(after).toEqual(before);
    expect(after).toEqual({});
  });

  it("refuses when the registry fails while cosign verifies", async () => {
    const [host, port] = registryAddress.split(":") as [string, string];
    proxy = await startFaultProxy({ host, port: Number(port) });
    const through = new RegistryClient({ registry: proxy.address });
    await (await source("proxied", key, { registry: proxy.address })).up();
    const target = await world.stack("gate-proxied", { registry: proxy.address, channel: "gate-proxied", immutable: "true", promoteFrom: "proxied", trust: TRUST }, { env: { STRATA_PROJECT_DIR: world.projectDir } });
    // Strata's own requests pass (its lookups, the copy); cosign's fail.
    proxy.setRule((request) => (request.sender === "other" ? { kind: "status", status: 500 } : undefined));
    try {
      const { message, before, after } = await refused("proxied", target, through);
      expect(message).toMatch(/could not verify its signature: .*; fix: make sure the registry answers and cosign runs/);
      expect(proxy.injected.length).toBeGreaterThan(0);
      expect(after).toEqual(before);
      expect(after).toEqual({});
    } finally {
      proxy.setRule(undefined);
    }
  });

  it("refuses when cosign is missing: nothing it cannot verify is admitted", async () => {
    gate.stack.workspace.envVars.STRATA_COSIGN = path.join(keysDir, "no-cosign-here");
    try {
      const { message, before, after } = await refused("staging");
      expect(message).toMatch(/the promotion is refused: 6 of 6 images/);
      expect(message).toMatch(/could not verify its signature: cannot verify the signature of [^ ]+: cosign is not at [^ ]*no-cosign-here/);
      expect(after).toEqual(before);
      expect(after).toEqual({});
    } finally {
      delete gate.stack.workspace.envVars.STRATA_COSIGN;
    }
  });

  it("refuses a reviewedRef naming a local branch once, as the trust policy's problem, and copies nothing", async () => {
    // A local branch holding the reviewed commits: it moves without review, so it cannot say what was reviewed.
    git("branch", "-f", "reviewed-here", "origin/main");
    await gate.stack.setConfig("strata:trust", { value: JSON.stringify({ keys: ["keys/ci.pub"], reviewedRef: "reviewed-here" }) });
    try {
      const { message, before, after } = await refused("staging");
      expect(message).toContain("strata:trust.reviewedRef: cannot say which reviewed commit it names, so no image can be checked against it: the reviewed ref reviewed-here: refs/heads/reviewed-here is a local branch");
      // Said once, not in a paragraph per image (Pulumi's output may repeat the program's error whole).
      const said = message.match(/is a local branch/g)?.length ?? 0;
      expect(said, message).toBeGreaterThan(0);
      expect(said, message).toBe(message.match(/strata:trust\.reviewedRef: cannot say/g)?.length);
      expect(message).not.toContain("is refused:");
      expect(after).toEqual(before);
      expect(after).toEqual({});
    } finally {
      await gate.stack.setConfig("strata:trust", { value: TRUST });
    }
  });

  it("refuses a commit not in the reviewed ref; the same channel promotes a reviewed source", async () => {
    writeFileSync(path.join(world.catalogDir, "later.txt"), "a commit nobody reviewed\n");
    git("add", "later.txt");
    git("commit", "-q", "-m", "not reviewed");
    const head = git("rev-parse", "HEAD");
    await (await source("unreviewed", key)).up();
    const { message, before, after } = await refused("unreviewed");
    expect(message).toContain(`its provenance names commit ${head}, which is not in the reviewed ref origin/main`);
    expect(after).toEqual(before);
    expect(after).toEqual({});
    // The control: the same gated channel copies a source that passes (so the empty tags above were the gate's doing).
    await gate.stack.setConfig("strata:promoteFrom", { value: "staging" });
    await gate.up();
    expect(Object.keys(await tagsWithDigests(gate.group)).length).toBe(LAYERS.length * 3);
  });

  it("destroy of the stable channel removes the tags it created and their signatures", async () => {
    expect(Object.keys(await tagsWithDigests(stable.group)).length).toBe(LAYERS.length * 3);
    await stable.destroy();
    expect(await tagsWithDigests(stable.group)).toEqual({});
  });
});

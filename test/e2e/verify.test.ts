/**
 * `strata verify` (issue 29, item 7) with the real engine, the real registry and the real pinned
 * cosign, on the busybox fixture catalog: a dev stack signed by the key its trust policy names
 * verifies (exit 0, the table naming the key, the commit and the package count); the same with
 * `--key`, and with `--key` naming an RSA key kept as PKCS#1 (`BEGIN RSA PUBLIC KEY`) whose pair
 * signed and attested the same images by plain cosign; a stack signed by another key, and an image whose `.sig` tag was deleted from the
 * registry, are refused (exit 1, a paragraph naming the image), so a verify that failed open fails
 * these tests; replacing the image's set (`--replace`, as the README says for a lost signature)
 * signs it again. `strata plan` on a channel promoting from each (with the same trust policy): the
 * first would promote every layer, the second shows every image refused and why, and exits 1.
 */
import { generateKeyPairSync } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IMAGE_ATTESTATIONS_SET_TYPE } from "../../src/core/image-types.js";
import { Cosign } from "../../src/engine/cosign.js";
import { catalogGit, commitCatalog, createWorld, type E2eStack, type E2eWorld, registry, registryAddress, registryContents, runStrata, upWithSummary } from "./harness.js";
import { cosignBinary, cosignCli } from "./cosign-cli.js";

const PASSPHRASE = "verify-passphrase-3c9a71";

interface VerifyJson {
  readonly ok: boolean;
  readonly reviewedRef: string | null;
  readonly reviewedCommit: string | null;
  readonly images: readonly { layer: string; platform: string | null; digestRef: string; admitted: boolean; signedBy: string | null; commit: string | null; clean: boolean | null; reviewed: string; packages: number | null; failures: { what: string; fix: string }[] }[];
}

interface SignedOutput {
  readonly digestRef: string;
  readonly packages?: number;
}

describe("strata verify", () => {
  let world: E2eWorld;
  let keysDir: string;
  let cosign: string;
  let publicKeyFile: string;
  let dev: E2eStack;
  /** Signed by another key than the one the trust policy names (the third test makes it). */
  let other: E2eStack | undefined;
  let commit: string;
  const trust = JSON.stringify({ keys: ["keys/ci.pub"], reviewedRef: "origin/main" });
  const git = (...args: string[]): string => catalogGit(world, ...args);
  const verify = (stack: string, ...extra: string[]) => runStrata(world, ["verify", "--stack", stack, "--catalog", world.catalogDir, ...extra], { STRATA_COSIGN: cosign });
  const verifyJson = async (stack: string, ...extra: string[]): Promise<{ code: number; data: VerifyJson; out: string }> => {
    const run = await verify(stack, "--json", ...extra);
    const json = run.out.slice(run.out.indexOf("{"));
    return { code: run.code, data: JSON.parse(json) as VerifyJson, out: run.out };
  };

  beforeAll(async () => {
    cosign = cosignBinary();
    world = createWorld("verify");
    // Provenance names the catalog's commit; the trust policy's reviewed ref, origin/main, is a remote-tracking ref of that checkout.
    commitCatalog(world);
    git("update-ref", "refs/remotes/origin/main", "HEAD");
    commit = git("rev-parse", "HEAD");
    keysDir = mkdtempSync(path.join(tmpdir(), "strata-verify-keys-"));
    const pair = await new Cosign({ binary: cosign }).generateKeyPair(keysDir, PASSPHRASE);
    publicKeyFile = pair.publicKeyFile;
    mkdirSync(path.join(world.projectDir, "keys"));
    copyFileSync(publicKeyFile, path.join(world.projectDir, "keys/ci.pub"));
    // Two layers (base and tools) keep the builds short.
    dev = await world.stack("dev", { layers: JSON.stringify(["tools"]), trust }, { secrets: { signingKey: pair.key.privateKeyPem, signingKeyPassphrase: PASSPHRASE } });
    const run = await upWithSummary(world, "dev", "dev");
    expect(run.code, run.out).toBe(0);
  });
  afterAll(async () => {
    await world?.cleanup();
    if (keysDir !== undefined) rmSync(keysDir, { recursive: true, force: true });
  });

  it("passes a stack signed by the key its trust policy names: the table names the key, the commit and the package count", async () => {
    const layers = (await dev.outputs()) as unknown as Record<string, SignedOutput>;
    const text = await verify("dev");
    expect(text.code, text.out).toBe(0);
    // The commit origin/main named when it was read: every image was judged against that one.
    const reviewedTip = catalogGit(world, "rev-parse", "origin/main");
    expect(text.out).toContain(` (reviewed: in origin/main at ${reviewedTip.slice(0, 12)}):`);
    expect(text.out).toContain("verify stack dev against strata:trust in ");
    const rows = text.out.split("\n").filter((line) => /^(base|tools)\s/.test(line));
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      const layer = row.split(/\s+/)[0] as string;
      expect(row).toMatch(new RegExp(`^${layer}\\s+-\\s+sha256:[0-9a-f]{12}\\s+keys/ci\\.pub\\s+${commit.slice(0, 12)}\\s+yes\\s+${layers[layer]?.packages}\\s+pass$`));
    }
    expect(text.out).toContain("2 images verified");
    const { code, data } = await verifyJson("dev");
    expect(code).toBe(0);
    expect(data.reviewedRef).toBe("origin/main");
    expect(data.reviewedCommit).toBe(reviewedTip);
    expect(data.images.map((image) => [image.layer, image.digestRef, image.admitted, image.signedBy, image.commit, image.clean, image.reviewed, image.packages]).sort()).toEqual(
      Object.entries(layers).map(([layer, output]) => [layer, output.digestRef, true, "keys/ci.pub", commit, true, "yes", output.packages]).sort(),
    );
  });

  it("reads a trust policy stored as a secret through Pulumi, as the gate's program gets it", async () => {
    await dev.stack.setConfig("strata:trust", { value: trust, secret: true });
    try {
      // The stack file holds only its ciphertext: read as it stands, it is no policy at all.
      expect(readFileSync(path.join(world.projectDir, "Pulumi.dev.yaml"), "utf8")).toMatch(/strata:trust:\s*\n\s+secure: /);
      const { code, data, out } = await verifyJson("dev");
      expect(code, out).toBe(0);
      expect(data.reviewedRef).toBe("origin/main");
      expect(data.images.map((image) => [image.layer, image.admitted, image.signedBy, image.reviewed])).toEqual(expect.arrayContaining([["base", true, "keys/ci.pub", "yes"], ["tools", true, "keys/ci.pub", "yes"]]));
      // Without the passphrase Pulumi cannot decrypt it: verify stops and says how to go on.
      const locked = await runStrata(world, ["verify", "--stack", "dev", "--catalog", world.catalogDir], { STRATA_COSIGN: cosign, PULUMI_CONFIG_PASSPHRASE: "not-the-passphrase" });
      expect(locked.code, locked.out).toBe(1);
      expect(locked.out).toMatch(/strata:trust in \S+ is stored as a secret, and Pulumi could not decrypt it for stack dev: .*incorrect passphrase.*fix: set PULUMI_CONFIG_PASSPHRASE/s);
      // One field a secret (pulumi config set --secret --path): the rest stays plain in the file, the whole is read through Pulumi.
      await dev.stack.removeConfig("strata:trust");
      await dev.stack.setConfig("strata:trust.keys[0]", { value: "keys/ci.pub" }, true);
      await dev.stack.setConfig("strata:trust.reviewedRef", { value: "origin/main", secret: true }, true);
      expect(readFileSync(path.join(world.projectDir, "Pulumi.dev.yaml"), "utf8")).toMatch(/reviewedRef:\s*\n\s+secure: /);
      const leaf = await verifyJson("dev");
      expect(leaf.code, leaf.out).toBe(0);
      expect(leaf.data.images.every((image) => image.admitted && image.reviewed === "yes"), leaf.out).toBe(true);
      expect(leaf.data.reviewedRef).toBe("origin/main");
    } finally {
      await dev.stack.setConfig("strata:trust", { value: trust });
    }
  });

  it("a key rotation: a second trusted key that has signed nothing yet is asked once a check for the batch, not image by image; the images pass by the first", async () => {
    const newDir = mkdtempSync(path.join(tmpdir(), "strata-verify-new-"));
    const rotated = JSON.stringify({ keys: ["keys/ci.pub", "keys/new.pub"], reviewedRef: "origin/main" });
    try {
      const newKey = await new Cosign({ binary: cosign }).generateKeyPair(newDir, "new-passphrase");
      copyFileSync(newKey.publicKeyFile, path.join(world.projectDir, "keys/new.pub"));
      // The real cosign, each call's arguments noted.
      const calls = path.join(newDir, "calls");
      const recording = path.join(newDir, "cosign");
      writeFileSync(recording, `#!/bin/sh\necho "$*" >> '${calls}'\nexec '${cosign}' "$@"\n`, { mode: 0o755 });
      await dev.stack.setConfig("strata:trust", { value: rotated });
      const run = await runStrata(world, ["verify", "--stack", "dev", "--catalog", world.catalogDir, "--json"], { STRATA_COSIGN: recording });
      expect(run.code, run.out).toBe(0);
      const data = JSON.parse(run.out.slice(run.out.indexOf("{"))) as VerifyJson;
      expect(data.images.map((image) => [image.layer, image.admitted, image.signedBy])).toEqual(expect.arrayContaining([["base", true, "keys/ci.pub"], ["tools", true, "keys/ci.pub"]]));
      const byNewKey = readFileSync(calls, "utf8").split("\n").filter((line) => line.includes("new.pub"));
      // One call a check (the signature, the provenance and the SBOM), each about both images: none about one image alone.
      expect(byNewKey).toHaveLength(3);
      for (const call of byNewKey) expect(call.match(/@sha256:[0-9a-f]{64}/g)).toHaveLength(2);
    } finally {
      await dev.stack.setConfig("strata:trust", { value: trust });
      rmSync(path.join(world.projectDir, "keys/new.pub"), { force: true });
      rmSync(newDir, { recursive: true, force: true });
    }
  });

  it("passes with --key and the right key alone, reviewed not checked", async () => {
    const { code, data, out } = await verifyJson("dev", "--key", publicKeyFile);
    expect(code, out).toBe(0);
    expect(data.images).toHaveLength(2);
    for (const image of data.images) expect([image.admitted, image.signedBy, image.reviewed]).toEqual([true, publicKeyFile, "not checked"]);
    // dev has a trust policy: --key says it does not read it.
    expect(out).toMatch(/--key: the images are checked against \S+ alone; the stack's strata:trust \(its keys and reviewed ref\) is not read, so reviewed is not checked/);
  });

  it("takes an RSA key kept as PKCS#1 (BEGIN RSA PUBLIC KEY), as cosign does: images signed and attested with its pair by plain cosign pass --key with that file", async () => {
    const rsaDir = mkdtempSync(path.join(tmpdir(), "strata-verify-rsa-"));
    try {
      // An RSA pair made elsewhere and imported, as cosign import-key-pair is meant for; its public
      // half kept in the older PKCS#1 form (openssl rsa -RSAPublicKey_out writes it).
      const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
      writeFileSync(path.join(rsaDir, "rsa.pem"), pair.privateKey.export({ type: "pkcs8", format: "pem" }));
      const password = { COSIGN_PASSWORD: "rsa-passphrase-52e0" };
      const imported = cosignCli(cosign, ["import-key-pair", "--key", path.join(rsaDir, "rsa.pem"), "--output-key-prefix", path.join(rsaDir, "rsa")], password);
      expect(imported.code, imported.out).toBe(0);
      const pkcs1File = path.join(rsaDir, "rsa-pkcs1.pub");
      writeFileSync(pkcs1File, pair.publicKey.export({ type: "pkcs1", format: "pem" }));
      expect(readFileSync(pkcs1File, "utf8")).toMatch(/^-----BEGIN RSA PUBLIC KEY-----\n/);
      const layers = (await dev.outputs()) as unknown as Record<string, SignedOutput>;
      // The RSA key's signatures stay in dev's .sig and .att: the tests after this one read them
      // beside the ECDSA key's, as a key rotation leaves them.
      for (const output of Object.values(layers)) {
        // Each image's own provenance and SBOM, attested again by the RSA key.
        for (const type of ["slsaprovenance1", "spdxjson"]) {
          const read = cosignCli(cosign, ["verify-attestation", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--type", type, output.digestRef]);
          expect(read.code, read.out).toBe(0);
          const envelope = JSON.parse(read.out.split("\n").find((line) => line.startsWith("{")) ?? "null") as { payload: string };
          const statement = JSON.parse(Buffer.from(envelope.payload, "base64").toString("utf8")) as { predicate: unknown };
          const predicateFile = path.join(rsaDir, `${type}.json`);
          writeFileSync(predicateFile, JSON.stringify(statement.predicate));
          const attest = cosignCli(cosign, ["attest", "--key", path.join(rsaDir, "rsa.key"), "--tlog-upload=false", "--yes", "--type", type, "--predicate", predicateFile, output.digestRef], password);
          expect(attest.code, attest.out).toBe(0);
        }
        const sign = cosignCli(cosign, ["sign", "--key", path.join(rsaDir, "rsa.key"), "--tlog-upload=false", "--yes", output.digestRef], password);
        expect(sign.code, sign.out).toBe(0);
        // Plain cosign takes the PKCS#1 file.
        const plain = cosignCli(cosign, ["verify", "--key", pkcs1File, "--insecure-ignore-tlog=true", output.digestRef]);
        expect(plain.code, plain.out).toBe(0);
      }
      const { code, data, out } = await verifyJson("dev", "--key", pkcs1File);
      expect(code, out).toBe(0);
      expect(data.images.map((image) => [image.layer, image.admitted, image.signedBy, image.commit, image.packages]).sort()).toEqual(
        Object.entries(layers).map(([layer, output]) => [layer, true, pkcs1File, commit, output.packages]).sort(),
      );
      // The ECDSA key's signatures are still there beside the RSA key's.
      expect((await verifyJson("dev", "--key", publicKeyFile)).code).toBe(0);
    } finally {
      rmSync(rsaDir, { recursive: true, force: true });
    }
  });

  it("refuses a stack signed by another key: exit 1 and a paragraph per image", async () => {
    const otherDir = mkdtempSync(path.join(tmpdir(), "strata-verify-other-"));
    try {
      const otherKey = await new Cosign({ binary: cosign }).generateKeyPair(otherDir, "other-passphrase");
      const stack = await world.stack("other", { channel: "other", layers: JSON.stringify(["tools"]), trust }, { secrets: { signingKey: otherKey.key.privateKeyPem, signingKeyPassphrase: "other-passphrase" } });
      other = stack;
      const run = await upWithSummary(world, "other", "other");
      expect(run.code, run.out).toBe(0);
      const layers = (await stack.outputs()) as unknown as Record<string, SignedOutput>;
      const text = await verify("other");
      expect(text.code, text.out).toBe(1);
      expect(text.out).toContain("2 of 2 images refused:");
      for (const [layer, output] of Object.entries(layers)) {
        expect(text.out).toMatch(new RegExp(`^${layer}\\s.*REFUSED`, "m"));
        expect(text.out).toContain(`${layer} ${output.digestRef} is refused: `);
      }
      const { code, data } = await verifyJson("other");
      expect(code).toBe(1);
      expect(data.ok).toBe(false);
      for (const image of data.images) {
        expect(image.admitted).toBe(false);
        expect(image.signedBy).toBeNull();
        expect(image.failures.length).toBeGreaterThan(0);
      }
      // The other key itself verifies them: the refusal is about the key, not a broken image.
      expect((await verifyJson("other", "--key", otherKey.publicKeyFile)).code).toBe(0);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it("plans a promotion: what it would copy, and with a trust policy which images it would refuse and why (exit 1)", async () => {
    const devLayers = (await dev.outputs()) as unknown as Record<string, SignedOutput>;
    await world.stack("staging", { channel: "staging", promoteFrom: "dev", immutable: "true", trust });
    const admittedPlan = await runStrata(world, ["plan", "--stack", "staging", "--catalog", world.catalogDir, "--json"], { STRATA_COSIGN: cosign });
    expect(admittedPlan.code, admittedPlan.out).toBe(0);
    const admittedRows = JSON.parse(admittedPlan.out.slice(admittedPlan.out.indexOf("["))) as { layer: string; status: string; reason: string }[];
    expect(admittedRows.map((row) => [row.layer, row.status, row.reason]).sort()).toEqual(Object.entries(devLayers).map(([layer, output]) => [layer, "promote", `copies ${output.digestRef}`]).sort());

    if (other === undefined) throw new Error("the stack signed by another key was not made (the test before this one)");
    const otherLayers = (await other.outputs()) as unknown as Record<string, SignedOutput>;
    await world.stack("gated", { channel: "gated", promoteFrom: "other", immutable: "true", trust });
    const refusedPlan = await runStrata(world, ["plan", "--stack", "gated", "--catalog", world.catalogDir], { STRATA_COSIGN: cosign });
    expect(refusedPlan.code, refusedPlan.out).toBe(1);
    expect(refusedPlan.out).toContain("refused by the channel's trust policy (strata:trust): nothing would be promoted");
    for (const [layer, output] of Object.entries(otherLayers)) {
      expect(refusedPlan.out).toMatch(new RegExp(`^(└─ )?${layer}  refused: see below  `, "m"));
      expect(refusedPlan.out).toMatch(new RegExp(`^${layer}: .*${output.digestRef.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.*refused`, "m"));
    }
    // A plan promotes nothing.
    expect(await registryContents(`${world.osRelease}-mos9.0-gated`)).toEqual({});
  });

  it("refuses an image whose .sig tag was deleted from the registry, and still passes the others", async () => {
    const layers = (await dev.outputs()) as unknown as Record<string, SignedOutput>;
    const tools = layers.tools as SignedOutput;
    const repository = tools.digestRef.slice(registryAddress.length + 1, tools.digestRef.indexOf("@"));
    const sigTag = `sha256-${tools.digestRef.slice(tools.digestRef.indexOf("@sha256:") + "@sha256:".length)}.sig`;
    const sig = await registry.manifest(repository, sigTag);
    expect(sig, `${repository}:${sigTag}`).toBeDefined();
    await registry.deleteManifest(repository, sig?.digest as string);
    expect(await registry.manifest(repository, sigTag)).toBeUndefined();
    const text = await verify("dev");
    expect(text.code, text.out).toBe(1);
    expect(text.out).toMatch(/^tools\s.*REFUSED/m);
    expect(text.out).toMatch(/^base\s.*pass$/m);
    expect(text.out).toContain(`tools ${tools.digestRef} is refused: `);
    expect(text.out).toContain("1 of 2 images refused:");
    const keyed = await verifyJson("dev", "--key", publicKeyFile);
    expect(keyed.code).toBe(1);
    expect(keyed.data.images.find((image) => image.layer === "tools")?.admitted).toBe(false);

    // What the README says to do when a signature was lost (two writers of one .sig): replace the
    // set, which signs again what its images miss and writes nothing else.
    const attTag = sigTag.replace(/\.sig$/, ".att");
    const attBefore = (await registry.manifest(repository, attTag))?.digest;
    const baseRepository = (layers.base as SignedOutput).digestRef.slice(registryAddress.length + 1, (layers.base as SignedOutput).digestRef.indexOf("@"));
    const baseSigTag = `sha256-${(layers.base as SignedOutput).digestRef.slice((layers.base as SignedOutput).digestRef.indexOf("@sha256:") + "@sha256:".length)}.sig`;
    const baseSigBefore = (await registry.manifest(baseRepository, baseSigTag))?.digest;
    const state = (await dev.stack.exportStack()) as { deployment: { resources?: { urn: string; type: string; inputs?: { images?: Record<string, unknown> } }[] } };
    const sets = (state.deployment.resources ?? []).filter((resource) => resource.type === IMAGE_ATTESTATIONS_SET_TYPE && resource.inputs?.images?.tools !== undefined);
    expect(sets.map((set) => set.urn)).toHaveLength(1);
    // A plain run does not: the state says the digest is signed.
    await dev.stack.up({ parallel: 4 });
    expect(await registry.manifest(repository, sigTag)).toBeUndefined();
    await dev.stack.up({ replace: sets.map((set) => set.urn), parallel: 4 });
    expect(await registry.manifest(repository, sigTag), `${repository}:${sigTag} signed again`).toBeDefined();
    expect((await registry.manifest(repository, attTag))?.digest).toBe(attBefore);
    expect((await registry.manifest(baseRepository, baseSigTag))?.digest).toBe(baseSigBefore);
    const again = await verify("dev");
    expect(again.code, again.out).toBe(0);
  });

  it("refuses an image whose manifest is gone while its .sig and .att remain (cosign reads only those tags)", async () => {
    const layers = (await dev.outputs()) as unknown as Record<string, SignedOutput>;
    const base = layers.base as SignedOutput;
    const repository = base.digestRef.slice(registryAddress.length + 1, base.digestRef.indexOf("@"));
    const digest = base.digestRef.slice(base.digestRef.indexOf("@") + 1);
    const attTag = `sha256-${digest.slice("sha256:".length)}.att`;
    expect(await registry.manifest(repository, attTag), `${repository}:${attTag}`).toBeDefined();
    await registry.deleteManifest(repository, digest);
    expect(await registry.manifest(repository, digest)).toBeUndefined();
    expect(await registry.manifest(repository, attTag)).toBeDefined();
    const text = await verify("dev");
    expect(text.code, text.out).toBe(1);
    expect(text.out).toContain(`base ${base.digestRef} is refused: `);
    expect(text.out).toMatch(/the registry holds no manifest for it \(HTTP 404\): the image the stack exported is gone, whatever its signature tags still say/);
  });
});

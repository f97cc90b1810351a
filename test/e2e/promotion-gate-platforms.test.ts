/**
 * The promotion gate on a multi-platform layer (issue 29, items 3 and 5), real engine, registry,
 * emulation and cosign: dev builds `tools` for linux/amd64 and linux/arm64 (an index over two
 * platform images) and signs it; stable promotes it under `strata:trust`, and the index and both
 * platform images verify with plain cosign under stable's refs, digests unchanged. Then the
 * signature of one platform image alone is taken away in dev: a second gated channel refuses the
 * whole promotion naming that platform image, copying nothing — a gate that checked only the index
 * (whose own signature is intact) would let it through and leave tags behind.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cosign } from "../../src/engine/cosign.js";
import { catalogGit, commitCatalog, createWorld, type E2eStack, type E2eWorld, makeMultiPlatform, registry, registryAddress, registryContents, runStrata } from "./harness.js";
import { cosignBinary, cosignCli } from "./cosign-cli.js";

const PASSPHRASE = "gate-platforms-passphrase-91d2";
const TRUST = JSON.stringify({ keys: ["keys/ci.pub"], reviewedRef: "origin/main" });
const PLATFORMS = ["linux/amd64", "linux/arm64"];
const COSIGN_FLAGS = ["--insecure-ignore-tlog=true", "--allow-insecure-registry"];

/** `repo@sha256:…` → [repository path in the registry, digest]. */
function splitRef(digestRef: string): [string, string] {
  const at = digestRef.indexOf("@");
  return [digestRef.slice(registryAddress.length + 1, at), digestRef.slice(at + 1)];
}

/** The index's platform images, as `repo@digest` refs in the index's repository, read from the registry. */
async function platformRefs(indexRef: string): Promise<string[]> {
  const [repository, digest] = splitRef(indexRef);
  const index = await registry.manifest(repository, digest);
  const entries = (index?.manifest.manifests ?? []).filter((entry) => entry.platform?.os !== "unknown");
  return entries.map((entry) => `${registryAddress}/${repository}@${entry.digest}`);
}

describe("the promotion gate on a multi-platform layer", () => {
  let world: E2eWorld;
  let cosign: string;
  let keysDir: string;
  let publicKeyFile: string;
  let dev: E2eStack;
  let stable: E2eStack;
  let gated: E2eStack;

  beforeAll(async () => {
    cosign = cosignBinary();
    world = createWorld("gate-mp");
    makeMultiPlatform(world);
    commitCatalog(world);
    catalogGit(world, "update-ref", "refs/remotes/origin/main", "HEAD");
    keysDir = mkdtempSync(path.join(tmpdir(), "strata-gate-mp-keys-"));
    const pair = await new Cosign({ binary: cosign }).generateKeyPair(keysDir, PASSPHRASE);
    publicKeyFile = pair.publicKeyFile;
    mkdirSync(path.join(world.projectDir, "keys"));
    copyFileSync(publicKeyFile, path.join(world.projectDir, "keys/ci.pub"));
    const platforms = JSON.stringify(PLATFORMS);
    dev = await world.stack("dev", { platforms, layers: JSON.stringify(["tools"]) }, { secrets: { signingKey: pair.key.privateKeyPem, signingKeyPassphrase: PASSPHRASE } });
    const project = { env: { STRATA_PROJECT_DIR: world.projectDir } };
    stable = await world.stack("stable", { channel: "stable", immutable: "true", promoteFrom: "dev", platforms, trust: TRUST }, project);
    gated = await world.stack("gated", { channel: "gated", immutable: "true", promoteFrom: "dev", platforms, trust: TRUST }, project);
  });
  afterAll(async () => {
    await world?.cleanup();
    if (keysDir !== undefined) rmSync(keysDir, { recursive: true, force: true });
  });

  it("admits a signed index: under stable's refs the index and both platform images verify with plain cosign, digests unchanged", async () => {
    await dev.up();
    await stable.up();
    const devTools = (await dev.outputs()).tools?.digestRef ?? "";
    const stableTools = (await stable.outputs()).tools?.digestRef ?? "";
    expect(stableTools.startsWith(`${registryAddress}/${stable.group}/`), stableTools).toBe(true);
    expect(splitRef(stableTools)[1]).toBe(splitRef(devTools)[1]);
    const children = await platformRefs(stableTools);
    expect(children.length).toBe(PLATFORMS.length);
    expect(children.map((ref) => splitRef(ref)[1]).sort()).toEqual((await platformRefs(devTools)).map((ref) => splitRef(ref)[1]).sort());
    for (const ref of [stableTools, ...children]) {
      for (const args of [["verify"], ["verify-attestation", "--type", "spdxjson"], ["verify-attestation", "--type", "slsaprovenance1"]]) {
        const verified = cosignCli(cosign, [...args, "--key", publicKeyFile, ...COSIGN_FLAGS, ref]);
        expect(verified.code, `${args.join(" ")} ${ref}\n${verified.out}`).toBe(0);
      }
    }
    // strata verify on both channels: every index and each of its platform images (read from the
    // registry as well as from the outputs, each once) verified and admitted.
    for (const [stack, indexRef] of [["dev", devTools], ["stable", stableTools]] as const) {
      // dev has no trust policy: the key is named instead (stable's policy names the same key).
      const run = await runStrata(world, ["verify", "--stack", stack, "--catalog", world.catalogDir, "--json", ...(stack === "dev" ? ["--key", "keys/ci.pub"] : [])], { STRATA_COSIGN: cosign });
      expect(run.code, run.out).toBe(0);
      const images = (JSON.parse(run.out.slice(run.out.indexOf("{"))) as { images: { layer: string; digestRef: string; admitted: boolean }[] }).images;
      const verifiedRefs = images.filter((image) => image.layer === "tools").map((image) => image.digestRef);
      expect(new Set(verifiedRefs).size, `${stack}: each tools image once`).toBe(verifiedRefs.length);
      expect(verifiedRefs).toEqual(expect.arrayContaining([indexRef, ...await platformRefs(indexRef)]));
      expect(images.every((image) => image.admitted)).toBe(true);
    }
  });

  it("refuses the whole promotion when one platform image's signature is gone, naming that image, and copies nothing", async () => {
    const devTools = (await dev.outputs()).tools?.digestRef ?? "";
    const [arm64Child] = (await platformRefs(devTools)).slice(-1);
    const [repository, digest] = splitRef(arm64Child ?? "");
    const sigTag = `${digest.replace(":", "-")}.sig`;
    const sig = await registry.manifest(repository, sigTag);
    expect(sig, `${repository}:${sigTag}`).toBeDefined();
    await registry.deleteManifest(repository, sig?.digest as string);
    // The index's own signature is still there: only a gate that checks each platform image refuses.
    const [indexRepository, indexDigest] = splitRef(devTools);
    expect(await registry.manifest(indexRepository, `${indexDigest.replace(":", "-")}.sig`)).toBeDefined();

    let message = "";
    try {
      await gated.up();
    } catch (error) {
      message = String(error instanceof Error ? error.message : error);
    }
    expect(message, "the run succeeded: the gate let it through").not.toBe("");
    expect(message).toMatch(/the promotion is refused: 1 of \d+ images did not pass strata:trust/);
    expect(message).toContain(`${digest} is refused: it has no signature by a trusted key (keys/ci.pub)`);
    expect(await registryContents(gated.group)).toEqual({});
  });

  it("destroy of the stable channel removes what its promotion wrote: each tag, the index's platform images, every signature", async () => {
    const stableTools = (await stable.outputs()).tools?.digestRef ?? "";
    const children = await platformRefs(stableTools);
    expect(children.length).toBe(PLATFORMS.length);
    const before = Object.values(await registryContents(stable.group)).flat();
    expect(before.filter((tag) => tag.endsWith(".sig")).length, before.join(" ")).toBeGreaterThanOrEqual(1 + PLATFORMS.length);
    await stable.destroy();
    expect(Object.values(await registryContents(stable.group)).flat()).toEqual([]);
    for (const ref of [stableTools, ...children]) {
      const [repository, digest] = splitRef(ref);
      expect(await registry.manifest(repository, digest), ref).toBeUndefined();
    }
  });
});

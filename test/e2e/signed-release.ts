/**
 * A signed release through a registry of a test's own (one that needs a login, TLS or tokens): a
 * generated key, a channel that builds base and tools and signs them with the stack's registry
 * login, a channel that promotes it under a trust policy (the gate runs cosign against that
 * registry), and `strata verify` of the promoted channel. Shared by the registries' e2e files.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { Cosign } from "../../src/engine/cosign.js";
import { type RegistryClient } from "../../src/registry/client.js";
import { cosignBinary } from "./cosign-cli.js";
import { catalogGit, commitCatalog, type E2eWorld } from "./harness.js";

const SIGNING_PASSPHRASE = "release-signing-5e1a";

export interface SignedRelease {
  /** Every log the release wrote, and the promoted channel's outputs: where the password must not be. */
  readonly texts: readonly string[];
}

/**
 * Builds, signs, gates and verifies through `registry` with its login (`env`: the stacks' engine's
 * and program's; `client`: one that reads it, for the promoted tags); `verify` runs `strata verify --stack <stack>` with the cosign given, as the
 * registry needs (a process of its own, or this one). Asserts every image was admitted and copied
 * with its digest unchanged, and that verify passed both.
 */
export async function signedRelease(world: E2eWorld, registry: { address: string; username: string; password: string; env?: Record<string, string>; client: RegistryClient }, verify: (stack: string, cosign: string) => Promise<{ code: number; out: string }>): Promise<SignedRelease> {
  const cosign = cosignBinary();
  const keysDir = path.join(world.root, "signing-keys");
  mkdirSync(keysDir);
  const pair = await new Cosign({ binary: cosign }).generateKeyPair(keysDir, SIGNING_PASSPHRASE);
  mkdirSync(path.join(world.projectDir, "keys"), { recursive: true });
  copyFileSync(pair.publicKeyFile, path.join(world.projectDir, "keys/ci.pub"));
  // Provenance names the catalog's commit, which the trust policy's reviewed ref holds.
  commitCatalog(world);
  catalogGit(world, "update-ref", "refs/remotes/origin/main", "HEAD");
  const env = registry.env ?? {};
  const login = { registry: registry.address, registryUsername: registry.username };
  const signed = await world.stack("signed", { ...login, channel: "signed", layers: JSON.stringify(["tools"]) }, { secrets: { registryPassword: registry.password, signingKey: pair.key.privateKeyPem, signingKeyPassphrase: SIGNING_PASSPHRASE }, env });
  const built = await signed.up();
  const builtLayers = await signed.outputs();
  expect(Object.keys(builtLayers).sort()).toEqual(["base", "tools"]);
  const trust = JSON.stringify({ keys: ["keys/ci.pub"], reviewedRef: "origin/main" });
  const gated = await world.stack("gated", { ...login, channel: "gated", immutable: "true", promoteFrom: "signed", trust }, { secrets: { registryPassword: registry.password }, env: { ...env, STRATA_PROJECT_DIR: world.projectDir } });
  const promoted = await gated.up();
  // Admitted and copied: each image under the gated channel's tag, its digest unchanged.
  const gatedLayers = await gated.outputs();
  expect(Object.keys(gatedLayers).sort()).toEqual(["base", "tools"]);
  for (const [layer, output] of Object.entries(gatedLayers)) {
    const image = (builtLayers[layer]?.digestRef ?? "").split("/").pop() ?? "";
    expect(output.digestRef, layer).toBe(`${registry.address}/${gated.group}/${image}`);
    expect((await registry.client.manifest(`${gated.group}/${image.slice(0, image.indexOf("@"))}`, output.tag))?.digest, layer).toBe(image.slice(image.indexOf("@") + 1));
  }
  const verified = await verify("gated", cosign);
  expect(verified.code, verified.out).toBe(0);
  expect(verified.out).toContain("2 images verified");
  return { texts: [built.log, promoted.log, verified.out, JSON.stringify(await gated.stack.outputs())] };
}

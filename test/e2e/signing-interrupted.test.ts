/**
 * A signing run killed while its attestation sets move (issue 29), with the real engine, registry
 * and cosign. A family added before `app-base` among `libs`'s children renames the set that signs
 * `app-base` (core/attestation-sets.ts: a set is named after its first family's head), so the run
 * creates `attestations-aaa-base`, which signs the new family and takes over `app-base`'s, and
 * deletes `attestations-app-base`. A fault proxy holds every `.att` manifest write, so the new set's
 * step hangs after it has written the new images' signatures; then the whole process group is
 * killed (a CI job's timeout). The registry now holds signatures the state knows nothing of (a
 * mutable channel's engine writes the state as the run ends). After `strata recover` and a healthy
 * `strata up`: the sets have moved, each image is in one set, no digest carries a second signature,
 * the killed run's signatures are kept (not written again) and everything verifies with plain cosign.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { removeImages } from "../../bench/docker-images.js";
import { endsSet } from "../../src/core/attestation-sets.js";
import { Cosign } from "../../src/engine/cosign.js";
import { type FaultProxy, startFaultProxy } from "../helpers/fault-proxy.js";
import { cosignBinary } from "./cosign-cli.js";
import { catalogGit, commitCatalog, createWorld, type E2eStack, type E2eWorld, endRunningUps, registry, registryAddress, runStrata, startGroupUp, upWithSummary, waitFor } from "./harness.js";

const PASSPHRASE = "interrupted-passphrase-9c41";
const NEW_HEAD = "aaa-base";
const NEW_LEAF = "aaa";

interface ExportedState { deployment: { resources?: { type: string; urn: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[] } }

/** The attestation sets of a state: resource name → the image names its inputs hold. */
function setsOf(exported: ExportedState): Record<string, string[]> {
  return Object.fromEntries((exported.deployment.resources ?? []).filter((resource) => resource.type === "strata:index:ImageAttestationsSet")
    .map((resource) => [resource.urn.split("::").pop() as string, Object.keys(resource.inputs?.images ?? {}).sort()]));
}

// A run a failed test did not wait for is killed before the next test starts.
afterEach(endRunningUps);

describe("a signing run killed while its attestation sets move", () => {
  let world: E2eWorld;
  let proxy: FaultProxy;
  let dev: E2eStack;
  let keysDir: string;
  let cosign: string;
  let publicKeyFile: string;

  const git = (...args: string[]): string => catalogGit(world, ...args);

  beforeAll(async () => {
    cosign = cosignBinary();
    world = createWorld("signing-kill");
    commitCatalog(world);
    keysDir = mkdtempSync(path.join(tmpdir(), "strata-signing-kill-keys-"));
    const pair = await new Cosign({ binary: cosign }).generateKeyPair(keysDir, PASSPHRASE);
    publicKeyFile = pair.publicKeyFile;
    const [host, port] = registryAddress.split(":") as [string, string];
    proxy = await startFaultProxy({ host, port: Number(port) });
    dev = await world.stack("dev", { registry: proxy.address }, { secrets: { signingKey: pair.key.privateKeyPem, signingKeyPassphrase: PASSPHRASE } });
  });
  afterAll(async () => {
    // A failure between the kill and the recovery leaves the lock held, which the cleanup's stack rm refuses.
    if (world !== undefined) await runStrata(world, ["recover", "--stack", "dev"]);
    await world?.cleanup();
    await proxy?.close();
    if (proxy !== undefined) removeImages(`${proxy.address}/`);
    if (keysDir !== undefined) rmSync(keysDir, { recursive: true, force: true });
  });

  it("keeps the killed run's signatures, signs nothing twice, and moves the sets on the next up", async () => {
    const first = await upWithSummary(world, "dev", "first");
    expect(first.code, first.out).toBe(0);
    const setsBefore = setsOf(await dev.stack.exportStack() as ExportedState);
    expect(setsBefore["attestations-app-base"]).toEqual(["app", "app-base"]);

    // The new family: siblings are declared by name, so it comes before app-base; its head's name
    // ends no set (else it would be a set alone and app-base's set would keep its name).
    expect(endsSet(NEW_HEAD)).toBe(false);
    const copyLayer = (from: string, to: string, parent: string): void => {
      const dir = path.join(world.catalogDir, to);
      cpSync(path.join(world.catalogDir, from), dir, { recursive: true });
      rmSync(path.join(dir, `${from}.txt`));
      writeFileSync(path.join(dir, `${to}.txt`), `${to}\n`);
      const dockerfile = path.join(dir, "Dockerfile");
      writeFileSync(dockerfile, readFileSync(dockerfile, "utf8").replaceAll(`${from}.txt`, `${to}.txt`));
      const layerYaml = path.join(dir, "layer.yaml");
      writeFileSync(layerYaml, readFileSync(layerYaml, "utf8").replace(/^parent: .*$/m, `parent: ${parent}`));
    };
    copyLayer("app-base", NEW_HEAD, "libs");
    copyLayer("app", NEW_LEAF, NEW_HEAD);
    git("add", "-A");
    git("commit", "-q", "-m", "a family before app-base");

    // Every .att manifest write is held: the new set's step stops after the signatures.
    proxy.setRule((request) => (request.method === "PUT" && request.kind === "manifest" && request.reference?.endsWith(".att") === true ? { kind: "stall", ms: 600_000 } : undefined));
    const stalledAtt = (): { repository: string; reference: string }[] => proxy.injected.filter((injection) => injection.fault === "stall")
      .map((injection) => ({ repository: injection.repository as string, reference: injection.reference as string }));
    const sigTag = (attTag: string): string => attTag.replace(/\.att$/, ".sig");
    let signaturesThere = false;
    const run = startGroupUp(world, "dev");
    try {
      // Both new images' .att writes held, and the .sig of each written.
      expect(await waitFor(() => stalledAtt().length >= 2, 240_000), run.output()).toBe(true);
      for (let waited = 0; waited < 30_000 && !signaturesThere; waited += 100) {
        const found = await Promise.all(stalledAtt().map(({ repository, reference }) => registry.manifest(repository, sigTag(reference))));
        signaturesThere = found.every((manifest) => manifest !== undefined);
        if (!signaturesThere) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(signaturesThere, run.output()).toBe(true);
    } finally {
      run.killGroup("SIGKILL");
    }
    expect(await run.exited).toBe("SIGKILL");
    proxy.setRule(undefined);

    // The interruption, as it landed: only the new images' attestations were held (the taken-over
    // ones write nothing), the registry holds their signatures and no .att, and the state is the
    // first run's (the old set, no new one).
    const held = stalledAtt();
    expect(held.map(({ repository }) => repository.split("/").pop()).sort()).toEqual([`base-tools-libs-${NEW_HEAD}`, `base-tools-libs-${NEW_LEAF}`].sort());
    for (const { repository, reference } of held) {
      expect((await registry.manifest(repository, sigTag(reference)))?.manifest.layers).toHaveLength(1);
      expect(await registry.manifest(repository, reference)).toBeUndefined();
    }
    expect(setsOf(await dev.stack.exportStack() as ExportedState)).toEqual(setsBefore);

    const recovered = await runStrata(world, ["recover", "--stack", "dev"]);
    expect(recovered.code, recovered.out).toBe(0);
    const again = await upWithSummary(world, "dev", "again");
    expect(again.code, again.out).toBe(0);
    // The new images say signed: their attestations, absent after the kill, were written by this run
    // (their signatures were found, not written again: the layer counts below). The taken-over and
    // the other images say signed before: nothing was written for them.
    expect(again.summary.layers).toHaveLength(8);
    expect(Object.fromEntries(again.summary.layers.map((layer) => [layer.layer, layer.signed]))).toEqual({
      [NEW_HEAD]: "signed", [NEW_LEAF]: "signed", "app-base": "signed before", app: "signed before", base: "signed before", tools: "signed before", libs: "signed before", db: "signed before",
    });

    const setsAfter = setsOf(await dev.stack.exportStack() as ExportedState);
    expect(setsAfter["attestations-app-base"]).toBeUndefined();
    expect(setsAfter[`attestations-${NEW_HEAD}`]).toEqual([NEW_LEAF, NEW_HEAD, "app", "app-base"].sort());
    const everyImage = Object.values(setsAfter).flat();
    expect(new Set(everyImage).size).toBe(everyImage.length);
    expect(everyImage.sort()).toEqual(["aaa", "aaa-base", "app", "app-base", "base", "db", "libs", "tools"]);

    const outputs = await dev.outputs();
    expect(Object.keys(outputs).sort()).toEqual(everyImage);
    for (const [layer, output] of Object.entries(outputs)) {
      // Directly, not through the proxy: it answers in this process, whose event loop spawnSync(cosign) blocks.
      const digestRef = output.digestRef.replace(proxy.address, registryAddress);
      const repository = digestRef.slice(registryAddress.length + 1, digestRef.indexOf("@"));
      const hex = digestRef.slice(digestRef.indexOf("@sha256:") + "@sha256:".length);
      // One signature and one attestation of each type per digest: the killed run's were not written twice.
      expect((await registry.manifest(repository, `sha256-${hex}.sig`))?.manifest.layers, layer).toHaveLength(1);
      expect((await registry.manifest(repository, `sha256-${hex}.att`))?.manifest.layers, layer).toHaveLength(2);
      if (layer !== NEW_HEAD && layer !== NEW_LEAF) continue;
      for (const args of [["verify"], ["verify-attestation", "--type", "slsaprovenance1"], ["verify-attestation", "--type", "spdxjson"]]) {
        const checked = spawnSync(cosign, [...args, "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", digestRef], { encoding: "utf8", env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root" }, timeout: 120_000 });
        expect(checked.status, `${layer}: cosign ${args.join(" ")}\n${checked.stdout}${checked.stderr}`).toBe(0);
      }
    }
    // Settled: a preview changes nothing.
    expect((await dev.stack.preview()).changeSummary).toEqual({ same: expect.any(Number) });
  });
});

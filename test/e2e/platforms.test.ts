/**
 * Multi-platform stacks end to end (strata:platforms linux/amd64 + linux/arm64, arm64 build steps
 * under qemu-user-static): every layer's tag is an OCI index over two per-platform images that run
 * as their architecture; a change rebuilds its subtree on both platforms and nothing else;
 * promotion keeps the index digest; a stack that promoted and then builds adopts what its promotion
 * wrote (the same indexes, nothing built, nothing deleted); a CI run copies the indexes of unchanged layers and builds only
 * the change, per platform; strata up registers the arm64 interpreter itself when the kernel has
 * none (the entry the harness registered is removed first, and is there again afterwards); a
 * STRATA_BINFMT_DIR that is not binfmt_misc stops before anything is pushed.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changed, createWorld, type E2eStack, type E2eWorld, makeMultiPlatform, registry, registryAddress, registryContents, repoRoot, runStrata, upWithSummary } from "./harness.js";

const PLATFORMS = ["linux/amd64", "linux/arm64"];
const LAYERS = ["base", "tools", "db", "libs", "app-base", "app"];
const REPOSITORIES: Record<string, string> = { base: "base", tools: "base-tools", db: "base-tools-db", libs: "base-tools-libs", "app-base": "base-tools-libs-app-base", app: "base-tools-libs-app" };
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** The fixture catalog's release tags (app is at 1.0.2). */
const TAGS: Record<string, string> = { base: "1.0-p0", tools: "1.0-p0", db: "1.0-p0", libs: "1.0-p0", "app-base": "1.0-p0", app: "1.0-p2" };

let world: E2eWorld;
let dev: E2eStack;

/** The index under a layer's tag: its digest and entries (platform → manifest digest). */
async function indexOf(group: string, layer: string, tag: string = TAGS[layer] as string): Promise<{ digest: string; mediaType: string; entries: Record<string, string> }> {
  const found = await registry.manifest(`${group}/${REPOSITORIES[layer] as string}`, tag);
  if (found === undefined) throw new Error(`${group}/${REPOSITORIES[layer] as string}:${tag} is not in the registry`);
  const entries = Object.fromEntries((found.manifest.manifests ?? []).map((entry) => [`${entry.platform?.os ?? ""}/${entry.platform?.architecture ?? ""}`, entry.digest]));
  return { digest: found.digest, mediaType: found.mediaType, entries };
}

const docker = (...args: string[]): string => execFileSync("docker", args, { encoding: "utf8" }).trim();

/** The kernel's entry for arm64 binaries (qemu-user-static), which the harness registered. */
const ARM64_ENTRY = "/proc/sys/fs/binfmt_misc/qemu-aarch64";
const arm64Emulated = (): boolean => existsSync(ARM64_ENTRY) && readFileSync(ARM64_ENTRY, "utf8").split("\n")[0] === "enabled";

beforeAll(async () => {
  world = createWorld("platforms");
  makeMultiPlatform(world);
  dev = await world.stack("dev", { platforms: JSON.stringify(PLATFORMS) });
}, 300_000);
afterAll(async () => {
  try {
    await world?.cleanup();
  } finally {
    // Whatever a test did to the kernel's arm64 entry, it is registered again, as the harness left it.
    if (!arm64Emulated()) execFileSync(path.join(repoRoot, "scripts/services.sh"), ["emulation", "linux/arm64"], { stdio: "inherit" });
  }
});

describe("a stack with two platforms", () => {
  let firstIndexes: Record<string, string>;

  it("registers arm64's emulation itself, builds every layer per platform and puts an OCI index of both under each tag", async () => {
    // strata up's own registration path: without the entry the harness registered, the run must register it.
    writeFileSync(ARM64_ENTRY, "-1");
    expect(existsSync(ARM64_ENTRY)).toBe(false);
    const run = await upWithSummary(world, "dev", "cold");
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain("registering emulation for linux/arm64 (scripts/services.sh emulation)");
    expect(arm64Emulated()).toBe(true);
    for (const layer of LAYERS) {
      for (const platform of PLATFORMS) expect(run.results[`${layer}@${platform.replace("/", "-")}`], layer).toBe("built");
      expect(run.results[layer], layer).toBe("built");
    }
    const contents = await registryContents(dev.group);
    // The image's own repository lists the release tag only; each platform's image is in a repository of its own.
    expect(contents.base).toEqual(["1.0-p0"]);
    expect(contents["base/linux-arm64"]).toEqual(["1.0-p0"]);
    expect(contents["base/linux-amd64"]).toEqual(["1.0-p0"]);
    firstIndexes = {};
    const outputs = await dev.outputs();
    for (const layer of LAYERS) {
      const index = await indexOf(dev.group, layer);
      expect(index.mediaType).toBe(OCI_INDEX);
      expect(Object.keys(index.entries)).toEqual(PLATFORMS);
      // Each entry is the per-platform image, by digest, and the stack output names both and the index.
      for (const platform of PLATFORMS) {
        const perPlatform = await registry.manifest(`${dev.group}/${REPOSITORIES[layer] as string}/${platform.replace("/", "-")}`, TAGS[layer] as string);
        expect(index.entries[platform]).toBe(perPlatform?.digest);
      }
      const output = outputs[layer] as unknown as { digestRef: string; platforms: Record<string, string> };
      expect(output.digestRef).toBe(`${registryAddress}/${dev.group}/${REPOSITORIES[layer] as string}@${index.digest}`);
      expect(Object.keys(output.platforms)).toEqual(PLATFORMS);
      firstIndexes[layer] = index.digest;
    }
  }, 600_000);

  it("runs each platform's image as its own architecture from the one tag", () => {
    const ref = `${registryAddress}/${dev.group}/base-tools-libs-app:1.0-p2`;
    for (const [platform, machine] of [["linux/arm64", "aarch64"], ["linux/amd64", "x86_64"]] as const) {
      docker("pull", "--quiet", "--platform", platform, ref);
      expect(docker("run", "--rm", "--platform", platform, ref, "uname", "-m")).toBe(machine);
      expect(docker("image", "inspect", "--format", "{{.Architecture}}", ref)).toBe(platform.split("/")[1]);
    }
  }, 300_000);

  it("rebuilds a changed layer's subtree on both platforms and nothing else", async () => {
    const quiet = await dev.up();
    expect(changed(quiet.operations)).toEqual([]);
    appendFileSync(path.join(world.catalogDir, "app-base/app-base.txt"), "changed\n");
    const run = await dev.up();
    expect(changed(run.operations)).toEqual(["app", "app-base", "app-base@linux-amd64", "app-base@linux-arm64", "app@linux-amd64", "app@linux-arm64"]);
    for (const layer of ["base", "tools", "db", "libs"]) expect((await indexOf(dev.group, layer)).digest).toBe(firstIndexes[layer]);
    for (const layer of ["app-base", "app"]) expect((await indexOf(dev.group, layer)).digest).not.toBe(firstIndexes[layer]);
  }, 600_000);

  it("promotes the index by digest: the promoted tag holds the same index and its images", async () => {
    const staging = await world.stack("staging", { channel: "staging", promoteFrom: "dev", immutable: "true" });
    const run = await upWithSummary(world, "staging", "promote");
    expect(run.code, run.out).toBe(0);
    for (const layer of LAYERS) {
      const promoted = await indexOf(staging.group, layer);
      expect(promoted.digest).toBe((await indexOf(dev.group, layer)).digest);
      // The index's images came along: an arm64 host pulls its image from the promoted channel.
      for (const digest of Object.values(promoted.entries)) expect(await registry.manifest(`${staging.group}/${REPOSITORIES[layer] as string}`, digest)).toBeDefined();
    }
  }, 600_000);

  it("a stack that promoted the indexes and now builds adopts what its promotion wrote: the same index under every tag, nothing built, none deleted", async () => {
    const switching = await world.stack("switch", { channel: "switch", promoteFrom: "dev", platforms: JSON.stringify(PLATFORMS) });
    const promoted = await upWithSummary(world, "switch", "switch-promote");
    expect(promoted.code, promoted.out).toBe(0);
    const indexesOf = async (): Promise<Record<string, string>> => Object.fromEntries(await Promise.all(LAYERS.map(async (layer) => [layer, (await indexOf(switching.group, layer)).digest] as const)));
    const indexes = await indexesOf();
    for (const layer of LAYERS) expect(indexes[layer], layer).toBe((await indexOf(dev.group, layer)).digest);
    const contents = await registryContents(switching.group);

    await switching.stack.removeConfig("strata:promoteFrom");
    // The plan says so first: every platform image adopted, and every index with them.
    const plan = await runStrata(world, ["plan", "--stack", "switch", "--json", "--catalog", world.catalogDir]);
    expect(plan.code, plan.out).toBe(0);
    const planned = (JSON.parse(plan.out) as { layer: string; status: string }[]).map((row) => [row.layer, row.status]);
    expect(planned).toHaveLength(LAYERS.length * (PLATFORMS.length + 1));
    expect(planned.filter(([, status]) => status !== "adopt")).toEqual([]);
    const building = await upWithSummary(world, "switch", "switch-build");
    expect(building.code, building.out).toBe(0);
    // Every platform image was found under its tag with the catalog's content, and each layer's index
    // over them is the one its tag holds: nothing built, nothing written.
    expect(Object.keys(building.results)).toHaveLength(LAYERS.length * (PLATFORMS.length + 1));
    expect(Object.entries(building.results).filter(([, result]) => result !== "adopted"), building.out).toEqual([]);
    expect(await indexesOf()).toEqual(indexes);
    // The promotion's resources became the adoptions (aliases), so none was deleted with its tag, and
    // each index's platform images are still in the index's repository.
    const after = await registryContents(switching.group);
    for (const [repository, tags] of Object.entries(contents)) expect(after[repository], repository).toEqual(expect.arrayContaining(tags));
    for (const layer of LAYERS) {
      for (const digest of Object.values((await indexOf(switching.group, layer)).entries)) expect(await registry.manifest(`${switching.group}/${REPOSITORIES[layer] as string}`, digest), layer).toBeDefined();
    }
    expect(changed((await switching.up()).operations)).toEqual([]);
  }, 600_000);

  it("a CI run copies the unchanged layers' indexes and builds only the change, per platform", async () => {
    appendFileSync(path.join(world.catalogDir, "app/app.txt"), "review\n");
    const run = await upWithSummary(world, "dev", "ci", { GERRIT_CHANGE_NUMBER: "777", GERRIT_PATCHSET_NUMBER: "1" });
    expect(run.code, run.out).toBe(0);
    for (const platform of PLATFORMS) {
      const slug = platform.replace("/", "-");
      expect(run.results[`app@${slug}`]).toBe("built");
      for (const layer of LAYERS.filter((name) => name !== "app")) expect(run.results[`${layer}@${slug}`], layer).toBe("copied");
    }
    for (const layer of LAYERS) {
      const ciIndex = await indexOf(dev.group, layer, `${TAGS[layer] as string}-777_1`);
      expect(Object.keys(ciIndex.entries)).toEqual(PLATFORMS);
    }
    // The release tags did not move.
    for (const layer of ["base", "tools", "db", "libs"]) expect((await indexOf(dev.group, layer)).digest).toBe(firstIndexes[layer]);
  }, 600_000);

  it("plans per layer and platform: the changed layer on both platforms, nothing else", async () => {
    const plan = await runStrata(world, ["plan", "--stack", "dev", "--json", "--catalog", world.catalogDir]);
    expect(plan.code, plan.out).toBe(0);
    const rows = JSON.parse(plan.out) as { layer: string; status: string }[];
    const statuses = Object.fromEntries(rows.map((row) => [row.layer, row.status]));
    // A row per layer and platform, and one per layer's index.
    expect(Object.keys(statuses)).toHaveLength(LAYERS.length * 3);
    expect(statuses).toMatchObject({ "app@linux-amd64": "rebuild", "app@linux-arm64": "rebuild", app: "rebuild", "app-base@linux-arm64": "unchanged", "base@linux-amd64": "unchanged", base: "unchanged" });
    expect(Object.values(statuses).filter((status) => status !== "unchanged")).toHaveLength(3);
  }, 300_000);

  it("ci-clean deletes the change's indexes and the per-platform manifests only they referenced", async () => {
    const ciIndexes = await Promise.all(LAYERS.map(async (layer) => ({ layer, index: await indexOf(dev.group, layer, `${TAGS[layer] as string}-777_1`) })));
    const clean = await runStrata(world, ["ci-clean", "--stack", "dev", "--change", "777"]);
    expect(clean.code, clean.out).toBe(0);
    for (const tags of Object.values(await registryContents(dev.group))) expect(tags.filter((tag) => tag.includes("-777"))).toEqual([]);
    for (const { layer, index } of ciIndexes) {
      const repository = `${dev.group}/${REPOSITORIES[layer] as string}`;
      expect(await registry.manifest(repository, index.digest)).toBeUndefined();
      const release = await indexOf(dev.group, layer);
      for (const [platform, digest] of Object.entries(index.entries)) {
        // An entry the release index shares stays; the CI run's own entries are gone.
        const kept = Object.values(release.entries).includes(digest);
        expect(await registry.manifest(repository, digest) !== undefined, `${layer} ${platform}`).toBe(kept);
      }
      for (const digest of Object.values(release.entries)) expect(await registry.manifest(repository, digest)).toBeDefined();
    }
  }, 300_000);
});

describe("an immutable channel with two platforms", () => {
  it("refuses to move an index tag: another platform order would put another index there", async () => {
    const stable = await world.stack("stable", { channel: "stable", immutable: "true", platforms: JSON.stringify(PLATFORMS) });
    const first = await upWithSummary(world, "stable", "stable");
    expect(first.code, first.out).toBe(0);
    const before = await indexOf(stable.group, "base");
    await stable.stack.setConfig("strata:platforms", { value: JSON.stringify([...PLATFORMS].reverse()) });
    // strata plan says so first: each index row blocked, with why.
    const plan = await runStrata(world, ["plan", "--stack", "stable", "--json", "--catalog", world.catalogDir]);
    expect(plan.code).not.toBe(0);
    const rows = JSON.parse(plan.out) as { layer: string; status: string; reason: string }[];
    expect(rows.find((row) => row.layer === "base")).toMatchObject({ status: "blocked", reason: expect.stringMatching(/holds an index over linux\/amd64, linux\/arm64, not linux\/arm64, linux\/amd64/) as unknown });
    const refused = await upWithSummary(world, "stable", "stable-reordered");
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/layer "base": .*base:1\.0-p0 holds an index over linux\/amd64, linux\/arm64, not linux\/arm64, linux\/amd64; an immutable channel never moves a tag/);
    expect((await indexOf(stable.group, "base")).digest).toBe(before.digest);
  }, 600_000);
});

describe("a foreign platform without emulation", () => {
  it("a STRATA_BINFMT_DIR that is not binfmt_misc: stops before anything is built or pushed, and says how to fix it", async () => {
    const noEmulation = mkdtempSync(path.join(world.root, "binfmt-"));
    const stack = await world.stack("bare", { channel: "bare", platforms: JSON.stringify(PLATFORMS) }, { env: { STRATA_BINFMT_DIR: noEmulation } });
    // As a user's `STRATA_BINFMT_DIR=… strata up` has it: in the CLI's own environment too, which services.sh inherits.
    process.env.STRATA_BINFMT_DIR = noEmulation;
    try {
      // It stops before the engine runs: no summary is written, only the reason.
      const run = await runStrata(world, ["up", "--stack", "bare", "--catalog", world.catalogDir], { STRATA_BINFMT_DIR: noEmulation });
      expect(run.code).not.toBe(0);
      const folder = noEmulation.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      expect(run.out).toMatch(new RegExp(`linux/arm64 build steps need emulation on this machine, and it could not be set up: .*STRATA_BINFMT_DIR=${folder} is not where binfmt_misc is mounted .*mount -t binfmt_misc binfmt_misc ${folder}.*scripts/services\\.sh emulation linux/arm64.*Nothing was built or pushed`, "s"));
      expect(run.out).not.toMatch(/\n\s+at /);
      expect(await registryContents(stack.group)).toEqual({});
      // Nothing was mounted over the folder: it is as empty as it was.
      expect(existsSync(path.join(noEmulation, "register"))).toBe(false);
    } finally {
      delete process.env.STRATA_BINFMT_DIR;
    }
  }, 300_000);
});

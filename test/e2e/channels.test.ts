/**
 * Release channels against the real engine and registry: promotion by digest,
 * an immutable channel refusing to move tags, and `strata bump`.
 */
import { appendFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/commands.js";
import { changed, createWorld, type E2eStack, type E2eWorld, registry, registryContents } from "./harness.js";

let world: E2eWorld;
let dev: E2eStack;
let staging: E2eStack;
let qa: E2eStack;

beforeAll(async () => {
  world = createWorld("channels");
  dev = await world.stack("dev", { channel: "dev" });
  staging = await world.stack("staging", { channel: "staging", immutable: "true", promoteFrom: "dev" });
  qa = await world.stack("qa", { channel: "qa", immutable: "true" });
});
afterAll(async () => {
  await world?.cleanup();
});

/** Digest of every tag of a group, straight from the registry. */
async function digests(group: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const [repository, tags] of Object.entries(await registryContents(group))) {
    for (const tag of tags) result[`${repository}:${tag}`] = (await registry.manifest(`${group}/${repository}`, tag))?.digest ?? "";
  }
  return result;
}

async function strata(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(args, { out: (text) => (out += text), err: (text) => (err += text), env: {}, cwd: world.projectDir });
  return { code, out, err };
}

describe("release channels end to end", () => {
  it("staging promoted from dev holds byte-identical digests under the same tags", async () => {
    await dev.up();
    await qa.up();
    const preview = await staging.preview();
    expect([...preview.operations.values()].every((op) => op === "create")).toBe(true);
    expect(preview.operations.size).toBe(6);
    await staging.up();
    const devDigests = await digests(dev.group);
    const stagingDigests = await digests(staging.group);
    expect(Object.keys(stagingDigests).sort()).toEqual(Object.keys(devDigests).sort());
    expect(stagingDigests).toEqual(devDigests);
    const outputs = await staging.outputs();
    expect(outputs.app?.promotedFrom).toBe((await dev.outputs()).app?.digestRef);
    // Promoting again changes nothing.
    expect(changed((await staging.up()).operations)).toEqual([]);
  });

  it("a stack that promoted and now builds adopts the tags its promotion wrote, and deletes none of them", async () => {
    await dev.up();
    const switching = await world.stack("switch", { channel: "switch", promoteFrom: "dev" });
    await switching.up();
    const promoted = await digests(switching.group);
    expect(Object.keys(promoted)).toHaveLength(6);
    await switching.stack.removeConfig("strata:promoteFrom");
    await switching.up();
    // Each PromotedImage became its layer's adopting CopiedImage (an alias): had it been deleted as a
    // resource of its own, its delete by digest would have taken the tag the adoption had just found.
    expect(Object.values(await switching.outputs()).map((layer) => layer.origin)).toEqual(Array(6).fill("adopted"));
    expect(await digests(switching.group)).toEqual(promoted);
    expect(changed((await switching.up()).operations)).toEqual([]);
    // And back to promoting: the adoptions found their tags in place, so deleting them leaves the tags
    // (had the promotion's `created` been carried into the adoption, their deletes would take them).
    await switching.stack.setConfig("strata:promoteFrom", { value: "dev" });
    await switching.up();
    expect(await digests(switching.group)).toEqual(promoted);
  });

  it("a changed layer without a bump: the immutable channels refuse, and push nothing", async () => {
    const qaBefore = await digests(qa.group);
    const stagingBefore = await digests(staging.group);
    appendFileSync(path.join(world.catalogDir, "libs/libs.txt"), "changed without a bump\n");

    await expect(qa.up()).rejects.toThrow(/layer "libs": .*base-tools-libs:1\.0-p0 already exists in the registry with different content \(content changed\)/s);
    await expect(qa.preview()).rejects.toThrow(/layer "app-base": .*\(parent changed\)[\s\S]*strata bump --stack qa/);
    expect(await digests(qa.group)).toEqual(qaBefore);

    // dev is mutable: it rebuilds over its tags; promoting that into staging must be refused.
    expect(changed((await dev.up()).operations)).toEqual(["app", "app-base", "libs"]);
    await expect(staging.up()).rejects.toThrow(/base-tools-libs:1\.0-p0 already holds sha256:[0-9a-f]+; promoting sha256:[0-9a-f]+ would move an immutable tag/);
    expect(await digests(staging.group)).toEqual(stagingBefore);
  });

  it("strata bump bumps the changed layer and its descendants; up then pushes new tags and leaves old ones", async () => {
    const qaBefore = await digests(qa.group);
    const dryRun = await strata(["bump", "--stack", "qa", "--catalog", world.catalogDir, "--dry-run", "--json"]);
    expect(dryRun.code).toBe(0);
    const planned = JSON.parse(dryRun.out) as { layer: string; oldTag: string; newTag: string; reason: string }[];
    expect(planned).toEqual([
      { layer: "libs", oldTag: "1.0-p0", newTag: "1.0-p1", reason: "content changed" },
      { layer: "app-base", oldTag: "1.0-p0", newTag: "1.0-p1", reason: "parent changed" },
      { layer: "app", oldTag: "1.0-p2", newTag: "1.0-p3", reason: "parent changed" },
    ]);
    const bumped = await strata(["bump", "--stack", "qa", "--catalog", world.catalogDir]);
    expect(bumped.code).toBe(0);
    expect(bumped.out).toMatch(/bumped 3 layer.yaml file\(s\)/);

    const { operations } = await qa.up();
    expect(changed(operations)).toEqual(["app", "app-base", "libs"]);
    const qaAfter = await digests(qa.group);
    for (const [tag, digest] of Object.entries(qaBefore)) expect(qaAfter[tag]).toBe(digest);
    expect(Object.keys(qaAfter).filter((tag) => !(tag in qaBefore)).sort()).toEqual([
      "base-tools-libs-app-base:1.0-p1",
      "base-tools-libs-app:1.0-p3",
      "base-tools-libs:1.0-p1",
    ]);
    // And nothing is left to bump.
    expect((await strata(["bump", "--stack", "qa", "--catalog", world.catalogDir, "--dry-run"])).out).toMatch(/nothing to bump/);
  });

  it("destroy of a promoted channel removes the tags it created", async () => {
    await dev.up();
    await staging.destroy();
    expect(Object.values(await registryContents(staging.group)).flat()).toEqual([]);
  });
});

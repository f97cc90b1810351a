/**
 * The layer tree against the real engine, Docker engine and registry:
 * push, no-op, a change in a middle layer, a version bump, destroy.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changed, createWorld, type E2eStack, type E2eWorld, imageEventsSince, registry, registryContents, runStrata } from "./harness.js";

const ALL = ["app", "app-base", "base", "db", "libs", "tools"];
let world: E2eWorld;
let e2e: E2eStack;

beforeAll(async () => {
  world = createWorld("tree");
  e2e = await world.stack("tree");
});
afterAll(async () => {
  await world?.cleanup();
});

async function baseDigestLabel(repository: string, tag: string): Promise<string | undefined> {
  const config = await registry.imageConfig(`${e2e.group}/${repository}`, tag);
  return config?.config?.Labels?.["org.opencontainers.image.base.digest"];
}

/** Image events of the Docker engine (build, tag, push, …) since a Unix time, as `docker events` reports them. */
describe("layer tree end to end", () => {
  it("up pushes every layer under the policy's names and tags, each a docker.Image labelled with its fingerprint", async () => {
    const { operations } = await e2e.up();
    expect([...operations.keys()].sort()).toEqual(ALL);
    expect([...operations.values()].every((op) => op === "create")).toBe(true);
    expect(await registryContents(e2e.group)).toEqual({
      base: ["1.0-p0"],
      "base-tools": ["1.0-p0"],
      "base-tools-db": ["1.0-p0"],
      "base-tools-libs": ["1.0-p0"],
      "base-tools-libs-app": ["1.0-p2"],
      "base-tools-libs-app-base": ["1.0-p0"],
    });
    const outputs = await e2e.outputs();
    for (const layer of Object.values(outputs)) {
      // The stack's digest is the registry's digest for that tag.
      const manifest = await registry.manifest(`${e2e.group}/${layer.image}`, layer.tag);
      expect(layer.digestRef).toBe(`${layer.ref.replace(/:[^:]*$/, "")}@${manifest?.digest}`);
      const labels = (await registry.imageConfig(`${e2e.group}/${layer.image}`, layer.tag))?.config?.Labels ?? {};
      expect(labels["org.strata.fingerprint"]).toBe(layer.fingerprint);
      expect(labels["org.strata.inputs"]).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(labels["org.opencontainers.image.version"]).toBe(layer.tag);
      if (layer.parent === null) continue;
      const parent = outputs[layer.parent];
      expect(await baseDigestLabel(layer.image, layer.tag)).toBe(parent?.digestRef.split("@")[1]);
    }
    const resources = ((await e2e.stack.exportStack()).deployment?.resources ?? []) as { type: string }[];
    expect(resources.filter((resource) => resource.type === "docker:index/image:Image")).toHaveLength(ALL.length);
  });

  it("a second up is a no-op", async () => {
    const { operations, summary } = await e2e.up();
    expect(changed(operations)).toEqual([]);
    expect(summary.create ?? 0).toBe(0);
    expect(summary.update ?? 0).toBe(0);
    expect(summary.same).toBeGreaterThanOrEqual(ALL.length);
  });

  it("a fresh stack on the same channel adopts every published tag: nothing built or pushed, the same digests", async () => {
    // Another runner's state (or a lost one): the program finds each tag with the layer's fingerprint and adopts it.
    const twin = await world.stack("tree-twin");
    expect(twin.group).toBe(e2e.group);
    // strata plan says so before anything runs, and the up that follows does exactly that.
    const plan = await runStrata(world, ["plan", "--stack", "tree-twin", "--json", "--catalog", world.catalogDir]);
    expect(plan.code, plan.out).toBe(0);
    expect((JSON.parse(plan.out.slice(plan.out.indexOf("["))) as { status: string }[]).map((row) => row.status)).toEqual(ALL.map(() => "adopt"));
    const since = Date.now();
    const { operations } = await twin.up();
    expect([...operations.values()].every((op) => op === "create")).toBe(true);
    // The Docker engine saw no build, tag or push while the twin ran.
    expect(imageEventsSince(since)).toEqual([]);
    const ours = await e2e.outputs();
    const theirs = await twin.outputs();
    for (const layer of ALL) expect(theirs[layer]?.digestRef).toBe(ours[layer]?.digestRef);
    for (const layer of ALL) expect(theirs[layer]?.origin).toBe("adopted");
    const resources = ((await twin.stack.exportStack()).deployment?.resources ?? []) as { type: string }[];
    expect(resources.filter((resource) => resource.type === "strata:index:CopiedImage")).toHaveLength(ALL.length);
    expect(resources.filter((resource) => resource.type === "docker:index/image:Image")).toEqual([]);
    // The choice sticks: the twin's next run is a no-op, and so is the first stack's.
    expect(changed((await twin.up()).operations)).toEqual([]);
    expect(changed((await e2e.up()).operations)).toEqual([]);
  });

  it("switching a stack's builder rebuilds nothing: what the other builder pushed is adopted", async () => {
    const switching = await world.stack("tree-switch", { channel: "switch" });
    expect([...(await switching.up()).operations.values()].every((op) => op === "create")).toBe(true);
    const built = await switching.outputs();
    await switching.stack.setConfig("strata:builder", { value: "strata" });
    const since = Date.now();
    const { operations } = await switching.up();
    expect([...operations.values()].every((op) => op === "create")).toBe(true);
    expect(imageEventsSince(since)).toEqual([]);
    const adopted = await switching.outputs();
    for (const layer of ALL) {
      expect(adopted[layer]?.origin).toBe("adopted");
      expect(adopted[layer]?.digestRef).toBe(built[layer]?.digestRef);
    }
    expect(changed((await switching.up()).operations)).toEqual([]);
  });

  it("builder strata (Strata's LayerImage) really builds: a cold tree, labelled and FROM its parents, then exactly a changed subtree", async () => {
    const own = await world.stack("tree-layerimage", { channel: "layerimage", builder: "strata" });
    const cold = await own.up();
    expect([...cold.operations.values()].every((op) => op === "create")).toBe(true);
    const resources = ((await own.stack.exportStack()).deployment?.resources ?? []) as { type: string; urn: string }[];
    expect(resources.filter((resource) => resource.type === "strata:index:LayerImage").map((resource) => resource.urn.split("::").pop()).sort()).toEqual(ALL);
    const before = await own.outputs();
    for (const layer of Object.values(before)) {
      expect(layer.origin).toBe("built");
      const labels = (await registry.imageConfig(`${own.group}/${layer.image}`, layer.tag))?.config?.Labels ?? {};
      expect(labels["org.strata.fingerprint"]).toBe(layer.fingerprint);
      if (layer.parent !== null) expect(labels["org.opencontainers.image.base.digest"]).toBe(before[layer.parent]?.digestRef.split("@")[1]);
    }
    appendFileSync(path.join(world.catalogDir, "app-base/app-base.txt"), "layerimage\n");
    try {
      const rebuilt = await own.up();
      expect(changed(rebuilt.operations)).toEqual(["app", "app-base"]);
      const after = await own.outputs();
      for (const layer of ["base", "tools", "db", "libs"]) expect(after[layer]?.digestRef).toBe(before[layer]?.digestRef);
      for (const layer of ["app-base", "app"]) expect(after[layer]?.digestRef).not.toBe(before[layer]?.digestRef);
    } finally {
      // The other tests' stacks see the catalog as it was.
      writeFileSync(path.join(world.catalogDir, "app-base/app-base.txt"), readFileSync(path.join(world.catalogDir, "app-base/app-base.txt"), "utf8").replace("layerimage\n", ""));
    }
  });

  it("a changed file in a middle layer rebuilds exactly that layer and its descendants", async () => {
    const before = await e2e.outputs();
    appendFileSync(path.join(world.catalogDir, "libs/libs.txt"), "one more line\n");
    const preview = await e2e.preview();
    expect(changed(preview.operations)).toEqual(["app", "app-base", "libs"]);
    expect(preview.operations.get("base")).toBe("same");
    expect(preview.operations.get("tools")).toBe("same");
    expect(preview.operations.get("db")).toBe("same");

    const { operations } = await e2e.up();
    expect(changed(operations)).toEqual(["app", "app-base", "libs"]);
    const after = await e2e.outputs();
    for (const layer of ["base", "tools", "db"]) expect(after[layer]?.digestRef).toBe(before[layer]?.digestRef);
    for (const layer of ["libs", "app-base", "app"]) expect(after[layer]?.digestRef).not.toBe(before[layer]?.digestRef);
    expect(await baseDigestLabel("base-tools-libs-app-base", "1.0-p0")).toBe(after.libs?.digestRef.split("@")[1]);
    expect(await baseDigestLabel("base-tools-libs-app", "1.0-p2")).toBe(after["app-base"]?.digestRef.split("@")[1]);
  });

  it("bumping a leaf's version adds a new tag and changes nothing else", async () => {
    const before = await e2e.outputs();
    writeFileSync(path.join(world.catalogDir, "db/layer.yaml"), "kind: service\nparent: tools\nversion: 1.0.1\n");
    const { operations } = await e2e.up();
    expect(changed(operations)).toEqual(["db"]);
    const contents = await registryContents(e2e.group);
    expect(contents["base-tools-db"]).toEqual(["1.0-p0", "1.0-p1"]);
    const after = await e2e.outputs();
    expect(after.db?.tag).toBe("1.0-p1");
    for (const layer of ALL.filter((name) => name !== "db")) expect(after[layer]?.digestRef).toBe(before[layer]?.digestRef);
  });

  it("destroy leaves the stack empty", async () => {
    await e2e.destroy();
    const resources = (await e2e.stack.exportStack()).deployment?.resources ?? [];
    expect(resources).toEqual([]);
  });
});

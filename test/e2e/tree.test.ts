/**
 * The layer tree against the real engine, Docker engine and registry:
 * push, no-op, a change in a middle layer, a version bump, destroy.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changed, createWorld, type E2eStack, type E2eWorld, registry, registryContents } from "./harness.js";

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

describe("layer tree end to end", () => {
  it("up pushes every layer under the policy's names and tags", async () => {
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
      if (layer.parent === null) continue;
      const parent = outputs[layer.parent];
      expect(await baseDigestLabel(layer.image, layer.tag)).toBe(parent?.digestRef.split("@")[1]);
    }
  });

  it("a second up is a no-op", async () => {
    const { operations, summary } = await e2e.up();
    expect(changed(operations)).toEqual([]);
    expect(summary.create ?? 0).toBe(0);
    expect(summary.update ?? 0).toBe(0);
    expect(summary.same).toBeGreaterThanOrEqual(ALL.length);
  });

  it("a fresh stack on the same channel adopts every published tag: nothing built, the same digests", async () => {
    // Another runner's state (or a lost one): the provider finds each tag with its own fingerprint and adopts it.
    const trace = path.join(world.root, "twin-trace.jsonl");
    const twin = await world.stack("tree-twin", {}, { env: { STRATA_TRACE: trace } });
    expect(twin.group).toBe(e2e.group);
    const { operations } = await twin.up();
    expect([...operations.values()].every((op) => op === "create")).toBe(true);
    const phases = existsSync(trace) ? readFileSync(trace, "utf8").trim().split("\n").map((line) => (JSON.parse(line) as { phase: string }).phase) : [];
    // One registry lookup per layer, no build and no push.
    expect(phases).toEqual(ALL.map(() => "lookup"));
    const ours = await e2e.outputs();
    const theirs = await twin.outputs();
    for (const layer of ALL) expect(theirs[layer]?.digestRef).toBe(ours[layer]?.digestRef);
    const resources = ((await twin.stack.exportStack()).deployment?.resources ?? []) as { type: string; outputs?: { adopted?: unknown } }[];
    expect(resources.filter((resource) => resource.type === "strata:index:LayerImage").map((resource) => resource.outputs?.adopted)).toEqual(ALL.map(() => true));
    // And the twin's inputs do not depend on the registry: its next run is a no-op too.
    expect(changed((await twin.up()).operations)).toEqual([]);
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

/**
 * Whether docker.Image pulls a layer's parent first (core/parent-pull.ts) is how a layer is built,
 * not what it holds: a stack built with the pull (every engine before the choice existed, or
 * STRATA_PULL_PARENT_FIRST=always) and run again on an engine whose BuildKit pulls the parent
 * itself rebuilds nothing (the layers kept declare the pull as their state has it); a layer whose
 * content changes is rebuilt without the pull. Read from the state (`pulumi stack export`).
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, type E2eWorld, registry, upWithSummary } from "./harness.js";

let world: E2eWorld;

beforeAll(() => {
  world = createWorld("parent-pull");
});
afterAll(async () => {
  await world?.cleanup();
});

/** Layer (the last part of its resource name) → the cacheFrom images its docker.Image holds in the state. */
function cacheFromInState(stack: string): Record<string, string[] | undefined> {
  const exported = execFileSync("pulumi", ["stack", "export", "--stack", stack], { cwd: world.projectDir, env: { ...process.env, ...world.env }, encoding: "utf8" });
  const resources = (JSON.parse(exported) as { deployment: { resources: { type: string; urn: string; inputs?: { build?: { cacheFrom?: { images?: string[] } } } }[] } }).deployment.resources;
  return Object.fromEntries(resources.filter((resource) => resource.type === "docker:index/image:Image")
    .map((resource) => [resource.urn.slice(resource.urn.lastIndexOf("::") + 2), resource.inputs?.build?.cacheFrom?.images] as const));
}

describe("the parent pull before a docker.Image build", () => {
  it("built with the pull, then on an engine that pulls the parent itself: nothing rebuilt; a changed layer is rebuilt without it", async () => {
    const stack = await world.stack("pull", { channel: "pullfirst" });
    const first = await upWithSummary(world, "pull", "with-pull", { STRATA_PULL_PARENT_FIRST: "always" });
    expect(first.code, first.out).toBe(0);
    expect(Object.values(first.results).filter((result) => result === "built"), first.out).toHaveLength(6);
    const outputs = await stack.outputs();
    const withPull = cacheFromInState("pull");
    expect(withPull.base).toBeUndefined();
    expect(withPull.app).toEqual([outputs["app-base"]?.digestRef]);
    expect(withPull.tools).toEqual([outputs.base?.digestRef]);

    // The project's engine pulls a missing parent itself (auto): the layers kept declare the pull as
    // their state has it, so nothing is rebuilt.
    // Named, not left unset: a runner's own STRATA_PULL_PARENT_FIRST would reach the run otherwise.
    const again = await upWithSummary(world, "pull", "auto", { STRATA_PULL_PARENT_FIRST: "auto" });
    expect(again.code, again.out).toBe(0);
    expect(Object.values(again.results).filter((result) => result === "built"), again.out).toEqual([]);
    expect(cacheFromInState("pull")).toEqual(withPull);

    writeFileSync(path.join(world.catalogDir, "app", "app.txt"), "app content: rebuilt without the parent pull\n");
    const changed = await upWithSummary(world, "pull", "changed-app", { STRATA_PULL_PARENT_FIRST: "auto" });
    expect(changed.code, changed.out).toBe(0);
    expect(Object.entries(changed.results).filter(([, result]) => result === "built").map(([layer]) => layer), changed.out).toEqual(["app"]);
    const after = cacheFromInState("pull");
    expect(after.app).toBeUndefined();
    expect({ ...after, app: withPull.app }).toEqual(withPull);
  });

  it("refuses a value it does not know, naming the variable and the fix, and pushes nothing", async () => {
    const stack = await world.stack("bad", { channel: "pullbad", layers: "app" });
    const run = await upWithSummary(world, "bad", "bad-value", { STRATA_PULL_PARENT_FIRST: "yes" });
    expect(run.code, run.out).not.toBe(0);
    expect(run.out).toMatch(/environment: STRATA_PULL_PARENT_FIRST: is "yes"/);
    expect(run.out).toMatch(/fix: set STRATA_PULL_PARENT_FIRST to always .* or auto/);
    expect(await registry.manifest(`${stack.group}/base`, "1.0-p0")).toBeUndefined();
  });
});

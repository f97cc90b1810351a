/**
 * The state's witness covers every tag a stack ever published, so a registry that wrongly answers
 * 404 (through the fault proxy) cannot move an immutable tag: one the stack adopted (a CopiedImage,
 * not a build), one built by the other builder before a switch of strata:builder, and a
 * multi-platform layer's index tag after its platforms were reordered. Each run is refused before
 * anything is pushed, and the tag keeps its digest (read from the registry directly, never through
 * the proxy). The proxy really answered 404 for the tag each time.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeImages } from "../../bench/docker-images.js";
import { type FaultProxy, startFaultProxy } from "../helpers/fault-proxy.js";
import { createWorld, type E2eWorld, makeMultiPlatform, registry as directRegistry, registryAddress, upWithSummary } from "./harness.js";

const APP = "base-tools-libs-app";
const APP_TAG = "1.0-p2";

let proxy: FaultProxy;
const worlds: E2eWorld[] = [];

beforeAll(async () => {
  const [host, port] = registryAddress.split(":") as [string, string];
  proxy = await startFaultProxy({ host, port: Number(port) });
});
afterAll(async () => {
  for (const world of worlds) await world.cleanup();
  await proxy?.close();
  removeImages(`${proxy?.address}/`);
});

/**
 * 404 for every read of `repository:tag`'s manifest (HEAD and GET), as a registry that wrongly says
 * it lost the tag would answer; writes go through, so a run that believed it would move the tag.
 */
function hideTag(group: string, repository: string, tag: string): void {
  proxy.setRule((request) => ((request.method === "GET" || request.method === "HEAD") && request.url === `/v2/${group}/${repository}/manifests/${tag}` ? { kind: "status", status: 404 } : undefined));
}

const digestOf = async (group: string, repository: string, tag: string): Promise<string | undefined> => (await directRegistry.manifest(`${group}/${repository}`, tag))?.digest;

function changeApp(world: E2eWorld, note: string): void {
  writeFileSync(path.join(world.catalogDir, "app", "app.txt"), `app content: ${note}\n`);
}

/** The refused run: non-zero, the witness's words, nothing built, the proxy's 404 really served for the tag. */
function expectRefusedByWitness(run: { code: number; out: string; results: Record<string, string> }, injectedBefore: number, tag: string, words: RegExp): void {
  expect(run.code, run.out).not.toBe(0);
  expect(run.out).toMatch(words);
  expect(run.out).toMatch(/an immutable channel never moves a tag/);
  expect(Object.values(run.results).filter((result) => result === "built"), run.out).toEqual([]);
  // The 404 was really served for the tag's manifest, to Strata's own look-up.
  expect(proxy.injected.slice(injectedBefore).some((injection) => injection.kind === "manifest" && `${injection.repository ?? ""}:${injection.reference ?? ""}` === tag && injection.fault === "status" && injection.sender === "strata"), JSON.stringify(proxy.injected)).toBe(true);
}

describe("an immutable channel whose registry wrongly answers 404", () => {
  it("refuses to move a tag the stack adopted (recorded as a copy, never built here)", async () => {
    const world = createWorld("witness-adopted");
    worlds.push(world);
    // A mutable stack of the same channel publishes the tags; the immutable one then adopts them all.
    await world.stack("seed", { channel: "wadopt", registry: proxy.address });
    const seeded = await upWithSummary(world, "seed", "seed");
    expect(seeded.code, seeded.out).toBe(0);
    const stable = await world.stack("stable", { channel: "wadopt", registry: proxy.address, immutable: "true" });
    const adopted = await upWithSummary(world, "stable", "adopt");
    expect(adopted.code, adopted.out).toBe(0);
    expect(adopted.results.app, adopted.out).toBe("adopted");
    const before = await digestOf(stable.group, APP, APP_TAG);
    expect(before).toBeDefined();

    changeApp(world, "changed without a bump");
    hideTag(stable.group, APP, APP_TAG);
    const injectedBefore = proxy.injected.length;
    const run = await upWithSummary(world, "stable", "adopted-404");
    proxy.setRule(undefined);
    expectRefusedByWitness(run, injectedBefore, `${stable.group}/${APP}:${APP_TAG}`, /this stack's state|this stack published/);
    expect(await digestOf(stable.group, APP, APP_TAG)).toBe(before);
  });

  it("refuses to move a tag the other builder built, after a switch of strata:builder", async () => {
    const world = createWorld("witness-builder");
    worlds.push(world);
    const stable = await world.stack("stable", { channel: "wbuilder", registry: proxy.address, immutable: "true", builder: "docker" });
    const first = await upWithSummary(world, "stable", "docker-built");
    expect(first.code, first.out).toBe(0);
    const before = await digestOf(stable.group, APP, APP_TAG);
    await stable.stack.setConfig("strata:builder", { value: "strata" });
    changeApp(world, "changed without a bump, other builder");
    hideTag(stable.group, APP, APP_TAG);
    const injectedBefore = proxy.injected.length;
    const run = await upWithSummary(world, "stable", "switched-404");
    proxy.setRule(undefined);
    expectRefusedByWitness(run, injectedBefore, `${stable.group}/${APP}:${APP_TAG}`, /this stack's state|this stack published/);
    expect(await digestOf(stable.group, APP, APP_TAG)).toBe(before);
  });

  it("refuses to move an index tag after the platforms were reordered", async () => {
    const world = createWorld("witness-index");
    worlds.push(world);
    makeMultiPlatform(world);
    // The base layer alone: two small per-platform builds and one index.
    const stable = await world.stack("stable", { channel: "windex", registry: proxy.address, immutable: "true", layers: "base", platforms: JSON.stringify(["linux/amd64", "linux/arm64"]) });
    const first = await upWithSummary(world, "stable", "two-platforms");
    expect(first.code, first.out).toBe(0);
    const before = await digestOf(stable.group, "base", "1.0-p0");
    expect(before).toBeDefined();
    await stable.stack.setConfig("strata:platforms", { value: JSON.stringify(["linux/arm64", "linux/amd64"]) });
    hideTag(stable.group, "base", "1.0-p0");
    const injectedBefore = proxy.injected.length;
    const run = await upWithSummary(world, "stable", "reordered-404");
    proxy.setRule(undefined);
    expectRefusedByWitness(run, injectedBefore, `${stable.group}/base:1.0-p0`, /was published by this stack as an index over other platforms/);
    expect(await digestOf(stable.group, "base", "1.0-p0")).toBe(before);
  });
});

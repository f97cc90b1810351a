/**
 * A pool of three Docker engines on this machine (scripts/engines.sh: each its
 * own data root, exec root, pidfile, socket and bridge), started and stopped
 * here. A cold tree spread over them lands whole in the registry, each engine
 * builds its share, a changed layer is rebuilt on its own engine, and a runner
 * joining with empty engines runs a no-op that builds nothing.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeScratch } from "../helpers/mounts.js";
import { brokenTags, createWorld, type E2eStack, type E2eWorld, imageEventsSince, makeMultiPlatform, registryContents, repoRoot, secondRunner, upWithSummary } from "./harness.js";

let state: string;
let serviceEnv: NodeJS.ProcessEnv;
let hosts: string[];
let world: E2eWorld;
let pool: E2eStack;

async function up(runner: E2eWorld, name: string, stack = "pool"): Promise<Record<string, string>> {
  const run = await upWithSummary(runner, stack, name);
  expect(run.code, run.out).toBe(0);
  return run.results;
}

const docker = (host: string, args: string[]): string => execFileSync("docker", args, { encoding: "utf8", env: { ...process.env, DOCKER_HOST: host } });
const repositoriesOn = (host: string): string[] => [...new Set(docker(host, ["image", "ls", "--format", "{{.Repository}}"]).split("\n").filter((name) => name.includes(pool.group)).map((name) => name.slice(name.lastIndexOf("/") + 1)))].sort();

beforeAll(async () => {
  state = mkdtempSync(path.join(tmpdir(), "strata-e2e-engines-"));
  chmodSync(state, 0o755);
  serviceEnv = { ...process.env, STRATA_STATE: state };
  execFileSync(path.join(repoRoot, "scripts/engines.sh"), ["start", "3"], { stdio: "inherit", env: serviceEnv });
  hosts = execFileSync(path.join(repoRoot, "scripts/engines.sh"), ["hosts"], { encoding: "utf8", env: serviceEnv }).trim().split(",");
  expect(hosts).toHaveLength(3);
  world = createWorld("engines");
  pool = await world.stack("pool", { engines: JSON.stringify(hosts) });
});
afterAll(async () => {
  try {
    await world?.cleanup();
  } finally {
    execFileSync(path.join(repoRoot, "scripts/engines.sh"), ["stop"], { stdio: "inherit", env: serviceEnv });
    // Stopped engines leave nothing mounted under their state; if one did, nothing is removed through it.
    removeScratch(state);
  }
});

describe("a pool of three engines", () => {
  let engineOf: Record<string, string>;

  it("a cold tree across 3 engines: every image in the registry, each engine built its share and holds it", async () => {
    expect(Object.values(await up(world, "cold"))).toEqual(Array(6).fill("built"));
    expect(Object.values(await registryContents(pool.group)).map((tags) => tags.length)).toEqual(Array(6).fill(1));
    expect(await brokenTags(pool.group)).toEqual([]);
    const outputs = await pool.outputs();
    engineOf = Object.fromEntries(Object.values(outputs).map((layer) => [layer.layer, (layer as unknown as { engine: string }).engine]));
    expect(new Set(Object.values(engineOf))).toEqual(new Set(hosts));
    // The placement: the shared chain on the first engine, each subtree whole on one engine.
    expect(engineOf.base).toBe(hosts[0]);
    expect(engineOf.tools).toBe(hosts[0]);
    expect(engineOf["app-base"]).toBe(engineOf.libs);
    expect(engineOf.app).toBe(engineOf.libs);
    for (const host of hosts) {
      const built = Object.entries(engineOf).filter(([, engine]) => engine === host).map(([layer]) => outputs[layer]?.image as string).sort();
      // Each engine holds what it built, plus the parents it pulled from the registry to build on.
      for (const image of built) expect(repositoriesOn(host)).toContain(image);
    }
  });

  it("a changed layer is rebuilt on its own engine, and only there", async () => {
    appendFileSync(path.join(world.catalogDir, "app/app.txt"), "changed\n");
    const home = engineOf.app as string;
    const since = Date.now();
    const results = await up(world, "change");
    expect(results).toMatchObject({ app: "built", base: "unchanged", tools: "unchanged", db: "unchanged", libs: "unchanged", "app-base": "unchanged" });
    for (const host of hosts) expect(imageEventsSince(since, { dockerHost: host, action: "push" }).length > 0, host).toBe(host === home);
    expect((await pool.outputs()).app).toMatchObject({ engine: home });
  });

  it("a runner joining with empty engines runs a no-op: nothing built, nothing pushed", async () => {
    for (const host of hosts) {
      const images = docker(host, ["image", "ls", "--all", "--quiet"]).split("\n").filter((id) => id !== "");
      if (images.length > 0) docker(host, ["image", "rm", "--force", ...new Set(images)]);
      docker(host, ["builder", "prune", "--all", "--force"]);
    }
    const joiner = secondRunner(world, "joiner");
    expect(Object.values(await up(joiner, "joiner"))).toEqual(Array(6).fill("unchanged"));
    for (const host of hosts) expect(repositoriesOn(host)).toEqual([]);
  });
});

describe("an engine naming its platform", () => {
  it("takes that platform's builds, and the other engines the rest", async () => {
    makeMultiPlatform(world);
    const engines = [hosts[0], hosts[1], { host: hosts[2], platform: "linux/arm64" }];
    const both = await world.stack("arm", { channel: "arm", platforms: JSON.stringify(["linux/amd64", "linux/arm64"]), engines: JSON.stringify(engines) });
    const results = await up(world, "arm", "arm");
    expect(Object.keys(results)).toHaveLength(18);
    expect(Object.entries(results).filter(([, result]) => result !== "built")).toEqual([]);
    const outputs = (await both.outputs()) as unknown as Record<string, { engine: string | null }>;
    for (const layer of ["base", "tools", "db", "libs", "app-base", "app"]) {
      expect(outputs[`${layer}@linux-arm64`]?.engine, layer).toBe(hosts[2]);
      expect([hosts[0], hosts[1]], layer).toContain(outputs[`${layer}@linux-amd64`]?.engine);
    }
  });
});

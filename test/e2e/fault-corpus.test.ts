/**
 * The fault corpus: a fault-injecting proxy (test/helpers/fault-proxy.ts) between Strata and the
 * suite's registry, and each fault on a mutable and an immutable channel. Each stack logs in
 * (strata:registryUsername and a secret password) so that a 401 is "after login". For every fault:
 * the run fails, its message names the cause, the proxy really injected it, nothing moved (every
 * release tag of the group has the digest it had before), the stack stays readable, and the next
 * healthy up converges (then a second one changes nothing).
 *
 * The change under each fault: the leaf `app`'s content. On the mutable channel without a version
 * bump (the rebuild moves its tag once the registry is healthy); on the immutable one with a bump
 * (a new tag). Look-up faults hit `libs`, which exists unchanged (a 200 answer to spoil); push
 * faults hit `app`, the layer being pushed.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeImages } from "../../bench/docker-images.js";
import { type Fault, type FaultProxy, type FaultRule, startFaultProxy } from "../helpers/fault-proxy.js";
import { changed, createWorld, type E2eStack, type E2eWorld, registry as directRegistry, registryAddress, registryContents, upWithSummary } from "./harness.js";

const USER = "strata-corpus";
const PASSWORD = `pw-${randomBytes(8).toString("hex")}`;

interface Channel {
  readonly name: "mutable" | "immutable";
  world: E2eWorld;
  stack: E2eStack;
  /** Patch of `app`'s version; the immutable channel bumps it before each fault. */
  patch: number;
}

let proxy: FaultProxy;
const channels: Channel[] = [];
/** Faults tried, and tags moved under them, for the summary line at the end. */
const tally = { tried: 0, moved: 0, kinds: new Set<string>() };

beforeAll(async () => {
  const [host, port] = registryAddress.split(":") as [string, string];
  proxy = await startFaultProxy({ host, port: Number(port) });
  for (const name of ["mutable", "immutable"] as const) {
    const world = createWorld(`corpus-${name}`);
    const stack = await world.stack(name, { channel: name, registry: proxy.address, registryUsername: USER, ...(name === "immutable" ? { immutable: "true" } : {}) }, { secrets: { registryPassword: PASSWORD } });
    const first = await upWithSummary(world, name, `${name}-first`);
    expect(first.code, first.out).toBe(0);
    channels.push({ name, world, stack, patch: 2 });
  }
});

afterAll(async () => {
  for (const channel of channels) await channel.world.cleanup();
  await proxy?.close();
  removeImages(`${proxy?.address}/`);
  // One line for the README's figure: every fault, both channels.
  console.log(`fault corpus: ${tally.tried} faulted runs, ${tally.kinds.size} kinds, tags moved: ${tally.moved}`);
});

/** Every tag of the group with its digest, read from the registry directly (never through the proxy). */
async function tagDigests(group: string): Promise<Record<string, string>> {
  const digests: Record<string, string> = {};
  for (const [repository, tags] of Object.entries(await registryContents(group))) {
    for (const tag of tags) digests[`${repository}:${tag}`] = (await directRegistry.manifest(`${group}/${repository}`, tag))?.digest ?? "missing";
  }
  return digests;
}

/** Changes `app` for the next fault: new content; on the immutable channel a new patch version too. */
function changeApp(channel: Channel, note: string): void {
  const dir = path.join(channel.world.catalogDir, "app");
  writeFileSync(path.join(dir, "app.txt"), `app content for ${note}\n`);
  if (channel.name === "immutable") {
    channel.patch += 1;
    const file = path.join(dir, "layer.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace(/version: .*/, `version: 1.0.${channel.patch}`));
  }
}

const repositoryOf = (stack: E2eStack, image: string): string => `/v2/${stack.group}/${image}/`;
const LIBS = "base-tools-libs";
const APP = "base-tools-libs-app";

interface CorpusFault {
  readonly name: string;
  readonly rule: (stack: E2eStack) => FaultRule;
  /** What the failed run's output must say. */
  readonly says: RegExp;
  /** Extra environment for every run of the case (a CI run's change). */
  readonly env?: Record<string, string>;
  /** Extra environment for the faulted run only (a short client timeout: the healthy runs keep the default). */
  readonly faultEnv?: Record<string, string>;
}

const on = (method: string, prefix: string, part: string, fault: Fault): FaultRule => (request) => (request.method === method && request.url.startsWith(prefix) && request.url.includes(part) ? fault : undefined);

const FAULTS: readonly CorpusFault[] = [
  { name: "500 on one manifest look-up", rule: (stack) => on("GET", repositoryOf(stack, LIBS), "/manifests/", { kind: "status", status: 500 }), says: /could not answer for layer "libs".*HTTP 500 \(a server error\) UNKNOWN after 3 attempts.*Nothing was built or pushed.*fix: check that the registry/s },
  { name: "500 on the tag list (a CI run)", rule: (stack) => on("GET", repositoryOf(stack, APP), "/tags/list", { kind: "status", status: 500 }), says: /could not answer for layer "app".*tag list.*HTTP 500 \(a server error\) UNKNOWN after 3 attempts.*Nothing was built or pushed/s, env: { GERRIT_CHANGE_NUMBER: "7001", GERRIT_PATCHSET_NUMBER: "1" } },
  { name: "a connection reset mid-body", rule: (stack) => on("GET", repositoryOf(stack, LIBS), "/manifests/", { kind: "reset mid-body" }), says: /could not answer for layer "libs".*connection reset.*Nothing was built or pushed/s },
  { name: "a 30 s stall (the client's timeout fires)", rule: (stack) => on("GET", repositoryOf(stack, LIBS), "/manifests/", { kind: "stall", ms: 30_000 }), says: /could not answer for layer "libs".*no answer within 2 s.*Nothing was built or pushed/s, faultEnv: { STRATA_REGISTRY_TIMEOUT: "2" } },
  { name: "500 on one manifest PUT", rule: (stack) => on("PUT", repositoryOf(stack, APP), "/manifests/", { kind: "status", status: 500 }), says: /app\s+failed[\s\S]*(500|Internal Server Error)/ },
  { name: "401 after the password changed", rule: () => () => ({ kind: "status", status: 401, headers: { "www-authenticate": 'Basic realm="corpus"' } }), says: /refused the credentials \(HTTP 401; the login from the stack config .* was refused\).*Nothing was built or pushed.*fix: log in/s },
  { name: "the registry gone mid-run (at the first blob upload)", rule: (stack) => on("POST", repositoryOf(stack, APP), "/blobs/uploads/", { kind: "gone" }), says: /app\s+failed[\s\S]*(connection refused|EOF|connection reset|broken pipe)/ },
  { name: "a manifest whose bytes do not match its digest", rule: (stack) => on("GET", repositoryOf(stack, LIBS), "/manifests/", { kind: "corrupt body" }), says: /could not answer for layer "libs".*bytes do not match its digest.*Nothing was built or pushed.*fix: something between Strata and/s },
];

describe("registry fault corpus (through a fault-injecting proxy)", () => {
  FAULTS.forEach((fault, index) => {
    for (const name of ["mutable", "immutable"] as const) {
      it(`${fault.name}, ${name} channel: fails naming the cause, nothing moved, the next healthy up converges`, async () => {
        const channel = channels.find((candidate) => candidate.name === name) as Channel;
        const { world, stack } = channel;
        const label = `${name}-${index}`;
        changeApp(channel, label);
        const before = await tagDigests(stack.group);
        const injectedBefore = proxy.injected.length;
        proxy.setRule(fault.rule(stack));
        let failed;
        try {
          failed = await upWithSummary(world, name, `${label}-fault`, { ...fault.env, ...fault.faultEnv });
        } finally {
          proxy.setRule(undefined);
          await proxy.revive();
        }
        tally.tried += 1;
        tally.kinds.add(fault.name);
        expect(proxy.injected.length, "the proxy injected the fault").toBeGreaterThan(injectedBefore);
        expect(failed.code, failed.out).not.toBe(0);
        expect(failed.out).toMatch(fault.says);
        expect(failed.out).not.toContain(PASSWORD);
        expect(failed.out).not.toMatch(/unhandled exception|    at .*\.js:\d+/);
        const after = await tagDigests(stack.group);
        const moved = Object.keys(before).filter((tag) => after[tag] !== before[tag]);
        tally.moved += moved.length;
        expect(moved, "release tags moved under the fault").toEqual([]);
        await stack.stack.exportStack();

        const healthy = await upWithSummary(world, name, `${label}-healthy`, fault.env);
        expect(healthy.code, healthy.out).toBe(0);
        expect(healthy.results.app, healthy.out).toBe("built");
        const again = await upWithSummary(world, name, `${label}-again`, fault.env);
        expect(again.code, again.out).toBe(0);
        expect(new Set(Object.values(again.results)), again.out).toEqual(new Set(["unchanged"]));
      });
    }
  });

  it("the issue's case: immutable, content changed without a bump, 500 on that layer's look-up: refused; with the tag hidden (404), the stack's state refuses it", async () => {
    const channel = channels.find((candidate) => candidate.name === "immutable") as Channel;
    const { world, stack } = channel;
    const appFile = path.join(world.catalogDir, "app/app.txt");
    const original = readFileSync(appFile, "utf8");
    writeFileSync(appFile, `${original}changed without a bump\n`);
    const before = await tagDigests(stack.group);
    try {
      proxy.setRule(on("GET", repositoryOf(stack, APP), "/manifests/", { kind: "status", status: 500 }));
      const failed = await upWithSummary(world, "immutable", "issue-500");
      expect(failed.code).not.toBe(0);
      expect(failed.out).toMatch(/could not answer for layer "app".*HTTP 500.*Nothing was built or pushed/s);
      // The registry says "not found" for the changed layer's tag (it lost it, or a proxy lies):
      // the stack's own state still knows what it pushed there.
      proxy.setRule(on("GET", repositoryOf(stack, APP), "/manifests/", { kind: "status", status: 404 }));
      const hidden = await upWithSummary(world, "immutable", "issue-404");
      expect(hidden.code).not.toBe(0);
      expect(hidden.out).toMatch(/layer "app": .* already exists in this stack's state \(pushed by an earlier run\) with different content \(content changed\); an immutable channel never moves a tag.*fix: bump the version/s);
    } finally {
      proxy.setRule(undefined);
      writeFileSync(appFile, original);
    }
    expect(await tagDigests(stack.group)).toEqual(before);
    const healthy = await upWithSummary(world, "immutable", "issue-healthy");
    expect(healthy.code, healthy.out).toBe(0);
    expect(changed((await stack.up()).operations)).toEqual([]);
  });
});

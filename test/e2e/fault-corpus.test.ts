/**
 * The fault corpus: a fault-injecting proxy (test/helpers/fault-proxy.ts) between Strata and the
 * suite's registry, and each fault on a mutable and an immutable channel. Each stack logs in
 * (strata:registryUsername and a secret password) so that a 401 is "after login". For every fault:
 * the run fails, its message names the cause, the proxy injected it at the point the fault names
 * (the route, repository and tag, who sent it, how many times), nothing moved (every tag of the
 * group has the digest it had before, and none was added), the stack stays readable, and the next
 * healthy up converges (then a second one changes nothing).
 *
 * The change under each fault is the leaf `app`'s content, made so that a Strata that read an
 * unknown answer as "absent" would move a tag, which the digests would show:
 * - a look-up fault hits `app`'s own release tag, which holds the old content (a 200 answer to
 *   spoil), and `app` changes without a version bump on both channels: a run that got past the
 *   look-ups would push the new content under that tag (on the immutable channel the stack's state
 *   would still refuse it: the second witness). The immutable channel bumps after the fault, for
 *   the healthy up.
 * - a push fault must let the run reach the push: the immutable channel bumps before it (a change
 *   without a bump would be refused at the look-up, before any push).
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeImages } from "../../bench/docker-images.js";
import { formatTag, type LayerVersion, parseLayerVersion } from "../../src/core/version.js";
import { type Fault, type FaultProxy, type ProxiedRequest, startFaultProxy } from "../helpers/fault-proxy.js";
import { createWorld, type E2eStack, type E2eWorld, registry as directRegistry, registryAddress, registryContents, upWithSummary } from "./harness.js";

const USER = "strata-corpus";
const PASSWORD = `pw-${randomBytes(8).toString("hex")}`;
const APP = "base-tools-libs-app";
/** The CI run of the tag-list fault: Gerrit change 7001, patchset 1. */
const CI_ENV = { GERRIT_CHANGE_NUMBER: "7001", GERRIT_PATCHSET_NUMBER: "1" };

type ChannelName = "mutable" | "immutable";

interface Channel {
  readonly name: ChannelName;
  world: E2eWorld;
  stack: E2eStack;
}

let proxy: FaultProxy;
const channels: Channel[] = [];
/** Faults tried, and tags moved or added under them, for the summary line at the end. */
const tally = { tried: 0, moved: 0, added: 0, kinds: new Set<string>() };

beforeAll(async () => {
  const [host, port] = registryAddress.split(":") as [string, string];
  proxy = await startFaultProxy({ host, port: Number(port) });
  for (const name of ["mutable", "immutable"] as const) {
    const world = createWorld(`corpus-${name}`);
    const stack = await world.stack(name, { channel: name, registry: proxy.address, registryUsername: USER, ...(name === "immutable" ? { immutable: "true" } : {}) }, { secrets: { registryPassword: PASSWORD } });
    const first = await upWithSummary(world, name, `${name}-first`);
    expect(first.code, first.out).toBe(0);
    channels.push({ name, world, stack });
  }
});

afterAll(async () => {
  for (const channel of channels) await channel.world.cleanup();
  await proxy?.close();
  removeImages(`${proxy?.address}/`);
  // One line for the README's figure: every fault, both channels.
  console.log(`fault corpus: ${tally.tried} faulted runs, ${tally.kinds.size} kinds, tags moved: ${tally.moved}, tags added: ${tally.added}`);
});

/** Every tag of the group with its digest, read from the registry directly (never through the proxy). */
async function tagDigests(group: string): Promise<Record<string, string>> {
  const digests: Record<string, string> = {};
  for (const [repository, tags] of Object.entries(await registryContents(group))) {
    for (const tag of tags) digests[`${repository}:${tag}`] = (await directRegistry.manifest(`${group}/${repository}`, tag))?.digest ?? "missing";
  }
  return digests;
}

const appFile = (channel: Channel, file: string): string => path.join(channel.world.catalogDir, "app", file);

/** `app`'s version, as its layer.yaml says. */
function appVersion(channel: Channel): LayerVersion {
  const text = /^version: (.*)$/m.exec(readFileSync(appFile(channel, "layer.yaml"), "utf8"))?.[1] ?? "";
  const version = parseLayerVersion(text);
  if ("error" in version) throw new Error(`app/layer.yaml: ${version.error}`);
  return version;
}

/** New content for `app` (the version stays). */
function changeApp(channel: Channel, note: string): void {
  writeFileSync(appFile(channel, "app.txt"), `app content for ${note}\n`);
}

/** `app`'s next patch version. */
function bumpApp(channel: Channel): void {
  const { major, minor, patch } = appVersion(channel);
  const file = appFile(channel, "layer.yaml");
  writeFileSync(file, readFileSync(file, "utf8").replace(/^version: .*$/m, `version: ${major}.${minor}.${patch + 1}`));
}

/** What a fault's point is named by: `app`'s repository (in the stack's group) and its release tag at the faulted run. */
interface Place {
  readonly repository: string;
  readonly releaseTag: string;
}

interface CorpusFault {
  readonly name: string;
  /** A look-up Strata makes before anything is built (the run must stop there), or a push of `app`. */
  readonly stage: "look-up" | "push";
  readonly fault: Fault;
  /** The requests the proxy faults: a loose filter (method, route, repository), so that the point below is observed, not given. */
  readonly faults: (request: ProxiedRequest, place: Place) => boolean;
  /** The point the fault's name names: what every faulted request must have been. */
  readonly point: (place: Place) => Partial<ProxiedRequest>;
  /** How many requests were faulted: Strata's client tries a transient fault 3 times in all; the Docker engine's own retries are its business ("at least once"). */
  readonly times: number | "at least once";
  /** What the failed run's output must say. */
  readonly says: RegExp;
  /** The channels it applies to (both unless said). */
  readonly channels?: readonly ChannelName[];
  /** Extra environment for every run of the case (a CI run's change). */
  readonly env?: Record<string, string>;
  /** Extra environment for the faulted run only (a short client timeout: the healthy runs keep the default). */
  readonly faultEnv?: Record<string, string>;
}

/** `app`'s manifest, asked by anyone with any method: the filter of the look-up faults. */
const appManifest = (method: string) => (request: ProxiedRequest, place: Place): boolean => request.method === method && request.kind === "manifest" && request.repository === place.repository;
/** Strata's look-up of `app`'s release tag, with the login. */
const releaseTagLookUp = (place: Place): Partial<ProxiedRequest> => ({ method: "GET", kind: "manifest", repository: place.repository, reference: place.releaseTag, sender: "strata", authorized: true });

const FAULTS: readonly CorpusFault[] = [
  { name: "500 on one manifest look-up", stage: "look-up", fault: { kind: "status", status: 500 }, faults: appManifest("GET"), point: releaseTagLookUp, times: 3, says: /could not answer for layer "app".*HTTP 500 \(a server error\) UNKNOWN after 3 attempts.*Nothing was built or pushed.*fix: check that the registry/s },
  {
    name: "500 on the tag list (a CI run)", stage: "look-up", fault: { kind: "status", status: 500 },
    faults: (request, place) => request.method === "GET" && request.kind === "tag list" && request.repository === place.repository,
    point: (place) => ({ method: "GET", kind: "tag list", repository: place.repository, sender: "strata", authorized: true }),
    times: 3, says: /could not answer for layer "app".*tag list.*HTTP 500 \(a server error\) UNKNOWN after 3 attempts.*Nothing was built or pushed/s, env: CI_ENV,
  },
  { name: "a connection reset mid-body", stage: "look-up", fault: { kind: "reset mid-body" }, faults: appManifest("GET"), point: releaseTagLookUp, times: 3, says: /could not answer for layer "app".*connection reset.*Nothing was built or pushed/s },
  { name: "a 30 s stall (the client's timeout fires)", stage: "look-up", fault: { kind: "stall", ms: 30_000 }, faults: appManifest("GET"), point: releaseTagLookUp, times: 3, says: /could not answer for layer "app".*no answer within 2 s.*Nothing was built or pushed/s, faultEnv: { STRATA_REGISTRY_TIMEOUT: "2" } },
  { name: "a manifest whose bytes do not match its digest", stage: "look-up", fault: { kind: "corrupt body" }, faults: appManifest("GET"), point: releaseTagLookUp, times: 1, says: /could not answer for layer "app".*bytes do not match its digest.*Nothing was built or pushed.*fix: something between Strata and/s },
  {
    // Every request is refused: the first to be faulted is Strata's, with the login it was given.
    name: "401 after the password changed", stage: "look-up", fault: { kind: "status", status: 401, headers: { "www-authenticate": 'Basic realm="corpus"' } },
    faults: () => true, point: () => ({ sender: "strata", authorized: true }), times: "at least once",
    says: /refused the credentials \(HTTP 401; the login from the stack config .* was refused\).*Nothing was built or pushed.*fix: log in/s,
  },
  {
    // "Not found" for a tag the channel holds (it lost it, or a proxy lies): on a mutable channel
    // that is an answer, and the layer is rebuilt; on an immutable one the stack's own state knows
    // what it pushed there and refuses.
    name: "404 for a tag the channel holds", stage: "look-up", channels: ["immutable"], fault: { kind: "status", status: 404 }, faults: appManifest("GET"), point: releaseTagLookUp, times: 1,
    says: /layer "app": .* already exists in this stack's state \(pushed by an earlier run\) with different content \(content changed\); an immutable channel never moves a tag.*fix: bump the version/s,
  },
  { name: "500 on one manifest PUT", stage: "push", fault: { kind: "status", status: 500 }, faults: appManifest("PUT"), point: (place) => ({ method: "PUT", kind: "manifest", repository: place.repository, reference: place.releaseTag, sender: "docker engine" }), times: "at least once", says: /app\s+failed[\s\S]*(500|Internal Server Error)/ },
  {
    name: "the registry gone mid-run (at the first blob upload)", stage: "push", fault: { kind: "gone" },
    faults: (request, place) => request.method === "POST" && request.kind === "blob upload" && request.repository === place.repository,
    // Gone for good after the first: nothing else reaches the proxy.
    point: (place) => ({ method: "POST", kind: "blob upload", repository: place.repository, sender: "docker engine" }), times: 1,
    says: /app\s+failed[\s\S]*(connection refused|EOF|connection reset|broken pipe)/,
  },
];

describe("registry fault corpus (through a fault-injecting proxy)", () => {
  FAULTS.forEach((fault, index) => {
    for (const name of fault.channels ?? (["mutable", "immutable"] as const)) {
      it(`${fault.name}, ${name} channel: fails naming the cause, injected where named, no tag moved or added, the next healthy up converges`, async () => {
        const channel = channels.find((candidate) => candidate.name === name) as Channel;
        const { world, stack } = channel;
        const label = `${name}-${index}`;
        changeApp(channel, label);
        if (fault.stage === "push" && name === "immutable") bumpApp(channel);
        const place: Place = { repository: `${stack.group}/${APP}`, releaseTag: formatTag(appVersion(channel)) };
        const before = await tagDigests(stack.group);
        if (fault.stage === "look-up") expect(Object.keys(before), "the look-up fault spoils a tag the channel holds").toContain(`${APP}:${place.releaseTag}`);
        const injectedBefore = proxy.injected.length;
        proxy.setRule((request) => (fault.faults(request, place) ? fault.fault : undefined));
        let failed;
        try {
          failed = await upWithSummary(world, name, `${label}-fault`, { ...fault.env, ...fault.faultEnv });
        } finally {
          proxy.setRule(undefined);
          await proxy.revive();
        }
        tally.tried += 1;
        tally.kinds.add(fault.name);
        // Each claim on its own (soft): a broken run shows every claim it breaks, the tags moved included.
        const injected = proxy.injected.slice(injectedBefore);
        const seen = `the proxy injected ${JSON.stringify(injected)}; the run said:\n${failed.out}`;
        if (fault.times === "at least once") expect.soft(injected.length, seen).toBeGreaterThan(0);
        else expect.soft(injected.length, seen).toBe(fault.times);
        for (const request of injected) expect.soft(request, "injected at the point the fault names").toMatchObject({ ...fault.point(place), fault: fault.fault.kind });
        expect.soft(failed.code, failed.out).not.toBe(0);
        expect.soft(failed.out).toMatch(fault.says);
        expect.soft(failed.out).not.toContain(PASSWORD);
        expect.soft(failed.out).not.toMatch(/unhandled exception|    at .*\.js:\d+/);
        const after = await tagDigests(stack.group);
        const moved = Object.keys(before).filter((tag) => after[tag] !== before[tag]);
        tally.moved += moved.length;
        expect.soft(moved, "tags moved under the fault").toEqual([]);
        const added = Object.keys(after).filter((tag) => !(tag in before));
        tally.added += added.length;
        expect.soft(added, "tags added under the fault").toEqual([]);
        await stack.stack.exportStack();

        // The healthy run publishes the change: on the immutable channel under a new version. A CI
        // run's healthy run writes only its CI tags (which may be rebuilt), so the release tag the
        // next case spoils stays as it is, unbumped.
        if (fault.stage === "look-up" && name === "immutable" && fault.env === undefined) bumpApp(channel);
        const healthy = await upWithSummary(world, name, `${label}-healthy`, fault.env);
        expect(healthy.code, healthy.out).toBe(0);
        expect(healthy.results.app, healthy.out).toBe("built");
        const again = await upWithSummary(world, name, `${label}-again`, fault.env);
        expect(again.code, again.out).toBe(0);
        expect(new Set(Object.values(again.results)), again.out).toEqual(new Set(["unchanged"]));
      });
    }
  });
});

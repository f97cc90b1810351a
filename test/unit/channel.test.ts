import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { planBumps } from "../../src/core/bump.js";
import { conflictProblems, decideChannel, type PublishedTag, type RegistryView } from "../../src/core/channel.js";
import { loadCatalog } from "../../src/core/catalog.js";
import { resolveStackConfig, type StackConfig } from "../../src/core/config.js";
import { type LayerFingerprint } from "../../src/core/fingerprint.js";
import { planTargets } from "../../src/core/plan.js";
import { RegistryClient } from "../../src/registry/client.js";
import { noteCatalog } from "../helpers/catalog.js";
import { lookUpPublished, RegistryLookupError } from "../../src/registry/lookups.js";

function config(values: Record<string, unknown> = {}): StackConfig {
  const { config: resolved, problems } = resolveStackConfig({ values: { registry: "127.0.0.1:5000", osRelease: "debian8.3", productVersion: "mos9.0", channel: "stable", immutable: true, ...values }, file: "Pulumi.stable.yaml", env: {} });
  if (resolved === undefined) throw new Error(JSON.stringify(problems));
  return resolved;
}
const targets = planTargets(loadCatalog(noteCatalog()), config(), "Pulumi.stable.yaml");
const current = new Map<string, LayerFingerprint>(targets.map((target) => [target.layer.name, { contextDigest: `c-${target.layer.name}`, inputsDigest: `i-${target.layer.name}`, fingerprint: `f-${target.layer.name}` }]));
const same = (layer: string): PublishedTag => ({ digestRef: `repo/${layer}@sha256:1`, fingerprint: `f-${layer}`, inputsDigest: `i-${layer}` });
const view = (entries: Record<string, PublishedTag>): RegistryView => ({ published: new Map(Object.entries(entries)) });

describe("channel decisions", () => {
  it("lets tags published with the same fingerprint stand (the provider adopts them)", () => {
    const decision = decideChannel(targets, current, view({ debian: same("debian"), mos: same("mos") }), config());
    expect(decision.conflicts).toEqual([]);
  });
  it("refuses, in an immutable channel, every tag that would move, with the reason", () => {
    const decision = decideChannel(targets, current, view({
      ms: { ...same("ms"), fingerprint: "old", inputsDigest: "old-inputs" },
      "keystone-base": { ...same("keystone-base"), fingerprint: "old" },
      mysql: same("mysql"),
    }), config());
    expect(decision.conflicts).toEqual([
      { layer: "ms", ref: "127.0.0.1:5000/debian8.3-mos9.0-stable/debian-mos-ms:1.0-p0", reason: "content changed", seenIn: "registry" },
      { layer: "keystone-base", ref: "127.0.0.1:5000/debian8.3-mos9.0-stable/debian-mos-ms-keystone-base:1.0-p0", reason: "parent changed", seenIn: "registry" },
    ]);
    const problems = conflictProblems(decision.conflicts, "Pulumi.stable.yaml", "stable");
    expect(problems[0]?.fix).toMatch(/strata bump --stack stable/);
    expect(problems[0]?.message).toMatch(/already exists in the registry with different content \(content changed\)/);
  });
  it("lets a mutable channel and CI tags rebuild over a tag", () => {
    const moved = view({ ms: { ...same("ms"), fingerprint: "old" } });
    expect(decideChannel(targets, current, moved, config({ immutable: false })).conflicts).toEqual([]);
    expect(decideChannel(targets, current, moved, config({ change: 19026 })).conflicts).toEqual([]);
  });
  it("treats images without Strata labels as different content", () => {
    expect(decideChannel(targets, current, view({ debian: { digestRef: "r@sha256:1" } }), config()).conflicts).toHaveLength(1);
  });
  it("refuses, from the stack's own state alone, a tag it pushed with other content, though the registry shows nothing", () => {
    const ms = targets.find((target) => target.layer.name === "ms");
    const mysql = targets.find((target) => target.layer.name === "mysql");
    const builtHere = new Map([
      [ms?.ref ?? "", { fingerprint: "old", inputsDigest: "i-ms" }],
      // Recorded under another tag (a bump since): a new tag moves nothing.
      [`${mysql?.ref ?? ""}-before-the-bump`, { fingerprint: "old", inputsDigest: "old" }],
      [targets[0]?.ref ?? "", { fingerprint: "f-debian" }],
    ]);
    const decision = decideChannel(targets, current, view({}), config(), builtHere);
    expect(decision.conflicts).toEqual([{ layer: "ms", ref: ms?.ref, reason: "parent changed", seenIn: "state" }]);
    expect(conflictProblems(decision.conflicts, "Pulumi.stable.yaml", "stable")[0]?.message).toMatch(/already exists in this stack's state \(pushed by an earlier run\) with different content \(parent changed\); an immutable channel never moves a tag/);
    // A mutable channel and a CI run rebuild over their own earlier pushes.
    expect(decideChannel(targets, current, view({}), config({ immutable: false }), builtHere).conflicts).toEqual([]);
    expect(decideChannel(targets, current, view({}), config({ change: 19026 }), builtHere).conflicts).toEqual([]);
  });
});

describe("the state's witness: every tag the stack ever published", () => {
  const ref = (layer: string): string => targets.find((target) => target.layer.name === layer)?.ref ?? "";
  it("refuses an adopted tag (a copy: digest, no fingerprint) that the registry now calls absent", () => {
    const witness = new Map([[ref("mysql"), { digest: "sha256:adopted" }]]);
    const decision = decideChannel(targets, current, view({}), config(), witness);
    expect(decision.conflicts).toEqual([{ layer: "mysql", ref: ref("mysql"), reason: "unverified", seenIn: "state", witnessed: "sha256:adopted" }]);
    expect(conflictProblems(decision.conflicts, "Pulumi.stable.yaml", "stable")[0]?.message).toMatch(/this stack published .*debian-mos-mysql:1.0-p0 at sha256:adopted, but the registry now answers that the tag does not hold that image; Strata cannot tell what the tag holds/);
    // The registry holding exactly the witnessed image: nothing against it.
    expect(decideChannel(targets, current, view({ mysql: { ...same("mysql"), digestRef: "repo/mysql@sha256:adopted" } }), config(), witness).conflicts).toEqual([]);
  });
  it("refuses a changed layer by the ledger's fingerprint though the registry answers 404 (another builder, or a layer adopted before)", () => {
    const witness = new Map([[ref("keystone"), { digest: "sha256:k", fingerprint: "f-old", inputsDigest: "i-keystone" }]]);
    expect(decideChannel(targets, current, view({}), config(), witness).conflicts).toEqual([{ layer: "keystone", ref: ref("keystone"), reason: "parent changed", seenIn: "state" }]);
  });
  it("lets a witnessed tag stand when the registry holds it with the same content", () => {
    const witness = new Map([[ref("debian"), { digest: "sha256:1", fingerprint: "f-debian" }]]);
    expect(decideChannel(targets, current, view({ debian: same("debian") }), config(), witness).conflicts).toEqual([]);
  });
  it("refuses an index the state says was over other platforms, or at a digest the registry no longer answers", async () => {
    const { buildTargets } = await import("../../src/core/platform-targets.js");
    const { indexConflicts } = await import("../../src/core/channel.js");
    const { indexFingerprint } = await import("../../src/core/platform-targets.js");
    const twoPlatforms = config({ platforms: "linux/arm64,linux/amd64" });
    const { builds, indexes } = buildTargets(planTargets(loadCatalog(noteCatalog()), twoPlatforms, "Pulumi.stable.yaml"), twoPlatforms);
    const fingerprints = new Map<string, LayerFingerprint>(builds.map((target) => [target.layer.name, { contextDigest: "c", inputsDigest: `i-${target.layer.name}`, fingerprint: `f-${target.layer.name}` }]));
    const debian = indexes.find((index) => index.layer === "debian");
    if (debian === undefined) throw new Error("no debian index");
    // Published earlier over amd64 then arm64: the reordered list would write another index.
    const before = indexFingerprint([...debian.entries].reverse().map((entry) => ({ platform: entry.platform, fingerprint: `f-${entry.name}` })));
    const tags = new Map([[debian.target.ref, { digest: "sha256:index", fingerprint: before }]]);
    const problems = indexConflicts([debian], config(), new Map(), { published: new Map() }, "Pulumi.stable.yaml", "stable", { tags, fingerprints });
    expect(problems).toHaveLength(1);
    expect(problems[0]?.message).toMatch(/was published by this stack as an index over other platforms or other images/);
    // The same order and images, and the registry answering 404 for the tag: cannot tell.
    const same = indexFingerprint(debian.entries.map((entry) => ({ platform: entry.platform, fingerprint: `f-${entry.name}` })));
    const lost = indexConflicts([debian], config(), new Map(), { published: new Map() }, "Pulumi.stable.yaml", "stable", { tags: new Map([[debian.target.ref, { digest: "sha256:index", fingerprint: same }]]), fingerprints });
    expect(lost[0]?.message).toMatch(/was published by this stack at sha256:index, but the registry now answers that the tag does not hold it/);
    // ... and nothing against it when the registry holds that very index.
    expect(indexConflicts([debian], config(), new Map([["debian", { digest: "sha256:index", entries: debian.entries.map((entry) => ({ platform: entry.platform, digest: "sha256:x" })) }]]), { published: new Map(builds.map((target) => [target.layer.name, { digestRef: "r@sha256:x", fingerprint: `f-${target.layer.name}` }])) }, "Pulumi.stable.yaml", "stable", { tags: new Map([[debian.target.ref, { digest: "sha256:index", fingerprint: same }]]), fingerprints })).toEqual([]);
  });
  it("refuses a promotion that would move a tag the state says this stack published at another digest", async () => {
    const { promotionWitnessConflicts } = await import("../../src/core/channel.js");
    const target = { ref: "r/g/app:1.0-p0", digest: "sha256:new", source: { layer: "app" } };
    expect(promotionWitnessConflicts([target], new Map([["r/g/app:1.0-p0", { digest: "sha256:old" }]]), "Pulumi.stable.yaml", "stable")[0]?.message).toMatch(/published r\/g\/app:1.0-p0 at sha256:old .* promoting sha256:new would move an immutable tag/);
    expect(promotionWitnessConflicts([target], new Map([["r/g/app:1.0-p0", { digest: "sha256:new" }]]), "Pulumi.stable.yaml", "stable")).toEqual([]);
  });
  it("the ledger carries every witnessed tag forward, with this run's on top, sorted", async () => {
    const { nextLedger } = await import("../../src/core/channel.js");
    const ledger = nextLedger(new Map([["r/g/b:1", { digest: "sha256:b1", fingerprint: "fb" }], ["r/g/a:1", { digest: "sha256:a-old" }], ["r/g/unknown:1", {}]]), [
      { ref: "r/g/a:1", digestRef: "r/g/a@sha256:a-new", fingerprint: "fa", inputsDigest: "ia" },
      { ref: "r/g/local:1", digestRef: "sha256:imageid" },
    ]);
    expect(Object.keys(ledger)).toEqual(["r/g/a:1", "r/g/b:1"]);
    expect(ledger["r/g/a:1"]).toEqual({ digest: "sha256:a-new", fingerprint: "fa", inputsDigest: "ia" });
    // A run that publishes nothing (a local build, a CI run) carries the ledger forward whole.
    expect(nextLedger(new Map([["r/g/b:1", { digest: "sha256:b1", fingerprint: "fb" }]]), [])).toEqual({ "r/g/b:1": { digest: "sha256:b1", fingerprint: "fb" } });
  });
});

describe("bump planning", () => {
  it("bumps a changed layer and each published descendant, parents first", () => {
    const published = view(Object.fromEntries(targets.map((target) => [target.layer.name, same(target.layer.name)])));
    const changed = new Map(current);
    changed.set("ms", { ...(current.get("ms") as LayerFingerprint), inputsDigest: "new", fingerprint: "new" });
    // Descendants' fingerprints move with their parent's.
    changed.set("keystone-base", { ...(current.get("keystone-base") as LayerFingerprint), fingerprint: "new-kb" });
    changed.set("keystone", { ...(current.get("keystone") as LayerFingerprint), fingerprint: "new-k" });
    const bumps = planBumps({ targets, fingerprints: changed, view: published });
    expect(bumps.map((bump) => [bump.layer, bump.oldTag, bump.newTag, bump.reason])).toEqual([
      ["ms", "1.0-p0", "1.0-p1", "content changed"],
      ["keystone-base", "1.0-p0", "1.0-p1", "parent changed"],
      ["keystone", "1.0-p5", "1.0-p6", "parent changed"],
    ]);
  });
  it("bumps nothing when every published tag matches, and nothing unpublished", () => {
    expect(planBumps({ targets, fingerprints: current, view: view({ debian: same("debian") }) })).toEqual([]);
  });
  it("bumps minor or major on request, and carries CI tags", () => {
    const bumps = planBumps({ targets, fingerprints: current, view: view({ mysql: same("mysql") }), requested: new Map([["mysql", "minor"], ["debian", "major"]]), ci: { change: 7 } });
    expect(bumps.map((bump) => [bump.layer, bump.newTag, bump.reason])).toEqual([["debian", "2.0-p0-7", "requested"], ["mysql", "1.1-p0-7", "requested"]]);
  });
});

describe("registry lookups", () => {
  // Real digests: the client checks every manifest and config against its digest.
  const sha256 = (text: string): string => `sha256:${createHash("sha256").update(text).digest("hex")}`;
  const configText = JSON.stringify({ config: { Labels: { "org.strata.fingerprint": "f1", "org.strata.inputs": "i1" } } });
  const manifestText = JSON.stringify({ config: { digest: sha256(configText) } });
  const manifestDigest = sha256(manifestText);
  const fakeFetch = (async (input: string | URL | Request) => {
    const url = String(input);
    if (url.endsWith("/debian8.3-mos9.0-stable/debian/manifests/1.0-p0") || url.endsWith(`/debian8.3-mos9.0-stable/debian/manifests/${manifestDigest}`)) {
      return new Response(manifestText, { headers: { "docker-content-digest": manifestDigest, "content-type": "application/vnd.docker.distribution.manifest.v2+json" } });
    }
    if (url.endsWith(`/debian8.3-mos9.0-stable/debian/blobs/${sha256(configText)}`)) return new Response(configText);
    return new Response("{}", { status: 404 });
  }) as typeof fetch;

  it("reads tags, digests and fingerprint labels over the distribution API", async () => {
    const result = await lookUpPublished(targets, new RegistryClient({ registry: "127.0.0.1:5000", fetch: fakeFetch }));
    expect([...result.published]).toEqual([["debian", { digestRef: `127.0.0.1:5000/debian8.3-mos9.0-stable/debian@${manifestDigest}`, fingerprint: "f1", inputsDigest: "i1" }]]);
  });
  it("stops on an unreachable registry: never 'unpublished', one error naming the layer, the tag and the fix", async () => {
    const refused = (async () => { throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }); }) as typeof fetch;
    const failure = await lookUpPublished(targets, new RegistryClient({ registry: "127.0.0.1:5000", fetch: refused, sleep: async () => undefined })).then(() => undefined, (error: unknown) => error);
    expect(failure).toBeInstanceOf(RegistryLookupError);
    const error = failure as RegistryLookupError;
    expect(error.message).toMatch(/^registry 127.0.0.1:5000 could not answer for layer "debian" \(127.0.0.1:5000\/debian8.3-mos9.0-stable\/debian:1.0-p0\): cannot reach the registry at https:\/\/127.0.0.1:5000\/v2: connection refused \(nothing listening\) \(and 5 more layer\(s\): mos, ms, keystone-base, keystone, mysql\)\. Nothing was built or pushed/);
    expect(error.message).toMatch(/fix: check that the registry at 127.0.0.1:5000 runs and answers/);
    // Every layer either failed or was not asked once one had failed.
    expect(error.failures.length + error.notAsked).toBe(targets.length);
  });
});

/**
 * The promotion gate's own registry reads (pulumi/promotion.ts checkPromotion): an image whose
 * manifest the registry does not give is refused in its own paragraph, and the others are still
 * verified, so the refusal names every image at once.
 */
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { signatureTag } from "../../src/core/cosign-format.js";
import { type PromotionTarget } from "../../src/core/promotion-plan.js";
import { RegistryClient } from "../../src/registry/client.js";
import { installMocks } from "../helpers/mocks.js";

let promotion: typeof import("../../src/pulumi/promotion.js");
beforeAll(async () => {
  await installMocks();
  promotion = await import("../../src/pulumi/promotion.js");
});

const digest = (char: string): string => `sha256:${char.repeat(64)}`;
const target = (layer: string, char: string): PromotionTarget => ({
  source: { layer, kind: "service", image: layer, tag: "1.0-p0", ref: `registry.test:5000/g-dev/${layer}:1.0-p0`, digestRef: `registry.test:5000/g-dev/${layer}@${digest(char)}`, parent: null },
  sourceRepository: `g-dev/${layer}`,
  digest: digest(char),
  targetRepository: `g-stable/${layer}`,
  tag: "1.0-p0",
  ref: `registry.test:5000/g-stable/${layer}:1.0-p0`,
});

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE = "application/vnd.oci.image.index.v1+json";
const manifestDigest = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
/** The trust policy's reviewed ref, as readReviewedTip gives it: no verification here reaches git. */
const REVIEWED = { ref: "origin/main", fullName: "refs/remotes/origin/main", commit: "0".repeat(40) };
/** The one image every layer of the fixtures below promotes, and its `.sig` tag. */
const image = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { digest: digest("c") }, layers: [] }));
const imageDigest = manifestDigest(image);
const sigTag = signatureTag(imageDigest);
/** A `.sig` manifest, told apart by its note. */
const cosignManifest = (note: string): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { digest: digest("d") }, layers: [], annotations: { note } }));

/**
 * A registry answering manifests from `served` (URL path → bytes, read at each request, so a test
 * may change it), 404 for the rest; `first` may answer a request itself (a failure) or change `served`.
 */
function servedRegistry(served: Map<string, Buffer>, first: (path: string) => Response | undefined = () => undefined): RegistryClient {
  const fetcher = (async (input: string | URL | Request) => {
    const { pathname } = new URL(String(input));
    if (pathname === "/v2/") return new Response("{}", { status: 200 });
    const answer = first(pathname);
    if (answer !== undefined) return answer;
    const bytes = served.get(pathname);
    if (bytes === undefined) return new Response("{}", { status: 404 });
    return new Response(new Uint8Array(bytes), { status: 200, headers: { "content-type": MANIFEST_TYPE, "docker-content-digest": manifestDigest(bytes) } });
  }) as typeof fetch;
  return new RegistryClient({ registry: "registry.test:5000", scheme: "http", fetch: fetcher, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
}

/** A registry answering manifests from `served` (URL path → bytes), each of `indexes` with an index's content type; 404 for the rest, 500 for the paths in `failing`. */
function registryWithIndexes(served: ReadonlyMap<string, Buffer>, indexes: readonly Buffer[], failing: ReadonlySet<string> = new Set()): RegistryClient {
  const fetcher = (async (input: string | URL | Request) => {
    const { pathname } = new URL(String(input));
    if (pathname === "/v2/") return new Response("{}", { status: 200 });
    if (failing.has(pathname)) return new Response("{}", { status: 500 });
    const bytes = served.get(pathname);
    if (bytes === undefined) return new Response("{}", { status: 404 });
    return new Response(new Uint8Array(bytes), { status: 200, headers: { "content-type": indexes.includes(bytes) ? INDEX_TYPE : MANIFEST_TYPE, "docker-content-digest": manifestDigest(bytes) } });
  }) as typeof fetch;
  return new RegistryClient({ registry: "registry.test:5000", scheme: "http", fetch: fetcher, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
}

/** A verifier that admits everything (cosign stands behind it in a run), recording what it was asked about in `asked`. */
function admittingAll(asked: string[]): typeof import("../../src/engine/image-verify.js").verifyImages {
  return (async (targets: readonly { layer: string; digestRef: string }[]) => targets.map((each) => {
    asked.push(each.digestRef);
    return { ...each, admitted: true, reviewed: "yes" as const, failures: [] };
  })) as unknown as typeof import("../../src/engine/image-verify.js").verifyImages;
}

/** A verifier admitting every image but `refusedLayer`'s (unsigned), each one it admits built on `parentDigestRefs`, as its provenance would say. */
function admittingBuiltOn(parentDigestRefs: readonly string[], refusedLayer?: string): typeof import("../../src/engine/image-verify.js").verifyImages {
  return (async (targets: readonly { layer: string; digestRef: string }[]) => targets.map((each) => (each.layer === refusedLayer
    ? { ...each, admitted: false, reviewed: "could not tell" as const, failures: [{ what: "it has no signature by a trusted key (keys/ci.pub)", fix: "sign it" }] }
    : { ...each, admitted: true, reviewed: "yes" as const, parentDigestRefs, failures: [] }))) as unknown as typeof import("../../src/engine/image-verify.js").verifyImages;
}

describe("the promotion gate", () => {
  it("will not check a promotion without the reviewed ref: every image would read \"not checked\", admitted", async () => {
    const registry = servedRegistry(new Map(), () => undefined);
    const withoutReviewed = { keys: [], checkoutDir: "/nonexistent" } as unknown as Parameters<typeof promotion.checkPromotion>[2];
    await expect(promotion.checkPromotion([target("base", "a")], registry, withoutReviewed, { cosignBinary: "/nonexistent/cosign" })).rejects.toThrow("checkPromotion needs the trust policy's reviewed ref");
  });

  it("refuses an image whose manifest the registry fails to give, in its own paragraph, and still verifies the others", async () => {
    // base's manifest: a server error on every attempt; app's: not there (cosign is then asked, and is missing).
    const registry = servedRegistry(new Map(), (path) => {
      if (path.includes("/g-dev/base/manifests/")) return new Response("boom", { status: 500 });
      // tools: the target's tag cannot be read (whether it is promoted already is not known).
      if (path.includes("/g-stable/tools/manifests/1.0-p0")) return new Response("boom", { status: 503 });
      return undefined;
    });
    const { refusals, total } = await promotion.checkPromotion([target("base", "a"), target("app", "b"), target("tools", "c")], registry, { keys: [], reviewed: REVIEWED, checkoutDir: "/nonexistent" }, { cosignBinary: "/nonexistent/cosign" });
    expect(total).toBe(3);
    expect(refusals).toHaveLength(3);
    expect(refusals.find((paragraph) => paragraph.startsWith("tools "))).toMatch(/is refused: the registry did not say whether it is an image or an index, or what g-stable\/tools:1\.0-p0 holds.*HTTP 503/s);
    expect(refusals.find((paragraph) => paragraph.startsWith("base "))).toMatch(/^base registry\.test:5000\/g-dev\/base@sha256:a{64} is refused: the registry did not say whether it is an image or an index.*HTTP 500.*; fix: make sure the registry answers, then promote again\.$/s);
    expect(refusals.find((paragraph) => paragraph.startsWith("app "))).toMatch(/^app registry\.test:5000\/g-dev\/app@sha256:b{64} is refused: the registry holds no such manifest \(HTTP 404\), so what would be copied cannot be verified; fix: .*publish the layer again as a new version on the channel that builds it \(strata bump --stack <that channel> --minor app, then strata up there\), then promote it along again\.$/s);
  });

  it("refuses an image the registry answers 404 for even when the verifier would admit it, and never hands it to the verifier", async () => {
    // cosign, given a digest reference, reads only its .sig/.att tags, never the manifest: a verifier
    // that admits everything stands for it, so only the gate's own read can refuse. An index read
    // as 404 would also hide its platform images from the verifier.
    const served = new Map<string, Buffer>([[`/v2/g-dev/base/manifests/${imageDigest}`, image]]);
    const gone = `/v2/g-dev/app/manifests/${digest("b")}`;
    let goneReads = 0;
    const registry = servedRegistry(served, (path) => {
      if (path === gone) goneReads++;
      return undefined;
    });
    const asked: string[] = [];
    const admitAll = admittingAll(asked);
    let options: Parameters<typeof admitAll>[2] | undefined;
    const recordingOptions = (async (...args: Parameters<typeof admitAll>) => {
      options = args[2];
      return admitAll(...args);
    }) as typeof admitAll;
    const { refusals, total, signatures } = await promotion.checkPromotion([target("app", "b"), { ...target("base", "a"), digest: imageDigest }], registry, { keys: [], reviewed: REVIEWED, checkoutDir: "/nonexistent" }, { cosignBinary: "/nonexistent/cosign" }, recordingOptions);
    // The verifier gets cosign's options and the gate's own client, to read the signatures itself when a key's batch fails.
    expect(options?.cosignBinary).toBe("/nonexistent/cosign");
    expect(options?.signatureReader).toBe(registry);
    expect(goneReads).toBeGreaterThan(0);
    expect(asked).toEqual([`registry.test:5000/g-dev/base@${imageDigest}`]);
    expect(total).toBe(2);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/^app registry\.test:5000\/g-dev\/app@sha256:b{64} is refused: the registry holds no such manifest \(HTTP 404\)/);
    // No copy is to carry anything for the refused image: it is not among those read for copying.
    expect(signatures.has("app")).toBe(false);
    expect(signatures.has("base")).toBe(true);
  });

  it("reads each platform image an index names: one that is gone refuses the index, one there is handed to the verifier", async () => {
    const platformImage = (arch: string): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { digest: digest("c") }, layers: [], annotations: { arch } }));
    const amd = platformImage("amd64");
    const arm = platformImage("arm64");
    const indexOf = (...images: Buffer[]): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: images.map((bytes, at) => ({ mediaType: MANIFEST_TYPE, digest: manifestDigest(bytes), size: bytes.length, platform: { os: "linux", architecture: at === 0 ? "amd64" : "arm64" } })) }));
    const whole = indexOf(amd, arm);
    const served = new Map<string, Buffer>([
      [`/v2/g-dev/tools/manifests/${manifestDigest(whole)}`, whole],
      [`/v2/g-dev/tools/manifests/${manifestDigest(amd)}`, amd],
      [`/v2/g-dev/tools/manifests/${manifestDigest(arm)}`, arm],
      // app's index names the same two images in its own repository, where only amd64 is.
      [`/v2/g-dev/app/manifests/${manifestDigest(whole)}`, whole],
      [`/v2/g-dev/app/manifests/${manifestDigest(amd)}`, amd],
    ]);
    const registry = registryWithIndexes(served, [whole]);
    const asked: string[] = [];
    const admitAll = admittingAll(asked);
    const targets = [{ ...target("tools", "a"), digest: manifestDigest(whole) }, { ...target("app", "b"), digest: manifestDigest(whole) }];
    const { refusals, total } = await promotion.checkPromotion(targets, registry, { keys: [], reviewed: REVIEWED, checkoutDir: "/nonexistent" }, { cosignBinary: "/nonexistent/cosign" }, admitAll);
    expect(asked).toEqual([`registry.test:5000/g-dev/tools@${manifestDigest(whole)}`, `registry.test:5000/g-dev/tools@${manifestDigest(amd)}`, `registry.test:5000/g-dev/tools@${manifestDigest(arm)}`]);
    expect(total).toBe(4);
    expect(refusals).toEqual([`app registry.test:5000/g-dev/app@${manifestDigest(whole)} is refused: the index names a linux/arm64 image ${manifestDigest(arm)} that the registry does not hold (HTTP 404), so it cannot be verified or copied; fix: find out what deleted it (the registry's log), publish the layer again as a new version on the channel that builds it (strata bump --stack <that channel> --minor app, then strata up there), then promote it along again.`]);
  });

  it("refuses an image the verifier admits when the image it was built on is refused, or could not be read (review 123)", async () => {
    const imageOf = (name: string): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { digest: digest("c") }, layers: [], annotations: { name } }));
    const base = imageOf("base");
    const tools = imageOf("tools");
    const servedAt = (repository: string, ...manifests: Buffer[]): [string, Buffer][] => manifests.map((bytes) => [`/v2/g-dev/${repository}/manifests/${manifestDigest(bytes)}`, bytes]);
    /** The gate over base (`baseDigest`, an image or an index) and tools. */
    const gate = (baseDigest: string, registry: RegistryClient, verifier: typeof import("../../src/engine/image-verify.js").verifyImages) =>
      promotion.checkPromotion([{ ...target("base", "a"), digest: baseDigest }, { ...target("tools", "b"), digest: manifestDigest(tools) }], registry, { keys: [], reviewed: REVIEWED, checkoutDir: "/nonexistent" }, { cosignBinary: "/nonexistent/cosign" }, verifier);
    const baseRef = `registry.test:5000/g-dev/base@${manifestDigest(base)}`;
    // cosign's word: base unsigned, tools signed and built on base.
    const served = new Map<string, Buffer>([...servedAt("base", base), ...servedAt("tools", tools)]);
    const refused = await gate(manifestDigest(base), servedRegistry(served), admittingBuiltOn([baseRef], "base"));
    expect(refused.refusals).toHaveLength(2);
    expect(refused.refusals[1]).toContain(`tools registry.test:5000/g-dev/tools@${manifestDigest(tools)} is refused: it was built on ${baseRef}, which is refused here`);
    // base gone from the source: the gate never hands it to the verifier, and says so of tools too.
    served.delete(`/v2/g-dev/base/manifests/${manifestDigest(base)}`);
    const unread = await gate(manifestDigest(base), servedRegistry(served), admittingBuiltOn([baseRef], "base"));
    expect(unread.refusals).toHaveLength(2);
    expect(unread.refusals[1]).toContain(`it was built on ${baseRef}, which could not be verified here (its own paragraph says why)`);

    // base an index whose arm64 image the registry does not answer for; tools' arm64 image names that image (review 124).
    const amd = imageOf("base-amd64");
    const arm = imageOf("base-arm64");
    const entry = (bytes: Buffer, mediaType: string, architecture: string) => ({ mediaType, digest: manifestDigest(bytes), size: bytes.length, platform: { os: "linux", architecture } });
    const baseIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [entry(amd, MANIFEST_TYPE, "amd64"), entry(arm, MANIFEST_TYPE, "arm64")] }));
    const indexed = new Map<string, Buffer>([...servedAt("base", baseIndex, amd), ...servedAt("tools", tools)]);
    const armRef = `registry.test:5000/g-dev/base/linux-arm64@${manifestDigest(arm)}`;
    const platformUnread = await gate(manifestDigest(baseIndex), registryWithIndexes(indexed, [baseIndex], new Set([`/v2/g-dev/base/manifests/${manifestDigest(arm)}`])), admittingBuiltOn([armRef]));
    expect(platformUnread.refusals).toHaveLength(2);
    expect(platformUnread.refusals[1]).toContain(`it was built on ${armRef}, which could not be verified here`);
    // The arm64 entry gone (404), or an index itself: the same (review 125).
    const goneRun = await gate(manifestDigest(baseIndex), registryWithIndexes(indexed, [baseIndex]), admittingBuiltOn([armRef]));
    expect(goneRun.refusals[0]).toContain("that the registry does not hold (HTTP 404)");
    expect(goneRun.refusals[1]).toContain(`it was built on ${armRef}, which could not be verified here`);
    const innerIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [] }));
    const nestedBase = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [entry(amd, MANIFEST_TYPE, "amd64"), entry(innerIndex, INDEX_TYPE, "arm64")] }));
    const innerRef = `registry.test:5000/g-dev/base@${manifestDigest(innerIndex)}`;
    const nestedServed = new Map<string, Buffer>([...servedAt("base", nestedBase, amd, innerIndex), ...servedAt("tools", tools)]);
    const nestedRun = await gate(manifestDigest(nestedBase), registryWithIndexes(nestedServed, [nestedBase, innerIndex]), admittingBuiltOn([innerRef]));
    expect(nestedRun.refusals[0]).toContain("that is an index itself");
    expect(nestedRun.refusals[1]).toContain(`it was built on ${innerRef}, which could not be verified here`);
  });

  it("refuses an index whose platform images the registry does not answer for (500), and never hands it to the verifier (review 122)", async () => {
    const platformImage = (arch: string): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { digest: digest("c") }, layers: [], annotations: { arch } }));
    const amd = platformImage("amd64");
    const arm = platformImage("arm64");
    const whole = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [amd, arm].map((bytes, at) => ({ mediaType: MANIFEST_TYPE, digest: manifestDigest(bytes), size: bytes.length, platform: { os: "linux", architecture: at === 0 ? "amd64" : "arm64" } })) }));
    const served = new Map<string, Buffer>([whole, amd, arm].map((bytes) => [`/v2/g-dev/tools/manifests/${manifestDigest(bytes)}`, bytes]));
    const registry = registryWithIndexes(served, [whole], new Set([`/v2/g-dev/tools/manifests/${manifestDigest(arm)}`]));
    const asked: string[] = [];
    const { refusals, total, signatures } = await promotion.checkPromotion([{ ...target("tools", "a"), digest: manifestDigest(whole) }], registry, { keys: [], reviewed: REVIEWED, checkoutDir: "/nonexistent" }, { cosignBinary: "/nonexistent/cosign" }, admittingAll(asked));
    expect(asked).toEqual([]);
    expect(total).toBe(1);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(new RegExp(`^tools registry\\.test:5000/g-dev/tools@${manifestDigest(whole)} is refused: the registry did not say whether it holds the platform images this index names`));
    expect(signatures.has("tools")).toBe(false);
  });

  it("refuses an index one of whose entries is an index itself (its images would be copied unverified), and never hands it to the verifier", async () => {
    const amd = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { digest: digest("c") }, layers: [], annotations: { arch: "amd64" } }));
    const hidden = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { digest: digest("c") }, layers: [], annotations: { arch: "arm64", unsigned: "yes" } }));
    const entry = (bytes: Buffer, mediaType: string, architecture: string) => ({ mediaType, digest: manifestDigest(bytes), size: bytes.length, platform: { os: "linux", architecture } });
    const inner = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [entry(hidden, MANIFEST_TYPE, "arm64")] }));
    const outer = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [entry(amd, MANIFEST_TYPE, "amd64"), entry(inner, INDEX_TYPE, "arm64")] }));
    const served = new Map<string, Buffer>([outer, amd, inner, hidden].map((bytes) => [`/v2/g-dev/tools/manifests/${manifestDigest(bytes)}`, bytes]));
    const registry = registryWithIndexes(served, [outer, inner]);
    const asked: string[] = [];
    const admitAll = admittingAll(asked);
    const { refusals, total } = await promotion.checkPromotion([{ ...target("tools", "a"), digest: manifestDigest(outer) }], registry, { keys: [], reviewed: REVIEWED, checkoutDir: "/nonexistent" }, { cosignBinary: "/nonexistent/cosign" }, admitAll);
    expect(asked).toEqual([]);
    expect(total).toBe(1);
    expect(refusals).toEqual([`tools registry.test:5000/g-dev/tools@${manifestDigest(outer)} is refused: the index names a linux/arm64 entry ${manifestDigest(inner)} that is an index itself, whose images Strata does not verify (it verifies the images an index names, not those of an index inside it), so they would be copied unverified; fix: publish the layer as an index whose entries are platform images (what Strata's strata:index:ImageIndex puts together), then promote or verify again.`]);
  });

  it("refuses an image whose .sig the target holds with other bytes, in that image's one paragraph, before anything is copied", async () => {
    const served = new Map<string, Buffer>([
      [`/v2/g-dev/app/manifests/${imageDigest}`, image],
      [`/v2/g-dev/app/manifests/${sigTag}`, cosignManifest("the source's")],
      [`/v2/g-stable/app/manifests/${sigTag}`, cosignManifest("someone else's")],
      // base: its .sig is in the target already, the same bytes (promoted before): no conflict.
      [`/v2/g-dev/base/manifests/${imageDigest}`, image],
      [`/v2/g-dev/base/manifests/${sigTag}`, cosignManifest("the source's")],
      [`/v2/g-stable/base/manifests/${sigTag}`, cosignManifest("the source's")],
    ]);
    // tools: its source .sig is another manifest from its second read on, as if rewritten while cosign verified it.
    let toolsReads = 0;
    const sourceSig = `/v2/g-dev/tools/manifests/${sigTag}`;
    served.set(`/v2/g-dev/tools/manifests/${imageDigest}`, image);
    const registry = servedRegistry(served, (path) => {
      if (path === sourceSig) served.set(sourceSig, cosignManifest(++toolsReads === 1 ? "the source's" : "rewritten"));
      return undefined;
    });
    const targets = [{ ...target("app", "b"), digest: imageDigest }, { ...target("base", "a"), digest: imageDigest }, { ...target("tools", "c"), digest: imageDigest }];
    const { refusals, signatures } = await promotion.checkPromotion(targets, registry, { keys: [], reviewed: REVIEWED, checkoutDir: "/nonexistent" }, { cosignBinary: "/nonexistent/cosign" });
    // What the copies carry: the .sig each source held when the gate read it first, unless the target holds it already (base).
    const sigDigest = (note: string): string => manifestDigest(cosignManifest(note));
    expect(signatures.get("base")).toEqual({});
    // tools is refused for its moved tag: its copy (never made) would carry nothing.
    expect(signatures.get("tools")).toEqual({});
    expect(sigDigest("the source's")).not.toBe(sigDigest("rewritten"));
    const tools = refusals.filter((paragraph) => paragraph.startsWith("tools "));
    expect(tools).toHaveLength(1);
    expect(tools[0]).toContain(`registry.test:5000/g-dev/tools:${sigTag} changed while it was verified (${sigDigest("the source's")}, then ${sigDigest("rewritten")})`);
    // cosign is missing, so both are refused by its checks; app's paragraph also names the .sig it would not overwrite.
    const app = refusals.filter((paragraph) => paragraph.startsWith(`app registry.test:5000/g-dev/app@${imageDigest} is refused: `));
    expect(app).toHaveLength(1);
    expect(app[0]).toContain(`registry.test:5000/g-stable/app:${sigTag} holds sha256:`);
    expect(app[0]).toMatch(/is never overwritten; fix: find out who wrote it \(cosign tree registry\.test:5000\/g-stable\/app@sha256:[0-9a-f]{64}\); if it is not wanted, delete it, then promote again\.$/);
    const base = refusals.filter((paragraph) => paragraph.startsWith("base "));
    expect(base).toHaveLength(1);
    expect(base[0]).not.toContain("never overwritten");
  });

  it("with every image admitted by cosign: a target .sig with other bytes or a source .sig that moved while verified refuses that image alone; an image the channel holds already is not checked for them nor copied again", async () => {
    const served = new Map<string, Buffer>();
    for (const layer of ["ok", "conflict", "moved", "held", "backfill", "flaky", "retagged"]) {
      served.set(`/v2/g-dev/${layer}/manifests/${imageDigest}`, image);
      served.set(`/v2/g-dev/${layer}/manifests/${sigTag}`, cosignManifest(`${layer}: the source's`));
    }
    served.set(`/v2/g-stable/conflict/manifests/${sigTag}`, cosignManifest("someone else's"));
    // held: promoted before under its tag; its source .sig gained a signature since (another bytes).
    served.set("/v2/g-stable/held/manifests/1.0-p0", image);
    served.set(`/v2/g-stable/held/manifests/${sigTag}`, cosignManifest("held: as promoted"));
    // retagged: a mutable channel whose tag holds another image, and a .sig someone else wrote: still to copy, so a conflict.
    served.set("/v2/g-stable/retagged/manifests/1.0-p0", cosignManifest("another image"));
    served.set(`/v2/g-stable/retagged/manifests/${sigTag}`, cosignManifest("someone else's"));
    // backfill: promoted before signatures travelled (its tag there, no .sig): its copy may carry the verified one.
    served.set("/v2/g-stable/backfill/manifests/1.0-p0", image);
    let movedReads = 0;
    let flakyReads = 0;
    const registry = servedRegistry(served, (path) => {
      if (path === `/v2/g-dev/moved/manifests/${sigTag}` && ++movedReads > 1) served.set(path, cosignManifest("moved: rewritten"));
      // flaky: its source .sig answers the gate's second read (after cosign) with server errors only.
      if (path === `/v2/g-dev/flaky/manifests/${sigTag}` && ++flakyReads > 1) return new Response("down", { status: 500 });
      return undefined;
    });
    const admitAll = (async (verifyTargets: readonly { layer: string; digestRef: string }[]) => verifyTargets.map((verifyTarget) => ({ ...verifyTarget, admitted: true, reviewed: "yes" as const, failures: [] })));
    const targets = ["ok", "conflict", "moved", "held", "backfill", "flaky", "retagged"].map((layer, at) => ({ ...target(layer, String(at)), digest: imageDigest }));
    const { refusals, total, signatures } = await promotion.checkPromotion(targets, registry, { keys: [], reviewed: REVIEWED, checkoutDir: "/nonexistent" }, { cosignBinary: "/nonexistent/cosign" }, admitAll);
    expect(total).toBe(7);
    expect(refusals).toHaveLength(4);
    expect(refusals[3]).toMatch(/^retagged .* is refused: registry\.test:5000\/g-stable\/retagged:sha256-[0-9a-f]{64}\.sig holds /);
    // flaky: the registry's error, said as such, not as a tag that moved.
    expect(refusals[2]).toMatch(/^flaky .* is refused: the registry did not say what g-dev\/flaky:sha256-[0-9a-f]{64}\.sig and g-stable\/flaky:sha256-[0-9a-f]{64}\.sig hold/);
    expect(refusals[2]).not.toContain("changed while");
    expect(refusals[0]).toMatch(new RegExp(`^conflict registry\\.test:5000/g-dev/conflict@${imageDigest} is refused: registry\\.test:5000/g-stable/conflict:${sigTag} holds sha256:[0-9a-f]{64}, not the sha256:[0-9a-f]{64} the source holds, and is never overwritten; fix: `));
    expect(refusals[1]).toMatch(new RegExp(`^moved registry\\.test:5000/g-dev/moved@${imageDigest} is refused: registry\\.test:5000/g-dev/moved:${sigTag} changed while it was verified`));
    // What each copy would carry: the .sig the gate read first; for one the channel holds already,
    // only what its target lacks (backfill), never a replacement of what it has (held). Every layer
    // has an entry, so no copy reads the source's tags itself.
    expect(signatures.get("ok")).toEqual({ [sigTag]: manifestDigest(cosignManifest("ok: the source's")) });
    expect(signatures.get("moved")).toEqual({});
    expect(signatures.get("held")).toEqual({});
    expect(signatures.get("backfill")).toEqual({ [sigTag]: manifestDigest(cosignManifest("backfill: the source's")) });
    expect([...signatures.keys()].sort()).toEqual(["backfill", "conflict", "flaky", "held", "moved", "ok", "retagged"]);
  });

  it("declares each promoted image's copy with the .sig/.att manifests the gate verified", async () => {
    const recorded = await installMocks();
    const verified = { [`sha256-${"a".repeat(64)}.sig`]: digest("e") };
    const layers = new promotion.Promotion("layers", { targets: [target("app", "a"), target("base", "b")], registry: "registry.test:5000", immutable: true, signatures: new Map([["app", verified]]) }).layers;
    await Promise.all(layers.map((layer) => new Promise<void>((resolve) => layer.digestRef.apply(() => resolve()))));
    const copies = recorded.filter((resource) => resource.type === "strata:index:PromotedImage");
    expect(copies.map((copy) => copy.name).sort()).toEqual(["app", "base"]);
    expect(copies.find((copy) => copy.name === "app")?.inputs.signatures).toEqual(verified);
    // With a gate, a layer it gave nothing for carries nothing (no copy reads the source's tags itself); without one, the copy reads them.
    expect(copies.find((copy) => copy.name === "base")?.inputs.signatures).toEqual({});
    new promotion.Promotion("ungated", { targets: [target("db", "c")], registry: "registry.test:5000", immutable: true }).layers.forEach((layer) => layer.digestRef.apply(() => undefined));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const ungated = recorded.find((resource) => resource.type === "strata:index:PromotedImage" && resource.name === "db");
    expect(ungated).toBeDefined();
    expect(ungated?.inputs.signatures).toBeUndefined();
  });

  it("refuses an image whose cosign tags change while cosign runs, whatever the change: a source .sig that appears, one that moves while the target holds the old bytes, a target .sig that appears with other bytes", async () => {
    const served = new Map<string, Buffer>();
    for (const layer of ["appears", "samemoved", "tgtappears", "still", "heldmoved", "heldlacks"]) served.set(`/v2/g-dev/${layer}/manifests/${imageDigest}`, image);
    for (const layer of ["samemoved", "tgtappears", "still", "heldmoved", "heldlacks"]) served.set(`/v2/g-dev/${layer}/manifests/${sigTag}`, cosignManifest(`${layer}: X`));
    served.set(`/v2/g-stable/samemoved/manifests/${sigTag}`, cosignManifest("samemoved: X"));
    // Promoted already (their tag in the channel): heldmoved with its .sig, which stays as it is
    // whatever the source does; heldlacks without one, so its copy would carry the source's.
    for (const layer of ["heldmoved", "heldlacks"]) served.set(`/v2/g-stable/${layer}/manifests/1.0-p0`, image);
    served.set(`/v2/g-stable/heldmoved/manifests/${sigTag}`, cosignManifest("heldmoved: X"));
    const registry = servedRegistry(served);
    // cosign admits all, and while it runs the registry changes.
    const admitWhileChanging = (async (verifyTargets: readonly { layer: string; digestRef: string }[]) => {
      served.set(`/v2/g-dev/appears/manifests/${sigTag}`, cosignManifest("appears: new"));
      served.set(`/v2/g-dev/samemoved/manifests/${sigTag}`, cosignManifest("samemoved: Y"));
      served.set(`/v2/g-stable/tgtappears/manifests/${sigTag}`, cosignManifest("tgtappears: someone else's"));
      for (const layer of ["heldmoved", "heldlacks"]) served.set(`/v2/g-dev/${layer}/manifests/${sigTag}`, cosignManifest(`${layer}: a signature added since`));
      return verifyTargets.map((verifyTarget) => ({ ...verifyTarget, admitted: true, reviewed: "yes" as const, failures: [] }));
    });
    const targets = ["appears", "samemoved", "tgtappears", "still", "heldmoved", "heldlacks"].map((layer, at) => ({ ...target(layer, String(at)), digest: imageDigest }));
    const { refusals, signatures } = await promotion.checkPromotion(targets, registry, { keys: [], reviewed: REVIEWED, checkoutDir: "/nonexistent" }, { cosignBinary: "/nonexistent/cosign" }, admitWhileChanging);
    expect(refusals.map((paragraph) => paragraph.split(" ")[0])).toEqual(["appears", "samemoved", "tgtappears", "heldlacks"]);
    expect(refusals[3]).toContain(`g-dev/heldlacks:${sigTag} changed while it was verified`);
    expect(signatures.get("heldmoved")).toEqual({});
    expect(refusals[0]).toContain(`g-dev/appears:${sigTag} changed while it was verified (absent, then sha256:`);
    expect(refusals[1]).toContain(`g-dev/samemoved:${sigTag} changed while it was verified`);
    expect(refusals[2]).toContain(`g-stable/tgtappears:${sigTag} holds sha256:`);
    expect(signatures.get("still")).toEqual({ [sigTag]: manifestDigest(cosignManifest("still: X")) });
  });
});

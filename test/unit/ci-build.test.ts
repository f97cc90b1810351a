import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseCount, parseSeconds } from "../../src/core/config.js";
import { ciStackName, copyCandidateTags, deletionOrder, orphanedImages, orphanOwners, isChangeTag, planCiCleanup, type RepositoryTag } from "../../src/core/ci-build.js";
import { loadCatalog } from "../../src/core/catalog.js";
import { attestationTag, signatureTag } from "../../src/core/cosign-format.js";
import { resolveStackConfig, type StackConfig } from "../../src/core/config.js";
import { fingerprintTargets } from "../../src/core/fingerprint.js";
import { planTargets } from "../../src/core/plan.js";
import { noteCatalog } from "../helpers/catalog.js";

function config(env: Record<string, string>): StackConfig {
  const { config: resolved, problems } = resolveStackConfig({ values: { registry: "127.0.0.1:5000", osRelease: "debian8.3", productVersion: "mos9.0", channel: "dev" }, file: "Pulumi.dev.yaml", env });
  if (resolved === undefined) throw new Error(JSON.stringify(problems));
  return resolved;
}

describe("CI builds", () => {
  it("a CI run's layers have the channel's fingerprints: the CI suffix is in the tag, not in the build inputs", async () => {
    const catalog = loadCatalog(noteCatalog());
    const channel = planTargets(catalog, config({}), "Pulumi.dev.yaml");
    const ci = planTargets(catalog, config({ GERRIT_CHANGE_NUMBER: "19026", GERRIT_PATCHSET_NUMBER: "2" }), "Pulumi.dev.yaml");
    expect(ci.find((target) => target.layer.name === "keystone")?.tag).toBe("1.0-p5-19026_2");
    expect(ci.find((target) => target.layer.name === "keystone")?.releaseTag).toBe("1.0-p5");
    const channelPrints = await fingerprintTargets(channel, "linux/amd64");
    const ciPrints = await fingerprintTargets(ci, "linux/amd64");
    for (const target of channel) expect(ciPrints.get(target.layer.name)).toEqual(channelPrints.get(target.layer.name));
  });

  it("copies from the release tag first, then the change's other patchsets newest first; nothing else", () => {
    const tags = ["1.0-p5", "1.0-p5-19026", "1.0-p5-19026_1", "1.0-p5-19026_3", "1.0-p5-19026_2", "1.0-p5-777_1", "1.0-p4-19026_1", "1.0-p4", "latest"];
    expect(copyCandidateTags({ tag: "1.0-p5-19026_2", releaseTag: "1.0-p5" }, tags)).toEqual(["1.0-p5", "1.0-p5-19026_3", "1.0-p5-19026_1", "1.0-p5-19026"]);
    // The release tag is asked for even when the listing does not show it (yet).
    expect(copyCandidateTags({ tag: "1.0-p5-19026", releaseTag: "1.0-p5" }, [])).toEqual(["1.0-p5"]);
    expect(copyCandidateTags({ tag: "1.0-p5", releaseTag: "1.0-p5" }, tags)).toEqual([]);
  });

  it("names one stack per change, shared by its patchsets", () => {
    expect(ciStackName("dev", { change: 19026, patchset: 2 })).toBe("dev-ci-19026");
    expect(ciStackName("dev", { change: 19026 })).toBe("dev-ci-19026");
  });

  it("recognises a change's tags, any patchset, and nothing else", () => {
    expect(["1.0-p5-19026", "1.0-p5-19026_4", "2.1-p0-19026_1"].every((tag) => isChangeTag(tag, 19026))).toBe(true);
    expect(["1.0-p5", "1.0-p5-190261", "1.0-p5-1902", "19026", "1.0-p5-19026_x"].some((tag) => isChangeTag(tag, 19026))).toBe(false);
    // Past 2^53 two numbers round to one: neither such a change number nor such a tag is taken.
    expect(isChangeTag("1.0-p5-9007199254740993", 9007199254740992)).toBe(false);
    expect(parseCount("9007199254740993")).toBeUndefined();
    expect(parseCount("9007199254740991")).toBe(9007199254740991);
    // ci-clean's --wait: whole seconds, zero included however written.
    expect(["0", "00", " 0", "1800"].map(parseSeconds)).toEqual([0, 0, 0, 1800]);
    expect(["", "soon", "-5", "1.5", "1e3", "9".repeat(16)].map(parseSeconds)).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
  });

  it("clean-up deletes the change's manifests no other tag shares, and keeps (and says why) the ones a release tag points at", () => {
    const tags: RepositoryTag[] = [
      { repository: "g/a", tag: "1.0-p0", digest: "sha256:rel-a" },
      { repository: "g/a", tag: "1.0-p0-19026_1", digest: "sha256:copy1-a" },
      { repository: "g/a", tag: "1.0-p0-19026_2", digest: "sha256:copy2-a" },
      { repository: "g/b", tag: "1.0-p1", digest: "sha256:b" },
      { repository: "g/b", tag: "1.0-p1-19026_2", digest: "sha256:b" },
      { repository: "g/b", tag: "1.0-p1-555", digest: "sha256:other" },
      // The same digest in another repository is another manifest: it does not count.
      { repository: "g/c", tag: "1.0-p0-19026", digest: "sha256:rel-a" },
    ];
    const plan = planCiCleanup(tags, 19026);
    expect(plan.remove.map((entry) => `${entry.repository}:${entry.tag}`)).toEqual(["g/a:1.0-p0-19026_1", "g/a:1.0-p0-19026_2", "g/c:1.0-p0-19026"]);
    expect(plan.keep).toEqual([{ repository: "g/b", tag: "1.0-p1-19026_2", digest: "sha256:b", sharedWith: ["1.0-p1"] }]);
    expect(planCiCleanup(tags, 555).remove).toEqual([{ repository: "g/b", tag: "1.0-p1-555", digest: "sha256:other" }]);
    expect(plan.children).toEqual([]);
  });

  it("keeps a change's tag on a release index's platform image, and that image's signatures (a single-platform rebuild of the same bytes)", () => {
    const platform = `sha256:${"d".repeat(64)}`;
    const own = `sha256:${"e".repeat(64)}`;
    const tags: RepositoryTag[] = [
      { repository: "g/a", tag: "1.0-p0", digest: "sha256:rel-index", children: [platform, "sha256:rel-arm"] },
      // Strata signs a multi-platform layer's platform images in the index's repository.
      { repository: "g/a", tag: signatureTag(platform), digest: "sha256:rel-sig" },
      { repository: "g/a", tag: attestationTag(platform), digest: "sha256:rel-att" },
      { repository: "g/a", tag: "1.0-p0-19026_1", digest: platform },
      { repository: "g/b", tag: "1.0-p0-19026_1", digest: own },
      { repository: "g/b", tag: signatureTag(own), digest: "sha256:own-sig" },
    ];
    const plan = planCiCleanup(tags, 19026);
    expect(plan.remove.map((entry) => `${entry.repository}:${entry.tag}`)).toEqual([`g/b:${signatureTag(own)}`, "g/b:1.0-p0-19026_1"]);
    expect(plan.keep).toEqual([{ repository: "g/a", tag: "1.0-p0-19026_1", digest: platform, sharedWith: ["1.0-p0 (an image of its index)"] }]);
    expect(plan.children).toEqual([]);
  });

  it("clean-up deletes a removed index's per-platform manifests before it (signatures first), unless a tag that stays still needs one", () => {
    const tags: RepositoryTag[] = [
      { repository: "g/a", tag: "1.0-p0", digest: "sha256:rel-index", children: ["sha256:rel-amd", "sha256:rel-arm"] },
      // The CI index shares its arm64 image with the release index (a copy without annotations would), and has its own amd64 one.
      { repository: "g/a", tag: "1.0-p0-19026", digest: "sha256:ci-index", children: ["sha256:ci-amd", "sha256:rel-arm"] },
      { repository: "g/a", tag: "1.0-p0-19026_2", digest: "sha256:ci2-index", children: ["sha256:ci-amd", "sha256:ci2-arm"] },
      { repository: "g/a/linux-amd64", tag: "1.0-p0-19026", digest: "sha256:ci-amd" },
    ];
    const plan = planCiCleanup(tags, 19026);
    expect(plan.remove.map((entry) => entry.tag)).toEqual(["1.0-p0-19026", "1.0-p0-19026_2", "1.0-p0-19026"]);
    expect(plan.children).toEqual([
      { repository: "g/a", digest: "sha256:ci-amd", of: "1.0-p0-19026" },
      { repository: "g/a", digest: "sha256:ci2-arm", of: "1.0-p0-19026_2" },
    ]);
    // Stopped after any delete, the change's index tags still name what is left for the next run.
    expect(deletionOrder(plan).map((entry) => `${entry.repository}@${entry.digest}`)).toEqual(["g/a@sha256:ci-amd", "g/a@sha256:ci2-arm", "g/a@sha256:ci-index", "g/a@sha256:ci2-index", "g/a/linux-amd64@sha256:ci-amd"]);
    // With signatures: they go first of all.
    const signed = { remove: [{ repository: "g/a", tag: "1.0-p0-19026", digest: "sha256:ci-index" }, { repository: "g/a", tag: `sha256-${"1".repeat(64)}.sig`, digest: "sha256:sig", signatureOf: `sha256:${"1".repeat(64)}` }], keep: [], children: [{ repository: "g/a", digest: "sha256:ci-amd", of: "1.0-p0-19026" }] };
    expect(deletionOrder(signed).map((entry) => entry.digest)).toEqual(["sha256:sig", "sha256:ci-amd", "sha256:ci-index"]);
  });

  it("finds the images a later run of a CI tag wrote over by their signatures, and deletes only those whose every provenance names the change's CI stack", () => {
    const hexOf = (char: string): string => char.repeat(64);
    const [overwritten, released, promotedAway, signedOnly, mixed, unreadable, indexed, sbomOnly, sharing] = ["1", "2", "3", "4", "5", "6", "7", "9", "a"].map((char) => `sha256:${hexOf(char)}`) as [string, string, string, string, string, string, string, string, string];
    const cosignTags = (repository: string, subject: string, kinds: readonly string[]): RepositoryTag[] => kinds.map((kind) => ({ repository, tag: `sha256-${subject.slice(7)}.${kind}`, digest: `sha256:${kind}-of-${subject.slice(7, 9)}` }));
    const tags: RepositoryTag[] = [
      // The CI tag now holds another image; the one it held before keeps its signatures.
      { repository: "g/app", tag: "1.0-p0-19026_1", digest: "sha256:rebuilt" },
      ...cosignTags("g/app", overwritten, ["sig", "att"]),
      // A release image, tagged: never an orphan.
      { repository: "g/app", tag: "1.0-p0", digest: released },
      ...cosignTags("g/app", released, ["sig", "att"]),
      // A platform image only an index lists: held.
      { repository: "g/app", tag: "1.1-p0", digest: "sha256:index", children: [indexed] },
      ...cosignTags("g/app", indexed, ["sig", "att"]),
      // Orphans whose provenance is another stack's, none, mixed, unreadable.
      ...cosignTags("g/app", promotedAway, ["sig", "att"]),
      ...cosignTags("g/app", signedOnly, ["sig"]),
      ...cosignTags("g/app", mixed, ["sig", "att"]),
      ...cosignTags("g/app", unreadable, ["sig", "att"]),
      ...cosignTags("g/app", sbomOnly, ["sig", "att"]),
      // An orphan whose .sig manifest another tag also points at: deleting it would take that tag.
      ...cosignTags("g/app", sharing, ["sig", "att"]),
      { repository: "g/app", tag: "kept-by-hand", digest: "sha256:sig-of-aa" },
      // The same subject held in another repository does not hold it here.
      { repository: "g/other", tag: "1.0-p0", digest: overwritten },
    ];
    const plan = planCiCleanup(tags, 19026);
    const orphans = orphanedImages(tags);
    expect(orphans.map((orphan) => orphan.subject).sort()).toEqual([overwritten, promotedAway, signedOnly, mixed, unreadable, sbomOnly, sharing].sort());
    const provenanceOf = new Map([
      [`g/app@${overwritten}`, { stacks: ["dev-ci-19026", "dev-ci-19026"] }],
      [`g/app@${promotedAway}`, { stacks: ["dev"] }],
      [`g/app@${mixed}`, { stacks: ["dev-ci-19026", "dev-ci-4242"] }],
      [`g/app@${unreadable}`, { unreadable: "layer x is not a DSSE envelope" }],
      [`g/app@${sbomOnly}`, { stacks: [] }],
      [`g/app@${sharing}`, { stacks: ["dev-ci-19026"] }],
    ]);
    const owners = orphanOwners(orphans, provenanceOf, "dev-ci-19026");
    expect(owners.remove.map((orphan) => orphan.subject)).toEqual([overwritten]);
    expect(Object.fromEntries(owners.keep.map((orphan) => [orphan.subject, orphan.why]))).toEqual({
      [promotedAway]: "its provenance names stack dev",
      [signedOnly]: "no provenance attestation says which run made it",
      [mixed]: "its provenance names stack dev-ci-4242",
      [unreadable]: "its provenance cannot be read (layer x is not a DSSE envelope)",
      [sbomOnly]: "its .att holds no provenance statement",
      [sharing]: "its signature manifests are also under kept-by-hand",
    });
    // The plan deletes the change's tag alone; the orphan goes its own way (registry/copy.ts deleteOrphan).
    expect(deletionOrder(plan).map((entry) => entry.digest)).toEqual(["sha256:rebuilt"]);
    // A change tag's image's signatures go with the plan, not as an orphan's.
    const built = `sha256:${hexOf("8")}`;
    const withBuilt = [...tags, { repository: "g/app", tag: "1.0-p0-19026_2", digest: built }, ...cosignTags("g/app", built, ["sig"])];
    const planWithBuilt = planCiCleanup(withBuilt, 19026);
    expect(planWithBuilt.remove.map((entry) => entry.tag)).toContain(`sha256-${hexOf("8")}.sig`);
    expect(orphanedImages(withBuilt).map((orphan) => orphan.subject)).not.toContain(built);
  });

  describe("clean-up and cosign's .sig/.att tags", () => {
    const digest = (name: string): string => `sha256:${createHash("sha256").update(name).digest("hex")}`;
    const sig = signatureTag;
    const att = attestationTag;
    const built = digest("change's built app");
    const copy = digest("change's copy of base");
    const release = digest("release base");
    const shared = digest("a CI tag and a release tag on one image");
    const other = digest("another change's app");
    const orphan = digest("an image no tag points at");
    const index = digest("change's index");
    const platform = digest("change's arm64 image in the index repository");
    const tags: RepositoryTag[] = [
      { repository: "g/app", tag: "1.0-p0-19026_1", digest: built },
      { repository: "g/app", tag: sig(built), digest: digest("sig of built") },
      { repository: "g/app", tag: att(built), digest: digest("att of built") },
      { repository: "g/base", tag: "1.0-p0", digest: release },
      { repository: "g/base", tag: sig(release), digest: digest("sig of release") },
      { repository: "g/base", tag: att(release), digest: digest("att of release") },
      { repository: "g/base", tag: "1.0-p0-19026_1", digest: copy },
      { repository: "g/base", tag: sig(copy), digest: digest("sig of copy") },
      { repository: "g/base", tag: att(copy), digest: digest("att of copy") },
      // A layer built in CI that a release run pushed identically: its signatures are the release's too.
      { repository: "g/libs", tag: "1.0-p0", digest: shared },
      { repository: "g/libs", tag: "1.0-p0-19026_1", digest: shared },
      { repository: "g/libs", tag: sig(shared), digest: digest("sig of shared") },
      { repository: "g/libs", tag: att(shared), digest: digest("att of shared") },
      { repository: "g/app", tag: "1.0-p0-555_1", digest: other },
      { repository: "g/app", tag: sig(other), digest: digest("sig of other") },
      { repository: "g/app", tag: sig(orphan), digest: digest("sig of orphan") },
      // The same image digest signed in another repository (a promoted copy's): that repository's signature is not the change's.
      { repository: "g/elsewhere", tag: "1.0-p0", digest: built },
      { repository: "g/elsewhere", tag: sig(built), digest: digest("sig of built elsewhere") },
      // A multi-platform layer: the index and its platform image, each signed in the index's repository.
      { repository: "g/mp", tag: "1.0-p0-19026_1", digest: index, children: [platform] },
      { repository: "g/mp", tag: sig(index), digest: digest("sig of index") },
      { repository: "g/mp", tag: sig(platform), digest: digest("sig of platform") },
      { repository: "g/mp", tag: att(platform), digest: digest("att of platform") },
    ];

    it("deletes the signatures and attestations of every manifest it deletes, first, and says which digest each is about", () => {
      const plan = planCiCleanup(tags, 19026);
      const signatures = plan.remove.filter((entry) => entry.signatureOf !== undefined);
      expect(signatures.map((entry) => `${entry.repository}:${entry.tag} of ${entry.signatureOf}`).sort()).toEqual([
        `g/app:${sig(built)} of ${built}`,
        `g/app:${att(built)} of ${built}`,
        `g/base:${sig(copy)} of ${copy}`,
        `g/base:${att(copy)} of ${copy}`,
        `g/mp:${sig(index)} of ${index}`,
        `g/mp:${sig(platform)} of ${platform}`,
        `g/mp:${att(platform)} of ${platform}`,
      ].sort());
      // Deleted by their own manifest's digest, before the images they sign.
      expect(plan.remove.find((entry) => entry.tag === sig(copy))?.digest).toBe(digest("sig of copy"));
      expect(plan.remove.slice(0, signatures.length)).toEqual(signatures);
      expect(plan.remove.slice(signatures.length).map((entry) => `${entry.repository}:${entry.tag}`)).toEqual(["g/app:1.0-p0-19026_1", "g/base:1.0-p0-19026_1", "g/mp:1.0-p0-19026_1"]);
      expect(plan.children).toEqual([{ repository: "g/mp", digest: platform, of: "1.0-p0-19026_1" }]);
    });

    it("never deletes a release image's signatures (even when a CI tag shares its digest), another change's, or one whose image no tag points at", () => {
      const plan = planCiCleanup(tags, 19026);
      const removed = new Set(plan.remove.map((entry) => `${entry.repository}:${entry.tag}`));
      for (const kept of [`g/base:${sig(release)}`, `g/base:${att(release)}`, `g/libs:${sig(shared)}`, `g/libs:${att(shared)}`, `g/app:${sig(other)}`, `g/app:${sig(orphan)}`, `g/elsewhere:${sig(built)}`]) {
        expect(removed.has(kept), kept).toBe(false);
      }
      expect(plan.keep).toEqual([{ repository: "g/libs", tag: "1.0-p0-19026_1", digest: shared, sharedWith: ["1.0-p0"] }]);
      // The other change's clean-up takes its own signature, and nothing of 19026's.
      expect(planCiCleanup(tags, 555).remove.map((entry) => `${entry.repository}:${entry.tag}`)).toEqual([`g/app:${sig(other)}`, "g/app:1.0-p0-555_1"]);
    });

    it("keeps a signature tag whose manifest another remaining tag also points at, and says so", () => {
      const sigManifest = digest("one signature manifest under two tags");
      const plan = planCiCleanup([
        { repository: "g/app", tag: "1.0-p0-19026_1", digest: built },
        { repository: "g/app", tag: sig(built), digest: sigManifest },
        { repository: "g/app", tag: "pinned-signature", digest: sigManifest },
      ], 19026);
      expect(plan.remove.map((entry) => entry.tag)).toEqual(["1.0-p0-19026_1"]);
      expect(plan.keep).toEqual([{ repository: "g/app", tag: sig(built), digest: sigManifest, sharedWith: ["pinned-signature"] }]);
    });
  });
});

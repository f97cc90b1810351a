import { describe, expect, it } from "vitest";
import { ciStackName, copyCandidateTags, isChangeTag, planCiCleanup, type RepositoryTag } from "../../src/core/ci-build.js";
import { loadCatalog } from "../../src/core/catalog.js";
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

  it("clean-up deletes a removed index's per-platform manifests after it, unless a tag that stays still needs one", () => {
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
  });
});

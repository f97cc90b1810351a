import { describe, expect, it } from "vitest";
import { type RegistryView } from "../../src/core/channel.js";
import { type LayerFingerprint } from "../../src/core/fingerprint.js";
import { adoptedOf, builtAsIs, decideSources } from "../../src/core/layer-origin.js";
import { builtLayers, witnessedTags } from "../../src/engine/stack-state.js";
import { type LayerTarget } from "../../src/core/plan.js";

const target = (name: string, tag = "1.0-p0"): LayerTarget => ({
  layer: { name } as LayerTarget["layer"], repository: `r/g/${name}`, repositoryPath: `g/${name}`, tag, releaseTag: "1.0-p0", ref: `r/g/${name}:${tag}`, ownBuildArgs: {},
});
const built = (fingerprint: string, name: string, tag = "1.0-p0") => ({ fingerprint, ref: `r/g/${name}:${tag}` });
const settings = { push: true, copyUnchanged: true };
const fingerprint = (value: string): LayerFingerprint => ({ contextDigest: "c", inputsDigest: "i", fingerprint: value });
const targets = ["a", "b", "c", "d"].map((name) => target(name));
const fingerprints = new Map([["a", fingerprint("fa")], ["b", fingerprint("fb")], ["c", fingerprint("fc")], ["d", fingerprint("fd")]]);
const view: RegistryView = {
  published: new Map([
    ["a", { digestRef: "r/g/a@sha256:1", fingerprint: "fa" }],
    ["b", { digestRef: "r/g/b@sha256:2", fingerprint: "old" }],
    ["c", { digestRef: "r/g/c@sha256:3", fingerprint: "fc" }],
  ]),
};

describe("where each layer's image comes from", () => {
  it("a fresh stack adopts every tag the registry holds with the layer's fingerprint and builds the rest", () => {
    const sources = decideSources(targets, fingerprints, view, new Map(), settings);
    expect(Object.fromEntries([...sources].map(([name, source]) => [name, source.origin]))).toEqual({ a: "adopted", b: "built", c: "adopted", d: "built" });
    expect(sources.get("a")).toEqual({ origin: "adopted", published: { digestRef: "r/g/a@sha256:1", fingerprint: "fa" } });
    // What their provenance marks as adopted (pulumi/image-attestations.ts).
    expect([...adoptedOf(sources)]).toEqual(["a", "c"]);
  });

  it("a layer this stack's state holds as built at the same fingerprint stays built; one built at another fingerprint is adopted when the registry has the new one", () => {
    const builtHere = new Map([["a", built("fa", "a")], ["c", built("older", "c")], ["d", built("older", "d")]]);
    const sources = decideSources(targets, fingerprints, view, builtHere, settings);
    expect(Object.fromEntries([...sources].map(([name, source]) => [name, source.origin]))).toEqual({ a: "built", b: "built", c: "adopted", d: "built" });
  });

  it("leaves as built only the layers the state holds at this fingerprint under this reference (they keep the network they were built with)", () => {
    const builtHere = new Map([["a", built("fa", "a")], ["b", built("older", "b")], ["c", built("fc", "c", "1.0-p0-19026")]]);
    expect([...builtAsIs(targets, fingerprints, builtHere)]).toEqual(["a"]);
    expect([...builtAsIs(targets, new Map(), builtHere)]).toEqual([]);
  });

  it("adopts nothing when images are not pushed", () => {
    const local = decideSources(targets, fingerprints, view, new Map(), { push: false, copyUnchanged: true });
    expect([...local.values()].every((source) => source.origin === "built")).toBe(true);
  });

  it("reads the fingerprint each build resource in a checkpoint was built with", () => {
    const deployment = {
      resources: [
        { urn: "urn:pulumi:dev::strata::pulumi:pulumi:Stack::strata-dev", type: "pulumi:pulumi:Stack", inputs: {} },
        { urn: "urn:pulumi:dev::strata::strata:index:LayerTree$docker:index/image:Image::base", type: "docker:index/image:Image", inputs: { imageName: "r/g/base:1.0-p0", build: { args: { STRATA_FINGERPRINT: "sha256:1" } } } },
        { urn: "urn:pulumi:dev::strata::strata:index:LayerTree$docker:index/image:Image::app", type: "docker:index/image:Image", inputs: { imageName: "r/g/app:1.0-p0", build: { args: { STRATA_FINGERPRINT: "sha256:4" }, cacheFrom: { images: ["r/g/base@sha256:1"] } } } },
        { urn: "urn:pulumi:dev::strata::strata:index:LayerTree$strata:index:LayerImage::tools", type: "strata:index:LayerImage", inputs: { imageName: "r/g/tools:1.0-p0", labels: { "org.strata.fingerprint": "sha256:2" } } },
        { urn: "urn:pulumi:dev::strata::strata:index:LayerTree$strata:index:CopiedImage::libs", type: "strata:index:CopiedImage", inputs: { digest: "sha256:3" } },
      ],
    };
    // And whether a docker.Image was built with its parent pulled first (its cacheFrom).
    expect(builtLayers(deployment, "docker:index/image:Image")).toEqual(new Map([
      ["base", { fingerprint: "sha256:1", ref: "r/g/base:1.0-p0", pulledParentFirst: false }],
      ["app", { fingerprint: "sha256:4", ref: "r/g/app:1.0-p0", pulledParentFirst: true }],
    ]));
    // After a switch of builder, what the other builder built counts as published, not built here.
    expect(builtLayers(deployment, "strata:index:LayerImage")).toEqual(new Map([["tools", { fingerprint: "sha256:2", ref: "r/g/tools:1.0-p0" }]]));
    expect(builtLayers(undefined, "docker:index/image:Image")).toEqual(new Map());
  });

  it("witnesses every tag the stack published: both builders, adoptions, promotions, indexes, and the ledger of tags whose resource is gone", () => {
    const deployment = {
      resources: [
        { urn: "urn:pulumi:stable::strata::pulumi:pulumi:Stack::strata-stable", type: "pulumi:pulumi:Stack", inputs: {}, outputs: { published: {
          "r/g/dropped:1.0-p0": { digest: "sha256:d", fingerprint: "fd" },
          "r/g/libs:1.0-p0": { digest: "sha256:3", fingerprint: "f3", inputsDigest: "i3" },
        } } },
        { urn: "urn:pulumi:stable::strata::strata:index:LayerTree$docker:index/image:Image::base", type: "docker:index/image:Image", inputs: { imageName: "r/g/base:1.0-p0", build: { args: { STRATA_FINGERPRINT: "sha256:1" } } }, outputs: { repoDigest: "r/g/base@sha256:b" } },
        { urn: "urn:pulumi:stable::strata::strata:index:LayerTree$docker:index/image:Image::local", type: "docker:index/image:Image", inputs: { imageName: "r/g/local:1.0-p0", skipPush: true, build: { args: { STRATA_FINGERPRINT: "sha256:9" } } }, outputs: { repoDigest: "sha256:id" } },
        { urn: "urn:pulumi:stable::strata::strata:index:LayerTree$strata:index:LayerImage::tools", type: "strata:index:LayerImage", inputs: { imageName: "r/g/tools:1.0-p0", push: true, labels: { "org.strata.fingerprint": "sha256:2" } }, outputs: { repoDigest: "r/g/tools@sha256:t" } },
        { urn: "urn:pulumi:stable::strata::strata:index:LayerTree$strata:index:CopiedImage::libs", type: "strata:index:CopiedImage", inputs: { registry: "r", targetRepository: "g/libs", tag: "1.0-p0", digest: "sha256:3" }, outputs: { repoDigest: "r/g/libs@sha256:3" } },
        { urn: "urn:pulumi:stable::strata::strata:index:Promotion$strata:index:PromotedImage::app", type: "strata:index:PromotedImage", inputs: { registry: "r", targetRepository: "g/app", tag: "1.0-p0", digest: "sha256:4" } },
        { urn: "urn:pulumi:stable::strata::strata:index:ImageIndex::idx", type: "strata:index:ImageIndex", inputs: { registry: "r", repository: "g/idx", tag: "1.0-p0" }, outputs: { repoDigest: "r/g/idx@sha256:5" } },
      ],
    };
    expect(witnessedTags(deployment)).toEqual(new Map([
      ["r/g/dropped:1.0-p0", { digest: "sha256:d", fingerprint: "fd" }],
      // the copy has no fingerprint of its own: the ledger's, for the same digest, stays
      ["r/g/libs:1.0-p0", { digest: "sha256:3", fingerprint: "f3", inputsDigest: "i3" }],
      ["r/g/base:1.0-p0", { digest: "sha256:b", fingerprint: "sha256:1" }],
      ["r/g/tools:1.0-p0", { digest: "sha256:t", fingerprint: "sha256:2" }],
      ["r/g/app:1.0-p0", { digest: "sha256:4" }],
      ["r/g/idx:1.0-p0", { digest: "sha256:5" }],
    ]));
    expect(witnessedTags(undefined)).toEqual(new Map());
  });

  describe("a CI run (tag 1.0-p0-4242_2)", () => {
    const ciTargets = ["a", "b", "c", "d"].map((name) => target(name, "1.0-p0-4242_2"));
    const release = (name: string, fingerprint: string) => ({ tag: "1.0-p0", published: { digestRef: `r/g/${name}@sha256:rel-${name}`, fingerprint } });
    const patchset1 = (name: string, fingerprint: string) => ({ tag: "1.0-p0-4242_1", published: { digestRef: `r/g/${name}@sha256:ps1-${name}`, fingerprint } });
    const ciView: RegistryView = {
      published: new Map(),
      copySources: new Map([
        ["a", [release("a", "fa")]],
        ["b", [release("b", "old"), patchset1("b", "fb")]],
        ["c", [release("c", "old"), patchset1("c", "older")]],
      ]),
    };

    it("copies what the channel or an earlier patchset holds with the same fingerprint, and builds the rest", () => {
      const sources = decideSources(ciTargets, fingerprints, ciView, new Map(), settings);
      expect(Object.fromEntries([...sources].map(([name, source]) => [name, source.origin]))).toEqual({ a: "copied", b: "copied", c: "built", d: "built" });
      expect(sources.get("a")).toEqual({ origin: "copied", from: release("a", "fa") });
      expect(sources.get("b")).toEqual({ origin: "copied", from: patchset1("b", "fb") });
    });

    it("a layer built for an earlier patchset is copied, not rebuilt under the new tag; one built for this tag stays built", () => {
      const builtHere = new Map([["b", built("fb", "b", "1.0-p0-4242_1")], ["d", built("fd", "d", "1.0-p0-4242_2")]]);
      const sources = decideSources(ciTargets, fingerprints, ciView, builtHere, settings);
      expect(sources.get("b")?.origin).toBe("copied");
      expect(sources.get("d")?.origin).toBe("built");
    });

    it("a rerun declares the same copy again rather than adopting the copy it made", () => {
      const rerun: RegistryView = { ...ciView, published: new Map([["a", { digestRef: "r/g/a@sha256:copy-a", fingerprint: "fa" }]]) };
      expect(decideSources(ciTargets, fingerprints, rerun, new Map(), settings).get("a")).toEqual({ origin: "copied", from: release("a", "fa") });
    });

    it("copies nothing with copyUnchanged false (every layer the channel holds is rebuilt)", () => {
      const sources = decideSources(ciTargets, fingerprints, ciView, new Map(), { push: true, copyUnchanged: false });
      expect([...sources.values()].every((source) => source.origin === "built")).toBe(true);
    });
  });
});

import { describe, expect, it } from "vitest";
import { type RegistryView } from "../../src/core/channel.js";
import { type LayerFingerprint } from "../../src/core/fingerprint.js";
import { decideSources } from "../../src/core/layer-origin.js";
import { builtFingerprints } from "../../src/engine/stack-state.js";
import { type LayerTarget } from "../../src/core/plan.js";

const target = (name: string): LayerTarget => ({
  layer: { name } as LayerTarget["layer"], repository: `r/g/${name}`, repositoryPath: `g/${name}`, tag: "1.0-p0", ref: `r/g/${name}:1.0-p0`, ownBuildArgs: {},
});
const fingerprint = (value: string): LayerFingerprint => ({ contextDigest: "c", inputsDigest: "i", fingerprint: value });
const targets = ["a", "b", "c", "d"].map(target);
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
    const sources = decideSources(targets, fingerprints, view, new Map(), { push: true });
    expect(Object.fromEntries([...sources].map(([name, source]) => [name, source.origin]))).toEqual({ a: "adopted", b: "built", c: "adopted", d: "built" });
    expect(sources.get("a")).toEqual({ origin: "adopted", published: { digestRef: "r/g/a@sha256:1", fingerprint: "fa" } });
  });

  it("a layer this stack's state holds as built at the same fingerprint stays built; one built at another fingerprint is adopted when the registry has the new one", () => {
    const builtHere = new Map([["a", "fa"], ["c", "older"], ["d", "older"]]);
    const sources = decideSources(targets, fingerprints, view, builtHere, { push: true });
    expect(Object.fromEntries([...sources].map(([name, source]) => [name, source.origin]))).toEqual({ a: "built", b: "built", c: "adopted", d: "built" });
  });

  it("adopts nothing when images are not pushed", () => {
    const local = decideSources(targets, fingerprints, view, new Map(), { push: false });
    expect([...local.values()].every((source) => source.origin === "built")).toBe(true);
  });

  it("reads the fingerprint each build resource in a checkpoint was built with", () => {
    const deployment = {
      resources: [
        { urn: "urn:pulumi:dev::strata::pulumi:pulumi:Stack::strata-dev", type: "pulumi:pulumi:Stack", inputs: {} },
        { urn: "urn:pulumi:dev::strata::strata:index:LayerTree$docker:index/image:Image::base", type: "docker:index/image:Image", inputs: { build: { args: { STRATA_FINGERPRINT: "sha256:1" } } } },
        { urn: "urn:pulumi:dev::strata::strata:index:LayerTree$strata:index:LayerImage::tools", type: "strata:index:LayerImage", inputs: { labels: { "org.strata.fingerprint": "sha256:2" } } },
        { urn: "urn:pulumi:dev::strata::strata:index:LayerTree$strata:index:CopiedImage::libs", type: "strata:index:CopiedImage", inputs: { digest: "sha256:3" } },
      ],
    };
    expect(builtFingerprints(deployment, "docker:index/image:Image")).toEqual(new Map([["base", "sha256:1"]]));
    // After a switch of builder, what the other builder built counts as published, not built here.
    expect(builtFingerprints(deployment, "strata:index:LayerImage")).toEqual(new Map([["tools", "sha256:2"]]));
    expect(builtFingerprints(undefined, "docker:index/image:Image")).toEqual(new Map());
  });
});

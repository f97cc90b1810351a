/** LayerImage's inputs (builder strata): what is a reason to rebuild, and what the build is handed. */
import { describe, expect, it } from "vitest";
import { diffLayerImage, parseLayerImageInputs } from "../../src/pulumi/provider/layer-image-inputs.js";

const inputs = { imageName: "r/g/app:1.0-p0", context: "layers/app", dockerfile: "layers/app/Dockerfile", platform: "linux/amd64", buildArgs: {}, labels: {}, push: true, contextDigest: "sha256:1" };

describe("LayerImage inputs", () => {
  it("a changed network is no reason to rebuild; a changed context is", () => {
    expect(diffLayerImage(inputs, { ...inputs, network: "host" })).toEqual([]);
    expect(diffLayerImage({ ...inputs, network: "none" }, { ...inputs, network: "host", contextDigest: "sha256:2" })).toEqual(["contextDigest"]);
  });
  it("hands the build its network when one is set, none otherwise", () => {
    expect(parseLayerImageInputs({ ...inputs, network: "host" }).network).toBe("host");
    expect("network" in parseLayerImageInputs(inputs)).toBe(false);
    expect(() => parseLayerImageInputs({ ...inputs, network: "" })).toThrow(/network must be a non-empty string/);
  });
});

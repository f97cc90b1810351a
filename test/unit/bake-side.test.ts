/** The benchmark's bake peer: the bake file it generates from a catalog, and how it counts what BuildKit built. */
import { describe, expect, it } from "vitest";
import { bakeFile, targetsBuilt } from "../../bench/bake-side.js";

describe("bake peer", () => {
  it("one target per layer, the parent as a named context, the same tag and build argument, pushed", () => {
    const file = bakeFile("/c", [{ layer: "base", parent: undefined, image: "base" }, { layer: "tools-a", parent: "base", image: "base-tools-a" }], "127.0.0.1:5000/g", "1.0-p0-7001");
    expect(file).toEqual({
      group: { default: { targets: ["base", "tools-a"] } },
      target: {
        base: { context: "/c/base", dockerfile: "Dockerfile", args: { STRATA_VERSION: "1.0-p0" }, tags: ["127.0.0.1:5000/g/base:1.0-p0-7001"], output: ["type=registry,registry.insecure=true"] },
        "tools-a": { context: "/c/tools-a", dockerfile: "Dockerfile", args: { STRATA_VERSION: "1.0-p0", BASE_IMAGE: "parent" }, contexts: { parent: "target:base" }, tags: ["127.0.0.1:5000/g/base-tools-a:1.0-p0-7001"], output: ["type=registry,registry.insecure=true"] },
      },
    });
  });
  it("counts a target as built when one of its steps ran, not when all came from the cache", () => {
    const progress = [
      "#5 [base 1/2] ADD rootfs.tar /", "#5 CACHED",
      "#6 [tools-a 1/2] COPY content.txt /etc/strata/1.0-p0.txt", "#6 DONE 0.1s",
      "#7 [tools-a 2/2] RUN test -s /etc/strata/1.0-p0.txt", "#7 DONE 0.3s",
      "#8 [libs-a 1/2] COPY content.txt /etc/strata/1.0-p0.txt", "#8 CACHED",
      "#9 exporting to image", "#9 DONE 0.2s",
    ].join("\n");
    expect(targetsBuilt(progress)).toBe(1);
  });
});

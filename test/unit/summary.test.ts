import { describe, expect, it } from "vitest";
import { type LayerEvent } from "../../src/engine/events.js";
import { renderSummary, summaryExitCode, type SummaryLayer, summaryRows } from "../../src/cli/summary.js";
import { imageSet, renderImageList } from "../../src/cli/image-set.js";

const layer = (name: string, parent: string | null, previousDigestRef?: string): SummaryLayer => ({
  layer: name, image: `img-${name}`, ref: `r/g/img-${name}:1.0-p0`, parent, ...(previousDigestRef === undefined ? {} : { previousDigestRef }),
});
const event = (name: string, op: string, extra: Partial<LayerEvent> = {}): [string, LayerEvent] => [name, { layer: name, type: "docker:index/image:Image", op, failed: false, ...extra }];
const digest = (char: string) => `sha256:${char.repeat(64)}`;

describe("build summary", () => {
  it("says built, unchanged, failed and skipped-because-the-parent-failed, with digests", () => {
    const layers = [layer("base", null, `r/g/img-base@${digest("a")}`), layer("tools", "base"), layer("libs", "tools"), layer("app", "libs"), layer("db", "tools")];
    const events = new Map([
      event("base", "same", { digestRef: `r/g/img-base@${digest("a")}` }),
      event("tools", "update", { digestRef: `r/g/img-tools@${digest("b")}` }),
      event("libs", "create", { failed: true, error: "docker build failed:\nstep 3 returned 1" }),
      event("db", "create", { digestRef: `r/g/img-db@${digest("c")}` }),
    ]);
    const rows = summaryRows(layers, events, "update failed");
    expect(rows.map((row) => [row.layer, row.result, row.digest, row.detail])).toEqual([
      ["base", "unchanged", digest("a"), ""],
      ["tools", "built", digest("b"), "rebuilt"],
      ["libs", "failed", null, "docker build failed:"],
      ["app", "skipped", null, "parent libs failed"],
      ["db", "built", digest("c"), "new"],
    ]);
    expect(summaryExitCode(rows, "update failed")).toBe(1);
    expect(renderSummary(rows).split("\n").at(-1)).toBe("2 built, 1 unchanged, 1 failed, 1 skipped");
  });
  it("tells a tag adopted from the registry from a build", () => {
    const rows = summaryRows([layer("base", null)], new Map([event("base", "create", { type: "strata:index:CopiedImage", digestRef: `r/g/img-base@${digest("e")}` })]));
    expect(rows[0]).toMatchObject({ result: "adopted", digest: digest("e"), detail: "the registry already held this tag with the same content" });
    expect(renderSummary(rows).split("\n").at(-1)).toBe("1 adopted");
    expect(summaryExitCode(rows)).toBe(0);
  });
  it("tells a CI copy from an adoption and a build, and writes the image set as pinned references", () => {
    const layers = [layer("base", null), layer("app", "base")];
    const rows = summaryRows(layers, new Map([
      event("base", "create", { type: "strata:index:CiCopySet", digestRef: `r/g/img-base@${digest("f")}` }),
      event("app", "create", { digestRef: `r/g/img-app@${digest("1")}` }),
    ]));
    expect(rows.map((row) => row.result)).toEqual(["copied", "built"]);
    expect(renderSummary(rows).split("\n").at(-1)).toBe("1 built, 1 copied");
    const set = imageSet({ stack: "dev-ci-7", channelStack: "dev", group: "g", ci: { change: 7, patchset: 2 } }, rows);
    expect(set).toMatchObject({ change: 7, patchset: 2, images: [{ layer: "base", result: "copied", digest: digest("f") }, { layer: "app", result: "built" }] });
    expect(renderImageList(set)).toBe(`r/g/img-base:1.0-p0@${digest("f")}\nr/g/img-app:1.0-p0@${digest("1")}\n`);
  });
  it("reports promotions and a clean run", () => {
    const rows = summaryRows([layer("base", null)], new Map([["base", { layer: "base", type: "strata:index:PromotedImage", op: "create", failed: false, digestRef: `r/s/img-base@${digest("d")}` }]]));
    expect(rows[0]).toMatchObject({ result: "promoted", digest: digest("d") });
    expect(summaryExitCode(rows)).toBe(0);
  });
});

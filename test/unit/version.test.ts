import { describe, expect, it } from "vitest";
import { formatGroup, formatReference, formatTag, groupProblems, parseLayerVersion, parseTag } from "../../src/core/version.js";

describe("layer versions", () => {
  it("parses MAJOR.MINOR.PATCH", () => {
    expect(parseLayerVersion("1.0.5")).toEqual({ major: 1, minor: 0, patch: 5 });
    expect(parseLayerVersion("10.20.300")).toEqual({ major: 10, minor: 20, patch: 300 });
  });
  it.each(["1.0", "v1.0.0", "1.0.0-rc1", "01.0.0", "1.0.0+build", "=1.0.0", " 1.0.0", "1.0.0.0", "", "one"])("rejects %j", (text) => {
    expect(parseLayerVersion(text)).toHaveProperty("error");
  });
});

describe("tags (the design note's examples)", () => {
  const version = { major: 1, minor: 0, patch: 5 };
  it("release tag", () => expect(formatTag(version)).toBe("1.0-p5"));
  it("CI tag with the Gerrit change", () => expect(formatTag(version, { change: 19026 })).toBe("1.0-p5-19026"));
  it("CI tag with change and patchset", () => expect(formatTag(version, { change: 19026, patchset: 2 })).toBe("1.0-p5-19026_2"));
  it("round-trips through parseTag", () => {
    for (const ci of [undefined, { change: 19026 }, { change: 19026, patchset: 2 }]) {
      const tag = formatTag(version, ci);
      expect(parseTag(tag)).toEqual(ci === undefined ? { version } : { version, ci });
    }
    expect(parseTag("latest")).toBeUndefined();
    expect(parseTag("1.0-p5-0")).toBeUndefined();
  });
});

describe("groups and references", () => {
  it("builds the note's keystone reference", () => {
    const group = formatGroup({ osRelease: "debian8.3", productVersion: "mos9.0", channel: "stable" });
    expect(group).toBe("debian8.3-mos9.0-stable");
    expect(formatReference("1.1.1.1:5000", group, "debian-mos-ms-keystone", "1.0-p5")).toBe(
      "1.1.1.1:5000/debian8.3-mos9.0-stable/debian-mos-ms-keystone:1.0-p5",
    );
  });
  it("rejects a group that is not one lowercase path component", () => {
    expect(groupProblems({ osRelease: "Debian8.3", productVersion: "mos9.0", channel: "stable" })).toHaveLength(1);
    expect(groupProblems({ osRelease: "debian8.3", productVersion: "mos 9", channel: "stable" })).toHaveLength(1);
    expect(groupProblems({ osRelease: "debian8.3", productVersion: "mos9.0", channel: "stable" })).toEqual([]);
  });
});

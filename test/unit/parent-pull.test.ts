import { describe, expect, it } from "vitest";
import { parentPullMode, PULL_PARENT_FIRST_ENV, pullsParentFirst, SELF_PULLING_API_VERSION } from "../../src/core/parent-pull.js";

describe("whether a docker.Image build pulls its parent first", () => {
  it("an engine at or past the version seen to pull a missing parent itself does not; older, unknown or unreadable ones do", () => {
    expect(pullsParentFirst(SELF_PULLING_API_VERSION, "auto")).toBe(false);
    expect(pullsParentFirst("1.57", "auto")).toBe(false);
    expect(pullsParentFirst("2.0", "auto")).toBe(false);
    // Debian's Docker 20.10, and versions between it and the one measured.
    expect(pullsParentFirst("1.41", "auto")).toBe(true);
    expect(pullsParentFirst("1.52", "auto")).toBe(true);
    expect(pullsParentFirst("1.9", "auto")).toBe(true);
    // An engine behind TLS or SSH, or one that says nothing readable: the old way.
    expect(pullsParentFirst(undefined, "auto")).toBe(true);
    expect(pullsParentFirst("", "auto")).toBe(true);
    expect(pullsParentFirst("v1.56", "auto")).toBe(true);
    expect(pullsParentFirst("1", "auto")).toBe(true);
  });

  it("always pulls on every engine when the runner asks", () => {
    expect(pullsParentFirst("1.56", "always")).toBe(true);
    expect(pullsParentFirst("9.99", "always")).toBe(true);
  });

  it("reads the mode from the environment, and names the variable and the fix for a bad value", () => {
    expect(parentPullMode({})).toEqual({ mode: "auto", problems: [] });
    expect(parentPullMode({ [PULL_PARENT_FIRST_ENV]: "" })).toEqual({ mode: "auto", problems: [] });
    expect(parentPullMode({ [PULL_PARENT_FIRST_ENV]: "auto" })).toEqual({ mode: "auto", problems: [] });
    expect(parentPullMode({ [PULL_PARENT_FIRST_ENV]: "always" })).toEqual({ mode: "always", problems: [] });
    const { problems } = parentPullMode({ [PULL_PARENT_FIRST_ENV]: "yes" });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: "environment", field: "STRATA_PULL_PARENT_FIRST", message: 'is "yes"' });
    expect(problems[0]?.fix).toContain("always");
    expect(problems[0]?.fix).toContain("auto");
  });
});

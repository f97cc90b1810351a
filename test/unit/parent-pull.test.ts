import { describe, expect, it } from "vitest";
import { parentPullMode, parentPulls, PULL_PARENT_FIRST_ENV, pullsParentFirst, SELF_PULLING_API_VERSION } from "../../src/core/parent-pull.js";

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

describe("which layers pull their parent first", () => {
  const layers = ["base", "tools", "app", "db"];
  it("a layer kept as it is keeps how its state says it was built; the others go by their engine", () => {
    const builtHere = new Map([["tools", { pulledParentFirst: true }], ["app", { pulledParentFirst: false }], ["db", {}]]);
    const plan = parentPulls({ layers, builtAsIs: new Set(["tools", "app", "db"]), builtHere, apiVersions: ["1.56"], mode: "auto" });
    // tools was built with the pull and stays so on an engine without it; app without it; db's state
    // (a LayerImage, or a state from before) does not say, so its engine decides; base is built now.
    expect(Object.fromEntries(plan)).toEqual({ base: false, tools: true, app: false, db: false });
    const older = parentPulls({ layers, builtAsIs: new Set(["tools", "app", "db"]), builtHere, apiVersions: ["1.41"], mode: "auto" });
    expect(Object.fromEntries(older)).toEqual({ base: true, tools: true, app: false, db: true });
  });

  it("a layer not kept (changed, or new to this stack) is built its engine's way, whatever its state held; by the pool's index", () => {
    const builtHere = new Map([["tools", { pulledParentFirst: true }]]);
    const plan = parentPulls({ layers, builtAsIs: new Set(), builtHere, engineOf: new Map([["base", 0], ["tools", 0], ["app", 1], ["db", 2]]), apiVersions: ["1.56", "1.41", undefined], mode: "auto" });
    expect(Object.fromEntries(plan)).toEqual({ base: false, tools: false, app: true, db: true });
    const always = parentPulls({ layers, builtAsIs: new Set(), builtHere, apiVersions: ["1.56"], mode: "always" });
    expect([...always.values()]).toEqual([true, true, true, true]);
  });
});

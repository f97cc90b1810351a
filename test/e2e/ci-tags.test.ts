/** A CI stack (Gerrit change and patchset) pushes -CHANGE_PATCHSET tags under its own group. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, type E2eStack, type E2eWorld, registryContents } from "./harness.js";

let world: E2eWorld;
let e2e: E2eStack;
beforeAll(async () => {
  world = createWorld("ci");
  e2e = await world.stack("ci", { channel: "ci", change: "19026", patchset: "2" });
});
afterAll(async () => {
  await world?.cleanup();
});

describe("CI tags end to end", () => {
  it("pushes every layer with the change and patchset in its tag", async () => {
    expect(e2e.group).toMatch(/-mos9\.0-ci$/);
    await e2e.up();
    expect(await registryContents(e2e.group)).toEqual({
      base: ["1.0-p0-19026_2"],
      "base-tools": ["1.0-p0-19026_2"],
      "base-tools-db": ["1.0-p0-19026_2"],
      "base-tools-libs": ["1.0-p0-19026_2"],
      "base-tools-libs-app": ["1.0-p2-19026_2"],
      "base-tools-libs-app-base": ["1.0-p0-19026_2"],
    });
    const outputs = await e2e.outputs();
    expect(outputs.app?.ref).toMatch(new RegExp(`^127\\.0\\.0\\.1:\\d+/${e2e.group}/base-tools-libs-app:1\\.0-p2-19026_2$`));
    await e2e.destroy();
  });
});

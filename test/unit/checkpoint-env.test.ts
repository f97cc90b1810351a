import { describe, expect, it } from "vitest";
import { checkpointEnv } from "../../src/engine/cli-run.js";

describe("checkpointEnv: when the engine writes the state during up", () => {
  it("once, as the run ends, on a channel whose tags may move", () => {
    expect(checkpointEnv({ PATH: "/usr/bin" }, false)).toEqual({ PULUMI_SKIP_CHECKPOINTS: "true" });
  });

  it("after every step (Pulumi's own default) on an immutable channel, whose state witnesses its tags", () => {
    expect(checkpointEnv({ PATH: "/usr/bin" }, true)).toEqual({});
  });

  it("as the caller's own PULUMI_SKIP_CHECKPOINTS says, false included, either way", () => {
    for (const everyStep of [false, true]) {
      expect(checkpointEnv({ PULUMI_SKIP_CHECKPOINTS: "false" }, everyStep)).toEqual({});
      expect(checkpointEnv({ PULUMI_SKIP_CHECKPOINTS: "1" }, everyStep)).toEqual({});
    }
  });
});

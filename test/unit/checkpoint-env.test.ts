import { describe, expect, it } from "vitest";
import { checkpointEnv } from "../../src/engine/cli-run.js";

describe("checkpointEnv: when the engine writes the state during up", () => {
  it("once, as the run ends, on a channel whose tags may move", () => {
    expect(checkpointEnv({ PATH: "/usr/bin" }, false)).toEqual({ PULUMI_SKIP_CHECKPOINTS: "true" });
  });

  it("after every step on an immutable channel, whose state witnesses its tags, whatever the caller's environment says", () => {
    expect(checkpointEnv({ PATH: "/usr/bin" }, true)).toEqual({ PULUMI_SKIP_CHECKPOINTS: "false" });
    expect(checkpointEnv({ PULUMI_SKIP_CHECKPOINTS: "true" }, true)).toEqual({ PULUMI_SKIP_CHECKPOINTS: "false" });
  });

  it("elsewhere as the caller's own PULUMI_SKIP_CHECKPOINTS says, false included", () => {
    expect(checkpointEnv({ PULUMI_SKIP_CHECKPOINTS: "false" }, false)).toEqual({});
    expect(checkpointEnv({ PULUMI_SKIP_CHECKPOINTS: "1" }, false)).toEqual({});
  });
});

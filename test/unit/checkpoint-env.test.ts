import { describe, expect, it } from "vitest";
import { checkpointEnv } from "../../src/engine/cli-run.js";

describe("checkpointEnv: the engine writes the state once, as the run ends, unless the caller chose", () => {
  it("asks the engine to skip its per-step checkpoints by default", () => {
    expect(checkpointEnv({ PATH: "/usr/bin" })).toEqual({ PULUMI_SKIP_CHECKPOINTS: "true" });
  });

  it("leaves a caller's own PULUMI_SKIP_CHECKPOINTS as it is, false included", () => {
    expect(checkpointEnv({ PULUMI_SKIP_CHECKPOINTS: "false" })).toEqual({});
    expect(checkpointEnv({ PULUMI_SKIP_CHECKPOINTS: "1" })).toEqual({});
  });
});

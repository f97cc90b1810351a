/**
 * The e2e harness's guard after each test that starts `strata up` in a process group (endRunningUps):
 * a run the test left behind is killed with its whole group and fails the test; a run the test waited for is no failure.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { endRunningUps, startGroupUp, type E2eWorld } from "../e2e/harness.js";

/** A world with nothing in it: `strata up` there fails at once, or is stopped before it can. */
function emptyWorld(): E2eWorld {
  const dir = mkdtempSync(path.join(tmpdir(), "strata-running-ups-"));
  return { projectDir: dir, catalogDir: dir, env: {} } as unknown as E2eWorld;
}

describe("endRunningUps", () => {
  it("kills a run the test left (here stopped, as a SIGSTOP test leaves it when it fails), waits for it, and fails naming it", async () => {
    const run = startGroupUp(emptyWorld(), "dev");
    run.killGroup("SIGSTOP");
    await expect(endRunningUps()).rejects.toThrow(`the test left 1 strata up running (process group ${run.pid}): killed with its group`);
    expect(await run.exited).toBe("SIGKILL");
    expect(() => process.kill(-run.pid, 0), "no process of the group is left").toThrow();
    await expect(endRunningUps(), "it is not counted again").resolves.toBeUndefined();
  });

  it("is no failure for a run the test waited for", async () => {
    const run = startGroupUp(emptyWorld(), "dev");
    expect(await run.exited).not.toBe("SIGKILL");
    await expect(endRunningUps()).resolves.toBeUndefined();
  });
});

/**
 * The e2e harness's guard after each test that starts runs in a process group of their own
 * (endRunningUps): a run the test left is killed with its whole group, waited for, recovered, and
 * fails the test; a run the test waited for is no failure.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { endRunningUps, startGroupUp, trackRun, type E2eWorld } from "../e2e/harness.js";
import { groupMembers, startInGroup } from "../helpers/process-group.js";

const scratch = mkdtempSync(path.join(tmpdir(), "strata-running-ups-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Whether any process of the group led by `pid` is alive (a zombie is done). */
const groupAlive = (pid: number): boolean => groupMembers(pid).length > 0;

describe("endRunningUps", () => {
  it("kills a run the test left with its whole group (here stopped, as a SIGSTOP test leaves it), waits for it, recovers after it is gone, and fails naming it", async () => {
    // A leader with a child in its group: a kill of the leader alone would leave the child.
    const run = startInGroup("sh", ["-c", "sleep 60 & wait"]);
    const pid = run.pid as number;
    const recoveries: boolean[] = [];
    trackRun(run.ended, { pid, killGroup: (signal) => run.killGroup(signal), exited: run.exited }, async () => {
      recoveries.push(groupAlive(pid));
      return undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    run.killGroup("SIGSTOP");
    await expect(endRunningUps()).rejects.toThrow(`the test left 1 strata up running (process group ${pid}): killed with its group and recovered`);
    expect(groupAlive(pid), "no process of the group is left once endRunningUps returns").toBe(false);
    expect(recoveries, "recovered once, after the group was gone").toEqual([false]);
    expect(await run.exited).toBe("SIGKILL");
    await expect(endRunningUps(), "it is not counted again").resolves.toBeUndefined();
  });

  it("says what it could not recover", async () => {
    const run = startInGroup("sleep", ["60"]);
    trackRun(run.ended, { pid: run.pid as number, killGroup: (signal) => run.killGroup(signal), exited: run.exited }, async () => "strata recover failed (exit 1): locked");
    await expect(endRunningUps()).rejects.toThrow(`killed with its group; process group ${run.pid}: strata recover failed (exit 1): locked`);
  });

  it("is no failure for a run the test waited for", async () => {
    // strata up in a folder with no project: it fails at once, before any backend or engine.
    const world = { projectDir: scratch, catalogDir: scratch, env: {} } as unknown as E2eWorld;
    const run = startGroupUp(world, "dev");
    expect(await run.exited).not.toBe("SIGKILL");
    await expect(endRunningUps()).resolves.toBeUndefined();
  });
});

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

  it("recovers only once no process of the group is alive, though its leader is gone at once", async () => {
    // The stand-in kills the leader alone: its child, out of the pipes, lives on for a second.
    const run = startInGroup("sh", ["-c", "sleep 1 >/dev/null 2>&1 & wait"]);
    const pid = run.pid as number;
    const started = Date.now();
    const recoveries: { alive: boolean; after: number }[] = [];
    trackRun(run.ended, { pid, killGroup: (signal) => process.kill(pid, signal), exited: run.exited }, async () => {
      recoveries.push({ alive: groupAlive(pid), after: Date.now() - started });
      return undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(endRunningUps()).rejects.toThrow(`(process group ${pid}): killed with its group and recovered`);
    expect(recoveries.map((recovery) => recovery.alive)).toEqual([false]);
    expect(recoveries[0]?.after, "it waited for the child").toBeGreaterThanOrEqual(800);
  });

  it("counts a run whose leader ended while its group lives on (strata killed alone, its engine running) as left", async () => {
    const run = startInGroup("sh", ["-c", "sleep 30 >/dev/null 2>&1 & exit 0"]);
    const pid = run.pid as number;
    trackRun(run.ended, { pid, killGroup: (signal) => run.killGroup(signal), exited: run.exited });
    expect(await run.exited).toBe(0);
    expect(groupAlive(pid)).toBe(true);
    await expect(endRunningUps()).rejects.toThrow(`the test left 1 strata up running (process group ${pid}): killed with its group and recovered`);
    expect(groupAlive(pid)).toBe(false);
  }, 20_000);

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

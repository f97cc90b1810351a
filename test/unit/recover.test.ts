import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { endingProcess, fileBackendDir, isReadableSidecar, lockAge, lockVerdict, processRunning, processState, withoutPendingOperations } from "../../src/engine/recover.js";

describe("recovery after a killed run", () => {
  it("tells a metadata sidecar cut short (empty or half-written) from a readable one", () => {
    expect(isReadableSidecar("")).toBe(false);
    expect(isReadableSidecar('{"user.cache_control":"","md5":"')).toBe(false);
    expect(isReadableSidecar('{"user.content_type":"application/json","md5":"abc="}\n')).toBe(true);
  });

  it("drops pending operations and names each one", () => {
    const exported = {
      version: 3,
      deployment: {
        resources: [{ urn: "u1" }],
        pending_operations: [
          { type: "creating", resource: { urn: "urn:pulumi:dev::strata::strata:index:LayerTree$docker:index/image:Image::tools", type: "docker:index/image:Image" } },
        ],
      },
    };
    const { exported: cleared, dropped } = withoutPendingOperations(exported);
    expect(dropped).toEqual(["creating docker:index/image:Image tools"]);
    expect(cleared.deployment).toEqual({ resources: [{ urn: "u1" }] });
    expect(withoutPendingOperations({ deployment: { resources: [] } }).dropped).toEqual([]);
  });

  it("finds the folder of a file backend, options and all, and nothing for other backends", () => {
    expect(fileBackendDir("file:///srv/state?metadata=skip")).toBe("/srv/state");
    expect(fileBackendDir("postgres://u:p@127.0.0.1:5432/pulumi")).toBeUndefined();
    expect(fileBackendDir(undefined)).toBeUndefined();
  });

  it("reads a process's state after its command, which may hold spaces and parentheses", () => {
    expect(processState("4242 (pulumi) S 1 4242 4242 0 -1")).toBe("S");
    expect(processState("4242 (a (b) c) Z 1 4242")).toBe("Z");
  });

  it("a process that is exiting, or has a SIGKILL pending, has ended as far as a lock is concerned", () => {
    const stat = (state: string, flags: number) => `4242 (pulumi up) ${state} 1 4242 4242 0 -1 ${flags} 100 0 0`;
    const status = (sigPnd: string, shdPnd: string) => `Name:\tpulumi\nSigPnd:\t${sigPnd}\nShdPnd:\t${shdPnd}\n`;
    expect(endingProcess(stat("S", 0x400000), status("0000000000000000", "0000000000000000"))).toBe(false);
    expect(endingProcess(stat("Z", 0x400000), status("0000000000000000", "0000000000000000"))).toBe(true);
    expect(endingProcess(stat("R", 0x400004), status("0000000000000000", "0000000000000000"))).toBe(true);
    expect(endingProcess(stat("S", 0x400000), status("0000000000000000", "0000000000000100"))).toBe(true);
    expect(endingProcess(stat("S", 0x400000), status("0000000000000100", "0000000000000000"))).toBe(true);
    // Another signal pending (SIGTERM, bit 14) is not an end: the process may handle it.
    expect(endingProcess(stat("S", 0x400000), status("0000000000004000", "0000000000000000"))).toBe(false);
  });

  it("a zombie is not running, though kill(pid, 0) still finds it", async () => {
    // sh forks a short sleep, then becomes a long sleep that never reaps it: the short one stays a zombie.
    const parent = spawn("sh", ["-c", "sleep 0.1 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout.once("data", (chunk: Buffer) => resolve(chunk.toString().trim()))));
      expect(processRunning(pid)).toBe(true);
      for (let waited = 0; waited < 5000 && processRunning(pid); waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(processRunning(pid)).toBe(false);
      expect(() => process.kill(pid, 0)).not.toThrow();
      expect(processRunning(parent.pid as number)).toBe(true);
    } finally {
      parent.kill("SIGKILL");
    }
    expect(processRunning(2 ** 22 + 17)).toBe(false);
  });

  it("releases a lock only when its owner is known to be gone; another host's only with --force", () => {
    const now = Date.parse("2026-11-30T12:00:00Z");
    const here = { hostname: "runner-a", running: (pid: number) => pid === 100, now };
    const lock = (pid: number, hostname: string) => ({ where: "l.json", pid, hostname, username: "root", timestamp: "2026-11-30T11:58:30Z" });
    expect(lockVerdict(lock(200, "runner-a"), here, false)).toEqual({ release: true, why: "its update (pid 200 on host runner-a (user root), 1 min 30 s old) is not running any more" });
    const live = lockVerdict(lock(100, "runner-a"), here, true);
    expect(live.release).toBe(false);
    expect(live.why).toMatch(/still running here: pid 100 on host runner-a/);
    const foreign = lockVerdict(lock(200, "runner-b"), here, false);
    expect(foreign).toMatchObject({ release: false, why: "the stack's lock belongs to pid 200 on host runner-b (user root), 1 min 30 s old, which this machine cannot check (it may still be running there)" });
    expect(lockVerdict(lock(200, "runner-b"), here, true).release).toBe(true);
    // A lock cut short by a kill names no owner: unknown, so kept without --force.
    expect(lockVerdict({ where: "l.json" }, here, false).release).toBe(false);
    expect(lockAge(undefined, now)).toBe("of unknown age");
    expect(lockAge("2026-11-30T09:00:00Z", now)).toBe("3 h 0 min old");
  });
});

describe("a run refused by the stack's lock", () => {
  it("is recognised in both forms the engine gives", async () => {
    const { isLockRefusal } = await import("../../src/engine/up-flow.js");
    expect(isLockRefusal("error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.")).toBe(true);
    expect(isLockRefusal("error: 2 errors occurred:\n    1) stat /tmp/w/state/.pulumi/locks/organization/strata/twice/ccea65aa.json.18ecd7bc43c72107.tmp: no such file or directory\n    2) NotFound")).toBe(true);
    expect(isLockRefusal("error: update failed")).toBe(false);
  });
});

import { spawn } from "node:child_process";
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { fileBackendDir } from "../../src/engine/file-backend.js";
import { describe, expect, it } from "vitest";
import { leftoverPlugins, type ProcessEntry } from "../../src/engine/leftover-plugins.js";
import { type LockOwner, ownerStore, parseOwner, recordOwner, startTicksOf, thisMachine } from "../../src/engine/lock-owner.js";
import { endingProcess, isReadableSidecar, lockAge, lockVerdict, type ProcessProbe, processRunning, processState, type RecoverOptions, recordOfLock, recoverStack, type Sighting, sightProcess, withoutPendingOperations } from "../../src/engine/recover.js";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { pulumiProject } from "../helpers/pulumi-project.js";

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
    // What `pulumi login --local` writes, and a folder under the home folder.
    const home = process.env.HOME;
    process.env.HOME = "/nonexistent-home";
    try {
      // The account's home, not $HOME (as Pulumi's user.Current()).
      expect(fileBackendDir("file://~")).toBe(userInfo().homedir);
    } finally {
      process.env.HOME = home;
    }
    expect(fileBackendDir("file://~/state%20dir?no_tmp_dir=true")).toBe(path.join(userInfo().homedir, "state dir"));
    // The owner records of such a backend are beside it, not a crash.
    expect(ownerStore("file://~/state", {})?.where).toBe(path.join(userInfo().homedir, "state", ".strata", "lock-owners"));
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

  it("releases a lock only when its owner is provably gone; another host's only with --force", () => {
    const now = Date.parse("2026-11-30T12:00:00Z");
    const here = { host: "runner-a", bootId: "boot-1", pidNamespace: "pid:[4026531836]", now, sight: (pid: number): Sighting => (pid === 100 ? { seen: "running", startTicks: 5000 } : { seen: "none" }) };
    const lock = (pid: number, hostname: string) => ({ where: "l.json", pid, hostname, username: "root", timestamp: "2026-11-30T11:58:30Z" });
    const records = { owners: [record(200), record(100, { startTicks: 5000 })] };
    expect(lockVerdict(lock(200, "runner-a"), records, here, false)).toEqual({ release: true, why: "its update (pid 200 on host runner-a (user root), 1 min 30 s old) is not running any more (its pid is gone in this boot and PID namespace)" });
    const live = lockVerdict(lock(100, "runner-a"), records, here, true);
    expect(live.release).toBe(false);
    expect(live.why).toMatch(/^the run holding this stack's lock \(an update, or strata ci-clean\) is still running here: pid 100 on host runner-a/);
    const foreign = lockVerdict(lock(200, "runner-b"), records, here, false);
    expect(foreign).toMatchObject({ release: false, why: "the stack's lock belongs to pid 200 on host runner-b (user root), 1 min 30 s old, which this machine cannot check (it may still be running there)" });
    expect(lockVerdict(lock(200, "runner-b"), records, here, true).release).toBe(true);
    // A lock cut short by a kill names no owner: unknown, so kept without --force.
    expect(lockVerdict({ where: "l.json" }, records, here, false).release).toBe(false);
    expect(lockAge(undefined, now)).toBe("of unknown age");
    expect(lockAge("2026-11-30T09:00:00Z", now)).toBe("3 h 0 min old");
  });

  describe("who owns a lock: Strata's owner record, matched to Pulumi's lock", () => {
    const now = Date.parse("2026-11-30T12:00:00Z");
    const here = { host: "ci", bootId: "boot-1", pidNamespace: "pid:[4026531836]", now, sight: (pid: number): Sighting => (pid === 7 ? { seen: "running", startTicks: 900 } : { seen: "none" }) };
    const lock = { where: "l.json", pid: 7, hostname: "ci", username: "root", timestamp: "2026-11-30T11:58:31Z" };

    it("a live run in another PID namespace under the same host name (two CI containers) is refused, not read as dead", () => {
      const verdict = lockVerdict({ ...lock, pid: 8 }, { owners: [record(8, { host: "ci", pidNamespace: "pid:[4026532178]" })] }, here, false);
      expect(verdict.release).toBe(false);
      expect(verdict.why).toMatch(/cannot tell whether the stack's lock owner, pid 8 on host ci .* has ended: it runs in another PID namespace \(pid:\[4026532178\]; this recover runs in pid:\[4026531836\]\)/);
      expect(lockVerdict({ ...lock, pid: 8 }, { owners: [record(8, { host: "ci", pidNamespace: "pid:[4026532178]" })] }, here, true).release).toBe(true);
    });

    it("a lock Strata holds no record of, its pid not running here, cannot be told from a live run elsewhere: refused, --force overrides", () => {
      const verdict = lockVerdict({ ...lock, pid: 8 }, { owners: [] }, here, false);
      expect(verdict).toMatchObject({ release: false, why: expect.stringMatching(/cannot tell .* Strata holds no record of who took it/) });
      expect(verdict.release === false && verdict.fix).toMatch(/--force/);
      expect(lockVerdict({ ...lock, pid: 8 }, { owners: [], unreadable: "psql is not installed" }, here, false)).toMatchObject({ release: false, why: expect.stringMatching(/record of who took it cannot be read \(psql is not installed\)/) });
      expect(lockVerdict({ ...lock, pid: 8 }, { owners: [] }, here, true).release).toBe(true);
    });

    it("another boot (a machine with the same host name, or this one before a restart) cannot be told", () => {
      expect(lockVerdict({ ...lock, pid: 8 }, { owners: [record(8, { host: "ci", bootId: "boot-0" })] }, here, false)).toMatchObject({ release: false, why: expect.stringMatching(/started in boot boot-0, this machine runs boot boot-1/) });
      expect(lockVerdict({ ...lock, pid: 8 }, { owners: [record(8, { host: "ci" })] }, { ...here, bootId: undefined }, false).release).toBe(false);
    });

    it("the pid running again with another start time is a later process: the owner has ended; the same start time is the owner, never released", () => {
      expect(lockVerdict(lock, { owners: [record(7, { host: "ci", startTicks: 400 })] }, here, false)).toMatchObject({ release: true, why: expect.stringMatching(/its pid now belongs to a later process/) });
      expect(lockVerdict(lock, { owners: [record(7, { host: "ci", startTicks: 900 })] }, here, true)).toMatchObject({ release: false, why: expect.stringMatching(/still running here/) });
      // Exiting (a SIGKILL pending, a zombie): it writes nothing more.
      expect(lockVerdict(lock, { owners: [record(7, { host: "ci", startTicks: 900 })] }, { ...here, sight: () => ({ seen: "ending", startTicks: 900 }) }, false).release).toBe(true);
    });

    it("a record matches a lock taken just after it was written, not an old record of a reused pid; every matching record must be gone", () => {
      expect(recordOfLock({ ...lock, pid: 8 }, record(8, { host: "ci" }))).toBe(true);
      expect(recordOfLock({ ...lock, pid: 8 }, record(8, { host: "ci", writtenAt: "2026-11-30T10:00:00Z" }))).toBe(false);
      expect(recordOfLock({ ...lock, pid: 8 }, record(8, { host: "ci", writtenAt: "2026-11-30T11:59:00Z" }))).toBe(false);
      expect(recordOfLock({ ...lock, pid: 8 }, record(9, { host: "ci" }))).toBe(false);
      expect(recordOfLock({ ...lock, pid: 8 }, record(8, { host: "other" }))).toBe(false);
      // An old record of the same pid from this namespace, a live one from another: cannot tell.
      const stale = record(8, { host: "ci", writtenAt: "2026-11-30T11:58:29Z" });
      const other = record(8, { host: "ci", pidNamespace: "pid:[4026532178]" });
      expect(lockVerdict({ ...lock, pid: 8 }, { owners: [stale, other] }, here, false).release).toBe(false);
    });

    it("a lock file still being written may be a run starting: refused while young, removed once long settled", () => {
      const young = lockVerdict({ where: "a.json.1f.tmp", tempAgeMs: 300 }, { owners: [] }, here, false);
      expect(young).toMatchObject({ release: false, why: expect.stringMatching(/a lock file is being written .* a run may be starting/) });
      expect(lockVerdict({ where: "a.json.1f.tmp", tempAgeMs: 600_000 }, { owners: [] }, here, false).release).toBe(true);
      // A whole temp lock of a live run here: its owner decides, as for a lock.
      expect(lockVerdict({ where: "a.json.1f.tmp", pid: 7, hostname: "ci", tempAgeMs: 90_000 }, { owners: [record(7, { host: "ci", startTicks: 900 })] }, here, false).release).toBe(false);
    });
  });

  it("where /proc is missing, EPERM from kill(pid, 0) is a process that is not ours, alive; ESRCH is gone", () => {
    const noProc = (killCode: string): ProcessProbe => ({
      readFile: () => { throw Object.assign(new Error("no /proc"), { code: "ENOENT" }); },
      kill: () => { throw Object.assign(new Error(killCode), { code: killCode }); },
    });
    const pid = 2 ** 22 + 17;
    expect(processRunning(pid, noProc("EPERM"))).toBe(true);
    // /proc mounted with hidepid: no entry for another user's live process, which kill(pid, 0) still sees.
    const hidden: ProcessProbe = { readFile: () => { throw Object.assign(new Error("hidden"), { code: "ENOENT" }); }, kill: () => undefined };
    expect(sightProcess(pid, hidden).seen).toBe("running");
    expect(sightProcess(pid, noProc("EPERM")).seen).toBe("running");
    expect(sightProcess(pid, noProc("ESRCH")).seen).toBe("none");
    expect(sightProcess(pid, noProc("EINVAL")).seen).toBe("unknown");
  });

  it("reads a process's start time (field 22 of /proc/<pid>/stat), after a command that may hold spaces", () => {
    const stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10 18446744073709551615";
    expect(startTicksOf(stat)).toBe(123456);
    expect(startTicksOf("4242 (x) S 1")).toBeUndefined();
    expect(sightProcess(process.pid)).toMatchObject({ seen: "running", startTicks: expect.any(Number) });
  });
});

/** An owner record Strata wrote for pid on runner-a, in boot-1 and the namespace of `here`, 2 s before the lock. */
function record(pid: number, fields: Partial<LockOwner> = {}): LockOwner {
  return { project: "strata", stack: "dev", host: "runner-a", bootId: "boot-1", pidNamespace: "pid:[4026531836]", pid, writtenAt: "2026-11-30T11:58:29Z", ...fields };
}

describe("owner records in the backend's store", () => {
  it("a file backend keeps them beside Pulumi's folder: written, listed, removed; a record cut short is no record", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "strata-owners-"));
    try {
      const store = ownerStore(`file://${dir}`, {});
      const recorded = await recordOwner(store, "strata", "dev", process.pid);
      expect("remove" in recorded).toBe(true);
      const owners = await store?.list("strata", "dev");
      expect(owners).toEqual([{ project: "strata", stack: "dev", ...thisMachine(), pid: process.pid, startTicks: expect.any(Number), writtenAt: expect.any(String) }]);
      expect(owners?.[0]?.bootId).toMatch(/^[0-9a-f-]{36}$/);
      expect(owners?.[0]?.pidNamespace).toMatch(/^pid:\[\d+\]$/);
      writeFileSync(path.join(dir, ".strata/lock-owners/strata/dev/cut.json"), '{"project":"strata","pid"');
      expect(await store?.list("strata", "dev")).toHaveLength(1);
      if ("remove" in recorded) await recorded.remove();
      expect(await store?.list("strata", "dev")).toEqual([]);
      expect(parseOwner('{"project":"strata","stack":"dev","host":"h","pid":"7","writtenAt":"x"}')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(await recordOwner(ownerStore("s3://bucket", {}), "strata", "dev", process.pid)).toEqual({ failed: "the backend is neither a file nor a PostgreSQL backend" });
  });
});

describe("plugins a killed engine left running", () => {
  const backendUrl = "file:///srv/state";
  const mine = { runStack: "dev", backendUrl };
  // null: an environment that cannot be read (another user's process).
  const entry = (pid: number, ppid: number, argv: string[], env: ProcessEntry["env"] | null = mine): ProcessEntry => ({ pid, ppid, argv, ...(env === null ? {} : { env }) });
  it("are the processes of the stack's runs on this backend with no engine above them, each with the processes under it; a live engine's are never touched", () => {
    const processes = [
      entry(1, 0, ["/sbin/init"], null),
      // A killed engine's: reparented to init.
      entry(10, 1, ["/root/.pulumi/plugins/resource-docker-v4.11.2/pulumi-resource-docker", "127.0.0.1:4000"]),
      entry(11, 1, ["/usr/bin/pulumi-language-nodejs", "127.0.0.1:4000"]),
      entry(12, 11, ["node", "/p/node_modules/@pulumi/pulumi/cmd/run", "--stack", "dev"]),
      // The same stack name on another backend, another stack, a bare pulumi up's (no variable), another user's (unreadable).
      entry(20, 1, ["pulumi-resource-docker"], { runStack: "dev", backendUrl: "file:///elsewhere" }),
      entry(21, 1, ["pulumi-resource-docker"], { runStack: "prod", backendUrl }),
      entry(22, 1, ["pulumi-resource-docker"], { backendUrl }),
      entry(23, 1, ["pulumi-resource-docker"], null),
      // A live engine of the stack (a run now) and its plugins, nested ones too.
      entry(30, 1, ["/bin/pulumi", "up", "--stack", "dev"]),
      entry(31, 30, ["pulumi-resource-docker"]),
      entry(32, 30, ["pulumi-language-nodejs"]),
      entry(33, 32, ["node", "/p/node_modules/@pulumi/pulumi/cmd/run"]),
      // Strata's own provider of the killed engine (Node on the compiled provider): a plugin.
      entry(40, 1, ["/opt/node/bin/node", "/p/provider/../dist/src/pulumi/provider/main.js"]),
      // Not plugins, though they inherited the run's variables: a gpg-agent a credential helper started, an ssh master.
      entry(50, 1, ["gpg-agent", "--homedir", "/root/.gnupg", "--daemon"]),
      entry(51, 1, ["ssh", "-MNf", "builder"]),
    ];
    expect(leftoverPlugins(processes, { stack: "dev", backendUrl }).map(({ plugin, under }) => [plugin.pid, under])).toEqual([[10, []], [11, [12]], [40, []]]);
  });
});

describe("recoverStack restores an unreadable checkpoint only from what it can read (the real Pulumi CLI)", () => {
  /** A project and file backend with stack dev initialised plain, then written again in `form`; the state folder. */
  function stackWritten(form: "plain" | "zstd"): { options: RecoverOptions; stacks: string } {
    // The form each write takes is the test's to say, not the runner's environment's.
    const { root, project, env, pulumi } = pulumiProject("recover-restore", { PULUMI_DIY_BACKEND_GZIP: "false", PULUMI_DIY_BACKEND_ZSTD: "false" });
    pulumi(["stack", "init", "dev", "--non-interactive"]);
    const exported = path.join(root, "dev-export.json");
    writeFileSync(exported, pulumi(["stack", "export", "--stack", "dev"]));
    // Written twice in that form: the backend keeps the one before as <checkpoint>.bak.
    const compression: Record<string, string> = form === "zstd" ? { PULUMI_DIY_BACKEND_ZSTD: "true" } : {};
    for (let time = 0; time < 2; time++) pulumi(["stack", "import", "--stack", "dev", "--file", exported], compression);
    return { options: { projectDir: project, project: "strata", stack: "dev", env }, stacks: path.join(root, "state/.pulumi/stacks/strata") };
  }

  /** Where the backend keeps copies of stack dev's checkpoints, of a kind (history, backups), beside its stacks folder. */
  const keptDir = (stacks: string, kind: "history" | "backups"): string => path.join(path.dirname(path.dirname(path.dirname(stacks))), ".pulumi", kind, "strata", "dev");

  it("plain: a cut-off dev.json is restored from dev.json.bak", async () => {
    const { options, stacks } = stackWritten("plain");
    writeFileSync(path.join(stacks, "dev.json"), "{ cut off");
    const steps = await recoverStack(options);
    expect(steps.map((step) => step.action)).toContain("restored checkpoint");
    expect(JSON.parse(readFileSync(path.join(stacks, "dev.json"), "utf8"))).toMatchObject({ version: 3 });
    expect(readdirSync(stacks).filter((name) => name.includes("cut-short")), "nothing left aside").toEqual([]);
  }, 30_000);

  it("plain: a dev.json that is JSON but that Pulumi cannot read is the stack's state, never replaced by an older copy; the error says why", async () => {
    const { options, stacks } = stackWritten("plain");
    const unreadable = JSON.stringify({ version: 99, checkpoint: {} });
    writeFileSync(path.join(stacks, "dev.json"), unreadable);
    await expect(recoverStack(options)).rejects.toThrow(/the stack dev still cannot be read:[\s\S]*replaces only a checkpoint cut short, which is not JSON; \S*\/dev\.json is JSON, so it is the stack's state as last written and was left as it is[\s\S]*an older copy, from before the last write, is \S*\/dev\.json\.bak$/);
    expect(readFileSync(path.join(stacks, "dev.json"), "utf8")).toBe(unreadable);
  }, 30_000);

  it("plain: a cut-off dev.json none of whose copies Pulumi can read either is put back as the kill left it", async () => {
    const { options, stacks } = stackWritten("plain");
    // Every copy recover could take: JSON, but of a checkpoint version Pulumi does not read.
    const copies = [path.join(stacks, "dev.json.bak"), ...(["history", "backups"] as const).flatMap((kind) => {
      const dir = keptDir(stacks, kind);
      return existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith(".json")).map((name) => path.join(dir, name)) : [];
    })];
    expect(existsSync(copies[0] as string), "the backend kept a copy to try").toBe(true);
    for (const copy of copies) writeFileSync(copy, JSON.stringify({ version: 99, checkpoint: {} }));
    writeFileSync(path.join(stacks, "dev.json"), "{ cut off");
    const refused = recoverStack(options);
    await expect(refused).rejects.toThrow(/the stack dev still cannot be read:[\s\S]*\/dev\.json was cut short \(it is not JSON\) and its newest JSON copy is one Pulumi refuses too \(\S*\/dev\.json\.bak: [^)]*\); the older copies after it were not tried, since restoring one would go back past that one unseen, and it was put back as it was/);
    await expect(refused).rejects.not.toThrow(/is JSON/);
    expect(readFileSync(path.join(stacks, "dev.json"), "utf8")).toBe("{ cut off");
    expect(readdirSync(stacks).filter((name) => name.includes("cut-short")), "nothing left aside").toEqual([]);
  }, 30_000);

  it("plain: a cut-off dev.json whose .bak is JSON Pulumi refuses (a newer CLI's) is not restored from an older copy behind it", async () => {
    const { options, stacks } = stackWritten("plain");
    const older = readFileSync(path.join(stacks, "dev.json"), "utf8");
    const history = keptDir(stacks, "history");
    mkdirSync(history, { recursive: true });
    writeFileSync(path.join(history, "dev-1.checkpoint.json"), older);
    utimesSync(path.join(history, "dev-1.checkpoint.json"), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    writeFileSync(path.join(stacks, "dev.json.bak"), JSON.stringify({ version: 99, checkpoint: {} }));
    writeFileSync(path.join(stacks, "dev.json"), "{ cut off");
    await expect(recoverStack(options)).rejects.toThrow(/its newest JSON copy is one Pulumi refuses too \(\S*\/dev\.json\.bak: /);
    expect(readFileSync(path.join(stacks, "dev.json"), "utf8")).toBe("{ cut off");
  }, 30_000);

  it("plain: a checkpoint kept aside by a stopped recover is not put back over another file cut short since (newer bytes, kept for repair by hand)", async () => {
    const { options, stacks } = stackWritten("plain");
    writeFileSync(path.join(stacks, "dev.json.cut-short"), "{ OLD cut off");
    writeFileSync(path.join(stacks, "dev.json"), "{ NEWER cut off");
    rmSync(path.join(stacks, "dev.json.bak"));
    await expect(recoverStack(options)).rejects.toThrow(/kept checkpoint: \S*\/dev\.json\.cut-short, .* is now \S*: \S*\/dev\.json is another file cut short, written since/);
    expect(readFileSync(path.join(stacks, "dev.json"), "utf8")).toBe("{ NEWER cut off");
  }, 30_000);

  it("plain: a cut-off dev.json with no copy kept says so, and is left as it is", async () => {
    const { options, stacks } = stackWritten("plain");
    rmSync(path.join(stacks, "dev.json.bak"));
    for (const kind of ["history", "backups"] as const) rmSync(keptDir(stacks, kind), { recursive: true, force: true });
    writeFileSync(path.join(stacks, "dev.json"), "{ cut off");
    // Twice: the first leaves nothing aside that would stop the second.
    for (let run = 0; run < 2; run++) {
      await expect(recoverStack(options)).rejects.toThrow(/\/dev\.json was cut short \(it is not JSON\) and no readable copy of it is kept here/);
      expect(readFileSync(path.join(stacks, "dev.json"), "utf8")).toBe("{ cut off");
      expect(readdirSync(stacks).filter((name) => /cut-short|restoring/.test(name))).toEqual([]);
    }
  }, 30_000);

  it("plain: a recover stopped right after it gave the checkpoint its second name: the name goes, and the checkpoint is restored", async () => {
    const { options, stacks } = stackWritten("plain");
    writeFileSync(path.join(stacks, "dev.json"), "{ cut off");
    linkSync(path.join(stacks, "dev.json"), path.join(stacks, "dev.json.cut-short"));
    const steps = await recoverStack(options);
    expect(steps.find((step) => step.action === "removed temp file")?.detail).toMatch(/\/dev\.json\.cut-short, a second name of \S*\/dev\.json that a stopped strata recover had given it/);
    expect(steps.map((step) => step.action)).toContain("restored checkpoint");
    expect(JSON.parse(readFileSync(path.join(stacks, "dev.json"), "utf8"))).toMatchObject({ version: 3 });
    expect(readdirSync(stacks).filter((name) => /cut-short|restoring/.test(name))).toEqual([]);
  }, 30_000);

  it("plain: a checkpoint an earlier recover kept aside and was stopped before putting back is put back first, then judged again", async () => {
    const { options, stacks } = stackWritten("plain");
    // The earlier recover was stopped while it tried copies, on a file system without hard links:
    // the original's second copy aside, the original (not JSON) where it was, the next copy's temp file.
    const backup = readFileSync(path.join(stacks, "dev.json.bak"), "utf8");
    writeFileSync(path.join(stacks, "dev.json.cut-short"), "{ cut off");
    writeFileSync(path.join(stacks, "dev.json"), "{ cut off");
    writeFileSync(path.join(stacks, "dev.json.restoring"), backup.slice(0, 10));
    const steps = await recoverStack(options);
    expect(steps.map((step) => step.action).filter((action) => action !== "released lock")).toEqual(["removed temp file", "put back checkpoint", "restored checkpoint"]);
    expect(steps.find((step) => step.action === "put back checkpoint")?.detail).toMatch(/\/dev\.json from \S*\/dev\.json\.cut-short, where a strata recover that was stopped before it ended had kept it/);
    expect(readFileSync(path.join(stacks, "dev.json"), "utf8")).toBe(backup);
    expect(readdirSync(stacks).filter((name) => /cut-short|restoring/.test(name))).toEqual([]);
  }, 30_000);

  it("plain: a checkpoint kept aside by a stopped recover is not put back over a checkpoint Pulumi reads (a restored copy, or a run's newer state): renamed out of the way, and said", async () => {
    const { options, stacks } = stackWritten("plain");
    const good = readFileSync(path.join(stacks, "dev.json"), "utf8");
    writeFileSync(path.join(stacks, "dev.json.cut-short"), "{ cut off");
    const steps = await recoverStack(options);
    const kept = steps.find((step) => step.action === "kept checkpoint");
    expect(kept?.detail).toMatch(/\/dev\.json\.cut-short, a checkpoint cut short that a strata recover stopped before it ended had kept aside, is now \S*\/dev\.json\.cut-short\.\d{4}-\d\d-\d\dT[\d-]+Z: \S*\/dev\.json reads/);
    expect(steps.map((step) => step.action)).not.toContain("restored checkpoint");
    expect(readFileSync(path.join(stacks, "dev.json"), "utf8")).toBe(good);
    const aside = readdirSync(stacks).filter((name) => name.includes("cut-short"));
    expect(aside).toHaveLength(1);
    expect(readFileSync(path.join(stacks, aside[0] as string), "utf8")).toBe("{ cut off");
  }, 30_000);

  it("plain: a checkpoint kept aside by a stopped recover is not put back over JSON Pulumi cannot read (a newer CLI's state, with its byte copy among those recover tries, as Pulumi keeps them; or a copy recover was trying)", async () => {
    const { options, stacks } = stackWritten("plain");
    const newer = JSON.stringify({ version: 99, checkpoint: { note: "a newer CLI wrote this" } });
    const history = keptDir(stacks, "history");
    mkdirSync(history, { recursive: true });
    writeFileSync(path.join(history, "dev-1.checkpoint.json"), newer);
    writeFileSync(path.join(stacks, "dev.json.cut-short"), "{ cut off");
    writeFileSync(path.join(stacks, "dev.json"), newer);
    await expect(recoverStack(options)).rejects.toThrow(/still cannot be read[\s\S]*\(strata recover had done this before: kept checkpoint: \S*\/dev\.json\.cut-short, .* is now \S*\/dev\.json\.cut-short\.[\dT-]+Z: \S*\/dev\.json is not cut short/);
    expect(readFileSync(path.join(stacks, "dev.json"), "utf8")).toBe(newer);
  }, 30_000);

  it("a checkpoint recover cannot read at all (here a folder) is not judged, and left as it is", async () => {
    const { options, stacks } = stackWritten("plain");
    rmSync(path.join(stacks, "dev.json"));
    mkdirSync(path.join(stacks, "dev.json"));
    await expect(recoverStack(options)).rejects.toThrow(/strata recover could not read \S*\/dev\.json itself, so it did not judge whether a copy should replace it, and left it as it is/);
    expect(readdirSync(path.join(stacks, "dev.json"))).toEqual([]);
    expect(readdirSync(stacks).filter((name) => /cut-short|restoring/.test(name))).toEqual([]);
  }, 30_000);

  it("zstd: no plain backup is written over it (Pulumi would read that one, maybe from before the switch): it stops, the stack left as it was", async () => {
    const { options, stacks } = stackWritten("zstd");
    expect(readdirSync(stacks).sort()).toEqual(expect.arrayContaining(["dev.json.bak", "dev.json.zst"]));
    writeFileSync(path.join(stacks, "dev.json.zst"), "not zstd");
    const before = readdirSync(stacks).sort();
    await expect(recoverStack(options)).rejects.toThrow(/the stack dev still cannot be read:[\s\S]*restores a checkpoint kept as plain JSON only; this one is compressed[\s\S]*fix: by hand, put back the copy Pulumi kept before its last write \(\S*\/dev\.json\.zst\.bak\), or the newest readable one in \S*\.pulumi\/backups\/strata\/dev/);
    expect(readdirSync(stacks).sort()).toEqual(before);
  }, 30_000);

  it.each([["dev.json.gz", gzipSync("{}")], ["dev.json.zst", zstdCompressSync("{}")]])("plain, with an older %s beside it: no restore either (which form Pulumi reads is its own to say)", async (older, bytes) => {
    const { options, stacks } = stackWritten("plain");
    // Older than dev.json, so Pulumi reads dev.json, which is cut off.
    writeFileSync(path.join(stacks, older), bytes);
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(path.join(stacks, older), hourAgo, hourAgo);
    writeFileSync(path.join(stacks, "dev.json"), "{ cut off");
    const before = readdirSync(stacks).sort();
    const refused = recoverStack(options);
    await expect(refused).rejects.toThrow(/still cannot be read/);
    expect(readdirSync(stacks).sort()).toEqual(before);
    expect(readFileSync(path.join(stacks, "dev.json"), "utf8")).toBe("{ cut off");
  }, 30_000);
});

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ownerStore, psql } from "../../src/engine/lock-owner.js";
import { fileLocks, type HeldStackLock, holdStackLock, layoutVersion, lockTempName, type LockPlace, postgresKeyPrefix, postgresTable, type StackLock, StackLockRefused, stackLockDir, takeLock, takeLockWaiting, withStackLock } from "../../src/engine/stack-lock.js";

let backendDir: string;
let backendUrl: string;
const project = "strata";
const stack = "dev";
const options = (): Parameters<typeof holdStackLock>[0] => ({ backendUrl, project, stack, env: {}, purpose: "strata ci-clean" });
const lockDir = (): string => path.join(backendDir, ".pulumi/locks/organization", project, stack);
const locksOnDisk = (): string[] => (existsSync(lockDir()) ? readdirSync(lockDir()) : []);
const ownerRecords = (): Promise<unknown[]> => (ownerStore(backendUrl, {}) as NonNullable<ReturnType<typeof ownerStore>>).list(project, stack);

beforeEach(() => {
  backendDir = mkdtempSync(path.join(tmpdir(), "strata-stack-lock-"));
  backendUrl = `file://${backendDir}`;
  mkdirSync(path.join(backendDir, ".pulumi"), { recursive: true });
  writeFileSync(path.join(backendDir, ".pulumi/meta.yaml"), "version: 1\n");
  // The channel's checkpoint: a lock is taken only in the backend the stack is in.
  mkdirSync(path.join(backendDir, ".pulumi/stacks", project), { recursive: true });
  writeFileSync(path.join(backendDir, ".pulumi/stacks", project, `${stack}.json`), "{}");
});
afterEach(() => rmSync(backendDir, { recursive: true, force: true }));

describe("a stack's lock, taken as Pulumi's DIY backend takes it", () => {
  it("writes <id>.json where Pulumi looks, with what Pulumi reads (pid, user, host, time), and an owner record first; release removes both", async () => {
    const before = Date.now();
    const held = await holdStackLock(options());
    expect(held.recordFailed).toBeUndefined();
    const files = locksOnDisk();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^[0-9a-f-]{36}\.json$/);
    expect(held.where).toBe(path.join(lockDir(), files[0] as string));
    const content = JSON.parse(readFileSync(held.where, "utf8")) as { pid: number; username: string; hostname: string; timestamp: string };
    expect(content.pid).toBe(process.pid);
    expect(content.hostname).toBe(hostname());
    expect(typeof content.username).toBe("string");
    expect(Date.parse(content.timestamp)).toBeGreaterThanOrEqual(before - 1000);
    // What strata recover matches the lock against: a record of this very process.
    expect(await ownerRecords()).toEqual([expect.objectContaining({ project, stack, pid: process.pid, host: hostname() })]);
    await held.release();
    expect(locksOnDisk()).toEqual([]);
    expect(await ownerRecords()).toEqual([]);
    await held.release();
  });

  it("refuses while another holds it (a lock file, or one still being written), naming the holder, and writes nothing", async () => {
    mkdirSync(lockDir(), { recursive: true });
    writeFileSync(path.join(lockDir(), "1b4e28ba-2fa1-11d2-883f-0016d3cca427.json"), JSON.stringify({ pid: 4242, username: "ci", hostname: "runner-7", timestamp: "2026-12-06T10:00:00Z" }));
    const refusal = holdStackLock(options());
    await expect(refusal).rejects.toThrow(StackLockRefused);
    await expect(holdStackLock(options())).rejects.toThrow(/^strata ci-clean: stack dev is locked by another run, so nothing was changed: .*1b4e28ba-2fa1-11d2-883f-0016d3cca427\.json: ci@runner-7 \(pid 4242\) at 2026-12-06T10:00:00Z\. fix: wait for that run to end/);
    expect(locksOnDisk()).toEqual(["1b4e28ba-2fa1-11d2-883f-0016d3cca427.json"]);
    expect(await ownerRecords()).toEqual([]);
    rmSync(path.join(lockDir(), "1b4e28ba-2fa1-11d2-883f-0016d3cca427.json"));
    writeFileSync(path.join(lockDir(), "9a.json.5f3e.tmp"), "");
    await expect(holdStackLock(options())).rejects.toThrow(/9a\.json\.5f3e\.tmp \(it names no owner: a lock being written, or one cut short\)/);
    expect(locksOnDisk()).toEqual(["9a.json.5f3e.tmp"]);
  });

  it("gives up, removing its own lock and record, when another lock appeared between its first look and its write", async () => {
    const written: string[] = [];
    const removed: string[] = [];
    let looks = 0;
    const other: StackLock = { where: "other.json", pid: 7, hostname: "runner-2", username: "ci", timestamp: "2026-12-06T10:00:00Z" };
    const place: LockPlace = {
      describe: "a place in memory",
      list: async () => (looks++ === 0 ? [] : [other, ...written.filter((id) => !removed.includes(id)).map((id): StackLock => ({ where: `${id}.json`, pid: process.pid, hostname: hostname() }))]),
      write: async (id) => (written.push(id), `${id}.json`),
      remove: async (id) => void removed.push(id),
    };
    await expect(takeLock(place, options())).rejects.toThrow(/stack dev is locked by another run, so nothing was changed: other\.json: ci@runner-2 \(pid 7\)/);
    expect(written).toHaveLength(1);
    expect(removed).toEqual(written);
    expect(looks).toBe(2);
    expect(await ownerRecords()).toEqual([]);
  });

  it("refuses on a backend whose lock folder it does not know: an older layout, none written, or neither file nor PostgreSQL", async () => {
    writeFileSync(path.join(backendDir, ".pulumi/meta.yaml"), "version: 0\n");
    await expect(holdStackLock(options())).rejects.toThrow(/has the layout before project-scoped stacks \(no \.pulumi\/meta\.yaml, or version 0\), and Strata knows where Pulumi keeps locks only in version 1.*nothing was changed/);
    rmSync(path.join(backendDir, ".pulumi/meta.yaml"));
    await expect(holdStackLock(options())).rejects.toThrow(/the layout before project-scoped stacks/);
    writeFileSync(path.join(backendDir, ".pulumi/meta.yaml"), "version: 2\n");
    await expect(holdStackLock(options())).rejects.toThrow(/layout version 2/);
    expect(existsSync(path.join(backendDir, ".pulumi/locks"))).toBe(false);
    await expect(holdStackLock({ ...options(), backendUrl: "s3://bucket/state" })).rejects.toThrow(/on the backend s3:\/\/bucket\/state: Strata takes locks on file and PostgreSQL backends only; nothing was changed/);
    await expect(holdStackLock({ ...options(), backendUrl: undefined })).rejects.toThrow(/on the backend \(none set\)/);
    // A file URL with a host (a relative path written as one) is no folder Strata can read: said, not a crash.
    await expect(holdStackLock({ ...options(), backendUrl: "file://state/dir" })).rejects.toThrow(/PULUMI_BACKEND_URL file:\/\/state\/dir is not a file URL Strata can read .*fix: name the backend folder by its absolute path/);
  });

  it("withStackLock holds it while the work runs and releases it when the work fails", async () => {
    const seen = await withStackLock(options(), async () => locksOnDisk().length);
    expect(seen).toEqual({ value: 1 });
    expect(locksOnDisk()).toEqual([]);
    await expect(withStackLock(options(), async () => {
      expect(locksOnDisk()).toHaveLength(1);
      throw new Error("registry answered 503");
    })).rejects.toThrow("registry answered 503");
    expect(locksOnDisk()).toEqual([]);
    expect(await ownerRecords()).toEqual([]);
  });

  it("looks before it writes: a held lock means no owner record and no lock of its own, not even for a moment", async () => {
    const other: StackLock = { where: "other.json", pid: 7, hostname: "runner-2" };
    const calls: string[] = [];
    const place: LockPlace = {
      describe: "a place in memory",
      list: async () => (calls.push("list"), [other]),
      write: async (id) => (calls.push("write"), `${id}.json`),
      remove: async () => void calls.push("remove"),
    };
    await expect(takeLock(place, options())).rejects.toThrow(/locked by another run/);
    expect(calls).toEqual(["list"]);
    expect(await ownerRecords()).toEqual([]);
  });

  it("writes the owner record before the lock, so recover never meets the lock without it", async () => {
    let recordsAtWrite: unknown[] | undefined;
    const place: LockPlace = {
      describe: "a place in memory",
      list: async () => [],
      write: async (id) => {
        recordsAtWrite = await ownerRecords();
        return `${id}.json`;
      },
      remove: async () => undefined,
    };
    const held = await takeLock(place, options());
    expect(recordsAtWrite).toEqual([expect.objectContaining({ pid: process.pid })]);
    await held.release();
  });

  it("says so when its own lock cannot be removed: after giving up (never 'nothing was changed' alone), and after the work (the work's result kept)", async () => {
    const other: StackLock = { where: "other.json", pid: 7, hostname: "runner-2" };
    let looks = 0;
    const stuck: LockPlace = {
      describe: "a place in memory",
      list: async () => (looks++ === 0 ? [] : [other]),
      write: async (id) => `${id}.json`,
      remove: async () => {
        throw new Error("psql: connection refused");
      },
    };
    await expect(takeLock(stuck, options())).rejects.toThrow(/^strata ci-clean: stack dev is locked by another run: other\.json: \?@runner-2 \(pid 7\) at an unknown time; and this command's own lock stays: strata ci-clean: could not release stack dev's lock .*\(psql: connection refused\)\. fix: scripts\/strata recover --stack dev/s);

    // After the work: its value comes back with why the lock stays; a failed work's own error is what is thrown, the release's told.
    const stuckLock = async (): Promise<HeldStackLock> => ({ where: "dev/lock.json", release: async () => {
      throw new StackLockRefused("strata ci-clean: could not release stack dev's lock dev/lock.json (psql: connection refused)");
    } });
    expect(await withStackLock(options(), async () => "deleted 3", { hold: stuckLock })).toEqual({ value: "deleted 3", releaseFailed: "strata ci-clean: could not release stack dev's lock dev/lock.json (psql: connection refused)" });
    const notes: string[] = [];
    await expect(withStackLock(options(), async () => {
      throw new Error("registry answered 503");
    }, { note: (text) => notes.push(text), hold: stuckLock })).rejects.toThrow("registry answered 503");
    expect(notes).toEqual(["strata ci-clean: could not release stack dev's lock dev/lock.json (psql: connection refused)\n"]);
  });

  it("a SIGTERM while the work runs: the work stops before its next request, the lock goes only after it has ended, and the signal is remembered", async () => {
    vi.resetModules();
    const fresh = await import("../../src/engine/stack-lock.js");
    const interruption = await import("../../src/engine/interruption.js");
    const sent: string[] = [];
    const notes: string[] = [];
    let locksWhenEnded = -1;
    await expect(fresh.withStackLock(options(), async (stop) => {
      try {
        for (const request of ["delete 1", "delete 2", "delete 3"]) {
          stop.throwIfAborted();
          sent.push(request);
          if (request === "delete 1") process.emit("SIGTERM", "SIGTERM");
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      } finally {
        locksWhenEnded = locksOnDisk().length;
      }
    }, { note: (text) => notes.push(text) })).rejects.toThrow(/^strata ci-clean: stopped by SIGTERM: no delete was sent after the one in flight/);
    expect(notes).toEqual([expect.stringMatching(/^strata ci-clean: SIGTERM: stopping once the request in flight has ended, then giving up stack dev's lock \(again to end now/)]);
    expect(sent).toEqual(["delete 1"]);
    expect(locksWhenEnded).toBe(1);
    expect(locksOnDisk()).toEqual([]);
    expect(interruption.interruptedBy()).toBe("SIGTERM");
    expect(process.listenerCount("SIGTERM")).toBe(0);
  });

  it("--wait: tries again while another holds it, and takes it once that run has ended; refuses after the wait, saying so", async () => {
    mkdirSync(lockDir(), { recursive: true });
    const otherLock = path.join(lockDir(), "1b4e28ba-2fa1-11d2-883f-0016d3cca427.json");
    writeFileSync(otherLock, JSON.stringify({ pid: 4242, username: "ci", hostname: "runner-7", timestamp: "2026-12-06T10:00:00Z" }));
    setTimeout(() => rmSync(otherLock), 300);
    const held = await holdStackLock({ ...options(), waitMs: 10_000, retryMs: 50 });
    expect(locksOnDisk()).toHaveLength(1);
    await held.release();
    writeFileSync(otherLock, "{}");
    const started = Date.now();
    await expect(holdStackLock({ ...options(), waitMs: 400, retryMs: 50 })).rejects.toThrow(/stack dev is locked by another run.*\(waited 0 s\)$/s);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    // Any other refusal (here the database failing in the first look) is not waited out.
    let looks = 0;
    const failing: LockPlace = {
      describe: "a place in memory",
      list: async () => {
        looks++;
        throw new StackLockRefused("strata ci-clean: cannot read or write stack dev's lock in the PostgreSQL backend (connection refused)");
      },
      write: async (id) => `${id}.json`,
      remove: async () => undefined,
    };
    await expect(takeLockWaiting(failing, { ...options(), waitMs: 10_000, retryMs: 50 })).rejects.toThrow(/connection refused\)$/);
    expect(looks).toBe(1);
  });

  it("a second signal ends the process at once, the lock left for strata recover", async () => {
    const killed: string[] = [];
    let release: () => void = () => undefined;
    const work = withStackLock(options(), async (stop) => {
      process.emit("SIGINT", "SIGINT");
      expect(stop.aborted).toBe(true);
      process.emit("SIGINT", "SIGINT");
      await new Promise<void>((resolve) => (release = resolve));
      stop.throwIfAborted();
    }, { kill: (signal) => killed.push(signal) });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(killed).toEqual(["SIGINT"]);
    expect(process.listenerCount("SIGINT")).toBe(0);
    // (Here the process lives on, as a test's; what is left of the work ends and releases.)
    release();
    await expect(work).rejects.toThrow(/stopped by SIGINT/);
  });

  it("a failure after which the lock must stay (a delete that may still land) keeps it, saying why and naming recover", async () => {
    await expect(withStackLock(options(), async () => {
      throw new Error("DELETE dev/app@sha256:ab at 127.0.0.1:5000: no answer within 20 s");
    }, { keepLockOn: () => true })).rejects.toThrow(/no answer within 20 s; the registry may still carry it out, so stack dev's lock stays \(.*\.json\) and no run of the channel starts meanwhile\. fix: once the registry answers again \(strata ci-clean --dry-run reads it\), scripts\/strata recover --stack dev releases the lock/);
    expect(locksOnDisk()).toHaveLength(1);
    expect(await ownerRecords()).toEqual([expect.objectContaining({ pid: process.pid })]);
    // Without an owner record, recover needs --force, and the message says so.
    const unrecorded = async (): Promise<HeldStackLock> => ({ where: "dev/lock.json", recordFailed: "read-only", release: async () => undefined });
    await expect(withStackLock(options(), async () => {
      throw new Error("no answer within 20 s");
    }, { keepLockOn: () => true, hold: unrecorded })).rejects.toThrow(/scripts\/strata recover --stack dev --force \(no owner record was written\) releases the lock/);
  });

  it("a lock write that fails leaves neither a lock nor an owner record", async () => {
    const removed: string[] = [];
    const place: LockPlace = {
      describe: "a place in memory",
      list: async () => [],
      write: async () => {
        throw new Error("ENOSPC: no space left on device");
      },
      remove: async (id) => void removed.push(id),
    };
    await expect(takeLock(place, options())).rejects.toThrow("ENOSPC");
    expect(removed).toHaveLength(1);
    expect(await ownerRecords()).toEqual([]);
  });

  it("refuses a backend the channel's stack is not in (a lock there holds off no run), and a backend folder that is not there", async () => {
    rmSync(path.join(backendDir, ".pulumi/stacks", project, `${stack}.json`));
    await expect(holdStackLock(options())).rejects.toThrow(/stack dev \(project strata\) is not in the backend .*, so a lock taken there would hold off no run of the channel; nothing was changed\. fix: run it with PULUMI_BACKEND_URL naming the backend the channel's runs use/);
    for (const suffix of [".json.gz", ".json.zst"]) {
      writeFileSync(path.join(backendDir, ".pulumi/stacks", project, `${stack}${suffix}`), "");
      await (await holdStackLock(options())).release();
      rmSync(path.join(backendDir, ".pulumi/stacks", project, `${stack}${suffix}`));
    }
    await expect(holdStackLock({ ...options(), backendUrl: `file://${backendDir}/missing` })).rejects.toThrow(/the backend folder .*\/missing does not exist; nothing was changed/);
    expect(locksOnDisk()).toEqual([]);
  });

  it("counts what Pulumi's listing counts: any file but a metadata sidecar; its own lock's temp file is named as Pulumi's, which recover knows", async () => {
    mkdirSync(lockDir(), { recursive: true });
    writeFileSync(path.join(lockDir(), "stray"), "");
    await expect(holdStackLock(options())).rejects.toThrow(/stray \(it names no owner/);
    rmSync(path.join(lockDir(), "stray"));
    writeFileSync(path.join(lockDir(), "x.json.attrs"), "{}");
    const held = await holdStackLock(options());
    expect(locksOnDisk().sort()).toEqual([path.basename(held.where), "x.json.attrs"].sort());
    await held.release();
    // The temp file: a write cut short leaves one, which recover's reader reports as a lock being written (recover removes such a one once settled).
    rmSync(path.join(lockDir(), "x.json.attrs"));
    const cutShort = lockTempName(path.join(lockDir(), "5f0b6b1e-1d2c-4c39-9a4b-0a3f3e2a1b7c.json"));
    writeFileSync(cutShort, '{"pid":');
    expect(fileLocks(lockDir())).toEqual([expect.objectContaining({ where: cutShort, tempAgeMs: expect.any(Number) })]);
  });

  it("reads a backend's layout version, and a PostgreSQL URL's key prefix and table", () => {
    expect(layoutVersion("version: 1\n")).toBe("1");
    expect(layoutVersion(undefined)).toBe("0");
    expect(layoutVersion("versions: 1\n")).toBe("unknown");
    expect(postgresKeyPrefix("postgres://strata@127.0.0.1:5432/strata?sslmode=disable")).toBe("strata/");
    expect(postgresKeyPrefix("postgres://127.0.0.1:5432")).toBe("");
    expect(postgresKeyPrefix("postgres://h/state%20db")).toBe("state db/");
    expect(postgresTable("postgres://h/db")).toBe("pulumi_state");
    expect(postgresTable("postgres://h/db?table=state_v2")).toBe("state_v2");
    expect(postgresTable("postgres://h/db?table=x;drop")).toBeUndefined();
    expect(stackLockDir("strata", "dev")).toBe(".pulumi/locks/organization/strata/dev");
  });
});

describe("psql gets a backend URL's password in its environment, never on its command line", () => {
  it("moves the password (decoded) to PGPASSWORD and leaves the rest of the URL as given, but the table", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "strata-psql-args-"));
    try {
      const seen = path.join(dir, "seen");
      writeFileSync(path.join(dir, "psql"), `#!/bin/bash\nprintf '%s\\n' "$@" > '${seen}'\necho "PGPASSWORD=$PGPASSWORD" >> '${seen}'\ncat > /dev/null\n`, { mode: 0o755 });
      const result = await psql("postgres://strata:s3cr%2Ft@127.0.0.1:5432/pulumi?sslmode=disable&table=pulumi_state", "select 1", { stack: "dev" }, { PATH: `${dir}:${process.env.PATH ?? ""}` });
      expect(result.code).toBe(0);
      const lines = readFileSync(seen, "utf8").split("\n");
      expect(lines).toContain("postgres://strata@127.0.0.1:5432/pulumi?sslmode=disable");
      expect(lines.filter((line) => line.includes("s3cr"))).toEqual(["PGPASSWORD=s3cr/t"]);
      // libpq's `password` parameter leaves the command line too.
      await psql("postgres://strata@127.0.0.1:5432/pulumi?password=qu%26ery&sslmode=disable", "select 1", {}, { PATH: `${dir}:${process.env.PATH ?? ""}` });
      const queryLines = readFileSync(seen, "utf8").split("\n");
      expect(queryLines).toContain("postgres://strata@127.0.0.1:5432/pulumi?sslmode=disable");
      expect(queryLines.filter((line) => line.includes("qu"))).toEqual(["PGPASSWORD=qu&ery"]);
      // As libpq reads it: a `+` is itself, the last of two, and the other parameters as they were written.
      await psql("postgres://strata@127.0.0.1:5432/pulumi?password=first&options=-c%20x&password=a+b%20c&table=t", "select 1", {}, { PATH: `${dir}:${process.env.PATH ?? ""}` });
      const libpqLines = readFileSync(seen, "utf8").split("\n");
      expect(libpqLines).toContain("postgres://strata@127.0.0.1:5432/pulumi?options=-c%20x");
      expect(libpqLines.filter((line) => line.startsWith("PGPASSWORD="))).toEqual(["PGPASSWORD=a+b c"]);
      // Without a password, none is set.
      await psql("postgres://strata@127.0.0.1:5432/pulumi", "select 1", {}, { PATH: `${dir}:${process.env.PATH ?? ""}`, PGPASSWORD: "" });
      expect(readFileSync(seen, "utf8")).toMatch(/^PGPASSWORD=$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

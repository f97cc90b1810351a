import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ownerStore } from "../../src/engine/lock-owner.js";
import { holdStackLock, layoutVersion, type LockPlace, postgresKeyPrefix, postgresTable, type StackLock, StackLockRefused, stackLockDir, takeLock, withStackLock } from "../../src/engine/stack-lock.js";

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
    await expect(holdStackLock(options())).rejects.toThrow(/layout version 0 \(\.pulumi\/meta\.yaml\), and Strata knows where Pulumi keeps locks only in version 1.*nothing was changed/);
    rmSync(path.join(backendDir, ".pulumi/meta.yaml"));
    await expect(holdStackLock(options())).rejects.toThrow(/layout version 0/);
    writeFileSync(path.join(backendDir, ".pulumi/meta.yaml"), "version: 2\n");
    await expect(holdStackLock(options())).rejects.toThrow(/layout version 2/);
    expect(existsSync(path.join(backendDir, ".pulumi/locks"))).toBe(false);
    await expect(holdStackLock({ ...options(), backendUrl: "s3://bucket/state" })).rejects.toThrow(/on the backend s3:\/\/bucket\/state: Strata takes locks on file and PostgreSQL backends only; nothing was changed/);
    await expect(holdStackLock({ ...options(), backendUrl: undefined })).rejects.toThrow(/on the backend \(none set\)/);
  });

  it("withStackLock holds it while the work runs and releases it when the work fails", async () => {
    const seen = await withStackLock(options(), async () => locksOnDisk().length);
    expect(seen).toBe(1);
    expect(locksOnDisk()).toEqual([]);
    await expect(withStackLock(options(), async () => {
      expect(locksOnDisk()).toHaveLength(1);
      throw new Error("registry answered 503");
    })).rejects.toThrow("registry answered 503");
    expect(locksOnDisk()).toEqual([]);
    expect(await ownerRecords()).toEqual([]);
  });

  it("reads a backend's layout version, and a PostgreSQL URL's key prefix and table", () => {
    expect(layoutVersion("version: 1\n")).toBe("1");
    expect(layoutVersion(undefined)).toBe("0");
    expect(layoutVersion("versions: 1\n")).toBe("unknown");
    expect(postgresKeyPrefix("postgres://strata@127.0.0.1:5432/strata?sslmode=disable")).toBe("strata/");
    expect(postgresKeyPrefix("postgres://127.0.0.1:5432")).toBe("");
    expect(postgresTable("postgres://h/db")).toBe("pulumi_state");
    expect(postgresTable("postgres://h/db?table=state_v2")).toBe("state_v2");
    expect(postgresTable("postgres://h/db?table=x;drop")).toBeUndefined();
    expect(stackLockDir("strata", "dev")).toBe(".pulumi/locks/organization/strata/dev");
  });
});

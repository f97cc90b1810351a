/** Which Docker engine a CPU-sampled run builds on, when several run on the machine (bench/cpu-sampler.ts). */
import { describe, expect, it } from "vitest";
import { classify, CpuAccount, engineServing, type ProcessIdentity, type ProcStat } from "../../bench/cpu-sampler.js";

const table = new Map<number, ProcessIdentity>();
const add = (pid: number, ppid: number, comm: string, cmdline: string[] = []): void => { table.set(pid, { pid, ppid, comm, cmdline }); };
// The machine's engine and its containerd.
add(100, 1, "dockerd", ["dockerd", "--host", "unix:///var/run/docker.sock"]);
add(101, 100, "containerd", ["containerd", "--config", "/var/run/docker/containerd/containerd.toml"]);
add(102, 100, "exe", ["/proc/self/exe", "set-ipv6"]);
// A second engine (scripts/engines.sh main), its own containerd and a build step's runc.
add(200, 1, "dockerd", ["/c/dockerd-v2/bin/dockerd", "--data-root", "/s/data", "--host", "unix:///s/dockerd/docker.sock", "--bridge", "stDabc29"]);
add(201, 200, "containerd", ["containerd", "--config", "/s/dockerd/x/containerd/containerd.toml"]);
add(202, 200, "runc", ["runc", "run", "abc"]);
// A pool engine with the --host=… form.
add(300, 1, "dockerd", ["dockerd", "--host=unix:///s/engines/1/docker.sock"]);

describe("the engine a run builds on", () => {
  it("is the dockerd whose command line names DOCKER_HOST, in either --host form; unset: the default socket, /var/run being /run", () => {
    expect(engineServing(table.values(), "unix:///s/dockerd/docker.sock")).toBe(200);
    expect(engineServing(table.values(), "unix:///s/engines/1/docker.sock")).toBe(300);
    expect(engineServing(table.values(), undefined)).toBe(100);
    expect(engineServing(table.values(), "unix:///run/docker.sock")).toBe(100);
    expect(engineServing([{ pid: 7, ppid: 1, comm: "dockerd", cmdline: ["dockerd"] }], undefined)).toBe(7);
  });
  it("is none when no dockerd here says it listens there (a remote engine)", () => {
    expect(engineServing(table.values(), "tcp://10.0.0.9:2375")).toBeUndefined();
  });
  it("another engine, its containerd and its children are other processes, not the engine's", () => {
    const of = (pid: number, unseen = false): string => classify(pid, table, new Set(), unseen, undefined, 200);
    expect([of(200), of(201), of(202), of(200, true)]).toEqual(["dockerd", "containerd", "engine: runc and shims", "engine: children reaped unseen"]);
    expect([of(100), of(101), of(102), of(100, true), of(300)]).toEqual(["other processes", "other processes", "other processes", "other processes", "other processes"]);
  });
  it("the accounting counts only the measured engine's CPU as the engine's", () => {
    const stat = (pid: number, ticks: number): ProcStat => ({ pid, comm: (table.get(pid) as ProcessIdentity).comm, ppid: (table.get(pid) as ProcessIdentity).ppid, pgrp: pid, utime: ticks, stime: 0, cutime: 0, cstime: 0, starttime: pid });
    const account = new CpuAccount(new Set(), (pid) => [...((table.get(pid) as ProcessIdentity).cmdline)]);
    account.engine = 200;
    account.add({ processes: new Map([[100, stat(100, 0)], [200, stat(200, 0)]]), machine: { busy: 0, total: 0 } });
    account.add({ processes: new Map([[100, stat(100, 30)], [200, stat(200, 70)]]), machine: { busy: 100, total: 200 } });
    const { byComponent } = account.result(100);
    expect(byComponent.dockerd).toBeCloseTo(0.7);
    expect(byComponent["other processes"]).toBeCloseTo(0.3);
  });
});

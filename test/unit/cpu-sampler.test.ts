/** The bench's CPU sampler: /proc parsing, the classification into components, and the accounting of processes that exit. */
import { describe, expect, it } from "vitest";
import { cgroupSeconds, classify, COMPONENTS, CpuAccount, type CpuReport, cpuRows, medianReport, parseMachineStat, parseStat, type ProcessIdentity, type ProcStat, serviceCgroup, summarize, type Sweep } from "../../bench/cpu-sampler.js";

/** A /proc/<pid>/stat line with the given fields (the rest zeros). */
function statLine(pid: number, comm: string, ppid: number, times: { utime?: number; stime?: number; cutime?: number; cstime?: number; starttime?: number } = {}): string {
  const fields = Array.from({ length: 50 }, () => "0");
  const set = (n: number, value: number | string): void => { fields[n - 3] = String(value); };
  set(3, "S");
  set(4, ppid);
  set(5, pid);
  set(14, times.utime ?? 0);
  set(15, times.stime ?? 0);
  set(16, times.cutime ?? 0);
  set(17, times.cstime ?? 0);
  set(22, times.starttime ?? 1000 + pid);
  return `${pid} (${comm}) ${fields.join(" ")}`;
}

describe("parsing /proc", () => {
  it("reads a stat line whose name holds spaces and parentheses, counting fields from the last )", () => {
    const stat = parseStat(statLine(4242, "weird) (name", 17, { utime: 120, stime: 30, cutime: 400, cstime: 50, starttime: 98765 }));
    expect(stat).toEqual({ pid: 4242, comm: "weird) (name", ppid: 17, pgrp: 4242, utime: 120, stime: 30, cutime: 400, cstime: 50, starttime: 98765 });
  });
  it("reads a real line of the kernel's format", () => {
    const line = "1234 (dockerd) S 1 1234 1234 0 -1 4194560 123456 0 12 0 8612 2310 977 344 20 0 42 0 5123 2063224832 21420 18446744073709551615 1 1 0 0 0 0 2143420159 0 2143420159 0 0 0 17 1 0 0 0 0 0";
    expect(parseStat(line)).toMatchObject({ pid: 1234, comm: "dockerd", ppid: 1, pgrp: 1234, utime: 8612, stime: 2310, cutime: 977, cstime: 344, starttime: 5123 });
  });
  it("refuses what is not a stat line", () => {
    expect(() => parseStat("garbage")).toThrow(/not a \/proc\/<pid>\/stat line/);
  });
  it("the machine's busy time leaves out idle, iowait and steal (another guest's time), and counts guest time once", () => {
    expect(parseMachineStat("cpu  100 5 50 1000 20 3 2 1 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")).toEqual({ busy: 160, total: 1181 });
  });
});

describe("which component a process is", () => {
  const table = new Map<number, ProcessIdentity>();
  const add = (pid: number, ppid: number, comm: string, cmdline: string[] = []): void => { table.set(pid, { pid, ppid, comm, cmdline }); };
  add(1, 0, "process_api", ["/process_api"]);
  add(2, 0, "kthreadd");
  add(50, 2, "kworker/0:1");
  add(100, 1, "dockerd", ["dockerd", "--host", "unix:///var/run/docker.sock"]);
  add(101, 100, "containerd", ["containerd", "--config", "/var/run/docker/containerd/containerd.toml"]);
  add(102, 1, "containerd-shim", ["containerd-shim-runc-v2", "-namespace", "moby"]);
  add(103, 102, "sh", ["sh"]);
  add(110, 100, "exe", ["/proc/self/exe", "set-ipv6"]);
  add(111, 100, "runc", ["runc", "run", "abc"]);
  add(112, 111, "runc:[2:INIT]", ["runc", "init"]);
  add(113, 111, "exe", ["libnetwork-setkey"]);
  add(114, 111, "test", ["/bin/sh", "-c", "test -s /etc/strata/1.0.txt"]);
  add(200, 1, "docker-registry", ["docker-registry", "serve", "/s/config.yml"]);
  add(300, 1000, "node", ["node", "/w/bin/strata.js", "up", "--stack", "bench"]);
  add(301, 300, "pulumi", ["/root/.cache/strata/pulumi-3/pulumi", "up"]);
  add(302, 301, "pulumi-language", ["/root/.cache/strata/pulumi-language-nodejs", "127.0.0.1:1"]);
  add(303, 302, "node", ["node", "/x/run.js", "/w/dist/index.js"]);
  add(304, 301, "pulumi-resource", ["/root/.cache/strata/pulumi-resource-docker-4.11.2/pulumi-resource-docker", "127.0.0.1:1"]);
  add(305, 301, "node", ["node", "/w/provider/../dist/src/pulumi/provider/main.js", "127.0.0.1:1"]);
  add(400, 1, "buildkitd", ["/c/bench-tools/buildkitd-v0.34.2", "--root", "/s/root"]);
  add(401, 400, "buildkit-runc", ["buildkit-runc", "run"]);
  add(402, 1000, "buildx-v0.38.2", ["/c/bench-tools/buildx-v0.38.2", "bake"]);
  add(500, 300, "docker", ["docker", "image", "ls"]);
  // Another session's run, outside the measured command's tree.
  add(600, 1, "pulumi", ["pulumi", "preview"]);
  add(601, 600, "pulumi-resource", ["/x/pulumi-resource-docker"]);
  add(999, 1, "node", ["node", "/w/dist/bench/run.js"]);
  add(1000, 999, "node", ["node", "/w/dist/bench/cpu-run.js"]);
  add(1001, 1, "bash", ["bash"]);
  const bench = new Set([999, 1000]);
  const of = (pid: number, unseen = false): string => classify(pid, table, bench, unseen, 1000);

  it("the engine: dockerd, its re-executed helpers, runc and shims, the build steps, containerd", () => {
    expect([of(100), of(110), of(113), of(111), of(112), of(102), of(114), of(103), of(101)]).toEqual([
      "dockerd", "engine: re-executed helpers (exe)", "engine: re-executed helpers (exe)", "engine: runc and shims", "engine: runc and shims",
      // a shim reparented to pid 1 is still the engine's by its name
      "engine: runc and shims", "engine: build steps (RUN processes)", "engine: build steps (RUN processes)", "containerd",
    ]);
  });
  it("Pulumi's processes, by name and parent chain: the engine, the language host and the program it runs, each plugin, the CLI", () => {
    expect([of(301), of(302), of(303), of(304), of(305), of(300)]).toEqual([
      "pulumi engine", "language host (Node program)", "language host (Node program)", "plugin: pulumi-resource-docker", "plugin: Strata's provider", "strata CLI",
    ]);
  });
  it("the registry, bake's BuildKit and its children, buildx, the docker CLI, kernel threads, the bench, the rest", () => {
    expect([of(200), of(400), of(401), of(402), of(500), of(50), of(999), of(1000), of(1001)]).toEqual([
      "registry", "buildkitd", "buildkitd: children (runc, RUN steps)", "buildx (bake client)", "docker CLI", "kernel threads", "the bench and the sampler", "the bench and the sampler", "other processes",
    ]);
  });
  it("another session's Pulumi engine and plugins, outside the measured command's tree, are other processes", () => {
    expect([of(600), of(601), of(600, true)]).toEqual(["other processes", "other processes", "other processes"]);
    expect(classify(301, table, bench)).toBe("other processes");
  });
  it("a child reaped unseen goes by its parent: the engine's children, the Pulumi engine's, buildkitd's", () => {
    expect([of(100, true), of(111, true), of(301, true), of(400, true), of(1000, true)]).toEqual([
      "engine: children reaped unseen", "engine: children reaped unseen", "pulumi engine", "buildkitd: children (runc, RUN steps)", "the bench and the sampler",
    ]);
  });
});

describe("the accounting across sweeps", () => {
  const stat = (pid: number, comm: string, ppid: number, times: Partial<ProcStat> = {}): ProcStat => ({ pid, comm, ppid, pgrp: pid, utime: 0, stime: 0, cutime: 0, cstime: 0, starttime: 1000 + pid, ...times });
  const sweepOf = (busy: number, ...processes: ProcStat[]): Sweep => ({ processes: new Map(processes.map((process) => [process.pid, process])), machine: { busy, total: busy * 2 } });
  const cmdlines: Record<number, string[]> = { 100: ["dockerd"], 111: ["runc", "run"], 112: ["runc", "run"] };
  const account = (): CpuAccount => new CpuAccount(new Set(), (pid) => cmdlines[pid] ?? []);

  it("counts from the first sweep, not what a process had spent before the run", () => {
    const cpu = account();
    cpu.add(sweepOf(0, stat(100, "dockerd", 1, { utime: 5000, stime: 1000, cutime: 7000 })));
    cpu.add(sweepOf(300, stat(100, "dockerd", 1, { utime: 5200, stime: 1100, cutime: 7000 })));
    const { byComponent, machineBusySeconds } = cpu.result(100);
    expect(byComponent.dockerd).toBe(3);
    expect(machineBusySeconds).toBe(3);
  });
  it("a child seen alive and then reaped counts once: its own samples, and only its unseen tail through the parent", () => {
    const cpu = account();
    cpu.add(sweepOf(0, stat(100, "dockerd", 1)));
    cpu.add(sweepOf(0, stat(100, "dockerd", 1, { utime: 10 }), stat(111, "runc", 100, { utime: 40, stime: 10 })));
    // runc exits after 60 ticks of its own (8 after its last sample): dockerd's children's time rises by 60.
    cpu.add(sweepOf(0, stat(100, "dockerd", 1, { utime: 20, cutime: 48, cstime: 12 })));
    const { byComponent } = cpu.result(100);
    expect(byComponent.dockerd).toBeCloseTo(0.2);
    expect(byComponent["engine: runc and shims"]).toBeCloseTo(0.5);
    expect(byComponent["engine: children reaped unseen"]).toBeCloseTo(0.1);
    expect(COMPONENTS.reduce((sum, component) => sum + byComponent[component], 0)).toBeCloseTo(0.8);
  });
  it("a child never seen (born and reaped between two sweeps) is counted through its parent's children's time", () => {
    const cpu = account();
    cpu.add(sweepOf(0, stat(100, "dockerd", 1)));
    cpu.add(sweepOf(0, stat(100, "dockerd", 1, { cutime: 70, cstime: 30 })));
    expect(cpu.result(100).byComponent["engine: children reaped unseen"]).toBeCloseTo(1);
  });
  it("a child read as a zombie in the same sweep its parent had already reaped it evens out over the run", () => {
    const cpu = account();
    cpu.add(sweepOf(0, stat(100, "dockerd", 1), stat(111, "runc", 100)));
    // The sweep read runc (a zombie, 50 ticks), then dockerd, which had reaped it in between.
    cpu.add(sweepOf(0, stat(100, "dockerd", 1, { cutime: 50 }), stat(111, "runc", 100, { utime: 50 })));
    cpu.add(sweepOf(0, stat(100, "dockerd", 1, { cutime: 50 })));
    const { byComponent } = cpu.result(100);
    expect(byComponent["engine: runc and shims"]).toBeCloseTo(0.5);
    expect(byComponent["engine: children reaped unseen"]).toBeCloseTo(0);
  });
  it("a child and its parent both gone within one interval: the child's seen time is not counted again through the grandparent", () => {
    const cpu = account();
    cpu.add(sweepOf(0, stat(100, "dockerd", 1)));
    cpu.add(sweepOf(0, stat(100, "dockerd", 1), stat(111, "runc", 100, { utime: 10 }), stat(114, "test", 111, { utime: 30 })));
    // test ends (35 ticks in all), runc reaps it and ends (12 of its own): dockerd's children's time rises by 47.
    cpu.add(sweepOf(0, stat(100, "dockerd", 1, { cutime: 47 })));
    const { byComponent } = cpu.result(100);
    expect(byComponent["engine: runc and shims"]).toBeCloseTo(0.1);
    expect(byComponent["engine: build steps (RUN processes)"]).toBeCloseTo(0.3);
    expect(byComponent["engine: children reaped unseen"]).toBeCloseTo(0.07);
  });
  it("a pid used again by a new process is a new process: the old one's time goes to its parent, the new one counts from 0", () => {
    const cpu = account();
    cpu.add(sweepOf(0, stat(100, "dockerd", 1), stat(111, "runc", 100, { starttime: 5 })));
    cpu.add(sweepOf(0, stat(100, "dockerd", 1), stat(111, "runc", 100, { starttime: 5, utime: 30 })));
    cpu.add(sweepOf(0, stat(100, "dockerd", 1, { cutime: 30 }), stat(111, "runc", 100, { starttime: 9, utime: 20 })));
    expect(cpu.result(100).byComponent["engine: runc and shims"]).toBeCloseTo(0.5);
  });
  it("a process that execs is counted under its new name from then on", () => {
    const cpu = account();
    cpu.add(sweepOf(0, stat(100, "dockerd", 1), stat(112, "runc:[2:INIT]", 111), stat(111, "runc", 100)));
    cpu.add(sweepOf(0, stat(100, "dockerd", 1), stat(112, "runc:[2:INIT]", 111, { utime: 10 }), stat(111, "runc", 100)));
    cpu.add(sweepOf(0, stat(100, "dockerd", 1), stat(112, "test", 111, { utime: 25 }), stat(111, "runc", 100)));
    const { byComponent } = cpu.result(100);
    expect(byComponent["engine: runc and shims"]).toBeCloseTo(0.1);
    expect(byComponent["engine: build steps (RUN processes)"]).toBeCloseTo(0.15);
  });
});

describe("cgroup accounting", () => {
  it("a process in the root cgroup has no service cgroup (v1, as on the bench machines)", () => {
    expect(serviceCgroup("9:name=systemd:/\n2:cpuacct:/\n1:cpu:/\n0::/\n")).toBeUndefined();
  });
  it("v1: the cpuacct controller's path, also when mounted together with cpu", () => {
    expect(serviceCgroup("4:memory:/system.slice/docker.service\n3:cpu,cpuacct:/system.slice/docker.service\n0::/\n")).toEqual({ version: 1, path: "/system.slice/docker.service" });
  });
  it("v2: the unified path", () => {
    expect(serviceCgroup("0::/system.slice/docker.service\n")).toEqual({ version: 2, path: "/system.slice/docker.service" });
  });
  it("reads v1's nanoseconds and v2's usage_usec as seconds, and refuses a cpu.stat without usage", () => {
    expect(cgroupSeconds(1, "2500000000\n")).toBe(2.5);
    expect(cgroupSeconds(2, "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")).toBe(1.5);
    expect(() => cgroupSeconds(2, "user_usec 1\n")).toThrow(/without usage_usec/);
  });
});

describe("reports", () => {
  const report = (dockerd: number, busy: number): CpuReport => {
    const byComponent = Object.fromEntries(COMPONENTS.map((component) => [component, 0])) as CpuReport["byComponent"];
    byComponent.dockerd = dockerd;
    byComponent.registry = 2;
    byComponent["pulumi engine"] = 3;
    return { wallSeconds: 10, intervalMs: 250, sweeps: 40, byComponent, ...summarize(byComponent), machineBusySeconds: busy, machineTotalSeconds: 20, engineCgroup: { none: "root cgroup" } };
  };
  it("groups add up their components, and the total adds up every component", () => {
    const { groups, accountedSeconds } = summarize(report(5, 11).byComponent);
    expect(groups["Docker engine (dockerd, its children, containerd)"]).toBe(5);
    expect(groups["Pulumi (engine, language host, plugins, strata CLI)"]).toBe(3);
    expect(accountedSeconds).toBe(10);
  });
  it("the table shows each non-zero component under its group, per layer and as a share of the machine's busy time", () => {
    const rows = cpuRows(report(5, 10), 20);
    expect(rows).toContainEqual(["Docker engine (dockerd, its children, containerd)", "5.0", "0.25", "50%"]);
    expect(rows).toContainEqual(["  dockerd", "5.0", "0.25", "50%"]);
    expect(rows).toContainEqual(["registry", "2.0", "0.10", "20%"]);
    expect(rows).toContainEqual(["the machine, busy (/proc/stat; wall 10.0 s)", "10.0", "0.50", "100%"]);
    expect(rows.some(([part]) => part === "  containerd")).toBe(false);
  });
  it("the median of runs is taken component by component", () => {
    const median = medianReport([report(5, 10), report(9, 14), report(7, 30)]);
    expect(median?.byComponent.dockerd).toBe(7);
    expect(median?.machineBusySeconds).toBe(14);
    expect(medianReport([])).toBeUndefined();
  });
});

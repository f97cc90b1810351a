/**
 * Where a run's CPU goes, by component (issue #28): every process on the machine read from
 * `/proc/<pid>/stat` every 0.25 s while a command runs (bench/cpu-run.ts), each process put in a
 * component by its name, command line and parent chain (the Docker engine and what it forks,
 * containerd, the registry, the Pulumi engine, the language host, each plugin, buildkitd…).
 *
 * How exited processes are counted. A process's `utime + stime` is its own CPU;
 * `cutime + cstime` is the CPU of every child it has waited for (their own and, transitively,
 * theirs). Each process is counted by its own CPU between its first and its last sample (from 0 when
 * it was born during the run), so a process seen even once is counted up to its last sample. A
 * process that lives less than a sampling interval is never seen: its CPU shows up only when its
 * parent reaps it, as a rise of the parent's `cutime + cstime`. So for each parent, the rise of its
 * children's time minus the last-seen totals of the children it was seen to lose is the CPU of
 * children it reaped unseen (plus the last < 0.25 s of the ones it was seen with), and it is
 * attributed to the component a child of that parent falls in (for dockerd and its helpers: "engine:
 * children reaped unseen"). A zombie stays in `/proc` until reaped, so "gone" means "reaped by the
 * parent it was last seen under" — or, when that parent went in the same interval, by the nearest
 * ancestor still alive, whose children's time then holds both. Not counted: a process whose parent died before reaping it (the
 * orphan is reaped by pid 1, outside every component) during the < 0.25 s it was not seen.
 *
 * Why `/proc` and not cgroup accounting: cgroup `cpuacct` counts every descendant exactly, but only
 * for a service that has a cgroup of its own. `engineCgroup` reads dockerd's; when dockerd runs in
 * the root cgroup (started by scripts/services.sh with setsid, no systemd: the machines this bench
 * runs on), there is nothing to read and `/proc` is the measurement. When it has one, its figure is
 * reported beside the sampled one as a check.
 *
 * The parsing and the classification are pure (test/unit/cpu-sampler.test.ts); `sweep` reads /proc.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { median } from "./stats.js";

/** The fields of `/proc/<pid>/stat` the accounting needs; times in clock ticks. */
export interface ProcStat {
  readonly pid: number;
  /** The kernel's name for the process (at most 15 characters), as in `ps -o comm`. */
  readonly comm: string;
  readonly ppid: number;
  /** The process group: a daemon started with setsid leads its own, with what it runs. */
  readonly pgrp: number;
  readonly utime: number;
  readonly stime: number;
  /** CPU of the children this process has waited for, transitively. */
  readonly cutime: number;
  readonly cstime: number;
  /** Since boot, in ticks: with the pid, what tells one process from a later one with the same pid. */
  readonly starttime: number;
}

/**
 * One `/proc/<pid>/stat` line. The name sits in parentheses and may itself hold spaces and
 * parentheses, so the fields are counted from the last `)`.
 */
export function parseStat(text: string): ProcStat {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  // After ") ": field 3 (state) is rest[0], so field n is rest[n - 3].
  const rest = text.slice(close + 2).trim().split(/\s+/);
  const field = (n: number): number => {
    const value = Number(rest[n - 3]);
    if (!Number.isFinite(value)) throw new Error(`/proc/<pid>/stat field ${n} is not a number in ${JSON.stringify(text.slice(0, 80))}`);
    return value;
  };
  return { pid: Number(text.slice(0, open).trim()), comm: text.slice(open + 1, close), ppid: field(4), pgrp: field(5), utime: field(14), stime: field(15), cutime: field(16), cstime: field(17), starttime: field(22) };
}

/** The busy and total ticks of the whole machine, from the `cpu` line of `/proc/stat`. */
export function parseMachineStat(text: string): { busy: number; total: number } {
  const line = text.split("\n").find((candidate) => candidate.startsWith("cpu "));
  if (line === undefined) throw new Error("/proc/stat has no `cpu` line");
  // user nice system idle iowait irq softirq steal (guest and guest_nice are already in user and nice).
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  // Steal is time the hypervisor gave another guest: no process here ran in it, so it is not busy
  // time the components could account for (a busy host would open a gap no sampler can close).
  const busy = user + nice + system + irq + softirq;
  return { busy, total: busy + idle + iowait + steal };
}

/** The components, in the order tables show them. */
export const COMPONENTS = [
  "dockerd",
  "engine: re-executed helpers (exe)",
  "engine: runc and shims",
  "engine: build steps (RUN processes)",
  "engine: children reaped unseen",
  "containerd",
  "registry",
  "pulumi engine",
  "language host (Node program)",
  "plugin: pulumi-resource-docker",
  "plugin: Strata's provider",
  "strata CLI",
  "buildkitd",
  "buildkitd: children (runc, RUN steps)",
  "buildx (bake client)",
  "docker CLI",
  "the bench and the sampler",
  "kernel threads",
  "other processes",
] as const;
export type Component = (typeof COMPONENTS)[number];

/** The sums tables lead with. */
export const GROUPS = {
  "Docker engine (dockerd, its children, containerd)": ["dockerd", "engine: re-executed helpers (exe)", "engine: runc and shims", "engine: build steps (RUN processes)", "engine: children reaped unseen", "containerd"],
  "Pulumi (engine, language host, plugins, strata CLI)": ["pulumi engine", "language host (Node program)", "plugin: pulumi-resource-docker", "plugin: Strata's provider", "strata CLI"],
  "BuildKit of the bake peer (buildkitd, its children, buildx)": ["buildkitd", "buildkitd: children (runc, RUN steps)", "buildx (bake client)"],
} as const satisfies Record<string, readonly Component[]>;

/** What the classification knows of a process. */
export interface ProcessIdentity {
  readonly pid: number;
  readonly ppid: number;
  readonly comm: string;
  /** argv; empty for kernel threads and processes whose command line could not be read. */
  readonly cmdline: readonly string[];
}

/** The component a process is by itself, before its parents are looked at; undefined: decided by the parent chain. */
function ownComponent(process: ProcessIdentity): Component | undefined {
  const program = path.basename(process.cmdline[0] ?? "");
  const args = process.cmdline.join(" ");
  if (process.comm === "dockerd") return "dockerd";
  if (process.comm === "containerd") return "containerd";
  // A shim is reparented to pid 1 once started: its name, not its parent, says it is the engine's.
  if (process.comm.startsWith("containerd-shim")) return "engine: runc and shims";
  if (process.comm === "docker-registry" || program === "docker-registry") return "registry";
  if (process.comm === "pulumi" || program === "pulumi") return "pulumi engine";
  if (program.startsWith("pulumi-language-") || process.comm.startsWith("pulumi-language")) return "language host (Node program)";
  if (program === "pulumi-resource-docker") return "plugin: pulumi-resource-docker";
  if (args.includes("pulumi-resource-strata") || args.includes("/pulumi/provider/main.js")) return "plugin: Strata's provider";
  if (process.comm === "buildkitd" || program.startsWith("buildkitd")) return "buildkitd";
  if (program.startsWith("buildx") || program.startsWith("buildctl")) return "buildx (bake client)";
  if (/\bbin\/strata(\.js)?\b/.test(args) && (process.comm === "node" || program === "node")) return "strata CLI";
  if (process.comm === "docker" || program === "docker") return "docker CLI";
  return undefined;
}

/** Within the engine's tree, what a descendant of dockerd is by its own name. */
function engineChild(process: ProcessIdentity): Component {
  if (process.comm === "exe") return "engine: re-executed helpers (exe)";
  if (process.comm === "runc" || process.comm.startsWith("runc:") || process.comm.startsWith("containerd-shim")) return "engine: runc and shims";
  return "engine: build steps (RUN processes)";
}

/** The components of the measured run's own processes: another session's Pulumi engine or CLI is not this run's. */
const CLIENT_SIDE: ReadonlySet<Component> = new Set(["pulumi engine", "language host (Node program)", "plugin: pulumi-resource-docker", "plugin: Strata's provider", "strata CLI", "buildx (bake client)", "docker CLI"]);

/** The socket a dockerd listens on when its command line names none (nor does the caller's DOCKER_HOST). */
const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

/** One spelling per endpoint: /var/run is /run, `fd://` (systemd's socket) is the default socket. */
function sameEndpoint(host: string): string {
  const endpoint = host === "" || host.startsWith("fd://") ? DEFAULT_DOCKER_HOST : host;
  return (endpoint.startsWith("/") ? `unix://${endpoint}` : endpoint).replace(/^unix:\/\/\/var\/run\//, "unix:///run/");
}

/** The endpoints a dockerd's command line says it listens on (`-H`/`--host`, either form); none named: the default socket. */
function listensOn(cmdline: readonly string[]): string[] {
  const hosts: string[] = [];
  cmdline.forEach((arg, index) => {
    const inline = /^(?:-H|--host)=(.+)$/.exec(arg);
    if (inline?.[1] !== undefined) hosts.push(inline[1]);
    else if ((arg === "-H" || arg === "--host") && cmdline[index + 1] !== undefined) hosts.push(cmdline[index + 1] as string);
  });
  return (hosts.length === 0 ? [DEFAULT_DOCKER_HOST] : hosts).map(sameEndpoint);
}

/**
 * The dockerd the run builds on: the one whose command line says it listens at `dockerHost`
 * (DOCKER_HOST; unset: the default socket). Several engines may run on the machine (its own,
 * scripts/engines.sh's pool, scripts/engines.sh main's current engine); only this one and what it
 * forks are "the engine", the others are "other processes". Undefined when no dockerd here says it
 * listens there (a remote engine, or a host given in a daemon.json): then every dockerd is counted,
 * and the report says so. Pure.
 */
export function engineServing(processes: Iterable<ProcessIdentity>, dockerHost: string | undefined): number | undefined {
  const wanted = sameEndpoint(dockerHost ?? "");
  for (const process of processes) if (process.comm === "dockerd" && listensOn(process.cmdline).includes(wanted)) return process.pid;
  return undefined;
}

/** A dockerd other than the measured engine, or the containerd such a dockerd runs. */
function otherEngine(process: ProcessIdentity, table: ReadonlyMap<number, ProcessIdentity>, engine: number | undefined): boolean {
  if (engine === undefined) return false;
  if (process.comm === "dockerd") return process.pid !== engine;
  const parent = table.get(process.ppid);
  return process.comm === "containerd" && parent?.comm === "dockerd" && parent.pid !== engine;
}

/** Whether `pid` is `root` or descends from it. */
function descendsFrom(pid: number, root: number, table: ReadonlyMap<number, ProcessIdentity>): boolean {
  const seen = new Set<number>();
  for (let at = table.get(pid); at !== undefined && !seen.has(at.pid); at = table.get(at.ppid)) {
    if (at.pid === root) return true;
    seen.add(at.pid);
  }
  return false;
}

/**
 * A process's component: by itself, else by its nearest ancestor that is one (a Node program under
 * the language host is the language host; runc under dockerd is the engine's). `bench`: the pids of
 * the bench and the sampler. `unseen`: the process is a child of `pid` that lived and was reaped
 * between two samples, so only its parent is known. `measured`: the measured command's pid; a
 * client-side process (a Pulumi engine, a plugin, a CLI) outside its tree is another session's, so
 * "other processes". The services (dockerd, containerd, the registry, buildkitd) are counted whole:
 * the bench runs under the e2e lock, so nothing else builds on them meanwhile. `engine`: the dockerd
 * the run builds on (engineServing); another dockerd, its containerd and what they fork are "other
 * processes". Absent: every dockerd is the engine.
 */
export function classify(pid: number, table: ReadonlyMap<number, ProcessIdentity>, bench: ReadonlySet<number>, unseen = false, measured?: number, engine?: number): Component {
  const component = classifyInTree(pid, table, bench, unseen, engine);
  return CLIENT_SIDE.has(component) && (measured === undefined || !descendsFrom(pid, measured, table)) ? "other processes" : component;
}

function classifyInTree(pid: number, table: ReadonlyMap<number, ProcessIdentity>, bench: ReadonlySet<number>, unseen: boolean, engine: number | undefined): Component {
  const self = table.get(pid);
  if (self === undefined) return "other processes";
  if (!unseen) {
    if (bench.has(pid)) return "the bench and the sampler";
    if (pid === 2 || self.ppid === 2) return "kernel threads";
    if (otherEngine(self, table, engine)) return "other processes";
    const own = ownComponent(self);
    if (own !== undefined) return own;
  }
  // The nearest ancestor with a component decides; `seen` guards against a pid loop in a torn read.
  const seen = new Set<number>();
  for (let ancestor = unseen ? self : table.get(self.ppid); ancestor !== undefined && !seen.has(ancestor.pid); ancestor = table.get(ancestor.ppid)) {
    seen.add(ancestor.pid);
    if (bench.has(ancestor.pid)) return "the bench and the sampler";
    if (otherEngine(ancestor, table, engine)) return "other processes";
    const component = ancestor.pid === 2 ? "kernel threads" : ownComponent(ancestor);
    if (component === undefined) continue;
    if (component === "dockerd") return unseen ? "engine: children reaped unseen" : engineChild(self);
    if (component === "buildkitd") return "buildkitd: children (runc, RUN steps)";
    if (component === "containerd" || component === "engine: runc and shims") return unseen ? "engine: children reaped unseen" : engineChild(self);
    return component;
  }
  return "other processes";
}

/** One sweep of `/proc`: every process readable at that moment. */
export interface Sweep {
  readonly processes: ReadonlyMap<number, ProcStat>;
  readonly machine: { readonly busy: number; readonly total: number };
}

/** The state the accounting keeps between sweeps. */
interface Tracked {
  readonly key: string;
  last: ProcStat;
  identity: ProcessIdentity;
}

/**
 * CPU by component across sweeps (ticks). Feed it sweeps in order; `cmdlineOf` reads a process's
 * command line when it is first seen or its name changed (an exec).
 */
export class CpuAccount {
  private readonly tracked = new Map<number, Tracked>();
  private readonly ticks = new Map<Component, number>();
  /** By parent (pid and start time): the rise of its children's time not explained by children seen to go. */
  private readonly unseenByParent = new Map<string, { ticks: number; component: Component }>();
  private first: Sweep["machine"] | undefined;
  private lastMachine: Sweep["machine"] | undefined;
  private sweeps = 0;
  /** The measured command's pid, once started. */
  measured: number | undefined;
  /** The dockerd the run builds on (engineServing); undefined: every dockerd. */
  engine: number | undefined;

  constructor(private readonly bench: ReadonlySet<number>, private readonly cmdlineOf: (pid: number) => readonly string[]) {}

  add(sweep: Sweep): void {
    const isFirst = this.sweeps === 0;
    this.sweeps++;
    this.first ??= sweep.machine;
    this.lastMachine = sweep.machine;
    const identities = new Map<number, ProcessIdentity>();
    for (const [pid, stat] of sweep.processes) {
      const known = this.tracked.get(pid);
      const same = known !== undefined && known.last.starttime === stat.starttime;
      const cmdline = same && known.last.comm === stat.comm ? known.identity.cmdline : this.cmdlineOf(pid);
      identities.set(pid, { pid, ppid: stat.ppid, comm: stat.comm, cmdline });
    }
    // Those gone since the last sweep (or replaced by a new process with the same pid): reaped by
    // their last parent. When that parent is gone too (runc and its container process, both done
    // within one interval), it reaped the child before it went, and the child's time reaches the
    // nearest ancestor still alive inside the parent's own children's time: that is the one whose
    // rise it explains.
    const gone = new Map<number, { ppid: number; total: number }>();
    for (const [pid, known] of this.tracked) {
      const now = sweep.processes.get(pid);
      if (now !== undefined && now.starttime === known.last.starttime) continue;
      gone.set(pid, { ppid: known.last.ppid, total: known.last.utime + known.last.stime + known.last.cutime + known.last.cstime });
      this.tracked.delete(pid);
    }
    const goneTotals = new Map<number, number>();
    for (const { ppid, total } of gone.values()) {
      let reaper = ppid;
      for (const walked = new Set<number>(); gone.has(reaper) && !walked.has(reaper); ) {
        walked.add(reaper);
        reaper = (gone.get(reaper) as { ppid: number }).ppid;
      }
      goneTotals.set(reaper, (goneTotals.get(reaper) ?? 0) + total);
    }
    for (const [pid, stat] of sweep.processes) {
      const identity = identities.get(pid) as ProcessIdentity;
      const known = this.tracked.get(pid);
      const key = `${pid}@${stat.starttime}`;
      // Born during the run unless it was there at the first sweep: its times count from 0.
      const before = known ?? (isFirst ? { last: stat } : undefined);
      const own = stat.utime + stat.stime - (before === undefined ? 0 : before.last.utime + before.last.stime);
      const children = stat.cutime + stat.cstime - (before === undefined ? 0 : before.last.cutime + before.last.cstime);
      const component = classify(pid, identities, this.bench, false, this.measured, this.engine);
      this.ticks.set(component, (this.ticks.get(component) ?? 0) + own);
      const unseenComponent = classify(pid, identities, this.bench, true, this.measured, this.engine);
      const unseen = this.unseenByParent.get(key) ?? { ticks: 0, component: unseenComponent };
      unseen.ticks += children - (goneTotals.get(pid) ?? 0);
      unseen.component = unseenComponent;
      this.unseenByParent.set(key, unseen);
      if (known === undefined) this.tracked.set(pid, { key, last: stat, identity });
      else { known.last = stat; known.identity = identity; }
    }
  }

  /** Seconds by component (every component, zeros included), the machine's busy seconds, and how many sweeps. */
  result(ticksPerSecond: number): { byComponent: Record<Component, number>; machineBusySeconds: number; machineTotalSeconds: number; sweeps: number } {
    const byComponent = Object.fromEntries(COMPONENTS.map((component) => [component, 0])) as Record<Component, number>;
    for (const [component, ticks] of this.ticks) byComponent[component] += ticks / ticksPerSecond;
    // A parent's account can dip below 0 for one interval (a child read before it was reaped, its
    // parent after): over the run it evens out; what stays below 0 (a reparented child) counts 0.
    for (const { ticks, component } of this.unseenByParent.values()) byComponent[component] += Math.max(0, ticks) / ticksPerSecond;
    const machine = (which: "busy" | "total"): number => ((this.lastMachine?.[which] ?? 0) - (this.first?.[which] ?? 0)) / ticksPerSecond;
    return { byComponent, machineBusySeconds: machine("busy"), machineTotalSeconds: machine("total"), sweeps: this.sweeps };
  }
}

let clockTicks: number | undefined;
/** The clock ticks per second in which `/proc/<pid>/stat` counts CPU time (`getconf CLK_TCK`, asked once per process). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    if (!(ticks > 0)) throw new Error("getconf CLK_TCK gave no clock-tick rate: the CPU times of /proc cannot be read in seconds");
    clockTicks = ticks;
  }
  return clockTicks;
}

/** Reads every process's stat and the machine's; processes that go while being read are left out. */
export function sweep(proc = "/proc"): Sweep {
  const processes = new Map<number, ProcStat>();
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    try {
      processes.set(Number(name), parseStat(readFileSync(path.join(proc, name, "stat"), "utf8")));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" && (error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }
  return { processes, machine: parseMachineStat(readFileSync(path.join(proc, "stat"), "utf8")) };
}

/** A process's argv, or none when it is gone or a kernel thread. */
export function readCmdline(pid: number, proc = "/proc"): string[] {
  try {
    return readFileSync(path.join(proc, String(pid), "cmdline"), "utf8").split("\0").filter((part) => part.length > 0);
  } catch {
    return [];
  }
}

/**
 * The cgroup whose CPU accounting covers a process and its descendants, from `/proc/<pid>/cgroup`:
 * cgroup v2 (`0::/path`), else v1's `cpuacct` controller. Undefined when the process is in the root
 * cgroup, which is the whole machine, not a service. Pure.
 */
export function serviceCgroup(cgroupFile: string): { version: 1 | 2; path: string } | undefined {
  const lines = cgroupFile.trim().split("\n").map((line) => line.split(":"));
  const v1 = lines.find(([, controllers]) => (controllers ?? "").split(",").includes("cpuacct"));
  if (v1 !== undefined) {
    const where = v1.slice(2).join(":");
    return where === "/" ? undefined : { version: 1, path: where };
  }
  const v2 = lines.find(([id, controllers]) => id === "0" && controllers === "");
  const where = v2?.slice(2).join(":");
  return where === undefined || where === "/" ? undefined : { version: 2, path: where };
}

/** The CPU seconds a cgroup has used, from cgroup v2's `cpu.stat` or v1's `cpuacct.usage`. Pure. */
export function cgroupSeconds(version: 1 | 2, text: string): number {
  if (version === 1) return Number(text.trim()) / 1e9;
  const usage = /^usage_usec (\d+)$/m.exec(text);
  if (usage === null) throw new Error(`cpu.stat without usage_usec: ${JSON.stringify(text.slice(0, 80))}`);
  return Number(usage[1]) / 1e6;
}

/** Where the cgroup accounting of the engine's dockerd (engineServing) is read, or why it cannot be. */
export function engineCgroup(engine: number | undefined, dockerHost: string | undefined, proc = "/proc", cgroupRoot = "/sys/fs/cgroup"): { file: string; version: 1 | 2 } | { none: string } {
  const dockerd = engine === undefined ? undefined : sweep(proc).processes.get(engine);
  if (dockerd === undefined) return { none: `no dockerd on this machine says it listens at ${dockerHost ?? DEFAULT_DOCKER_HOST} (DOCKER_HOST): every dockerd running is counted as the engine` };
  const cgroup = serviceCgroup(readFileSync(path.join(proc, String(dockerd.pid), "cgroup"), "utf8"));
  if (cgroup === undefined) return { none: `dockerd (pid ${dockerd.pid}) runs in the root cgroup: it has no cgroup of its own to read, so /proc sampling is the measurement` };
  const mounts = cgroup.version === 2 ? [path.join(cgroupRoot, "unified"), cgroupRoot] : [path.join(cgroupRoot, "cpuacct"), path.join(cgroupRoot, "cpu,cpuacct")];
  const file = cgroup.version === 2 ? "cpu.stat" : "cpuacct.usage";
  for (const mount of mounts) {
    const candidate = path.join(mount, cgroup.path, file);
    try {
      readFileSync(candidate);
      return { file: candidate, version: cgroup.version };
    } catch {
      // the next mount point
    }
  }
  return { none: `dockerd's cgroup ${cgroup.path} (v${cgroup.version}) has no readable ${file} under ${mounts.join(" or ")}` };
}

/** What one sampled run reports (the results JSON carries it as is). */
export interface CpuReport {
  /** The sampled command's wall time. */
  readonly wallSeconds: number;
  readonly intervalMs: number;
  readonly sweeps: number;
  /** CPU seconds by component over the run. */
  readonly byComponent: Record<Component, number>;
  /** The sums of GROUPS. */
  readonly groups: Record<keyof typeof GROUPS, number>;
  /** Every component added up, and the machine's busy time from /proc/stat over the same span: they should agree within a few percent. */
  readonly accountedSeconds: number;
  readonly machineBusySeconds: number;
  readonly machineTotalSeconds: number;
  /** dockerd's cgroup accounting over the run, when it has a cgroup of its own; else why not. */
  readonly engineCgroup: { readonly file: string; readonly cpuSeconds: number } | { readonly none: string };
}

/** The group sums and the total of a run's components. Pure. */
export function summarize(byComponent: Record<Component, number>): { groups: CpuReport["groups"]; accountedSeconds: number } {
  const groups = Object.fromEntries(Object.entries(GROUPS).map(([group, members]) => [group, (members as readonly Component[]).reduce((sum, component) => sum + byComponent[component], 0)])) as CpuReport["groups"];
  return { groups, accountedSeconds: COMPONENTS.reduce((sum, component) => sum + byComponent[component], 0) };
}

/**
 * Table rows for a run's CPU (`[part, CPU seconds, per layer, share of the machine's busy time]`):
 * the groups, each with its non-zero components indented below, then the rest, then the checks. Pure.
 */
export function cpuRows(report: CpuReport, layers: number): string[][] {
  const row = (name: string, seconds: number): string[] => [name, seconds.toFixed(1), layers > 0 ? (seconds / layers).toFixed(2) : "-", report.machineBusySeconds > 0 ? `${((seconds / report.machineBusySeconds) * 100).toFixed(0)}%` : "-"];
  const grouped = new Set<Component>(Object.values(GROUPS).flat());
  const rows: string[][] = [];
  for (const [group, members] of Object.entries(GROUPS) as [keyof typeof GROUPS, readonly Component[]][]) {
    if (report.groups[group] === 0) continue;
    rows.push(row(group, report.groups[group]));
    for (const component of members) if (report.byComponent[component] > 0) rows.push(row(`  ${component}`, report.byComponent[component]));
  }
  for (const component of COMPONENTS) if (!grouped.has(component) && report.byComponent[component] > 0) rows.push(row(component, report.byComponent[component]));
  rows.push(row("all components added up", report.accountedSeconds));
  rows.push(row(`the machine, busy (/proc/stat; wall ${report.wallSeconds.toFixed(1)} s)`, report.machineBusySeconds));
  if ("cpuSeconds" in report.engineCgroup) rows.push(row(`dockerd's cgroup (${report.engineCgroup.file})`, report.engineCgroup.cpuSeconds));
  return rows;
}

/** The median of several runs' reports, field by field (each component's own median). Pure. */
export function medianReport(reports: readonly CpuReport[]): CpuReport | undefined {
  const [first] = reports;
  if (first === undefined) return undefined;
  const mid = median;
  const byComponent = Object.fromEntries(COMPONENTS.map((component) => [component, mid(reports.map((report) => report.byComponent[component]))])) as Record<Component, number>;
  const groups = Object.fromEntries(Object.keys(GROUPS).map((group) => [group, mid(reports.map((report) => report.groups[group as keyof typeof GROUPS]))])) as CpuReport["groups"];
  const cgroups = reports.map((report) => report.engineCgroup).filter((cgroup): cgroup is { file: string; cpuSeconds: number } => "cpuSeconds" in cgroup);
  return {
    wallSeconds: mid(reports.map((report) => report.wallSeconds)), intervalMs: first.intervalMs, sweeps: mid(reports.map((report) => report.sweeps)), byComponent, groups,
    accountedSeconds: mid(reports.map((report) => report.accountedSeconds)), machineBusySeconds: mid(reports.map((report) => report.machineBusySeconds)), machineTotalSeconds: mid(reports.map((report) => report.machineTotalSeconds)),
    engineCgroup: cgroups.length === reports.length && cgroups[0] !== undefined ? { file: cgroups[0].file, cpuSeconds: mid(cgroups.map((cgroup) => cgroup.cpuSeconds)) } : first.engineCgroup,
  };
}

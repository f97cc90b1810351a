/**
 * Runs one command and samples every process's CPU while it runs (cpu-sampler.ts), every 0.25 s.
 *   node dist/bench/cpu-run.js <report.json> <harness pid> -- <command> [args…]
 * The command inherits this process's standard streams and its exit status is this process's; the
 * report (CpuReport) is written when the command has ended and been reaped. The harness pid (the
 * bench that started this) is counted with the sampler as "the bench and the sampler".
 * Benchmarks call it through sampledSpawnSync (cpu-measure.ts).
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { clockTicksPerSecond, CpuAccount, cgroupSeconds, type CpuReport, engineCgroup, engineServing, readCmdline, summarize, sweep } from "./cpu-sampler.js";

const INTERVAL_MS = 250;
const [out, harness, separator, command, ...args] = process.argv.slice(2);
if (out === undefined || separator !== "--" || command === undefined || !/^\d+$/.test(harness ?? "")) {
  process.stderr.write("usage: node dist/bench/cpu-run.js <report.json> <harness pid> -- <command> [args…]\n");
  process.exit(2);
}
const ticksPerSecond = clockTicksPerSecond();

// The engine the command builds on is DOCKER_HOST's (the command inherits this process's environment).
const first = sweep();
const engine = engineServing([...first.processes.values()].filter((stat) => stat.comm === "dockerd").map((stat) => ({ pid: stat.pid, ppid: stat.ppid, comm: stat.comm, cmdline: readCmdline(stat.pid) })), process.env.DOCKER_HOST);
const cgroup = engineCgroup(engine, process.env.DOCKER_HOST);
const readCgroup = (): number | undefined => ("file" in cgroup ? cgroupSeconds(cgroup.version, readFileSync(cgroup.file, "utf8")) : undefined);
const cgroupStart = readCgroup();
const account = new CpuAccount(new Set([process.pid, Number(harness)]), (pid) => readCmdline(pid));
account.engine = engine;
account.add(first);
const started = process.hrtime.bigint();
const child = spawn(command, args, { stdio: "inherit" });
account.measured = child.pid;
const timer = setInterval(() => account.add(sweep()), INTERVAL_MS);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("error", (error) => {
  clearInterval(timer);
  process.stderr.write(`cpu-run: cannot start ${command}: ${error.message}\n`);
  process.exit(127);
});
child.on("exit", (code, signal) => {
  clearInterval(timer);
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  // The command is reaped now: this last sweep sees its time in this process's children's time.
  account.add(sweep());
  const { byComponent, machineBusySeconds, machineTotalSeconds, sweeps } = account.result(ticksPerSecond);
  const cgroupEnd = readCgroup();
  const report: CpuReport = {
    wallSeconds, intervalMs: INTERVAL_MS, sweeps, byComponent, ...summarize(byComponent), machineBusySeconds, machineTotalSeconds,
    engineCgroup: "file" in cgroup && cgroupStart !== undefined && cgroupEnd !== undefined ? { file: cgroup.file, cpuSeconds: cgroupEnd - cgroupStart } : { none: "none" in cgroup ? cgroup.none : "unreadable" },
  };
  writeFileSync(out, `${JSON.stringify(report, null, 1)}\n`);
  process.exit(code ?? (signal === null ? 1 : 128));
});

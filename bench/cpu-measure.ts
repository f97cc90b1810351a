/** A command run under the CPU sampler (cpu-run.ts), synchronously, as the benchmarks run their sides. */
import { type SpawnSyncOptionsWithStringEncoding, type SpawnSyncReturns, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type CpuReport } from "./cpu-sampler.js";
import { projectRoot } from "./stats.js";

/**
 * spawnSync, and the CPU of every process by component while the command ran. The sampler adds a
 * Node process's start-up (about 0.1 s) before the command starts, outside the command's own time.
 */
export function sampledSpawnSync(command: string, args: readonly string[], options: SpawnSyncOptionsWithStringEncoding): { result: SpawnSyncReturns<string>; cpu: CpuReport | undefined } {
  const folder = mkdtempSync(path.join(tmpdir(), "strata-bench-cpu-"));
  const report = path.join(folder, "cpu.json");
  try {
    const result = spawnSync("node", [path.join(projectRoot, "dist/bench/cpu-run.js"), report, String(process.pid), "--", command, ...args], options);
    let cpu: CpuReport | undefined;
    try {
      cpu = JSON.parse(readFileSync(report, "utf8")) as CpuReport;
    } catch (error) {
      // A command that failed is reported by its status; a sampler that wrote nothing on success is a failure of its own.
      if (result.status === 0) throw new Error(`the CPU sampler wrote no report for ${command}: ${(error as Error).message}\n${result.stderr}`);
    }
    return { result, cpu };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

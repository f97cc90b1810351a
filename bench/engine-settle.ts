/**
 * Waits, before a cold turn (and after the cold turns bring back the images they removed,
 * bench/run.ts), until the engine has finished what came before it: a turn measured while the engine
 * still carries out earlier work is charged for it. So each cold turn begins once dockerd has used
 * less than a twentieth of a core for three seconds, or after two minutes, and the results file
 * keeps how long that took and what dockerd used meanwhile. (It was not what made the side that
 * built second have dockerd work 6–20 CPU-s more in cold runs: the engine was quiet at once before
 * every turn of a two-run check, and that side still worked more. The first side's images left in
 * the engine were: since every cold turn removes them, the second side is not the one charged
 * (README *What signing costs*). Bake's turns wait too, though bake builds on its own buildkitd:
 * three idle seconds.)
 *
 * `quietFor` is pure (test/unit/engine-settle.test.ts); `waitForQuietEngine` reads /proc.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { clockTicksPerSecond, engineServing, parseStat, readCmdline, sweep } from "./cpu-sampler.js";

/** One reading: seconds since the wait began, and the engine's CPU seconds so far. */
export interface EngineReading {
  readonly at: number;
  readonly cpu: number;
}

export interface QuietRule {
  /** Seconds the engine must have been quiet. */
  readonly windowSeconds: number;
  /** Quiet: less than this share of one core over the window. */
  readonly share: number;
}

export const QUIET: QuietRule = { windowSeconds: 3, share: 0.05 };

/** Whether the readings end with `windowSeconds` (or more) in which the engine used less than `share` of a core. Pure. */
export function quietFor(readings: readonly EngineReading[], rule: QuietRule = QUIET): boolean {
  if (!(rule.windowSeconds > 0)) throw new Error(`quietFor: a window of ${rule.windowSeconds} s says nothing`);
  const last = readings.at(-1);
  if (last === undefined) return false;
  // The latest reading at least a window before the last one.
  let start: EngineReading | undefined;
  for (const reading of readings) if (last.at - reading.at >= rule.windowSeconds) start = reading;
  if (start === undefined) return false;
  return (last.cpu - start.cpu) / (last.at - start.at) < rule.share;
}

export interface SettleResult {
  /** Seconds waited. */
  readonly seconds: number;
  /** CPU seconds dockerd used while waited for. */
  readonly engineCpuSeconds: number;
  /** False: the limit came first, or the engine went away (the turn began anyway, and the results say so). */
  readonly quiet: boolean;
  /** No dockerd here serves DOCKER_HOST (a remote engine): nothing was waited for. */
  readonly engineSeen: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the dockerd serving `dockerHost` is quiet (QUIET), at most `limitSeconds`. */
export async function waitForQuietEngine(dockerHost: string | undefined = process.env.DOCKER_HOST, limitSeconds = 120, intervalMs = 500, proc = "/proc"): Promise<SettleResult> {
  const dockerds = [...sweep(proc).processes.values()].filter((process) => process.comm === "dockerd").map((process) => ({ ...process, cmdline: readCmdline(process.pid, proc) }));
  const engine = engineServing(dockerds, dockerHost);
  if (engine === undefined) return { seconds: 0, engineCpuSeconds: 0, quiet: false, engineSeen: false };
  const ticks = clockTicksPerSecond();
  const first = dockerds.find((process) => process.pid === engine)?.starttime;
  /** The engine's CPU seconds so far; undefined once it is gone (its pid gone, or now another process's). */
  const cpuNow = (): number | undefined => {
    let stat;
    try {
      stat = parseStat(readFileSync(path.join(proc, String(engine), "stat"), "utf8"));
    } catch {
      return undefined;
    }
    return stat.starttime === first ? (stat.utime + stat.stime + stat.cutime + stat.cstime) / ticks : undefined;
  };
  const began = performance.now();
  const readings: EngineReading[] = [];
  for (;;) {
    const cpu = cpuNow();
    const at = (performance.now() - began) / 1000;
    if (cpu === undefined) return { seconds: at, engineCpuSeconds: (readings.at(-1)?.cpu ?? 0) - (readings[0]?.cpu ?? 0), quiet: false, engineSeen: true };
    readings.push({ at, cpu });
    const last = readings.at(-1) as EngineReading;
    const quiet = quietFor(readings);
    if (quiet || last.at >= limitSeconds) return { seconds: last.at, engineCpuSeconds: last.cpu - (readings[0] as EngineReading).cpu, quiet, engineSeen: true };
    await sleep(intervalMs);
  }
}

/**
 * Per-layer logs of a run: each built layer's whole build and push output (from the engine's
 * events, each line with its time) in `<state>/logs/<stack>/<run id>/<layer>.log`, beside the run's
 * report. A layer that was not built (unchanged, copied, adopted, skipped) gets no file. The last
 * KEPT_RUNS runs of a stack are kept; older ones are removed when a new one is written.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { BUILD_RESOURCE_TYPES } from "../core/image-types.js";
import { type LayerEvent, WORKING_OPS } from "./events.js";

/** Runs kept per stack (STRATA_LOG_RUNS overrides). */
export const KEPT_RUNS = 20;

const BUILD_TYPES: ReadonlySet<string> = new Set(Object.values(BUILD_RESOURCE_TYPES));

/** A run's id: its start in UTC, sortable as text (`2026-11-30T12-55-03-123Z`). */
export function runIdOf(startedAt: Date): string {
  return startedAt.toISOString().replace(/[:.]/g, "-");
}

export function stackLogsDir(stateDir: string, stack: string): string {
  return path.join(stateDir, "logs", stack);
}

/** Whether a layer's event is a build (or a failed build) that has a log to keep. */
export function builtHere(event: LayerEvent): boolean {
  return BUILD_TYPES.has(event.type) && (WORKING_OPS.has(event.op) || event.failed) && (event.log?.length ?? 0) > 0;
}

/** A log file's text: one line per line of output, after its UTC time. Pure. */
export function logText(event: LayerEvent): string {
  return (event.log ?? []).map((line) => `${new Date(line.at).toISOString()}  ${line.text}\n`).join("");
}

/** Writes the run's layer logs; layer → file. */
export function writeLayerLogs(runDir: string, events: ReadonlyMap<string, LayerEvent>): Map<string, string> {
  mkdirSync(runDir, { recursive: true });
  const files = new Map<string, string>();
  for (const [layer, event] of events) {
    if (!builtHere(event)) continue;
    const file = path.join(runDir, `${layer}.log`);
    writeFileSync(file, logText(event));
    files.set(layer, file);
  }
  return files;
}

/** The runs to remove so that the newest `keep` stay (ids sort by time). Pure. */
export function runsToPrune(runIds: readonly string[], keep: number): string[] {
  return [...runIds].sort().slice(0, Math.max(0, runIds.length - keep));
}

/** The run ids of a stack, oldest first. */
export function runIds(stackDir: string): string[] {
  try {
    return readdirSync(stackDir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
  } catch {
    return [];
  }
}

/** Removes a stack's oldest runs beyond `keep`; returns the ids removed. */
export function pruneRuns(stackDir: string, keep: number): string[] {
  const removed = runsToPrune(runIds(stackDir), keep);
  for (const id of removed) rmSync(path.join(stackDir, id), { recursive: true, force: true });
  return removed;
}

export function keptRuns(env: Readonly<Record<string, string | undefined>>): number {
  const value = Number(env.STRATA_LOG_RUNS ?? "");
  return Number.isInteger(value) && value > 0 ? value : KEPT_RUNS;
}

/**
 * What a `strata up` leaves behind to be read later: the per-layer logs (engine/run-logs.ts) and
 * the run report (report.ts: report.html, and report.json from which `strata report` renders it
 * again), in `<state>/logs/<stack>/<run id>/`; the stack's oldest runs beyond the limit are removed.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { InputError } from "../core/problems.js";
import { type EngineRun } from "../engine/events.js";
import { pruneRuns, runIds, stackLogsDir, writeLayerLogs } from "../engine/run-logs.js";
import { type ReportData, reportData, type ReportInput, renderReport } from "./report.js";

export interface RunRecord {
  readonly dir: string;
  readonly report: string;
  /** Layer → its log file. */
  readonly logs: ReadonlyMap<string, string>;
}

/** What the report is made of (report.ts), plus where it goes, the engine's run and how many runs to keep. */
export interface RunToRecord extends Pick<ReportInput, "stack" | "channelStack" | "runId" | "startedAt" | "finishedAt" | "rows" | "parents" | "imageSet"> {
  readonly stateDir: string;
  readonly run: EngineRun;
  /** Runs of the stack to keep. */
  readonly keep: number;
}

export function recordRun(input: RunToRecord): RunRecord {
  const stackDir = stackLogsDir(input.stateDir, input.stack);
  const dir = path.join(stackDir, input.runId);
  const logs = writeLayerLogs(dir, input.run.events);
  const data = reportData({
    stack: input.stack, channelStack: input.channelStack, runId: input.runId, startedAt: input.startedAt, finishedAt: input.finishedAt,
    ok: input.run.error === undefined, rows: input.rows, parents: input.parents, events: input.run.events,
    ...(input.run.stackLayers === undefined ? {} : { stackLayers: input.run.stackLayers }),
    logs: new Map([...logs].map(([layer, file]) => [layer, path.basename(file)] as const)),
    ...(input.imageSet === undefined ? {} : { imageSet: input.imageSet }),
  });
  writeFileSync(path.join(dir, "report.json"), `${JSON.stringify(data, null, 2)}\n`);
  const report = path.join(dir, "report.html");
  writeFileSync(report, renderReport(data));
  pruneRuns(stackDir, input.keep);
  return { dir, report, logs };
}

/** `strata report`: renders a recorded run's report.html again from its report.json (the newest run by default). */
export function rerenderReport(stateDir: string, stack: string, runId?: string): string {
  const stackDir = stackLogsDir(stateDir, stack);
  const id = runId ?? runIds(stackDir).at(-1);
  const dataFile = id === undefined ? undefined : path.join(stackDir, id, "report.json");
  if (id === undefined || dataFile === undefined || !existsSync(dataFile)) {
    const known = runIds(stackDir);
    throw new InputError([{
      file: stackDir, field: runId === undefined ? "--stack" : "--run",
      message: runId === undefined ? `no run of stack ${stack} is recorded here` : `no run ${runId} of stack ${stack} is recorded here`,
      fix: known.length === 0 ? `run scripts/strata up --stack ${stack} first (each up records its run)` : `name one of ${known.slice(-5).join(", ")}`,
    }]);
  }
  const data = JSON.parse(readFileSync(dataFile, "utf8")) as ReportData;
  const report = path.join(path.dirname(dataFile), "report.html");
  writeFileSync(report, renderReport(data));
  return report;
}

/**
 * Scaling figures for a pool of engines. More engines cannot speed up this
 * 2-core machine, so: one real cold build of N layers here, with each layer's
 * step measured (pull of its parent, build, push: the summary's timings); the
 * time to pull a parent on an empty engine, measured; then the schedule of
 * the same tree on K engines of this machine's speed (core/schedule.ts, with
 * core/placement.ts placing the layers by their measured cost), beside the
 * measured point. Prints a table and writes JSON.
 *   node dist/bench/scaling.js [--size 200] [--engines 1,2,4,8,16] [--out FILE]
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { renderTable } from "../src/cli/table.js";
import { type SummaryRow } from "../src/cli/summary.js";
import { placeLayers } from "../src/core/placement.js";
import { simulateSchedule } from "../src/core/schedule.js";
import { emptyEngine, removeImages } from "./docker-images.js";
import { generateCatalog } from "./generate.js";
import { median, projectRoot } from "./stats.js";
import { seconds, StrataSide } from "./strata-side.js";

const { values } = parseArgs({ options: { size: { type: "string", default: "200" }, engines: { type: "string", default: "1,2,4,8,16" }, out: { type: "string" } } });
const size = Number(values.size);
const engineCounts = values.engines.split(",").map(Number);
const registry = `127.0.0.1:${process.env.STRATA_REGISTRY_PORT ?? "5000"}`;
const salt = Date.now().toString(36);
const prefix = `${registry}/scale${size}-${salt}-`;

const side = new StrataSide(`scale${size}-${salt}-mos9.0-dev`, 8, "docker");
try {
  const layers = generateCatalog(side.catalog, size, salt, path.join(projectRoot, "scripts/make-rootfs.sh"));
  const cold = side.up();
  if (cold.built !== size) throw new Error(`the cold build built ${cold.built} of ${size} layers`);
  const rows = (JSON.parse(readFileSync(side.summaryFile, "utf8")) as { layers: SummaryRow[] }).layers;
  const stepSeconds = new Map(rows.map((row) => [row.layer, row.timing?.seconds ?? 0] as const));
  const phase = (pick: (row: SummaryRow) => number | undefined): number => median(rows.map(pick).filter((value): value is number => value !== undefined));

  // A parent built on another engine is pulled from the registry: time that on an empty engine.
  emptyEngine(prefix);
  const outputs = rows.filter((row) => row.digest !== null);
  const sampled = [0.25, 0.5, 0.75, 1].map((share) => outputs[Math.min(outputs.length - 1, Math.floor(share * (outputs.length - 1)))] as SummaryRow);
  const pulls = sampled.map((row) => seconds(() => execFileSync("docker", ["pull", "--quiet", `${row.ref.slice(0, row.ref.lastIndexOf(":"))}@${row.digest as string}`], { stdio: "ignore" })));
  const crossEnginePull = median(pulls);

  const work = [...stepSeconds.values()].reduce((sum, value) => sum + value, 0);
  // How many layer steps one engine (this machine) ran at once on average in the measured run.
  const slotsPerEngine = Math.max(1, Math.round(work / cold.seconds));
  const placed = layers.map((layer) => ({ name: layer.name, ...(layer.parent === undefined ? {} : { parent: layer.parent }) }));
  const duration = (layer: string): number => stepSeconds.get(layer) ?? 0;
  const predictions = engineCounts.map((engineCount) => {
    const { engineOf, load } = placeLayers(placed, engineCount, duration);
    const result = simulateSchedule({ layers: placed, duration, engineOf, engineCount, slotsPerEngine, crossEnginePull: () => crossEnginePull });
    return {
      engines: engineCount,
      predictedSeconds: Number(result.makespan.toFixed(1)),
      criticalPathSeconds: Number(result.criticalPath.toFixed(1)),
      workBoundSeconds: Number(result.workBound.toFixed(1)),
      busiestEngineWork: Number(Math.max(...load).toFixed(1)),
    };
  });

  const output = {
    size, measuredColdSeconds: Number(cold.seconds.toFixed(1)), layerStepSecondsTotal: Number(work.toFixed(1)), slotsPerEngine,
    medianStep: { seconds: phase((row) => row.timing?.seconds), pull: phase((row) => row.timing?.pullSeconds), build: phase((row) => row.timing?.buildSeconds), push: phase((row) => row.timing?.pushSeconds) },
    crossEnginePullSeconds: Number(crossEnginePull.toFixed(2)), pullSamples: pulls.map((value) => Number(value.toFixed(2))),
    predictions,
    layers: rows.map((row) => ({ layer: row.layer, timing: row.timing })),
  };
  process.stdout.write(`cold N=${size} measured here: ${output.measuredColdSeconds} s; layer steps sum to ${output.layerStepSecondsTotal} s, so ${slotsPerEngine} at once on one engine\n`);
  process.stdout.write(`median layer step ${output.medianStep.seconds} s (pull ${output.medianStep.pull}, build ${output.medianStep.build}, push ${output.medianStep.push}); a parent pulled on an empty engine: ${output.crossEnginePullSeconds} s\n`);
  process.stdout.write(`${renderTable(["engines", "predicted s", "critical path s", "work bound s", "busiest engine's work s"], predictions.map((row) => [String(row.engines), String(row.predictedSeconds), String(row.criticalPathSeconds), String(row.workBoundSeconds), String(row.busiestEngineWork)]))}\n`);
  const out = values.out ?? path.join(projectRoot, ".strata/bench/scaling.json");
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(output, null, 2)}\n`);
  process.stdout.write(`written: ${out}\n`);
} finally {
  rmSync(side.root, { recursive: true, force: true });
  removeImages(prefix);
}

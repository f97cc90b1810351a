/**
 * Where a cold run's time goes, measured before anything is changed: one `strata up` of a fresh
 * N-layer synthetic catalog, then its run report (report.json, src/cli/report.ts) read back:
 * - start-up: from the command's start to the first layer's step (Pulumi CLI and engine, language
 *   host and program, fingerprints, registry look-ups, the docker provider's start);
 * - the steps: every layer's pull (its parent, for the cache), build and push, added up;
 * - the critical chain: the layers that held the run up, its steps, and the gaps between a parent's
 *   end and its child's start on it (the engine's scheduling and the provider's per-resource work);
 * - the tail: from the last step's end to the command's end (outputs, plugin shutdown, the report).
 * Run it with scripts/bench.sh breakdown [--size 200] [--parallel 8].
 */
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_PARALLEL } from "../src/core/concurrency.js";
import { renderTable } from "../src/cli/table.js";
import { type ReportData } from "../src/cli/report.js";
import { generateCatalog } from "./generate.js";
import { projectRoot } from "./stats.js";
import { StrataSide } from "./strata-side.js";
import { removeImages } from "./docker-images.js";

const { values } = parseArgs({ options: { size: { type: "string", default: "200" }, parallel: { type: "string", default: String(DEFAULT_PARALLEL) } } });
const size = Number(values.size);
const registry = `127.0.0.1:${process.env.STRATA_REGISTRY_PORT ?? "5000"}`;
const salt = `bd${Date.now().toString(36)}`;
const side = new StrataSide(`breakdown${size}-${salt}-mos9.0-dev`, Number(values.parallel), "docker");
try {
  generateCatalog(side.catalog, size, salt, path.join(projectRoot, "scripts/make-rootfs.sh"));
  const measured = side.up();
  const report = (JSON.parse(readFileSync(side.summaryFile, "utf8")) as { report: string }).report;
  const data = JSON.parse(readFileSync(path.join(path.dirname(report), "report.json"), "utf8")) as ReportData;
  const bars = data.layers.flatMap((layer) => (layer.bar === undefined ? [] : [{ layer, bar: layer.bar }]));
  const seconds = (ms: number): string => (ms / 1000).toFixed(1);
  const phases = (items: typeof bars): { pull: number; build: number; push: number } => items.reduce((sum, { bar }) => {
    const buildStart = bar.buildStart ?? bar.start;
    const pushStart = bar.pushStart ?? bar.end;
    return { pull: sum.pull + (buildStart - bar.start), build: sum.build + (pushStart - buildStart), push: sum.push + (bar.end - pushStart) };
  }, { pull: 0, build: 0, push: 0 });
  const firstStart = Math.min(...bars.map(({ bar }) => bar.start));
  const lastEnd = Math.max(...bars.map(({ bar }) => bar.end));
  const total = data.totalSeconds * 1000;
  const all = phases(bars);
  const chain = bars.filter(({ layer }) => layer.critical);
  const onChain = phases(chain);
  const gaps = chain.slice(1).reduce((sum, item, index) => sum + Math.max(0, item.bar.start - (chain[index]?.bar.end ?? item.bar.start)), 0);
  const rows = [
    ["command, end to end (the bench's clock)", seconds(measured.seconds * 1000), ""],
    ["run, as the report measures it", seconds(total), "100%"],
    ["start-up: to the first layer's step", seconds(firstStart), `${((firstStart / total) * 100).toFixed(0)}%`],
    ["steps, first start to last end", seconds(lastEnd - firstStart), `${(((lastEnd - firstStart) / total) * 100).toFixed(0)}%`],
    ["tail: last end to the command's end", seconds(total - lastEnd), `${(((total - lastEnd) / total) * 100).toFixed(0)}%`],
    [`all ${bars.length} steps added up: pull / build / push`, `${seconds(all.pull)} / ${seconds(all.build)} / ${seconds(all.push)}`, ""],
    [`critical chain (${chain.map(({ layer }) => layer.layer).join(" → ")})`, seconds(chain.reduce((sum, { bar }) => sum + (bar.end - bar.start), 0)), ""],
    ["  its pull / build / push", `${seconds(onChain.pull)} / ${seconds(onChain.build)} / ${seconds(onChain.push)}`, ""],
    ["  gaps between a parent's end and its child's start", seconds(gaps), ""],
  ];
  process.stdout.write(`cold run at N=${size}, --parallel ${values.parallel}, built ${measured.built}:\n${renderTable(["part", "seconds", "share"], rows)}\n`);
  process.stdout.write(`report: ${report}\n`);
} finally {
  removeImages(`${registry}/breakdown${size}-${salt}-`);
  rmSync(side.root, { recursive: true, force: true });
}

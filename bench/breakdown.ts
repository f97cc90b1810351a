/**
 * Where a cold run's time goes, measured before anything is changed: one `strata up` of a fresh
 * N-layer synthetic catalog, then its run report (report.json, src/cli/report.ts) read back:
 * - start-up: from the command's start to the first layer's step (Pulumi CLI and engine, language
 *   host and program, fingerprints, registry look-ups, the docker provider's start);
 * - the steps: every layer's pull (its parent, for the cache), build and push, added up;
 * - the critical chain: the layers that held the run up, its steps, and the gaps between a parent's
 *   end and its child's start on it (the engine's scheduling and the provider's per-resource work);
 * - the tail: from the last step's end to the command's end (outputs, plugin shutdown, the report);
 * - the CPU each component spent over the run (cpu-sampler.ts: the Docker engine, its children and
 *   containerd, the registry, the Pulumi engine, the language host, each plugin), in all and per layer.
 * Cold means empty caches: the engine's build cache is emptied first (docker builder prune -af; the
 * tree is new, so it has no images yet); --warm-engine keeps the caches (new content on a warm
 * engine). --peers bake then runs bake's cold build of the same tree (after buildx prune -af),
 * CPU-sampled the same way (buildkitd, its children, buildx).
 * --build-network host|none builds Strata's side with that strata:buildNetwork (default: the engine's).
 * Run it with scripts/bench.sh breakdown [--size 200] [--parallel 8] [--warm-engine] [--peers bake] [--build-network host] [--out FILE].
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_PARALLEL } from "../src/core/concurrency.js";
import { renderTable } from "../src/cli/table.js";
import { type ReportData } from "../src/cli/report.js";
import { generateCatalog } from "./generate.js";
import { projectRoot } from "./stats.js";
import { buildNetworkConfig, parseBuildNetworks, StrataSide } from "./strata-side.js";
import { emptyEngine, engineInfo, removeImages } from "./docker-images.js";
import { BakeSide } from "./bake-side.js";
import { cpuRows } from "./cpu-sampler.js";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "200" },
    parallel: { type: "string", default: String(DEFAULT_PARALLEL) },
    "warm-engine": { type: "boolean", default: false },
    peers: { type: "string", default: "" },
    "build-network": { type: "string", default: "default" },
    out: { type: "string" },
  },
});
if (values.peers !== "" && values.peers !== "bake") throw new Error(`--peers ${values.peers}: the breakdown knows one peer, bake`);
const size = Number(values.size);
const registry = `127.0.0.1:${process.env.STRATA_REGISTRY_PORT ?? "5000"}`;
const salt = `bd${Date.now().toString(36)}`;
const [buildNetwork, ...more] = parseBuildNetworks(values["build-network"]);
if (buildNetwork === undefined || more.length > 0) throw new Error(`--build-network ${values["build-network"]}: the breakdown measures one network`);
const side = new StrataSide(`breakdown${size}-${salt}-mos9.0-dev`, Number(values.parallel), "docker", buildNetworkConfig(buildNetwork));
const bake = values.peers === "bake" ? new BakeSide(`breakdown${size}-${salt}-mos9.0-bake`, registry) : undefined;
const scenario = values["warm-engine"] ? "new content on a warm engine" : "cold";
try {
  generateCatalog(side.catalog, size, salt, path.join(projectRoot, "scripts/make-rootfs.sh"));
  if (bake !== undefined) {
    cpSync(side.catalog, bake.catalog, { recursive: true });
    cpSync(path.join(side.root, "build-order.txt"), path.join(bake.root, "build-order.txt"));
  }
  if (!values["warm-engine"]) emptyEngine(`${registry}/breakdown${size}-${salt}-`);
  // Read before the run: what the engine held (other images, emulators) when the tree started building.
  const engine = engineInfo();
  const measured = side.up(undefined, true);
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
  process.stdout.write(`${scenario} run at N=${size}, --parallel ${values.parallel}, built ${measured.built}:\n${renderTable(["part", "seconds", "share"], rows)}\n`);
  process.stdout.write(`report: ${report}\n`);
  const cpu = measured.cpu;
  if (cpu === undefined) throw new Error("the Strata run was not CPU-sampled");
  process.stdout.write(`CPU by component over the same run (sampled every ${cpu.intervalMs} ms, ${cpu.sweeps} sweeps; per layer: ÷ ${measured.built} built; ${"none" in cpu.engineCgroup ? cpu.engineCgroup.none : "with dockerd's cgroup as a check"}):\n`);
  process.stdout.write(`${renderTable(["part", "CPU s", "per layer", "of busy"], cpuRows(cpu, measured.built))}\n`);
  let baked: ReturnType<BakeSide["up"]> | undefined;
  if (bake !== undefined) {
    if (!values["warm-engine"]) bake.emptyCache();
    baked = bake.up(undefined, true);
    if (baked.cpu === undefined) throw new Error("the bake run was not CPU-sampled");
    process.stdout.write(`bake, ${scenario} on the same tree: ${baked.seconds.toFixed(1)} s, built ${baked.built}; CPU by component:\n`);
    process.stdout.write(`${renderTable(["part", "CPU s", "per layer", "of busy"], cpuRows(baked.cpu, baked.built))}\n`);
  }
  const out = values.out ?? path.join(projectRoot, ".strata/bench/breakdown.json");
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({
    size, parallel: Number(values.parallel), buildNetwork, scenario, machine: { cores: (await import("node:os")).cpus().length }, engine,
    strata: {
      seconds: measured.seconds, built: measured.built, reportSeconds: data.totalSeconds,
      parts: Object.fromEntries(rows.map(([part, value]) => [part, value])),
      cpu,
    },
    ...(baked === undefined ? {} : { bake: { seconds: baked.seconds, built: baked.built, cpu: baked.cpu } }),
  }, null, 2)}\n`);
  process.stdout.write(`written: ${out}\n`);
} finally {
  removeImages(`${registry}/breakdown${size}-${salt}-`);
  rmSync(side.root, { recursive: true, force: true });
  if (bake !== undefined) rmSync(bake.root, { recursive: true, force: true });
}

/**
 * What a second platform costs: the same synthetic catalog of N layers built by a stack with one
 * platform (linux/amd64) and by one with two (linux/amd64 + linux/arm64, arm64 steps under
 * qemu-user-static on this machine), taking turns, same engine and registry. Scenarios: cold, no-op,
 * one leaf changed; medians of --runs. Prints a table and writes JSON.
 *   node dist/bench/platforms.js [--size 50] [--runs 3] [--out FILE]
 * Run it with scripts/bench.sh platforms (which starts the services and registers the emulation).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { renderTable } from "../src/cli/table.js";
import { removeImages } from "./docker-images.js";
import { generateCatalog, touch } from "./generate.js";
import { median, projectRoot } from "./stats.js";
import { type Measurement, StrataSide } from "./strata-side.js";

const { values } = parseArgs({ options: { size: { type: "string", default: "50" }, runs: { type: "string", default: "3" }, out: { type: "string" } } });
const size = Number(values.size);
const runs = Number(values.runs);
const registry = `127.0.0.1:${process.env.STRATA_REGISTRY_PORT ?? "5000"}`;
const rootfsScript = path.join(projectRoot, "scripts/make-rootfs.sh");
const SCENARIOS = ["cold", "no-op", "leaf changed"] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Side {
  readonly name: string;
  readonly platforms: readonly string[];
  side: StrataSide;
  prefix: string;
}

/** A fresh catalog for a side: a new salt, so its first up is cold. A two-platform base takes its platform's rootfs. */
function freshSide(name: string, platforms: readonly string[], run: number): Side {
  const salt = `${Date.now().toString(36)}${run}`;
  const osRelease = `plat${platforms.length}-${salt}`;
  const side = new StrataSide(`${osRelease}-mos9.0-dev`, 8, "docker", { "strata:platforms": JSON.stringify(platforms) });
  generateCatalog(side.catalog, size, salt, rootfsScript);
  if (platforms.length > 1) {
    const base = path.join(side.catalog, "base");
    renameSync(path.join(base, "rootfs.tar"), path.join(base, "rootfs-amd64.tar"));
    execFileSync(rootfsScript, ["busybox", path.join(base, "rootfs-arm64.tar"), "linux/arm64"], { stdio: "ignore" });
    writeFileSync(path.join(base, "Dockerfile"), readFileSync(path.join(base, "Dockerfile"), "utf8").replace("FROM scratch\nADD rootfs.tar /", "FROM scratch\nARG TARGETARCH\nADD rootfs-${TARGETARCH}.tar /"));
  }
  return { name, platforms, side, prefix: `${registry}/${osRelease}-` };
}

/** Images built (per-platform rows, or the one platform's layers) and indexes written, from the last summary. */
function counts(side: StrataSide): { images: number; indexes: number } {
  const rows = (JSON.parse(readFileSync(side.summaryFile, "utf8")) as { layers: { layer: string; result: string; detail: string }[] }).layers;
  const built = rows.filter((row) => row.result === "built");
  const indexes = built.filter((row) => row.detail.startsWith("image index")).length;
  return { images: built.length - indexes, indexes };
}

interface Sample { readonly side: string; readonly scenario: Scenario; readonly run: number; readonly seconds: number; readonly images: number; readonly indexes: number; readonly peakMiB?: number }
const samples: Sample[] = [];
const record = (side: Side, scenario: Scenario, run: number, measured: Measurement): void => {
  const built = counts(side.side);
  samples.push({ side: side.name, scenario, run, seconds: measured.seconds, ...built, ...(measured.peakMiB === undefined ? {} : { peakMiB: measured.peakMiB }) });
  console.log(`N=${size} run ${run} ${scenario}: ${side.name} ${measured.seconds.toFixed(1)} s (${built.images} images, ${built.indexes} indexes built)`);
};

for (let run = 0; run < runs; run++) {
  // Taking turns: the side that goes first alternates from run to run.
  const sides = [freshSide("one platform", ["linux/amd64"], run), freshSide("two platforms", ["linux/amd64", "linux/arm64"], run)];
  if (run % 2 === 1) sides.reverse();
  try {
    for (const side of sides) record(side, "cold", run, side.side.up());
    for (const side of sides) record(side, "no-op", run, side.side.up());
    for (const side of sides) {
      touch(side.side.catalog, "svc000", `run ${run}`);
      record(side, "leaf changed", run, side.side.up());
    }
  } finally {
    for (const side of sides) removeImages(side.prefix);
  }
}

const medianOf = (side: string, scenario: Scenario, pick: (sample: Sample) => number): number => median(samples.filter((sample) => sample.side === side && sample.scenario === scenario).map(pick));
const rows = SCENARIOS.map((scenario) => {
  const one = medianOf("one platform", scenario, (sample) => sample.seconds);
  const two = medianOf("two platforms", scenario, (sample) => sample.seconds);
  return [scenario, one.toFixed(1), two.toFixed(1), (two / one).toFixed(2), String(medianOf("one platform", scenario, (sample) => sample.images)), `${medianOf("two platforms", scenario, (sample) => sample.images)} + ${medianOf("two platforms", scenario, (sample) => sample.indexes)} indexes`];
});
console.log(`\nN=${size}, medians of ${runs} runs, seconds (arm64 under emulation on this ${process.arch} machine)`);
console.log(renderTable(["scenario", "linux/amd64", "linux/amd64 + linux/arm64", "ratio", "built (one)", "built (two)"], rows));
const out = values.out ?? path.join(projectRoot, ".strata/bench", `platforms-${new Date().toISOString().slice(0, 10)}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ size, runs, registry, samples }, null, 2)}\n`);
console.log(`samples: ${out}`);

/**
 * Strata against a plain build script on synthetic catalogs of N layers, on
 * the same daemon and registry, in one run. Scenarios: cold full build, no-op
 * (repeated: each run measures several no-ops in a row), one leaf file
 * changed, one common-libs file changed. Each of Strata's builders named in
 * --builders (docker: docker.Image; strata: Strata's LayerImage) runs every
 * scenario on its own copy of the catalog, taking turns with the peer, so
 * the builders are compared in the same run. Prints a table and writes JSON.
 * Run it with scripts/bench.sh (which starts the services).
 *   node dist/bench/run.js [--sizes 10,50,200] [--runs 3] [--noop-repeats 3] [--parallel 8]
 *     [--builders docker,strata] [--sweep 2,4,8,16] [--out FILE]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { parse, stringify } from "yaml";
import { DEFAULT_PARALLEL } from "../src/core/concurrency.js";
import { type Builder, BUILDERS } from "../src/core/config.js";
import { renderTable } from "../src/cli/table.js";
import { removeImages } from "./docker-images.js";
import { generateCatalog, touch } from "./generate.js";
import { median, projectRoot } from "./stats.js";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "10,50,200" },
    runs: { type: "string", default: "3" },
    "noop-repeats": { type: "string", default: "3" },
    parallel: { type: "string", default: String(DEFAULT_PARALLEL) },
    builders: { type: "string", default: "docker" },
    sweep: { type: "string" },
    out: { type: "string" },
  },
});
const sizes = values.sizes.split(",").map(Number);
const runs = Number(values.runs);
const noopRepeats = Number(values["noop-repeats"]);
const builders = values.builders.split(",") as Builder[];
for (const builder of builders) if (!(BUILDERS as readonly string[]).includes(builder)) throw new Error(`--builders ${values.builders}: use ${BUILDERS.join(", ")}`);
const registry = `127.0.0.1:${process.env.STRATA_REGISTRY_PORT ?? "5000"}`;
const SCENARIOS = ["cold", "no-op", "leaf changed", "common-libs changed"] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Measurement {
  readonly seconds: number;
  readonly built: number;
  readonly pushed: number;
  readonly peakMiB?: number;
}

function seconds(task: () => void): number {
  const started = process.hrtime.bigint();
  task();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** One Strata project with its own catalog, backend and group. */
class StrataSide {
  readonly root = mkdtempSync(path.join(tmpdir(), "strata-bench-"));
  readonly catalog = path.join(this.root, "catalog");
  readonly project = path.join(this.root, "project");
  readonly env: NodeJS.ProcessEnv;

  constructor(readonly group: string, parallel: number, readonly builder: Builder) {
    mkdirSync(this.project, { recursive: true });
    mkdirSync(path.join(this.root, "state"));
    const project = parse(readFileSync(path.join(projectRoot, "Pulumi.yaml"), "utf8")) as Record<string, unknown>;
    project.main = path.relative(this.project, path.join(projectRoot, "dist/index.js"));
    project.plugins = { providers: [{ name: "strata", path: path.join(projectRoot, "provider") }] };
    writeFileSync(path.join(this.project, "Pulumi.yaml"), stringify(project));
    const [osRelease] = group.split("-mos9.0-");
    writeFileSync(path.join(this.project, "Pulumi.bench.yaml"), stringify({ config: { "strata:registry": registry, "strata:osRelease": osRelease, "strata:channel": "dev", "strata:builder": builder } }));
    this.env = { ...process.env, PULUMI_BACKEND_URL: `file://${this.root}/state`, PULUMI_CONFIG_PASSPHRASE: "bench", STRATA_MEMORY_REPORT: path.join(this.root, "memory.json") };
    this.parallel = parallel;
  }

  parallel: number;

  up(): Measurement {
    const summary = path.join(this.root, "summary.json");
    let result: ReturnType<typeof spawnSync> | undefined;
    const elapsed = seconds(() => {
      // The engine's progress goes to a pipe, not the terminal (the table is the output); shown on failure.
      result = spawnSync("node", [path.join(projectRoot, "bin/strata.js"), "up", "--stack", "bench", "--project", this.project, "--catalog", this.catalog,
        "--summary-json", summary, "--parallel", String(this.parallel)], { env: this.env, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", maxBuffer: 64 << 20 });
    });
    if (result?.status !== 0) throw new Error(`strata up failed in ${this.root}:\n${String(result?.stderr ?? "")}`);
    const layers = (JSON.parse(readFileSync(summary, "utf8")) as { layers: { result: string }[] }).layers;
    const built = layers.filter((layer) => layer.result === "built").length;
    const memory = existsSync(this.env.STRATA_MEMORY_REPORT as string) ? (JSON.parse(readFileSync(this.env.STRATA_MEMORY_REPORT as string, "utf8")) as { maxRssKiB: number }).maxRssKiB / 1024 : undefined;
    return { seconds: elapsed, built, pushed: built, ...(memory === undefined ? {} : { peakMiB: memory }) };
  }

  plan(): number {
    return seconds(() => {
      execFileSync("node", [path.join(projectRoot, "bin/strata.js"), "plan", "--stack", "bench", "--project", this.project, "--catalog", this.catalog, "--json"], { env: this.env, stdio: "ignore" });
    });
  }
}

/** The plain script, on its own copy of the catalog and its own group. */
class PeerSide {
  readonly root = mkdtempSync(path.join(tmpdir(), "strata-bench-peer-"));
  readonly catalog = path.join(this.root, "catalog");

  constructor(readonly group: string) {}

  up(): Measurement {
    let output = "";
    const elapsed = seconds(() => {
      output = execFileSync(path.join(projectRoot, "bench/peer.sh"), [this.catalog, path.join(this.root, "build-order.txt"), `${registry}/${this.group}`, "1.0-p0"], { encoding: "utf8" });
    });
    const match = /built (\d+) changed (\d+) pushed (\d+)/.exec(output);
    return { seconds: elapsed, built: Number(match?.[2] ?? 0), pushed: Number(match?.[3] ?? 0) };
  }
}

interface Sample {
  readonly size: number;
  readonly run: number;
  readonly scenario: Scenario;
  /** By builder. */
  readonly strata: Record<string, Measurement>;
  readonly peer: Measurement;
}

/** One catalog through the scenarios, each builder and the peer taking turns; `withPeer: false` measures Strata alone. */
function runOnce(size: number, run: number, parallel: number, scenarios: readonly Scenario[], withPeer = true): { samples: Sample[]; planSeconds: number } {
  const salt = `${Date.now().toString(36)}${run}`;
  const sides = builders.map((builder) => new StrataSide(`bench${size}-${salt}-${builder}-mos9.0-dev`, parallel, builder));
  const peer = new PeerSide(`bench${size}-${salt}-mos9.0-peer`);
  const [first] = sides as [StrataSide];
  generateCatalog(first.catalog, size, salt, path.join(projectRoot, "scripts/make-rootfs.sh"));
  for (const root of [...sides.slice(1).map((side) => side.root), peer.root]) {
    cpSync(first.catalog, path.join(root, "catalog"), { recursive: true });
    cpSync(path.join(first.root, "build-order.txt"), path.join(root, "build-order.txt"));
  }
  const samples: Sample[] = [];
  let planSeconds = 0;
  const notRun: Measurement = { seconds: Number.NaN, built: 0, pushed: 0 };
  try {
    for (const scenario of scenarios) {
      if (scenario === "leaf changed") for (const catalog of [...sides.map((side) => side.catalog), peer.catalog]) touch(catalog, "svc000", salt);
      if (scenario === "common-libs changed") for (const catalog of [...sides.map((side) => side.catalog), peer.catalog]) touch(catalog, "libs-a", salt);
      // A no-op is what users run most: measure several in a row, the first
      // one right after the other sides' pushes included.
      const repeats = scenario === "no-op" ? noopRepeats : 1;
      for (let repeat = 0; repeat < repeats; repeat++) {
        // Rotate who goes first, so no side always meets a warmer page cache.
        const turns: (StrataSide | PeerSide)[] = [...sides, ...(withPeer ? [peer] : [])];
        const shift = (run + repeat) % turns.length;
        const strata: Record<string, Measurement> = {};
        let peerMeasurement = notRun;
        for (const side of [...turns.slice(shift), ...turns.slice(0, shift)]) {
          if (side instanceof StrataSide) strata[side.builder] = side.up();
          else peerMeasurement = side.up();
        }
        samples.push({ size, run, scenario, strata, peer: peerMeasurement });
        const figures = builders.map((builder) => `${builder} ${strata[builder]?.seconds.toFixed(1)} s`).join(", ");
        process.stderr.write(`N=${size} run ${run} ${scenario}${repeats > 1 ? ` #${repeat + 1}` : ""}: ${figures}, peer ${peerMeasurement.seconds.toFixed(1)} s\n`);
      }
      if (scenario === "no-op") planSeconds = first.plan();
    }
  } finally {
    for (const side of sides) rmSync(side.root, { recursive: true, force: true });
    rmSync(peer.root, { recursive: true, force: true });
    removeImages(`${registry}/bench${size}-${salt}-`);
  }
  return { samples, planSeconds };
}

const output: Record<string, unknown> = { registry, runs, noopRepeats, builders, parallel: Number(values.parallel), machine: { cores: (await import("node:os")).cpus().length } };

if (values.sweep !== undefined) {
  // Strata alone, cold, N=50, `runs` times per value with the values interleaved, so a slow spell of
  // the disk does not land on one value only.
  const parallelValues = values.sweep.split(",").map(Number);
  const times = new Map<number, number[]>(parallelValues.map((parallel) => [parallel, []]));
  for (let run = 0; run < runs; run++) {
    for (const parallel of parallelValues) times.get(parallel)?.push(runOnce(50, run, parallel, ["cold"], false).samples[0]?.strata[builders[0] as Builder]?.seconds ?? Number.NaN);
  }
  const sweep = Object.fromEntries([...times].map(([parallel, seconds]) => [String(parallel), Number(median(seconds).toFixed(1))]));
  output.parallelSweepN50Cold = sweep;
  process.stdout.write(`cold build at N=50 by --parallel (Strata alone, median of ${runs}): ${JSON.stringify(sweep)}\n`);
}

const all: Sample[] = [];
const plans: Record<string, number> = {};
for (const size of sizes) {
  const planTimes: number[] = [];
  for (let run = 0; run < runs; run++) {
    const { samples, planSeconds } = runOnce(size, run, Number(values.parallel), SCENARIOS);
    all.push(...samples);
    planTimes.push(planSeconds);
  }
  plans[String(size)] = Number(median(planTimes).toFixed(1));
}

const rows: string[][] = [];
const table: Record<string, unknown>[] = [];
for (const size of sizes) {
  for (const scenario of SCENARIOS) {
    const samples = all.filter((sample) => sample.size === size && sample.scenario === scenario);
    if (samples.length === 0) continue;
    const peer = median(samples.map((sample) => sample.peer.seconds));
    for (const builder of builders) {
      const measured = samples.map((sample) => sample.strata[builder]).filter((measurement): measurement is Measurement => measurement !== undefined);
      const strata = median(measured.map((measurement) => measurement.seconds));
      const memory = measured.map((measurement) => measurement.peakMiB).filter((value): value is number => value !== undefined);
      const entry = {
        size, scenario, builder,
        strataSeconds: Number(strata.toFixed(1)), peerSeconds: Number(peer.toFixed(1)), ratio: Number((strata / peer).toFixed(2)),
        strataBuilt: median(measured.map((measurement) => measurement.built)), peerBuilt: median(samples.map((sample) => sample.peer.built)),
        strataPushed: median(measured.map((measurement) => measurement.pushed)), peerPushed: median(samples.map((sample) => sample.peer.pushed)),
        strataPeakMiB: memory.length === 0 ? null : Number(median(memory).toFixed(0)),
      };
      table.push(entry);
      rows.push([String(size), scenario, builder, String(entry.strataSeconds), String(entry.peerSeconds), String(entry.ratio), `${entry.strataBuilt}/${entry.strataPushed}`, `${entry.peerBuilt}/${entry.peerPushed}`, entry.strataPeakMiB === null ? "-" : String(entry.strataPeakMiB)]);
    }
  }
}
output.results = table;
output.samples = all;
output.planSeconds = plans;
process.stdout.write(`${renderTable(["N", "scenario", "builder", "strata s", "peer s", "strata/peer", "strata built/pushed", "peer changed/pushed", "strata peak MiB"], rows)}\n`);
process.stdout.write(`strata plan (preview) seconds by N: ${JSON.stringify(plans)}\n`);
const out = values.out ?? path.join(projectRoot, ".strata/bench/run.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(output, null, 2)}\n`);
process.stdout.write(`written: ${out}\n`);

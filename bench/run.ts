/**
 * Strata against a plain build script on synthetic catalogs of N layers, on
 * the same daemon and registry, in one run. Scenarios: cold full build (each side's build cache
 * emptied first: the engine's build cache and the tree's images, `buildx prune -af` for bake), new
 * content on a warm engine (every layer changed after the cold run, caches kept: what "cold" meant
 * before issue #28), no-op
 * (repeated: each run measures several no-ops in a row), one leaf file
 * changed, one common-libs file changed; then CI runs of a Gerrit change to
 * one leaf, with dev up to date: copying what the channel holds, and
 * rebuilding every layer (strata:copyUnchanged false, the comparison), each on
 * the warm engine and on an empty one (local images and build cache removed).
 * The plain peer has no CI mode and sits those out; with --peers plain,bake, `docker buildx bake`
 * on a current BuildKit (bake-side.ts) runs every scenario too, CI leaf runs included (it builds the
 * tree and pushes it under the CI tags), and on an empty cache where Strata's engine is emptied.
 * Each of Strata's builders named in
 * --builders (docker: docker.Image; strata: Strata's LayerImage) runs every
 * scenario on its own copy of the catalog, taking turns with the peer, so
 * the builders are compared in the same run. Prints a table and writes JSON.
 * Run it with scripts/bench.sh (which starts the services).
 *   node dist/bench/run.js [--sizes 10,50,200] [--runs 3] [--noop-repeats 3] [--parallel 8]
 *     [--builders docker,strata] [--peers plain,bake] [--sweep 2,4,8,16] [--scenarios LIST] [--no-peer] [--out FILE]
 * --scenarios runs only those (cold always runs first: the others start from it); --no-peer leaves
 * the plain script out (a run focused on Strata's own scenarios, such as the CI ones). --signing
 * gives each builder a second side, "<builder>+signed", on a copy of the same catalog whose stack
 * signs and attests every image (ImageAttestations: SBOM, provenance, cosign's classic tags) with a
 * test-only key (bench/signing-key.ts): what signing adds, in the same run; its no-op runs are
 * CPU-sampled too (what 200 more resources cost the engine's diff).
 * "pushed" is measured in the registry (pushes.ts: tags new or moved after the run); the cold runs
 * and the new-content runs of Strata and bake are CPU-sampled by component (cpu-sampler.ts).
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_PARALLEL } from "../src/core/concurrency.js";
import { type Builder, BUILDERS } from "../src/core/config.js";
import { renderTable } from "../src/cli/table.js";
import { emptyEngine, engineInfo, pullImages, removeImages, taggedImages } from "./docker-images.js";
import { buildNetworkConfig, type Measurement, parseBuildNetworks, seconds, sideLabel, StrataSide } from "./strata-side.js";
import { BakeSide } from "./bake-side.js";
import { generateCatalog, touch, touchEvery } from "./generate.js";
import { median, projectRoot } from "./stats.js";
import { cpuRows, sweep } from "./cpu-sampler.js";
import { CI_SCENARIOS, ciEntries, cpuEntries, resultEntries, SAMPLED_SCENARIOS, type Sample, type Scenario, SCENARIO_MEANINGS, SCENARIOS } from "./results.js";
import { groupDigests, tagsWritten } from "./pushes.js";
import { benchSigningKey } from "./signing-key.js";
import { measureSbomReads, type SbomReads } from "./sbom-reads.js";
import { type SettleResult, waitForQuietEngine } from "./engine-settle.js";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "10,50,200" },
    runs: { type: "string", default: "3" },
    "noop-repeats": { type: "string", default: "3" },
    parallel: { type: "string", default: String(DEFAULT_PARALLEL) },
    builders: { type: "string", default: "docker" },
    sweep: { type: "string" },
    scenarios: { type: "string" },
    "no-peer": { type: "boolean", default: false },
    peers: { type: "string", default: "plain" },
    out: { type: "string" },
    signing: { type: "boolean", default: false },
    "build-network": { type: "string", default: "default" },
  },
});
const sizes = values.sizes.split(",").map(Number);
const runs = Number(values.runs);
const noopRepeats = Number(values["noop-repeats"]);
const builders = values.builders.split(",") as Builder[];
for (const builder of builders) if (!(BUILDERS as readonly string[]).includes(builder)) throw new Error(`--builders ${values.builders}: use ${BUILDERS.join(", ")}`);
const signingKey = values.signing ? benchSigningKey() : undefined;
/** Each builder gets a side per strata:buildNetwork named here, taking turns with the others (bake's buildkitd keeps its own: the host's). */
const networks = parseBuildNetworks(values["build-network"]);
/** Each side's name in the results: the builders on each network, and with --signing each of those signed too. */
const labels = builders.flatMap((builder) => networks.flatMap((network) => [sideLabel(builder, network, false), ...(signingKey === undefined ? [] : [sideLabel(builder, network, true)])]));
/** With --signing, the no-op runs are sampled too: where a no-op's time goes with the attestations' resources. */
const sampledScenarios: ReadonlySet<Scenario> = signingKey === undefined ? SAMPLED_SCENARIOS : new Set([...SAMPLED_SCENARIOS, "no-op"]);
const registry = `127.0.0.1:${process.env.STRATA_REGISTRY_PORT ?? "5000"}`;
const peers = new Set(values.peers.split(","));
for (const peer of peers) if (peer !== "plain" && peer !== "bake") throw new Error(`--peers ${values.peers}: use plain, bake or both`);
const withBake = peers.has("bake");
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
    if (match === null) throw new Error(`bench/peer.sh ended without its "built N changed M pushed P" line:\n${output}`);
    return { seconds: elapsed, built: Number(match[2]) };
  }
}

const CI_SCENARIOS_ORDER = [...CI_SCENARIOS];
/** The groups the signing sides published into, by size (the last run's is measured by sbom-reads.ts). */
const signedGroups = new Map<number, string>();
/** How long each cold turn waited for a quiet engine, and what dockerd used meanwhile (engine-settle.ts). */
const engineSettles: ({ size: number; run: number; side: string } & SettleResult)[] = [];
/** After a run's cold turns: the images of each side that a later side's cold turn removed, brought back (runOnce), and the engine's settle after it. */
interface ColdRestore {
  readonly size: number;
  readonly run: number;
  readonly restored: readonly { readonly side: string; readonly images: number; readonly how: "pulled" | "rebuilt" }[];
  readonly settle: SettleResult;
}
const coldRestores: ColdRestore[] = [];

/** A side's run, with what it pushed read from the registry before and after (the tags of its group that are new or moved). */
async function withPushes(group: string, up: () => Measurement): Promise<Measurement> {
  const before = await groupDigests(registry, group);
  const measurement = up();
  return { ...measurement, pushed: tagsWritten(before, await groupDigests(registry, group)) };
}

/** Work of bake's BuildKit left over after its turns, by what the turn was (bake-side.ts pause). */
const bakeAfterTurns: { turn: string; cpuSeconds: number }[] = [];
/** bake's BuildKit runs only for bake's own work: continued for `work`, left to finish, then stopped again. */
function bakeTurn<T>(bake: BakeSide, work: () => T, turn: string): T {
  bake.resume();
  let result: T;
  try {
    result = work();
  } catch (failure) {
    // The turn's own failure is the one to report; one of stopping buildkitd after it goes beside it.
    try {
      bake.pause();
    } catch (pauseFailure) {
      throw new AggregateError([failure, pauseFailure], `bake's ${turn} turn failed, and stopping its buildkitd afterwards failed too`);
    }
    throw failure;
  }
  const cpuSeconds = Number(bake.pause().toFixed(2));
  bakeAfterTurns.push({ turn, cpuSeconds });
  if (cpuSeconds >= 0.5) process.stderr.write(`bake's buildkitd worked ${cpuSeconds} CPU-s after its turn (${turn}) before it was stopped\n`);
  return result;
}

/** One catalog through the scenarios, each builder and the peer taking turns; `withPeer: false` measures Strata alone. */
async function runOnce(size: number, run: number, parallel: number, scenarios: readonly Scenario[], withPeer = true): Promise<{ samples: Sample[]; planSeconds: number }> {
  const salt = `${Date.now().toString(36)}${run}`;
  const sides = builders.flatMap((builder) => networks.flatMap((network) => {
    const name = `bench${size}-${salt}-${builder}${network === "default" ? "" : `-${network}`}`;
    return [
      new StrataSide(`${name}-mos9.0-dev`, parallel, builder, buildNetworkConfig(network)),
      ...(signingKey === undefined ? [] : [new StrataSide(`${name}-signed-mos9.0-dev`, parallel, builder, buildNetworkConfig(network), signingKey)]),
    ];
  }));
  const peer = new PeerSide(`bench${size}-${salt}-mos9.0-peer`);
  const bake = withBake ? new BakeSide(`bench${size}-${salt}-mos9.0-bake`, registry) : undefined;
  const [first] = sides as [StrataSide];
  for (const side of sides) if (side.signed) signedGroups.set(size, side.group);
  generateCatalog(first.catalog, size, salt, path.join(projectRoot, "scripts/make-rootfs.sh"));
  for (const root of [...sides.slice(1).map((side) => side.root), peer.root, ...(bake === undefined ? [] : [bake.root])]) {
    cpSync(first.catalog, path.join(root, "catalog"), { recursive: true });
    cpSync(path.join(first.root, "build-order.txt"), path.join(root, "build-order.txt"));
  }
  const samples: Sample[] = [];
  let planSeconds = 0;
  const notRun: Measurement = { seconds: Number.NaN, built: 0 };
  // Cold: each side starts from empty caches, emptied right before its own turn (the engine's build
  // cache and every side's images; bake's BuildKit cache, bake keeping no images in the engine), so
  // no side builds on another's cache. Every side's images, not only its own: with the first side's N
  // images still in the engine, dockerd worked 6-20 CPU-s more in the second side's cold N=200 turn,
  // whichever side that was; without them, within 4 CPU-s either way in a two-run check, and in the
  // four runs after it the side with more dockerd CPU was not the second (README *What signing costs*).
  const everySide = `${registry}/bench${size}-${salt}-`;
  /** The tags of each side's images that a later side's cold turn removed. */
  const removedFromOthers = new Map<StrataSide | PeerSide, Set<string>>();
  const emptyCaches = (side: StrataSide | PeerSide | BakeSide): void => {
    if (side instanceof BakeSide) {
      bakeTurn(side, () => side.emptyCache(), "buildx prune");
      return;
    }
    const held = taggedImages(everySide);
    for (const other of [...sides, peer]) {
      if (other === side) continue;
      const refs = held.filter((ref) => ref.startsWith(`${registry}/${other.group}/`));
      if (refs.length > 0) removedFromOthers.set(other, new Set([...(removedFromOthers.get(other) ?? []), ...refs]));
    }
    emptyEngine(everySide);
  };
  /**
   * After the cold turns (untimed), each side whose images a later cold turn removed gets them back,
   * so the later scenarios find that side's images as its own cold run left them (not its build
   * cache: the next side's cold turn pruned that, as before): a Strata side's images
   * are pulled (it needs them only as parents, and a pulled image has the built one's id); the
   * peer rebuilds, since its builder (DOCKER_BUILDKIT=0) takes its cache only from images built on
   * this engine, never from pulled ones. Then the engine is let settle, as before a cold turn.
   */
  const restoreRemoved = async (): Promise<ColdRestore["restored"]> => {
    const present = new Set(taggedImages(everySide));
    const restored: { side: string; images: number; how: "pulled" | "rebuilt" }[] = [];
    const wanted: string[] = [];
    for (const [side, refs] of removedFromOthers) {
      const missing = [...refs].filter((ref) => !present.has(ref));
      if (missing.length === 0 || !needsImagesLater(side)) continue;
      wanted.push(...missing);
      if (side instanceof PeerSide) {
        side.up();
        restored.push({ side: "peer", images: missing.length, how: "rebuilt" });
      } else {
        await pullImages(missing);
        restored.push({ side: side.label, images: missing.length, how: "pulled" });
      }
    }
    removedFromOthers.clear();
    const now = new Set(taggedImages(everySide));
    const stillMissing = wanted.filter((ref) => !now.has(ref));
    if (stillMissing.length > 0) throw new Error(`${stillMissing.length} images a cold turn removed are not back after the cold turns (${stillMissing.slice(0, 3).join(", ")}): the later scenarios would not find them`);
    return restored;
  };
  // Only scenarios after cold need the images back (a sweep, or --scenarios cold, runs none): the
  // peer takes no part in the CI scenarios, and those on an empty engine empty it first.
  const needsImagesLater = (side: StrataSide | PeerSide): boolean => scenarios.some((scenario) => scenario !== "cold"
    && (side instanceof PeerSide ? !CI_SCENARIOS.has(scenario) : !scenario.endsWith("empty engine")));
  const laterScenarios = [...sides, peer].some(needsImagesLater);
  try {
    for (const scenario of scenarios) {
      const catalogs = [...sides.map((side) => side.catalog), peer.catalog, ...(bake === undefined ? [] : [bake.catalog])];
      if (scenario === "new content on a warm engine") for (const catalog of catalogs) touchEvery(catalog, `${salt}-warm`);
      if (scenario === "leaf changed") for (const catalog of catalogs) touch(catalog, "svc000", salt);
      if (scenario === "common-libs changed") for (const catalog of catalogs) touch(catalog, "libs-a", salt);
      if (CI_SCENARIOS.has(scenario)) {
        // The change under review touches one leaf; dev, up to date before it, does not have it.
        if (scenario === "ci leaf changed") for (const catalog of [...sides.map((side) => side.catalog), ...(bake === undefined ? [] : [bake.catalog])]) touch(catalog, "svc000", `${salt}-ci`);
        // A fresh runner: an empty engine here, empty caches in StrataSide.up.
        if (scenario.endsWith("empty engine")) emptyEngine(`${registry}/bench${size}-${salt}-`);
        const ci = { change: 1000 * (run + 1) + CI_SCENARIOS_ORDER.indexOf(scenario), rebuildAll: scenario.startsWith("ci rebuild all"), freshRunner: scenario.endsWith("empty engine") };
        const strata: Record<string, Measurement> = {};
        for (const side of sides) {
          if (scenario.endsWith("empty engine") && side !== first) emptyEngine(`${registry}/bench${size}-${salt}-`);
          strata[side.label] = await withPushes(side.group, () => side.up(ci));
        }
        // bake's CI leaf run: what a team does without Strata, the whole tree built and pushed under the CI tags.
        let bakeMeasurement = notRun;
        if (bake !== undefined && !ci.rebuildAll) {
          if (ci.freshRunner) bakeTurn(bake, () => bake.emptyCache(), "buildx prune");
          const tag = `1.0-p0-${ci.change}`;
          bakeMeasurement = await withPushes(bake.group, () => bakeTurn(bake, () => bake.up(tag), scenario));
        }
        samples.push({ size, run, scenario, strata, peer: notRun, bake: bakeMeasurement });
        const figures = labels.map((builder) => `${builder} ${strata[builder]?.seconds.toFixed(1)} s (built ${strata[builder]?.built}, copied ${strata[builder]?.copied})`).join(", ");
        process.stderr.write(`N=${size} run ${run} ${scenario}: ${figures}${bakeMeasurement === notRun ? "" : `, bake ${bakeMeasurement.seconds.toFixed(1)} s`}\n`);
        continue;
      }
      // A no-op is what users run most: measure several in a row, the first
      // one right after the other sides' pushes included.
      const repeats = scenario === "no-op" ? noopRepeats : 1;
      for (let repeat = 0; repeat < repeats; repeat++) {
        // Rotate who goes first, so no side always meets a warmer page cache.
        const turns: (StrataSide | PeerSide | BakeSide)[] = [...sides, ...(withPeer && peers.has("plain") ? [peer] : []), ...(bake === undefined ? [] : [bake])];
        const shift = (run + repeat) % turns.length;
        const strata: Record<string, Measurement> = {};
        let peerMeasurement = notRun;
        let bakeMeasurement = notRun;
        const sampled = sampledScenarios.has(scenario);
        for (const side of [...turns.slice(shift), ...turns.slice(0, shift)]) {
          if (scenario === "cold") {
            emptyCaches(side);
            const settle = await waitForQuietEngine();
            engineSettles.push({ size, run, side: side instanceof StrataSide ? side.label : side instanceof BakeSide ? "bake" : "peer", ...settle });
            if (settle.engineSeen) process.stderr.write(`N=${size} run ${run} cold: the engine ${settle.quiet ? "was quiet" : "was still working"} after ${settle.seconds.toFixed(1)} s (dockerd ${settle.engineCpuSeconds.toFixed(2)} CPU-s meanwhile)\n`);
          }
          if (side instanceof StrataSide) strata[side.label] = await withPushes(side.group, () => side.up(undefined, sampled));
          else if (side instanceof BakeSide) bakeMeasurement = await withPushes(side.group, () => bakeTurn(side, () => side.up(undefined, sampled), scenario));
          else peerMeasurement = await withPushes(side.group, () => side.up());
        }
        if (scenario === "cold" && laterScenarios) {
          const restored = await restoreRemoved();
          const settle = await waitForQuietEngine();
          coldRestores.push({ size, run, restored, settle });
          if (restored.length > 0) process.stderr.write(`N=${size} run ${run}: after the cold turns ${restored.map((entry) => `${entry.side}'s ${entry.images} images ${entry.how}`).join(", ")}; the engine ${settle.quiet ? "was quiet" : "WAS STILL WORKING (the next scenario's first side is charged for it)"} after ${settle.seconds.toFixed(1)} s\n`);
        }
        samples.push({ size, run, scenario, strata, peer: peerMeasurement, bake: bakeMeasurement });
        const figures = labels.map((builder) => `${builder} ${strata[builder]?.seconds.toFixed(1)} s`).join(", ");
        process.stderr.write(`N=${size} run ${run} ${scenario}${repeats > 1 ? ` #${repeat + 1}` : ""}: ${figures}, peer ${peerMeasurement.seconds.toFixed(1)} s${bake === undefined ? "" : `, bake ${bakeMeasurement.seconds.toFixed(1)} s`}\n`);
      }
      if (scenario === "no-op") planSeconds = first.plan();
    }
  } finally {
    for (const side of sides) rmSync(side.root, { recursive: true, force: true });
    rmSync(peer.root, { recursive: true, force: true });
    if (bake !== undefined) rmSync(bake.root, { recursive: true, force: true });
    removeImages(`${registry}/bench${size}-${salt}-`);
  }
  return { samples, planSeconds };
}

const selectedScenarios: readonly Scenario[] = values.scenarios === undefined ? SCENARIOS
  : SCENARIOS.filter((scenario) => scenario === "cold" || (values.scenarios as string).split(",").includes(scenario));
// Images of earlier bench runs (a run killed before its clean-up, a profiling run) stay in the engine
// otherwise: 398 of them sat there on 12-03. A cold turn empties only its own run's images (its size
// and salt), so the bench starts from an engine holding none of them.
removeImages(`${registry}/bench`);
/**
 * The GOGC of each docker-registry process here (scripts/services.sh starts the project's with 400;
 * its CPU differs by about a quarter between that and Go's default of 100): "default" when it has
 * none. A registry started before the setting, or by the caller, keeps its own, so the results say.
 */
function registryGogc(): { pid: number; gogc: string }[] {
  const found: { pid: number; gogc: string }[] = [];
  for (const [pid, stat] of sweep().processes) {
    if (stat.comm !== "docker-registry") continue;
    try {
      const gogc = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").find((variable) => variable.startsWith("GOGC="));
      found.push({ pid, gogc: gogc === undefined ? "default" : gogc.slice("GOGC=".length) });
    } catch {
      // A registry that ended since the sweep, or one this user may not read: not counted.
    }
  }
  return found;
}
const output: Record<string, unknown> = { registry, runs, noopRepeats, builders: labels, parallel: Number(values.parallel), buildNetworks: networks, machine: { cores: (await import("node:os")).cpus().length }, engine: engineInfo(), registryGogc: registryGogc() };

if (values.sweep !== undefined) {
  // Strata alone, cold, N=50, `runs` times per value with the values interleaved, so a slow spell of
  // the disk does not land on one value only.
  const parallelValues = values.sweep.split(",").map(Number);
  const times = new Map<number, number[]>(parallelValues.map((parallel) => [parallel, []]));
  for (let run = 0; run < runs; run++) {
    for (const parallel of parallelValues) times.get(parallel)?.push((await runOnce(50, run, parallel, ["cold"], false)).samples[0]?.strata[builders[0] as Builder]?.seconds ?? Number.NaN);
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
    const { samples, planSeconds } = await runOnce(size, run, Number(values.parallel), selectedScenarios, !values["no-peer"]);
    all.push(...samples);
    planTimes.push(planSeconds);
  }
  plans[String(size)] = Number(median(planTimes).toFixed(1));
}

const show = (value: number | null): string => (value === null ? "-" : String(value));
const table = resultEntries(all, sizes, labels);
const rows = table.map((entry) => [String(entry.size), entry.scenario, entry.builder, show(entry.strataSeconds), show(entry.peerSeconds), show(entry.ratio),
  ...(withBake ? [show(entry.bakeSeconds), show(entry.bakeRatio)] : []), `${show(entry.strataBuilt)}/${show(entry.strataPushed)}`, `${show(entry.peerBuilt)}/${show(entry.peerPushed)}`,
  ...(withBake ? [`${show(entry.bakeBuilt)}/${show(entry.bakePushed)}`] : []), show(entry.strataPeakMiB)]);
// CI runs against their comparisons in the same run: the dev run of a leaf change, and rebuilding everything.
const ciTable = ciEntries(all, sizes, labels);
const ciRows = ciTable.map((entry) => [String(entry.size), entry.scenario, entry.builder, show(entry.seconds), `${show(entry.built)}/${show(entry.copied)}/${show(entry.pushed)}`, show(entry.devLeafSeconds), show(entry.vsDevLeaf),
  show(entry.rebuildAllSeconds), show(entry.vsRebuildAll), ...(withBake ? [show(entry.bakeSeconds), show(entry.seconds === null || entry.bakeSeconds === null ? null : Number((entry.seconds / entry.bakeSeconds).toFixed(2))), `${show(entry.bakeBuilt)}/${show(entry.bakePushed)}`] : [])]);
const cpuTable = cpuEntries(all, sizes, labels);
output.scenarios = SCENARIO_MEANINGS;
output.ci = ciTable;
output.results = table;
output.cpu = cpuTable;
output.samples = all;
output.engineSettles = engineSettles;
output.coldRestores = coldRestores;
output.planSeconds = plans;
if (withBake) output.bakeAfterTurns = bakeAfterTurns;
if (signingKey !== undefined) {
  // What the SBOMs of the last signed tree of each size cost, every blob per image against each blob once.
  const sbomReads: SbomReads[] = [];
  for (const group of signedGroups.values()) sbomReads.push(await measureSbomReads(registry, group));
  output.sbomReads = sbomReads;
  for (const entry of sbomReads) {
    process.stdout.write(`SBOMs of ${entry.images} images (${entry.group}): every layer blob per image ${entry.everyBlobPerImage.seconds} s, ${entry.everyBlobPerImage.cpuSeconds} CPU-s, ${entry.everyBlobPerImage.blobsRead} blobs (${entry.everyBlobPerImage.blobMiB} MiB); each blob once ${entry.eachBlobOnce.seconds} s, ${entry.eachBlobOnce.cpuSeconds} CPU-s, ${entry.eachBlobOnce.blobsRead} blobs (${entry.eachBlobOnce.blobMiB} MiB)\n`);
  }
}
process.stdout.write(`${renderTable(["N", "scenario", "builder", "strata s", "peer s", "strata/peer", ...(withBake ? ["bake s", "strata/bake"] : []), "strata built/pushed", "peer changed/pushed", ...(withBake ? ["bake built/pushed"] : []), "strata peak MiB"], rows)}\n`);
process.stdout.write("(pushed: tags new or moved in the registry after the run, read before and after it)\n");
process.stdout.write(`strata plan (preview) seconds by N: ${JSON.stringify(plans)}\n`);
if (ciRows.length > 0) {
  process.stdout.write(`CI runs of a one-leaf change, dev up to date (medians of ${runs}):\n`);
  process.stdout.write(`${renderTable(["N", "scenario", "builder", "seconds", "built/copied/pushed", "dev leaf s", "÷ dev leaf", "rebuild-all s", "÷ rebuild-all", ...(withBake ? ["bake s", "÷ bake", "bake built/pushed"] : [])], ciRows)}\n`);
}
for (const entry of cpuTable) {
  process.stdout.write(`CPU by component, N=${entry.size} ${entry.scenario}, ${entry.side} (median of ${runs}; ${entry.layersBuilt ?? "?"} layers built):\n`);
  process.stdout.write(`${renderTable(["part", "CPU s", "per layer", "of busy"], cpuRows(entry.cpu, entry.layersBuilt ?? 0))}\n`);
}
const out = values.out ?? path.join(projectRoot, ".strata/bench/run.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(output, null, 2)}\n`);
process.stdout.write(`written: ${out}\n`);

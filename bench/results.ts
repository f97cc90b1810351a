/**
 * The bench's results from its samples (bench/run.ts): medians per size, scenario and builder, the
 * CI runs against their comparisons, and the CPU by component of the sampled scenarios. Pure: every
 * figure in the JSON and the tables comes from a measured sample; what was not measured is null,
 * never a number taken from another field.
 */
import { type CpuReport, medianReport } from "./cpu-sampler.js";
import { type Measurement } from "./strata-side.js";
import { median } from "./stats.js";

export const SCENARIOS = ["cold", "new content on a warm engine", "no-op", "leaf changed", "common-libs changed", "ci leaf changed", "ci rebuild all", "ci leaf changed on an empty engine", "ci rebuild all on an empty engine"] as const;
export type Scenario = (typeof SCENARIOS)[number];
export const CI_SCENARIOS: ReadonlySet<Scenario> = new Set(["ci leaf changed", "ci rebuild all", "ci leaf changed on an empty engine", "ci rebuild all on an empty engine"]);
/** The scenarios whose runs are CPU-sampled by component: every layer builds in them. */
export const SAMPLED_SCENARIOS: ReadonlySet<Scenario> = new Set(["cold", "new content on a warm engine"]);

/** What each scenario means, for the JSON (the README says the same). */
export const SCENARIO_MEANINGS: Record<Scenario, string> = {
  cold: "a new tree, every side's build cache emptied right before its turn: the engine's build cache (docker builder prune -af) and every side's images (after the cold turns, untimed, when a later scenario needs them, those of sides that built before come back: pulled for Strata's sides, rebuilt for the peer); bake's BuildKit cache (buildx prune -af)",
  "new content on a warm engine": "every layer's content changed after the cold run, caches kept: every layer builds again on a warm engine and BuildKit (what \"cold\" meant before issue #28)",
  "no-op": "nothing changed",
  "leaf changed": "one service layer's file changed",
  "common-libs changed": "one common-libs layer's file changed (its subtree rebuilds)",
  "ci leaf changed": "a CI run of a one-leaf change, dev up to date",
  "ci rebuild all": "the same CI run with strata:copyUnchanged false",
  "ci leaf changed on an empty engine": "the CI leaf run on an empty engine, blob cache and compile cache (bake: after buildx prune -af)",
  "ci rebuild all on an empty engine": "the CI rebuild-all run on an empty engine",
};

export interface Sample {
  readonly size: number;
  readonly run: number;
  readonly scenario: Scenario;
  /** By builder. */
  readonly strata: Record<string, Measurement>;
  /** The plain script; seconds NaN when it sat the scenario out. */
  readonly peer: Measurement;
  /** docker buildx bake, when --peers names it; seconds NaN when it did not run. */
  readonly bake: Measurement;
}

/** The median of the measured values; null when none was measured. */
function medianOf(values: readonly (number | undefined)[]): number | null {
  const measured = values.filter((value): value is number => value !== undefined && !Number.isNaN(value));
  return measured.length === 0 ? null : median(measured);
}

const rounded = (value: number | null, digits: number): number | null => (value === null ? null : Number(value.toFixed(digits)));
const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : Number((a / b).toFixed(2)));

/** One row of the main table. */
export interface ResultEntry {
  readonly size: number;
  readonly scenario: Scenario;
  readonly builder: string;
  readonly strataSeconds: number | null;
  readonly peerSeconds: number | null;
  readonly ratio: number | null;
  readonly strataBuilt: number | null;
  readonly peerBuilt: number | null;
  /** Tags written (new or moved), read from the registry before and after each run. */
  readonly strataPushed: number | null;
  readonly peerPushed: number | null;
  readonly strataPeakMiB: number | null;
  readonly bakeSeconds: number | null;
  readonly bakeRatio: number | null;
  readonly bakeBuilt: number | null;
  readonly bakePushed: number | null;
}

/** The main table: medians per size, scenario and builder of the scenarios every side runs. */
export function resultEntries(all: readonly Sample[], sizes: readonly number[], builders: readonly string[]): ResultEntry[] {
  const entries: ResultEntry[] = [];
  for (const size of sizes) {
    for (const scenario of SCENARIOS) {
      const samples = all.filter((sample) => sample.size === size && sample.scenario === scenario);
      if (samples.length === 0 || CI_SCENARIOS.has(scenario)) continue;
      const peer = medianOf(samples.map((sample) => sample.peer.seconds));
      const baked = medianOf(samples.map((sample) => sample.bake.seconds));
      for (const builder of builders) {
        const measured = samples.flatMap((sample) => (sample.strata[builder] === undefined ? [] : [sample.strata[builder]]));
        const strata = medianOf(measured.map((measurement) => measurement.seconds));
        entries.push({
          size, scenario, builder,
          strataSeconds: rounded(strata, 1), peerSeconds: rounded(peer, 1), ratio: ratio(strata, peer),
          strataBuilt: medianOf(measured.map((measurement) => measurement.built)), peerBuilt: peer === null ? null : medianOf(samples.map((sample) => sample.peer.built)),
          strataPushed: medianOf(measured.map((measurement) => measurement.pushed)), peerPushed: medianOf(samples.map((sample) => sample.peer.pushed)),
          strataPeakMiB: rounded(medianOf(measured.map((measurement) => measurement.peakMiB)), 0),
          bakeSeconds: rounded(baked, 1), bakeRatio: ratio(strata, baked),
          bakeBuilt: baked === null ? null : medianOf(samples.map((sample) => sample.bake.built)), bakePushed: medianOf(samples.map((sample) => sample.bake.pushed)),
        });
      }
    }
  }
  return entries;
}

/** One CI row: the CI run against the dev leaf run and the rebuild-all run of the same catalog. */
export interface CiEntry {
  readonly size: number;
  readonly scenario: "ci leaf changed" | "ci leaf changed on an empty engine";
  readonly builder: string;
  readonly seconds: number | null;
  readonly built: number | null;
  readonly copied: number | null;
  /** Tags written (the built and the copied ones), read from the registry. */
  readonly pushed: number | null;
  readonly devLeafSeconds: number | null;
  readonly rebuildAllSeconds: number | null;
  readonly vsDevLeaf: number | null;
  readonly vsRebuildAll: number | null;
  readonly bakeSeconds: number | null;
  /** The targets whose steps BuildKit ran (after `buildx prune -af` on an empty engine: all of them). */
  readonly bakeBuilt: number | null;
  readonly bakePushed: number | null;
}

export function ciEntries(all: readonly Sample[], sizes: readonly number[], builders: readonly string[]): CiEntry[] {
  const entries: CiEntry[] = [];
  for (const size of sizes) {
    for (const builder of builders) {
      const of = (scenario: Scenario): Sample[] => all.filter((sample) => sample.size === size && sample.scenario === scenario);
      const secondsOf = (scenario: Scenario): number | null => medianOf(of(scenario).map((sample) => sample.strata[builder]?.seconds));
      const devLeaf = secondsOf("leaf changed");
      for (const [scenario, rebuildAll] of [["ci leaf changed", "ci rebuild all"], ["ci leaf changed on an empty engine", "ci rebuild all on an empty engine"]] as const) {
        const samples = of(scenario);
        const measured = samples.flatMap((sample) => (sample.strata[builder] === undefined ? [] : [sample.strata[builder]]));
        if (measured.length === 0) continue;
        const ciSeconds = medianOf(measured.map((measurement) => measurement.seconds));
        const bakeSeconds = medianOf(samples.map((sample) => sample.bake.seconds));
        entries.push({
          size, scenario, builder, seconds: rounded(ciSeconds, 1),
          built: medianOf(measured.map((measurement) => measurement.built)), copied: medianOf(measured.map((measurement) => measurement.copied)), pushed: medianOf(measured.map((measurement) => measurement.pushed)),
          devLeafSeconds: rounded(devLeaf, 1), rebuildAllSeconds: rounded(secondsOf(rebuildAll), 1),
          vsDevLeaf: ratio(ciSeconds, devLeaf), vsRebuildAll: ratio(ciSeconds, secondsOf(rebuildAll)),
          bakeSeconds: rounded(bakeSeconds, 1),
          bakeBuilt: bakeSeconds === null ? null : medianOf(samples.map((sample) => sample.bake.built)), bakePushed: medianOf(samples.map((sample) => sample.bake.pushed)),
        });
      }
    }
  }
  return entries;
}

/** CPU by component of the sampled scenarios: per size, scenario and side, the median report of the runs and the layers built. */
export interface CpuEntry {
  readonly size: number;
  readonly scenario: Scenario;
  /** A builder of Strata's, or "bake". */
  readonly side: string;
  readonly layersBuilt: number | null;
  readonly cpu: CpuReport;
}

export function cpuEntries(all: readonly Sample[], sizes: readonly number[], builders: readonly string[]): CpuEntry[] {
  const entries: CpuEntry[] = [];
  for (const size of sizes) {
    for (const scenario of SCENARIOS) {
      const samples = all.filter((sample) => sample.size === size && sample.scenario === scenario);
      const sides: [string, Measurement[]][] = [
        ...builders.map((builder): [string, Measurement[]] => [builder, samples.flatMap((sample) => (sample.strata[builder] === undefined ? [] : [sample.strata[builder]]))]),
        ["bake", samples.map((sample) => sample.bake)],
      ];
      for (const [side, measured] of sides) {
        const reports = measured.flatMap((measurement) => (measurement.cpu === undefined ? [] : [measurement.cpu]));
        const cpu = medianReport(reports);
        if (cpu !== undefined) entries.push({ size, scenario, side, layersBuilt: medianOf(measured.filter((measurement) => measurement.cpu !== undefined).map((measurement) => measurement.built)), cpu });
      }
    }
  }
  return entries;
}

/** The bench's results: every count in the JSON and the tables comes from a measured sample (issue #27's bench honesty). */
import { describe, expect, it } from "vitest";
import { ciEntries, cpuEntries, resultEntries, type Sample, SCENARIO_MEANINGS } from "../../bench/results.js";
import { tagsWritten } from "../../bench/pushes.js";
import { COMPONENTS, type CpuReport, summarize } from "../../bench/cpu-sampler.js";
import { type Measurement } from "../../bench/strata-side.js";

const notRun: Measurement = { seconds: Number.NaN, built: 0 };
const cpu = (dockerd: number): CpuReport => {
  const byComponent = Object.fromEntries(COMPONENTS.map((component) => [component, 0])) as CpuReport["byComponent"];
  byComponent.dockerd = dockerd;
  return { wallSeconds: 1, intervalMs: 250, sweeps: 4, byComponent, ...summarize(byComponent), machineBusySeconds: dockerd, machineTotalSeconds: 2, engineCgroup: { none: "root cgroup" } };
};

describe("bench results", () => {
  it("pushed counts the tags new or moved in the registry, not those pushed again with the same bytes", () => {
    const before = new Map([["g/base:1.0-p0", "sha256:a"], ["g/app:1.0-p0", "sha256:b"]]);
    const after = new Map([["g/base:1.0-p0", "sha256:a"], ["g/app:1.0-p0", "sha256:c"], ["g/app:1.0-p0-1001", "sha256:c"]]);
    expect(tagsWritten(before, after)).toBe(2);
  });
  it("a CI row carries bake's own built and pushed counts (all 200 after buildx prune -af), not Strata's", () => {
    const samples: Sample[] = [0, 1, 2].map((run) => ({
      size: 200, run, scenario: "ci leaf changed on an empty engine",
      strata: { docker: { seconds: 4 + run, built: 1, copied: 199, pushed: 200 } },
      peer: notRun, bake: { seconds: 46 + run, built: [200, 200, 199][run] as number, pushed: 200 },
    }));
    const [entry] = ciEntries(samples, [200], ["docker"]);
    expect(entry).toMatchObject({ scenario: "ci leaf changed on an empty engine", built: 1, copied: 199, pushed: 200, bakeBuilt: 200, bakePushed: 200, bakeSeconds: 47 });
  });
  it("what was not measured is null, never a number taken from another field", () => {
    const samples: Sample[] = [{ size: 20, run: 0, scenario: "cold", strata: { docker: { seconds: 9, built: 20 } }, peer: notRun, bake: notRun }];
    const [entry] = resultEntries(samples, [20], ["docker"]);
    expect(entry).toMatchObject({ strataBuilt: 20, strataPushed: null, peerSeconds: null, peerBuilt: null, peerPushed: null, bakeSeconds: null, bakeBuilt: null, bakeRatio: null });
  });
  it("cold and new content on a warm engine are two rows, each said what it means", () => {
    const samples: Sample[] = (["cold", "new content on a warm engine"] as const).map((scenario) => ({ size: 20, run: 0, scenario, strata: { docker: { seconds: 9, built: 20, pushed: 20 } }, peer: notRun, bake: { seconds: 2, built: 20, pushed: 20 } }));
    expect(resultEntries(samples, [20], ["docker"]).map((entry) => entry.scenario)).toEqual(["cold", "new content on a warm engine"]);
    expect(SCENARIO_MEANINGS.cold).toMatch(/docker builder prune -af.*buildx prune -af/);
    expect(SCENARIO_MEANINGS["new content on a warm engine"]).toMatch(/caches kept/);
  });
  it("the CPU of the sampled runs, by side, as the median of the runs, with the layers built for per-layer figures", () => {
    const samples: Sample[] = [5, 9, 7].map((dockerd, run) => ({ size: 20, run, scenario: "cold", strata: { docker: { seconds: 9, built: 20, cpu: cpu(dockerd) } }, peer: notRun, bake: { seconds: 2, built: 20, cpu: cpu(1) } }));
    const entries = cpuEntries(samples, [20], ["docker"]);
    expect(entries.map((entry) => [entry.side, entry.layersBuilt, entry.cpu.byComponent.dockerd])).toEqual([["docker", 20, 7], ["bake", 20, 1]]);
  });
});

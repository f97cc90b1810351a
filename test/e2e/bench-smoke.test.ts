/**
 * The benchmark at N=10 as a smoke test: it runs end to end, and the
 * counts are exact (timings are reported by the benchmark, never asserted).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { repoRoot } from "./harness.js";

it("runs the benchmark at N=10; Strata builds exactly what changed, the peer rebuilds the same; CI runs copy the rest", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "strata-bench-smoke-"));
  try {
    const out = path.join(dir, "run.json");
    execFileSync("node", [path.join(repoRoot, "dist/bench/run.js"), "--sizes", "10", "--runs", "1", "--out", out], { stdio: ["ignore", "inherit", "inherit"], env: process.env });
    const result = JSON.parse(readFileSync(out, "utf8")) as {
      results: { scenario: string; strataBuilt: number; strataPushed: number; peerBuilt: number; peerPushed: number; strataPeakMiB: number | null }[];
      ci: { scenario: string; built: number; copied: number; pushed: number }[];
      cpu: { scenario: string; side: string; cpu: { accountedSeconds: number; machineBusySeconds: number } }[];
      engineSettles: { side: string; seconds: number; quiet: boolean; engineSeen: boolean }[];
      coldRestores: { size: number; run: number; restored: { side: string; images: number; how: string }[]; settle: { quiet: boolean } }[];
    };
    // [built, pushed] for Strata, then the peer; pushed is read from the registry: tags new or moved.
    const counts = Object.fromEntries(result.results.map((row) => [row.scenario, [row.strataBuilt, row.strataPushed, row.peerBuilt, row.peerPushed]]));
    // Cold (both caches emptied) and new content: all 10 built and 10 tags written. No-op: nothing. A leaf: 1. A common-libs layer with 1 dependencies/service pair: 3.
    expect(counts).toEqual({ cold: [10, 10, 10, 10], "new content on a warm engine": [10, 10, 10, 10], "no-op": [0, 0, 0, 0], "leaf changed": [1, 1, 1, 1], "common-libs changed": [3, 3, 3, 3] });
    expect(result.results.every((row) => row.strataPeakMiB !== null && row.strataPeakMiB > 0)).toBe(true);
    // CI runs of a one-leaf change: 1 built and 9 copied, 10 CI tags written, on a warm or an empty engine.
    expect(Object.fromEntries(result.ci.map((row) => [row.scenario, [row.built, row.copied, row.pushed]]))).toEqual({ "ci leaf changed": [1, 9, 10], "ci leaf changed on an empty engine": [1, 9, 10] });
    // Every cold turn (Strata's side and the peer) waited for the engine to be quiet; on the project's
    // own engine (started here, its socket the one DOCKER_HOST names) the wait found its dockerd.
    expect(result.engineSettles.map((settle) => settle.side).sort()).toEqual(["docker", "peer"]);
    if (process.env.DOCKER_HOST !== undefined && process.env.DOCKER_HOST === process.env.STRATA_ENGINE_CHOSEN) expect(result.engineSettles.every((settle) => settle.engineSeen)).toBe(true);
    // Each cold turn starts with no side's images in the engine; after the cold turns the first
    // side's (Strata's, in run 0) are pulled back.
    expect(result.coldRestores.map((restore) => [restore.run, restore.restored])).toEqual([[0, [{ side: "docker", images: 10, how: "pulled" }]]]);
    // The sampled runs' CPU: every component added up is the machine's busy time, within 10 %.
    expect(result.cpu.length).toBeGreaterThan(0);
    for (const entry of result.cpu) expect(Math.abs(entry.cpu.accountedSeconds / entry.cpu.machineBusySeconds - 1), `${entry.scenario} ${entry.side}`).toBeLessThan(0.1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it("cold, then only no-ops, each side first once: the side whose images a later cold turn removed gets them back, so its no-ops build nothing", () => {
  // Without "new content" (which rebuilds every layer) between them, a no-op is where a side that
  // lost its images or its cache shows: the peer's builder (DOCKER_BUILDKIT=0) takes its cache only
  // from images built on the engine, so pulled images would have it rebuild all 10.
  const dir = mkdtempSync(path.join(tmpdir(), "strata-bench-smoke-"));
  try {
    const out = path.join(dir, "run.json");
    execFileSync("node", [path.join(repoRoot, "dist/bench/run.js"), "--sizes", "10", "--runs", "2", "--noop-repeats", "1", "--scenarios", "no-op", "--out", out], { stdio: ["ignore", "inherit", "inherit"], env: process.env });
    const result = JSON.parse(readFileSync(out, "utf8")) as {
      coldRestores: { run: number; restored: { side: string; images: number; how: string }[] }[];
      samples: { run: number; scenario: string; strata: Record<string, { built: number }>; peer: { built: number } }[];
    };
    // Run 0: Strata's side first, its images pulled back; run 1: the peer first, its images rebuilt.
    expect(result.coldRestores.map((restore) => [restore.run, restore.restored])).toEqual([[0, [{ side: "docker", images: 10, how: "pulled" }]], [1, [{ side: "peer", images: 10, how: "rebuilt" }]]]);
    const builtByRun = result.samples.map((sample) => [sample.run, sample.scenario, sample.strata.docker?.built, sample.peer.built]);
    expect(builtByRun).toEqual([[0, "cold", 10, 10], [0, "no-op", 0, 0], [1, "cold", 10, 10], [1, "no-op", 0, 0]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it("cold, then only a CI run, each side first once: only a side a later scenario needs gets its images back (the peer takes no part in CI runs)", () => {
  // The path where a cold turn removed a side's images and nothing brings them back: in run 1 the
  // peer builds first and Strata's turn removes its images, which no CI scenario needs.
  const dir = mkdtempSync(path.join(tmpdir(), "strata-bench-smoke-"));
  try {
    const out = path.join(dir, "run.json");
    execFileSync("node", [path.join(repoRoot, "dist/bench/run.js"), "--sizes", "10", "--runs", "2", "--scenarios", "ci leaf changed", "--out", out], { stdio: ["ignore", "inherit", "inherit"], env: process.env });
    const result = JSON.parse(readFileSync(out, "utf8")) as {
      coldRestores: { run: number; restored: { side: string; images: number; how: string }[] }[];
      samples: { run: number; scenario: string; strata: Record<string, { built: number; copied?: number }> }[];
    };
    // Run 0: Strata's side first, the peer's turn removed its images, and its CI run needs them: pulled.
    // Run 1: the peer first; Strata's turn removed the peer's images, and nothing brings them back.
    expect(result.coldRestores.map((restore) => [restore.run, restore.restored])).toEqual([[0, [{ side: "docker", images: 10, how: "pulled" }]], [1, []]]);
    // Each run's CI run of a one-leaf change built 1 and copied the 9 others (so with the restore
    // or without it: the CI run pulls the parent it needs; coldRestores above is what says which ran).
    const byRun = result.samples.map((sample) => [sample.run, sample.scenario, sample.strata.docker?.built, sample.strata.docker?.copied]);
    expect(byRun).toEqual([[0, "cold", 10, undefined], [0, "ci leaf changed", 1, 9], [1, "cold", 10, undefined], [1, "ci leaf changed", 1, 9]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

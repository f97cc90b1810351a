/**
 * The kill sweep (issue: a killed run never leaves a stack Pulumi cannot
 * read). One stack on the fixture catalog; at each of 20 seeded points a
 * change makes `pulumi up` build and push part of the tree, the run is killed
 * with SIGKILL at that point, `strata recover` repairs what the kill left,
 * and `strata up` brings the stack back. Counts converged stacks (the up
 * succeeds and the next one changes nothing) and lost tags (a tag the
 * registry held before the kill and no longer does, or one whose manifest or
 * blobs are gone). Run by scripts/kill-sweep.sh; the deterministic cases are
 * in test/e2e/faults.test.ts.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { brokenTags, createWorld, type E2eStack, type E2eWorld, interruptUp, registryContents, runStrata } from "../e2e/harness.js";
import { renderTable } from "../../src/cli/table.js";

const LAYERS = ["base", "tools", "libs", "app-base", "app", "db"] as const;
const SEED = Number(process.env.STRATA_SWEEP_SEED ?? 20261128);

/** A small seeded generator (mulberry32), so a sweep can be run again point for point. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Layers a change to this one rebuilds (itself and its descendants), in the fixture catalog. */
const SUBTREE: Readonly<Record<string, number>> = { base: 6, tools: 5, libs: 3, "app-base": 2, app: 1, db: 1 };

interface KillPoint {
  readonly name: string;
  /** The layer whose file the point changes, so that up has work where the kill lands. */
  readonly changes: string;
  readonly when: (output: string, elapsedMs: number) => boolean;
}

const imageSteps = (output: string, verbs: string): number => (output.match(new RegExp(`:Image \\S+ (${verbs})\\b`, "g")) ?? []).length;

/**
 * Where the kills land: four moments picked by what the engine prints (three of each), and eight
 * moments spread over a run that rebuilds most of the tree.
 */
function killPoints(next: () => number, runMs: number): KillPoint[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const points: KillPoint[] = [];
  for (let round = 0; round < 3; round++) {
    // The engine writes its first checkpoint as the update starts, right after it prints "Updating (…)".
    const early = Math.floor(next() * 300);
    let startedAt: number | undefined;
    points.push({ name: `first checkpoint write (+${early} ms)`, changes: pick(LAYERS), when: (output, elapsed) => {
      if (startedAt === undefined && /Updating \(/.test(output)) startedAt = elapsed;
      return startedAt !== undefined && elapsed - startedAt >= early;
    } });
    const building = pick(LAYERS);
    const delay = Math.floor(next() * 800);
    let seenAt: number | undefined;
    points.push({ name: `mid-build of ${building} (+${delay} ms)`, changes: building, when: (output, elapsed) => {
      if (seenAt === undefined && new RegExp(`:Image ${building} (creating|updating)`).test(output)) seenAt = elapsed;
      return seenAt !== undefined && elapsed - seenAt >= delay;
    } });
    points.push({ name: "mid-push", changes: pick(LAYERS), when: (output) => /Pushing Image to the registry|The push refers to repository/.test(output) });
    // Once the last layer of the change is done, what is left is writing: that step, the outputs, the end.
    const last = pick(LAYERS);
    points.push({ name: `last writes (after ${SUBTREE[last]} built)`, changes: last, when: (output) => imageSteps(output, "created|updated") >= (SUBTREE[last] as number) });
  }
  while (points.length < 20) {
    const at = Math.floor(next() * runMs);
    points.push({ name: `at ${at} ms of ${runMs}`, changes: pick(["base", "tools"]), when: (_output, elapsed) => elapsed >= at });
  }
  return points;
}

let world: E2eWorld;
let stack: E2eStack;
beforeAll(async () => {
  world = createWorld("sweep");
  stack = await world.stack("sweep", { channel: "sweep" });
});
afterAll(async () => {
  await world?.cleanup();
});

it("kills up at 20 seeded points: every stack is recovered and converges, no tag is lost", async () => {
  await stack.up();
  // How long an up takes that rebuilds all but the base: the span the timed kill points fall in.
  appendFileSync(path.join(world.catalogDir, "tools/tools.txt"), "sweep warm-up\n");
  const started = Date.now();
  await stack.up();
  const runMs = Date.now() - started;
  const next = random(SEED);
  const rows: string[][] = [];
  let converged = 0;
  let lostTags = 0;
  const points = killPoints(next, runMs);
  for (const [index, point] of points.entries()) {
    // Something to build where the kill lands: a changed file rebuilds the layer and its descendants.
    const changedLayer = point.changes;
    const file = path.join(world.catalogDir, changedLayer, changedLayer === "base" ? "Dockerfile" : `${changedLayer}.txt`);
    appendFileSync(file, changedLayer === "base" ? `# sweep ${index}\n` : `sweep ${index}\n`);
    const before = await registryContents(stack.group);
    const { killed } = await interruptUp(world, stack.name, point.when);
    // A bare `pulumi up` (interruptUp) writes no owner record, so recover cannot prove the owner gone
    // by itself: --force, which is right here, since the sweep killed it and saw it exit.
    const recovered = await runStrata(world, ["recover", "--stack", stack.name, "--force"]);
    const up = await runStrata(world, ["up", "--stack", stack.name, "--catalog", world.catalogDir]);
    const summaryFile = path.join(world.root, `again-${index}.json`);
    const again = await runStrata(world, ["up", "--stack", stack.name, "--catalog", world.catalogDir, "--summary-json", summaryFile]);
    const againResults = existsSync(summaryFile) ? (JSON.parse(readFileSync(summaryFile, "utf8")) as { layers: { result: string }[] }).layers.map((layer) => layer.result) : ["no summary"];
    // Converged: recover, up and a further up succeed, and that further up changes nothing.
    const settled = recovered.code === 0 && up.code === 0 && again.code === 0 && againResults.every((result) => result === "unchanged");
    const after = await registryContents(stack.group);
    const lost = Object.entries(before).flatMap(([repository, tags]) => tags.filter((tag) => !(after[repository] ?? []).includes(tag)).map((tag) => `${repository}:${tag}`));
    const broken = await brokenTags(stack.group);
    if (settled) converged += 1;
    lostTags += lost.length + broken.length;
    const repairs = recovered.out.split("\n").filter((line) => /^(removed sidecar|removed temp file|restored checkpoint|put back checkpoint|kept checkpoint|released lock|cleared pending operations)/.test(line)).map((line) => line.split(/\s{2,}/)[0]).join(", ");
    rows.push([String(index + 1), point.name, killed ? "killed" : "ended first", changedLayer, repairs || "-", settled ? "yes" : "NO", String(lost.length + broken.length)]);
    if (!settled) process.stderr.write(`point ${index + 1} did not converge:\n${recovered.out}\n${up.out.slice(-3000)}\n${again.out.slice(-2000)}\n`);
  }
  process.stdout.write(`${renderTable(["#", "kill point", "run", "changed", "recover did", "converged", "lost tags"], rows)}\n`);
  process.stdout.write(`kill sweep (seed ${SEED}): converged ${converged}/${points.length}, lost tags ${lostTags}\n`);
  expect(converged).toBe(points.length);
  expect(lostTags).toBe(0);
});

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/core/catalog.js";
import { resolveStackConfig, type StackConfig } from "../../src/core/config.js";
import { type LayerFingerprint } from "../../src/core/fingerprint.js";
import { planTargets } from "../../src/core/plan.js";
import { buildTargets } from "../../src/core/platform-targets.js";
import { planCounts, planExitCode, planRows, type PreviousLayer, renderPlanJson, renderPlanMarkdown, renderPlanText } from "../../src/cli/plan-status.js";
import { noteCatalog } from "../helpers/catalog.js";

const goldenDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../golden");

/**
 * Compares with a committed golden file. UPDATE_GOLDEN=1 (never under CI) rewrites it; a missing
 * one is written only outside CI, to be committed, and fails the run under CI.
 */
function expectGolden(name: string, actual: string): void {
  const file = path.join(goldenDir, name);
  const ci = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false";
  if (ci && !existsSync(file)) throw new Error(`golden file ${file} is missing: run the unit tests outside CI to write it, review it and commit it`);
  if (!ci && (process.env.UPDATE_GOLDEN === "1" || !existsSync(file))) writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, "utf8"));
}

function config(values: Record<string, unknown> = {}): StackConfig {
  const { config: resolved } = resolveStackConfig({ values: { registry: "127.0.0.1:5000", osRelease: "debian12", productVersion: "mos9.0", channel: "dev", ...values }, file: "f", env: {} });
  if (resolved === undefined) throw new Error("config");
  return resolved;
}

const catalog = loadCatalog(noteCatalog());
const targets = planTargets(catalog, config(), "f");
const fingerprint = (layer: string, suffix = ""): LayerFingerprint => ({ contextDigest: `ctx-${layer}${suffix}`, inputsDigest: `in-${layer}${suffix}`, fingerprint: `fp-${layer}${suffix}` });
const previousOf = (layer: string, overrides: Partial<PreviousLayer> = {}): PreviousLayer => {
  const target = targets.find((candidate) => candidate.layer.name === layer);
  if (target === undefined) throw new Error(layer);
  return { layer, image: target.layer.image, tag: target.tag, ref: target.ref, fingerprint: `fp-${layer}`, contextDigest: `ctx-${layer}`, parent: target.parent ?? null, ...overrides };
};

/** Every status at once: ms content changed, its subtree parent changed, mysql retagged, an old layer removed, debian blocked. */
function mixedRows() {
  const fingerprints = new Map(targets.map((target) => [target.layer.name, fingerprint(target.layer.name)]));
  fingerprints.set("ms", fingerprint("ms", "-new"));
  fingerprints.set("keystone-base", { ...fingerprint("keystone-base"), fingerprint: "fp-keystone-base-new" });
  fingerprints.set("keystone", { ...fingerprint("keystone"), fingerprint: "fp-keystone-new" });
  fingerprints.set("mysql", { ...fingerprint("mysql"), inputsDigest: "in-mysql-bumped", fingerprint: "fp-mysql-bumped" });
  const previous: Record<string, PreviousLayer> = Object.fromEntries(targets.map((target) => [target.layer.name, previousOf(target.layer.name)]));
  previous.mysql = previousOf("mysql", { tag: "0.9-p3", ref: "127.0.0.1:5000/debian12-mos9.0-dev/debian-mos-mysql:0.9-p3" });
  previous.redis = { layer: "redis", image: "debian-mos-redis", tag: "1.0-p0", ref: "127.0.0.1:5000/debian12-mos9.0-dev/debian-mos-redis:1.0-p0", parent: "mos" };
  delete previous.keystone;
  const operations = new Map([["debian", "update"], ["mos", "same"], ["ms", "update"], ["keystone-base", "update"], ["keystone", "create"], ["mysql", "update"]]);
  const conflicts = [{ layer: "debian", ref: previous.debian?.ref ?? "", reason: "content changed" as const, seenIn: "registry" as const }];
  return planRows({ targets, fingerprints, previous, operations, conflicts });
}

describe("plan statuses", () => {
  it("gives each layer its status and reason", () => {
    const rows = mixedRows();
    expect(rows.map((row) => [row.layer, row.status, row.reason])).toEqual([
      ["debian", "blocked", "content changed without a version bump"],
      ["mos", "unchanged", "same inputs"],
      ["ms", "rebuild", "content changed"],
      ["keystone-base", "rebuild", "parent changed"],
      ["keystone", "new", "not built in this stack before"],
      ["mysql", "retag", "version bumped"],
      ["redis", "removed", "no longer in the catalog or selection"],
    ]);
    expect(planCounts(rows)).toMatchObject({ blocked: 1, unchanged: 1, rebuild: 2, new: 1, retag: 1, removed: 1 });
    expect(planExitCode(rows)).toBe(1);
  });
  it("calls everything new for a first-time stack", () => {
    const fingerprints = new Map(targets.map((target) => [target.layer.name, fingerprint(target.layer.name)]));
    const operations = new Map(targets.map((target) => [target.layer.name, "create"]));
    const rows = planRows({ targets, fingerprints, previous: {}, operations, conflicts: [] });
    expect(new Set(rows.map((row) => row.status))).toEqual(new Set(["new"]));
    expect(planExitCode(rows)).toBe(0);
  });
  it("says adopt where the preview records the registry's image instead of building, even for a first-time stack", () => {
    const fingerprints = new Map(targets.map((target) => [target.layer.name, fingerprint(target.layer.name)]));
    const operations = new Map(targets.map((target) => [target.layer.name, "create"]));
    const adopted = new Set(targets.map((target) => target.layer.name).filter((name) => name !== "keystone"));
    const rows = planRows({ targets, fingerprints, previous: {}, operations, conflicts: [], adopted });
    expect(Object.fromEntries(rows.map((row) => [row.layer, row.status]))).toEqual({ debian: "adopt", mos: "adopt", ms: "adopt", "keystone-base": "adopt", keystone: "new", mysql: "adopt" });
    expect(rows.find((row) => row.layer === "ms")?.reason).toBe("the registry holds this tag with the same content");
    // Once adopted (the stack now records every layer), the next plan is a plain unchanged for each.
    const recorded = Object.fromEntries(targets.map((target) => [target.layer.name, previousOf(target.layer.name)]));
    const next = planRows({ targets, fingerprints, previous: recorded, operations: new Map(targets.map((target) => [target.layer.name, "same"])), conflicts: [], adopted });
    expect(Object.fromEntries(next.map((row) => [row.layer, row.status]))).toEqual({ debian: "unchanged", mos: "unchanged", ms: "unchanged", "keystone-base": "unchanged", keystone: "unchanged", mysql: "unchanged" });
  });
  it("renders text, JSON and Markdown (golden files)", () => {
    const rows = mixedRows();
    expectGolden("plan.txt", `${renderPlanText(rows, "dev")}\n`);
    expectGolden("plan.json", `${renderPlanJson(rows)}\n`);
    expectGolden("plan.md", `${renderPlanMarkdown(rows, "dev")}\n`);
    const parsed = JSON.parse(renderPlanJson(rows)) as Record<string, unknown>[];
    expect(Object.keys(parsed[0] ?? {})).toEqual(["layer", "image", "status", "reason", "oldRef", "newRef"]);
  });
});

describe("plan rows of a multi-platform stack", () => {
  const two = config({ platforms: ["linux/amd64", "linux/arm64"] });
  const { builds, indexes } = buildTargets(planTargets(catalog, two, "f"), two);
  const previous = (name: string, suffix = ""): PreviousLayer => {
    const target = builds.find((candidate) => candidate.layer.name === name);
    const index = indexes.find((candidate) => candidate.layer === name);
    const ref = target?.ref ?? index?.target.ref ?? name;
    return { layer: name, image: "i", tag: "1.0-p0", ref, fingerprint: `fp-${name}${suffix}`, contextDigest: `ctx-${name}${suffix}`, parent: target?.parent ?? null };
  };
  const everything = [...builds.map((target) => target.layer.name), ...indexes.map((index) => index.layer)];

  it("gives each index the status of its platforms: unchanged with them, written again when one changes, never removed", () => {
    const fingerprints = new Map(builds.map((target) => [target.layer.name, fingerprint(target.layer.name, target.layer.name === "mysql@linux-arm64" ? "-new" : "")]));
    const rows = planRows({
      targets: builds, fingerprints, indexes, conflicts: [],
      previous: Object.fromEntries(everything.map((name) => [name, previous(name)])),
      operations: new Map([["mysql@linux-arm64", "update"], ["mysql", "update"]]),
    });
    const status = Object.fromEntries(rows.map((row) => [row.layer, `${row.status}: ${row.reason}`]));
    expect(rows).toHaveLength(everything.length);
    expect(status["mysql@linux-arm64"]).toBe("rebuild: content changed");
    expect(status["mysql@linux-amd64"]).toBe("unchanged: same inputs");
    expect(status.mysql).toBe("rebuild: index written again: mysql@linux-arm64 changed");
    expect(status.keystone).toBe("unchanged: same platform images");
    const blocked = planRows({
      targets: builds, fingerprints, indexes, conflicts: [],
      previous: Object.fromEntries(everything.map((name) => [name, previous(name)])),
      operations: new Map(),
      blockedIndexes: new Map([["keystone", "holds a single-platform image"]]),
    });
    expect(blocked.find((row) => row.layer === "keystone")).toMatchObject({ status: "blocked", reason: "holds a single-platform image" });
  });

  it("adopts an index whose platform images are all adopted (a stack that promoted and now builds), and rewrites one with a built image among them", () => {
    const fingerprints = new Map(builds.map((target) => [target.layer.name, fingerprint(target.layer.name)]));
    const mysqlPlatforms = builds.filter((target) => target.layer.name.startsWith("mysql@")).map((target) => target.layer.name);
    const adoptedOnly = planRows({
      targets: builds, fingerprints, indexes, conflicts: [],
      previous: Object.fromEntries(everything.map((name) => [name, previous(name)])),
      operations: new Map([...mysqlPlatforms.map((name) => [name, "update"] as const), ["mysql", "update"]]),
      adopted: new Set(mysqlPlatforms),
    });
    expect(adoptedOnly.find((row) => row.layer === "mysql")).toMatchObject({ status: "adopt", reason: "its platform images are adopted; the index over them is put under the tag only if the tag holds another" });
    const oneBuilt = planRows({
      targets: builds, fingerprints, indexes, conflicts: [],
      previous: Object.fromEntries(everything.map((name) => [name, previous(name)])),
      operations: new Map([...mysqlPlatforms.map((name) => [name, "update"] as const), ["mysql", "update"]]),
      adopted: new Set(mysqlPlatforms.slice(0, 1)),
    });
    expect(oneBuilt.find((row) => row.layer === "mysql")?.status).toBe("rebuild");
  });
});

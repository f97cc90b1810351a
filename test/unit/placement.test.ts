import { describe, expect, it } from "vitest";
import { type TreeNode } from "../../src/core/graph.js";
import { placeLayers } from "../../src/core/placement.js";
import { simulateSchedule } from "../../src/core/schedule.js";

/** base → tools → libs → N × (svc-base → svc), plus a db on tools: the shape of the benchmark's catalogs. */
function tree(services: number): TreeNode[] {
  const layers: TreeNode[] = [{ name: "base" }, { name: "tools", parent: "base" }, { name: "libs", parent: "tools" }, { name: "db", parent: "tools" }];
  for (let index = 0; index < services; index++) {
    const name = `svc${String(index).padStart(2, "0")}`;
    layers.push({ name: `${name}-base`, parent: "libs" }, { name, parent: `${name}-base` });
  }
  return layers;
}

describe("placing layers on a pool of engines", () => {
  it("keeps each service with its dependencies layer, the shared chain on the first engine, and balances the load", () => {
    const layers = tree(12);
    const { engineOf, load } = placeLayers(layers, 3);
    for (let index = 0; index < 12; index++) {
      const name = `svc${String(index).padStart(2, "0")}`;
      expect(engineOf.get(name), name).toBe(engineOf.get(`${name}-base`));
    }
    expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(2);
    expect(load.reduce((sum, value) => sum + value, 0)).toBe(layers.length);
    expect(new Set(engineOf.values())).toEqual(new Set([0, 1, 2]));
    expect(["base", "tools", "libs"].map((name) => engineOf.get(name))).toEqual([0, 0, 0]);
  });

  it("is deterministic: the input's order does not matter", () => {
    const layers = tree(9);
    const shuffled = [...layers.slice(0, 4), ...layers.slice(4).reverse()];
    expect([...placeLayers(shuffled, 4).engineOf].sort()).toEqual([...placeLayers(layers, 4).engineOf].sort());
  });

  it("balances by cost, not by count", () => {
    const layers = tree(4);
    const cost = (name: string): number => (name === "svc00" ? 20 : 1);
    const { engineOf, load } = placeLayers(layers, 2, cost);
    const heavy = engineOf.get("svc00");
    expect(["svc01", "svc02", "svc03"].every((name) => engineOf.get(name) !== heavy)).toBe(true);
    expect(Math.max(...load)).toBeLessThanOrEqual(21);
  });

  it("one engine takes everything", () => {
    expect(new Set(placeLayers(tree(3), 1).engineOf.values())).toEqual(new Set([0]));
    expect(() => placeLayers(tree(3), 0)).toThrow(/positive whole number/);
  });
});

describe("the schedule model", () => {
  it("one engine with one slot takes the sum; more engines approach the critical path, never below it", () => {
    const layers = tree(8);
    const duration = (): number => 10;
    const one = simulateSchedule({ layers, duration, engineOf: placeLayers(layers, 1).engineOf, engineCount: 1, slotsPerEngine: 1, crossEnginePull: () => 0 });
    expect(one.makespan).toBe(layers.length * 10);
    const many = simulateSchedule({ layers, duration, engineOf: placeLayers(layers, 16).engineOf, engineCount: 16, slotsPerEngine: 1, crossEnginePull: () => 0 });
    expect(many.criticalPath).toBe(50);
    expect(many.makespan).toBeGreaterThanOrEqual(many.criticalPath);
    expect(many.makespan).toBeLessThan(one.makespan / 3);
  });

  it("a parent built elsewhere costs its pull", () => {
    const layers: TreeNode[] = [{ name: "base" }, { name: "a", parent: "base" }, { name: "b", parent: "base" }];
    const engineOf = new Map([["base", 0], ["a", 0], ["b", 1]]);
    const result = simulateSchedule({ layers, duration: () => 10, engineOf, engineCount: 2, slotsPerEngine: 1, crossEnginePull: () => 3 });
    expect(result.makespan).toBe(23);
  });
});

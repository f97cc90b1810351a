import { describe, expect, it } from "vitest";
import { ancestors, descendants, findCycles, topologicalOrder, withAncestors } from "../../src/core/graph.js";

const nodes = [
  { name: "keystone", parent: "keystone-base" },
  { name: "mysql", parent: "mos" },
  { name: "debian" },
  { name: "ms", parent: "mos" },
  { name: "keystone-base", parent: "ms" },
  { name: "mos", parent: "debian" },
];
const names = (list: readonly { name: string }[]): string[] => list.map((node) => node.name);

describe("graph walks", () => {
  it("orders parents before children, branch by branch", () => {
    expect(names(topologicalOrder(nodes))).toEqual(["debian", "mos", "ms", "keystone-base", "keystone", "mysql"]);
  });
  it("lists ancestors nearest first", () => {
    expect(names(ancestors(nodes, "keystone"))).toEqual(["keystone-base", "ms", "mos", "debian"]);
    expect(ancestors(nodes, "debian")).toEqual([]);
  });
  it("lists descendants", () => {
    expect(names(descendants(nodes, "mos"))).toEqual(["ms", "keystone-base", "keystone", "mysql"]);
    expect(descendants(nodes, "keystone")).toEqual([]);
  });
  it("selects layers with their ancestors", () => {
    expect(names(withAncestors(nodes, ["keystone"]))).toEqual(["debian", "mos", "ms", "keystone-base", "keystone"]);
    expect(names(withAncestors(nodes, ["mysql", "ms"]))).toEqual(["debian", "mos", "ms", "mysql"]);
  });
  it("finds each cycle once", () => {
    expect(findCycles(nodes)).toEqual([]);
    const cyclic = [{ name: "a", parent: "c" }, { name: "b", parent: "a" }, { name: "c", parent: "b" }, { name: "d", parent: "a" }, { name: "e", parent: "e" }];
    expect(findCycles(cyclic)).toEqual([["a", "c", "b"], ["e"]]);
  });
});

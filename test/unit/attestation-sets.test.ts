/**
 * Which set signs which layer (core/attestation-sets.ts): each layer with children heads a family
 * with the leaves directly under it, so a family is ready soon after its parent is built; families
 * whose heads are siblings share a set, whole, up to SET_LAYERS layers; every layer in exactly one
 * set; a leaf added changes its family's set alone.
 */
import { describe, expect, it } from "vitest";
import { attestationSets, SET_LAYERS, type SetMember } from "../../src/core/attestation-sets.js";

const tree = (edges: Record<string, string | null>): SetMember[] => Object.entries(edges).map(([layer, parent]) => ({ layer, parent }));

/** The shape of the benchmark's and Kolla's trees: base → tools → libs → <svc>-base → <svc>, and mysql on tools. */
const KOLLA = tree({
  base: null, tools: "base", libs: "tools", mysql: "tools",
  "keystone-base": "libs", keystone: "keystone-base",
  "nova-base": "libs", "nova-api": "nova-base", "nova-compute": "nova-base",
});

describe("attestation sets", () => {
  it("heads a family with each layer that has children, holding the leaves under it; sibling families share a set; every layer in one set", () => {
    expect(attestationSets(KOLLA)).toEqual([
      { name: "attestations-base", layers: ["base"] },
      { name: "attestations-tools", layers: ["tools", "mysql"] },
      { name: "attestations-libs", layers: ["libs"] },
      { name: "attestations-keystone-base", layers: ["keystone-base", "keystone", "nova-base", "nova-api", "nova-compute"] },
    ]);
    const all = attestationSets(KOLLA).flatMap((set) => set.layers);
    expect([...all].sort()).toEqual(KOLLA.map((member) => member.layer).sort());
  });

  it("makes a tree of one layer a set alone, and a layer whose parent is not in the list the head of its own", () => {
    expect(attestationSets(tree({ base: null }))).toEqual([{ name: "attestations-base", layers: ["base"] }]);
    expect(attestationSets(tree({ app: "elsewhere" }))).toEqual([{ name: "attestations-app", layers: ["app"] }]);
    // Declaration order does not matter: a leaf listed before its parent still joins the parent's set.
    expect(attestationSets(tree({ app: "base", base: null }))).toEqual([{ name: "attestations-base", layers: ["base", "app"] }]);
  });

  it("changes only the parent's set when a leaf is added, and moves a leaf that gains a child to a family of its own", () => {
    const before = attestationSets(KOLLA);
    const added = attestationSets([...KOLLA, { layer: "glance", parent: "libs" }]);
    expect(added.filter((set) => set.name !== "attestations-libs")).toEqual(before.filter((set) => set.name !== "attestations-libs"));
    expect(added.find((set) => set.name === "attestations-libs")?.layers).toEqual(["libs", "glance"]);
    // keystone gains a child: it heads a family, a sibling of none (its parent has no other child), so a set alone.
    const grown = attestationSets([...KOLLA, { layer: "keystone-tests", parent: "keystone" }]);
    expect(grown.find((set) => set.name === "attestations-keystone-base")?.layers).toEqual(["keystone-base", "nova-base", "nova-api", "nova-compute"]);
    expect(grown.find((set) => set.name === "attestations-keystone")?.layers).toEqual(["keystone", "keystone-tests"]);
  });

  it("puts sibling families together whole, in declaration order, up to SET_LAYERS layers; a larger family is a set alone", () => {
    // The benchmark's shape: many <svc>-base/<svc> pairs on one common-libs layer.
    const pairs = Object.fromEntries(Array.from({ length: 9 }, (_, index) => [[`s${index}-base`, "libs"], [`s${index}`, `s${index}-base`]]).flat() as [string, string][]);
    const sets = attestationSets(tree({ base: null, libs: "base", ...pairs }));
    expect(SET_LAYERS).toBe(8);
    expect(sets.map((set) => [set.name, set.layers.length])).toEqual([["attestations-base", 1], ["attestations-libs", 1], ["attestations-s0-base", 8], ["attestations-s4-base", 8], ["attestations-s8-base", 2]]);
    expect(sets.find((set) => set.name === "attestations-s4-base")?.layers).toEqual(["s4-base", "s4", "s5-base", "s5", "s6-base", "s6", "s7-base", "s7"]);
    // A family of ten is never split; the families beside it fill sets of their own.
    const big = Object.fromEntries(Array.from({ length: 9 }, (_, index) => [`nova-${index}`, "nova-base"]));
    const mixed = attestationSets(tree({ libs: null, "keystone-base": "libs", keystone: "keystone-base", "nova-base": "libs", ...big, "glance-base": "libs", glance: "glance-base" }));
    expect(mixed.map((set) => [set.name, set.layers.length])).toEqual([["attestations-libs", 1], ["attestations-keystone-base", 2], ["attestations-nova-base", 10], ["attestations-glance-base", 2]]);
  });

  it("keeps families whose heads have different parents apart, whatever the order they are declared in", () => {
    // Interleaved as the benchmark declares them: s0 on libs-a, s1 on libs-b, s2 on libs-a, s3 on libs-b.
    const sets = attestationSets(tree({ base: null, "libs-a": "base", "libs-b": "base", "s0-base": "libs-a", s0: "s0-base", "s1-base": "libs-b", s1: "s1-base", "s2-base": "libs-a", s2: "s2-base", "s3-base": "libs-b", s3: "s3-base" }));
    expect(sets).toEqual([
      { name: "attestations-base", layers: ["base"] },
      { name: "attestations-libs-a", layers: ["libs-a", "libs-b"] },
      { name: "attestations-s0-base", layers: ["s0-base", "s0", "s2-base", "s2"] },
      { name: "attestations-s1-base", layers: ["s1-base", "s1", "s3-base", "s3"] },
    ]);
  });
});

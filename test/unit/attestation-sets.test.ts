/**
 * Which set signs which layer (core/attestation-sets.ts): each layer with children heads a set
 * with the leaves directly under it, so a set is ready soon after its parent is built; every
 * layer in exactly one set; a layer added changes its parent's set alone.
 */
import { describe, expect, it } from "vitest";
import { attestationSets, type SetMember } from "../../src/core/attestation-sets.js";

const tree = (edges: Record<string, string | null>): SetMember[] => Object.entries(edges).map(([layer, parent]) => ({ layer, parent }));

/** The shape of the benchmark's and Kolla's trees: base → tools → libs → <svc>-base → <svc>, and mysql on tools. */
const KOLLA = tree({
  base: null, tools: "base", libs: "tools", mysql: "tools",
  "keystone-base": "libs", keystone: "keystone-base",
  "nova-base": "libs", "nova-api": "nova-base", "nova-compute": "nova-base",
});

describe("attestation sets", () => {
  it("heads a set with each layer that has children, holding the leaves under it; every layer in one set", () => {
    expect(attestationSets(KOLLA)).toEqual([
      { name: "attestations-base", layers: ["base"] },
      { name: "attestations-tools", layers: ["tools", "mysql"] },
      { name: "attestations-libs", layers: ["libs"] },
      { name: "attestations-keystone-base", layers: ["keystone-base", "keystone"] },
      { name: "attestations-nova-base", layers: ["nova-base", "nova-api", "nova-compute"] },
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

  it("changes only the parent's set when a leaf is added, and moves a leaf that gains a child to a set of its own", () => {
    const before = attestationSets(KOLLA);
    const added = attestationSets([...KOLLA, { layer: "glance", parent: "libs" }]);
    expect(added.filter((set) => set.name !== "attestations-libs")).toEqual(before.filter((set) => set.name !== "attestations-libs"));
    expect(added.find((set) => set.name === "attestations-libs")?.layers).toEqual(["libs", "glance"]);
    const grown = attestationSets([...KOLLA, { layer: "keystone-tests", parent: "keystone" }]);
    expect(grown.find((set) => set.name === "attestations-keystone-base")?.layers).toEqual(["keystone-base"]);
    expect(grown.find((set) => set.name === "attestations-keystone")?.layers).toEqual(["keystone", "keystone-tests"]);
  });
});

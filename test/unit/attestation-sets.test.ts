/**
 * Which set signs which layer (core/attestation-sets.ts): each layer with children heads a family
 * with the leaves directly under it, so a family is ready soon after its parent is built; families
 * whose heads are siblings share a set, whole, cut after a head whose name says so (endsSet) or
 * after SET_FAMILIES families; every layer in exactly one set; a family added or removed changes
 * its own set and at most the next one.
 */
import { describe, expect, it } from "vitest";
import { attestationSets, endsSet, SET_FAMILIES, type SetMember } from "../../src/core/attestation-sets.js";

const tree = (edges: Record<string, string | null>): SetMember[] => Object.entries(edges).map(([layer, parent]) => ({ layer, parent }));

/** The shape of the benchmark's and Kolla's trees: base → tools → libs → <svc>-base → <svc>, and mysql on tools. */
const KOLLA = tree({
  base: null, tools: "base", libs: "tools", mysql: "tools",
  "keystone-base": "libs", keystone: "keystone-base",
  "nova-base": "libs", "nova-api": "nova-base", "nova-compute": "nova-base",
});

/** `<name>-base` → `<name>` pairs on `parent`, in the order given. */
const pairs = (names: readonly string[], parent: string): Record<string, string> => Object.fromEntries(names.flatMap((name) => [[`${name}-base`, parent], [name, `${name}-base`]]));

/** A set as one comparable string. */
const key = (set: { name: string; layers: readonly string[] }): string => `${set.name}: ${set.layers.join(" ")}`;

describe("attestation sets", () => {
  it("heads a family with each layer that has children, holding the leaves under it; sibling families share a set; every layer in one set", () => {
    // The premise: neither head's name ends a set.
    expect([endsSet("keystone-base"), endsSet("nova-base")]).toEqual([false, false]);
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
    // A leaf listed before its parent still joins the parent's family.
    expect(attestationSets(tree({ app: "base", base: null }))).toEqual([{ name: "attestations-base", layers: ["base", "app"] }]);
  });

  it("changes only the parent's set when a leaf is added, and moves a leaf that gains a child to a family of its own", () => {
    const before = attestationSets(KOLLA);
    const added = attestationSets([...KOLLA, { layer: "glance", parent: "libs" }]);
    expect(added.filter((set) => set.name !== "attestations-libs")).toEqual(before.filter((set) => set.name !== "attestations-libs"));
    expect(added.find((set) => set.name === "attestations-libs")?.layers).toEqual(["libs", "glance"]);
    // keystone gains a child: it heads a family, the only child of its parent, so a set alone.
    const grown = attestationSets([...KOLLA, { layer: "keystone-tests", parent: "keystone" }]);
    expect(grown.find((set) => set.name === "attestations-keystone-base")?.layers).toEqual(["keystone-base", "nova-base", "nova-api", "nova-compute"]);
    expect(grown.find((set) => set.name === "attestations-keystone")?.layers).toEqual(["keystone", "keystone-tests"]);
  });

  it("cuts a run of sibling families after each head whose name ends a set, families whole", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8].map((index) => endsSet(`s${index}-base`))).toEqual([true, false, false, false, true, false, false, false, false]);
    const names = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((index) => `s${index}`);
    expect(attestationSets(tree({ base: null, libs: "base", ...pairs(names, "libs") })).map(key)).toEqual([
      "attestations-base: base",
      "attestations-libs: libs",
      "attestations-s0-base: s0-base s0",
      "attestations-s1-base: s1-base s1 s2-base s2 s3-base s3 s4-base s4",
      "attestations-s5-base: s5-base s5 s6-base s6 s7-base s7 s8-base s8",
    ]);
  });

  it(`cuts a run of ${SET_FAMILIES} families whose heads end no set, and starts the next`, () => {
    const names = Array.from({ length: 200 }, (_, index) => `f${index}`).filter((name) => !endsSet(`${name}-base`)).slice(0, SET_FAMILIES + 1);
    const sets = attestationSets(tree({ libs: null, ...pairs(names, "libs") }));
    expect(sets.map((set) => [set.name, set.layers.length])).toEqual([["attestations-libs", 1], [`attestations-${names[0]}-base`, 2 * SET_FAMILIES], [`attestations-${names[SET_FAMILIES]}-base`, 2]]);
  });

  it("keeps families whose heads have different parents apart, whatever the order they are declared in", () => {
    expect(["libs-a", "s0-base", "s1-base", "s2-base"].map(endsSet)).toEqual([true, true, false, false]);
    // Interleaved as the benchmark declares them: s0 on libs-a, s1 on libs-b, s2 on libs-a, s3 on libs-b.
    const sets = attestationSets(tree({ base: null, "libs-a": "base", "libs-b": "base", ...pairs(["s0"], "libs-a"), ...pairs(["s1"], "libs-b"), ...pairs(["s2"], "libs-a"), ...pairs(["s3"], "libs-b") }));
    expect(sets.map(key)).toEqual([
      "attestations-base: base",
      "attestations-libs-a: libs-a",
      "attestations-libs-b: libs-b",
      "attestations-s0-base: s0-base s0",
      "attestations-s1-base: s1-base s1 s3-base s3",
      "attestations-s2-base: s2-base s2",
    ]);
  });

  it("changes a family's own set and at most the next one when a family is added among many siblings or removed", () => {
    // The benchmark's shape at N≈120: 60 pairs on one common-libs layer (siblings are declared by name).
    const names = Array.from({ length: 60 }, (_, index) => `svc${String(index).padStart(3, "0")}`);
    const setsOf = (services: readonly string[]): string[] => attestationSets(tree({ base: null, libs: "base", ...pairs(services, "libs") })).map(key);
    const before = setsOf(names);
    expect(before.length).toBeLessThan(30);
    const against = (after: readonly string[]): { gone: string[]; made: string[] } => ({ gone: before.filter((set) => !after.includes(set)), made: after.filter((set) => !before.includes(set)) });
    // svc030a joins svc030's set (neither head ends a set): that set alone changes, by the new family.
    expect([endsSet("svc030-base"), endsSet("svc030a-base")]).toEqual([false, false]);
    const joined = against(setsOf([...names.slice(0, 31), "svc030a", ...names.slice(31)]));
    expect(joined.gone.length).toBe(1);
    expect(joined.made).toEqual([(joined.gone[0] as string).replace("svc030-base svc030", "svc030-base svc030 svc030a-base svc030a")]);
    // svc029a comes after a head that ends a set and ends one itself: a set of its own, the others as they were.
    expect([endsSet("svc029-base"), endsSet("svc029a-base")]).toEqual([true, true]);
    expect(against(setsOf([...names.slice(0, 30), "svc029a", ...names.slice(30)]))).toEqual({ gone: [], made: ["attestations-svc029a-base: svc029a-base svc029a"] });
    // svc028 removed: its head ended its set (svc026 to svc028), so the next set's family (svc029) joins what is left of it.
    expect(endsSet("svc028-base")).toBe(true);
    expect(against(setsOf(names.filter((name) => name !== "svc028")))).toEqual({
      gone: ["attestations-svc026-base: svc026-base svc026 svc027-base svc027 svc028-base svc028", "attestations-svc029-base: svc029-base svc029"],
      made: ["attestations-svc026-base: svc026-base svc026 svc027-base svc027 svc029-base svc029"],
    });
    // Every single family added after each service, and each one removed: at most two sets change.
    for (const [at, name] of names.entries()) {
      const added = against(setsOf([...names.slice(0, at + 1), `${name}a`, ...names.slice(at + 1)]));
      expect(added.gone.length + added.made.length, `${name}a added`).toBeLessThanOrEqual(3);
      expect(added.gone.length, `${name}a added`).toBeLessThanOrEqual(1);
      const removed = against(setsOf(names.filter((other) => other !== name)));
      expect(removed.gone.length + removed.made.length, `${name} removed`).toBeLessThanOrEqual(3);
      expect(removed.made.length, `${name} removed`).toBeLessThanOrEqual(1);
    }
  });
});

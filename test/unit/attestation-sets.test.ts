/**
 * Which set signs which layer (core/attestation-sets.ts): runs of consecutive layers in declaration
 * order, so a set is ready once its own layers are built; a layer added moves only the layers after it.
 */
import { describe, expect, it } from "vitest";
import { attestationSetName, attestationSets, SET_SIZE } from "../../src/core/attestation-sets.js";

const names = (count: number, prefix = "l"): string[] => Array.from({ length: count }, (_, at) => `${prefix}${String(at).padStart(3, "0")}`);

describe("attestation sets", () => {
  it("cuts the layers in their order into runs of at most the set size, every layer in exactly one", () => {
    const layers = names(200);
    const sets = attestationSets(layers);
    expect(sets).toHaveLength(Math.ceil(200 / SET_SIZE));
    expect(sets.every((set) => set.length <= SET_SIZE)).toBe(true);
    expect(sets.flat()).toEqual(layers);
    expect(attestationSets(["base", "tools", "app"], 2)).toEqual([["base", "tools"], ["app"]]);
    expect(attestationSets([])).toEqual([]);
  });

  it("keeps every set before an added layer as it was", () => {
    const before = attestationSets(names(40), 8);
    const layers = names(40);
    layers.splice(20, 0, "added");
    const after = attestationSets(layers, 8);
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
    expect(after[2]).toEqual(["l016", "l017", "l018", "l019", "added", "l020", "l021", "l022"]);
  });

  it("refuses a size that is not a positive whole number, and names sets by their place", () => {
    expect(() => attestationSets(["a"], 0)).toThrow(/positive whole number/);
    expect(() => attestationSets(["a"], 1.5)).toThrow(/positive whole number/);
    expect(attestationSetName(3)).toBe("attestations-3");
  });
});

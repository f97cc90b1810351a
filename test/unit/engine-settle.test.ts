/** When the bench calls the engine quiet before a cold turn (bench/engine-settle.ts). */
import { describe, expect, it } from "vitest";
import { quietFor } from "../../bench/engine-settle.js";

/** Readings `step` seconds apart, the engine using `share` of a core over each step. */
const readings = (shares: readonly number[], step = 1): { at: number; cpu: number }[] => {
  let cpu = 0;
  return [{ at: 0, cpu: 0 }, ...shares.map((share, index) => ({ at: (index + 1) * step, cpu: (cpu += share * step) }))];
};

describe("quietFor", () => {
  it("needs a whole window of readings", () => {
    expect(quietFor([])).toBe(false);
    expect(quietFor(readings([0, 0]))).toBe(false);
    expect(quietFor(readings([0, 0, 0]))).toBe(true);
  });
  it("is quiet only when the last window used less than a twentieth of a core", () => {
    expect(quietFor(readings([0.9, 0.9, 0.9, 0.9]))).toBe(false);
    expect(quietFor(readings([0.9, 0.9, 0.05, 0.05, 0.04]))).toBe(true);
    // 0.06 of a core over the window: still working.
    expect(quietFor(readings([0.9, 0.06, 0.06, 0.06]))).toBe(false);
    // Busy again at the end: not quiet, whatever came before.
    expect(quietFor(readings([0, 0, 0, 0, 0.5]))).toBe(false);
    // Quiet in the last step alone is not a quiet window.
    expect(quietFor(readings([0.9, 0.9, 0.9, 0.01]))).toBe(false);
    // Exactly a twentieth of a core: not less.
    expect(quietFor(readings([0.05, 0.05, 0.05]))).toBe(false);
  });
  it("counts seconds, not readings: at half-second readings the window is six of them", () => {
    expect(quietFor(readings([0.9, 0, 0, 0, 0, 0, 0], 0.5))).toBe(true);
    expect(quietFor(readings([0.9, 0.9, 0, 0, 0, 0, 0], 0.5))).toBe(false);
    expect(quietFor(readings([0, 0, 0, 0, 0], 0.5))).toBe(false);
    expect(() => quietFor(readings([0, 0]), { windowSeconds: 0, share: 0.05 })).toThrow(/says nothing/);
  });
});

/** When the bench calls the engine quiet before a cold turn (bench/engine-settle.ts). */
import { describe, expect, it } from "vitest";
import { quietFor } from "../../bench/engine-settle.js";

const readings = (cpuPerSecond: readonly number[]): { at: number; cpu: number }[] => {
  let cpu = 0;
  return [{ at: 0, cpu: 0 }, ...cpuPerSecond.map((used, index) => ({ at: index + 1, cpu: (cpu += used) }))];
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
  });
});

/** Small helpers shared by the benchmarks. */
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (benchmarks run from dist/bench). */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Bounded concurrency for I/O fan-out (file hashing, registry lookups), and how many builds at once. */

/**
 * Resource operations at once for `strata up` (Pulumi's --parallel). On a
 * 2-core machine `scripts/bench.sh --sweep 2,4,8,16` is flat for a cold N=50
 * build (18.6–20.2 s, README "Performance"): the cores are saturated from two
 * builds on. 8 is as fast as any there and keeps pushes overlapping other
 * layers' builds in trees wider than the benchmark's.
 */
export const DEFAULT_PARALLEL = 8;

/** Runs `task` over `items` with at most `limit` in flight; results keep the items' order. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Bounded concurrency for I/O fan-out (file hashing, registry lookups), and how many builds at once. */

/**
 * Resource operations at once for `strata up` (Pulumi's --parallel). On a
 * 2-core machine `scripts/bench.sh --sweep 2,4,8,16` is flat for a cold N=50
 * build (18.6–20.2 s, README "Performance"): the cores are saturated from two
 * builds on. 8 is as fast as any there and keeps pushes overlapping other
 * layers' builds in trees wider than the benchmark's.
 */
export const DEFAULT_PARALLEL = 8;

/**
 * Runs `task` over `items` with at most `limit` in flight; results keep the items' order. Once a
 * task fails, no further task starts and the call rejects with that failure (tasks already running
 * end on their own): a caller that has failed sends no more requests or writes in the background.
 */
export async function mapLimited<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await task(items[index] as T);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

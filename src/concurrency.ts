/** Bounded concurrency for I/O fan-out (file hashing, registry lookups), and how many builds at once. */

/**
 * Resource operations at once for `strata up` (Pulumi's --parallel): the best
 * of `scripts/bench.sh --sweep` for a cold N=50 build on a 2-core machine with
 * BuildKit (README "Performance"). BuildKit's steps wait on I/O and on the
 * registry more than on CPU, so more builds than cores pays off.
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

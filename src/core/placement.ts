/**
 * Which engine of a pool builds each layer. Pure and deterministic: the same
 * tree, costs and number of engines give the same placement on every runner,
 * so a layer is rebuilt on the engine that holds its cache.
 *
 * Subtrees stay together: the tree is cut into units (whole subtrees) from the
 * top, always splitting the costliest unit into its children, until no unit
 * that can be split costs more than a quarter of an engine's fair share. The layers above the cut (the base, tools and
 * common-libs of a wide tree, a chain built one after the other anyway) all go
 * to the first engine, which keeps that chain's cache in one place; the other
 * engines pull them from the registry, once each. Then units go to engines
 * heaviest first, each to the least loaded engine (LPT), the first engine
 * starting with the load of the layers above the cut.
 */
import { childrenIndex, type TreeNode } from "./graph.js";

export interface Placement {
  /** Layer name → engine index (0-based). */
  readonly engineOf: ReadonlyMap<string, number>;
  /** Summed cost of the layers on each engine. */
  readonly load: readonly number[];
}

/**
 * Units split until each is at most 1/UNITS_PER_ENGINE of an engine's fair share: small enough to
 * balance, whole enough to keep a subtree's cache on one engine.
 */
const UNITS_PER_ENGINE = 4;

export function placeLayers(layers: readonly TreeNode[], engineCount: number, cost: (layer: string) => number = () => 1): Placement {
  if (!Number.isInteger(engineCount) || engineCount < 1) throw new Error(`engine count must be a positive whole number, not ${engineCount}`);
  const names = new Set(layers.map((layer) => layer.name));
  const roots = layers.filter((layer) => layer.parent === undefined || !names.has(layer.parent)).map((layer) => layer.name);
  const childrenOf = childrenIndex(layers);
  const children = (name: string): string[] => (childrenOf.get(name) ?? []).map((child) => child.name);
  const subtreeCost = new Map<string, number>();
  const costOf = (name: string): number => {
    const known = subtreeCost.get(name);
    if (known !== undefined) return known;
    const total = cost(name) + children(name).reduce((sum, child) => sum + costOf(child), 0);
    subtreeCost.set(name, total);
    return total;
  };
  // Heaviest first; names break ties, so the order never depends on the input's.
  const heavierFirst = (a: string, b: string): number => costOf(b) - costOf(a) || (a < b ? -1 : a > b ? 1 : 0);

  const engineOf = new Map<string, number>();
  const load = new Array<number>(engineCount).fill(0);
  if (engineCount === 1) {
    for (const layer of layers) engineOf.set(layer.name, 0);
    load[0] = layers.reduce((sum, layer) => sum + cost(layer.name), 0);
    return { engineOf, load };
  }

  // A chain (each layer with one child) gains nothing from being split: each waits for its parent.
  // Splitting a unit walks down its chain to the first layer with several children and cuts there.
  const branchBelow = (name: string): string | undefined => {
    let current: string | undefined = name;
    while (current !== undefined && children(current).length === 1) current = children(current)[0];
    return current !== undefined && children(current).length > 1 ? current : undefined;
  };
  let units = [...roots].sort(heavierFirst);
  const aboveCut: string[] = [];
  const largestUnit = layers.reduce((sum, layer) => sum + cost(layer.name), 0) / (UNITS_PER_ENGINE * engineCount);
  for (;;) {
    const splittable = units.find((unit) => branchBelow(unit) !== undefined);
    if (splittable === undefined || costOf(splittable) <= largestUnit) break;
    const branch = branchBelow(splittable) as string;
    for (let current = splittable; ; current = children(current)[0] as string) {
      aboveCut.push(current);
      if (current === branch) break;
    }
    units = [...units.filter((unit) => unit !== splittable), ...children(branch)].sort(heavierFirst);
  }

  for (const name of aboveCut) {
    engineOf.set(name, 0);
    load[0] = (load[0] ?? 0) + cost(name);
  }
  const assignSubtree = (name: string, engine: number): void => {
    engineOf.set(name, engine);
    load[engine] = (load[engine] ?? 0) + cost(name);
    for (const child of children(name)) assignSubtree(child, engine);
  };
  for (const unit of units) {
    let lightest = 0;
    for (let engine = 1; engine < engineCount; engine++) if ((load[engine] ?? 0) < (load[lightest] ?? 0)) lightest = engine;
    assignSubtree(unit, lightest);
  }
  return { engineOf, load };
}

/**
 * Placement when engines name the platform they build natively (`strata:engines` entries with
 * `platform`): each platform's targets are placed over the engines naming it, or, when none does,
 * over the engines naming no platform (they build it under emulation). A platform no engine can
 * take is the caller's error to report. Layer name → index into `engines`.
 */
export function placeByPlatform(
  targets: readonly (TreeNode & { readonly platform: string })[],
  engines: readonly { readonly platform?: string }[],
): { engineOf: Map<string, number>; unplaced: string[] } {
  const engineOf = new Map<string, number>();
  const unplaced: string[] = [];
  for (const platform of [...new Set(targets.map((target) => target.platform))]) {
    const native = engines.flatMap((engine, index) => (engine.platform === platform ? [index] : []));
    const pool = native.length > 0 ? native : engines.flatMap((engine, index) => (engine.platform === undefined ? [index] : []));
    if (pool.length === 0) {
      unplaced.push(platform);
      continue;
    }
    const placed = placeLayers(targets.filter((target) => target.platform === platform), pool.length);
    for (const [name, position] of placed.engineOf) engineOf.set(name, pool[position] as number);
  }
  return { engineOf, unplaced };
}

/**
 * A model of a cold build on K engines, for the scaling figures: list
 * scheduling of the layer tree with measured per-layer durations, each engine
 * running up to `slotsPerEngine` layers at once (what one machine sustained
 * in the measured run), a layer starting when its parent is pushed and a slot
 * on its engine is free, plus the parent's pull when it was built elsewhere.
 * Pure.
 */
import { type TreeNode } from "./graph.js";

export interface ScheduleInput {
  readonly layers: readonly TreeNode[];
  /** Seconds from a layer's start to its image being in the registry (pull, build, push), measured. */
  readonly duration: (layer: string) => number;
  readonly engineOf: ReadonlyMap<string, number>;
  readonly engineCount: number;
  readonly slotsPerEngine: number;
  /** Seconds to pull a parent built on another engine. */
  readonly crossEnginePull: (parent: string) => number;
}

export interface ScheduleResult {
  /** Predicted wall time of the whole tree. */
  readonly makespan: number;
  /** The longest chain of durations from a root to a leaf: no number of engines beats it. */
  readonly criticalPath: number;
  /** Total work over all slots of all engines: the other lower bound. */
  readonly workBound: number;
}

export function simulateSchedule(input: ScheduleInput): ScheduleResult {
  const { layers, duration, engineOf, engineCount, slotsPerEngine } = input;
  const byName = new Map(layers.map((layer) => [layer.name, layer] as const));
  const finish = new Map<string, number>();
  // Each engine's slots, as the times they become free.
  const slots = Array.from({ length: engineCount }, () => new Array<number>(Math.max(1, slotsPerEngine)).fill(0));
  // Layers come parents first; within that, the one whose parent finished first starts first.
  const ready = (name: string): number => {
    const parent = byName.get(name)?.parent;
    if (parent === undefined || !byName.has(parent)) return 0;
    const parentDone = finish.get(parent) ?? 0;
    return engineOf.get(parent) === engineOf.get(name) ? parentDone : parentDone + input.crossEnginePull(parent);
  };
  const pending = [...layers];
  while (pending.length > 0) {
    let next = -1;
    for (let index = 0; index < pending.length; index++) {
      const candidate = pending[index] as TreeNode;
      if (candidate.parent !== undefined && byName.has(candidate.parent) && !finish.has(candidate.parent)) continue;
      if (next === -1 || ready(candidate.name) < ready((pending[next] as TreeNode).name)) next = index;
    }
    const layer = pending.splice(next, 1)[0] as TreeNode;
    const engineSlots = slots[engineOf.get(layer.name) ?? 0] as number[];
    let slot = 0;
    for (let index = 1; index < engineSlots.length; index++) if ((engineSlots[index] as number) < (engineSlots[slot] as number)) slot = index;
    const start = Math.max(ready(layer.name), engineSlots[slot] as number);
    const end = start + duration(layer.name);
    engineSlots[slot] = end;
    finish.set(layer.name, end);
  }
  const pathTo = new Map<string, number>();
  for (const layer of layers) {
    const parentPath = layer.parent === undefined ? 0 : pathTo.get(layer.parent) ?? 0;
    pathTo.set(layer.name, parentPath + duration(layer.name));
  }
  const work = layers.reduce((sum, layer) => sum + duration(layer.name), 0);
  return {
    makespan: Math.max(0, ...finish.values()),
    criticalPath: Math.max(0, ...pathTo.values()),
    workBound: work / (engineCount * Math.max(1, slotsPerEngine)),
  };
}

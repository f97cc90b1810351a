/**
 * Walks over a forest where every node names at most one parent. Pure; knows
 * nothing about Docker or Pulumi.
 */
export interface TreeNode {
  readonly name: string;
  readonly parent?: string;
}

/** Each cycle once, as the list of names on it, starting from its smallest name. */
export function findCycles(nodes: readonly TreeNode[]): string[][] {
  const parentOf = new Map(nodes.map((node) => [node.name, node.parent] as const));
  const state = new Map<string, "visiting" | "done">();
  const cycles: string[][] = [];
  for (const start of [...parentOf.keys()].sort()) {
    const path: string[] = [];
    let current: string | undefined = start;
    while (current !== undefined && parentOf.has(current) && state.get(current) !== "done") {
      if (state.get(current) === "visiting") {
        const cycle = path.slice(path.indexOf(current));
        const smallest = [...cycle].sort()[0] as string;
        const rotated = [...cycle.slice(cycle.indexOf(smallest)), ...cycle.slice(0, cycle.indexOf(smallest))];
        cycles.push(rotated);
        break;
      }
      state.set(current, "visiting");
      path.push(current);
      current = parentOf.get(current);
    }
    for (const name of path) state.set(name, "done");
  }
  return cycles;
}

/**
 * Parents before children; siblings in name order so output is stable.
 * Nodes on a cycle or under a missing parent are left out: callers validate first.
 */
export function topologicalOrder<T extends TreeNode>(nodes: readonly T[]): T[] {
  const childrenOf = childrenIndex(nodes);
  const roots = nodes.filter((node) => node.parent === undefined).sort(byName);
  const order: T[] = [];
  // Depth-first keeps a branch together, which reads best in `strata tree`.
  const visit = (node: T): void => {
    order.push(node);
    for (const child of childrenOf.get(node.name) ?? []) visit(child);
  };
  for (const root of roots) visit(root);
  return order;
}

/** The chain from a node's parent up to its root, nearest first. */
export function ancestors<T extends TreeNode>(nodes: readonly T[], name: string): T[] {
  const byNameIndex = new Map(nodes.map((node) => [node.name, node] as const));
  const chain: T[] = [];
  const seen = new Set<string>([name]);
  let parentName = byNameIndex.get(name)?.parent;
  while (parentName !== undefined && !seen.has(parentName)) {
    const parent = byNameIndex.get(parentName);
    if (parent === undefined) break;
    chain.push(parent);
    seen.add(parentName);
    parentName = parent.parent;
  }
  return chain;
}

/** Every node below the named one, parents before children. */
export function descendants<T extends TreeNode>(nodes: readonly T[], name: string): T[] {
  const childrenOf = childrenIndex(nodes);
  const found: T[] = [];
  const visit = (parentName: string): void => {
    for (const child of childrenOf.get(parentName) ?? []) {
      found.push(child);
      visit(child.name);
    }
  };
  visit(name);
  return found;
}

/** The named nodes and all their ancestors, in topological order. */
export function withAncestors<T extends TreeNode>(nodes: readonly T[], selected: readonly string[]): T[] {
  const keep = new Set<string>();
  for (const name of selected) {
    keep.add(name);
    for (const ancestor of ancestors(nodes, name)) keep.add(ancestor.name);
  }
  return topologicalOrder(nodes).filter((node) => keep.has(node.name));
}

/** Parent name → its children, in name order. */
export function childrenIndex<T extends TreeNode>(nodes: readonly T[]): Map<string, T[]> {
  const childrenOf = new Map<string, T[]>();
  for (const node of nodes) {
    if (node.parent === undefined) continue;
    const siblings = childrenOf.get(node.parent) ?? [];
    siblings.push(node);
    childrenOf.set(node.parent, siblings);
  }
  for (const siblings of childrenOf.values()) siblings.sort(byName);
  return childrenOf;
}

function byName(a: TreeNode, b: TreeNode): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * The chain that held a run up: the layer that finished last, then its parents up the tree as far
 * as they did work in the run (each child starts only once its parent is done), root first. Empty
 * when nothing did work.
 */
export function criticalChain(layers: readonly { readonly name: string; readonly parent?: string | null }[], finishedAt: ReadonlyMap<string, number>): string[] {
  const parentOf = new Map(layers.map((layer) => [layer.name, layer.parent ?? undefined] as const));
  let last: string | undefined;
  for (const layer of layers) {
    const finished = finishedAt.get(layer.name);
    if (finished !== undefined && (last === undefined || finished > (finishedAt.get(last) as number))) last = layer.name;
  }
  const chain: string[] = [];
  for (let current = last; current !== undefined && finishedAt.has(current) && !chain.includes(current); current = parentOf.get(current)) chain.unshift(current);
  return chain;
}

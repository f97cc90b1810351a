/**
 * Which `strata:index:ImageAttestationsSet` signs which layer's images (issue 29): every layer
 * with children heads a family, with the leaves directly under it, and a layer with no parent in
 * the list and no children (a tree of one) is a family alone; families whose heads are siblings
 * (one parent) share a set, whole, in declaration order, cut after a head whose name ends a set
 * (endsSet) or after SET_FAMILIES families. No Pulumi import.
 *
 * Why these sets, not one resource per image nor one for the whole stack: the engine wrote the
 * whole state after every step then (`strata up` now has it write once, as the run ends, on a
 * mutable channel: cli-run.ts checkpointEnv), so one resource per image nearly tripled the Pulumi engine's CPU on
 * a cold N=200 run (12.3 → 34.9 CPU-s, bench/results/2026-12-03-signing-n200.json); one set for the
 * stack waits for the last build before it signs the first image (cold +30 % over three runs, 21 s
 * of signing after the last build in one, bench/results/2026-12-03-signing-set-n200.json), and so
 * did runs of 16 consecutive layers of the declaration (one run, stopped before a results file: 13
 * sets, all but three ready after 100 s of 113; cold +35 %): such a run spans levels of the tree,
 * which the engine builds far apart. A parent's children are declared to the engine together, the
 * moment the parent is built, so they build close together, and so do their own leaves after them:
 * a set of sibling families is ready soon after its last family's leaves, while other subtrees
 * still build, and the last one holds only its own few images' signing after the last build. One
 * set per family (103 sets at N=200, bench/results/2026-12-03-signing-family-sets-n200.json and
 * the 2026-12-04 results) cost a signed no-op 1.2-1.8 s over an unsigned one, most of it the sets
 * as resources (README *What signing costs*). Sibling families together make 35; in one hour they
 * took the no-op's gap from 1.20 to 0.69 s, the cold run no slower
 * (bench/results/2026-12-04-signing-{sibling-sets,family-sets-again}-n200.json).
 *
 * Where a set is cut depends on the heads' names, not on their places, so a change to the catalog
 * moves little: a leaf added or removed changes only its family's set; a family added joins one
 * set, and splits it when its head's name ends a set; a family removed leaves its set, and when its
 * head ended that set, the next set's families join it; the families of every other set stay where
 * they were (but in a run of siblings cut by SET_FAMILIES, whose cuts depend on places). A leaf
 * that gains a child becomes a family's head, and a layer that loses its last child moves back
 * into its parent's family. A set whose first family changes takes another name: the engine makes
 * it anew and deletes the old one (its tags stay). A set that takes over an image finds its
 * signatures in the registry (attest-image.ts never signs a digest twice with a key) and writes
 * nothing for it, though it reads the image again (its SBOM, its `.sig` and `.att` tags); its
 * inputs then hold this run's facts for that image, while the registry's provenance keeps those of
 * the run that signed it, and its outputs name the `.att` layers the registry holds. A run killed
 * between the new set's writes and the state's (test/e2e/signing-interrupted.test.ts) leaves
 * signatures the state does not know; the next run's set finds them the same way.
 */

import { createHash } from "node:crypto";

export interface SetMember {
  readonly layer: string;
  readonly parent: string | null;
}

export interface AttestationSet {
  /** The resource's name: `attestations-<its first family's head>`. */
  readonly name: string;
  /** Its layers: each family's head, then that family's leaves, families in the order given. */
  readonly layers: readonly string[];
}

/**
 * Most families in a set: a run of siblings whose heads' names end no set is cut after this many.
 * Rare (about one set in seventy reaches it), so a set seldom waits for more than a few of its
 * siblings' builds, and a long run's cuts, which depend on places, seldom move.
 */
export const SET_FAMILIES = 16;

/**
 * Whether a set of siblings ends with this family, by its head's name alone: about one head in
 * four. Cut points that depend on a family's own name, not on its place in the list, keep a family
 * added or removed from moving the families of the sets around its own (as content-defined
 * chunking does for bytes).
 */
export function endsSet(head: string): boolean {
  return (createHash("sha256").update(head).digest()[0] as number) % 4 === 0;
}

const attestationSetName = (head: string): string => `attestations-${head}`;

/** The sets of `members` (layers in declaration order, each with its parent), in the order of their first heads; every layer in exactly one. */
export function attestationSets(members: readonly SetMember[]): AttestationSet[] {
  const known = new Set(members.map((member) => member.layer));
  const parentOf = new Map(members.map((member) => [member.layer, member.parent !== null && known.has(member.parent) ? member.parent : null] as const));
  const hasChildren = new Set([...parentOf.values()].filter((parent): parent is string => parent !== null));
  /** The head of a layer's family: itself when it has children or no parent here, else its parent. */
  const headOf = (member: SetMember): string => (hasChildren.has(member.layer) ? member.layer : parentOf.get(member.layer) ?? member.layer);
  const families = new Map<string, string[]>();
  for (const member of members) if (headOf(member) === member.layer) families.set(member.layer, [member.layer]);
  for (const member of members) {
    const head = headOf(member);
    if (head !== member.layer) (families.get(head) as string[]).push(member.layer);
  }
  // Families whose heads are siblings share a set (endsSet, SET_FAMILIES); a root's family is alone.
  type Building = { name: string; layers: string[]; families: number };
  const sets: Building[] = [];
  /** Parent → the set its next child family joins, while that set is open. */
  const open = new Map<string, Building>();
  for (const [head, layers] of families) {
    const parent = parentOf.get(head) ?? null;
    let set = parent === null ? undefined : open.get(parent);
    if (set === undefined) {
      set = { name: attestationSetName(head), layers: [], families: 0 };
      sets.push(set);
    }
    set.layers.push(...layers);
    set.families++;
    if (parent === null) continue;
    if (endsSet(head) || set.families >= SET_FAMILIES) open.delete(parent);
    else open.set(parent, set);
  }
  return sets.map(({ name, layers }) => ({ name, layers }));
}

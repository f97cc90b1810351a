/**
 * Which `strata:index:ImageAttestationsSet` signs which layer's images (issue 29): every layer
 * with children heads a family, with the leaves directly under it, and a layer with no parent in
 * the list and no children (a tree of one) is a family alone; families whose heads are siblings
 * (one parent) share a set, whole, in declaration order, up to SET_LAYERS layers. No Pulumi import.
 *
 * Why these sets, not one resource per image nor one for the whole stack: the engine wrote the
 * whole state after every step then (`strata up` now has it write once, as the run ends, on a
 * mutable channel: cli-run.ts checkpointEnv), so one resource per image nearly tripled the Pulumi engine's CPU on
 * a cold N=200 run (12.3 → 34.9 CPU-s, bench/results/2026-12-03-signing-n200.json); one set for the
 * stack waits for the last build before it signs the first image (cold +30 % over three runs, 21 s
 * of signing after the last build in one, bench/results/2026-12-03-signing-set-n200.json), and so
 * did runs of 16 consecutive layers (one run, stopped before a results file: 13 sets, all but three
 * ready after 100 s of 113; cold +35 %), since the engine builds leaves in no order a static cut
 * can follow. A parent's children are declared to the engine together, the moment the parent is
 * built, so they build close together, and so do their own leaves after them: a set of sibling
 * families is ready soon after its last family's leaves, while other subtrees still build, and the
 * last one holds only its own few images' signing after the last build. A family per set (103 sets
 * at N=200, bench/results/2026-12-03-signing-family-sets-n200.json and the 2026-12-04 results)
 * cost a signed no-op 1.4-1.7 s over an unsigned one, nearly all of it the sets as resources
 * (README *What signing costs*); sibling families together make 29.
 *
 * A leaf added or removed changes only its family's set. A family added or removed among its
 * siblings may move the families declared after it from one set to the next; a leaf that gains a
 * child becomes a family's head, and a layer that loses its last child moves back into its
 * parent's family (a set left empty is deleted: its tags stay). A set finds the signatures of an
 * image it takes over in the registry (attest-image.ts never signs a digest twice) and writes
 * nothing for it; its state then holds this run's facts for that image, while the registry's
 * provenance keeps those of the run that signed it.
 */

export interface SetMember {
  readonly layer: string;
  readonly parent: string | null;
}

export interface AttestationSet {
  /** The resource's name: `attestations-<its first head layer>`. */
  readonly name: string;
  /** Its layers: each family's head, then that family's leaves, families in the order given. */
  readonly layers: readonly string[];
}

/**
 * Most layers in a set of sibling families: whole families are put together, in declaration order,
 * up to this many layers (a family larger than this is a set alone, never split). A set of eight
 * signs its images at once (attest-image.ts ATTEST_CONCURRENCY).
 */
export const SET_LAYERS = 8;

const attestationSetName = (head: string): string => `attestations-${head}`;

/** The sets of `members` (layers in declaration order, each with its parent), in the order of their first heads; every layer in exactly one. */
export function attestationSets(members: readonly SetMember[]): AttestationSet[] {
  const known = new Set(members.map((member) => member.layer));
  const parentOf = new Map(members.map((member) => [member.layer, member.parent !== null && known.has(member.parent) ? member.parent : null] as const));
  const hasChildren = new Set([...parentOf.values()].filter((parent): parent is string => parent !== null));
  /** The head of a layer's family: itself when it has children or no parent here, else its parent. */
  const headOf = (member: SetMember): string => (hasChildren.has(member.layer) || parentOf.get(member.layer) === null ? member.layer : member.parent as string);
  const families = new Map<string, string[]>();
  for (const member of members) if (headOf(member) === member.layer) families.set(member.layer, [member.layer]);
  for (const member of members) {
    const head = headOf(member);
    if (head !== member.layer) (families.get(head) as string[]).push(member.layer);
  }
  // Families whose heads are siblings share a set, up to SET_LAYERS layers; a root's family is alone.
  const sets: { name: string; layers: string[] }[] = [];
  const open = new Map<string, { name: string; layers: string[] }>();
  for (const [head, layers] of families) {
    const parent = parentOf.get(head) ?? null;
    const current = parent === null ? undefined : open.get(parent);
    if (current !== undefined && current.layers.length + layers.length <= SET_LAYERS) {
      current.layers.push(...layers);
      continue;
    }
    const set = { name: attestationSetName(head), layers: [...layers] };
    sets.push(set);
    if (parent !== null) open.set(parent, set);
  }
  return sets;
}

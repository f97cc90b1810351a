/**
 * Which `strata:index:ImageAttestationsSet` signs which layer's images (issue 29): every layer
 * with children heads a set of its own, with the leaves directly under it; a layer with no parent
 * in the list and no children (a tree of one) is a set alone. No Pulumi import.
 *
 * Why these sets, not one resource per image nor one for the whole stack: the engine wrote the
 * whole state after every step then (`strata up` now has it write once, as the run ends, on a
 * mutable channel: cli-run.ts checkpointEnv), so one resource per image nearly tripled the Pulumi engine's CPU on
 * a cold N=200 run (12.3 → 34.9 CPU-s, bench/results/2026-12-03-signing-n200.json); one set for the
 * stack waits for the last build before it signs the first image (cold +30 % over three runs, 21 s
 * of signing after the last build in one, bench/results/2026-12-03-signing-set-n200.json), and so
 * did runs of 16 consecutive layers (one run, stopped before a results file: 13 sets, all but three
 * ready after 100 s of 113; cold +35 %), since the engine builds leaves in no order a static cut
 * can follow. A parent's leaves are declared to
 * the engine together, the moment the parent is built, so they build close together: a set is ready
 * soon after its parent, while other subtrees still build, and the last one holds only its own few
 * images' signing after the last build (cold +22 % over three runs, busy CPU +10 %, Pulumi engine
 * +9.7 CPU-s for 103 sets at N=200, bench/results/2026-12-03-signing-family-sets-n200.json).
 *
 * A layer added or removed changes only its parent's set; a leaf that gains a child moves from its
 * parent's set to a set of its own, and a layer that loses its last child moves back into its
 * parent's set (its own set is deleted: its tags stay). A set finds the signatures of an image it
 * takes over in the registry (attest-image.ts never signs a digest twice) and writes nothing for
 * it; its state then holds this run's facts for that image, while the registry's provenance keeps
 * those of the run that signed it.
 */

export interface SetMember {
  readonly layer: string;
  readonly parent: string | null;
}

export interface AttestationSet {
  /** The resource's name: `attestations-<head layer>`. */
  readonly name: string;
  /** Its layers: the head first, then its leaves in the order given. */
  readonly layers: readonly string[];
}

const attestationSetName = (head: string): string => `attestations-${head}`;

/** The sets of `members` (layers in declaration order, each with its parent), heads in that order; every layer in exactly one. */
export function attestationSets(members: readonly SetMember[]): AttestationSet[] {
  const known = new Set(members.map((member) => member.layer));
  const hasChildren = new Set(members.flatMap((member) => (member.parent !== null && known.has(member.parent) ? [member.parent] : [])));
  /** The head of a layer's set: itself when it has children or no parent here, else its parent. */
  const headOf = (member: SetMember): string => (hasChildren.has(member.layer) || member.parent === null || !known.has(member.parent) ? member.layer : member.parent);
  const sets = new Map<string, string[]>();
  for (const member of members) if (headOf(member) === member.layer) sets.set(member.layer, [member.layer]);
  for (const member of members) {
    const head = headOf(member);
    if (head !== member.layer) (sets.get(head) as string[]).push(member.layer);
  }
  return [...sets].map(([head, layers]) => ({ name: attestationSetName(head), layers }));
}

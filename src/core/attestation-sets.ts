/**
 * Which `strata:index:ImageAttestationsSet` signs which layer's images (issue 29): the layers in the
 * order the program declares them (parents first, as the engine builds them), cut into runs of at
 * most SET_SIZE layers, the i-th run being set i. No Pulumi import.
 *
 * Why sets of this size, not one resource per image nor one for the whole stack: the engine writes
 * the whole state after every step, so one resource per image doubled the Pulumi engine's CPU on a
 * cold N=200 run (12.3 → 34.9 CPU-s, bench/results/2026-12-03-signing-n200.json); one set for the
 * stack waits for the last image before it signs the first, so all the signing came after the
 * builds instead of beside them (cold N=200 +60 % and +15 % in the first two runs of
 * bench/results/2026-12-03-signing-set-n200.json). A set of consecutive layers is ready as soon as
 * its last layer is built, and the engine builds roughly in declaration order, so the sets sign
 * while later layers build; the last one holds a few layers' signing after the last build.
 *
 * A layer added to the catalog moves the layers after it by one place, and some into the next set:
 * that set finds their signatures in the registry (attest-image.ts never signs a digest twice) and
 * writes nothing.
 */

/** Layers per set: 13 sets at N=200, the last set's signing a second or two of CPU. */
export const SET_SIZE = 16;

/** The layer names in declaration order, cut into the sets' runs: `[set0 layers, set1 layers, …]`. */
export function attestationSets(layers: readonly string[], size: number = SET_SIZE): string[][] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`attestationSets: size must be a positive whole number, not ${size}`);
  const sets: string[][] = [];
  for (let at = 0; at < layers.length; at += size) sets.push(layers.slice(at, at + size));
  return sets;
}

/** The resource name of set `index`: stable while the number of layers before it is. */
export const attestationSetName = (index: number): string => `attestations-${index}`;

/**
 * Fingerprints of a whole selection of layers, parents first. A layer's
 * fingerprint covers its own build inputs and, through its parent's
 * fingerprint, everything below it; identical inputs on any machine give the
 * same fingerprint. No Pulumi here: the program, `strata bump` and the
 * benchmarks all call this.
 */
import { contextDigest, layerFingerprint, layerInputsDigest } from "./hash.js";
import { type LayerTarget } from "./plan.js";

export interface LayerFingerprint {
  /** sha256 of the build context as Docker would send it. */
  readonly contextDigest: string;
  /** The layer's own inputs (context, own build arguments, platform). */
  readonly inputsDigest: string;
  /** Own inputs plus the parent's fingerprint. */
  readonly fingerprint: string;
}

/** Image labels that carry a layer's fingerprint, so a registry can be asked what a tag holds. */
export const FINGERPRINT_LABEL = "org.strata.fingerprint";
export const INPUTS_LABEL = "org.strata.inputs";

/** `platform` is the stack's one platform; a per-platform target (core/platform-targets.ts) carries its own. */
export async function fingerprintTargets(targets: readonly LayerTarget[], platform: string): Promise<Map<string, LayerFingerprint>> {
  // Hash every context at once (I/O bound), then chain in tree order.
  const contexts = await Promise.all(targets.map((target) => contextDigest(target.layer.contextDir, target.layer.dockerfile)));
  const result = new Map<string, LayerFingerprint>();
  targets.forEach((target, index) => {
    const context = contexts[index] as string;
    const inputsDigest = layerInputsDigest({ contextDigest: context, buildArgs: target.ownBuildArgs, platform: target.platform ?? platform });
    const parent = target.parent === undefined ? undefined : result.get(target.parent);
    if (target.parent !== undefined && parent === undefined) throw new Error(`layer ${target.layer.name}: parent ${target.parent} comes later`);
    result.set(target.layer.name, { contextDigest: context, inputsDigest, fingerprint: layerFingerprint(inputsDigest, parent?.fingerprint) });
  });
  return result;
}

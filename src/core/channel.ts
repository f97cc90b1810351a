/**
 * What a channel already published, and whether this run may publish over it.
 * A tag names one content forever in an immutable channel: a tag that exists
 * with another fingerprint stops the run before anything is built or pushed.
 * A tag that exists with the same fingerprint is adopted, not rebuilt
 * (layer-origin.ts). The registry is asked in registry/lookups.ts; this file
 * only decides.
 */
import { type StackConfig, CONFIG_NAMESPACE } from "./config.js";
import { type LayerFingerprint } from "./fingerprint.js";
import { type LayerTarget } from "./plan.js";
import { type Problem } from "./problems.js";

/** A tag as the registry holds it. */
export interface PublishedTag {
  /** `repo@sha256:…` */
  readonly digestRef: string;
  /** Labels Strata put on the image; absent for images built elsewhere. */
  readonly fingerprint?: string;
  readonly inputsDigest?: string;
}

/** Another tag of the same repository whose image a CI run may copy (registry/lookups.ts finds them). */
export interface CopySource {
  readonly tag: string;
  readonly published: PublishedTag;
}

export interface RegistryView {
  /** By layer name; layers whose tag is absent are not in the map. */
  readonly published: ReadonlyMap<string, PublishedTag>;
  /**
   * CI runs only, by layer name: the channel's release tag, then the same change's other
   * patchsets (newest first), as far as the registry holds them.
   */
  readonly copySources?: ReadonlyMap<string, readonly CopySource[]>;
  /** Set when the registry could not be asked: everything counts as unpublished. */
  readonly unreachable?: string;
}

export type ChangeReason = "content changed" | "parent changed";

export interface TagConflict {
  readonly layer: string;
  readonly ref: string;
  readonly reason: ChangeReason;
}

export interface ChannelDecision {
  /** Tags an immutable channel would have to move: the run must stop. */
  readonly conflicts: TagConflict[];
}

/** Why a layer's fingerprint differs from a published one: its own inputs, or only what it builds on. */
export function changeReason(current: LayerFingerprint, published: PublishedTag): ChangeReason {
  return published.inputsDigest === current.inputsDigest ? "parent changed" : "content changed";
}

export function decideChannel(
  targets: readonly LayerTarget[],
  fingerprints: ReadonlyMap<string, LayerFingerprint>,
  view: RegistryView,
  config: StackConfig,
): ChannelDecision {
  const conflicts: TagConflict[] = [];
  // CI tags (-CHANGE[_PATCHSET]) name a review's build, which may be rebuilt.
  const enforce = config.immutable && config.ci === undefined;
  for (const target of targets) {
    const published = view.published.get(target.layer.name);
    const current = fingerprints.get(target.layer.name);
    if (published === undefined || current === undefined) continue;
    if (published.fingerprint !== current.fingerprint && enforce) conflicts.push({ layer: target.layer.name, ref: target.ref, reason: changeReason(current, published) });
  }
  return { conflicts };
}

/** One problem per offending layer, for one error message. */
export function conflictProblems(conflicts: readonly TagConflict[], stackFile: string, stack: string): Problem[] {
  return conflicts.map((conflict) => ({
    file: stackFile,
    field: `${CONFIG_NAMESPACE}:immutable`,
    message: `layer "${conflict.layer}": ${conflict.ref} already exists in the registry with different content (${conflict.reason}); an immutable channel never moves a tag`,
    fix: `bump the version: scripts/strata bump --stack ${stack} (it bumps this layer and its descendants)`,
  }));
}

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
import { type IndexTarget } from "./platforms.js";
import { type Problem } from "./problems.js";
import { digestOf } from "./reference.js";

/** A tag as the registry holds it. */
export interface PublishedTag {
  /** `repo@sha256:…` */
  readonly digestRef: string;
  /** Labels Strata put on the image; absent for images built elsewhere. */
  readonly fingerprint?: string;
  readonly inputsDigest?: string;
}

/** What the stack's state holds for a layer's build resource (engine/stack-state.ts reads it). */
export interface BuiltLayer {
  readonly fingerprint: string;
  /** The layer's own inputs digest, when the state has it (tells "content" from "parent changed"). */
  readonly inputsDigest?: string;
  /** The reference it was pushed under (`imageName`). */
  readonly ref: string;
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
}

export type ChangeReason = "content changed" | "parent changed";

export interface TagConflict {
  readonly layer: string;
  readonly ref: string;
  readonly reason: ChangeReason;
  /** Where the tag was seen with other content: the registry, or this stack's own state. */
  readonly seenIn: "registry" | "state";
}

export interface ChannelDecision {
  /** Tags an immutable channel would have to move: the run must stop. */
  readonly conflicts: TagConflict[];
}

/** Why a layer's fingerprint differs from a published one: its own inputs, or only what it builds on. */
export function changeReason(current: LayerFingerprint, published: { readonly inputsDigest?: string }): ChangeReason {
  return published.inputsDigest === current.inputsDigest ? "parent changed" : "content changed";
}

/** Whether this run's tags may never move: an immutable channel's release tags. CI tags (-CHANGE[_PATCHSET]) name a review's build, which may be rebuilt. */
export function immutableTags(config: Pick<StackConfig, "immutable" | "ci">): boolean {
  return config.immutable && config.ci === undefined;
}

/**
 * Tags an immutable channel would move. Two witnesses, each enough: the registry's tag, and this
 * stack's own state (`builtHere`: what its build resources pushed under which reference), so a
 * layer is refused even when the registry was never asked or answered wrong.
 */
export function decideChannel(
  targets: readonly LayerTarget[],
  fingerprints: ReadonlyMap<string, LayerFingerprint>,
  view: RegistryView,
  config: StackConfig,
  builtHere: ReadonlyMap<string, BuiltLayer> = new Map(),
): ChannelDecision {
  const conflicts: TagConflict[] = [];
  if (!immutableTags(config)) return { conflicts };
  for (const target of targets) {
    const current = fingerprints.get(target.layer.name);
    if (current === undefined) continue;
    const published = view.published.get(target.layer.name);
    const recorded = builtHere.get(target.layer.name);
    if (published !== undefined && published.fingerprint !== current.fingerprint) {
      conflicts.push({ layer: target.layer.name, ref: target.ref, reason: changeReason(current, published), seenIn: "registry" });
    } else if (recorded !== undefined && recorded.ref === target.ref && recorded.fingerprint !== current.fingerprint) {
      conflicts.push({ layer: target.layer.name, ref: target.ref, reason: changeReason(current, recorded), seenIn: "state" });
    }
  }
  return { conflicts };
}

/** One problem per offending layer, for one error message. */
export function conflictProblems(conflicts: readonly TagConflict[], stackFile: string, stack: string): Problem[] {
  return conflicts.map((conflict) => ({
    file: stackFile,
    field: `${CONFIG_NAMESPACE}:immutable`,
    message: `layer "${conflict.layer}": ${conflict.ref} already exists ${conflict.seenIn === "registry" ? "in the registry" : "in this stack's state (pushed by an earlier run)"} with different content (${conflict.reason}); an immutable channel never moves a tag`,
    fix: `bump the version: scripts/strata bump --stack ${stack} (it bumps this layer and its descendants)`,
  }));
}

/** A multi-platform layer's tag as the registry holds it: an index's entries, or a single image (`entries` absent). */
export interface PublishedIndex {
  readonly digest: string;
  readonly entries?: readonly { readonly platform: string; readonly digest: string }[];
}

/**
 * Index tags an immutable channel would move (core/platforms.ts). Each platform's own tag is
 * guarded by decideChannel; the layer's tag over them may only stay as it is: an index over exactly
 * this stack's platforms whose entries are the images those platforms' tags hold. A single image
 * under the tag, another platform list, or an entry no platform tag holds (it would be rebuilt)
 * means the index would move.
 */
export function indexConflicts(indexes: readonly IndexTarget[], published: ReadonlyMap<string, PublishedIndex>, view: RegistryView, stackFile: string, stack: string): Problem[] {
  const problems: Problem[] = [];
  for (const index of indexes) {
    const found = published.get(index.layer);
    if (found === undefined) continue;
    const wanted = index.entries.map((entry) => entry.platform);
    let why: string | undefined;
    if (found.entries === undefined) why = `holds a single-platform image (${found.digest}), and an index over ${wanted.join(", ")} would replace it`;
    else if (found.entries.map((entry) => entry.platform).join(",") !== wanted.join(",")) why = `holds an index over ${found.entries.map((entry) => entry.platform).join(", ")}, not ${wanted.join(", ")}`;
    else {
      const moved = index.entries.find((entry, position) => {
        const platformTag = view.published.get(entry.name);
        return platformTag === undefined || digestOf(platformTag.digestRef) !== found.entries?.[position]?.digest;
      });
      if (moved !== undefined) why = `holds an index whose ${moved.platform} image is not the one this run would put there`;
    }
    if (why !== undefined) {
      problems.push({
        file: stackFile,
        field: `${CONFIG_NAMESPACE}:immutable`,
        message: `layer "${index.layer}": ${index.target.ref} ${why}; an immutable channel never moves a tag`,
        fix: `bump the version: scripts/strata bump --stack ${stack} (it bumps this layer and its descendants)`,
      });
    }
  }
  return problems;
}

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
import { indexFingerprint, type IndexTarget } from "./platform-targets.js";
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
  /** docker.Image: whether it was built with its parent in `cacheFrom`, pulled first (core/parent-pull.ts). */
  readonly pulledParentFirst?: boolean;
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

/**
 * A tag this stack has published, as its state remembers it: from any resource in its checkpoint
 * that writes a tag (a build, an adoption, a promotion, an index), or from its `published` output,
 * the ledger every run carries forward (engine/stack-state.ts reads both). The ledger outlives the
 * resources: a layer dropped from the selection, or built by the other builder, is still there.
 */
export interface WitnessedTag {
  /** `sha256:…` the tag was published at; absent when the state holds the resource but no digest. */
  readonly digest?: string;
  /** The content's fingerprint, where the state knows it (builds and the ledger do; a bare copy does not). */
  readonly fingerprint?: string;
  readonly inputsDigest?: string;
}

/** Every tag a stack has published, by full reference (`registry/group/image:tag`). */
export type StateWitness = ReadonlyMap<string, WitnessedTag>;

export type ChangeReason = "content changed" | "parent changed";

export interface TagConflict {
  readonly layer: string;
  readonly ref: string;
  /**
   * Why the tag would move: its content or its parent changed, or (`unverified`) this stack
   * published it and the registry now answers that it does not hold that image, so what the tag
   * holds cannot be known.
   */
  readonly reason: ChangeReason | "unverified";
  /** Where the tag was seen with other content: the registry, or this stack's own state. */
  readonly seenIn: "registry" | "state";
  /** With `unverified`: the digest the state says the tag was published at. */
  readonly witnessed?: string;
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
 * What the state's witness says against publishing `fingerprint` under a tag the registry answered
 * for with `published` (undefined: "not found"): nothing, or why the tag would move. A witnessed
 * fingerprint must equal the one to publish; a witnessed digest must be what the registry holds,
 * since a tag this stack published that the registry now calls absent (or another image) is an
 * answer Strata cannot trust: it fails closed. A registry that answers wrongly therefore cannot
 * move a tag this stack ever published.
 */
function witnessConflict(witnessed: WitnessedTag | undefined, current: LayerFingerprint, publishedDigest: string | undefined): TagConflict["reason"] | undefined {
  if (witnessed === undefined) return undefined;
  if (witnessed.fingerprint !== undefined && witnessed.fingerprint !== current.fingerprint) return changeReason(current, witnessed);
  if (witnessed.digest !== undefined && witnessed.digest !== publishedDigest) return "unverified";
  return undefined;
}

/**
 * Tags an immutable channel would move. Two witnesses, each enough: the registry's tag, and this
 * stack's own state (`witness`: every tag it ever published, by reference), so a layer is refused
 * even when the registry was never asked or answered wrong.
 */
export function decideChannel(
  targets: readonly LayerTarget[],
  fingerprints: ReadonlyMap<string, LayerFingerprint>,
  view: RegistryView,
  config: StackConfig,
  witness: StateWitness = new Map(),
): ChannelDecision {
  const conflicts: TagConflict[] = [];
  if (!immutableTags(config)) return { conflicts };
  for (const target of targets) {
    const current = fingerprints.get(target.layer.name);
    if (current === undefined) continue;
    const published = view.published.get(target.layer.name);
    if (published !== undefined && published.fingerprint !== current.fingerprint) {
      conflicts.push({ layer: target.layer.name, ref: target.ref, reason: changeReason(current, published), seenIn: "registry" });
      continue;
    }
    const witnessed = witness.get(target.ref);
    const reason = witnessConflict(witnessed, current, published === undefined ? undefined : digestOf(published.digestRef));
    if (reason !== undefined) conflicts.push({ layer: target.layer.name, ref: target.ref, reason, seenIn: "state", ...(reason === "unverified" && witnessed?.digest !== undefined ? { witnessed: witnessed.digest } : {}) });
  }
  return { conflicts };
}

/** One problem per offending layer, for one error message. */
export function conflictProblems(conflicts: readonly TagConflict[], stackFile: string, stack: string): Problem[] {
  return conflicts.map((conflict) => conflict.reason === "unverified" ? {
    file: stackFile,
    field: `${CONFIG_NAMESPACE}:immutable`,
    message: `layer "${conflict.layer}": this stack published ${conflict.ref} at ${conflict.witnessed ?? "a digest its state holds"}, but the registry now answers that the tag does not hold that image; Strata cannot tell what the tag holds, and an immutable channel never moves a tag`,
    fix: `check the registry and what sits between (a proxy, its storage) until it answers for the tag again; if the tag is gone for good, publish a new version: scripts/strata bump --stack ${stack}`,
  } : {
    file: stackFile,
    field: `${CONFIG_NAMESPACE}:immutable`,
    message: `layer "${conflict.layer}": ${conflict.ref} already exists ${conflict.seenIn === "registry" ? "in the registry" : "in this stack's state (pushed by an earlier run)"} with different content (${conflict.reason}); an immutable channel never moves a tag`,
    fix: `bump the version: scripts/strata bump --stack ${stack} (it bumps this layer and its descendants)`,
  });
}

/** What indexConflicts needs of the state's witness: the tags, and each per-platform target's fingerprint now. */
export interface IndexWitness {
  readonly tags: StateWitness;
  readonly fingerprints: ReadonlyMap<string, LayerFingerprint>;
}

/** A multi-platform layer's tag as the registry holds it: an index's entries, or a single image (`entries` absent). */
export interface PublishedIndex {
  readonly digest: string;
  readonly entries?: readonly { readonly platform: string; readonly digest: string }[];
}

/**
 * Index tags an immutable channel would move (core/platform-targets.ts). Each platform's own tag is
 * guarded by decideChannel; the layer's tag over them may only stay as it is: an index over exactly
 * this stack's platforms whose entries are the images those platforms' tags hold. A single image
 * under the tag, another platform list, or an entry no platform tag holds (it would be rebuilt)
 * means the index would move.
 */
export function indexConflicts(
  indexes: readonly IndexTarget[],
  config: Pick<StackConfig, "immutable" | "ci">,
  published: ReadonlyMap<string, PublishedIndex>,
  view: RegistryView,
  stackFile: string,
  stack: string,
  witness: IndexWitness = { tags: new Map(), fingerprints: new Map() },
): Problem[] {
  const problems: Problem[] = [];
  // A mutable channel (or a CI run's tags) writes its indexes over whatever they held.
  if (!immutableTags(config)) return problems;
  for (const index of indexes) {
    const found = published.get(index.layer);
    // The registry's answer, when it has one, says best what is there; the state's witness then
    // catches what the registry does not show (a tag it answers 404 for, or holds unchanged-looking).
    const why = (found === undefined ? undefined : registryIndexMoves(index, found, view)) ?? witnessedIndexMoves(index, found, witness);
    if (why === undefined) continue;
    problems.push({
      file: stackFile,
      field: `${CONFIG_NAMESPACE}:immutable`,
      message: `layer "${index.layer}": ${index.target.ref} ${why}; an immutable channel never moves a tag`,
      fix: `bump the version: scripts/strata bump --stack ${stack} (it bumps this layer and its descendants)`,
    });
  }
  return problems;
}

/**
 * Why the index this stack published under the tag would move, by its state: another fingerprint
 * over the platforms in order (another platform list or order, or other images), or a digest the
 * registry no longer answers with. Undefined when the witness has nothing against it.
 */
function witnessedIndexMoves(index: IndexTarget, found: PublishedIndex | undefined, witness: IndexWitness): string | undefined {
  const witnessed = witness.tags.get(index.target.ref);
  if (witnessed === undefined) return undefined;
  const platforms = index.entries.map((entry) => ({ platform: entry.platform, fingerprint: witness.fingerprints.get(entry.name)?.fingerprint }));
  const current = platforms.every((entry) => entry.fingerprint !== undefined) ? indexFingerprint(platforms as { platform: string; fingerprint: string }[]) : undefined;
  if (witnessed.fingerprint !== undefined && current !== undefined && witnessed.fingerprint !== current) {
    return `was published by this stack as an index over other platforms or other images (its state says so), and an index over ${platforms.map((entry) => entry.platform).join(", ")} with these images would replace it`;
  }
  if (witnessed.digest !== undefined && witnessed.digest !== found?.digest) {
    return `was published by this stack at ${witnessed.digest}, but the registry now answers that the tag does not hold it; Strata cannot tell what the tag holds`;
  }
  return undefined;
}

/** Why the index the registry holds under the tag would move: a single image there, another platform list, or an entry no platform tag holds. */
function registryIndexMoves(index: IndexTarget, found: PublishedIndex, view: RegistryView): string | undefined {
  const wanted = index.entries.map((entry) => entry.platform);
  if (found.entries === undefined) return `holds a single-platform image (${found.digest}), and an index over ${wanted.join(", ")} would replace it`;
  if (found.entries.map((entry) => entry.platform).join(",") !== wanted.join(",")) return `holds an index over ${found.entries.map((entry) => entry.platform).join(", ")}, not ${wanted.join(", ")}`;
  const moved = index.entries.find((entry, position) => {
    const platformTag = view.published.get(entry.name);
    return platformTag === undefined || digestOf(platformTag.digestRef) !== found.entries?.[position]?.digest;
  });
  return moved === undefined ? undefined : `holds an index whose ${moved.platform} image is not the one this run would put there`;
}

/** Tags a promotion into an immutable channel would move by the state's witness: another digest than the one this stack published there. */
export function promotionWitnessConflicts(targets: readonly { readonly ref: string; readonly digest: string; readonly source: { readonly layer: string } }[], witness: StateWitness, stackFile: string, stack: string): Problem[] {
  return targets.flatMap((target) => {
    const witnessed = witness.get(target.ref)?.digest;
    if (witnessed === undefined || witnessed === target.digest) return [];
    return [{
      file: stackFile,
      field: `${CONFIG_NAMESPACE}:immutable`,
      message: `layer "${target.source.layer}": this stack published ${target.ref} at ${witnessed} (its state says so); promoting ${target.digest} would move an immutable tag, whatever the registry answers now`,
      fix: `bump the layer's version (scripts/strata bump --stack ${stack}), rebuild the source channel, then promote`,
    }];
  });
}

/** One tag in the ledger a stack carries in its `published` output (engine/stack-state.ts reads it back). */
export interface LedgerEntry {
  readonly digest: string;
  readonly fingerprint?: string;
  readonly inputsDigest?: string;
}

/**
 * The ledger this run leaves: every tag the state witnessed at a digest, then what this run
 * published (a mutable channel's moved tag takes its new digest), sorted by reference so the
 * same tags give the same output. Pure.
 */
export function nextLedger(witness: StateWitness, publishedNow: readonly { readonly ref: string; readonly digestRef: string; readonly fingerprint?: string | null; readonly inputsDigest?: string | null }[]): Record<string, LedgerEntry> {
  const ledger = new Map<string, LedgerEntry>();
  for (const [ref, tag] of witness) {
    if (tag.digest !== undefined) ledger.set(ref, { digest: tag.digest, ...(tag.fingerprint === undefined ? {} : { fingerprint: tag.fingerprint }), ...(tag.inputsDigest === undefined ? {} : { inputsDigest: tag.inputsDigest }) });
  }
  for (const layer of publishedNow) {
    // A local image id (push false) published nothing.
    if (!layer.digestRef.includes("@")) continue;
    ledger.set(layer.ref, {
      digest: digestOf(layer.digestRef),
      ...(typeof layer.fingerprint === "string" ? { fingerprint: layer.fingerprint } : {}),
      ...(typeof layer.inputsDigest === "string" ? { inputsDigest: layer.inputsDigest } : {}),
    });
  }
  return Object.fromEntries([...ledger].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** An immutable channel whose state cannot be read has lost one of its two witnesses: it stops. */
export function unreadableStateProblem(unreadable: string, stackFile: string, stack: string): Problem {
  return { file: stackFile, field: `${CONFIG_NAMESPACE}:immutable`, message: `this stack's state cannot be read (${unreadable}), so Strata cannot tell what it pushed under its tags`, fix: `scripts/strata recover --stack ${stack}, then run again` };
}
